// The SQLite store's own tests: the file (its mode, WAL, a relative path,
// what is not a database), its migrations, the upgrade of an older file;
// and the audit hash, which needs no store. What every backend must do is
// in store_test.cc.
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "idsync/store/store.h"
#include "idsync/testing/status_matchers.h"

#include "audit_hash.h"
#include "codec.h"
#include "schema.h"
#include "store_test_helpers.h"

namespace idsync::store {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "idsync-store-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    path_ = (dir_ / "state.db").string();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string Url() const { return "sqlite://" + path_; }  // path_ is absolute

  Store& Open() {
    Result<std::unique_ptr<Store>> opened = Store::Open(Url());
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    if (!opened.ok()) std::abort();
    store_ = std::move(opened).value();
    return *store_;
  }

  fs::path dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
};

// A second connection to the same file, as an operator (or attacker) with
// the sqlite3 shell would have.
class RawDb {
 public:
  explicit RawDb(const std::string& path, bool create = false) {
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db_, flags, nullptr), SQLITE_OK);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDb() { sqlite3_close(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void Exec(const std::string& sql) {
    char* error = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    EXPECT_EQ(rc, SQLITE_OK) << sql << ": " << (error ? error : "");
    sqlite3_free(error);
  }

  // The first column of the first row, as text ("" when there is none).
  std::string Text(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK) << sql;
    std::string out;
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    return out;
  }
  std::int64_t Int(const std::string& sql) { return std::stoll("0" + Text(sql)); }

  sqlite3* get() { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

int FileMode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 0777);
}

int LatestSchemaVersion() { return sqlite::Migrations().back().version; }

// --- opening ---

TEST_F(StoreTest, OpenCreatesPrivateFileInWalModeAtLatestSchema) {
  Store& store = Open();
  ASSERT_TRUE(store.runs().BeginRun("full", 1).ok());
  EXPECT_EQ(FileMode(path_), 0600);
  // The -wal file exists while the store is open and takes the file's mode.
  EXPECT_EQ(FileMode(path_ + "-wal"), 0600);
  RawDb raw(path_);
  EXPECT_EQ(raw.Text("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.Int("PRAGMA user_version"), LatestSchemaVersion());
  for (const char* table : {"runs", "outbox", "mirror", "managed", "audit", "scim_resources",
                            "source_reads", "source_health", "feed_state", "account_cache"}) {
    EXPECT_EQ(raw.Int(std::string("SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                                  "AND name = '") +
                      table + "'"),
              1)
        << table;
  }
}

TEST_F(StoreTest, OpenRelativeUrlIsRelativeToWorkingDirectory) {
  fs::path before = fs::current_path();
  fs::current_path(dir_);
  Result<std::unique_ptr<Store>> store = Store::Open("sqlite://rel.db");
  fs::current_path(before);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_TRUE(fs::exists(dir_ / "rel.db"));
}

TEST_F(StoreTest, OpenRejectsOtherUrls) {
  struct Case {
    std::string url;
    std::string message;  // exact when not empty
  };
  const Case cases[] = {
      {"mysql://u:s3cret@h/db",
       "store URL scheme \"mysql\" is not supported: expected sqlite:///absolute/path.db, "
       "sqlite://relative/path.db or postgresql://user@host/db"},
      {"/var/lib/idsync/state.db", ""},
      {"sqlite:/state.db", ""},
      {"sqlite://", ""},
      {"sqlite:///var/lib/idsync/", ""},
      {"", ""},
  };
  for (const Case& c : cases) {
    Result<std::unique_ptr<Store>> store = Store::Open(c.url);
    ASSERT_FALSE(store.ok()) << c.url;
    EXPECT_THAT(store, StatusIs(StatusCode::kInvalidArgument)) << c.url;
    if (!c.message.empty()) {
      EXPECT_EQ(store.status().message(), c.message) << c.url;
    }
    // A database URL may carry a password: it never shows in the error.
    EXPECT_EQ(store.status().message().find("s3cret"), std::string::npos) << c.url;
  }
}

TEST_F(StoreTest, OpenInMissingDirectoryIsUnavailableAndCreatesNothing) {
  Result<std::unique_ptr<Store>> store = Store::Open("sqlite://" + (dir_ / "nodir/x.db").string());
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store, StatusIs(StatusCode::kUnavailable));
  EXPECT_FALSE(fs::exists(dir_ / "nodir"));
}

TEST_F(StoreTest, OpenDirectoryIsUnavailable) {
  Result<std::unique_ptr<Store>> store = Store::Open("sqlite://" + dir_.string());
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store, StatusIs(StatusCode::kUnavailable));
}

TEST_F(StoreTest, OpenFileThatIsNotADatabaseFails) {
  std::ofstream(path_) << "this is not an SQLite database, just some text that is long enough\n";
  Result<std::unique_ptr<Store>> store = Store::Open(Url());
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store, StatusIs(StatusCode::kFailedPrecondition)) << store.status().ToString();
}

