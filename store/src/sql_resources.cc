// The store's smaller parts, over a Session: SCIM resources, per-source
// state and the account cache.

#include <mutex>

#include "codec.h"
#include "snapshot_codec.h"
#include "sql_parts.h"

namespace idsync::store::internal {

// --- SCIM resources ---

Status SqlScimResources::Put(const ScimResourceRow& row) {
  if (row.source.empty() || row.id.empty()) {
    return InvalidArgumentError("SCIM resource without a source or an id");
  }
  if (row.type != "User" && row.type != "Group") {
    return InvalidArgumentError("SCIM resource type must be User or Group, not \"" + row.type +
                                "\"");
  }
  std::lock_guard lock(s_.mu);
  return s_
      .Exec(
          "INSERT INTO scim_resources (source, type, id, json, version, updated_ms) "
          "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (source, type, id) DO UPDATE "
          "SET json = excluded.json, version = excluded.version, "
          "updated_ms = excluded.updated_ms",
          {row.source, row.type, row.id, row.json, row.version, row.updated_ms})
      .status()
      .WithContext("store SCIM " + row.type + " " + row.id);
}

Status SqlScimResources::Delete(const std::string& source, const std::string& type,
                                const std::string& id) {
  std::lock_guard lock(s_.mu);
  return s_
      .Exec("DELETE FROM scim_resources WHERE source = $1 AND type = $2 AND id = $3",
            {source, type, id})
      .status()
      .WithContext("delete SCIM " + type + " " + id);
}

Result<std::vector<ScimResourceRow>> SqlScimResources::List(const std::string& source) {
  std::lock_guard lock(s_.mu);
  return QueryAll<ScimResourceRow>(
      s_,
      "SELECT type, id, json, version, updated_ms FROM scim_resources WHERE source = $1 "
      "ORDER BY type, id",
      {source}, [&source](const Rows& row) {
        using R = ScimResourceRow;
        R r = ReadFields<R>(row, &R::type, &R::id, &R::json, &R::version, &R::updated_ms);
        r.source = source;
        return r;
      });
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
