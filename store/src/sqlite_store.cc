#include "sqlite_store.h"

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <optional>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit_hash.h"
#include "codec.h"
#include "schema.h"
#include "snapshot_codec.h"
#include "sqlite_db.h"

namespace idsync::store::sqlite {
namespace {

constexpr std::string_view kEntryColumns =
    "id, run_id, op, email, write_json, operation_json, source, priority, state, attempts, "
    "error, created_ms, updated_ms";
constexpr std::string_view kAuditColumns =
    "seq, at_ms, run_id, action, email, user_id, source, detail_json, prev_hash, hash";
constexpr std::string_view kRunColumns =
    "id, kind, started_ms, finished_ms, result, summary_json, audit_head, error";
constexpr std::string_view kMirrorColumns =
    "id, email, name, role, status, permissions_json, projects_json, created_at, updated_at";

// How many tampered rows and missing seqs VerifyAudit remembers when it looks
// for where a moved entry belongs; beyond that it reports what it has.
constexpr std::size_t kVerifyCap = 4096;

std::string Concat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view p : parts) out += p;
  return out;
}

std::optional<OutboxState> ParseOutboxState(std::string_view name) {
  for (OutboxState s : {OutboxState::kPlanned, OutboxState::kSent, OutboxState::kDone,
                        OutboxState::kFailed, OutboxState::kDropped}) {
    if (OutboxStateName(s) == name) return s;
  }
  return std::nullopt;
}

Result<OutboxEntry> ReadEntry(const Stmt& row) {
  OutboxEntry e;
  e.id = row.Int(0);
  e.run_id = row.Int(1);  // NULL (no run) reads as 0
  e.op = row.Text(2);
  e.email = row.Text(3);
  const std::string context = "outbox entry " + std::to_string(e.id);
  Result<mapping::AccountWrite> write = DecodeWrite(row.Text(4));
  if (!write.ok()) return write.status().WithContext(context);
  e.write = std::move(write).value();
  e.operation_json = row.Text(5);
  e.source = row.Text(6);
  e.priority = static_cast<int>(row.Int(7));
  std::string state = row.Text(8);
  std::optional<OutboxState> parsed = ParseOutboxState(state);
  if (!parsed) return InternalError(context + ": unknown state \"" + state + "\"");
  e.state = *parsed;
  e.attempts = static_cast<int>(row.Int(9));
  e.error = row.Text(10);
  e.created_ms = row.Int(11);
  e.updated_ms = row.Int(12);
  return e;
}

void ReadColumn(const Stmt& row, int column, std::int64_t& out) { out = row.Int(column); }
void ReadColumn(const Stmt& row, int column, std::string& out) { out = row.Text(column); }

// A T whose `fields` take the row's columns 0, 1, 2, ... in turn: the list
// follows the SELECT's column list, with no column numbers to keep in step.
template <typename T, typename... Fields>
T ReadFields(const Stmt& row, Fields T::*... fields) {
  T out;
  int column = 0;
  (ReadColumn(row, column++, out.*fields), ...);
  return out;
}

// Binds `values` to ?1, ?2, ... in turn.
template <typename... Values>
void BindAll(Stmt& stmt, const Values&... values) {
  int index = 0;
  (stmt.Bind(++index, values), ...);
}

// Steps `stmt` to its end and collects read(stmt) for every row; `read`
// returns a T, or a Result<T> whose first error stops the read.
template <typename T, typename Read>
Result<std::vector<T>> ReadRows(Stmt& stmt, Read read) {
  std::vector<T> rows;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    if constexpr (std::is_same_v<decltype(read(stmt)), T>) {
      rows.push_back(read(stmt));
    } else {
      ASSIGN_OR_RETURN(T value, read(stmt));
      rows.push_back(std::move(value));
    }
  }
  return rows;
}

// The fields in kAuditColumns order.
AuditEntry ReadAudit(const Stmt& row) {
  using A = AuditEntry;
  return ReadFields<A>(row, &A::seq, &A::at_ms, &A::run_id, &A::action, &A::email, &A::user_id,
                       &A::source, &A::detail_json, &A::prev_hash, &A::hash);
}

// The fields in kRunColumns order.
RunRecord ReadRun(const Stmt& row) {
  using R = RunRecord;
  return ReadFields<R>(row, &R::id, &R::kind, &R::started_ms, &R::finished_ms, &R::result,
                       &R::summary_json, &R::audit_head, &R::error);
}

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

