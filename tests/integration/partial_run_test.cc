// Partial runs (Syncer::ApplyPartial) over real HTTP against the account
// emulator: only the people in scope are planned, against the store's mirror
// (no account read), with the safety limits summed over the window and a
// failing source holding back reductions.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "idsync/account/account_client.h"
#include "idsync/base/ascii.h"
#include "idsync/config/config.h"
#include "idsync/daemon/connector_registry.h"
#include "idsync/daemon/inputs.h"
#include "idsync/daemon/sync.h"
#include "idsync/emulator/emulator.h"
#include "idsync/mapping/glob.h"
#include "idsync/store/store.h"

namespace idsync {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kToken = "partial-test-token";
constexpr const char* kSeed = R"({
  "projects": [{"id": "p_support", "name": "support-bot"}, {"id": "p_sales", "name": "sales-bot"}],
  "users": [
    {"id": "u_owner", "email": "owner@corp.example", "name": "Account Owner", "role": "admin",
     "status": "active", "permissions": {}, "projects": []}
  ]
})";

class PartialRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("idsync-partial-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    emulator::EmulatorOptions options;
    options.token = kToken;
    options.seed_json = kSeed;
    options.random_seed = 7;
    auto started = emulator::AccountEmulator::Start(options);
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    emulator_ = std::move(started).value();
  }
  void TearDown() override {
    emulator_.reset();
    fs::remove_all(dir_);
  }

  // The example company and rules, `max_changes` as given.
  // A full run that passes the limits (the first one invites everyone).
  void ForcedFullRun() {
    daemon::Syncer syncer(config_, *store_, *account_);
    daemon::ApplyOptions force;
    force.force = true;
    Result<daemon::ApplyReport> report = syncer.Apply(force);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    ASSERT_EQ(report->applied, 11) << "the example company has 11 people to invite";
  }

  void Load(const std::string& max_changes) {
    const std::string examples = std::string(IDSYNC_SOURCE_DIR) + "/examples";
    std::ifstream in(examples + "/idsync.yaml");
    std::stringstream text;
    text << in.rdbuf();
    std::string yaml = text.str();
    yaml = yaml.substr(0, yaml.find("safety:"));
    yaml += "safety:\n  max_removals: 5\n  max_changes: " + max_changes + "\n  window: 1h\n";
    ::setenv("IDSYNC_PARTIAL_TEST_TOKEN", kToken, 1);
    yaml += "account:\n  url: " + emulator_->base_url() +
            "\n  token: ${env:IDSYNC_PARTIAL_TEST_TOKEN}\n  retry_for: 30s\n"
            "  read_retry_for: 30s\n";
    yaml += "store: sqlite://" + (dir_ / "state.db").string() + "\n";
    // Relative LDIF paths resolve against the file's directory.
    Result<config::Config> loaded =
        config::ParseConfig(yaml, examples + "/idsync.yaml", daemon::BuiltinLoadOptions());
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    config_ = std::move(loaded).value();
    auto store = store::Store::Open(config_.store);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
    auto client = account::AccountClient::Create(config_.account);
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    account_ = std::move(client).value();
    daemon::SourceReads reads = daemon::ReadAllSources(config_);
    ASSERT_TRUE(reads.failed.empty());
    snapshots_ = reads.snapshots;
  }

  daemon::ApplyReport FullRun() {
    daemon::Syncer syncer(config_, *store_, *account_);
    Result<daemon::ApplyReport> report = syncer.Apply({});
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    return report.ok() ? *report : daemon::ApplyReport{};
  }

  // A partial run of `emails`; `now` is the run's clock (what the safety
  // window is measured with).
  Result<daemon::ApplyReport> Partial(std::vector<std::string> emails,
                                      const std::vector<mapping::SourceSnapshot>& snapshots,
                                      std::vector<std::string> failed = {},
                                      daemon::NowFn now = daemon::SystemNowMs) {
    daemon::Syncer syncer(config_, *store_, *account_, std::move(now));
    daemon::PartialRequest request;
    request.emails = std::move(emails);
    for (const mapping::SourceSnapshot& s : snapshots) request.snapshots.push_back(&s);
    request.failed_sources = std::move(failed);
    daemon::ApplyOptions options;
    options.source = "partial";
    options.priority = 10;
    return syncer.ApplyPartial(request, options);
  }

  // Puts the hr user with `email` into (or out of) the hr group `group`.
  static void SetMember(std::vector<mapping::SourceSnapshot>& snapshots, const std::string& group,
                        const std::string& email, bool member) {
    mapping::SourceSnapshot& hr = snapshots[0];
    std::uint32_t user = 0;
    for (; user < hr.users.size(); ++user) {
      if (base::AsciiLower(hr.users[user].email) == email) break;
    }
    ASSERT_LT(user, hr.users.size()) << email;
    for (auto& g : hr.groups) {
      if (g.name != group) continue;
      auto& members = g.member_users;
      members.erase(std::remove(members.begin(), members.end(), user), members.end());
      if (member) members.push_back(user);
      return;
    }
    FAIL() << "no group " << group;
  }

  json AccountUser(const std::string& email) {
    json state = json::parse(emulator_->StateJson());
    for (const auto& u : state["users"]) {
      if (base::AsciiLower(u["email"].get<std::string>()) == email) return u;
    }
    return nullptr;
  }

  fs::path dir_;
  std::unique_ptr<emulator::AccountEmulator> emulator_;
  config::Config config_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<account::AccountClient> account_;
  std::vector<mapping::SourceSnapshot> snapshots_;
};

