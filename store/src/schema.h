// The SQLite store's schema as an ordered list of migrations, and the code
// that brings a database up to date. The version lives in PRAGMA user_version
// (0 for a new file).
#pragma once

#include <span>

#include <sqlite3.h>

#include "idsync/base/status.h"

namespace idsync::store::sqlite {

struct Migration {
  int version;      // the schema version after this migration: 1, 2, 3, ...
  const char* sql;  // one or more statements
};

// Every migration this build knows, in order. Never edit a released one:
// append a new one.
std::span<const Migration> Migrations();

// The schema version stored in the file.
Result<int> SchemaVersion(sqlite3* db);

// Applies, in order, each migration whose version is above the file's, each
// in its own transaction together with the version bump, so that a failed
// migration leaves the file at the version before it. kFailedPrecondition
// when the file's version is above the last of `migrations` (written by a
// newer build).
Status ApplyMigrations(sqlite3* db, std::span<const Migration> migrations);

}  // namespace idsync::store::sqlite
