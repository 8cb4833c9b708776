// The PostgreSQL implementation of Store (see idsync/store/store.h): the
// shared parts (sql_parts.h) on one libpq session (pg_session.h), with
// versioned migrations (pg_schema.h) run on open under an advisory lock,
// so that of several replicas starting together one migrates and the
// others wait.
//
// Thread-safe: one connection, every call serialized by a mutex.
#pragma once

#include <memory>

#include "idsync/base/status.h"
#include "idsync/store/store.h"

#include "pg_session.h"

namespace idsync::store::pg {

// Connects and migrates. kUnavailable when the server cannot be reached or
// refuses; kFailedPrecondition when the database's schema is newer than
// this build knows.
Result<std::unique_ptr<Store>> OpenPgStore(ConnectOptions options);

}  // namespace idsync::store::pg
