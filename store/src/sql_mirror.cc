// The account mirror and the managed set, over a Session.

#include <algorithm>
#include <iterator>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "idsync/base/ascii.h"

#include "codec.h"
#include "sql_parts.h"

namespace idsync::store::internal {
namespace {

constexpr std::string_view kMirrorColumns =
    "id, email, name, role, status, permissions_json, projects_json, created_at, updated_at";

constexpr char kInsertMirror[] =
    "INSERT INTO mirror (id, email, name, role, status, permissions_json, projects_json, "
    "created_at, updated_at, seen_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
constexpr char kUpsertMirror[] =
    "INSERT INTO mirror (id, email, name, role, status, permissions_json, projects_json, "
    "created_at, updated_at, seen_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
    "ON CONFLICT (id) DO UPDATE SET email = excluded.email, name = excluded.name, "
    "role = excluded.role, status = excluded.status, "
    "permissions_json = excluded.permissions_json, projects_json = excluded.projects_json, "
    "created_at = excluded.created_at, updated_at = excluded.updated_at, "
    "seen_ms = excluded.seen_ms";

Result<mapping::AccountRecord> ReadMirrorRow(const Rows& row) {
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

// Runs `sql`, the mirror insert or upsert, for `user`.
Status WriteMirrorRow(Session& s, std::string_view sql, const mapping::AccountRecord& user,
                      std::int64_t at_ms) {
  ASSIGN_OR_RETURN(std::string permissions, EncodePermissions(user.permissions));
  ASSIGN_OR_RETURN(std::string projects, EncodeStrings(user.projects));
  return s
      .Exec(sql, {user.id, user.email, user.name, mapping::RoleName(user.role),
                  AccountStatusName(user.status), permissions, projects, user.created_at,
                  user.updated_at, at_ms})
      .status();
}

}  // namespace

Status UpsertMirrorRow(Session& s, const mapping::AccountRecord& user, std::int64_t at_ms) {
  return WriteMirrorRow(s, kUpsertMirror, user, at_ms).WithContext("update mirror");
}

Status DeleteMirrorRow(Session& s, const std::string& user_id) {
  return s.Exec("DELETE FROM mirror WHERE id = $1", {user_id})
      .status()
      .WithContext("update mirror");
}

Status UpsertManagedRow(Session& s, const ManagedUser& user, bool keep_existing) {
  // After a write, a user already managed keeps how and since when idsync
  // took it on; only its address follows the account.
  const char* sql =
      keep_existing
          ? "INSERT INTO managed (user_id, email, how, since_ms) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (user_id) DO UPDATE SET email = excluded.email"
          : "INSERT INTO managed (user_id, email, how, since_ms) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (user_id) DO UPDATE SET email = excluded.email, how = excluded.how, "
            "since_ms = excluded.since_ms";
  return s.Exec(sql, {user.user_id, user.email, user.how, user.since_ms})
      .status()
      .WithContext("record managed user " + user.user_id);
}

Status DeleteManagedRow(Session& s, const std::string& user_id) {
  return s.Exec("DELETE FROM managed WHERE user_id = $1", {user_id})
      .status()
      .WithContext("forget managed user " + user_id);
}

Status SqlMirror::Replace(const std::vector<mapping::AccountRecord>& users, std::int64_t at_ms,
                          const std::vector<std::string>& keep) {
  std::lock_guard lock(s_.mu);
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(s_));
  RETURN_IF_ERROR(CheckFence(s_));
  std::unordered_set<std::string> kept_emails;
  std::vector<mapping::AccountRecord> kept;
  if (!keep.empty()) {
    const std::string select =
        Concat({"SELECT ", kMirrorColumns, " FROM mirror WHERE lower(email) = $1"});
    for (const std::string& email : keep) {
      const std::string lower = base::AsciiLower(email);
      if (!kept_emails.insert(lower).second) continue;
      ASSIGN_OR_RETURN(std::vector<mapping::AccountRecord> rows,
                       QueryAll<mapping::AccountRecord>(s_, select, {lower}, ReadMirrorRow));
      std::move(rows.begin(), rows.end(), std::back_inserter(kept));
    }
  }
  RETURN_IF_ERROR(s_.Exec("DELETE FROM mirror", {}).status().WithContext("replace mirror"));
  auto insert = [&](const mapping::AccountRecord& user) -> Status {
    Status status = WriteMirrorRow(s_, kInsertMirror, user, at_ms);
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

Result<std::vector<mapping::AccountRecord>> SqlMirror::Users() {
  std::lock_guard lock(s_.mu);
  return QueryAll<mapping::AccountRecord>(
      s_, Concat({"SELECT ", kMirrorColumns, " FROM mirror ORDER BY email, id"}), {},
      ReadMirrorRow);
}

Result<std::vector<ManagedUser>> SqlMirror::Managed() {
  std::lock_guard lock(s_.mu);
  return QueryAll<ManagedUser>(
      s_, "SELECT user_id, email, how, since_ms FROM managed ORDER BY email, user_id", {},
      [](const Rows& row) {
        return ManagedUser{row.Text(0), row.Text(1), row.Text(2), row.Int(3)};
      });
}

namespace {

// "$first, $first+1, ..." for `n` parameters.
std::string Placeholders(std::size_t first, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) out += ", ";
    out += "$" + std::to_string(first + i);
  }
  return out;
}

// At most this many values in one IN list.
constexpr std::size_t kInChunk = 500;

}  // namespace

Result<std::vector<mapping::AccountRecord>> SqlMirror::UsersFor(
    const std::vector<std::string>& emails) {
  std::lock_guard lock(s_.mu);
  const std::string columns = Concat({"SELECT ", kMirrorColumns, " FROM mirror "});
  std::map<std::pair<std::string, std::string>, mapping::AccountRecord> found;  // (email, id)
  auto keep = [&found](std::vector<mapping::AccountRecord> rows) {
    for (mapping::AccountRecord& r : rows) {
      std::pair<std::string, std::string> key(r.email, r.id);
      found.emplace(std::move(key), std::move(r));
    }
  };
  ASSIGN_OR_RETURN(
      std::vector<mapping::AccountRecord> admins,
      QueryAll<mapping::AccountRecord>(s_, columns + "WHERE role = 'admin' AND status = 'active'",
                                       {}, ReadMirrorRow));
  keep(std::move(admins));
  for (std::size_t at = 0; at < emails.size(); at += kInChunk) {
    const std::size_t n = std::min(kInChunk, emails.size() - at);
    std::vector<Param> params;
    params.reserve(n);
    for (std::size_t i = 0; i < n; ++i) params.emplace_back(std::string_view(emails[at + i]));
    ASSIGN_OR_RETURN(std::unique_ptr<Rows> rows,
                     s_.Query(Concat({columns, "WHERE ", s_.dialect().ascii_lower_email, " IN (",
                                      Placeholders(1, n), ")"}),
                              std::span<const Param>(params)));
    std::vector<mapping::AccountRecord> matched;
    while (true) {
      ASSIGN_OR_RETURN(bool more, rows->Next());
      if (!more) break;
      ASSIGN_OR_RETURN(mapping::AccountRecord r, ReadMirrorRow(*rows));
      matched.push_back(std::move(r));
    }
    keep(std::move(matched));
  }
  std::vector<mapping::AccountRecord> out;
  out.reserve(found.size());
  for (auto& [key, user] : found) out.push_back(std::move(user));
  return out;
}

Result<std::int64_t> SqlMirror::ManagedCount() {
  std::lock_guard lock(s_.mu);
  return QueryInt(s_, "SELECT count(*) FROM managed", {}, 0);
}

Result<std::vector<ManagedUser>> SqlMirror::ManagedAmong(const std::vector<std::string>& user_ids) {
  std::lock_guard lock(s_.mu);
  std::vector<ManagedUser> out;
  for (std::size_t at = 0; at < user_ids.size(); at += kInChunk) {
    const std::size_t n = std::min(kInChunk, user_ids.size() - at);
    std::vector<Param> params;
    params.reserve(n);
    for (std::size_t i = 0; i < n; ++i) params.emplace_back(std::string_view(user_ids[at + i]));
    ASSIGN_OR_RETURN(
        std::unique_ptr<Rows> rows,
        s_.Query("SELECT user_id, email, how, since_ms FROM managed WHERE user_id IN (" +
                     Placeholders(1, n) + ") ORDER BY email, user_id",
                 std::span<const Param>(params)));
    while (true) {
      ASSIGN_OR_RETURN(bool more, rows->Next());
      if (!more) break;
      out.push_back(ManagedUser{rows->Text(0), rows->Text(1), rows->Text(2), rows->Int(3)});
    }
  }
  return out;
}

Status SqlMirror::SetManaged(const ManagedUser& user) {
  if (user.user_id.empty()) return InvalidArgumentError("managed user without an id");
  if (user.how != "invited" && user.how != "adopted") {
    return InvalidArgumentError("managed user " + user.user_id + ": how must be invited or " +
                                "adopted, not \"" + user.how + "\"");
  }
  std::lock_guard lock(s_.mu);
  return Fenced(s_,
                [&]() -> Status { return UpsertManagedRow(s_, user, /*keep_existing=*/false); });
}

Status SqlMirror::ForgetManaged(const std::string& user_id) {
  std::lock_guard lock(s_.mu);
  return Fenced(s_, [&]() -> Status { return DeleteManagedRow(s_, user_id); });
}

}  // namespace idsync::store::internal
