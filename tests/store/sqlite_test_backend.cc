// The SQLite backend of the store tests: a file in a temporary directory,
// raw SQL through a connection of the test's own.
#include <filesystem>

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include "test_backend.h"

namespace idsync::store {
namespace {

namespace fs = std::filesystem;

class SqliteTestBackend final : public TestBackend {
 public:
  ~SqliteTestBackend() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  std::string WhyUnavailable() override { return ""; }

  std::string NewStoreUrl() override {
    std::string pattern = (fs::temp_directory_path() / "idsync-store-XXXXXX").string();
    EXPECT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/state.db";
    return "sqlite://" + path_;
  }

  void Exec(const std::string& sql) override {
    WithDb([&](sqlite3* db) {
      char* error = nullptr;
      int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
      EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << (error ? error : "");
      sqlite3_free(error);
    });
  }

  std::string Text(const std::string& sql) override {
    std::string out;
    WithDb([&](sqlite3* db) {
      sqlite3_stmt* stmt = nullptr;
      EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK) << sql;
      if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
        out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
      }
      sqlite3_finalize(stmt);
    });
    return out;
  }

  std::string OutboxStates() override {
    return Text("SELECT group_concat(state, ',') FROM (SELECT state FROM outbox ORDER BY id)");
  }

  void FailAuditInserts(bool fail) override {
    Exec(fail ? "CREATE TRIGGER fail_audit BEFORE INSERT ON audit "
                "BEGIN SELECT RAISE(ABORT, 'disk trouble'); END"
              : "DROP TRIGGER fail_audit");
  }

  std::string RandomHashSql() override { return "lower(hex(randomblob(32)))"; }
  // AUTOINCREMENT follows explicit ids by itself.
  void ResyncChangeSequence() override {}
  bool Notifies() override { return false; }

 private:
  template <typename F>
  void WithDb(F f) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    f(db);
    sqlite3_close(db);
  }

  std::string dir_;
  std::string path_;
};

}  // namespace

std::unique_ptr<TestBackend> TestBackend::New() { return std::make_unique<SqliteTestBackend>(); }

}  // namespace idsync::store
