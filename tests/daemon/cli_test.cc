// The idsync command line over the example company in examples/: explain and
// plan outputs are checked against expectations worked out by hand from the
// rules, and every exit status of DESIGN.md's table is exercised.
#include "idsync/daemon/cli.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include "idsync/mapping/catalog.h"
#include "idsync/scim/endpoint.h"

namespace idsync::daemon {
namespace {

using nlohmann::json;

const std::string kExamples = std::string(IDSYNC_SOURCE_DIR) + "/examples";
const std::string kConfig = kExamples + "/idsync.yaml";
const std::string kState = kExamples + "/account-state.json";

struct CliRun {
  int status;
  std::string out;
  std::string err;
};

CliRun Cli(std::vector<std::string> args) {
  std::ostringstream out, err;
  int status = RunCli(args, out, err);
  return {status, out.str(), err.str()};
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A copy of the example configuration in a temporary directory, with LDIF
// paths made absolute and `edit` applied (old text -> new text).
using Edits = std::map<std::string, std::string>;

class TempConfig {
 public:
  explicit TempConfig(const Edits& edits = {}) {
    dir_ = std::filesystem::temp_directory_path() /
           ("idsync-cli-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::create_directories(dir_);
    std::string text = ReadFile(kConfig);
    Replace(text, "path: directory.ldif", "path: " + kExamples + "/directory.ldif");
    Replace(text, "path: contractors.ldif", "path: " + kExamples + "/contractors.ldif");
    for (const auto& [from, to] : edits) Replace(text, from, to);
    path_ = (dir_ / "idsync.yaml").string();
    std::ofstream(path_) << text;
  }
  ~TempConfig() { std::filesystem::remove_all(dir_); }
  const std::string& path() const { return path_; }

 private:
  static void Replace(std::string& text, const std::string& from, const std::string& to) {
    auto pos = text.find(from);
    ASSERT_NE(pos, std::string::npos) << "example config lacks: " << from;
    text.replace(pos, from.size(), to);
  }
  static inline int counter_ = 0;
  std::filesystem::path dir_;
  std::string path_;
};

json FullLevels(const json& compact) {
  mapping::PermissionSpec spec;
  for (const auto& [key, value] : compact.items()) {
    spec[key] = *mapping::ParseLevel(value.get<std::string>());
  }
  auto levels = mapping::Catalog::Builtin().Expand(spec);
  EXPECT_TRUE(levels.ok()) << levels.status().ToString();
  json full = json::object();
  const auto& keys = mapping::Catalog::Builtin().item_keys();
  for (std::size_t i = 0; i < keys.size(); ++i) {
    full[keys[i]] = std::string(mapping::LevelName((*levels)[i]));
  }
  return full;
}

TEST(CliExplain, AllJsonGivesExactlyWhatTheRulesSay) {
  CliRun run = Cli({"--config", kConfig, "explain", "--all", "--json"});
  ASSERT_EQ(run.status, kExitOk) << run.err;
  json actual = json::parse(run.out);
  json expected =
      json::parse(ReadFile(std::string(IDSYNC_TESTDATA_DIR) + "/examples/expected-access.json"));
  expected.erase("_comment");

  std::set<std::string> seen;
  for (const json& person : actual) {
    std::string email = person["email"];
    seen.insert(email);
    ASSERT_TRUE(expected.contains(email)) << email << " should have no access";
    const json& want = expected[email];
    EXPECT_EQ(person["role"], want["role"]) << email;
    json levels = want["role"] == "admin" ? FullLevels({{"analytics", "edit"},
                                                        {"build", "edit"},
                                                        {"channels", "edit"},
                                                        {"configure", "edit"},
                                                        {"deployments", "edit"}})
                                          : FullLevels(want["permissions"]);
    EXPECT_EQ(person["permissions"], levels) << email;
    EXPECT_EQ(person["projects"], want["projects"]) << email;
    EXPECT_EQ(person["rules"], want["rules"]) << email;
    EXPECT_EQ(person["access"], true);
    // Every item with a level names the rule behind it, and no other item does.
    for (const auto& [item, level] : person["permissions"].items()) {
      EXPECT_EQ(person["why"].contains(item), level != "none") << email << " " << item;
    }
  }
  std::set<std::string> want_people;
  for (const auto& [email, _] : expected.items()) want_people.insert(email);
  EXPECT_EQ(seen, want_people);
}

TEST(CliExplain, WhyNamesTheRuleThatGaveEachLevel) {
  CliRun run = Cli({"--config", kConfig, "explain", "chen@corp.example", "--json"});
  ASSERT_EQ(run.status, kExitOk) << run.err;
  json chen = json::parse(run.out);
  EXPECT_EQ(chen["why"]["build.knowledge"], "support-leads");
  EXPECT_EQ(chen["why"]["build.agent"], "qa");
  EXPECT_EQ(chen["why"]["analytics.conversations"], "qa");
  EXPECT_EQ(chen["why"]["configure.dashboards"], "qa");
  EXPECT_FALSE(chen["why"].contains("configure.general"));
  // Known to both sources, joined by e-mail whatever its case.
  EXPECT_EQ(chen["sources"], json({"hr", "contractors"}));
  std::set<std::string> groups;
  for (const auto& g : chen["groups"])
    groups.insert(g["source"].get<std::string>() + "/" + g["name"].get<std::string>());
  EXPECT_TRUE(groups.count("hr/qa-emea"));
  EXPECT_TRUE(groups.count("contractors/Support Leads"));
}

TEST(CliExplain, NestedGroupsAndCyclesGiveTheOuterGroupsRule) {
  CliRun run = Cli({"--config", kConfig, "explain", "farid@corp.example", "--json"});
  ASSERT_EQ(run.status, kExitOk) << run.err;
  json farid = json::parse(run.out);
  EXPECT_EQ(farid["rules"], json({"voice"}));
  std::set<std::string> groups;
  for (const auto& g : farid["groups"]) groups.insert(g["name"]);
  EXPECT_EQ(groups, (std::set<std::string>{"Voice Leads", "Voice Team"}));
}

TEST(CliExplain, DisabledPersonHasNoAccess) {
  CliRun run = Cli({"--config", kConfig, "explain", "hugo@corp.example", "--json"});
  ASSERT_EQ(run.status, kExitOk) << run.err;
  json hugo = json::parse(run.out);
  EXPECT_EQ(hugo["access"], false);
  EXPECT_EQ(hugo["disabled"], true);
  EXPECT_TRUE(hugo["role"].is_null());
  EXPECT_EQ(hugo["permissions"]["build.knowledge"], "none");
  EXPECT_EQ(hugo["rules"], json({"knowledge"}));
}

TEST(CliExplain, AddressIsCaseInsensitive) {
  CliRun run = Cli({"--config", kConfig, "explain", "BRUNO@corp.EXAMPLE"});
  ASSERT_EQ(run.status, kExitOk) << run.err;
  EXPECT_NE(run.out.find("bruno@corp.example"), std::string::npos);
  EXPECT_NE(run.out.find("qa-emea"), std::string::npos);
}

TEST(CliExplain, UnknownAddressExitsOne) {
  CliRun run = Cli({"--config", kConfig, "explain", "nobody@corp.example"});
  EXPECT_EQ(run.status, kExitFailed);
  EXPECT_NE(run.err.find("no source knows nobody@corp.example"), std::string::npos);
}

TEST(CliExplain, NeedsOneAddressOrAll) {
  EXPECT_EQ(Cli({"--config", kConfig, "explain"}).status, kExitUsage);
  EXPECT_EQ(Cli({"--config", kConfig, "explain", "a@b.c", "--all"}).status, kExitUsage);
}

TEST(CliValidate, ExampleIsValid) {
  CliRun run = Cli({"--config", kConfig, "validate"});
  EXPECT_EQ(run.status, kExitOk) << run.err;
  EXPECT_NE(run.out.find("configuration is valid"), std::string::npos);
}

TEST(CliValidate, BadConfigExitsTwoNamingLineAndColumn) {
  TempConfig cfg(Edits{{"adopt_existing: true", "adopt_existing: true\nadopt_exsting: false"}});
  CliRun run = Cli({"--config", cfg.path(), "validate"});
  EXPECT_EQ(run.status, kExitUsage);
  // The misspelt key sits on the line after adopt_existing, column 1.
  std::string text = ReadFile(cfg.path());
  int line = 1;
  for (std::size_t i = 0; i < text.find("adopt_exsting"); ++i) line += text[i] == '\n';
  EXPECT_NE(run.err.find(cfg.path() + ":" + std::to_string(line) + ":1:"), std::string::npos)
      << run.err;
}

// The example's policy tests, with `from` made `to`: a test that fails.
int LineOf(const std::string& text, const std::string& needle) {
  int line = 1;
  for (std::size_t i = 0; i < text.find(needle); ++i) line += text[i] == '\n';
  return line;
}

TEST(CliPolicyTests, ValidateRunsTheGivenCasesAndTestRunsThemAll) {
  CliRun valid = Cli({"--config", kConfig, "validate"});
  EXPECT_EQ(valid.status, kExitOk) << valid.err;
  EXPECT_NE(valid.out.find("4 policy tests (given:) passed"), std::string::npos) << valid.out;
  CliRun all = Cli({"--config", kConfig, "test"});
  EXPECT_EQ(all.status, kExitOk) << all.err << all.out;
  EXPECT_NE(all.out.find("ok      QA leads edit dashboards\n"), std::string::npos) << all.out;
  EXPECT_NE(all.out.find("5 passed, 0 failed"), std::string::npos) << all.out;
}

TEST(CliPolicyTests, AFailingGivenCaseMakesTheConfigurationInvalid) {
  TempConfig cfg(Edits{{"expect: {role: member}", "expect: {role: admin}"}});
  const int line = LineOf(ReadFile(cfg.path()), "contractors never become admin");
  CliRun run = Cli({"--config", cfg.path(), "validate"});
  EXPECT_EQ(run.status, kExitUsage);
  EXPECT_NE(run.err.find(cfg.path() + ":" + std::to_string(line) +
                         ":5: policy test \"contractors never become admin\" failed\n"
                         "  role: expected admin, got member\n"
                         "    no rule gives it; rules matched: none; groups: contractors: "
                         "Studio Admins\n"),
            std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find("1 of 4 policy tests failed"), std::string::npos) << run.err;
  // `idsync test` reports it as a failed test (exit 1), with the others.
  CliRun tested = Cli({"--config", cfg.path(), "test"});
  EXPECT_EQ(tested.status, kExitFailed);
  EXPECT_NE(tested.out.find("FAILED  contractors never become admin"), std::string::npos);
  EXPECT_NE(tested.out.find("4 passed, 1 failed"), std::string::npos) << tested.out;
}

TEST(CliPolicyTests, APersonCaseReadsTheSources) {
  TempConfig cfg(Edits{
      {"configure.dashboards: edit, build: read", "configure.dashboards: edit, build: edit"}});
  // Only given: cases count for validity.
  EXPECT_EQ(Cli({"--config", cfg.path(), "validate"}).status, kExitOk);
  CliRun run = Cli({"--config", cfg.path(), "test", "--json"});
  EXPECT_EQ(run.status, kExitFailed) << run.err;
  const json report = json::parse(run.out, nullptr, false);
  ASSERT_TRUE(report.is_object()) << run.out;
  EXPECT_EQ(report["passed"], 4);
  EXPECT_EQ(report["failed"], 1);
  const json& bruno = report["tests"][0];
  EXPECT_EQ(bruno["kind"], "person");
  EXPECT_EQ(bruno["person"], "bruno@corp.example");
  EXPECT_EQ(bruno["passed"], false);
  ASSERT_EQ(bruno["mismatches"].size(), 1u) << bruno.dump();
  EXPECT_EQ(bruno["mismatches"][0]["key"], "build");
  EXPECT_EQ(bruno["mismatches"][0]["expected"], "edit");
  EXPECT_EQ(bruno["mismatches"][0]["got"], "read");
  EXPECT_EQ(bruno["mismatches"][0]["causes"][0]["rule"], "qa");
  EXPECT_EQ(bruno["mismatches"][0]["causes"][0]["via"][0]["name"], "qa-emea");
  EXPECT_EQ(bruno["matched_rules"], json::array({"qa"}));

  // Someone the sources do not know fails with that reason.
  TempConfig unknown(Edits{{"person: bruno@corp.example", "person: nobody@corp.example"}});
  CliRun missing = Cli({"--config", unknown.path(), "test"});
  EXPECT_EQ(missing.status, kExitFailed);
  EXPECT_NE(missing.out.find("  no source knows nobody@corp.example\n"), std::string::npos)
      << missing.out;
}

TEST(CliValidate, WarnsAboutATokenHashCopiedFromTheDocs) {
  EXPECT_EQ(Cli({"--config", kConfig, "validate"}).err.find("warning"), std::string::npos);
  TempConfig cfg(
      Edits{{"adopt_existing: true",
             "adopt_existing: true\nserver:\n  admin_tokens: "
             "[\"sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae\"]"}});
  CliRun run = Cli({"--config", cfg.path(), "validate"});
  EXPECT_EQ(run.status, kExitOk) << run.err;
  EXPECT_NE(run.err.find("idsync: warning: " + cfg.path() +
                         ": server.admin_tokens: sha256:2c26b46b68ffc68ff99b453c1d3041"
                         "3413422d706483bfa0f98a5e886266e7ae is an example from idsync's "
                         "documentation: make your own with `idsync scim-token new`"),
            std::string::npos)
      << run.err;
}

// The units pass the account token as a systemd credential
// (${file:account-token}); in a shell there is no $CREDENTIALS_DIRECTORY.
// Commands that need no secret must work there as the docs show them.
TEST(CliSecrets, CommandsReadOnlyTheSecretsTheyNeed) {
  ::unsetenv("CREDENTIALS_DIRECTORY");
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("idsync-cli-secrets-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  TempConfig cfg(Edits{{"adopt_existing: true",
                        "adopt_existing: true\naccount:\n  url: http://127.0.0.1:1\n"
                        "  token: ${file:account-token}\n  retry_for: 1s\n  read_retry_for: 1s\n"
                        "store: sqlite://" +
                            (dir / "state.db").string()}});
  for (const std::vector<std::string>& command :
       {std::vector<std::string>{"validate"},
        {"explain", "--all"},
        {"status"},
        {"audit"},
        {"audit", "verify"},
        {"plan", "--account-state", kExamples + "/account-state.json"}}) {
    std::vector<std::string> argv = {"--config", cfg.path()};
    argv.insert(argv.end(), command.begin(), command.end());
    CliRun run = Cli(argv);
    EXPECT_NE(run.status, kExitUsage) << command[0] << ": " << run.err;
    EXPECT_EQ(run.err.find("CREDENTIALS_DIRECTORY"), std::string::npos) << run.err;
  }
  // Talking to the account needs the token, and the error says how to give it.
  CliRun plan = Cli({"--config", cfg.path(), "plan"});
  EXPECT_EQ(plan.status, kExitUsage);
  EXPECT_NE(plan.err.find("${file:account-token}: $CREDENTIALS_DIRECTORY is not set"),
            std::string::npos)
      << plan.err;
  EXPECT_NE(plan.err.find("--credentials-dir DIR"), std::string::npos) << plan.err;
  // --credentials-dir gives it: the load passes and the (absent) account is what fails.
  std::ofstream(dir / "account-token") << "t0ken\n";
  plan = Cli({"--config", cfg.path(), "--credentials-dir", dir.string(), "plan"});
  EXPECT_EQ(plan.status, kExitFailed) << plan.err;
  EXPECT_EQ(plan.err.find("CREDENTIALS_DIRECTORY"), std::string::npos) << plan.err;
  EXPECT_EQ(plan.err.find("t0ken"), std::string::npos) << plan.err;
  std::filesystem::remove_all(dir);
}

TEST(CliValidate, MissingFileExitsTwo) {
  EXPECT_EQ(Cli({"--config", "/nonexistent/idsync.yaml", "validate"}).status, kExitUsage);
}

json PlanJson(const CliRun& run) {
  EXPECT_FALSE(run.out.empty()) << run.err;
  return json::parse(run.out);
}

std::map<std::string, std::string> OpsByEmail(const json& plan) {
  std::map<std::string, std::string> ops;
  for (const auto& op : plan["operations"]) ops[op["email"]] = op["op"];
  return ops;
}

TEST(CliPlan, AgainstExampleAccountState) {
  CliRun run = Cli({"--config", kConfig, "plan", "--account-state", kState, "--json"});
  ASSERT_EQ(run.status, kExitOk) << run.err;
  json plan = PlanJson(run);
  EXPECT_EQ(plan["blocked"], false);
  std::map<std::string, std::string> want = {
      {"chen@corp.example", "invite"},      {"dana@corp.example", "invite"},
      {"eve@corp.example", "invite"},       {"farid@corp.example", "invite"},
      {"wang@corp.example", "invite"},      {"lena@partners.example", "invite"},
      {"jose@corp.example", "invite"},      {"iris@corp.example", "invite"},
      {"bruno@corp.example", "update"},     {"hugo@corp.example", "remove"},
      {"old.timer@corp.example", "remove"}, {"Kim@corp.example", "remove"},
  };
  EXPECT_EQ(OpsByEmail(plan), want);
  EXPECT_EQ(plan["summary"],
            json({{"invite", 8}, {"update", 1}, {"remove", 3}, {"revoke", 0}, {"unchanged", 2}}));
  for (const auto& op : plan["operations"]) {
    if (op["email"] == "bruno@corp.example") {
      EXPECT_EQ(op["user_id"], "u_bruno");
      EXPECT_EQ(op["permissions"]["analytics.smart-analyst"], "edit");
      EXPECT_EQ(op["before"]["permissions"]["analytics.smart-analyst"], "read");
      EXPECT_EQ(op["projects"], json({"support-bot"}));
      EXPECT_EQ(op["permissions"].size(), 25u);
    }
    if (op["op"] == "invite") {
      EXPECT_FALSE(op.contains("user_id"));
    }
    // Removals name the projects a person loses, as invites name theirs.
    if (op["email"] == "old.timer@corp.example") {
      EXPECT_EQ(op["before"]["projects"], json({"legacy-ivr"})) << op.dump();
    }
  }
}

// A typo in account.url must not look like a hang: `idsync plan` (the
// binary) gives up on the account after account.read_retry_for, not
// retry_for's 24 h, says on stderr what it retries while it waits, and
// exits 1 naming the URL and the last error.
TEST(CliPlan, UnreachableAccountExitsOneWithinTheReadBudget) {
  // Port 9 (discard) on loopback: nothing listens, the connection is refused.
  TempConfig config(Edits{{"permissions:\n",
                           "account:\n  url: http://127.0.0.1:9/v1\n  token: t0ken\n"
                           "  read_retry_for: 3s\nstore: sqlite://state.db\npermissions:\n"}});
  // `timeout` ends a client that would retry for a day, so the test fails
  // rather than hangs.
  const std::string command = std::string("timeout 60 ") + IDSYNC_BINARY + " --config " +
                              config.path() + " plan 2>&1 >/dev/null";
  const auto start = std::chrono::steady_clock::now();
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string err;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) err.append(buffer, n);
  const int wstatus = ::pclose(pipe);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(WIFEXITED(wstatus)) << err;
  EXPECT_EQ(WEXITSTATUS(wstatus), kExitFailed) << err;
  EXPECT_LT(took, std::chrono::seconds(3) + std::chrono::seconds(5)) << err;
  // While it waits: what it retries and why.
  EXPECT_NE(err.find("account.retrying: GET http://127.0.0.1:9/v1/projects failed; retrying in "),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("(account.read_retry_for) error=\"Connection refused\""), std::string::npos)
      << err;
  // At the end: the URL and the last error.
  EXPECT_NE(err.find("gave up on http://127.0.0.1:9/v1/projects after "), std::string::npos) << err;
  EXPECT_NE(err.find("; last error: Connection refused\n"), std::string::npos) << err;
}

TEST(CliPlan, HumanOutputShowsBeforeAndAfter) {
  CliRun run = Cli({"--config", kConfig, "plan", "--account-state", kState});
  ASSERT_EQ(run.status, kExitOk) << run.err;
  EXPECT_NE(run.out.find("8 to invite, 1 to update"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("read -> edit"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("old.timer@corp.example"), std::string::npos);
  EXPECT_NE(run.out.find("projects legacy-ivr"), std::string::npos) << run.out;
}

TEST(CliPlan, OverTheRemovalLimitIsBlockedExitThree) {
  TempConfig cfg(Edits{{"max_removals: 5", "max_removals: 2"}});
  CliRun run = Cli({"--config", cfg.path(), "plan", "--account-state", kState, "--json"});
  EXPECT_EQ(run.status, kExitBlocked) << run.err;
  json plan = PlanJson(run);
  EXPECT_EQ(plan["blocked"], true);
  ASSERT_FALSE(plan["reasons"].empty());
  // The blocked plan is still printed whole.
  EXPECT_EQ(plan["summary"]["remove"], 3);
}

TEST(CliPlan, ForcePassesTheLimit) {
  TempConfig cfg(Edits{{"max_removals: 5", "max_removals: 2"}});
  CliRun run =
      Cli({"--config", cfg.path(), "plan", "--account-state", kState, "--json", "--force"});
  EXPECT_EQ(run.status, kExitOk) << run.err;
  json plan = PlanJson(run);
  EXPECT_EQ(plan["blocked"], false);
  EXPECT_EQ(plan["forced"], true);
}

TEST(CliPlan, FailedSourceRemovesNobody) {
  TempConfig cfg(
      Edits{{"path: " + kExamples + "/directory.ldif", "path: /nonexistent/export.ldif"}});
  CliRun run = Cli({"--config", cfg.path(), "plan", "--account-state", kState, "--json"});
  EXPECT_EQ(run.status, kExitFailed);
  EXPECT_NE(run.err.find("source hr: "), std::string::npos) << run.err;
  json plan = PlanJson(run);
  for (const auto& op : plan["operations"]) {
    EXPECT_NE(op["op"], "remove") << op["email"];
    EXPECT_NE(op["op"], "revoke") << op["email"];
  }
  // The contractors source still adds access.
  EXPECT_EQ(OpsByEmail(plan)["lena@partners.example"], "invite");
}

// The example account state plus the account's own catalog: the built-in
// one with one more item, analytics.reports, listed first in its area.
std::string StateWithAccountCatalog(const std::string& dir) {
  json state = json::parse(ReadFile(kState));
  json areas = json::array();
  for (const auto& area : mapping::Catalog::Builtin().areas()) {
    json items = json::array();
    if (area.key == "analytics") items.push_back({{"key", "reports"}, {"label", "Reports"}});
    for (const auto& item : area.items) items.push_back({{"key", item.key}, {"label", item.label}});
    areas.push_back({{"key", area.key}, {"label", area.label}, {"items", items}});
  }
  state["catalog"] = {{"levels", {"none", "read", "edit"}}, {"areas", areas}};
  std::string path = dir + "/state-with-catalog.json";
  std::ofstream(path) << state.dump();
  return path;
}

TEST(CliPlan, BuiltinCatalogIsUsedForBothSidesWhenConfigured) {
  TempConfig cfg;  // the example says `catalog: builtin`
  std::string state = StateWithAccountCatalog(std::filesystem::path(cfg.path()).parent_path());
  CliRun run = Cli({"--config", cfg.path(), "plan", "--account-state", state, "--json"});
  ASSERT_EQ(run.status, kExitOk) << run.err;
  json plan = PlanJson(run);
  // The same plan as without the file's catalog: bruno's analytics, nothing else.
  EXPECT_EQ(plan["summary"]["update"], 1);
  EXPECT_EQ(plan["summary"]["unchanged"], 2);
  for (const auto& op : plan["operations"]) {
    EXPECT_EQ(op["permissions"].size(), 25u);
    EXPECT_FALSE(op["permissions"].contains("analytics.reports"));
  }
}

TEST(CliPlan, AccountCatalogDecidesWhichKeysExist) {
  TempConfig cfg(Edits{
      {"catalog: builtin", "catalog: account"},
      {"preset: qa-analyst", "preset: qa-analyst\n    permissions: {analytics.reports: edit}"}});
  std::string state = StateWithAccountCatalog(std::filesystem::path(cfg.path()).parent_path());
  CliRun run = Cli({"--config", cfg.path(), "plan", "--account-state", state, "--json"});
  ASSERT_EQ(run.status, kExitOk) << run.err;
  json plan = PlanJson(run);
  bool saw_bruno = false;
  for (const auto& op : plan["operations"]) {
    EXPECT_EQ(op["permissions"].size(), 26u);
    if (op["email"] != "bruno@corp.example") continue;
    saw_bruno = true;
    EXPECT_EQ(op["permissions"]["analytics.reports"], "edit");
    EXPECT_EQ(op["before"]["permissions"]["analytics.reports"],
              "read");  // from "analytics": "read"
  }
  EXPECT_TRUE(saw_bruno);
  // Offline, without the account's catalog, the same key is unknown: exit 2.
  EXPECT_EQ(Cli({"--config", cfg.path(), "validate"}).status, kExitUsage);
}

TEST(CliPlan, RemoveCarriesTheFixedFields) {
  CliRun run = Cli({"--config", kConfig, "plan", "--account-state", kState, "--json"});
  ASSERT_EQ(run.status, kExitOk) << run.err;
  json plan = PlanJson(run);
  for (const auto& op : plan["operations"]) {
    for (const char* key : {"op", "email", "role", "permissions", "projects", "rules"}) {
      EXPECT_TRUE(op.contains(key)) << op["email"] << " lacks " << key;
    }
    if (op["op"] == "remove") {
      EXPECT_TRUE(op["role"].is_null());
      EXPECT_EQ(op["permissions"]["build.agent"], "none");
      EXPECT_TRUE(op.contains("before"));
    }
  }
}

TEST(CliPlan, NeedsAccountStateInThisVersion) {
  EXPECT_EQ(Cli({"--config", kConfig, "plan"}).status, kExitUsage);
}

TEST(CliPlan, AccountStateKeysMayComeInAnyOrder) {
  // The file is read as a stream, each user taken out as it comes: a
  // project list (and a catalog) after the users still applies to them, and
  // a user that does not parse is named by its place.
  const json original = json::parse(ReadFile(kState));
  TempConfig cfg;
  const std::string reordered =
      (std::filesystem::path(cfg.path()).parent_path() / "reordered.json").string();
  json catalog = json::array();
  for (const auto& area : mapping::Catalog::Builtin().areas()) {
    json items = json::array();
    for (const auto& item : area.items) items.push_back({{"key", item.key}, {"label", item.label}});
    catalog.push_back({{"key", area.key}, {"label", area.label}, {"items", items}});
  }
  std::ofstream(reordered) << "{\"users\": " << original["users"].dump()
                           << ", \"projects\": " << original["projects"].dump()
                           << ", \"catalog\": {\"areas\": " << catalog.dump() << "}}";
  const CliRun first = Cli({"--config", kConfig, "plan", "--account-state", kState, "--json"});
  const CliRun second = Cli({"--config", kConfig, "plan", "--account-state", reordered, "--json"});
  ASSERT_EQ(first.status, kExitOk) << first.err;
  ASSERT_EQ(second.status, kExitOk) << second.err;
  EXPECT_EQ(PlanJson(first), PlanJson(second));
  // A user that does not parse is still named, wherever it is.
  const std::string bad =
      (std::filesystem::path(cfg.path()).parent_path() / "bad-second.json").string();
  std::ofstream(bad) << R"({"users": [{"id": "u1", "email": "a@b.c", "role": "member"}, 7],)"
                     << R"( "projects": []})";
  const CliRun refused = Cli({"--config", kConfig, "plan", "--account-state", bad});
  EXPECT_EQ(refused.status, kExitUsage);
  EXPECT_NE(refused.err.find("users[1]: expected an object"), std::string::npos) << refused.err;
}

TEST(CliPlan, BadAccountStateExitsTwo) {
  TempConfig cfg;
  std::string bad = std::filesystem::path(cfg.path()).parent_path() / "state.json";
  std::ofstream(bad) << R"({"users": [{"id": "u1", "email": "a@b.c", "role": "owner"}]})";
  CliRun run = Cli({"--config", cfg.path(), "plan", "--account-state", bad});
  EXPECT_EQ(run.status, kExitUsage);
  EXPECT_NE(run.err.find("unknown role \"owner\""), std::string::npos) << run.err;
}

TEST(CliPlan, ProjectTheListDoesNotNameExitsTwo) {
  // A removal would otherwise show the bare id where invites show names.
  TempConfig cfg;
  std::string bad = std::filesystem::path(cfg.path()).parent_path() / "state.json";
  std::ofstream(bad) << R"({"users": [{"id": "u1", "email": "a@b.c", "role": "member",
                                       "projects": ["p_gone"]}],
                            "projects": [{"id": "p_support", "name": "support-bot"}]})";
  CliRun run = Cli({"--config", cfg.path(), "plan", "--account-state", bad});
  EXPECT_EQ(run.status, kExitUsage);
  EXPECT_NE(run.err.find("holds project \"p_gone\""), std::string::npos) << run.err;
}

