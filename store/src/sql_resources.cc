// The store's smaller parts, over a Session: SCIM resources, per-source
// state and the account cache.

#include <algorithm>
#include <mutex>

#include "codec.h"
#include "snapshot_codec.h"
#include "sql_parts.h"

namespace idsync::store::internal {

// --- SCIM resources ---

namespace {

Status CheckRow(const ScimResourceRow& row) {
  if (row.source.empty() || row.id.empty()) {
    return InvalidArgumentError("SCIM resource without a source or an id");
  }
  if (row.type != "User" && row.type != "Group") {
    return InvalidArgumentError("SCIM resource type must be User or Group, not \"" + row.type +
                                "\"");
  }
  return Status::Ok();
}

// Writes the change log's rows for the writes of the group about to commit
// (session held): under the log's lock, so that sequence numbers follow
// commit order; the watchers signalled once; the log pruned now and then.
Status FlushChanges(Session& s, PendingScimChanges& pending) {
  const Dialect& d = s.dialect();
  std::vector<PendingScimChanges::Row> rows = std::move(pending.rows);
  pending.rows.clear();
  if (rows.empty()) return Status::Ok();
  if (!d.lock_scim_changes.empty()) RETURN_IF_ERROR(s.Exec(d.lock_scim_changes, {}).status());
  const std::string insert =
      "INSERT INTO scim_changes (source, type, id, at_ms) VALUES ($1, $2, $3, " +
      std::string(d.now_ms) + ") RETURNING seq";
  constexpr std::int64_t kPruneEvery = 1024;
  std::int64_t prune_at = 0;
  for (const PendingScimChanges::Row& row : rows) {
    ASSIGN_OR_RETURN(std::int64_t seq, QueryInt(s, insert, {row.source, row.type, row.id}, 0));
    if (seq % kPruneEvery == 0 && seq > kKeptScimChanges) prune_at = seq;
  }
  if (!d.notify_scim.empty()) RETURN_IF_ERROR(s.Exec(d.notify_scim, {}).status());
  if (prune_at > 0) {
    const std::int64_t upto = prune_at - kKeptScimChanges;
    RETURN_IF_ERROR(s.Exec("DELETE FROM scim_changes WHERE seq <= $1", {upto}).status());
    RETURN_IF_ERROR(s.Exec("INSERT INTO scim_changes_pruned (id, upto) VALUES (1, $1) "
                           "ON CONFLICT (id) DO UPDATE SET upto = excluded.upto",
                           {upto})
                        .status());
  }
  return Status::Ok();
}

// Notes (source, type, id) for the change log, written with the group's
// other changes just before it commits (FlushChanges). The last step of a
// write: nothing after it may fail.
void RecordChange(Session& s, PendingScimChanges& pending, const std::string& source,
                  const std::string& type, const std::string& id) {
  if (s.BeforeCommit("the SCIM change log", [&s, &pending] { return FlushChanges(s, pending); })) {
    pending.rows.clear();  // what an undone group left
  }
  pending.rows.push_back({source, type, id});
}

Status UpsertResource(Session& s, const ScimResourceRow& row) {
  return s
      .Exec(
          "INSERT INTO scim_resources (source, type, id, json, version, updated_ms) "
          "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (source, type, id) DO UPDATE "
          "SET json = excluded.json, version = excluded.version, "
          "updated_ms = excluded.updated_ms",
          {row.source, row.type, row.id, row.json, row.version, row.updated_ms})
      .status();
}

ScimResourceRow ReadResource(const Rows& row, const std::string& source) {
  using R = ScimResourceRow;
  R r = ReadFields<R>(row, &R::type, &R::id, &R::json, &R::version, &R::updated_ms);
  r.source = source;
  return r;
}

}  // namespace

Status SqlScimResources::Put(const ScimResourceRow& row) {
  RETURN_IF_ERROR(CheckRow(row));
  return s_
      .Write([&]() -> Status {
        RETURN_IF_ERROR(UpsertResource(s_, row));
        RecordChange(s_, pending_, row.source, row.type, row.id);
        return Status::Ok();
      })
      .WithContext("store SCIM " + row.type + " " + row.id);
}

namespace {

// The write of PutIf, inside the group's transaction.
Status PutIfRow(Session& s, PendingScimChanges& pending, const ScimResourceRow& row,
                std::int64_t stored_version) {
  std::int64_t changed = 0;
  if (stored_version == 0) {
    ASSIGN_OR_RETURN(
        changed, s.Exec("INSERT INTO scim_resources (source, type, id, json, version, updated_ms) "
                        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (source, type, id) DO NOTHING",
                        {row.source, row.type, row.id, row.json, row.version, row.updated_ms}));
  } else {
    // Another writer's UPDATE of the row waits for it to commit, then
    // finds the version moved.
    ASSIGN_OR_RETURN(changed,
                     s.Exec("UPDATE scim_resources SET json = $4, version = $5, updated_ms = $6 "
                            "WHERE source = $1 AND type = $2 AND id = $3 AND version = $7",
                            {row.source, row.type, row.id, row.json, row.version, row.updated_ms,
                             stored_version}));
  }
  if (changed == 0) {
    return AbortedError("another writer changed it first (the store no longer holds version " +
                        std::to_string(stored_version) + ")");
  }
  RecordChange(s, pending, row.source, row.type, row.id);
  return Status::Ok();
}

// The write of Delete; `deleted` says whether there was a row.
Status DeleteRow(Session& s, PendingScimChanges& pending, const std::string& source,
                 const std::string& type, const std::string& id) {
  ASSIGN_OR_RETURN(std::int64_t changed,
                   s.Exec("DELETE FROM scim_resources WHERE source = $1 AND type = $2 AND id = $3",
                          {source, type, id}));
  if (changed == 0) return Status::Ok();  // nothing to record
  RecordChange(s, pending, source, type, id);
  return Status::Ok();
}

// A staged write of the session, awaited on request.
class SessionPendingWrite final : public PendingWrite {
 public:
  SessionPendingWrite(Session& s, StagedWrite staged, std::string context)
      : s_(s), staged_(std::move(staged)), context_(std::move(context)) {}
  Status Wait() override { return s_.Await(staged_).WithContext(context_); }