// The first thing found wrong while walking the chain in seq order.
struct AuditFinding {
  enum class Kind { kNone, kGap, kContent, kLink };
  Kind kind = Kind::kNone;
  std::int64_t seq = 0;      // the first missing seq (kGap) or the bad row's seq
  std::int64_t gap_end = 0;  // kGap: the last missing seq
  AuditEntry row;            // kContent, kLink: the row as stored
};

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(DbPtr db) : db_(std::move(db)) {}

  Result<std::int64_t> BeginRun(const std::string& kind, std::int64_t at_ms) override;
  Status FinishRun(const RunRecord& run) override;
  Result<std::vector<RunRecord>> RecentRuns(int limit) override;
  Status CloseInterruptedRuns(std::int64_t at_ms) override;

  Status Enqueue(std::vector<OutboxEntry>& entries) override;
  Result<std::vector<OutboxEntry>> Unfinished() override;
  Result<std::vector<OutboxEntry>> Failed(int limit) override;
  Status MarkSent(std::int64_t entry_id, std::int64_t at_ms) override;
  Status NoteError(std::int64_t entry_id, const std::string& error, std::int64_t at_ms) override;
  Result<std::string> Complete(const Completion& completion) override;
  Status Fail(std::int64_t entry_id, const std::string& error, std::int64_t at_ms) override;
  Result<std::int64_t> DropPlanned(std::int64_t at_ms) override;

  Status ReplaceMirror(const std::vector<mapping::AccountRecord>& users,
                       std::int64_t at_ms) override;
  Result<std::vector<mapping::AccountRecord>> Mirror() override;
  Result<std::vector<ManagedUser>> ManagedUsers() override;
  Status SetManaged(const ManagedUser& user) override;
  Status ForgetManaged(const std::string& user_id) override;

  Result<std::string> AppendAudit(AuditEntry& entry) override;
  Result<std::vector<AuditEntry>> Audit(std::int64_t since_ms) override;
  Result<AuditCheck> VerifyAudit(const std::optional<std::string>& expected_head) override;
  Result<std::string> AuditHead() override;

  Status PutMeta(const std::string& key, const std::string& value) override;
  Result<std::optional<std::string>> GetMeta(const std::string& key) override;

  Status PutScimResource(const ScimResourceRow& row) override;
  Status DeleteScimResource(const std::string& source, const std::string& type,
                            const std::string& id) override;
  Result<std::vector<ScimResourceRow>> ScimResources(const std::string& source) override;

  Status PutSourceRead(const SourceRead& read) override;
  Result<std::optional<SourceRead>> GetSourceRead(const std::string& source) override;

 private:
  // Everything below expects mu_ held.
  sqlite3* db() { return db_.get(); }

  Result<std::vector<OutboxEntry>> SelectEntries(std::string_view where_order_limit,
                                                 std::optional<std::int64_t> param);
  Result<std::optional<OutboxEntry>> LoadEntry(std::int64_t id);
  // Runs an UPDATE of one unfinished outbox entry (bound by `bind`); when it
  // changed nothing, says why: kNotFound or kFailedPrecondition.
  template <typename Bind>
  Status UpdateUnfinished(std::int64_t id, std::string_view action, const char* sql, Bind bind);
  Status UpsertManaged(const std::string& user_id, const std::string& email, std::string_view how,
                       std::int64_t since_ms, bool keep_existing);
  // Appends inside the caller's transaction; fills seq, prev_hash and hash.
  Result<std::string> AppendAuditRow(AuditEntry& entry);
  Result<std::string> Head();
  Result<std::optional<AuditEntry>> AuditRow(std::int64_t seq);
  Result<bool> HashStored(const std::string& hash);
  Status Classify(AuditCheck& check, const AuditFinding& finding,
                  const std::vector<std::int64_t>& tampered,
                  const std::vector<std::pair<std::int64_t, std::int64_t>>& gaps);

  std::mutex mu_;
  DbPtr db_;
};

// --- runs ---

Result<std::int64_t> SqliteStore::BeginRun(const std::string& kind, std::int64_t at_ms) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Stmt stmt,
                   Stmt::Prepare(db(), "INSERT INTO runs (kind, started_ms) VALUES (?1, ?2)"));
  stmt.Bind(1, kind).Bind(2, at_ms);
  RETURN_IF_ERROR(stmt.Run().WithContext("begin run"));
  return static_cast<std::int64_t>(sqlite3_last_insert_rowid(db()));
}

Status SqliteStore::FinishRun(const RunRecord& run) {
  if (run.result.empty()) {
    return InvalidArgumentError("run " + std::to_string(run.id) +
                                ": a finished run needs a result");
  }
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(db(),
                                            "UPDATE runs SET finished_ms = ?2, result = ?3, "
                                            "summary_json = ?4, audit_head = ?5, error = ?6 "
                                            "WHERE id = ?1"));
  BindAll(stmt, run.id, run.finished_ms, run.result, run.summary_json, run.audit_head, run.error);
  RETURN_IF_ERROR(stmt.Run().WithContext("finish run"));
  if (sqlite3_changes(db()) == 0) return NotFoundError("no run " + std::to_string(run.id));
  return Status::Ok();
}