TEST(Cli, UnknownCommandAndOptionExitTwo) {
  EXPECT_EQ(Cli({"frobnicate"}).status, kExitUsage);
  EXPECT_EQ(Cli({"validate", "--frob"}).status, kExitUsage);
  EXPECT_EQ(Cli({}).status, kExitUsage);
  EXPECT_EQ(Cli({"--help"}).status, kExitOk);
}

TEST(CliScimToken, PrintsANewTokenOnceWithItsHash) {
  CliRun first = Cli({"scim-token", "new"});
  ASSERT_EQ(first.status, kExitOk) << first.err;
  std::smatch token, hash;
  ASSERT_TRUE(std::regex_search(first.out, token, std::regex("token: ([A-Za-z0-9_-]{43})\n")))
      << first.out;
  ASSERT_TRUE(std::regex_search(first.out, hash, std::regex("hash: +(sha256:[0-9a-f]{64})\n")))
      << first.out;
  EXPECT_EQ(hash[1].str(), scim::HashToken(token[1].str()));
  CliRun second = Cli({"scim-token", "new"});
  EXPECT_EQ(second.status, kExitOk);
  EXPECT_EQ(second.out.find(token[1].str()), std::string::npos) << "the same token twice";
  EXPECT_EQ(Cli({"scim-token"}).status, kExitUsage);
  EXPECT_EQ(Cli({"scim-token", "old"}).status, kExitUsage);
}

