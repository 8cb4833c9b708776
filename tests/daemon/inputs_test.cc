// ReadAllSources with a store: a good read is kept; a failed read is replaced
// by the last good one (marked failed) or, with none, by an empty never-read
// snapshot that holds every reduction back; each source's state is recorded
// for `status`. SQLite in a temporary directory; LDIF sources.
#include "idsync/daemon/inputs.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <unistd.h>

#include "idsync/config/config.h"
#include "idsync/daemon/connector_registry.h"
#include "idsync/store/store.h"

namespace idsync::daemon {
namespace {

namespace fs = std::filesystem;

class InputsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("idsync-inputs-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    fs::copy_file(std::string(IDSYNC_SOURCE_DIR) + "/examples/directory.ldif",
                  dir_ / "directory.ldif");
    std::ofstream(dir_ / "idsync.yaml")
        << "store: sqlite://" << (dir_ / "state.db").string() << "\n"
        << "sources:\n"
        << "  - name: hr\n    type: ldif\n    path: directory.ldif\n"
        << "    users: {base: \"ou=people,dc=corp,dc=example\", filter: "
           "\"(objectClass=inetOrgPerson)\", email: mail, name: cn}\n"
        << "    groups: {base: \"ou=groups,dc=corp,dc=example\", filter: "
           "\"(objectClass=groupOfNames)\", name: cn, member: member}\n"
        << "permissions: {catalog: builtin}\n"
        << "rules:\n  - {name: voice, match: {group: \"Voice Team\"}, preset: voice-specialist}\n";
    auto loaded = config::LoadConfig((dir_ / "idsync.yaml").string(), daemon::BuiltinLoadOptions());
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    config_ = std::move(loaded).value();
    auto store = store::Store::Open(config_.store);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }
  void TearDown() override { fs::remove_all(dir_); }

  SourceReads Read(bool record, std::int64_t now) {
    ReadContext context;
    context.store = store_.get();
    context.record = record;
    context.now = [now] { return now; };
    return ReadAllSources(config_, context);
  }

