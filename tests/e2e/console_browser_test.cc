// The console in a real browser: idsyncd reads the example company from a
// fixture-started slapd and writes to the account emulator; Debian's
// chromium, driven by selenium-webdriver (tests/browser/console_test.js),
// signs in with a wrong token and then the right one, looks at every page,
// searches for a person, asks for a sync and signs out. What the browser
// saw is compared with the CLI: the sources, the person's levels and
// reasons (`idsync explain --json`), the last run's audit entries; axe-core
// finds no serious or critical problem on any page. Screenshots are kept in
// the build tree (console-screenshots/).
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include "idsync/daemon/cli.h"
#include "idsync/scim/endpoint.h"

#include "harness.h"
#include "require_servers.h"
#include "slapd_fixture.h"

namespace idsync::e2e {
namespace {

using testing::SlapdFixture;

constexpr const char* kAccountToken = "e2e-console-account-token";
constexpr const char* kAdminToken = "e2e-console-admin-token";
constexpr const char* kPerson = "bruno@corp.example";

std::string ReadText(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Why the browser cannot run here, or "".
std::string WhyNoBrowser() {
  for (const char* path : {"/usr/bin/chromium", "/usr/bin/chromedriver", "/usr/bin/node"}) {
    if (!std::filesystem::exists(path)) return std::string(path) + " is not installed";
  }
  if (!std::filesystem::exists(std::string(IDSYNC_SOURCE_DIR) +
                               "/tests/browser/node_modules/selenium-webdriver")) {
    return "tests/browser's npm packages are not installed (scripts/install-deps.sh)";
  }
  return "";
}

class ConsoleBrowserTest : public E2eTest {
 protected:
  void SetUp() override {
    IDSYNC_REQUIRE_SERVER(SlapdFixture::Available(), SlapdFixture::WhyUnavailable());
    IDSYNC_REQUIRE_SERVER(WhyNoBrowser().empty(), WhyNoBrowser());
    Result<std::unique_ptr<SlapdFixture>> slapd = SlapdFixture::Start();
    ASSERT_TRUE(slapd.ok()) << slapd.status().ToString();
    slapd_ = std::move(slapd).value();
    // The example directory below the entries the fixture makes itself,
    // without the entryUUIDs of the export (the server assigns its own).
    std::istringstream lines(ReadText(std::string(IDSYNC_SOURCE_DIR) + "/examples/directory.ldif"));
    std::string ldif, line;
    bool below = false;
    while (std::getline(lines, line)) {
      below = below || line.rfind("dn: uid=", 0) == 0;
      if (below && line.rfind("entryUUID:", 0) != 0) ldif += line + "\n";
    }
    Status added = slapd_->Add(ldif);
    ASSERT_TRUE(added.ok()) << added.ToString();
    // The example account (its projects, an owner, people to adopt).
    const std::string seed =
        ReadText(std::string(IDSYNC_SOURCE_DIR) + "/examples/account-seed.json");
    ASSERT_NO_FATAL_FAILURE(SetUpAccount({.dir_prefix = "idsync-e2e-console",
                                          .token = kAccountToken,
                                          .seed_json = seed,
                                          .random_seed = 11,
                                          .admin_token = kAdminToken,
                                          .scim_token = ""}));
    ::setenv("IDSYNC_E2E_CONSOLE_BIND_PASSWORD", slapd_->admin_password().c_str(), 1);
    std::ostringstream y;
    y << AccountAndStoreYaml() << "sources:\n"
      << "  - name: corp-ldap\n"
      << "    type: ldap\n"
      << "    url: " << slapd_->ldap_url() << "\n"
      << "    allow_insecure: true\n"
      << "    bind: {dn: \"" << slapd_->admin_dn()
      << "\", password: \"${env:IDSYNC_E2E_CONSOLE_BIND_PASSWORD}\"}\n"
      << "    users: {base: \"ou=people,dc=corp,dc=example\", filter: "
         "\"(objectClass=inetOrgPerson)\", email: mail, name: cn, disabled_filter: "
         "\"(employeeType=former)\"}\n"
      << "    groups: {base: \"ou=groups,dc=corp,dc=example\", filter: "
         "\"(objectClass=groupOfNames)\", name: cn, member: member, nested: true}\n"
      << "    interval: 1h\n"
      << "server:\n"
      << "  admin_listen: [\"127.0.0.1:0\"]\n"
      << "  admin_tokens: [\"" << scim::HashToken(kAdminToken) << "\"]\n"
      << "permissions:\n  catalog: builtin\n"
      << "rules:\n"
      << "  - {name: studio-admins, match: {group: \"CN=Studio Admins,OU=Groups,DC=corp,"
         "DC=example\"}, role: admin}\n"
      << "  - {name: qa, match: {group: \"qa-*\"}, preset: qa-analyst, projects: [support-bot]}\n"
      << "  - {name: voice, match: {group: \"Voice Team\"}, presets: [voice-specialist], "
         "projects: [support-bot, sales-bot]}\n"
      << "  - {name: knowledge, match: {group: \"Knowledge Writers\"}, preset: content-editor, "
         "projects: [support-bot]}\n"
      << "deprovision: remove\nadopt_existing: true\n"
      << "protect: [owner@corp.example]\n"
      << "safety:\n  max_removals: 5\n  max_changes: none\n"
      << "logging: {format: text, level: info}\n";
    config_ = (dir_ / "idsync.yaml").string();
    std::ofstream(config_) << y.str();
  }

  void TearDown() override {
    E2eTest::TearDown();
    slapd_.reset();
  }

  std::unique_ptr<SlapdFixture> slapd_;
};

TEST_F(ConsoleBrowserTest, APersonSignsInLooksAroundSyncsAndSignsOut) {
  LaunchDaemon();
  const std::string started = WaitForStartLine();
  ASSERT_NE(started, "") << Log();
  admin_port_ = ListenerPort(started, "admin");
  ASSERT_NE(admin_port_, 0) << started;
  ASSERT_TRUE(WaitForRuns("full", 1, milliseconds(20000))) << Log();

  const std::filesystem::path shots = std::filesystem::current_path() / "console-screenshots";
  std::filesystem::remove_all(shots);
  const std::string cmd = "cd '" + std::string(IDSYNC_SOURCE_DIR) +
                          "/tests/browser' && SE_OFFLINE=true node console_test.js --url "
                          "http://127.0.0.1:" +
                          std::to_string(admin_port_) + " --token " + kAdminToken + " --person " +
                          kPerson + " --out '" + shots.string() + "' >'" +
                          (dir_ / "browser.log").string() + "' 2>&1";
  const int status = std::system(cmd.c_str());
  const std::string log = ReadText(dir_ / "browser.log");
  ASSERT_TRUE(WIFEXITED(status)) << log;
  const json seen = json::parse(ReadText(shots / "result.json"), nullptr, false);
  ASSERT_TRUE(seen.is_object()) << log;
  ASSERT_EQ(WEXITSTATUS(status), 0) << seen.value("error", "") << "\n" << log;

  // A wrong token is refused, and nothing is shown behind it.
  EXPECT_NE(seen["wrong_token_error"].get<std::string>().find("not accepted"), std::string::npos)
      << seen["wrong_token_error"];
  EXPECT_EQ(seen["nav_hidden_after_wrong_token"], true);
  // The overview shows every source.
  EXPECT_EQ(seen["sources"], json::array({"corp-ldap"}));
  // The person shows the levels and reasons the CLI gives.
  std::ostringstream out, err;
  ASSERT_EQ(daemon::RunCli({"--config", config_, "explain", kPerson, "--json"}, out, err), 0)
      << err.str();
  const json cli = json::parse(out.str());
  EXPECT_EQ(seen["person"]["permissions"], cli["permissions"]);
  EXPECT_EQ(seen["person"]["why"], cli["why"]);
  EXPECT_EQ(seen["person"]["role"], cli["role"]);
  // The audit log shows the last run's changes, with an intact chain.
  std::ostringstream audit_out, audit_err;
  ASSERT_EQ(daemon::RunCli({"--config", config_, "audit", "--json"}, audit_out, audit_err), 0);
  const json audit = json::parse(audit_out.str());
  ASSERT_FALSE(audit.empty());
  std::set<std::string> cli_seqs, browser_seqs;
  for (const json& e : audit) cli_seqs.insert(std::to_string(e["seq"].get<int>()));
  for (const json& e : seen["audit"]) browser_seqs.insert(e["seq"].get<std::string>());
  EXPECT_EQ(browser_seqs, cli_seqs);
  EXPECT_NE(seen["chain"].get<std::string>().find("intact"), std::string::npos) << seen["chain"];
  // "Sync now" started a run; signing out ended the session.
  EXPECT_EQ(seen["sync"], "Run started");
  EXPECT_TRUE(WaitForRuns("full", 2, milliseconds(20000))) << Log();
  EXPECT_EQ(seen["after_signout"], 401);
  // No page has a serious or critical accessibility problem.
  ASSERT_TRUE(seen["axe"].is_object());
  EXPECT_GE(seen["axe"].size(), 6u) << seen["axe"].dump();
  for (const auto& [page, violations] : seen["axe"].items()) {
    for (const json& v : violations) {
      EXPECT_TRUE(v["impact"] != "serious" && v["impact"] != "critical")
          << page << ": " << v.dump();
    }
  }
  EXPECT_EQ(StopDaemon(), 0);
}

}  // namespace
}  // namespace idsync::e2e
