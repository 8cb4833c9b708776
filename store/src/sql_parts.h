// The store's parts (see idsync/store/store.h), one class per part, written
// once over a Session (sql_session.h) so that every backend shares them.
// All parts of one store share one session. Internal to the store.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "idsync/store/store.h"

#include "sql_rows.h"
#include "sql_session.h"

namespace idsync::store::internal {

class SqlRunLog final : public RunLog {
 public:
  explicit SqlRunLog(Session& s) : s_(s) {}
  Result<std::int64_t> BeginRun(const std::string& kind, std::int64_t at_ms) override;
  Status FinishRun(const RunRecord& run) override;
  Result<std::vector<RunRecord>> RecentRuns(int limit) override;
  Status CloseInterruptedRuns(std::int64_t at_ms) override;
  Status RequestRun(bool force, const std::string& by, std::int64_t at_ms) override;
  Result<RunRequests> TakeRunRequests() override;
  Result<HistoryPruned> PruneHistory(std::int64_t before_ms, int keep_runs) override;

 private:
  Session& s_;
};

class SqlOutbox final : public Outbox {
 public:
  explicit SqlOutbox(Session& s) : s_(s) {}
  Status Enqueue(std::vector<OutboxEntry>& entries) override;
  Result<std::vector<OutboxEntry>> Unfinished() override;
  Result<std::vector<OutboxEntry>> Failed(int limit) override;
  Status MarkSent(std::int64_t entry_id, std::int64_t at_ms) override;
  Status NoteError(std::int64_t entry_id, const std::string& error, std::int64_t at_ms) override;
  Result<std::string> Complete(const Completion& completion) override;
  Status Fail(std::int64_t entry_id, const std::string& error, std::int64_t at_ms) override;
  Status Drop(std::int64_t entry_id, std::int64_t at_ms) override;
  Result<std::int64_t> DropPlanned(std::int64_t at_ms) override;

 private:
  // Everything below expects s_.mu held.
  // The entry without its write decoded (entry.write left empty).
  Result<std::optional<OutboxEntry>> Load(std::int64_t id, std::string_view lock);
  // Runs `sql` ($1 = the entry id, then `more`) on an entry still planned or
  // sent; kNotFound / kFailedPrecondition otherwise.
  Status UpdateUnfinished(std::int64_t id, std::string_view action, std::string_view sql,
                          std::initializer_list<Param> params);

  Session& s_;
};

class SqlMirror final : public AccountMirror {
 public:
  explicit SqlMirror(Session& s) : s_(s) {}
  Status Replace(const std::vector<mapping::AccountRecord>& users, std::int64_t at_ms,
                 const std::vector<std::string>& keep) override;
  Result<std::vector<mapping::AccountRecord>> Users() override;
  Result<std::vector<ManagedUser>> Managed() override;
  Result<std::vector<mapping::AccountRecord>> UsersFor(
      const std::vector<std::string>& emails) override;
  Result<std::int64_t> ManagedCount() override;
  Result<std::vector<ManagedUser>> ManagedAmong(const std::vector<std::string>& user_ids) override;
  Status SetManaged(const ManagedUser& user) override;
  Status ForgetManaged(const std::string& user_id) override;

 private:
  Session& s_;
};

class SqlAudit final : public AuditLog {
 public:
  explicit SqlAudit(Session& s) : s_(s) {}
  Result<std::string> Append(AuditEntry& entry) override;
  Result<std::vector<AuditEntry>> Since(std::int64_t since_ms) override;
  Result<AuditCheck> Verify(const std::optional<std::string>& expected_head) override;
  Result<std::string> Head() override;

 private:
  Session& s_;
};

// The change log's rows of the writes staged in the open group, written
// together just before it commits (sql_resources.cc); guarded by the
// session.
struct PendingScimChanges {
  struct Row {
    std::string source;
    std::string type;
    std::string id;
  };
  std::vector<Row> rows;
};

class SqlScimResources final : public ScimResources {
 public:
  explicit SqlScimResources(Session& s) : s_(s) {}
  Status Put(const ScimResourceRow& row) override;
  Status PutIf(const ScimResourceRow& row, std::int64_t stored_version) override;
  Status Delete(const std::string& source, const std::string& type, const std::string& id) override;
  Result<std::unique_ptr<PendingWrite>> StagePutIf(const ScimResourceRow& row,
                                                   std::int64_t stored_version) override;
  Result<std::unique_ptr<PendingWrite>> StageDelete(const std::string& source,
                                                    const std::string& type,
                                                    const std::string& id) override;
  Result<std::vector<ScimResourceRow>> List(const std::string& source) override;
  Result<std::optional<ScimResourceRow>> Get(const std::string& source, const std::string& type,
                                             const std::string& id) override;
  Result<std::int64_t> LastChange() override;
  Result<ScimChangePage> ChangesSince(std::int64_t after, int limit) override;
  Result<std::unique_ptr<ScimChangeSignal>> Watch() override;