 private:
  Session& s_;
  StagedWrite staged_;
  std::string context_;
};

Result<std::unique_ptr<PendingWrite>> StageIn(Session& s, const std::function<Status()>& write,
                                              std::string context) {
  Result<StagedWrite> staged = s.Stage(write);
  if (!staged.ok()) return staged.status().WithContext(context);
  return std::unique_ptr<PendingWrite>(
      std::make_unique<SessionPendingWrite>(s, std::move(staged).value(), std::move(context)));
}

}  // namespace

Status SqlScimResources::PutIf(const ScimResourceRow& row, std::int64_t stored_version) {
  RETURN_IF_ERROR(CheckRow(row));
  return s_.Write([&] { return PutIfRow(s_, pending_, row, stored_version); })
      .WithContext("store SCIM " + row.type + " " + row.id);
}

Result<std::unique_ptr<PendingWrite>> SqlScimResources::StagePutIf(const ScimResourceRow& row,
                                                                   std::int64_t stored_version) {
  RETURN_IF_ERROR(CheckRow(row));
  return StageIn(
      s_, [&] { return PutIfRow(s_, pending_, row, stored_version); },
      "store SCIM " + row.type + " " + row.id);
}

Status SqlScimResources::Delete(const std::string& source, const std::string& type,
                                const std::string& id) {
  return s_.Write([&] { return DeleteRow(s_, pending_, source, type, id); })
      .WithContext("delete SCIM " + type + " " + id);
}

Result<std::unique_ptr<PendingWrite>> SqlScimResources::StageDelete(const std::string& source,
                                                                    const std::string& type,
                                                                    const std::string& id) {
  return StageIn(
      s_, [&] { return DeleteRow(s_, pending_, source, type, id); },
      "delete SCIM " + type + " " + id);
}

Result<std::vector<ScimResourceRow>> SqlScimResources::List(const std::string& source) {
  std::lock_guard lock(s_.mu);
  return QueryAll<ScimResourceRow>(
      s_,
      "SELECT type, id, json, version, updated_ms FROM scim_resources WHERE source = $1 "
      "ORDER BY type, id",
      {source}, [&source](const Rows& row) { return ReadResource(row, source); });
}

Result<std::optional<ScimResourceRow>> SqlScimResources::Get(const std::string& source,
                                                             const std::string& type,
                                                             const std::string& id) {
  std::lock_guard lock(s_.mu);
  ASSIGN_OR_RETURN(std::unique_ptr<Rows> rows,
                   s_.Query("SELECT type, id, json, version, updated_ms FROM scim_resources "
                            "WHERE source = $1 AND type = $2 AND id = $3",
                            {source, type, id}));
  ASSIGN_OR_RETURN(bool row, rows->Next());
  if (!row) return std::optional<ScimResourceRow>();
  return std::optional<ScimResourceRow>(ReadResource(*rows, source));
}

Result<std::int64_t> SqlScimResources::LastChange() {
  std::lock_guard lock(s_.mu);
  return QueryInt(s_, "SELECT max(seq) FROM scim_changes", {}, 0);
}

Result<ScimChangePage> SqlScimResources::ChangesSince(std::int64_t after, int limit) {
  ScimChangePage page;
  std::lock_guard lock(s_.mu);
  // Read in one snapshot where the database has them (PostgreSQL's
  // statements each see their own; the page is checked against the floor
  // read first, which only grows).
  ASSIGN_OR_RETURN(std::unique_ptr<Rows> head,
                   s_.Query("SELECT COALESCE((SELECT upto FROM scim_changes_pruned WHERE id = 1), "
                            "0), " +
                                std::string(s_.dialect().now_ms),
                            {}));
  ASSIGN_OR_RETURN(bool any, head->Next());
  if (any) {
    page.gap = after < head->Int(0);
    page.now_ms = head->Int(1);
  }
  if (page.gap) return page;
  ASSIGN_OR_RETURN(
      page.changes,
      QueryAll<ScimChangeRow>(
          s_,
          "SELECT c.seq, c.source, c.type, c.id, c.at_ms, r.json, r.version, r.updated_ms, "
          "CASE WHEN r.id IS NULL THEN 0 ELSE 1 END FROM scim_changes c LEFT JOIN scim_resources r "
          "ON r.source = c.source AND r.type = c.type AND r.id = c.id "
          "WHERE c.seq > $1 ORDER BY c.seq LIMIT $2",
          {after, static_cast<std::int64_t>(std::max(limit, 1))}, [](const Rows& row) {
            using R = ScimChangeRow;
            R change = ReadFields<R>(row, &R::seq, &R::source, &R::type, &R::id, &R::at_ms);
            if (row.Int(8) != 0) {
              ScimResourceRow now;
              now.source = change.source;
              now.type = change.type;
              now.id = change.id;
              now.json = row.Text(5);
              now.version = row.Int(6);
              now.updated_ms = row.Int(7);
              change.now = std::move(now);
            }
            return change;
          }));
  return page;
}

Result<std::unique_ptr<ScimChangeSignal>> SqlScimResources::Watch() {
  return s_.Listen("idsync_scim");
}

// --- per-source state ---

Status SqlSourceState::PutRead(const SourceRead& read) {
  if (read.snapshot.source.empty()) return InvalidArgumentError("source read without a source");
  // Encoded outside the lock: a large directory takes a moment.
  std::string bytes = EncodeSnapshot(read.snapshot);
  std::lock_guard lock(s_.mu);
  return Fenced(s_, [&]() -> Status {
    return s_
        .Exec(
            "INSERT INTO source_reads (source, read_ms, snapshot) VALUES ($1, $2, $3) "
            "ON CONFLICT (source) DO UPDATE SET read_ms = excluded.read_ms, "
            "snapshot = excluded.snapshot",
            {read.snapshot.source, read.read_ms, Bytes{bytes}})
        .status()
        .WithContext("store the last good read of " + read.snapshot.source);
  });
}

Result<std::optional<SourceRead>> SqlSourceState::GetRead(const std::string& source) {
  std::string bytes;
  std::int64_t read_ms = 0;
  {
    std::lock_guard lock(s_.mu);
    ASSIGN_OR_RETURN(
        std::unique_ptr<Rows> rows,
        s_.Query("SELECT read_ms, snapshot FROM source_reads WHERE source = $1", {source}));
    ASSIGN_OR_RETURN(bool row, rows->Next());
    if (!row) return std::optional<SourceRead>();
    read_ms = rows->Int(0);
    bytes = rows->Blob(1);
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

Status SqlSourceState::PutHealth(const SourceHealth& health) {
  if (health.name.empty()) return InvalidArgumentError("source health without a source");
  const std::string json = EncodeHealth(health);
  std::lock_guard lock(s_.mu);
  return Fenced(s_, [&]() -> Status {
    return s_
        .Exec(
            "INSERT INTO source_health (source, json) VALUES ($1, $2) "
            "ON CONFLICT (source) DO UPDATE SET json = excluded.json",
            {health.name, json})
        .status()
        .WithContext("store the health of source " + health.name);
  });
}

Result<std::optional<SourceHealth>> SqlSourceState::GetHealth(const std::string& source) {
  std::string json;
  {
    std::lock_guard lock(s_.mu);
    ASSIGN_OR_RETURN(std::unique_ptr<Rows> rows,
                     s_.Query("SELECT json FROM source_health WHERE source = $1", {source}));
    ASSIGN_OR_RETURN(bool row, rows->Next());
    if (!row) return std::optional<SourceHealth>();
    json = rows->Text(0);
  }
  Result<SourceHealth> health = DecodeHealth(json);
  if (!health.ok()) return health.status().WithContext("source " + source);
  health->name = source;
  return std::optional<SourceHealth>(std::move(health).value());
}

Status SqlSourceState::PutFeedState(const std::string& source, const std::string& key,
                                    const std::string& value) {
  std::lock_guard lock(s_.mu);
  return Fenced(s_, [&]() -> Status {
    return s_
        .Exec(
            "INSERT INTO feed_state (source, key, value) VALUES ($1, $2, $3) "
            "ON CONFLICT (source, key) DO UPDATE SET value = excluded.value",
            {source, key, Bytes{value}})
        .status()
        .WithContext("save the change feed state of " + source);
  });
}

Result<std::optional<std::string>> SqlSourceState::GetFeedState(const std::string& source,
                                                                const std::string& key) {
  std::lock_guard lock(s_.mu);
  ASSIGN_OR_RETURN(
      std::unique_ptr<Rows> rows,
      s_.Query("SELECT value FROM feed_state WHERE source = $1 AND key = $2", {source, key}));
  ASSIGN_OR_RETURN(bool row, rows->Next());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(rows->Blob(0));
}

// --- the account cache ---

Status SqlAccountCache::Put(std::string_view what, const std::string& value) {
  std::lock_guard lock(s_.mu);
  return Fenced(s_, [&]() -> Status {
    return s_
        .Exec(
            "INSERT INTO account_cache (what, value) VALUES ($1, $2) "
            "ON CONFLICT (what) DO UPDATE SET value = excluded.value",
            {what, value})
        .status()
        .WithContext("cache the account's " + std::string(what));
  });
}

Result<std::optional<std::string>> SqlAccountCache::Get(std::string_view what) {
  std::lock_guard lock(s_.mu);
  ASSIGN_OR_RETURN(std::unique_ptr<Rows> rows,
                   s_.Query("SELECT value FROM account_cache WHERE what = $1", {what}));
  ASSIGN_OR_RETURN(bool row, rows->Next());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(rows->Text(0));
}

Status SqlAccountCache::PutCatalog(const mapping::Catalog& catalog) {
  return Put("catalog", EncodeCatalog(catalog));
}

Result<std::optional<mapping::Catalog>> SqlAccountCache::GetCatalog() {
  ASSIGN_OR_RETURN(std::optional<std::string> text, Get("catalog"));
  if (!text) return std::optional<mapping::Catalog>();
  ASSIGN_OR_RETURN(mapping::Catalog catalog, DecodeCatalog(*text));
  return std::optional<mapping::Catalog>(std::move(catalog));
}

Status SqlAccountCache::PutProjects(const std::vector<mapping::Project>& projects) {
  return Put("projects", EncodeProjects(projects));
}

Result<std::optional<std::vector<mapping::Project>>> SqlAccountCache::GetProjects() {
  ASSIGN_OR_RETURN(std::optional<std::string> text, Get("projects"));
  if (!text) return std::optional<std::vector<mapping::Project>>();
  ASSIGN_OR_RETURN(std::vector<mapping::Project> projects, DecodeProjects(*text));
  return std::optional<std::vector<mapping::Project>>(std::move(projects));
}

}  // namespace idsync::store::internal
