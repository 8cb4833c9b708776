#include "sqlite_session.h"

#include <string>
#include <thread>
#include <unordered_map>
#include <utility>

namespace idsync::store::sqlite {
namespace {

using internal::Bytes;
using internal::Param;

// SQLite takes numbered parameters as ?N; the shared statements write $N.
// Only '$' outside quoted text is a parameter.
std::string ToSqliteParameters(std::string_view sql) {
  std::string out;
  out.reserve(sql.size());
  char quote = 0;
  for (std::size_t i = 0; i < sql.size(); ++i) {
    char c = sql[i];
    if (quote != 0) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '$' && i + 1 < sql.size() && sql[i + 1] >= '0' && sql[i + 1] <= '9') {
      c = '?';
    }
    out += c;
  }
  return out;
}

// The largest number of prepared statements kept; the store uses a few
// dozen distinct statements, so this is only a bound.
constexpr std::size_t kStatementCacheLimit = 128;

struct CachedStatement {
  sqlite3_stmt* stmt = nullptr;
  bool in_use = false;  // a Rows is reading it
};

class SqliteRows final : public internal::Rows {
 public:
  // `cached` is null for a statement prepared for this query alone.
  SqliteRows(sqlite3* db, sqlite3_stmt* stmt, CachedStatement* cached)
      : db_(db), stmt_(stmt), cached_(cached) {}
  ~SqliteRows() override {
    if (cached_ != nullptr) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
      cached_->in_use = false;
    } else {
      sqlite3_finalize(stmt_);
    }
  }
  SqliteRows(const SqliteRows&) = delete;
  SqliteRows& operator=(const SqliteRows&) = delete;

  Result<bool> Next() override {
    if (done_) return false;
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    done_ = true;
    if (rc == SQLITE_DONE) return false;
    Status error = Error(db_, rc, "running a statement");
    // Resetting ends the statement's implicit transaction, if any.
    sqlite3_reset(stmt_);
    return error;
  }
  std::int64_t Int(int column) const override { return sqlite3_column_int64(stmt_, column); }
  std::string Text(int column) const override {
    const unsigned char* text = sqlite3_column_text(stmt_, column);
    if (text == nullptr) return std::string();
    int size = sqlite3_column_bytes(stmt_, column);
    return std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(size));
  }
  std::string Blob(int column) const override {
    const void* bytes = sqlite3_column_blob(stmt_, column);
    if (bytes == nullptr) return std::string();
    int size = sqlite3_column_bytes(stmt_, column);
    return std::string(static_cast<const char*>(bytes), static_cast<std::size_t>(size));
  }
  bool IsNull(int column) const override {
    return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  CachedStatement* cached_;
  bool done_ = false;
};

constexpr internal::Dialect kSqliteDialect = {
    // BEGIN IMMEDIATE already holds the database's one write lock.
    .for_update = "",
    .claim = "",
    .lock_audit_chain = "",
    .for_share = "",
    .now_ms = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
    // AUTOINCREMENT's sqlite_sequence follows explicit ids by itself.
    .resync_ids = "",
    .lock_scim_changes = "",
    // One process writes the file: nobody else to tell.
    .notify_scim = "",
    .checkpoint = "PRAGMA wal_checkpoint(TRUNCATE)",
    // SQLite's own lower() changes ASCII letters only.
    .ascii_lower_email = "lower(email)",
};

// SQLite has no notifications: a follower in the same process is told by
// that process, so the signal only waits.
class QuietSignal final : public ScimChangeSignal {
 public:
  bool Wait(std::chrono::milliseconds timeout) override {
    std::this_thread::sleep_for(timeout);
    return false;
  }
};

class SqliteSession final : public internal::Session {
 public:
  explicit SqliteSession(DbPtr db) : db_(std::move(db)) {}
  ~SqliteSession() override {
    for (auto& [sql, cached] : cache_) sqlite3_finalize(cached.stmt);
  }

  const internal::Dialect& dialect() const override { return kSqliteDialect; }

