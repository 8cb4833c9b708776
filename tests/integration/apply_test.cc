// `idsync apply` end to end over real HTTP on loopback: the account emulator
// (tools/account-emulator) on port 0, a SQLite store in a temporary directory,
// LDIF sources. The account must end equal to what `explain --all` says,
// whatever faults the account injects and wherever the process is killed,
// with every change landing exactly once. For the example company it must
// also equal what was worked out by hand from the rules
// (tests/testdata/examples/expected-access.json), so that a wrong explain
// cannot make a wrong account pass.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "idsync/daemon/cli.h"
#include "idsync/emulator/emulator.h"
#include "idsync/gen/directory_generator.h"
#include "idsync/mapping/catalog.h"

#include "wait_until.h"

namespace idsync {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kToken = "integration-test-token";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct CliRun {
  int status;
  std::string out;
  std::string err;
};

// The account before idsync's first run: the owner (an admin idsync must
// never touch) and a vendor's account nobody manages.
constexpr const char* kSeed = R"({
  "projects": [{"id": "p_support", "name": "support-bot"}, {"id": "p_sales", "name": "sales-bot"}],
  "users": [
    {"id": "u_owner", "email": "owner@corp.example", "name": "Account Owner", "role": "admin",
     "status": "active", "permissions": {}, "projects": []},
    {"id": "u_vendor", "email": "help@vendor.example", "name": "Vendor", "role": "member",
     "status": "active", "permissions": {"configure": "read"}, "projects": []}
  ]
})";

class ApplyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("idsync-apply-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ::setenv("IDSYNC_TEST_ACCOUNT_TOKEN", kToken, 1);
    StartEmulator({});
  }
  void TearDown() override {
    emulator_.reset();
    fs::remove_all(dir_);
  }

  void StartEmulator(const emulator::Faults& faults) {
    emulator::EmulatorOptions options;
    options.token = kToken;
    options.seed_json = kSeed;
    options.faults = faults;
    options.random_seed = 42;
    auto started = emulator::AccountEmulator::Start(options);
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    emulator_ = std::move(started).value();
  }

  // The example company (examples/*.ldif) under the example rules, pointed
  // at the emulator; `extra` is appended (YAML keys not in the base).
  std::string WriteConfig(const std::string& sources_yaml, const std::string& rules_yaml,
                          const std::string& safety = "max_removals: 5\n  max_changes: none") {
    std::ostringstream y;
    y << "account:\n"
      << "  url: " << emulator_->base_url() << "\n"
      << "  token: ${env:IDSYNC_TEST_ACCOUNT_TOKEN}\n"
      << "  concurrency: 4\n"
      << "  max_requests_per_second: 1000\n"
      << "  timeout: 5s\n"
      << "  retry_for: 2m\n"
      << "  read_retry_for: 2m\n"
      << "store: sqlite://" << (dir_ / "state.db").string() << "\n"
      << "sources:\n"
      << sources_yaml << "permissions:\n  catalog: account\n"
      << "  presets:\n    support-lead: {analytics: edit, build: read, build.knowledge: edit, "
         "channels: read}\n"
      << "rules:\n"
      << rules_yaml << "deprovision: remove\nadopt_existing: false\n"
      << "protect: [owner@corp.example]\n"
      << "safety:\n  " << safety << "\n";
    config_ = (dir_ / "idsync.yaml").string();
    std::ofstream(config_) << y.str();
    return config_;
  }

  std::string ExampleConfig(const std::string& safety = "max_removals: 5\n  max_changes: none") {
    std::string examples = std::string(IDSYNC_SOURCE_DIR) + "/examples";
    std::string full = ReadFile(examples + "/idsync.yaml");
    // Reuse the example's sources and rules sections verbatim.
    std::string sources = full.substr(full.find("sources:\n") + 9);
    sources = sources.substr(0, sources.find("permissions:"));
    auto replace = [](std::string& s, const std::string& a, const std::string& b) {
      s.replace(s.find(a), a.size(), b);
    };
    replace(sources, "path: directory.ldif", "path: " + examples + "/directory.ldif");
    replace(sources, "path: contractors.ldif", "path: " + examples + "/contractors.ldif");
    std::string rules = full.substr(full.find("rules:\n") + 7);
    rules = rules.substr(0, rules.find("deprovision:"));
    example_ = true;
    return WriteConfig(sources, rules, safety);
  }

  // A generated company of `users` people under one broad rule per team.
  std::string GeneratedConfig(std::uint32_t users) {
    gen::DirectoryOptions o;
    o.users = users;
    o.groups = users / 10;
    o.seed = 11;
    o.disabled_fraction = 0;
    const mapping::SourceSnapshot company = gen::GenerateDirectory(o);
    std::ofstream ldif(dir_ / "company.ldif");
    gen::WriteLdif(company, o.base, ldif);
    ldif.close();
    // Whoever is directly in a group the rules below match must get access
    // (nesting can only add people): known without asking explain.
    must_have_access_.clear();
    for (const auto& g : company.groups) {
      for (const char* team : {"qa-", "voice-", "knowledge-", "engineering-"}) {
        if (g.name.rfind(team, 0) != 0) continue;
        for (std::uint32_t u : g.member_users) {
          std::string email = company.users[u].email;
          std::transform(email.begin(), email.end(), email.begin(), ::tolower);
          must_have_access_.insert(email);
        }
      }
    }
    std::string sources =
        "  - name: hr\n    type: ldif\n    path: " + (dir_ / "company.ldif").string() +
        "\n    users: {base: \"ou=people,dc=corp,dc=example\", filter: "
        "\"(objectClass=inetOrgPerson)\", email: mail, name: cn}\n"
        "    groups: {base: \"ou=groups,dc=corp,dc=example\", filter: "
        "\"(objectClass=groupOfNames)\", name: cn, member: member}\n";
    std::string rules =
        "  - {name: qa, match: {group: \"qa-*\"}, preset: qa-analyst, projects: [support-bot]}\n"
        "  - {name: voice, match: {group: \"voice-*\"}, preset: voice-specialist, "
        "projects: [sales-bot]}\n"
        "  - {name: know, match: {group: \"knowledge-*\"}, preset: content-editor, "
        "permissions: {build.tools: none}, projects: [support-bot]}\n"
        "  - {name: eng, match: {group: \"engineering-*\"}, permissions: {build: edit, "
        "deployments: read}, projects: [support-bot, sales-bot]}\n";
    return WriteConfig(sources, rules);
  }

  CliRun Cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"--config", config_});
    std::ostringstream out, err;
    int status = daemon::RunCli(args, out, err);
    return {status, out.str(), err.str()};
  }

  // What explain --all says everyone should have, by lower-cased e-mail.
  std::map<std::string, json> Desired() {
    CliRun run = Cli({"explain", "--all", "--json"});
    EXPECT_EQ(run.status, daemon::kExitOk) << run.err;
    std::map<std::string, json> people;
    for (const json& p : json::parse(run.out)) people[p["email"]] = p;
    EXPECT_FALSE(people.empty()) << "explain --all says nobody has access:\n" << run.out;
    return people;
  }

  // The example company's account after a complete run, against what the
  // example rules give each person as worked out by hand: everyone there
  // with exactly that role, those levels and projects, nobody else besides
  // the protected owner (left as seeded) and the vendor nobody manages.
  // `except`: people to leave out of the check (a test looks at them itself).
  void ExpectExampleAccessByHand(const std::set<std::string>& except = {}) {
    json expected =
        json::parse(ReadFile(std::string(IDSYNC_TESTDATA_DIR) + "/examples/expected-access.json"));
    expected.erase("_comment");
    ASSERT_EQ(expected.size(), 12u) << "the hand-written expectations lost people";
    json state = State();
    std::map<std::string, std::string> project_names;
    for (const auto& p : state["projects"]) project_names[p["id"]] = p["name"];
    std::map<std::string, json> users;
    for (const auto& u : state["users"]) {
      std::string email = u["email"];
      std::transform(email.begin(), email.end(), email.begin(), ::tolower);
      users[email] = u;
    }
    const auto& catalog = mapping::Catalog::Builtin();
    auto expand = [&](const json& compact) {
      mapping::PermissionSpec spec;
      for (const auto& [k, v] : compact.items()) {
        spec[k] = *mapping::ParseLevel(v.get<std::string>());
      }
      auto levels = catalog.Expand(spec);
      EXPECT_TRUE(levels.ok()) << compact.dump();
      json full = json::object();
      for (std::size_t i = 0; levels.ok() && i < catalog.item_count(); ++i) {
        full[catalog.item_keys()[i]] = std::string(mapping::LevelName((*levels)[i]));
      }
      return full;
    };
    for (const auto& [email, want] : expected.items()) {
      if (email == "owner@corp.example") continue;  // protected: checked by the seed below
      if (except.count(email)) continue;
      ASSERT_TRUE(users.count(email)) << email << " is missing from the account";
      const json& have = users[email];
      EXPECT_EQ(have["role"], want["role"]) << email;
      if (want["role"] == "member") {
        EXPECT_EQ(expand(have["permissions"]), expand(want["permissions"])) << email;
      }
      std::set<std::string> have_projects;
      for (const auto& id : have["projects"]) have_projects.insert(project_names[id]);
      std::set<std::string> want_projects(want["projects"].begin(), want["projects"].end());
      EXPECT_EQ(have_projects, want_projects) << email;
    }
    ASSERT_TRUE(users.count("owner@corp.example"));
    EXPECT_EQ(users["owner@corp.example"]["id"], "u_owner");
    EXPECT_EQ(users["owner@corp.example"]["role"], "admin");
    ASSERT_TRUE(users.count("help@vendor.example"));
    EXPECT_EQ(users["help@vendor.example"]["id"], "u_vendor");
    for (const auto& [email, u] : users) {
      EXPECT_TRUE(expected.contains(email) || email == "help@vendor.example")
          << email << " is in the account, but the rules give them nothing";
    }
  }

  json State() { return json::parse(emulator_->StateJson()); }

  // Checks every person with access is in the account with exactly their
  // access, and that nobody else idsync could have invited is there.
  void ExpectAccountEqualsDesired() {
    std::map<std::string, json> desired = Desired();
    ASSERT_FALSE(desired.empty());
    if (example_) {
      ASSERT_NO_FATAL_FAILURE(ExpectExampleAccessByHand());
    } else {
      // A generated company: everyone directly in a matched group, at least.
      EXPECT_FALSE(must_have_access_.empty()) << "the generated company has no matched group";
      for (const std::string& email : must_have_access_) {
        EXPECT_TRUE(desired.count(email)) << email << " is in a matched group but has no access";
      }
    }
    json state = State();
    std::map<std::string, std::string> project_ids;
    for (const auto& p : state["projects"]) project_ids[p["name"]] = p["id"];
    std::map<std::string, json> users;
    for (const auto& u : state["users"]) {
      std::string email = u["email"];
      std::transform(email.begin(), email.end(), email.begin(), ::tolower);
      EXPECT_EQ(users.count(email), 0u) << "two account users for " << email;
      users[email] = u;
    }
    const auto& catalog = mapping::Catalog::Builtin();
    for (const auto& [email, want] : desired) {
      if (email == "owner@corp.example") continue;  // protected: left as it was
      ASSERT_TRUE(users.count(email)) << email << " missing from the account";
      const json& have = users[email];
      EXPECT_EQ(have["role"], want["role"]) << email;
      if (want["role"] == "member") {
        mapping::PermissionSpec spec;
        for (const auto& [k, v] : have["permissions"].items()) {
          spec[k] = *mapping::ParseLevel(v.get<std::string>());
        }
        auto levels = catalog.Expand(spec);
        ASSERT_TRUE(levels.ok()) << email;
        for (std::size_t i = 0; i < catalog.item_count(); ++i) {
          EXPECT_EQ(mapping::LevelName((*levels)[i]),
                    want["permissions"][catalog.item_keys()[i]].get<std::string>())
              << email << " " << catalog.item_keys()[i];
        }
      }
      std::set<std::string> want_projects;
      for (const auto& name : want["projects"]) want_projects.insert(project_ids[name]);
      std::set<std::string> have_projects(have["projects"].begin(), have["projects"].end());
      EXPECT_EQ(have_projects, want_projects) << email;
    }
    for (const auto& [email, u] : users) {
      if (email == "owner@corp.example" || email == "help@vendor.example") continue;
      EXPECT_TRUE(desired.count(email)) << email << " is in the account without access";
    }
  }

  // Writes the emulator applied, and the checks that nothing landed twice.
  void ExpectEveryWriteOnce() {
    std::map<std::string, int> applied_by_key;
    std::map<std::string, int> invites_by_user;
    for (const auto& r : emulator_->Requests()) {
      if (r.method == "GET" || !r.applied) continue;
      EXPECT_FALSE(r.idempotency_key.empty()) << r.method << " " << r.path;
      EXPECT_EQ(++applied_by_key[r.idempotency_key], 1)
          << "write applied twice: " << r.method << " " << r.path;
      if (r.endpoint == "POST /users") ++invites_by_user[r.user_id];
    }
    EXPECT_FALSE(applied_by_key.empty()) << "no write was applied: nothing was checked";
    json state = State();
    std::map<std::string, int> per_email;
    for (const auto& u : state["users"]) {
      std::string email = u["email"];
      EXPECT_EQ(++per_email[email], 1) << "duplicate user " << email;
    }
  }

  int CountWrites(std::uint64_t after = 0) {
    int n = 0;
    for (const auto& r : emulator_->Requests(after)) n += r.method != "GET";
    return n;
  }

  fs::path dir_;
  std::string config_;
  std::unique_ptr<emulator::AccountEmulator> emulator_;
  bool example_ = false;  // ExampleConfig() wrote config_
  // GeneratedConfig(): lower-case e-mails of the direct members of groups a rule matches.
  std::set<std::string> must_have_access_;
};