TEST_F(PartialRunTest, PlansOnlyThePeopleInScopeAgainstTheMirror) {
  Load("none");
  FullRun();
  ASSERT_TRUE(AccountUser("kim@corp.example").is_null());  // no rule gives kim anything
  ASSERT_FALSE(AccountUser("eve@corp.example").is_null());
  const json eve_before = AccountUser("eve@corp.example");
  std::uint64_t seen = emulator_->Requests().empty() ? 0 : emulator_->Requests().back().seq;

  std::vector<mapping::SourceSnapshot> changed = snapshots_;
  SetMember(changed, "Voice Team", "kim@corp.example", true);
  SetMember(changed, "Voice Team", "eve@corp.example", false);  // out of scope
  Result<daemon::ApplyReport> report = Partial({"kim@corp.example"}, changed);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->plan.summary.invite, 1);
  EXPECT_EQ(report->plan.operations.size(), 1u);
  EXPECT_EQ(report->applied, 1);

  const json kim = AccountUser("kim@corp.example");
  ASSERT_FALSE(kim.is_null()) << "kim was not invited";
  EXPECT_EQ(AccountUser("eve@corp.example"), eve_before) << "eve was out of scope";
  std::vector<std::string> endpoints;
  for (const auto& r : emulator_->Requests(seen)) endpoints.push_back(r.endpoint);
  EXPECT_EQ(endpoints, std::vector<std::string>{"POST /users"})
      << "a partial run reads nothing from the account and writes only its people";

  // The run is recorded as a partial run; the invite is audited as usual.
  auto runs = store_->runs().RecentRuns(1);
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ((*runs)[0].kind, "partial");
  EXPECT_EQ((*runs)[0].result, "ok");
}

TEST_F(PartialRunTest, LimitsHoldOverTheSumOfTheWindow) {
  Load("1");
  FullRun();  // the first full run is limited too: plan it with force
  {
    daemon::Syncer syncer(config_, *store_, *account_);
    daemon::ApplyOptions force;
    force.force = true;
    ASSERT_TRUE(syncer.Apply(force).ok());
  }
  std::vector<mapping::SourceSnapshot> changed = snapshots_;
  SetMember(changed, "Voice Team", "kim@corp.example", true);
  Result<daemon::ApplyReport> first = Partial({"kim@corp.example"}, changed);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE(first->blocked);
  EXPECT_EQ(first->applied, 1);

  SetMember(changed, "Knowledge Writers", "kim@corp.example", true);
  Result<daemon::ApplyReport> second = Partial({"kim@corp.example"}, changed);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_TRUE(second->blocked) << "1 change earlier in the window plus 1 now exceed max_changes 1";
  ASSERT_FALSE(second->plan.reasons.empty());
  EXPECT_NE(second->plan.reasons[0].find("earlier in the window"), std::string::npos)
      << second->plan.reasons[0];
  EXPECT_EQ(second->applied, 0);
}