Result<std::vector<RunRecord>> SqliteStore::RecentRuns(int limit) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Stmt stmt,
                   Stmt::Prepare(db(), Concat({"SELECT ", kRunColumns,
                                               " FROM runs ORDER BY id DESC LIMIT ?1"})));
  stmt.Bind(1, static_cast<std::int64_t>(limit > 0 ? limit : -1));  // -1: no limit
  return ReadRows<RunRecord>(stmt, ReadRun);
}

Status SqliteStore::CloseInterruptedRuns(std::int64_t at_ms) {
  std::lock_guard lock(mu_);
  // A run's result is "" exactly while it runs (FinishRun refuses "").
  ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(db(),
                                            "UPDATE runs SET finished_ms = ?1, result = 'stopped', "
                                            "error = CASE WHEN error = '' THEN 'interrupted' "
                                            "ELSE error END WHERE result = ''"));
  stmt.Bind(1, at_ms);
  return stmt.Run().WithContext("close interrupted runs");
}

// --- outbox ---

Status SqliteStore::Enqueue(std::vector<OutboxEntry>& entries) {
  // Everything that can be checked without the file is checked first.
  std::vector<std::string> writes;
  writes.reserve(entries.size());
  for (const OutboxEntry& e : entries) {
    if (e.write.idempotency_key.empty()) {
      return InvalidArgumentError("outbox entry for " + e.email + ": empty idempotency key");
    }
    Result<std::string> json = EncodeWrite(e.write);
    if (!json.ok()) return json.status().WithContext("outbox entry for " + e.email);
    writes.push_back(std::move(json).value());
  }

  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db()));
  ASSIGN_OR_RETURN(
      Stmt stmt,
      Stmt::Prepare(
          db(),
          "INSERT INTO outbox (run_id, op, email, idempotency_key, write_json, "
          "operation_json, source, priority, state, attempts, error, created_ms, "
          "updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'planned', 0, '', ?9, ?9)"));
  std::vector<std::int64_t> ids;
  ids.reserve(entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const OutboxEntry& e = entries[i];
    if (e.run_id == 0) {
      stmt.BindNull(1);
    } else {
      stmt.Bind(1, e.run_id);
    }
    stmt.Bind(2, e.op)
        .Bind(3, e.email)
        .Bind(4, e.write.idempotency_key)
        .Bind(5, writes[i])
        .Bind(6, e.operation_json)
        .Bind(7, e.source)
        .Bind(8, static_cast<std::int64_t>(e.priority))
        .Bind(9, e.created_ms);
    Status status = stmt.Run();
    if (status.code() == StatusCode::kAlreadyExists) {
      return AlreadyExistsError("idempotency key \"" + e.write.idempotency_key +
                                "\" is already in the outbox (" + e.op + " " + e.email + ")");
    }
    RETURN_IF_ERROR(status.WithContext("enqueue " + e.op + " " + e.email));
    ids.push_back(static_cast<std::int64_t>(sqlite3_last_insert_rowid(db())));
  }
  RETURN_IF_ERROR(tx.Commit());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    OutboxEntry& e = entries[i];
    e.id = ids[i];
    e.state = OutboxState::kPlanned;
    e.attempts = 0;
    e.error.clear();
    e.updated_ms = e.created_ms;
  }
  return Status::Ok();
}

Result<std::vector<OutboxEntry>> SqliteStore::SelectEntries(std::string_view where_order_limit,
                                                            std::optional<std::int64_t> param) {
  ASSIGN_OR_RETURN(
      Stmt stmt,
      Stmt::Prepare(db(), Concat({"SELECT ", kEntryColumns, " FROM outbox ", where_order_limit})));
  if (param) stmt.Bind(1, *param);
  return ReadRows<OutboxEntry>(stmt, ReadEntry);
}

Result<std::optional<OutboxEntry>> SqliteStore::LoadEntry(std::int64_t id) {
  ASSIGN_OR_RETURN(std::vector<OutboxEntry> found, SelectEntries("WHERE id = ?1", id));
  if (found.empty()) return std::optional<OutboxEntry>();
  return std::optional<OutboxEntry>(std::move(found.front()));
}

Result<std::vector<OutboxEntry>> SqliteStore::Unfinished() {
  std::lock_guard lock(mu_);
  return SelectEntries("WHERE state IN ('planned', 'sent') ORDER BY priority DESC, id",
                       std::nullopt);
}

Result<std::vector<OutboxEntry>> SqliteStore::Failed(int limit) {
  std::lock_guard lock(mu_);
  return SelectEntries("WHERE state = 'failed' ORDER BY updated_ms DESC, id DESC LIMIT ?1",
                       limit > 0 ? limit : -1);
}

