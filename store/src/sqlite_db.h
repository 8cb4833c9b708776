// Thin RAII helpers over the SQLite C API for the SQLite store: the
// connection handle, prepared statements, write transactions, and SQLite
// result codes mapped to idsync::Status.
//
// Not thread-safe: the store serializes every use of one connection.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <sqlite3.h>

#include "idsync/base/status.h"

namespace idsync::store::sqlite {

// Maps an SQLite result code to a Status whose message is "what: <sqlite
// message>". Busy, locked, I/O, full, read-only and cannot-open are
// kUnavailable; a file that is not a database (or is corrupt) is
// kFailedPrecondition; a unique or primary-key violation is kAlreadyExists;
// anything else is kInternal.
Status Error(sqlite3* db, int rc, std::string_view what);

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

// One prepared statement. Move-only; finalized on destruction.
class Stmt {
 public:
  // kInternal (or the mapped code) when `sql` does not compile.
  static Result<Stmt> Prepare(sqlite3* db, std::string_view sql);

  Stmt(Stmt&& other) noexcept;
  Stmt& operator=(Stmt&& other) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt();

  // Binds parameter `index` (1-based). The value is copied.
  Stmt& Bind(int index, std::int64_t value);
  Stmt& Bind(int index, std::string_view value);
  Stmt& BindNull(int index);
  // Binds bytes as a BLOB (no text encoding assumed).
  Stmt& BindBlob(int index, std::string_view bytes);

  // Steps once: true when a row is ready, false when the statement is done.
  Result<bool> Step();
  // Steps to the end (rows, if any, are ignored) and resets for reuse.
  Status Run();
  // Resets for another execution; bindings are cleared.
  void Reset();

  std::int64_t Int(int column) const;
  // NULL reads as "".
  std::string Text(int column) const;
  bool IsNull(int column) const;
  // The column's bytes (a BLOB or text); NULL reads as "".
  std::string Blob(int column) const;

 private:
  Stmt(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

// Runs one or more statements that take no parameters.
Status Exec(sqlite3* db, const char* sql);

// A write transaction (BEGIN IMMEDIATE, so that it takes the write lock at
// once and waits for it under the busy timeout, rather than failing on an
// upgrade from read to write). Rolled back on destruction unless committed.
class Transaction {
 public:
  static Result<Transaction> Begin(sqlite3* db);

  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  Status Commit();

 private:
  explicit Transaction(sqlite3* db) : db_(db) {}
  sqlite3* db_ = nullptr;  // null once committed, rolled back or moved from
};

}  // namespace idsync::store::sqlite