TEST_F(StoreTest, OpenKeepsModeOfExistingFile) {
  { std::ofstream create(path_); }
  ASSERT_EQ(::chmod(path_.c_str(), 0640), 0);
  Open();
  EXPECT_EQ(FileMode(path_), 0640);
}

TEST_F(StoreTest, ReopenKeepsDataAndVersion) {
  std::vector<OutboxEntry> entries = {MakeEntry("a")};
  {
    Store& store = Open();
    ASSERT_TRUE(store.account_cache().PutProjects({{"p_1", "support-bot"}}).ok());
    ASSERT_TRUE(store.outbox().Enqueue(entries).ok());
    AuditEntry a;
    a.action = "adopt";
    ASSERT_TRUE(store.audit().Append(a).ok());
    store_.reset();
  }
  Store& store = Open();
  std::optional<std::vector<mapping::Project>> projects =
      store.account_cache().GetProjects().value();
  ASSERT_TRUE(projects.has_value());
  ASSERT_EQ(projects->size(), 1u);
  EXPECT_EQ((*projects)[0].name, "support-bot");
  ASSERT_EQ(store.outbox().Unfinished()->size(), 1u);
  ExpectSameEntry(store.outbox().Unfinished()->front(), entries[0]);
  EXPECT_EQ(store.audit().Verify(std::nullopt)->entries, 1);
  RawDb raw(path_);
  EXPECT_EQ(raw.Int("PRAGMA user_version"), LatestSchemaVersion());
}

TEST_F(StoreTest, TwoStoresShareOneFile) {
  // The CLI and the daemon each open the file; both see the other's writes.
  Store& daemon = Open();
  Result<std::unique_ptr<Store>> cli = Store::Open(Url());
  ASSERT_TRUE(cli.ok()) << cli.status().ToString();
  std::vector<OutboxEntry> entries = {MakeEntry("a")};
  ASSERT_TRUE(daemon.outbox().Enqueue(entries).ok());
  ASSERT_EQ((*cli)->outbox().Unfinished()->size(), 1u);
  ASSERT_TRUE((*cli)->sources().PutFeedState("corp", "cookie", "from cli").ok());
  EXPECT_EQ(daemon.sources().GetFeedState("corp", "cookie").value(),
            std::optional<std::string>("from cli"));
}

TEST_F(StoreTest, NewerSchemaIsRefused) {
  Open();
  store_.reset();
  {
    RawDb raw(path_);
    raw.Exec("PRAGMA user_version = " + std::to_string(LatestSchemaVersion() + 1));
  }
  Result<std::unique_ptr<Store>> store = Store::Open(Url());
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store, StatusIs(StatusCode::kFailedPrecondition));
}

// --- migrations, with lists of the test's own ---

class MigrationTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    raw_ = std::make_unique<RawDb>(path_ + ".m", /*create=*/true);
  }
  void TearDown() override {
    raw_.reset();
    StoreTest::TearDown();
  }
  std::unique_ptr<RawDb> raw_;
};

TEST_F(MigrationTest, AppliesInOrderAndRecordsVersion) {
  const sqlite::Migration list[] = {
      {1, "CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (1);"},
      {2, "ALTER TABLE t ADD COLUMN b TEXT NOT NULL DEFAULT 'x';"},
  };
  ASSERT_TRUE(sqlite::ApplyMigrations(raw_->get(), list).ok());
  EXPECT_EQ(raw_->Int("PRAGMA user_version"), 2);
  EXPECT_EQ(raw_->Text("SELECT b FROM t WHERE a = 1"), "x");
}

TEST_F(MigrationTest, AppliesOnlyWhatIsMissing) {
  const sqlite::Migration first[] = {{1, "CREATE TABLE t (a INTEGER);"}};
  ASSERT_TRUE(sqlite::ApplyMigrations(raw_->get(), first).ok());
  // Running version 1 again would fail (the table exists): it is skipped.
  const sqlite::Migration both[] = {{1, "CREATE TABLE t (a INTEGER);"},
                                    {2, "CREATE TABLE u (a INTEGER);"}};
  ASSERT_TRUE(sqlite::ApplyMigrations(raw_->get(), both).ok());
  EXPECT_EQ(raw_->Int("PRAGMA user_version"), 2);
  EXPECT_EQ(raw_->Int("SELECT count(*) FROM sqlite_master WHERE name = 'u'"), 1);
}