TEST_F(PartialRunTest, AFailingSourceHoldsBackReductions) {
  Load("none");
  FullRun();
  const json eve_before = AccountUser("eve@corp.example");
  ASSERT_FALSE(eve_before.is_null());
  // hr fails and has no good read to stand in: its snapshot is empty, so
  // nobody seems to know eve; still nobody may lose access.
  std::vector<mapping::SourceSnapshot> failing = snapshots_;
  failing[0].users.clear();
  failing[0].groups.clear();
  failing[0].failed = true;
  failing[0].never_read = true;
  daemon::Syncer syncer(config_, *store_, *account_);
  daemon::PartialRequest request;
  request.emails = {"eve@corp.example"};
  for (const mapping::SourceSnapshot& s : failing) request.snapshots.push_back(&s);
  request.failed_sources = {"hr"};
  request.hold_all = true;
  Result<daemon::ApplyReport> held = syncer.ApplyPartial(request, {});
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  EXPECT_TRUE(held->plan.operations.empty());
  EXPECT_EQ(held->plan.held, std::vector<std::string>{"eve@corp.example"});
  EXPECT_EQ(AccountUser("eve@corp.example"), eve_before);

  // The same snapshot read successfully (the source really is empty): eve goes.
  failing[0].failed = false;
  failing[0].never_read = false;
  Result<daemon::ApplyReport> applied = Partial({"eve@corp.example"}, failing);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  ASSERT_EQ(applied->plan.operations.size(), 1u);
  EXPECT_EQ(applied->plan.operations[0].kind, mapping::OpKind::kRemove);
  EXPECT_TRUE(AccountUser("eve@corp.example").is_null());
}

TEST_F(PartialRunTest, RunsOlderThanTheWindowNoLongerCount) {
  Load("1");  // window: 1h
  ASSERT_NO_FATAL_FAILURE(ForcedFullRun());
  const std::int64_t t0 = daemon::SystemNowMs();
  auto at = [](std::int64_t ms) { return [ms] { return ms; }; };
  constexpr std::int64_t kMinute = 60 * 1000;
  std::vector<mapping::SourceSnapshot> changed = snapshots_;

  SetMember(changed, "Voice Team", "kim@corp.example", true);
  Result<daemon::ApplyReport> first = Partial({"kim@corp.example"}, changed, {}, at(t0));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_FALSE(first->blocked);
  ASSERT_EQ(first->applied, 1);

  // Half an hour later: the first run is in the window, 1 + 1 > 1.
  SetMember(changed, "Voice Team", "jose@corp.example", true);
  Result<daemon::ApplyReport> inside =
      Partial({"jose@corp.example"}, changed, {}, at(t0 + 30 * kMinute));
  ASSERT_TRUE(inside.ok()) << inside.status().ToString();
  EXPECT_TRUE(inside->blocked) << "the run 30 minutes ago is in the 1 h window";
  ASSERT_EQ(inside->plan.reasons.size(), 1u);
  EXPECT_NE(inside->plan.reasons[0].find("1 earlier in the window"), std::string::npos)
      << inside->plan.reasons[0];
  EXPECT_EQ(inside->applied, 0);

  // Just over an hour after the first: it has dropped out (and the blocked
  // run applied nothing, so it never counted).
  Result<daemon::ApplyReport> outside =
      Partial({"jose@corp.example"}, changed, {}, at(t0 + 61 * kMinute));
  ASSERT_TRUE(outside.ok()) << outside.status().ToString();
  EXPECT_FALSE(outside->blocked) << ::testing::PrintToString(outside->plan.reasons);
  EXPECT_EQ(outside->applied, 1);
  const json jose = AccountUser("jose@corp.example");
  ASSERT_FALSE(jose.is_null());
  EXPECT_EQ(jose["projects"].size(), 2u) << "voice adds sales-bot: " << jose.dump();

  // And that run counts for the hour after it.
  SetMember(changed, "Voice Team", "iris@corp.example", true);
  Result<daemon::ApplyReport> next =
      Partial({"iris@corp.example"}, changed, {}, at(t0 + 62 * kMinute));
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_TRUE(next->blocked);
  EXPECT_EQ(next->applied, 0);
}