TEST_F(ApplyTest, FirstApplyMakesTheAccountEqualTheDesiredState) {
  ExampleConfig();
  CliRun run = Cli({"apply"});
  ASSERT_EQ(run.status, daemon::kExitOk) << run.out << run.err;
  ExpectAccountEqualsDesired();
  ExpectEveryWriteOnce();
}

TEST_F(ApplyTest, SecondApplySendsNoWrite) {
  ExampleConfig();
  ASSERT_EQ(Cli({"apply"}).status, daemon::kExitOk);
  std::uint64_t seen = emulator_->Requests().back().seq;
  CliRun run = Cli({"apply"});
  ASSERT_EQ(run.status, daemon::kExitOk) << run.err;
  EXPECT_EQ(CountWrites(seen), 0) << run.out;
}

TEST_F(ApplyTest, ChangeMadeByHandIsRevertedByTheNextApply) {
  ExampleConfig();
  ASSERT_EQ(Cli({"apply"}).status, daemon::kExitOk);
  json state = State();
  for (auto& u : state["users"]) {
    if (u["email"] == "bruno@corp.example") u["permissions"] = {{"analytics", "read"}};
    if (u["email"] == "eve@corp.example") u["role"] = "admin";
  }
  ASSERT_TRUE(emulator_->SetStateJson(state.dump()).ok());
  CliRun run = Cli({"apply"});
  ASSERT_EQ(run.status, daemon::kExitOk) << run.err;
  EXPECT_NE(run.out.find("2 to update"), std::string::npos) << run.out;
  ExpectAccountEqualsDesired();
}

