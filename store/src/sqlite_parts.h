// The SQLite store's parts (see idsync/store/store.h), one class per part,
// all on one shared Connection. Internal to the store.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "idsync/store/store.h"

#include "sqlite_rows.h"

namespace idsync::store::sqlite {

class SqliteRunLog final : public RunLog {
 public:
  explicit SqliteRunLog(Connection& c) : c_(c) {}
  Result<std::int64_t> BeginRun(const std::string& kind, std::int64_t at_ms) override;
  Status FinishRun(const RunRecord& run) override;
  Result<std::vector<RunRecord>> RecentRuns(int limit) override;
  Status CloseInterruptedRuns(std::int64_t at_ms) override;

 private:
  Connection& c_;
};

class SqliteOutbox final : public Outbox {
 public:
  explicit SqliteOutbox(Connection& c) : c_(c) {}
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
  // Everything below expects c_.mu held.
  Result<std::vector<OutboxEntry>> Select(std::string_view where_order_limit,
                                          std::optional<std::int64_t> param);
  Result<std::optional<OutboxEntry>> Load(std::int64_t id);
  // Runs `sql` (?1 = the entry id, further parameters bound by `bind`) on an
  // entry still planned or sent; kNotFound / kFailedPrecondition otherwise.
  template <typename Bind>
  Status UpdateUnfinished(std::int64_t id, std::string_view action, const char* sql, Bind bind);

  Connection& c_;
};

class SqliteMirror final : public AccountMirror {
 public:
  explicit SqliteMirror(Connection& c) : c_(c) {}
  Status Replace(const std::vector<mapping::AccountRecord>& users, std::int64_t at_ms,
                 const std::vector<std::string>& keep) override;
  Result<std::vector<mapping::AccountRecord>> Users() override;
  Result<std::vector<ManagedUser>> Managed() override;
  Status SetManaged(const ManagedUser& user) override;
  Status ForgetManaged(const std::string& user_id) override;

 private:
  Connection& c_;
};

class SqliteAudit final : public AuditLog {
 public:
  explicit SqliteAudit(Connection& c) : c_(c) {}
  Result<std::string> Append(AuditEntry& entry) override;
  Result<std::vector<AuditEntry>> Since(std::int64_t since_ms) override;
  Result<AuditCheck> Verify(const std::optional<std::string>& expected_head) override;
  Result<std::string> Head() override;

 private:
  Connection& c_;
};

class SqliteScimResources final : public ScimResources {
 public:
  explicit SqliteScimResources(Connection& c) : c_(c) {}
  Status Put(const ScimResourceRow& row) override;
  Status Delete(const std::string& source, const std::string& type, const std::string& id) override;
  Result<std::vector<ScimResourceRow>> List(const std::string& source) override;

 private:
  Connection& c_;
};

class SqliteSourceState final : public SourceState {
 public:
  explicit SqliteSourceState(Connection& c) : c_(c) {}
  Status PutRead(const SourceRead& read) override;
  Result<std::optional<SourceRead>> GetRead(const std::string& source) override;
  Status PutHealth(const SourceHealth& health) override;
  Result<std::optional<SourceHealth>> GetHealth(const std::string& source) override;
  Status PutFeedState(const std::string& source, const std::string& key,
                      const std::string& value) override;
  Result<std::optional<std::string>> GetFeedState(const std::string& source,
                                                  const std::string& key) override;

 private:
  Connection& c_;
};

class SqliteAccountCache final : public AccountCache {
 public:
  explicit SqliteAccountCache(Connection& c) : c_(c) {}
  Status PutCatalog(const mapping::Catalog& catalog) override;
  Result<std::optional<mapping::Catalog>> GetCatalog() override;
  Status PutProjects(const std::vector<mapping::Project>& projects) override;
  Result<std::optional<std::vector<mapping::Project>>> GetProjects() override;

 private:
  Status Put(std::string_view what, const std::string& value);
  Result<std::optional<std::string>> Get(std::string_view what);
  Connection& c_;
};

// Row-level steps that run inside a caller's transaction (c.mu held), shared
// by the parts whose one transaction spans several tables.
Status UpsertMirrorRow(sqlite3* db, const mapping::AccountRecord& user, std::int64_t at_ms);
Status DeleteMirrorRow(sqlite3* db, const std::string& user_id);
// keep_existing: a user already managed keeps `how` and `since_ms`; only its
// address follows.
Status UpsertManagedRow(sqlite3* db, const ManagedUser& user, bool keep_existing);
Status DeleteManagedRow(sqlite3* db, const std::string& user_id);
// Appends `entry` to the chain; fills seq, prev_hash and hash. Returns the
// new head.
Result<std::string> AppendAuditRow(sqlite3* db, AuditEntry& entry);

}  // namespace idsync::store::sqlite