template <typename Bind>
Status SqliteStore::UpdateUnfinished(std::int64_t id, std::string_view action, const char* sql,
                                     Bind bind) {
  ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(db(), sql));
  stmt.Bind(1, id);
  bind(stmt);
  RETURN_IF_ERROR(stmt.Run().WithContext(std::string(action)));
  if (sqlite3_changes(db()) > 0) return Status::Ok();
  ASSIGN_OR_RETURN(std::optional<OutboxEntry> entry, LoadEntry(id));
  if (!entry) return NotFoundError("no outbox entry " + std::to_string(id));
  return FailedPreconditionError("cannot " + std::string(action) + " outbox entry " +
                                 std::to_string(id) + ": it is " +
                                 std::string(OutboxStateName(entry->state)));
}

Status SqliteStore::MarkSent(std::int64_t entry_id, std::int64_t at_ms) {
  std::lock_guard lock(mu_);
  return UpdateUnfinished(entry_id, "mark sent",
                          "UPDATE outbox SET state = 'sent', attempts = attempts + 1, "
                          "updated_ms = ?2 WHERE id = ?1 AND state IN ('planned', 'sent')",
                          [&](Stmt& s) { s.Bind(2, at_ms); });
}

Status SqliteStore::NoteError(std::int64_t entry_id, const std::string& error, std::int64_t at_ms) {
  std::lock_guard lock(mu_);
  return UpdateUnfinished(entry_id, "note an error on",
                          "UPDATE outbox SET error = ?2, updated_ms = ?3 "
                          "WHERE id = ?1 AND state IN ('planned', 'sent')",
                          [&](Stmt& s) { s.Bind(2, error).Bind(3, at_ms); });
}

Status SqliteStore::Fail(std::int64_t entry_id, const std::string& error, std::int64_t at_ms) {
  std::lock_guard lock(mu_);
  return UpdateUnfinished(entry_id, "fail",
                          "UPDATE outbox SET state = 'failed', error = ?2, updated_ms = ?3 "
                          "WHERE id = ?1 AND state IN ('planned', 'sent')",
                          [&](Stmt& s) { s.Bind(2, error).Bind(3, at_ms); });
}

Result<std::int64_t> SqliteStore::DropPlanned(std::int64_t at_ms) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(db(),
                                            "UPDATE outbox SET state = 'dropped', updated_ms = ?1 "
                                            "WHERE state = 'planned'"));
  stmt.Bind(1, at_ms);
  RETURN_IF_ERROR(stmt.Run().WithContext("drop planned entries"));
  return static_cast<std::int64_t>(sqlite3_changes64(db()));
}

Status SqliteStore::UpsertManaged(const std::string& user_id, const std::string& email,
                                  std::string_view how, std::int64_t since_ms, bool keep_existing) {
  // After a write, a user already managed keeps how and since when idsync
  // took it on; only its address follows the account.
  const char* sql =
      keep_existing
          ? "INSERT INTO managed (user_id, email, how, since_ms) VALUES (?1, ?2, ?3, ?4) "
            "ON CONFLICT (user_id) DO UPDATE SET email = excluded.email"
          : "INSERT INTO managed (user_id, email, how, since_ms) VALUES (?1, ?2, ?3, ?4) "
            "ON CONFLICT (user_id) DO UPDATE SET email = excluded.email, how = excluded.how, "
            "since_ms = excluded.since_ms";
  ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(db(), sql));
  stmt.Bind(1, user_id).Bind(2, email).Bind(3, how).Bind(4, since_ms);
  return stmt.Run().WithContext("record managed user " + user_id);
}

Result<std::string> SqliteStore::Complete(const Completion& c) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db()));
  ASSIGN_OR_RETURN(std::optional<OutboxEntry> found, LoadEntry(c.entry_id));
  if (!found) return NotFoundError("no outbox entry " + std::to_string(c.entry_id));
  const OutboxEntry& entry = *found;
  if (entry.state != OutboxState::kPlanned && entry.state != OutboxState::kSent) {
    return FailedPreconditionError("cannot complete outbox entry " + std::to_string(entry.id) +
                                   ": it is " + std::string(OutboxStateName(entry.state)));
  }
  std::string user_id = c.user_id;
  if (user_id.empty() && c.user) user_id = c.user->id;
  if (user_id.empty()) user_id = entry.write.user_id;
  if (user_id.empty()) {
    return InvalidArgumentError("completion of outbox entry " + std::to_string(entry.id) +
                                " names no account user");
  }

  {
    ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(db(),
                                              "UPDATE outbox SET state = 'done', updated_ms = ?2 "
                                              "WHERE id = ?1"));
    stmt.Bind(1, entry.id).Bind(2, c.at_ms);
    RETURN_IF_ERROR(stmt.Run().WithContext("complete outbox entry"));
  }
  if (c.user) {
    ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(db(), kUpsertMirror));
    mapping::AccountRecord user = *c.user;
    if (user.id.empty()) user.id = user_id;
    RETURN_IF_ERROR(BindMirrorRow(stmt, user, c.at_ms));
    RETURN_IF_ERROR(stmt.Run().WithContext("update mirror"));
  } else {
    ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(db(), "DELETE FROM mirror WHERE id = ?1"));
    stmt.Bind(1, user_id);
    RETURN_IF_ERROR(stmt.Run().WithContext("update mirror"));
  }
  const std::string& email = c.user ? c.user->email : entry.email;
  if (entry.write.kind == mapping::AccountWrite::Kind::kDelete) {
    ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(db(), "DELETE FROM managed WHERE user_id = ?1"));
    stmt.Bind(1, user_id);
    RETURN_IF_ERROR(stmt.Run().WithContext("forget managed user"));
  } else if (c.adopted) {
    RETURN_IF_ERROR(UpsertManaged(user_id, email, "adopted", c.at_ms, /*keep_existing=*/true));
  } else if (entry.write.kind == mapping::AccountWrite::Kind::kInvite) {
    RETURN_IF_ERROR(UpsertManaged(user_id, email, "invited", c.at_ms, /*keep_existing=*/true));
  }

  AuditEntry audit;
  audit.at_ms = c.at_ms;
  audit.run_id = entry.run_id;
  audit.action = c.action.empty() ? entry.op : c.action;
  audit.email = entry.email;
  audit.user_id = user_id;
  audit.source = entry.source;
  audit.detail_json = entry.operation_json;
  ASSIGN_OR_RETURN(std::string head, AppendAuditRow(audit));
  RETURN_IF_ERROR(tx.Commit());
  return head;
}

