// The SQLite implementation of Store (see idsync/store/store.h): one file in
// WAL mode, synchronous=FULL, foreign keys on, a busy timeout so that the CLI
// and the daemon can share the file, and versioned migrations (schema.h).
//
// Thread-safe: one connection, every call serialized by a mutex.
#pragma once

#include <memory>
#include <string>

#include "idsync/base/status.h"
#include "idsync/store/store.h"

namespace idsync::store::sqlite {

// How long a call waits for another process's write lock before failing with
// kUnavailable.
inline constexpr int kBusyTimeoutMs = 10000;

// Opens (creating with mode 0600 if missing) the database file at `path` and
// migrates it. Errors as Store::Open.
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path);

}  // namespace idsync::store::sqlite
