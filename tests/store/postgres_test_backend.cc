// The PostgreSQL backend of the store tests: one throwaway server for the
// whole test binary (postgres_fixture.h), a new database per test, raw SQL
// through psql.
#include <gtest/gtest.h>

#include "postgres_fixture.h"
#include "test_backend.h"

namespace idsync::store {
namespace {

using testing::PostgresFixture;

PostgresFixture* Server() { return PostgresFixture::Shared(); }

class PostgresTestBackend final : public TestBackend {
 public:
  std::string WhyUnavailable() override {
    if (!PostgresFixture::Available()) return PostgresFixture::WhyUnavailable();
    if (Server() == nullptr) return "the test PostgreSQL server did not start";
    return "";
  }

  std::string NewStoreUrl() override {
    Result<std::string> name = Server()->CreateDatabase();
    EXPECT_TRUE(name.ok()) << name.status().ToString();
    database_ = name.ok() ? *name : "postgres";
    return Server()->Url(database_);
  }

  void Exec(const std::string& sql) override {
    Result<std::string> out = Server()->Psql(database_, sql);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
  }

  std::string Text(const std::string& sql) override {
    Result<std::string> out = Server()->Psql(database_, sql);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    if (!out.ok()) return "";
    return out->substr(0, out->find('\n'));
  }

  std::string OutboxStates() override {
    return Text("SELECT string_agg(state, ',' ORDER BY id) FROM outbox");
  }

  void FailAuditInserts(bool fail) override {
    Exec(fail ? "CREATE FUNCTION fail_audit() RETURNS trigger LANGUAGE plpgsql AS "
                "$$BEGIN RAISE EXCEPTION 'disk trouble'; END$$; "
                "CREATE TRIGGER fail_audit BEFORE INSERT ON audit "
                "FOR EACH ROW EXECUTE FUNCTION fail_audit()"
              : "DROP TRIGGER fail_audit ON audit; DROP FUNCTION fail_audit()");
  }

  std::string RandomHashSql() override { return "md5(random()::text) || md5(random()::text)"; }
  void ResyncChangeSequence() override {
    Text(
        "SELECT setval(pg_get_serial_sequence('scim_changes', 'seq'), max(seq)) "
        "FROM scim_changes");
  }
  bool Notifies() override { return true; }

 private:
  std::string database_ = "postgres";
};

}  // namespace

std::unique_ptr<TestBackend> TestBackend::New() { return std::make_unique<PostgresTestBackend>(); }

}  // namespace idsync::store