// Run as root, commands that use the store refuse a store another user owns
// (there is no `idsync` user here to switch to) and leave no file behind.
TEST(CliRoot, RefusesAStoreAnotherUserOwns) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  const std::filesystem::path owned =
      std::filesystem::temp_directory_path() / ("idsync-cli-owned-" + std::to_string(::getpid()));
  std::filesystem::create_directories(owned);
  ASSERT_EQ(::chown(owned.c_str(), 54321, 54321), 0);
  TempConfig cfg(Edits{{"deprovision: remove", "store: sqlite://" + (owned / "state.db").string() +
                                                   "\ndeprovision: remove"}});
  CliRun status = Cli({"--config", cfg.path(), "status"});
  EXPECT_EQ(status.status, kExitUsage) << status.out << status.err;
  EXPECT_NE(status.err.find("run idsync as that user"), std::string::npos) << status.err;
  EXPECT_EQ(Cli({"--config", cfg.path(), "audit", "verify"}).status, kExitUsage);
  EXPECT_TRUE(std::filesystem::is_empty(owned)) << "root left files in the store's directory";
  std::filesystem::remove_all(owned);

  // A store root owns is root's to use.
  const std::filesystem::path mine =
      std::filesystem::temp_directory_path() / ("idsync-cli-root-" + std::to_string(::getpid()));
  std::filesystem::create_directories(mine);
  TempConfig root_cfg(
      Edits{{"deprovision: remove",
             "store: sqlite://" + (mine / "state.db").string() + "\ndeprovision: remove"}});
  CliRun ok = Cli({"--config", root_cfg.path(), "status"});
  EXPECT_EQ(ok.status, kExitOk) << ok.err;
  EXPECT_NE(ok.out.find("Sources:"), std::string::npos) << ok.out;
  std::filesystem::remove_all(mine);
}

}  // namespace
}  // namespace idsync::daemon