  fs::path dir_;
  config::Config config_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(InputsTest, AFailedReadStandsInWithTheLastGoodOne) {
  SourceReads good = Read(/*record=*/true, 1000);
  ASSERT_TRUE(good.failed.empty());
  ASSERT_EQ(good.snapshots.size(), 1u);
  const std::size_t users = good.snapshots[0].users.size();
  ASSERT_GT(users, 5u);
  EXPECT_EQ(good.states[0].last_success_ms, 1000);

  fs::remove(dir_ / "directory.ldif");
  SourceReads failed = Read(/*record=*/true, 2000);
  ASSERT_EQ(failed.failed, std::vector<std::string>{"hr"});
  EXPECT_FALSE(failed.hold_all) << "a last good read exists";
  ASSERT_EQ(failed.snapshots.size(), 1u);
  EXPECT_TRUE(failed.snapshots[0].failed);
  EXPECT_FALSE(failed.snapshots[0].never_read);
  EXPECT_EQ(failed.snapshots[0].users.size(), users);
  EXPECT_EQ(failed.snapshots[0].groups.size(), good.snapshots[0].groups.size());

  std::vector<SourceStatus> states = LoadSourceStatuses(config_, *store_);
  ASSERT_EQ(states.size(), 1u);
  EXPECT_TRUE(states[0].failing);
  EXPECT_FALSE(states[0].never_read);
  EXPECT_EQ(states[0].last_success_ms, 1000);
  EXPECT_EQ(states[0].last_error_ms, 2000);
  EXPECT_FALSE(states[0].last_error.empty());
  EXPECT_EQ(states[0].users, static_cast<std::int64_t>(users));
}

TEST_F(InputsTest, NeverReadHoldsEverything) {
  fs::remove(dir_ / "directory.ldif");
  SourceReads reads = Read(/*record=*/true, 1000);
  EXPECT_TRUE(reads.hold_all);
  ASSERT_EQ(reads.snapshots.size(), 1u);
  EXPECT_TRUE(reads.snapshots[0].failed);
  EXPECT_TRUE(reads.snapshots[0].never_read);
  EXPECT_TRUE(reads.snapshots[0].users.empty());
  std::vector<SourceStatus> states = LoadSourceStatuses(config_, *store_);
  EXPECT_TRUE(states[0].failing);
  EXPECT_TRUE(states[0].never_read);
}

TEST_F(InputsTest, ReadingWithoutRecordingKeepsNothing) {
  SourceReads good = Read(/*record=*/false, 1000);
  ASSERT_TRUE(good.failed.empty());
  auto stored = store_->sources().GetRead("hr");
  ASSERT_TRUE(stored.ok());
  EXPECT_FALSE(stored->has_value());
  EXPECT_TRUE(LoadSourceStatuses(config_, *store_)[0].never_read);
}

TEST_F(InputsTest, RecoveryClearsFailingButKeepsTheLastError) {
  Read(true, 1000);
  fs::rename(dir_ / "directory.ldif", dir_ / "away.ldif");
  Read(true, 2000);
  fs::rename(dir_ / "away.ldif", dir_ / "directory.ldif");
  SourceReads again = Read(true, 3000);
  EXPECT_TRUE(again.failed.empty());
  SourceStatus state = LoadSourceStatuses(config_, *store_)[0];
  EXPECT_FALSE(state.failing);
  EXPECT_EQ(state.last_success_ms, 3000);
  EXPECT_EQ(state.last_error_ms, 2000);
}

TEST_F(InputsTest, AFailedFeedMakesTheSourceFailingUntilItDeliversAgain) {
  Read(true, 1000);
  NoteFeedFailed(*store_, config_.sources[0], "connection reset", 2000);
  SourceStatus failing = LoadSourceStatuses(config_, *store_)[0];
  EXPECT_TRUE(failing.failing);
  EXPECT_FALSE(failing.never_read) << "the full run read it";
  EXPECT_EQ(failing.last_error, "change feed: connection reset");
  EXPECT_EQ(failing.last_error_ms, 2000);
  EXPECT_EQ(failing.last_success_ms, 1000);

  EXPECT_TRUE(NoteFeedRecovered(*store_, "hr", 7, 3, 3000));
  SourceStatus recovered = LoadSourceStatuses(config_, *store_)[0];
  EXPECT_FALSE(recovered.failing);
  EXPECT_EQ(recovered.last_success_ms, 3000);
  EXPECT_EQ(recovered.users, 7);
  EXPECT_EQ(recovered.groups, 3);
  EXPECT_EQ(recovered.last_error_ms, 2000);
}

TEST_F(InputsTest, AFeedFailingBeforeAnyReadLeavesTheSourceNeverRead) {
  NoteFeedFailed(*store_, config_.sources[0], "no such host", 2000);
  SourceStatus state = LoadSourceStatuses(config_, *store_)[0];
  EXPECT_TRUE(state.failing);
  EXPECT_TRUE(state.never_read);
  EXPECT_EQ(state.type, "ldif");
}

TEST_F(InputsTest, ARecoveryOfASourceNeverRecordedRecordsNothing) {
  EXPECT_FALSE(NoteFeedRecovered(*store_, "hr", 7, 3, 3000));
  EXPECT_TRUE(LoadSourceStatuses(config_, *store_)[0].never_read);
}

TEST_F(InputsTest, OfflineCommandsUseTheCatalogTheStoreCached) {
  const std::string config_path = (dir_ / "idsync.yaml").string();
  EXPECT_FALSE(CachedAccountCatalog(*store_).has_value());
  EXPECT_EQ(OfflineCatalog(config_path).item_keys(), mapping::Catalog::Builtin().item_keys());

  Result<mapping::Catalog> account =
      mapping::Catalog::Create({{"build", "Build", {{"knowledge", "Knowledge"}}}});
  ASSERT_TRUE(account.ok()) << account.status().ToString();
  ASSERT_TRUE(store_->account_cache().PutCatalog(*account).ok());
  std::optional<mapping::Catalog> cached = CachedAccountCatalog(*store_);
  ASSERT_TRUE(cached.has_value());
  EXPECT_EQ(cached->item_keys(), std::vector<std::string>{"build.knowledge"});
  EXPECT_EQ(OfflineCatalog(config_path).item_keys(), std::vector<std::string>{"build.knowledge"});
}

}  // namespace
}  // namespace idsync::daemon