TEST_F(ApplyTest, ConvergesUnderFaultsWithoutDoubleWrites) {
  emulator_.reset();
  emulator::Faults faults;
  faults.error_rate = {{"*", 0.2}};
  faults.throttle_rate = {{"*", 0.2}};
  faults.retry_after_seconds = 1;
  faults.latency = {std::chrono::milliseconds(200), std::chrono::milliseconds(200)};
  faults.drop_before_rate = {{"*", 0.05}};
  faults.drop_after_rate = {{"POST *", 0.1}, {"PATCH *", 0.1}, {"DELETE *", 0.1}};
  StartEmulator(faults);
  GeneratedConfig(120);
  CliRun run = Cli({"apply"});
  ASSERT_EQ(run.status, daemon::kExitOk) << run.out << run.err;
  // The faults really happened.
  std::map<std::string, int> faults_seen;
  for (const auto& r : emulator_->Requests()) faults_seen[r.fault]++;
  EXPECT_GT(faults_seen["error"], 0);
  EXPECT_GT(faults_seen["throttle"], 0);
  EXPECT_GT(faults_seen["drop_after"], 0);
  emulator_->SetFaults({});
  ExpectAccountEqualsDesired();
  ExpectEveryWriteOnce();
  // And a clean second run has nothing left to do.
  std::uint64_t seen = emulator_->Requests().back().seq;
  ASSERT_EQ(Cli({"apply"}).status, daemon::kExitOk);
  EXPECT_EQ(CountWrites(seen), 0);
}

TEST_F(ApplyTest, KilledMidRunThenRunAgainLandsEveryChangeOnce) {
  emulator_.reset();
  emulator::Faults slow;
  slow.latency = {std::chrono::milliseconds(60), std::chrono::milliseconds(60)};
  slow.drop_after_rate = {{"POST *", 0.05}};
  StartEmulator(slow);
  GeneratedConfig(300);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execl(IDSYNC_BINARY, IDSYNC_BINARY, "--config", config_.c_str(), "apply", nullptr);
    ::_exit(127);
  }
  // Kill it once a good part of the writes has landed.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    int writes = 0;
    for (const auto& r : emulator_->Requests()) writes += r.applied && r.method != "GET";
    if (writes >= 40) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  int wstatus = 0;
  ::waitpid(pid, &wstatus, 0);
  ASSERT_TRUE(WIFSIGNALED(wstatus)) << "apply finished before it could be killed";

  emulator_->SetFaults({});
  CliRun run = Cli({"apply"});
  ASSERT_EQ(run.status, daemon::kExitOk) << run.out << run.err;
  EXPECT_NE(run.out.find("interrupted run"), std::string::npos) << run.out;
  ExpectAccountEqualsDesired();
  ExpectEveryWriteOnce();
}

TEST_F(ApplyTest, PlanOverASafetyLimitExitsThreeAndSendsNothing) {
  ExampleConfig("max_removals: 5\n  max_changes: 3");
  CliRun run = Cli({"apply"});
  EXPECT_EQ(run.status, daemon::kExitBlocked) << run.out << run.err;
  EXPECT_NE(run.out.find("BLOCKED"), std::string::npos) << run.out;
  EXPECT_EQ(CountWrites(), 0);
  // `--force` passes it.
  EXPECT_EQ(Cli({"apply", "--force"}).status, daemon::kExitOk);
  ExpectAccountEqualsDesired();
}

TEST_F(ApplyTest, ProtectedAndUnmanagedUsersAreNeverTouched) {
  ExampleConfig();
  // With adopt_existing the owner (in Studio Admins, so the rules want an
  // admin) would be taken over and promoted: only `protect` keeps it as it
  // is. The vendor is known to no source, so it stays unmanaged.
  std::string text = ReadFile(config_);
  text.replace(text.find("adopt_existing: false"), 21, "adopt_existing: true");
  std::ofstream(config_) << text;
  json seeded = State();
  for (auto& u : seeded["users"]) {
    if (u["id"] == "u_owner") u["role"] = "member";
  }
  ASSERT_TRUE(emulator_->SetStateJson(seeded.dump()).ok());
  json before = State();
  ASSERT_EQ(Cli({"apply"}).status, daemon::kExitOk);
  for (const auto& r : emulator_->Requests()) {
    EXPECT_NE(r.user_id, "u_owner") << r.method << " " << r.path;
    EXPECT_NE(r.user_id, "u_vendor") << r.method << " " << r.path;
  }
  json after = State();
  for (const char* id : {"u_owner", "u_vendor"}) {
    json b, a;
    for (const auto& u : before["users"])
      if (u["id"] == id) b = u;
    for (const auto& u : after["users"])
      if (u["id"] == id) a = u;
    ASSERT_FALSE(b.is_null()) << id << " was not seeded";
    EXPECT_EQ(a, b) << id;
  }
}

