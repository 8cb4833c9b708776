// The PostgreSQL store's schema: the same tables as the SQLite store's
// (schema.h) in PostgreSQL's types, versioned on their own from 1. The
// version is the one row of idsync_schema.
#pragma once

#include <span>

#include "pg_session.h"

namespace idsync::store::pg {

struct PgMigration {
  int version;
  const char* sql;
};

// Every migration, in order.
std::span<const PgMigration> PgMigrations();

// Applies the migrations newer than the database's version, all in one
// transaction under the migration advisory lock: a second process waits,
// then finds nothing left to do. kFailedPrecondition when the database is
// at a version newer than the last of `migrations`.
Status ApplyPgMigrations(PgSession& session, std::span<const PgMigration> migrations);

}  // namespace idsync::store::pg
