#include "sqlite_db.h"

#include <utility>

namespace idsync::store::sqlite {

namespace {

Status ErrorFor(int rc, std::string message) {
  switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      return AlreadyExistsError(std::move(message));
    default:
      break;
  }
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_PROTOCOL:
      return UnavailableError(std::move(message));
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return FailedPreconditionError(std::move(message));
    default:
      return InternalError(std::move(message));
  }
}

}  // namespace

Status Error(sqlite3* db, int rc, std::string_view what) {
  std::string message(what);
  message += ": ";
  // sqlite3_errmsg describes the latest failure on the connection, which is
  // the one being reported (calls are serialized); without a connection only
  // the code's generic text is known.
  message += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  Status status = ErrorFor(rc, std::move(message));
  status.SetPayload(kStageKey, std::string(kStageStore));
  return status;
}

Result<Stmt> Stmt::Prepare(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return Error(db, rc, "preparing a statement");
  }
  return Stmt(db, stmt);
}

Stmt::Stmt(Stmt&& other) noexcept : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)) {}

Stmt& Stmt::operator=(Stmt&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    db_ = other.db_;
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

Stmt::~Stmt() { sqlite3_finalize(stmt_); }

// Binding errors (index out of range, out of memory) are programming errors
// here or show again as a failure of the step, so they are not reported apart.
Stmt& Stmt::Bind(int index, std::int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}

Stmt& Stmt::Bind(int index, std::string_view value) {
  // A non-null pointer even for "", so that an empty string binds as '' and
  // not as NULL.
  sqlite3_bind_text64(stmt_, index, value.empty() ? "" : value.data(), value.size(),
                      SQLITE_TRANSIENT, SQLITE_UTF8);
  return *this;
}

Stmt& Stmt::BindBlob(int index, std::string_view bytes) {
  sqlite3_bind_blob64(stmt_, index, bytes.empty() ? "" : bytes.data(), bytes.size(),
                      SQLITE_TRANSIENT);
  return *this;
}

Stmt& Stmt::BindNull(int index) {
  sqlite3_bind_null(stmt_, index);
  return *this;
}

Result<bool> Stmt::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Status error = Error(db_, rc, "running a statement");
  // Resetting ends the statement's implicit transaction, if any.
  sqlite3_reset(stmt_);
  return error;
}

Status Stmt::Run() {
  while (true) {
    ASSIGN_OR_RETURN(bool row, Step());
    if (!row) break;
  }
  Reset();
  return Status::Ok();
}

void Stmt::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::int64_t Stmt::Int(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string Stmt::Text(int column) const {
  const unsigned char* text = sqlite3_column_text(stmt_, column);
  if (text == nullptr) return std::string();
  int size = sqlite3_column_bytes(stmt_, column);
  return std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(size));
}

std::string Stmt::Blob(int column) const {
  const void* bytes = sqlite3_column_blob(stmt_, column);
  if (bytes == nullptr) return std::string();
  int size = sqlite3_column_bytes(stmt_, column);
  return std::string(static_cast<const char*>(bytes), static_cast<std::size_t>(size));
}

bool Stmt::IsNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

Status Exec(sqlite3* db, const char* sql) {
  char* message = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &message);
  sqlite3_free(message);  // Error() reads the same text from the connection
  if (rc != SQLITE_OK) return Error(db, rc, "running SQL");
  return Status::Ok();
}

Result<Transaction> Transaction::Begin(sqlite3* db) {
  int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return Error(db, rc, "starting a transaction");
  return Transaction(db);
}

Transaction::Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Transaction::~Transaction() {
  if (db_ != nullptr && sqlite3_get_autocommit(db_) == 0) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

Status Transaction::Commit() {
  sqlite3* db = std::exchange(db_, nullptr);
  int rc = sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) {
    Status error = Error(db, rc, "committing a transaction");
    // A failed COMMIT may leave the transaction open; nothing of it must land.
    if (sqlite3_get_autocommit(db) == 0) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    return error;
  }
  return Status::Ok();
}

}  // namespace idsync::store::sqlite
