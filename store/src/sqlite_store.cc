// The SQLite store: the file, its pragmas and migrations, and the shared
// parts on one session.

#include "sqlite_store.h"

#include <cerrno>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "schema.h"
#include "sql_parts.h"
#include "sqlite_db.h"
#include "sqlite_session.h"

namespace idsync::store::sqlite {
namespace {

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
  // One connection serves the parts and the lease: one process holds the
  // file's write lock at a time anyway.
  return std::unique_ptr<Store>(
      std::make_unique<internal::SqlStore>(NewSqliteSession(std::move(db)), nullptr));
}

}  // namespace idsync::store::sqlite
