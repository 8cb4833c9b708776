// The SQLite account mirror and managed set.

#include <iterator>
#include <mutex>
#include <unordered_set>

#include "idsync/base/ascii.h"

#include "codec.h"
#include "sqlite_parts.h"

namespace idsync::store::sqlite {
namespace {

constexpr std::string_view kMirrorColumns =
    "id, email, name, role, status, permissions_json, projects_json, created_at, updated_at";

constexpr char kInsertMirror[] =
    "INSERT INTO mirror (id, email, name, role, status, permissions_json, projects_json, "
    "created_at, updated_at, seen_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
constexpr char kUpsertMirror[] =
    "INSERT INTO mirror (id, email, name, role, status, permissions_json, projects_json, "
    "created_at, updated_at, seen_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
    "ON CONFLICT (id) DO UPDATE SET email = excluded.email, name = excluded.name, "
    "role = excluded.role, status = excluded.status, "
    "permissions_json = excluded.permissions_json, projects_json = excluded.projects_json, "
    "created_at = excluded.created_at, updated_at = excluded.updated_at, "
    "seen_ms = excluded.seen_ms";

Result<mapping::AccountRecord> ReadMirrorRow(const Stmt& row) {
  mapping::AccountRecord r;
  r.id = row.Text(0);
  r.email = row.Text(1);
  r.name = row.Text(2);
  const std::string context = "mirror user " + r.id;
  auto fail = [&](const Status& s) { return s.WithContext(context); };
  Result<mapping::Role> role = DecodeRole(row.Text(3));
  if (!role.ok()) return fail(role.status());
  r.role = *role;
  Result<mapping::AccountUser::Status> status = DecodeAccountStatus(row.Text(4));
  if (!status.ok()) return fail(status.status());
  r.status = *status;
  Result<mapping::PermissionSpec> permissions = DecodePermissions(row.Text(5));
  if (!permissions.ok()) return fail(permissions.status());
  r.permissions = std::move(permissions).value();
  Result<std::vector<std::string>> projects = DecodeStrings(row.Text(6));
  if (!projects.ok()) return fail(projects.status());
  r.projects = std::move(projects).value();
  r.created_at = row.Text(7);
  r.updated_at = row.Text(8);
  return r;
}

// Binds ?1..?10 of the mirror insert.
Status BindMirrorRow(Stmt& stmt, const mapping::AccountRecord& user, std::int64_t at_ms) {
  ASSIGN_OR_RETURN(std::string permissions, EncodePermissions(user.permissions));
  ASSIGN_OR_RETURN(std::string projects, EncodeStrings(user.projects));
  BindAll(stmt, user.id, user.email, user.name, mapping::RoleName(user.role),
          AccountStatusName(user.status), permissions, projects, user.created_at, user.updated_at,
          at_ms);
  return Status::Ok();
}

}  // namespace

Status UpsertMirrorRow(sqlite3* db, const mapping::AccountRecord& user, std::int64_t at_ms) {
  ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(db, kUpsertMirror));
  RETURN_IF_ERROR(BindMirrorRow(stmt, user, at_ms));
  return stmt.Run().WithContext("update mirror");
}

Status DeleteMirrorRow(sqlite3* db, const std::string& user_id) {
  ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(db, "DELETE FROM mirror WHERE id = ?1"));
  stmt.Bind(1, user_id);
  return stmt.Run().WithContext("update mirror");
}

Status UpsertManagedRow(sqlite3* db, const ManagedUser& user, bool keep_existing) {
  // After a write, a user already managed keeps how and since when idsync
  // took it on; only its address follows the account.
  const char* sql =
      keep_existing
          ? "INSERT INTO managed (user_id, email, how, since_ms) VALUES (?1, ?2, ?3, ?4) "
            "ON CONFLICT (user_id) DO UPDATE SET email = excluded.email"
          : "INSERT INTO managed (user_id, email, how, since_ms) VALUES (?1, ?2, ?3, ?4) "
            "ON CONFLICT (user_id) DO UPDATE SET email = excluded.email, how = excluded.how, "
            "since_ms = excluded.since_ms";
  ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(db, sql));
  BindAll(stmt, user.user_id, user.email, user.how, user.since_ms);
  return stmt.Run().WithContext("record managed user " + user.user_id);
}