TEST_F(PartialRunTest, APercentageIsOfAllManagedUsersNotOfThoseInScope) {
  // 11 managed users after the first run: 20% allows 2 changes. Of the
  // one managed person in scope below it would allow 1.
  Load("20%");
  ASSERT_NO_FATAL_FAILURE(ForcedFullRun());
  std::vector<mapping::SourceSnapshot> changed = snapshots_;
  SetMember(changed, "Voice Team", "kim@corp.example", true);   // an invite
  SetMember(changed, "Voice Team", "iris@corp.example", true);  // an update
  Result<daemon::ApplyReport> two = Partial({"kim@corp.example", "iris@corp.example"}, changed);
  ASSERT_TRUE(two.ok()) << two.status().ToString();
  EXPECT_FALSE(two->blocked) << ::testing::PrintToString(two->plan.reasons);
  EXPECT_EQ(two->plan.summary.invite, 1);
  EXPECT_EQ(two->plan.summary.update, 1);
  EXPECT_EQ(two->applied, 2);

  // The window holds those 2: one more is over 20% of 11 (now 12 managed: still 2).
  SetMember(changed, "Voice Team", "jose@corp.example", true);
  Result<daemon::ApplyReport> third = Partial({"jose@corp.example"}, changed);
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  EXPECT_TRUE(third->blocked) << "2 earlier in the window plus 1 exceed 20% of 12";
  ASSERT_FALSE(third->plan.reasons.empty());
  EXPECT_NE(third->plan.reasons[0].find("2 earlier in the window"), std::string::npos)
      << third->plan.reasons[0];
  EXPECT_EQ(third->applied, 0);
}

// A full run given a RulesCache leaves the catalog and rules it planned with
// there, and partial runs use them as they are rather than compile their
// own; a partial run that finds the cache empty fills it.
TEST_F(PartialRunTest, PartialRunsUseTheRulesTheFullRunCompiled) {
  Load("none");
  daemon::RulesCache cache;
  {
    daemon::Syncer syncer(config_, *store_, *account_);
    daemon::ApplyOptions options;
    options.rules = &cache;
    ASSERT_TRUE(syncer.Apply(options).ok());
  }
  const std::shared_ptr<const daemon::CompiledRules> compiled = cache.Get();
  ASSERT_NE(compiled, nullptr);
  ASSERT_NE(compiled->rules, nullptr);

  std::vector<mapping::SourceSnapshot> changed = snapshots_;
  SetMember(changed, "Voice Team", "kim@corp.example", true);
  auto partial = [&](daemon::RulesCache& rules, const std::string& email) {
    daemon::Syncer syncer(config_, *store_, *account_);
    daemon::PartialRequest request;
    request.emails = {email};
    for (const mapping::SourceSnapshot& s : changed) request.snapshots.push_back(&s);
    daemon::ApplyOptions options;
    options.rules = &rules;
    return syncer.ApplyPartial(request, options);
  };
  Result<daemon::ApplyReport> kim = partial(cache, "kim@corp.example");
  ASSERT_TRUE(kim.ok()) << kim.status().ToString();
  EXPECT_EQ(kim->applied, 1);
  EXPECT_EQ(cache.Get(), compiled) << "the partial run compiled rules of its own";

  daemon::RulesCache empty;
  SetMember(changed, "Voice Team", "jose@corp.example", true);
  Result<daemon::ApplyReport> jose = partial(empty, "jose@corp.example");
  ASSERT_TRUE(jose.ok()) << jose.status().ToString();
  EXPECT_EQ(jose->applied, 1);
  ASSERT_NE(empty.Get(), nullptr) << "the partial run left the rules it compiled";
  EXPECT_NE(empty.Get()->rules, nullptr);
}

}  // namespace
}  // namespace idsync
