#include "schema.h"

#include <string>

#include "sqlite_db.h"

namespace idsync::store::sqlite {
namespace {

// Version 1: runs, the outbox, the account mirror, the managed users, the
// audit chain and cached metadata.
//
// outbox.run_id is NULL for an entry planned outside any run, so that the
// foreign key holds. The audit table has no foreign keys on purpose: it must
// stand on its own and be checkable by its hashes alone.
constexpr char kSchemaV1[] = R"sql(
CREATE TABLE runs (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  kind         TEXT NOT NULL,
  started_ms   INTEGER NOT NULL,
  finished_ms  INTEGER NOT NULL DEFAULT 0,
  result       TEXT NOT NULL DEFAULT '',
  summary_json TEXT NOT NULL DEFAULT '',
  audit_head   TEXT NOT NULL DEFAULT '',
  error        TEXT NOT NULL DEFAULT ''
);

CREATE TABLE outbox (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id          INTEGER REFERENCES runs (id),
  op              TEXT NOT NULL,
  email           TEXT NOT NULL,
  idempotency_key TEXT NOT NULL UNIQUE,
  write_json      TEXT NOT NULL,
  operation_json  TEXT NOT NULL,
  source          TEXT NOT NULL,
  priority        INTEGER NOT NULL DEFAULT 0,
  state           TEXT NOT NULL
                  CHECK (state IN ('planned', 'sent', 'done', 'failed', 'dropped')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  error           TEXT NOT NULL DEFAULT '',
  created_ms      INTEGER NOT NULL,
  updated_ms      INTEGER NOT NULL
);
CREATE INDEX outbox_by_state ON outbox (state, priority DESC, id);

CREATE TABLE mirror (
  id               TEXT PRIMARY KEY,
  email            TEXT NOT NULL,
  name             TEXT NOT NULL,
  role             TEXT NOT NULL,
  status           TEXT NOT NULL,
  permissions_json TEXT NOT NULL,
  projects_json    TEXT NOT NULL,
  created_at       TEXT NOT NULL,
  updated_at       TEXT NOT NULL,
  seen_ms          INTEGER NOT NULL
);

CREATE TABLE managed (
  user_id  TEXT PRIMARY KEY,
  email    TEXT NOT NULL,
  how      TEXT NOT NULL CHECK (how IN ('invited', 'adopted')),
  since_ms INTEGER NOT NULL
);

CREATE TABLE audit (
  seq         INTEGER PRIMARY KEY,
  at_ms       INTEGER NOT NULL,
  run_id      INTEGER NOT NULL,
  action      TEXT NOT NULL,
  email       TEXT NOT NULL,
  user_id     TEXT NOT NULL,
  source      TEXT NOT NULL,
  detail_json TEXT NOT NULL,
  prev_hash   TEXT NOT NULL,
  hash        TEXT NOT NULL
);
CREATE INDEX audit_by_time ON audit (at_ms);

CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
)sql";

// Version 2: the resources SCIM identity providers pushed, and each
// source's last good read (a binary snapshot, see snapshot_codec.h).
constexpr char kSchemaV2[] = R"sql(
CREATE TABLE scim_resources (
  source     TEXT NOT NULL,
  type       TEXT NOT NULL CHECK (type IN ('User', 'Group')),
  id         TEXT NOT NULL,
  json       TEXT NOT NULL,
  version    INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  PRIMARY KEY (source, type, id)
);

CREATE TABLE source_reads (
  source   TEXT PRIMARY KEY,
  read_ms  INTEGER NOT NULL,
  snapshot BLOB NOT NULL
);
)sql";

// Version 3: typed columns and tables where version 1 kept facts in JSON or
// under metadata keys. An outbox entry's adopt flag becomes a column (read
// from the operation JSON of entries written before, so that a sent adopt
// still finishes as one); the account's catalog and projects, each source's
// health and each change feed's state get tables of their own, filled from
// the metadata rows; the metadata table goes.
constexpr char kSchemaV3[] = R"sql(
ALTER TABLE outbox ADD COLUMN adopt INTEGER NOT NULL DEFAULT 0 CHECK (adopt IN (0, 1));
UPDATE outbox SET adopt = 1
  WHERE json_valid(operation_json) AND json_extract(operation_json, '$.adopt') = 1;
CREATE TABLE account_cache (
  what  TEXT PRIMARY KEY CHECK (what IN ('catalog', 'projects')),
  value TEXT NOT NULL
);
INSERT INTO account_cache (what, value)
  SELECT key, value FROM meta WHERE key IN ('catalog', 'projects');
CREATE TABLE source_health (
  source TEXT PRIMARY KEY,
  json   TEXT NOT NULL
);
INSERT INTO source_health (source, json)
  SELECT substr(key, 14), value FROM meta
  WHERE key LIKE 'source!_state:%' ESCAPE '!' AND length(key) > 13;
CREATE TABLE feed_state (
  source TEXT NOT NULL,
  key    TEXT NOT NULL,
  value  BLOB NOT NULL,
  PRIMARY KEY (source, key)
);
INSERT INTO feed_state (source, key, value)
  SELECT substr(key, 6, instr(substr(key, 6), ':') - 1),
         substr(key, 6 + instr(substr(key, 6), ':')), value
  FROM meta WHERE key LIKE 'feed:%' AND instr(substr(key, 6), ':') > 1;
DROP TABLE meta;
)sql";