// --- mirror and managed users ---

Status SqliteStore::ReplaceMirror(const std::vector<mapping::AccountRecord>& users,
                                  std::int64_t at_ms) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db()));
  RETURN_IF_ERROR(Exec(db(), "DELETE FROM mirror").WithContext("replace mirror"));
  ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(db(), kInsertMirror));
  for (const mapping::AccountRecord& user : users) {
    RETURN_IF_ERROR(BindMirrorRow(stmt, user, at_ms).WithContext("mirror user " + user.id));
    Status status = stmt.Run();
    if (status.code() == StatusCode::kAlreadyExists) {
      return InvalidArgumentError("replace mirror: user id \"" + user.id + "\" appears twice");
    }
    RETURN_IF_ERROR(status.WithContext("replace mirror"));
  }
  return tx.Commit();
}

Result<std::vector<mapping::AccountRecord>> SqliteStore::Mirror() {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(
      Stmt stmt,
      Stmt::Prepare(db(), Concat({"SELECT ", kMirrorColumns, " FROM mirror ORDER BY email, id"})));
  return ReadRows<mapping::AccountRecord>(stmt, ReadMirrorRow);
}

Result<std::vector<ManagedUser>> SqliteStore::ManagedUsers() {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(db(),
                                            "SELECT user_id, email, how, since_ms FROM managed "
                                            "ORDER BY email, user_id"));
  return ReadRows<ManagedUser>(stmt, [](const Stmt& row) {
    return ManagedUser{row.Text(0), row.Text(1), row.Text(2), row.Int(3)};
  });
}

Status SqliteStore::SetManaged(const ManagedUser& user) {
  if (user.user_id.empty()) return InvalidArgumentError("managed user without an id");
  if (user.how != "invited" && user.how != "adopted") {
    return InvalidArgumentError("managed user " + user.user_id + ": how must be invited or " +
                                "adopted, not \"" + user.how + "\"");
  }
  std::lock_guard lock(mu_);
  return UpsertManaged(user.user_id, user.email, user.how, user.since_ms,
                       /*keep_existing=*/false);
}

Status SqliteStore::ForgetManaged(const std::string& user_id) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(db(), "DELETE FROM managed WHERE user_id = ?1"));
  stmt.Bind(1, user_id);
  return stmt.Run().WithContext("forget managed user " + user_id);
}

// --- audit ---

Result<std::string> SqliteStore::Head() {
  ASSIGN_OR_RETURN(Stmt stmt,
                   Stmt::Prepare(db(), "SELECT hash FROM audit ORDER BY seq DESC LIMIT 1"));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  return row ? stmt.Text(0) : std::string();
}

Result<std::string> SqliteStore::AppendAuditRow(AuditEntry& entry) {
  {
    ASSIGN_OR_RETURN(Stmt stmt,
                     Stmt::Prepare(db(), "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"));
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    entry.seq = row ? stmt.Int(0) + 1 : 1;
    entry.prev_hash = row ? stmt.Text(1) : std::string();
  }
  ASSIGN_OR_RETURN(entry.hash, AuditHash(entry));
  ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(db(), Concat({"INSERT INTO audit (", kAuditColumns,
                                                          ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                                                          "?7, ?8, ?9, ?10)"})));
  BindAll(stmt, entry.seq, entry.at_ms, entry.run_id, entry.action, entry.email, entry.user_id,
          entry.source, entry.detail_json, entry.prev_hash, entry.hash);
  RETURN_IF_ERROR(stmt.Run().WithContext("append audit entry"));
  return entry.hash;
}