 private:
  Session& s_;
  PendingScimChanges pending_;
};

class SqlSourceState final : public SourceState {
 public:
  explicit SqlSourceState(Session& s) : s_(s) {}
  Status PutRead(const SourceRead& read) override;
  Result<std::optional<SourceRead>> GetRead(const std::string& source) override;
  Status PutHealth(const SourceHealth& health) override;
  Result<std::optional<SourceHealth>> GetHealth(const std::string& source) override;
  Status PutFeedState(const std::string& source, const std::string& key,
                      const std::string& value) override;
  Result<std::optional<std::string>> GetFeedState(const std::string& source,
                                                  const std::string& key) override;

 private:
  Session& s_;
};

class SqlConsoleSessions final : public ConsoleSessions {
 public:
  explicit SqlConsoleSessions(Session& s) : s_(s) {}
  Status Create(const ConsoleSession& session) override;
  Result<std::optional<ConsoleSession>> Get(const std::string& id_hash,
                                            std::int64_t now_ms) override;
  Status End(const std::string& id_hash) override;
  Result<std::int64_t> Prune(std::int64_t now_ms) override;

 private:
  Session& s_;
};

class SqlAccountCache final : public AccountCache {
 public:
  explicit SqlAccountCache(Session& s) : s_(s) {}
  Status PutCatalog(const mapping::Catalog& catalog) override;
  Result<std::optional<mapping::Catalog>> GetCatalog() override;
  Status PutProjects(const std::vector<mapping::Project>& projects) override;
  Result<std::optional<std::vector<mapping::Project>>> GetProjects() override;

 private:
  Status Put(std::string_view what, const std::string& value);
  Result<std::optional<std::string>> Get(std::string_view what);
  Session& s_;
};

// Row-level steps that run inside a caller's transaction (s.mu held), shared
// by the parts whose one transaction spans several tables.
Status UpsertMirrorRow(Session& s, const mapping::AccountRecord& user, std::int64_t at_ms);
Status DeleteMirrorRow(Session& s, const std::string& user_id);
// keep_existing: a user already managed keeps `how` and `since_ms`; only its
// address follows.
Status UpsertManagedRow(Session& s, const ManagedUser& user, bool keep_existing);
Status DeleteManagedRow(Session& s, const std::string& user_id);
// Appends `entry` to the chain; fills seq, prev_hash and hash. Returns the
// new head.
Result<std::string> AppendAuditRow(Session& s, AuditEntry& entry);

class SqlLease final : public Lease {
 public:
  explicit SqlLease(Session& s) : s_(s) {}
  Result<LeaseState> Acquire(const std::string& holder,
                             std::chrono::milliseconds duration) override;
  Status Release(const std::string& holder) override;
  Result<std::optional<LeaseState>> Current() override;

 private:
  Session& s_;
};

// Inside a transaction (s.mu held): OK when no fence is set or the lease
// still has the fence's holder and epoch (and keeps them until the
// transaction ends); otherwise the fence's error (lease.h).
Status CheckFence(Session& s);

// Runs `write` (returning Status or Result<T>) in a transaction that first
// checks the fence; with no fence set, as it is (s.mu held).
template <typename Write>
auto Fenced(Session& s, Write write) -> decltype(write()) {
  if (!s.fence) return write();
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(s));
  RETURN_IF_ERROR(CheckFence(s));
  auto result = write();
  if (!result.ok()) return result;
  RETURN_IF_ERROR(tx.Commit());
  return result;
}

// VerifyAuditChain over every row of `s`'s audit table (s.mu held).
Result<AuditCheck> VerifyAuditRows(Session& s, const std::optional<std::string>& expected_head);

// The parts of one store over one session; the lease over `lease_session`
// (the same session, or one of its own).
struct Parts {
  Parts(Session& s, Session& lease_session)
      : runs(s),
        outbox(s),
        mirror(s),
        audit(s),
        scim(s),
        sources(s),
        account_cache(s),
        console(s),
        lease(lease_session) {}
  SqlRunLog runs;
  SqlOutbox outbox;
  SqlMirror mirror;
  SqlAudit audit;
  SqlScimResources scim;
  SqlSourceState sources;
  SqlAccountCache account_cache;
  SqlConsoleSessions console;
  SqlLease lease;
};

// Every backend's Store: the parts over the sessions it is given, the
// lease over a session of its own or (when `lease_session` is null) the
// same one. CopyStore reads and writes the session directly.
class SqlStore final : public Store {
 public:
  SqlStore(std::unique_ptr<Session> session, std::unique_ptr<Session> lease_session)
      : session_(std::move(session)),
        lease_session_(std::move(lease_session)),
        parts_(*session_, lease_session_ ? *lease_session_ : *session_) {}

  RunLog& runs() override { return parts_.runs; }
  Outbox& outbox() override { return parts_.outbox; }
  AccountMirror& mirror() override { return parts_.mirror; }
  AuditLog& audit() override { return parts_.audit; }
  ScimResources& scim() override { return parts_.scim; }
  SourceState& sources() override { return parts_.sources; }
  AccountCache& account_cache() override { return parts_.account_cache; }
  ConsoleSessions& console_sessions() override { return parts_.console; }
  Lease& lease() override { return parts_.lease; }
  void SetFence(std::optional<Fence> fence) override {
    std::lock_guard lock(session_->mu);
    session_->fence = std::move(fence);
  }
  Session& session() { return *session_; }

 private:
  std::unique_ptr<Session> session_;
  std::unique_ptr<Session> lease_session_;
  Parts parts_;
};

}  // namespace idsync::store::internal