  using internal::Session::Exec;
  using internal::Session::Query;

  Result<std::unique_ptr<internal::Rows>> Query(std::string_view sql,
                                                std::span<const Param> params) override {
    sqlite3_stmt* stmt = nullptr;
    CachedStatement* cached = nullptr;
    auto found = cache_.find(std::string(sql));
    if (found != cache_.end() && !found->second.in_use) {
      cached = &found->second;
      stmt = cached->stmt;
    } else {
      const std::string text = ToSqliteParameters(sql);
      int rc = sqlite3_prepare_v2(db_.get(), text.c_str(), static_cast<int>(text.size()), &stmt,
                                  nullptr);
      if (rc != SQLITE_OK) {
        sqlite3_finalize(stmt);
        return Error(db_.get(), rc, "preparing a statement");
      }
      if (found == cache_.end()) {
        if (cache_.size() >= kStatementCacheLimit) Clear();
        cached = &cache_[std::string(sql)];
        cached->stmt = stmt;
      }
    }
    if (cached != nullptr) cached->in_use = true;
    auto rows = std::make_unique<SqliteRows>(db_.get(), stmt, cached);
    int index = 0;
    for (const Param& param : params) Bind(stmt, ++index, param);
    return std::unique_ptr<internal::Rows>(std::move(rows));
  }

  Result<std::int64_t> Exec(std::string_view sql, std::span<const Param> params) override {
    ASSIGN_OR_RETURN(std::unique_ptr<internal::Rows> rows, Query(sql, params));
    while (true) {
      ASSIGN_OR_RETURN(bool row, rows->Next());
      if (!row) break;
    }
    return static_cast<std::int64_t>(sqlite3_changes64(db_.get()));
  }

  Status Begin() override {
    int rc = sqlite3_exec(db_.get(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return Error(db_.get(), rc, "starting a transaction");
    return Status::Ok();
  }
  Status Commit() override {
    int rc = sqlite3_exec(db_.get(), "COMMIT", nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return Error(db_.get(), rc, "committing a transaction");
    return Status::Ok();
  }
  void Rollback() override {
    if (sqlite3_get_autocommit(db_.get()) == 0) {
      sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
  }

  Result<std::unique_ptr<ScimChangeSignal>> Listen(std::string_view) override {
    return std::unique_ptr<ScimChangeSignal>(std::make_unique<QuietSignal>());
  }

 private:
  // Binding errors (index out of range, out of memory) are programming
  // errors or show again as a failure of the step.
  static void Bind(sqlite3_stmt* stmt, int index, const Param& param) {
    if (const auto* i = std::get_if<std::int64_t>(&param)) {
      sqlite3_bind_int64(stmt, index, *i);
    } else if (const auto* text = std::get_if<std::string_view>(&param)) {
      // A non-null pointer even for "", so that "" binds as '' and not NULL.
      sqlite3_bind_text64(stmt, index, text->empty() ? "" : text->data(), text->size(),
                          SQLITE_TRANSIENT, SQLITE_UTF8);
    } else if (const auto* bytes = std::get_if<Bytes>(&param)) {
      sqlite3_bind_blob64(stmt, index, bytes->data.empty() ? "" : bytes->data.data(),
                          bytes->data.size(), SQLITE_TRANSIENT);
    } else {
      sqlite3_bind_null(stmt, index);
    }
  }

  // Drops the statements no Rows is reading.
  void Clear() {
    for (auto it = cache_.begin(); it != cache_.end();) {
      if (it->second.in_use) {
        ++it;
      } else {
        sqlite3_finalize(it->second.stmt);
        it = cache_.erase(it);
      }
    }
  }

  DbPtr db_;
  // Node-based: a Rows keeps a pointer to its entry.
  std::unordered_map<std::string, CachedStatement> cache_;
};

}  // namespace

std::unique_ptr<internal::Session> NewSqliteSession(DbPtr db) {
  return std::make_unique<SqliteSession>(std::move(db));
}

}  // namespace idsync::store::sqlite
