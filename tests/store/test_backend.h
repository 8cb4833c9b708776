// The database behind the store tests that every backend must pass
// (store_test.cc): a fresh store per test, and raw SQL on it as an operator
// with a database shell (or an attacker) would run it. store_test links
// the SQLite one (sqlite_test_backend.cc), store_postgres_test the
// PostgreSQL one (postgres_test_backend.cc).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace idsync::store {

class TestBackend {
 public:
  virtual ~TestBackend() = default;

  static std::unique_ptr<TestBackend> New();

  // "" when the backend can run here; otherwise what is missing.
  virtual std::string WhyUnavailable() = 0;
  // The URL of a new, empty store for one test.
  virtual std::string NewStoreUrl() = 0;
  // Raw SQL on that store; a failure fails the test.
  virtual void Exec(const std::string& sql) = 0;
  // The first column of the first row ("" when there is none).
  virtual std::string Text(const std::string& sql) = 0;
  std::int64_t Int(const std::string& sql) { return std::stoll("0" + Text(sql)); }

  // Where the SQL of the two databases differs.
  // The outbox's states in id order, joined by ','.
  virtual std::string OutboxStates() = 0;
  // From now on every insert into the audit table fails (or no longer).
  virtual void FailAuditInserts(bool fail) = 0;
  // An SQL expression for 64 random hex digits.
  virtual std::string RandomHashSql() = 0;
  // After rows with explicit seq were inserted into scim_changes: the next
  // one follows them.
  virtual void ResyncChangeSequence() = 0;
  // True when a write signals the store's watchers (ScimChangeSignal).
  virtual bool Notifies() = 0;
};

}  // namespace idsync::store
