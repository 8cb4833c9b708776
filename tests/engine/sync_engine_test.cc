// The sync engine (daemon::Syncer over engine::Executor) against in-memory
// fakes of the account and the store (tests/fakes): outbox order, adoption,
// the stop on 401, batching, store failures and the safety window, as
// tables, with no server and no clock but the test's.
#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "idsync/config/config.h"
#include "idsync/daemon/connector_registry.h"
#include "idsync/daemon/sync.h"
#include "idsync/fakes/fake_account.h"
#include "idsync/fakes/memory_store.h"
#include "idsync/testing/status_matchers.h"

namespace idsync {
namespace {

using fakes::FakeAccount;
using Kind = mapping::AccountWrite::Kind;

// A person in the directory and the groups they are in.
struct Person {
  std::string email;
  std::vector<std::string> groups;
  bool disabled = false;
};

mapping::SourceSnapshot Directory(const std::vector<Person>& people) {
  mapping::SourceSnapshot s;
  s.source = "hr";
  std::map<std::string, std::uint32_t> group_index;
  for (const Person& p : people) {
    for (const std::string& g : p.groups) {
      if (group_index.count(g) > 0) continue;
      group_index[g] = static_cast<std::uint32_t>(s.groups.size());
      mapping::DirectoryGroup group;
      group.id = "g-" + g;
      group.name = g;
      s.groups.push_back(group);
    }
  }
  for (const Person& p : people) {
    const auto index = static_cast<std::uint32_t>(s.users.size());
    s.users.push_back({"id-" + p.email, "", p.email, "Name of " + p.email, p.disabled});
    for (const std::string& g : p.groups) s.groups[group_index[g]].member_users.push_back(index);
  }
  return s;
}

std::string Yaml(const std::string& extra) {
  return "account:\n"
         "  url: http://127.0.0.1:1\n"
         "  token: ${env:IDSYNC_TEST_UNUSED}\n"
         "  concurrency: 4\n"
         "sources:\n"
         "  - name: hr\n"
         "    type: ldif\n"
         "    path: hr.ldif\n"
         "    users: {base: \"dc=example,dc=com\"}\n"
         "rules:\n"
         "  - {name: admins, match: {group: Admins}, role: admin}\n"
         "  - {name: voice, match: {group: Voice}, preset: voice-specialist}\n"
         "  - {name: qa, match: {group: QA}, preset: qa-analyst}\n"
         "protect: [owner@example.com]\n" +
         extra;
}

class SyncEngineTest : public ::testing::Test {
 protected:
  void Configure(const std::string& extra = "deprovision: remove\n") {
    config::LoadOptions options;
    options.source_types = &daemon::BuiltinConnectors().types();
    options.getenv = [](const std::string&) -> std::optional<std::string> { return "unused"; };
    Result<config::Config> loaded = config::ParseConfig(Yaml(extra), "/tmp/t.yaml", options);
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    config_ = std::move(loaded).value();
  }

  daemon::Syncer MakeSyncer() {
    daemon::ReadContext reads;
    reads.read =
        [this](const config::SourceConfig&) -> std::optional<Result<mapping::SourceSnapshot>> {
      return Result<mapping::SourceSnapshot>(directory_);
    };
    return daemon::Syncer(
        config_, *store_, *account_, [this] { return now_ms_.load(); }, reads);
  }

  Result<daemon::ApplyReport> Apply(bool force = false) {
    daemon::ApplyOptions options;
    options.force = force;
    return MakeSyncer().Apply(options);
  }

  Result<daemon::ApplyReport> Partial(const std::vector<std::string>& emails) {
    daemon::PartialRequest request;
    request.emails = emails;
    request.snapshots = {&directory_};
    daemon::ApplyOptions options;
    options.source = "partial";
    return MakeSyncer().ApplyPartial(request, options);
  }

  // Writes the account received, as "kind email" in order.
  std::vector<std::string> WriteLog() const {
    std::vector<std::string> out;
    for (const auto& w : account_->Writes()) {
      const char* kind = w.kind == Kind::kInvite  ? "invite"
                         : w.kind == Kind::kPatch ? "patch"
                                                  : "delete";
      out.push_back(std::string(kind) + " " + w.email);
    }
    return out;
  }