TEST_F(ApplyTest, UnauthorizedStopsTheRunAndKeepsOperationsPending) {
  ExampleConfig();
  emulator_->SetFaults([] {
    emulator::Faults f;
    f.latency = {std::chrono::milliseconds(150), std::chrono::milliseconds(150)};
    return f;
  }());
  // The token is revoked while the run is reading: every write gets 401.
  std::thread revoke([&] {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      for (const auto& r : emulator_->Requests()) {
        if (r.endpoint == "GET /users") {
          emulator_->SetTokens("rotated-token", "");
          return;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  CliRun run = Cli({"apply"});
  revoke.join();
  EXPECT_EQ(run.status, daemon::kExitFailed) << run.out << run.err;
  EXPECT_NE(run.out.find("pending"), std::string::npos) << run.out;
  int applied = 0;
  for (const auto& r : emulator_->Requests()) applied += r.applied;
  EXPECT_EQ(applied, 0);
  CliRun status = Cli({"status", "--json"});
  ASSERT_EQ(status.status, daemon::kExitOk) << status.err;
  EXPECT_FALSE(json::parse(status.out)["pending"].empty()) << status.out;

  // With the token back, the next run finishes the work.
  emulator_->SetTokens(kToken, "");
  emulator_->SetFaults({});
  CliRun again = Cli({"apply"});
  ASSERT_EQ(again.status, daemon::kExitOk) << again.out << again.err;
  ExpectAccountEqualsDesired();
  ExpectEveryWriteOnce();
}

TEST_F(ApplyTest, ValidateOnlineChecksTheAccountsCatalogAndProjects) {
  ExampleConfig();
  CliRun ok = Cli({"validate", "--online"});
  EXPECT_EQ(ok.status, daemon::kExitOk) << ok.out << ok.err;
  EXPECT_NE(ok.out.find("matches the sources and the account"), std::string::npos) << ok.out;

  std::string text = ReadFile(config_);
  text.replace(text.find("projects: [support-bot, sales-bot]"),
               std::string("projects: [support-bot, sales-bot]").size(),
               "projects: [support-bot, retired-bot]");
  std::ofstream(config_) << text;
  CliRun bad = Cli({"validate", "--online"});
  EXPECT_EQ(bad.status, daemon::kExitFailed);
  EXPECT_NE(bad.err.find("retired-bot"), std::string::npos) << bad.err;
  // Offline validation cannot know the account's projects.
  EXPECT_EQ(Cli({"validate"}).status, daemon::kExitOk);
}

TEST_F(ApplyTest, ValidateOnlineReadsEverySourceWithALineEach) {
  ExampleConfig();
  CliRun ok = Cli({"validate", "--online"});
  ASSERT_EQ(ok.status, daemon::kExitOk) << ok.out << ok.err;
  // The example company: its directory export and its contractors' export.
  EXPECT_NE(ok.out.find("source hr (ldif): ok, "), std::string::npos) << ok.out;
  EXPECT_NE(ok.out.find("source contractors (ldif): ok, "), std::string::npos) << ok.out;
  CliRun as_json = Cli({"validate", "--online", "--json"});
  ASSERT_EQ(as_json.status, daemon::kExitOk) << as_json.err;
  const json report = json::parse(as_json.out);
  EXPECT_EQ(report["valid"], true);
  ASSERT_EQ(report["sources"].size(), 2u) << as_json.out;
  for (const json& source : report["sources"]) {
    EXPECT_EQ(source["ok"], true) << source.dump();
    EXPECT_GT(source["users"].get<int>(), 0) << source.dump();
  }

  // A missing export and a directory nobody answers for: each named, exit 1,
  // and the other sources still checked.
  std::string text = ReadFile(config_);
  const std::string examples = std::string(IDSYNC_SOURCE_DIR) + "/examples";
  text.replace(text.find(examples + "/contractors.ldif"), (examples + "/contractors.ldif").size(),
               (dir_ / "gone.ldif").string());
  text.replace(text.find("sources:\n") + 9, 0,
               "  - name: dead\n    type: ldap\n    url: ldap://127.0.0.1:1\n"
               "    connect_timeout: 2s\n    users: {base: \"dc=corp,dc=example\"}\n");
  std::ofstream(config_) << text;
  CliRun bad = Cli({"validate", "--online"});
  EXPECT_EQ(bad.status, daemon::kExitFailed) << bad.out << bad.err;
  EXPECT_NE(bad.out.find("source dead (ldap): FAILED: "), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("source contractors (ldif): FAILED: "), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("gone.ldif"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("source hr (ldif): ok"), std::string::npos) << bad.out;
  EXPECT_EQ(bad.out.find("configuration is valid"), std::string::npos) << bad.out;

  // Offline validation does not look at the sources.
  EXPECT_EQ(Cli({"validate"}).status, daemon::kExitOk);
}

TEST_F(ApplyTest, TwoRunsNeverOverlap) {
  ExampleConfig();
  std::string lock = (dir_ / "state.db.lock").string();
  int fd = ::open(lock.c_str(), O_CREAT | O_RDWR, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);  // as a run in another process would hold it
  CliRun run = Cli({"apply"});
  EXPECT_EQ(run.status, daemon::kExitFailed);
  EXPECT_NE(run.err.find("another idsync run is in progress"), std::string::npos) << run.err;
  EXPECT_EQ(CountWrites(), 0);
  ::close(fd);
  EXPECT_EQ(Cli({"apply"}).status, daemon::kExitOk);
}

TEST_F(ApplyTest, AuditListsEveryChangeWithItsRules) {
  ExampleConfig();
  ASSERT_EQ(Cli({"apply"}).status, daemon::kExitOk);
  CliRun run = Cli({"audit", "--json"});
  ASSERT_EQ(run.status, daemon::kExitOk) << run.err;
  json entries = json::parse(run.out);
  std::map<std::string, json> by_email;
  for (const auto& e : entries) by_email[e["email"]] = e;
  ASSERT_TRUE(by_email.count("chen@corp.example")) << run.out;
  const json& chen = by_email["chen@corp.example"];
  EXPECT_EQ(chen["action"], "invite");
  EXPECT_EQ(chen["detail"]["rules"], json({"qa", "support-leads"}));
  EXPECT_EQ(chen["detail"]["permissions"]["build.knowledge"], "edit");
  EXPECT_EQ(Desired().size() - 1, entries.size());  // everyone but the protected owner
  EXPECT_EQ(entries.size(), 11u) << "the example company has 11 people to invite";
  // The text form keeps its columns apart, whatever their length.
  CliRun text = Cli({"audit"});
  ASSERT_EQ(text.status, daemon::kExitOk) << text.err;
  std::istringstream lines(text.out);
  std::size_t checked = 0;
  for (std::string line; std::getline(lines, line);) {
    for (const auto& e : entries) {
      if (line.rfind(std::to_string(e["seq"].get<long long>()) + " ", 0) != 0) continue;
      const std::string email = e["email"], user = e["user_id"];
      EXPECT_NE(line.find(" " + email + "  "), std::string::npos) << line;
      if (!user.empty()) {
        EXPECT_NE(line.find("  " + user + "  "), std::string::npos) << line;
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, entries.size()) << text.out;
  // Nothing since tomorrow.
  CliRun later = Cli({"audit", "--since", "2999-01-01"});
  EXPECT_NE(later.out.find("no audit entries"), std::string::npos) << later.out;
  EXPECT_EQ(Cli({"audit", "--since", "yesterday-ish"}).status, daemon::kExitUsage);
}

// The account's user with this e-mail (lower case), or null.
json UserByEmail(const json& state, const std::string& email) {
  for (const auto& u : state["users"]) {
    std::string e = u["email"];
    std::transform(e.begin(), e.end(), e.begin(), ::tolower);
    if (e == email) return u;
  }
  return nullptr;
}

// A person idsync is about to invite turns up in the account between the
// run's read of the account and its invite (someone invited her by hand):
// the invite gets 409 user_exists. With adopt_existing idsync adopts the
// account's user and gives it her access; without, it is a conflict,
// reported, and the account's user is left alone; a protected address is
// never invited nor adopted.
class InviteConflictTest : public ApplyTest {
 protected:
  static constexpr const char* kGita = "gita@corp.example";
  static constexpr const char* kByHand = "u_by_hand";

  void SetUp() override {
    ApplyTest::SetUp();
    // Every request waits a little: gita is added before any invite lands.
    emulator::Faults slow;
    slow.latency = {std::chrono::milliseconds(100), std::chrono::milliseconds(100)};
    emulator_->SetFaults(slow);
  }

  void SetConfig(bool adopt, bool protect_gita) {
    ExampleConfig();
    std::string text = ReadFile(config_);
    if (adopt) text.replace(text.find("adopt_existing: false"), 21, "adopt_existing: true");
    if (protect_gita) {
      const std::string p = "protect: [owner@corp.example]";
      text.replace(text.find(p), p.size(), "protect: [owner@corp.example, Gita@Corp.Example]");
    }
    std::ofstream(config_) << text;
  }

  // gita as someone invited her by hand: another id, other access.
  static json GitaByHand() {
    return json{{"id", kByHand},
                {"email", "Gita@corp.example"},
                {"name", "Gita by hand"},
                {"role", "member"},
                {"status", "active"},
                {"permissions", {{"analytics", "read"}}},
                {"projects", json::array()}};
  }

  // `idsync apply`, with gita added to the account by hand as soon as the
  // run has read the account's users (before it sends anything).
  CliRun ApplyWhileGitaIsAddedByHand() {
    json with_gita = State();
    with_gita["users"].push_back(GitaByHand());
    const std::uint64_t after =
        emulator_->Requests().empty() ? 0 : emulator_->Requests().back().seq;
    std::atomic<bool> added{false};
    std::thread by_hand([&] {
      const bool read = ::idsync::testing::WaitUntil(
          [&] {
            for (const auto& r : emulator_->Requests(after)) {
              if (r.endpoint == "GET /users") return true;
            }
            return false;
          },
          std::chrono::seconds(30), std::chrono::milliseconds(2));
      if (!read) return;
      for (const auto& r : emulator_->Requests(after)) {
        if (r.method != "GET") return;  // too late: something was written already
      }
      added = emulator_->SetStateJson(with_gita.dump()).ok();
      // As the account holds her (with its own timestamps); no write can
      // have landed yet, each waits 100 ms.
      gita_as_added_ = UserByEmail(State(), kGita);
    });
    CliRun run = Cli({"apply"});
    by_hand.join();
    EXPECT_TRUE(added) << "gita could not be added between the read and the writes";
    EXPECT_TRUE(gita_as_added_.is_object() && gita_as_added_["id"] == kByHand)
        << gita_as_added_.dump();
    return run;
  }

  json gita_as_added_;  // the account's record of gita just after she was added

  // Writes the emulator saw addressed to the user added by hand.
  std::vector<std::string> WritesToTheUserByHand() {
    std::vector<std::string> out;
    for (const auto& r : emulator_->Requests()) {
      if (r.method != "GET" && r.user_id == kByHand) out.push_back(r.method + " " + r.path);
    }
    return out;
  }

  // The POST /users answers for gita (the address, whatever its case).
  std::vector<int> GitaInvites() {
    std::vector<int> out;
    for (const auto& r : emulator_->Requests()) {
      if (r.endpoint == "POST /users" && r.user_id == kByHand) out.push_back(r.status);
    }
    return out;
  }
};

TEST_F(InviteConflictTest, WithAdoptExistingThe409IsAnAdoption) {
  SetConfig(/*adopt=*/true, /*protect_gita=*/false);
  CliRun run = ApplyWhileGitaIsAddedByHand();
  ASSERT_EQ(run.status, daemon::kExitOk) << run.out << run.err;
  EXPECT_EQ(GitaInvites(), std::vector<int>{409}) << "gita's invite did not meet the 409";
  EXPECT_EQ(WritesToTheUserByHand(),
            (std::vector<std::string>{"POST /users", "PATCH /users/" + std::string(kByHand)}));
  // The account's own user now holds gita's access; no second gita.
  const json gita = UserByEmail(State(), kGita);
  ASSERT_FALSE(gita.is_null());
  EXPECT_EQ(gita["id"], kByHand);
  ExpectExampleAccessByHand();
  ExpectEveryWriteOnce();
  // Recorded as an adoption, and managed from now on: nothing left to do.
  CliRun audit = Cli({"audit", "--json"});
  ASSERT_EQ(audit.status, daemon::kExitOk) << audit.err;
  bool adopted = false;
  for (const json& e : json::parse(audit.out)) {
    if (e["email"] == kGita) {
      EXPECT_EQ(e["action"], "adopt") << e.dump();
      EXPECT_EQ(e["user_id"], kByHand) << e.dump();
      adopted = true;
    }
  }
  EXPECT_TRUE(adopted) << audit.out;
  const std::uint64_t seen = emulator_->Requests().back().seq;
  CliRun again = Cli({"apply"});
  EXPECT_EQ(again.status, daemon::kExitOk) << again.out << again.err;
  EXPECT_EQ(CountWrites(seen), 0) << again.out;
}

TEST_F(InviteConflictTest, WithoutAdoptExistingThe409IsAConflictReported) {
  SetConfig(/*adopt=*/false, /*protect_gita=*/false);
  CliRun run = ApplyWhileGitaIsAddedByHand();
  EXPECT_EQ(run.status, daemon::kExitFailed) << run.out << run.err;
  EXPECT_NE(run.out.find("failed: gita@corp.example: already in the account, not adopted"),
            std::string::npos)
      << run.out;
  EXPECT_EQ(GitaInvites(), std::vector<int>{409});
  // Only the refused invite reached the user added by hand: left as it was.
  EXPECT_EQ(WritesToTheUserByHand(), std::vector<std::string>{"POST /users"});
  EXPECT_EQ(UserByEmail(State(), kGita), gita_as_added_);
  // Everyone else got their access.
  ExpectExampleAccessByHand({kGita});
  // `status` shows the failed invite; the audit has no change for gita.
  CliRun status = Cli({"status", "--json"});
  ASSERT_EQ(status.status, daemon::kExitOk) << status.err;
  bool shown = false;
  const json status_json = json::parse(status.out);
  for (const json& f : status_json["failed"]) {
    if (f["email"] != kGita) continue;
    shown = true;
    EXPECT_EQ(f["op"], "invite") << f.dump();
    EXPECT_NE(f["error"].get<std::string>().find("conflict"), std::string::npos) << f.dump();
    EXPECT_NE(f["error"].get<std::string>().find(kByHand), std::string::npos) << f.dump();
  }
  EXPECT_TRUE(shown) << status.out;
  CliRun audit = Cli({"audit", "--json"});
  ASSERT_EQ(audit.status, daemon::kExitOk) << audit.err;
  for (const json& e : json::parse(audit.out)) EXPECT_NE(e["email"], kGita) << e.dump();

  // The next plan sees gita unmanaged in the account: a conflict, not an
  // invite, and the next apply leaves her alone.
  CliRun plan = Cli({"plan", "--json"});
  ASSERT_EQ(plan.status, daemon::kExitOk) << plan.out << plan.err;
  const json p = json::parse(plan.out);
  EXPECT_EQ(p["conflicts"], json({kGita})) << plan.out;
  EXPECT_TRUE(p["operations"].empty()) << plan.out;
  const std::uint64_t seen = emulator_->Requests().back().seq;
  Cli({"apply"});
  EXPECT_EQ(CountWrites(seen), 0);
  EXPECT_EQ(UserByEmail(State(), kGita), gita_as_added_);
}

TEST_F(InviteConflictTest, AProtectedAddressIsNeitherInvitedNorAdopted) {
  // adopt_existing would adopt gita; `protect` (in another case) wins.
  SetConfig(/*adopt=*/true, /*protect_gita=*/true);
  CliRun run = ApplyWhileGitaIsAddedByHand();
  ASSERT_EQ(run.status, daemon::kExitOk) << run.out << run.err;
  EXPECT_TRUE(GitaInvites().empty());
  EXPECT_TRUE(WritesToTheUserByHand().empty());
  EXPECT_EQ(UserByEmail(State(), kGita), gita_as_added_);
  ExpectExampleAccessByHand({kGita});
  const std::uint64_t seen = emulator_->Requests().back().seq;
  CliRun again = Cli({"apply"});
  EXPECT_EQ(again.status, daemon::kExitOk) << again.out << again.err;
  EXPECT_EQ(CountWrites(seen), 0) << again.out;
  EXPECT_EQ(UserByEmail(State(), kGita), gita_as_added_);
}

// Runs raw SQL against the store behind idsync's back.
void Tamper(const fs::path& db, const std::string& sql) {
  sqlite3* handle = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &handle), SQLITE_OK);
  char* error = nullptr;
  int rc = sqlite3_exec(handle, sql.c_str(), nullptr, nullptr, &error);
  EXPECT_EQ(rc, SQLITE_OK) << (error ? error : "");
  sqlite3_free(error);
  sqlite3_close(handle);
}

class AuditTamperTest : public ApplyTest {
 protected:
  void SetUp() override {
    ApplyTest::SetUp();
    ExampleConfig();
    ASSERT_EQ(Cli({"apply"}).status, daemon::kExitOk);
    CliRun ok = Cli({"audit", "verify"});
    ASSERT_EQ(ok.status, daemon::kExitOk) << ok.out << ok.err;
    head_ = json::parse(Cli({"status", "--json"}).out)["audit"]["head"];
    ASSERT_FALSE(head_.empty());
  }
  std::string head_;
};

TEST_F(AuditTamperTest, EditedEntryIsFound) {
  Tamper(dir_ / "state.db", "UPDATE audit SET email = 'mallory@corp.example' WHERE seq = 3");
  CliRun run = Cli({"audit", "verify"});
  EXPECT_EQ(run.status, daemon::kExitFailed);
  EXPECT_NE(run.out.find("entry 3"), std::string::npos) << run.out;
}

TEST_F(AuditTamperTest, DeletedEntryIsFound) {
  Tamper(dir_ / "state.db", "DELETE FROM audit WHERE seq = 4");
  CliRun run = Cli({"audit", "verify"});
  EXPECT_EQ(run.status, daemon::kExitFailed);
  EXPECT_NE(run.out.find("entry"), std::string::npos) << run.out;
}

TEST_F(AuditTamperTest, SwappedEntriesAreFound) {
  Tamper(dir_ / "state.db",
         "UPDATE audit SET seq = -1 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 5; "
         "UPDATE audit SET seq = 5 WHERE seq = -1;");
  CliRun run = Cli({"audit", "verify"});
  EXPECT_EQ(run.status, daemon::kExitFailed);
  EXPECT_NE(run.out.find("entry 2"), std::string::npos) << run.out;
}

TEST_F(AuditTamperTest, CutEndIsFoundOnlyAgainstAKeptHead) {
  Tamper(dir_ / "state.db", "DELETE FROM audit WHERE seq >= (SELECT MAX(seq) - 1 FROM audit)");
  EXPECT_EQ(Cli({"audit", "verify"}).status, daemon::kExitOk);  // what is left is consistent
  CliRun run = Cli({"audit", "verify", "--head", head_});
  EXPECT_EQ(run.status, daemon::kExitFailed);
  EXPECT_NE(run.out.find("cut"), std::string::npos) << run.out;
}

TEST_F(AuditTamperTest, HeadIsTakenInEitherCaseAndWithItsPrefix) {
  std::string upper = head_;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const std::string& head : {head_, upper, "sha256:" + head_}) {
    CliRun run = Cli({"audit", "verify", "--head", head});
    EXPECT_EQ(run.status, daemon::kExitOk) << head << "\n" << run.out << run.err;
  }
}

TEST_F(AuditTamperTest, MalformedHeadIsAUsageError) {
  for (const std::string& head : {head_.substr(0, 12), head_ + "0", "sha256:" + head_.substr(1),
                                  std::string(64, 'g'), std::string("latest")}) {
    CliRun run = Cli({"audit", "verify", "--head", head});
    EXPECT_EQ(run.status, daemon::kExitUsage) << head << "\n" << run.out << run.err;
    EXPECT_EQ(run.out.find("BROKEN"), std::string::npos) << run.out;
    EXPECT_NE(run.err.find("--head takes the audit log's head"), std::string::npos) << run.err;
  }
  EXPECT_EQ(Cli({"audit", "--head", head_}).status, daemon::kExitUsage);
}

}  // namespace
}  // namespace idsync