TEST_F(MigrationTest, FailedMigrationLeavesPreviousVersionWhole) {
  const sqlite::Migration list[] = {
      {1, "CREATE TABLE t (a INTEGER);"},
      {2, "CREATE TABLE u (a INTEGER); INSERT INTO no_such_table VALUES (1);"},
  };
  Status status = sqlite::ApplyMigrations(raw_->get(), list);
  EXPECT_THAT(status, StatusIs(StatusCode::kInternal)) << status.ToString();
  EXPECT_NE(status.message().find("schema migration 2"), std::string::npos) << status.message();
  EXPECT_EQ(raw_->Int("PRAGMA user_version"), 1);
  EXPECT_EQ(raw_->Int("SELECT count(*) FROM sqlite_master WHERE name = 'u'"), 0);
}

TEST_F(MigrationTest, NewerVersionIsFailedPrecondition) {
  raw_->Exec("PRAGMA user_version = 3");
  const sqlite::Migration list[] = {{1, "CREATE TABLE t (a INTEGER);"}};
  EXPECT_THAT(sqlite::ApplyMigrations(raw_->get(), list),
              StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_EQ(raw_->Int("SELECT count(*) FROM sqlite_master WHERE name = 't'"), 0);
}

TEST_F(StoreTest, AStoreOfSchemaTwoOpensAndFinishesItsSentAdoptions) {
  // A store as the release before typed columns wrote it: the adopt flag
  // only in the operation JSON, the catalog, projects, source health and
  // feed cursors under metadata keys.
  {
    RawDb raw(path_, /*create=*/true);
    const std::span<const sqlite::Migration> all = sqlite::Migrations();
    ASSERT_TRUE(sqlite::ApplyMigrations(raw.get(), all.subspan(0, 2)).ok());
    ASSERT_EQ(raw.Int("PRAGMA user_version"), 2);
    std::vector<OutboxEntry> seed = {MakeEntry("adopting"), MakeEntry("plain")};
    Result<std::string> write = internal::EncodeWrite(seed[0].write);
    ASSERT_TRUE(write.ok());
    for (const char* key : {"adopting", "plain"}) {
      const bool adopt = std::string(key) == "adopting";
      raw.Exec(std::string("INSERT INTO outbox (op, email, idempotency_key, write_json, "
                           "operation_json, source, state, attempts, created_ms, updated_ms) "
                           "VALUES ('update', 'x@example.com', '") +
               key + "', '" + *write + "', '" +
               (adopt ? R"({"op":"update","adopt":true})" : R"({"op":"update"})") +
               "', 'full-run', 'sent', 1, 1, 1)");
    }
    raw.Exec("INSERT INTO meta (key, value) VALUES ('catalog', '" +
             internal::EncodeCatalog(mapping::Catalog::Builtin()) + "')");
    raw.Exec(R"(INSERT INTO meta (key, value) VALUES ('projects', '[{"id":"p_1","name":"bot"}]'))");
    raw.Exec(R"(INSERT INTO meta (key, value) VALUES ('source_state:corp-ad', )"
             R"('{"name":"corp-ad","type":"ldap","failing":true,"last_error":"down"}'))");
    raw.Exec("INSERT INTO meta (key, value) VALUES ('feed:corp-ad:cookie', 'rid=001,csn=x')");
  }
  Store& store = Open();
  RawDb raw(path_);
  EXPECT_EQ(raw.Int("PRAGMA user_version"), LatestSchemaVersion());
  EXPECT_EQ(raw.Int("SELECT count(*) FROM sqlite_master WHERE name = 'meta'"), 0);
  std::vector<OutboxEntry> unfinished = store.outbox().Unfinished().value();
  ASSERT_EQ(unfinished.size(), 2u);
  EXPECT_EQ(unfinished[0].write.idempotency_key, "adopting");
  EXPECT_TRUE(unfinished[0].adopt);
  EXPECT_EQ(unfinished[0].kind, mapping::OpKind::kUpdate);
  EXPECT_FALSE(unfinished[1].adopt);
  EXPECT_EQ(unfinished[0].state, OutboxState::kSent);
  // ... and it finishes as an adoption would.
  Completion c;
  c.entry_id = unfinished[0].id;
  c.user = MakeUser("u-1", "x@example.com");
  c.user_id = "u-1";
  c.action = "update";
  c.management = Completion::Management::kAdopted;
  ASSERT_TRUE(store.outbox().Complete(c).ok());
  EXPECT_EQ(store.mirror().Managed()->front().how, "adopted");

  std::optional<mapping::Catalog> catalog = store.account_cache().GetCatalog().value();
  ASSERT_TRUE(catalog.has_value());
  EXPECT_EQ(catalog->item_count(), mapping::Catalog::Builtin().item_count());
  std::optional<std::vector<mapping::Project>> projects =
      store.account_cache().GetProjects().value();
  ASSERT_TRUE(projects.has_value());
  ASSERT_EQ(projects->size(), 1u);
  EXPECT_EQ((*projects)[0].name, "bot");
  std::optional<SourceHealth> health = store.sources().GetHealth("corp-ad").value();
  ASSERT_TRUE(health.has_value());
  EXPECT_TRUE(health->failing);
  EXPECT_EQ(health->last_error, "down");
  EXPECT_EQ(store.sources().GetFeedState("corp-ad", "cookie").value(),
            std::optional<std::string>("rid=001,csn=x"));
}

TEST(RedactedStoreUrl, ShowsWhereButNeverAPasswordOrTheQuery) {
  EXPECT_EQ(RedactedStoreUrl("sqlite:///var/lib/idsync/state.db"),
            "sqlite:///var/lib/idsync/state.db");
  EXPECT_EQ(RedactedStoreUrl("postgresql://idsync:s3cret@db.corp.example:5432/idsync"
                             "?sslmode=verify-full&password=s3cret"),
            "postgresql://db.corp.example:5432/idsync");
  EXPECT_EQ(RedactedStoreUrl("postgres://u@h/db"), "postgres://h/db");
  EXPECT_EQ(RedactedStoreUrl("postgresql://h1,h2/db"), "postgresql://h1,h2/db");
  // An '@' inside the password still ends at the last one before the path.
  EXPECT_EQ(RedactedStoreUrl("postgresql://u:p@ss@h/db"), "postgresql://h/db");
  EXPECT_EQ(RedactedStoreUrl("postgresql://"), "postgresql://");
}

TEST(AuditHash, IsHexSha256OfTheCanonicalForm) {
  AuditEntry a = MakeAudit(1);
  a.seq = 1;
  std::string hash = AuditHash(a).value();
  EXPECT_EQ(hash.size(), 64u);
  EXPECT_EQ(hash.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(hash, Sha256Hex(AuditCanonical(a)).value());
  // A known digest, so that the chain stays checkable across builds.
  EXPECT_EQ(Sha256Hex("abc").value(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(AuditHash, EveryFieldCountsAndFieldBoundariesAreUnambiguous) {
  AuditEntry base = MakeAudit(1);
  base.seq = 1;
  base.prev_hash = "00ff";
  const std::string hash = AuditHash(base).value();
  struct Case {
    std::string name;
    void (*edit)(AuditEntry&);
  };
  const Case cases[] = {
      {"seq", [](AuditEntry& a) { a.seq = 2; }},
      {"at_ms", [](AuditEntry& a) { a.at_ms += 1; }},
      {"run_id", [](AuditEntry& a) { a.run_id = 8; }},
      {"action", [](AuditEntry& a) { a.action = "remove"; }},
      {"email", [](AuditEntry& a) { a.email = "x@example.com"; }},
      {"user_id", [](AuditEntry& a) { a.user_id = "u-x"; }},
      {"source", [](AuditEntry& a) { a.source = "scim:okta"; }},
      {"detail_json", [](AuditEntry& a) { a.detail_json = "{}"; }},
      {"prev_hash", [](AuditEntry& a) { a.prev_hash = "00fe"; }},
      // Text moved across a field boundary.
      {"email/user_id boundary",
       [](AuditEntry& a) {
         a.email = "user1@example.comu";
         a.user_id = "-1";
       }},
      {"action/email boundary",
       [](AuditEntry& a) {
         a.action = "updat";
         a.email = "euser1@example.com";
       }},
      {"at_ms/run_id digits",
       [](AuditEntry& a) {
         a.at_ms = 10007;
         a.run_id = 0;
       }},
  };
  for (const Case& c : cases) {
    AuditEntry edited = base;
    c.edit(edited);
    EXPECT_NE(AuditHash(edited).value(), hash) << c.name;
  }
  AuditEntry with_hash = base;
  with_hash.hash = "whatever";  // the stored hash is not hashed
  EXPECT_EQ(AuditHash(with_hash).value(), hash);
}

}  // namespace
}  // namespace idsync::store