Result<std::string> SqliteStore::AppendAudit(AuditEntry& entry) {
  std::lock_guard lock(mu_);
  AuditEntry appended = entry;
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db()));
  ASSIGN_OR_RETURN(std::string head, AppendAuditRow(appended));
  RETURN_IF_ERROR(tx.Commit());
  entry = std::move(appended);
  return head;
}

Result<std::vector<AuditEntry>> SqliteStore::Audit(std::int64_t since_ms) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Stmt stmt,
                   Stmt::Prepare(db(), Concat({"SELECT ", kAuditColumns,
                                               " FROM audit WHERE at_ms >= ?1 ORDER BY seq"})));
  stmt.Bind(1, since_ms);
  return ReadRows<AuditEntry>(stmt, ReadAudit);
}

Result<std::string> SqliteStore::AuditHead() {
  std::lock_guard lock(mu_);
  return Head();
}

Result<std::optional<AuditEntry>> SqliteStore::AuditRow(std::int64_t seq) {
  ASSIGN_OR_RETURN(
      Stmt stmt,
      Stmt::Prepare(db(), Concat({"SELECT ", kAuditColumns, " FROM audit WHERE seq = ?1"})));
  stmt.Bind(1, seq);
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<AuditEntry>();
  return std::optional<AuditEntry>(ReadAudit(stmt));
}

Result<bool> SqliteStore::HashStored(const std::string& hash) {
  ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(db(), "SELECT 1 FROM audit WHERE hash = ?1 LIMIT 1"));
  stmt.Bind(1, hash);
  return stmt.Step();
}

// An entry's hash covers its seq, so an intact entry moved to another seq
// (rows swapped, renumbered) fails its hash where it is now but matches at
// the seq it was written with. The places it can have come from are the
// other rows that fail and the seqs now missing; those are tried to tell a
// reordering from an edit. Whether the entry it was chained to still exists
// tells a reordering from a removal with renumbering.
Status SqliteStore::Classify(AuditCheck& check, const AuditFinding& finding,
                             const std::vector<std::int64_t>& tampered,
                             const std::vector<std::pair<std::int64_t, std::int64_t>>& gaps) {
  using Kind = AuditFinding::Kind;
  check.ok = false;
  check.bad_seq = finding.seq;
  const std::string seq = std::to_string(finding.seq);
  auto written_at = [](AuditEntry row, std::int64_t at_seq) -> Result<bool> {
    row.seq = at_seq;
    ASSIGN_OR_RETURN(std::string hash, AuditHash(row));
    return hash == row.hash;
  };

  switch (finding.kind) {
    case Kind::kNone:
      check.ok = true;
      check.bad_seq = 0;
      return Status::Ok();

    case Kind::kContent: {
      std::vector<std::int64_t> candidates;
      for (std::int64_t s : tampered) {
        if (s != finding.seq) candidates.push_back(s);
      }
      for (const auto& [from, to] : gaps) {
        for (std::int64_t s = from; s <= to && candidates.size() < 2 * kVerifyCap; ++s) {
          candidates.push_back(s);
        }
      }
      std::optional<std::int64_t> origin;
      for (std::int64_t s : candidates) {
        ASSIGN_OR_RETURN(bool match, written_at(finding.row, s));
        if (match) {
          origin = s;
          break;
        }
      }
      if (!origin) {
        check.problem = "edited";
        check.message = "audit entry " + seq + " was edited: its hash does not match its contents";
        return Status::Ok();
      }
      bool chained_to_existing = false;
      if (finding.row.prev_hash.empty()) {
        chained_to_existing = *origin == 1;
      } else {
        ASSIGN_OR_RETURN(chained_to_existing, HashStored(finding.row.prev_hash));
      }
      const std::string written = std::to_string(*origin);
      if (chained_to_existing) {
        check.problem = "reordered";
        check.message = "audit entry " + seq + " is out of order: it was written as entry " +
                        written + " (entries were swapped or moved)";
      } else {
        check.problem = "removed";
        check.message = "audit entry " + seq + " was written as entry " + written +
                        " and the entry before it is missing: entries were removed and the "
                        "rest renumbered";
      }
      return Status::Ok();
    }

    case Kind::kGap: {
      // Did a failing row come from the first missing seq? Then it moved.
      for (std::int64_t s : tampered) {
        ASSIGN_OR_RETURN(std::optional<AuditEntry> row, AuditRow(s));
        if (!row) continue;
        ASSIGN_OR_RETURN(bool match, written_at(*row, finding.seq));
        if (match) {
          check.problem = "reordered";
          check.message =
              "audit entry " + seq + " is out of order: it was moved to seq " + std::to_string(s);
          return Status::Ok();
        }
      }
      check.problem = "removed";
      check.message =
          finding.gap_end > finding.seq
              ? "audit entries " + seq + " to " + std::to_string(finding.gap_end) + " were removed"
              : "audit entry " + seq + " was removed";
      return Status::Ok();
    }

    case Kind::kLink: {
      bool chained_to_existing = false;
      if (!finding.row.prev_hash.empty()) {
        ASSIGN_OR_RETURN(chained_to_existing, HashStored(finding.row.prev_hash));
      }
      if (chained_to_existing) {
        check.problem = "reordered";
        check.message = "audit entry " + seq +
                        " does not follow the entry before it: it was chained to another "
                        "entry (entries were reordered)";
      } else {
        check.problem = "removed";
        check.message = "audit entry " + seq +
                        " does not follow the entry before it: the entry it was chained to is "
                        "missing (removed, or replaced by a rewritten one)";
      }
      return Status::Ok();
    }
  }
  return Status::Ok();
}