Status DeleteManagedRow(sqlite3* db, const std::string& user_id) {
  ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(db, "DELETE FROM managed WHERE user_id = ?1"));
  stmt.Bind(1, user_id);
  return stmt.Run().WithContext("forget managed user " + user_id);
}

Status SqliteMirror::Replace(const std::vector<mapping::AccountRecord>& users, std::int64_t at_ms,
                             const std::vector<std::string>& keep) {
  std::lock_guard lock(c_.mu);
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(c_.get()));
  std::unordered_set<std::string> kept_emails;
  std::vector<mapping::AccountRecord> kept;
  if (!keep.empty()) {
    ASSIGN_OR_RETURN(Stmt select,
                     Stmt::Prepare(c_.get(), Concat({"SELECT ", kMirrorColumns,
                                                     " FROM mirror WHERE lower(email) = ?1"})));
    for (const std::string& email : keep) {
      if (!kept_emails.insert(base::AsciiLower(email)).second) continue;
      select.Reset();
      select.Bind(1, base::AsciiLower(email));
      ASSIGN_OR_RETURN(std::vector<mapping::AccountRecord> rows,
                       ReadRows<mapping::AccountRecord>(select, ReadMirrorRow));
      std::move(rows.begin(), rows.end(), std::back_inserter(kept));
    }
  }
  RETURN_IF_ERROR(Exec(c_.get(), "DELETE FROM mirror").WithContext("replace mirror"));
  ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(c_.get(), kInsertMirror));
  auto insert = [&](const mapping::AccountRecord& user) -> Status {
    RETURN_IF_ERROR(BindMirrorRow(stmt, user, at_ms).WithContext("mirror user " + user.id));
    Status status = stmt.Run();
    if (status.code() == StatusCode::kAlreadyExists) {
      return InvalidArgumentError("replace mirror: user id \"" + user.id + "\" appears twice");
    }
    return status.WithContext("replace mirror");
  };
  for (const mapping::AccountRecord& user : users) {
    if (!kept_emails.empty() && kept_emails.count(base::AsciiLower(user.email)) > 0) continue;
    RETURN_IF_ERROR(insert(user));
  }
  for (const mapping::AccountRecord& user : kept) RETURN_IF_ERROR(insert(user));
  return tx.Commit();
}

Result<std::vector<mapping::AccountRecord>> SqliteMirror::Users() {
  std::lock_guard lock(c_.mu);
  ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(c_.get(), Concat({"SELECT ", kMirrorColumns,
                                                              " FROM mirror ORDER BY email, id"})));
  return ReadRows<mapping::AccountRecord>(stmt, ReadMirrorRow);
}

Result<std::vector<ManagedUser>> SqliteMirror::Managed() {
  std::lock_guard lock(c_.mu);
  ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(c_.get(),
                                            "SELECT user_id, email, how, since_ms FROM managed "
                                            "ORDER BY email, user_id"));
  return ReadRows<ManagedUser>(stmt, [](const Stmt& row) {
    return ManagedUser{row.Text(0), row.Text(1), row.Text(2), row.Int(3)};
  });
}

Status SqliteMirror::SetManaged(const ManagedUser& user) {
  if (user.user_id.empty()) return InvalidArgumentError("managed user without an id");
  if (user.how != "invited" && user.how != "adopted") {
    return InvalidArgumentError("managed user " + user.user_id + ": how must be invited or " +
                                "adopted, not \"" + user.how + "\"");
  }
  std::lock_guard lock(c_.mu);
  return UpsertManagedRow(c_.get(), user, /*keep_existing=*/false);
}

Status SqliteMirror::ForgetManaged(const std::string& user_id) {
  std::lock_guard lock(c_.mu);
  return DeleteManagedRow(c_.get(), user_id);
}

}  // namespace idsync::store::sqlite