  std::string AddAccountUser(const std::string& email, mapping::Role role, bool managed) {
    mapping::AccountRecord r;
    r.email = email;
    r.name = "Name of " + email;
    r.role = role;
    r.status = mapping::AccountUser::Status::kActive;
    const std::string id = account_->AddUser(r);
    if (managed) {
      EXPECT_THAT(store_->mirror().SetManaged({id, email, "invited", 1}), IsOk());
    }
    return id;
  }

  // A new, empty account and store.
  void Reset() {
    store_ = std::make_unique<fakes::MemoryStore>();
    account_ = std::make_unique<FakeAccount>();
  }

  config::Config config_;
  std::unique_ptr<fakes::MemoryStore> store_ = std::make_unique<fakes::MemoryStore>();
  std::unique_ptr<FakeAccount> account_ = std::make_unique<FakeAccount>();
  mapping::SourceSnapshot directory_;
  std::atomic<std::int64_t> now_ms_{1'000'000};
};

TEST_F(SyncEngineTest, GrantsLandBeforeReductions) {
  struct Case {
    const char* name;
    std::vector<Person> directory;
    std::vector<std::pair<std::string, mapping::Role>> managed_in_account;
    // Expected writes: every grant (invite, patch) comes before every delete.
    std::multiset<std::string> writes;
  };
  const std::vector<Case> cases = {
      {"a new admin lands before the old admin is removed",
       {{"new@example.com", {"Admins"}}},
       {{"old@example.com", mapping::Role::kAdmin}},
       {"invite new@example.com", "delete old@example.com"}},
      {"invites and a promotion before two removals",
       {{"a@example.com", {"Voice"}}, {"b@example.com", {"QA"}}, {"c@example.com", {"Admins"}}},
       {{"c@example.com", mapping::Role::kMember},
        {"gone1@example.com", mapping::Role::kMember},
        {"gone2@example.com", mapping::Role::kMember}},
       {"invite a@example.com", "invite b@example.com", "patch c@example.com",
        "delete gone1@example.com", "delete gone2@example.com"}},
      {"only grants", {{"x@example.com", {"Voice"}}}, {}, {"invite x@example.com"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Reset();
    ASSERT_NO_FATAL_FAILURE(
        Configure("deprovision: remove\nsafety: {max_removals: none, max_changes: none}\n"));
    AddAccountUser("owner@example.com", mapping::Role::kAdmin, false);  // the last admin check
    for (const auto& [email, role] : c.managed_in_account) AddAccountUser(email, role, true);
    directory_ = Directory(c.directory);
    Result<daemon::ApplyReport> report = Apply();
    ASSERT_THAT(report.status(), IsOk());
    EXPECT_EQ(daemon::ApplyExitCode(*report), 0) << ::testing::PrintToString(report->plan.reasons);
    const std::vector<std::string> log = WriteLog();
    EXPECT_EQ(std::multiset<std::string>(log.begin(), log.end()), c.writes);
    const auto first_delete = std::find_if(
        log.begin(), log.end(), [](const std::string& w) { return w.rfind("delete", 0) == 0; });
    EXPECT_TRUE(std::all_of(first_delete, log.end(), [](const std::string& w) {
      return w.rfind("delete", 0) == 0;
    })) << ::testing::PrintToString(log);
    // Every entry is done, and the audit chain holds one entry per write.
    for (const auto& e : store_->AllEntries()) EXPECT_EQ(e.state, store::OutboxState::kDone);
    EXPECT_EQ(store_->audit().Verify(std::nullopt)->entries, static_cast<std::int64_t>(log.size()));
    EXPECT_TRUE(store_->audit().Verify(std::nullopt)->ok);
  }
}

TEST_F(SyncEngineTest, AnInviteOfAnAddressAlreadyThere) {
  struct Case {
    const char* name;
    std::string yaml;
    std::string email;
    bool adopted;  // patched and managed; else failed and left alone
  };
  const std::vector<Case> cases = {
      {"adopted", "adopt_existing: true\n", "taken@example.com", true},
      {"not adopted when adopt_existing is false", "adopt_existing: false\n", "taken@example.com",
       false},
      {"never a protected address", "adopt_existing: true\n", "owner@example.com", false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Reset();
    ASSERT_NO_FATAL_FAILURE(Configure(c.yaml));
    directory_ = Directory({{c.email, {"Voice"}}});
    // Someone adds the address by hand after the plan read the account.
    mapping::AccountRecord by_hand;
    by_hand.email = c.email;
    by_hand.name = "Added by hand";
    by_hand.status = mapping::AccountUser::Status::kActive;
    account_->AppearsBeforeNextWrite(by_hand);
    Result<daemon::ApplyReport> report = Apply();
    ASSERT_THAT(report.status(), IsOk());
    const std::vector<std::string> log = WriteLog();
    const std::map<std::string, mapping::AccountRecord> users = account_->Users();
    const std::string existing = users.count(c.email) ? users.at(c.email).id : "";
    std::vector<store::ManagedUser> managed = store_->mirror().Managed().value();
    if (c.adopted) {
      ASSERT_GE(log.size(), 1u);
      EXPECT_EQ(log[0], "invite " + c.email);
      EXPECT_EQ(log, (std::vector<std::string>{"invite " + c.email, "patch " + c.email}));
      EXPECT_EQ(report->applied, 1);
      ASSERT_EQ(managed.size(), 1u);
      EXPECT_EQ(managed[0].user_id, existing);
      EXPECT_EQ(managed[0].how, "adopted");
      EXPECT_EQ(store_->audit().Since(0).value().back().action, "adopt");
    } else {
      // Never planned (protected), or refused with a conflict: left alone.
      EXPECT_LE(log.size(), 1u);
      EXPECT_EQ(std::count(log.begin(), log.end(), "patch " + c.email), 0);
      EXPECT_TRUE(managed.empty());
      if (!existing.empty()) {
        EXPECT_EQ(users.at(c.email).name, "Added by hand");
      }
      if (!log.empty()) {
        EXPECT_EQ(report->failed, 1);
        EXPECT_EQ(daemon::ApplyExitCode(*report), 1);
        EXPECT_EQ(store_->outbox().Failed(0)->size(), 1u);
      }
    }
  }
}

TEST_F(SyncEngineTest, A401StopsTheRunAndTheNextRunFinishesWithTheSameKey) {
  ASSERT_NO_FATAL_FAILURE(Configure());
  config_.account.concurrency = 1;  // one write at a time: the stop is exact
  std::vector<Person> people;
  for (int i = 0; i < 10; ++i) people.push_back({"p" + std::to_string(i) + "@example.com", {"QA"}});
  directory_ = Directory(people);
  account_->FailWrites("p3@example.com", StatusCode::kUnauthenticated);
  Result<daemon::ApplyReport> stopped = Apply();
  ASSERT_THAT(stopped.status(), IsOk());
  EXPECT_TRUE(stopped->stopped);
  EXPECT_EQ(stopped->applied, 3);
  EXPECT_EQ(stopped->pending, 7);
  EXPECT_EQ(daemon::ApplyExitCode(*stopped), 1);
  const std::vector<FakeAccount::LoggedWrite> first = account_->Writes();
  ASSERT_EQ(first.size(), 4u);  // three landed, the fourth refused, nothing after it
  const std::string refused_key = first[3].idempotency_key;

  Result<daemon::ApplyReport> next = Apply();
  ASSERT_THAT(next.status(), IsOk());
  EXPECT_EQ(next->recovered, 1);  // the refused write, sent again with its key
  EXPECT_EQ(next->dropped, 6);    // never sent: planned afresh
  EXPECT_EQ(daemon::ApplyExitCode(*next), 0);
  EXPECT_EQ(account_->Users().size(), 10u);
  const std::vector<FakeAccount::LoggedWrite> all = account_->Writes();
  EXPECT_EQ(all[4].idempotency_key, refused_key);
  std::set<std::string> keys;
  for (const auto& w : all) {
    if (w.applied) {
      EXPECT_TRUE(keys.insert(w.idempotency_key).second) << w.email;
    }
  }
  EXPECT_EQ(keys.size(), 10u);
}

TEST_F(SyncEngineTest, ManyWritesInFlightLandOnceEach) {
  ASSERT_NO_FATAL_FAILURE(Configure());
  config_.account.concurrency = 8;
  std::vector<Person> people;
  for (int i = 0; i < 300; ++i) {
    people.push_back({"p" + std::to_string(i) + "@example.com", {i % 2 ? "QA" : "Voice"}});
  }
  directory_ = Directory(people);
  Result<daemon::ApplyReport> report = Apply();
  ASSERT_THAT(report.status(), IsOk());
  EXPECT_EQ(report->applied, 300);
  EXPECT_EQ(account_->Writes().size(), 300u);
  EXPECT_EQ(account_->Users().size(), 300u);
  EXPECT_EQ(store_->mirror().Users()->size(), 300u);
  EXPECT_EQ(store_->mirror().Managed()->size(), 300u);
  EXPECT_TRUE(store_->audit().Verify(std::nullopt)->ok);
  // Nothing left: a second run writes nothing.
  account_->ClearWrites();
  ASSERT_THAT(Apply().status(), IsOk());
  EXPECT_TRUE(account_->Writes().empty());
}

TEST_F(SyncEngineTest, AStoreFailureAfterAWriteLandsIsFinishedByTheNextRunWithoutAWriteTwice) {
  ASSERT_NO_FATAL_FAILURE(Configure());
  config_.account.concurrency = 1;
  directory_ = Directory({{"a@example.com", {"QA"}}, {"b@example.com", {"QA"}}});
  store_->FailNext("Complete");
  Result<daemon::ApplyReport> failed = Apply();
  EXPECT_THAT(failed.status(), StatusIs(StatusCode::kUnavailable));
  // The write landed but was not recorded: it stays sent.
  ASSERT_EQ(account_->Writes().size(), 1u);
  Result<daemon::ApplyReport> next = Apply();
  ASSERT_THAT(next.status(), IsOk());
  EXPECT_EQ(next->recovered, 1);
  EXPECT_EQ(account_->Users().size(), 2u);
  int applied = 0;
  for (const auto& w : account_->Writes()) applied += w.applied;
  EXPECT_EQ(applied, 2) << "a write was applied twice";
  EXPECT_EQ(store_->audit().Verify(std::nullopt)->entries, 2);
}

TEST_F(SyncEngineTest, PartialRunsCountTowardsTheSafetyWindow) {
  struct Step {
    std::int64_t at_ms;
    std::string leaver;
    bool blocked;
  };
  struct Case {
    const char* name;
    std::string safety;
    std::vector<Step> steps;
  };
  const std::vector<Case> cases = {
      {"the third removal within the hour is refused",
       "safety: {max_removals: 2, window: 1h}\n",
       {{1'000'000, "l0@example.com", false},
        {1'060'000, "l1@example.com", false},
        {1'120'000, "l2@example.com", true}}},
      {"removals older than the window no longer count",
       "safety: {max_removals: 2, window: 1h}\n",
       {{1'000'000, "l0@example.com", false},
        {1'060'000, "l1@example.com", false},
        {1'000'000 + 3'700'000, "l2@example.com", false}}},
      {"a percentage is of every managed user, not of the people in scope",
       "safety: {max_removals: 30%, window: 1h}\n",
       // 30% of the 10, then 9, then 8 managed users: 3, 2, 2 removals in
       // the window; 30% of the one person in scope would allow none.
       {{1'000'000, "l0@example.com", false},
        {1'010'000, "l1@example.com", false},
        {1'020'000, "l2@example.com", true}}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Reset();
    ASSERT_NO_FATAL_FAILURE(Configure("deprovision: remove\n" + c.safety));
    std::vector<Person> people;
    for (int i = 0; i < 7; ++i)
      people.push_back({"s" + std::to_string(i) + "@example.com", {"QA"}});
    for (int i = 0; i < 3; ++i)
      people.push_back({"l" + std::to_string(i) + "@example.com", {"QA"}});
    directory_ = Directory(people);
    now_ms_ = 900'000;
    ASSERT_THAT(Apply().status(), IsOk());
    ASSERT_EQ(store_->mirror().Managed()->size(), 10u);
    for (const Step& step : c.steps) {
      now_ms_ = step.at_ms;
      people.erase(std::remove_if(people.begin(), people.end(),
                                  [&](const Person& p) { return p.email == step.leaver; }),
                   people.end());
      directory_ = Directory(people);
      Result<daemon::ApplyReport> report = Partial({step.leaver});
      ASSERT_THAT(report.status(), IsOk());
      EXPECT_EQ(report->blocked, step.blocked) << step.leaver;
      EXPECT_EQ(account_->Users().count(step.leaver), step.blocked ? 1u : 0u) << step.leaver;
    }
  }
}

}  // namespace
}  // namespace idsync