Result<AuditCheck> SqliteStore::VerifyAudit(const std::optional<std::string>& expected_head) {
  std::lock_guard lock(mu_);
  AuditCheck check;
  AuditFinding first;
  std::vector<std::int64_t> tampered;                       // rows whose hash fails
  std::vector<std::pair<std::int64_t, std::int64_t>> gaps;  // missing seq ranges
  bool head_seen = false;
  {
    // One statement reads one consistent snapshot of the chain.
    ASSIGN_OR_RETURN(
        Stmt stmt,
        Stmt::Prepare(db(), Concat({"SELECT ", kAuditColumns, " FROM audit ORDER BY seq"})));
    std::int64_t expected_seq = 1;
    std::string prev_hash;
    auto note = [&first](AuditFinding::Kind kind, std::int64_t seq, std::int64_t gap_end,
                         const AuditEntry& row) {
      if (first.kind != AuditFinding::Kind::kNone) return;
      first.kind = kind;
      first.seq = seq;
      first.gap_end = gap_end;
      first.row = row;
    };
    while (true) {
      ASSIGN_OR_RETURN(bool has_row, stmt.Step());
      if (!has_row) break;
      AuditEntry row = ReadAudit(stmt);
      ++check.entries;
      if (row.seq > expected_seq) {
        if (gaps.size() < kVerifyCap) gaps.emplace_back(expected_seq, row.seq - 1);
        note(AuditFinding::Kind::kGap, expected_seq, row.seq - 1, AuditEntry());
      }
      ASSIGN_OR_RETURN(std::string hash, AuditHash(row));
      if (hash != row.hash) {
        if (tampered.size() < kVerifyCap) tampered.push_back(row.seq);
        note(AuditFinding::Kind::kContent, row.seq, 0, row);
      } else if (row.prev_hash != prev_hash) {
        note(AuditFinding::Kind::kLink, row.seq, 0, row);
      }
      if (expected_head && row.hash == *expected_head) head_seen = true;
      expected_seq = std::max(expected_seq, row.seq + 1);
      prev_hash = row.hash;
      check.head = std::move(row.hash);
    }
  }
  if (first.kind != AuditFinding::Kind::kNone) {
    RETURN_IF_ERROR(Classify(check, first, tampered, gaps));
    return check;
  }
  // The chain is whole. A head kept elsewhere must still be in it: at the end,
  // or earlier when entries were appended since it was taken. Anywhere else
  // the end was cut off or rewritten.
  if (expected_head && !expected_head->empty() && !head_seen) {
    check.ok = false;
    check.bad_seq = 0;
    check.problem = "cut off";
    check.message = "the audit chain (" + std::to_string(check.entries) +
                    " entries) does not contain the expected head " + *expected_head +
                    ": entries at its end were cut off or rewritten";
  }
  return check;
}

// --- metadata ---

Status SqliteStore::PutMeta(const std::string& key, const std::string& value) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(db(),
                                            "INSERT INTO meta (key, value) VALUES (?1, ?2) "
                                            "ON CONFLICT (key) DO UPDATE SET value = "
                                            "excluded.value"));
  stmt.Bind(1, key).Bind(2, value);
  return stmt.Run().WithContext("put meta " + key);
}

Result<std::optional<std::string>> SqliteStore::GetMeta(const std::string& key) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(db(), "SELECT value FROM meta WHERE key = ?1"));
  stmt.Bind(1, key);
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(stmt.Text(0));
}

Status SqliteStore::PutScimResource(const ScimResourceRow& row) {
  if (row.source.empty() || row.id.empty()) {
    return InvalidArgumentError("SCIM resource without a source or an id");
  }
  if (row.type != "User" && row.type != "Group") {
    return InvalidArgumentError("SCIM resource type must be User or Group, not \"" + row.type +
                                "\"");
  }
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(
      Stmt stmt,
      Stmt::Prepare(db(),
                    "INSERT INTO scim_resources (source, type, id, json, version, updated_ms) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (source, type, id) DO UPDATE "
                    "SET json = excluded.json, version = excluded.version, "
                    "updated_ms = excluded.updated_ms"));
  BindAll(stmt, row.source, row.type, row.id, row.json, row.version, row.updated_ms);
  return stmt.Run().WithContext("store SCIM " + row.type + " " + row.id);
}