// Version 4: the leader lease (lease.h), one row, in the database's clock
// as milliseconds.
constexpr char kSchemaV4[] = R"sql(
CREATE TABLE leader_lease (
  id         INTEGER PRIMARY KEY CHECK (id = 1),
  holder     TEXT NOT NULL,
  epoch      INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL
);
)sql";

// Version 5: the SCIM change log (scim_resources.h) and how far it was
// pruned; full runs asked of the leader (run_log.h).
constexpr char kSchemaV5[] = R"sql(
CREATE TABLE scim_changes (
  seq    INTEGER PRIMARY KEY AUTOINCREMENT,
  source TEXT NOT NULL,
  type   TEXT NOT NULL,
  id     TEXT NOT NULL,
  at_ms  INTEGER NOT NULL
);
CREATE TABLE scim_changes_pruned (
  id   INTEGER PRIMARY KEY CHECK (id = 1),
  upto INTEGER NOT NULL
);
CREATE TABLE run_requests (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  force        INTEGER NOT NULL CHECK (force IN (0, 1)),
  requested_by TEXT NOT NULL,
  at_ms        INTEGER NOT NULL
);
)sql";

// Version 6: which leader last claimed (sent) an outbox entry, by its lease
// epoch; 0 when none, or when no lease was held (outbox.h).
constexpr char kSchemaV6[] = R"sql(
ALTER TABLE outbox ADD COLUMN claimed_epoch INTEGER NOT NULL DEFAULT 0;
)sql";

// Version 7: sign-ins to the web console (console_sessions.h).
constexpr char kSchemaV7[] = R"sql(
CREATE TABLE console_sessions (
  id_hash    TEXT PRIMARY KEY,
  token_hash TEXT NOT NULL,
  csrf       TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL
);
)sql";

constexpr Migration kMigrations[] = {
    {1, kSchemaV1}, {2, kSchemaV2}, {3, kSchemaV3}, {4, kSchemaV4},
    {5, kSchemaV5}, {6, kSchemaV6}, {7, kSchemaV7},
};

}  // namespace

std::span<const Migration> Migrations() { return kMigrations; }

Result<int> SchemaVersion(sqlite3* db) {
  ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(db, "PRAGMA user_version"));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return InternalError("PRAGMA user_version returned nothing");
  return static_cast<int>(stmt.Int(0));
}

Status ApplyMigrations(sqlite3* db, std::span<const Migration> migrations) {
  const int latest = migrations.empty() ? 0 : migrations.back().version;
  ASSIGN_OR_RETURN(int version, SchemaVersion(db));
  if (version > latest) {
    return FailedPreconditionError("the store's schema version " + std::to_string(version) +
                                   " is newer than this build knows (" + std::to_string(latest) +
                                   "): upgrade idsync");
  }
  for (const Migration& migration : migrations) {
    if (migration.version <= version) continue;
    ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db));
    // Another process sharing the file may have migrated while this one
    // waited for the write lock: read the version again under the lock.
    ASSIGN_OR_RETURN(version, SchemaVersion(db));
    if (migration.version <= version) continue;
    const std::string context = "schema migration " + std::to_string(migration.version);
    RETURN_IF_ERROR(Exec(db, migration.sql).WithContext(context));
    const std::string bump = "PRAGMA user_version = " + std::to_string(migration.version);
    RETURN_IF_ERROR(Exec(db, bump.c_str()).WithContext(context));
    RETURN_IF_ERROR(tx.Commit().WithContext(context));
    version = migration.version;
  }
  return Status::Ok();
}

}  // namespace idsync::store::sqlite