Status SqliteStore::DeleteScimResource(const std::string& source, const std::string& type,
                                       const std::string& id) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(db(),
                                            "DELETE FROM scim_resources WHERE source = ?1 AND "
                                            "type = ?2 AND id = ?3"));
  stmt.Bind(1, source).Bind(2, type).Bind(3, id);
  return stmt.Run().WithContext("delete SCIM " + type + " " + id);
}

Result<std::vector<ScimResourceRow>> SqliteStore::ScimResources(const std::string& source) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Stmt stmt,
                   Stmt::Prepare(db(),
                                 "SELECT type, id, json, version, updated_ms FROM scim_resources "
                                 "WHERE source = ?1 ORDER BY type, id"));
  stmt.Bind(1, source);
  return ReadRows<ScimResourceRow>(stmt, [&source](const Stmt& row) {
    using R = ScimResourceRow;
    R r = ReadFields<R>(row, &R::type, &R::id, &R::json, &R::version, &R::updated_ms);
    r.source = source;
    return r;
  });
}

Status SqliteStore::PutSourceRead(const SourceRead& read) {
  if (read.snapshot.source.empty()) return InvalidArgumentError("source read without a source");
  // Encoded outside the lock: a large directory takes a moment.
  std::string bytes = EncodeSnapshot(read.snapshot);
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Stmt stmt,
                   Stmt::Prepare(db(),
                                 "INSERT INTO source_reads (source, read_ms, snapshot) VALUES "
                                 "(?1, ?2, ?3) ON CONFLICT (source) DO UPDATE SET "
                                 "read_ms = excluded.read_ms, snapshot = excluded.snapshot"));
  stmt.Bind(1, read.snapshot.source).Bind(2, read.read_ms).BindBlob(3, bytes);
  return stmt.Run().WithContext("store the last good read of " + read.snapshot.source);
}

Result<std::optional<SourceRead>> SqliteStore::GetSourceRead(const std::string& source) {
  std::string bytes;
  std::int64_t read_ms = 0;
  {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(
        Stmt stmt,
        Stmt::Prepare(db(), "SELECT read_ms, snapshot FROM source_reads WHERE source = ?1"));
    stmt.Bind(1, source);
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return std::optional<SourceRead>();
    read_ms = stmt.Int(0);
    bytes = stmt.Blob(1);
  }
  ASSIGN_OR_RETURN(mapping::SourceSnapshot snapshot, DecodeSnapshot(bytes));
  if (snapshot.source != source) {
    return InternalError("stored read of source " + source + " names another source (" +
                         snapshot.source + ")");
  }
  SourceRead read;
  read.snapshot = std::move(snapshot);
  read.read_ms = read_ms;
  return std::optional<SourceRead>(std::move(read));
}

// Creates a missing file with mode 0600 before SQLite opens it, since SQLite
// would create it with 0644 (less the umask); the -wal and -shm files SQLite
// adds later take the database file's mode. The directory is not created: a
// missing one is a configuration mistake to report.
Status CreatePrivateFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return UnavailableError("store " + path + " is a directory");
    return Status::Ok();
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return Status::Ok();  // another process just created it
    return UnavailableError("cannot create store " + path + ": " +
                            std::error_code(errno, std::generic_category()).message());
  }
  ::close(fd);
  return Status::Ok();
}

Result<std::string> PragmaText(sqlite3* db, const char* sql) {
  ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(db, sql));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  return row ? stmt.Text(0) : std::string();
}

}  // namespace

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path) {
  RETURN_IF_ERROR(CreatePrivateFile(path));
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK) return Error(raw, rc, "cannot open store " + path);
  const std::string context = "store " + path;
  sqlite3_extended_result_codes(db.get(), 1);
  // SQLite falls back to read-only when the file is not writable; idsync
  // needs to write, so say so now rather than at the first write.
  if (sqlite3_db_readonly(db.get(), "main") == 1) {
    return UnavailableError(context + " is not writable");
  }
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);
  Result<std::string> mode = PragmaText(db.get(), "PRAGMA journal_mode = WAL");
  if (!mode.ok()) return mode.status().WithContext(context);
  if (*mode != "wal") {
    return UnavailableError(context + ": cannot use write-ahead logging (journal mode " + *mode +
                            ")");
  }
  // FULL: a committed transaction survives a power loss, not only a crash of
  // the process. The outbox depends on it.
  RETURN_IF_ERROR(Exec(db.get(), "PRAGMA synchronous = FULL").WithContext(context));
  RETURN_IF_ERROR(Exec(db.get(), "PRAGMA foreign_keys = ON").WithContext(context));
  RETURN_IF_ERROR(ApplyMigrations(db.get(), Migrations()).WithContext(context));
  return std::unique_ptr<Store>(std::make_unique<SqliteStore>(std::move(db)));
}

}  // namespace idsync::store::sqlite
