// idsyncd end to end: the real binary, started as systemd would (a test
// socket in NOTIFY_SOCKET, WATCHDOG_USEC), against the account emulator on
// loopback, with an LDIF source and a SCIM source. Shows the ready and
// watchdog notifications, SIGHUP with a good and a broken configuration,
// SIGTERM in the middle of an apply with every write landing exactly once,
// a SCIM change reaching the account within a second, and a failing source
// deprovisioning nobody.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "idsync/daemon/cli.h"
#include "idsync/daemon/console.h"
#include "idsync/emulator/emulator.h"
#include "idsync/scim/endpoint.h"

#include "harness.h"
#include "prom_parse.h"

namespace idsync::e2e {
namespace {

constexpr const char* kAccountToken = "e2e-account-token";
constexpr const char* kScimToken = "e2e-scim-token";
constexpr const char* kAdminToken = "e2e-admin-token";

class DaemonTest : public E2eTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(SetUpAccount({.dir_prefix = "idsync-e2e",
                                          .token = kAccountToken,
                                          .seed_json = kAccountSeed,
                                          .random_seed = 3,
                                          .admin_token = kAdminToken,
                                          .scim_token = kScimToken}));
    fs::copy_file(std::string(IDSYNC_SOURCE_DIR) + "/examples/directory.ldif",
                  dir_ / "directory.ldif");
    // Directly under /tmp, not $TMPDIR: the path must fit in sun_path.
    notify_ = std::make_unique<NotifySocket>("/tmp/" + dir_.filename().string() + ".sock");
    ASSERT_TRUE(notify_->bound());
  }

  void TearDown() override {
    E2eTest::TearDown();
    notify_.reset();
  }

  // The example company's rules plus SCIM rules; `extra_rules` appended,
  // `extra_sources` (YAML list items) after the two sources.
  std::string WriteConfig(const std::string& extra_rules = "", int concurrency = 4,
                          const std::string& interval = "1h",
                          const std::string& safety = "max_removals: 5\n  max_changes: none",
                          const std::string& extra_sources = "") {
    std::ostringstream y;
    y << AccountAndStoreYaml(concurrency) << "sources:\n"
      << "  - name: hr\n"
      << "    type: ldif\n"
      << "    path: " << (dir_ / "directory.ldif").string() << "\n"
      << "    users: {base: \"ou=people,dc=corp,dc=example\", filter: "
         "\"(objectClass=inetOrgPerson)\", email: mail, name: cn, disabled_filter: "
         "\"(employeeType=former)\"}\n"
      << "    groups: {base: \"ou=groups,dc=corp,dc=example\", filter: "
         "\"(objectClass=groupOfNames)\", name: cn, member: member}\n"
      << "    interval: " << interval << "\n"
      << "    jitter: 0s\n"
      << "  - name: okta\n"
      << "    type: scim\n"
      << "    tokens: [\"" << scim::HashToken(kScimToken) << "\"]\n"
      << extra_sources << "server:\n"
      << "  listen: [\"127.0.0.1:0\"]\n"
      << "  admin_listen: [\"127.0.0.1:0\"]\n"
      << "  admin_tokens: [\"" << scim::HashToken(kAdminToken) << "\"]\n"
      << server_extra_ << "permissions:\n  catalog: builtin\n"
      << "rules:\n"
      << "  - {name: studio-admins, match: {group: \"CN=Studio Admins,OU=Groups,DC=corp,"
         "DC=example\"}, role: admin}\n"
      << "  - {name: qa, match: {group: \"qa-*\", source: hr}, preset: qa-analyst, "
         "projects: [support-bot]}\n"
      << "  - {name: voice, match: {group: \"Voice Team\"}, presets: [voice-specialist], "
         "projects: [support-bot, sales-bot]}\n"
      << "  - {name: knowledge, match: {group: \"Knowledge Writers\"}, preset: content-editor, "
         "projects: [support-bot]}\n"
      << "  - {name: okta-voice, match: {group: \"Okta Voice\", source: okta}, "
         "presets: [voice-specialist], projects: [support-bot]}\n"
      << "  - {name: okta-knowledge, match: {group: \"Okta Knowledge\", source: okta}, "
         "preset: content-editor}\n"
      << extra_rules << "deprovision: remove\nadopt_existing: false\n"
      << "protect: [owner@corp.example]\n"
      << "safety:\n  " << safety << "\n"
      << "logging: {format: text, level: debug}\n";
    config_ = (dir_ / "idsync.yaml").string();
    std::ofstream(config_) << y.str();
    return config_;
  }

  // Starts idsyncd with systemd's environment and waits for its ports.
  void StartDaemon(bool wait_ready = true) {
    LaunchDaemon({"NOTIFY_SOCKET=" + notify_->path(), "WATCHDOG_USEC=200000"});
    if (!wait_ready) return;
    ASSERT_NE(notify_->WaitFor("READY=1", milliseconds(15000)), "") << "no READY=1";
    ASSERT_NO_FATAL_FAILURE(ReadListenerPorts());
  }

  json AdminJson(const std::string& path) {
    HttpAnswer a = Http(admin_port_, "GET", path, kAdminToken);
    EXPECT_EQ(a.status, 200) << path << ": " << a.body;
    return a.Json();
  }

  // Every write the emulator applied landed once: no idempotency key twice,
  // no person invited twice.
  void ExpectEveryWriteOnce() {
    E2eTest::ExpectEveryWriteOnce();
    std::map<std::string, int> invites;
    for (const auto& r : emulator_->Requests()) {
      if (r.method == "GET" || !r.applied) continue;
      if (r.endpoint == "POST /users") {
        EXPECT_EQ(++invites[r.user_id], 1) << r.user_id;
      }
    }
  }

  // One sample of the daemon's /metrics as a Prometheus scraper reads it;
  // NaN when absent.
  double Metric(const std::string& name, const json& labels) {
    const HttpAnswer page = Http(admin_port_, "GET", "/metrics", "");
    EXPECT_EQ(page.status, 200);
    const json parsed = daemon::testing::ParsePrometheusText(page.body);
    EXPECT_EQ(parsed["ok"], true) << parsed.dump();
    return daemon::testing::SampleValue(parsed, name, labels);
  }

  // `idsync ARGS...` against this test's configuration, in process.
  struct CliRun {
    int status;
    std::string out;
    std::string err;
  };
  CliRun Cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"--config", config_});
    std::ostringstream out, err;
    const int status = daemon::RunCli(args, out, err);
    return {status, out.str(), err.str()};
  }

  std::unique_ptr<NotifySocket> notify_;
  std::string server_extra_;  // more keys of `server:`, each "  key: value\n"
};

TEST_F(DaemonTest, CheckConfigVersionAndHelp) {
  WriteConfig();
  auto run = [&](std::vector<std::string> args) {
    std::string cmd = std::string(IDSYNCD_BINARY);
    for (const auto& a : args) cmd += " '" + a + "'";
    cmd += " >" + (dir_ / "out").string() + " 2>&1";
    int status = std::system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  EXPECT_EQ(run({"--check-config", "--config", config_}), 0) << ReadFile(dir_ / "out");
  EXPECT_EQ(run({"--version"}), 0);
  EXPECT_NE(ReadFile(dir_ / "out").find("idsyncd "), std::string::npos);
  EXPECT_EQ(run({"--help"}), 0);
  EXPECT_NE(ReadFile(dir_ / "out").find("SIGHUP"), std::string::npos);
  std::ofstream(dir_ / "bad.yaml") << "account:\n  url: http://127.0.0.1:1\nrulez: []\n";
  EXPECT_EQ(run({"--check-config", "--config", (dir_ / "bad.yaml").string()}), 2);
  EXPECT_NE(ReadFile(dir_ / "out").find("bad.yaml:3:1"), std::string::npos)
      << ReadFile(dir_ / "out");
  EXPECT_EQ(run({"--bogus"}), 2);
  // The unit's credentials are not there outside it: --check-config checks
  // the references without reading them.
  std::string with_credential = ReadFile(config_);
  const std::size_t at = with_credential.find("  token: ${env:");
  ASSERT_NE(at, std::string::npos) << with_credential;
  with_credential.replace(at, with_credential.find('\n', at) - at,
                          "  token: ${file:account-token}");
  std::ofstream(dir_ / "credential.yaml") << with_credential;
  const std::string cmd = "env -u CREDENTIALS_DIRECTORY " + std::string(IDSYNCD_BINARY) +
                          " --check-config --config '" + (dir_ / "credential.yaml").string() +
                          "' >" + (dir_ / "out").string() + " 2>&1";
  const int status = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ReadFile(dir_ / "out");
}

TEST_F(DaemonTest, APolicyTestThatFailsRefusesTheConfigurationAndTheOldRulesStay) {
  const std::string tests =
      "tests:\n"
      "  - name: qa analysts are members\n"
      "    given: {groups: [{source: hr, name: qa-emea}]}\n"
      "    expect: {role: member, configure.dashboards: edit}\n";
  WriteConfig();
  std::ofstream(config_, std::ios::app) << tests;
  auto check_config = [&] {
    const std::string cmd = std::string(IDSYNCD_BINARY) + " --check-config --config '" + config_ +
                            "' >" + (dir_ / "out").string() + " 2>&1";
    const int status = std::system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  EXPECT_EQ(check_config(), 0) << ReadFile(dir_ / "out");
  StartDaemon();
  ASSERT_TRUE(WaitForRuns("full", 1, milliseconds(15000))) << Log();
  ASSERT_EQ(AccountUsers()["bruno@corp.example"]["role"], "member");

  // A new rule makes QA admins; the file's own test says they are members.
  WriteConfig("  - {name: qa-admins, match: {group: \"qa-emea\", source: hr}, role: admin}\n");
  std::ofstream(config_, std::ios::app) << tests;
  const std::string text = ReadFile(config_);
  int line = 1;
  for (std::size_t i = 0; i < text.find("  - name: qa analysts"); ++i) line += text[i] == '\n';
  EXPECT_EQ(check_config(), 2);
  const std::string refused = ReadFile(dir_ / "out");
  EXPECT_NE(refused.find(config_ + ":" + std::to_string(line) +
                         ":5: policy test \"qa analysts are members\" failed"),
            std::string::npos)
      << refused;
  EXPECT_NE(refused.find("role: expected member, got admin"), std::string::npos) << refused;
  EXPECT_NE(refused.find("from rule \"qa-admins\" via hr: qa-emea"), std::string::npos) << refused;

  // A reload of it is refused, and the rules in force stay the old ones.
  ASSERT_EQ(::kill(pid_, SIGHUP), 0);
  const auto until = SteadyClock::now() + milliseconds(5000);
  while (SteadyClock::now() < until &&
         Metric("idsync_config_reloads_total", {{"result", "failed"}}) != 1) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_EQ(Metric("idsync_config_reloads_total", {{"result", "failed"}}), 1);
  EXPECT_NE(Log().find("config.refused"), std::string::npos) << Log();
  ASSERT_EQ(Http(admin_port_, "POST", "/v1/sync", kAdminToken, "{}", "application/json").status,
            202);
  ASSERT_TRUE(WaitForRuns("full", 2, milliseconds(15000))) << Log();
  EXPECT_EQ(AccountUsers()["bruno@corp.example"]["role"], "member");

  // With the test brought in line, the same rules are taken.
  std::string fixed = ReadFile(config_);
  fixed.replace(fixed.find("expect: {role: member,"), 22, "expect: {role: admin,");
  std::ofstream(config_) << fixed;
  ASSERT_EQ(::kill(pid_, SIGHUP), 0);
  const auto again = SteadyClock::now() + milliseconds(5000);
  while (SteadyClock::now() < again &&
         Metric("idsync_config_reloads_total", {{"result", "ok"}}) != 1) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_EQ(Metric("idsync_config_reloads_total", {{"result", "ok"}}), 1) << Log();
  ASSERT_TRUE(WaitForRuns("full", 3, milliseconds(15000))) << Log();
  EXPECT_EQ(AccountUsers()["bruno@corp.example"]["role"], "admin");
  EXPECT_EQ(StopDaemon(), 0);
}

TEST_F(DaemonTest, TheConsoleSignsInShowsWhatTheCliShowsAndSignsOut) {
  WriteConfig();
  StartDaemon();
  ASSERT_TRUE(WaitForRuns("full", 1, milliseconds(15000))) << Log();
  const int port = admin_port_;
  using Headers = std::vector<std::pair<std::string, std::string>>;

  // The page and its assets, under a policy that allows no inline script.
  const HttpAnswer page = HttpWithHeaders(port, "GET", "/ui/", {});
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  const std::string policy = page.Header("Content-Security-Policy");
  EXPECT_NE(policy.find("script-src 'self'"), std::string::npos) << policy;
  EXPECT_NE(policy.find("frame-ancestors 'none'"), std::string::npos) << policy;
  EXPECT_EQ(policy.find("unsafe-inline"), std::string::npos) << policy;
  EXPECT_EQ(page.Header("X-Frame-Options"), "DENY");
  EXPECT_EQ(page.body.find("<script>"), std::string::npos);
  EXPECT_EQ(HttpWithHeaders(port, "GET", "/ui/app.js", {}).status, 200);
  EXPECT_EQ(HttpWithHeaders(port, "GET", "/ui/app.css", {}).status, 200);
  EXPECT_EQ(HttpWithHeaders(port, "GET", "/ui/nope.js", {}).status, 404);

  // Nothing without a session; a wrong token is refused and logged.
  EXPECT_EQ(HttpWithHeaders(port, "GET", "/ui/api/overview", {}).status, 401);
  const HttpAnswer wrong =
      HttpWithHeaders(port, "POST", "/ui/api/session", {}, R"({"token": "not-it"})");
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(wrong.Header("Set-Cookie"), "");
  EXPECT_NE(Log().find("console.signin_failed"), std::string::npos);
  EXPECT_EQ(Log().find("not-it"), std::string::npos);

  // Signed in: an HttpOnly, SameSite=Strict cookie and a CSRF token.
  const HttpAnswer signed_in =
      HttpWithHeaders(port, "POST", "/ui/api/session", {}, json({{"token", kAdminToken}}).dump());
  ASSERT_EQ(signed_in.status, 200) << signed_in.body;
  const std::string set_cookie = signed_in.Header("Set-Cookie");
  EXPECT_NE(set_cookie.find("HttpOnly"), std::string::npos) << set_cookie;
  EXPECT_NE(set_cookie.find("SameSite=Strict"), std::string::npos) << set_cookie;
  EXPECT_NE(set_cookie.find("Path=/ui/"), std::string::npos) << set_cookie;
  EXPECT_NE(set_cookie.find("Max-Age=28800"), std::string::npos) << set_cookie;
  EXPECT_EQ(set_cookie.find("Secure"), std::string::npos) << "no TLS here: " << set_cookie;
  const std::string cookie = set_cookie.substr(0, set_cookie.find(';'));
  const std::string csrf = signed_in.Json()["csrf"];
  ASSERT_EQ(csrf.size(), 64u);
  const Headers session = {{"Cookie", cookie}};
  const Headers change = {{"Cookie", cookie}, {"X-CSRF-Token", csrf}};

  // The overview names every source; people search, a person and the audit
  // log say what the CLI says.
  const HttpAnswer overview = HttpWithHeaders(port, "GET", "/ui/api/overview", session);
  ASSERT_EQ(overview.status, 200) << overview.body;
  std::set<std::string> sources;
  const json shown = overview.Json();
  for (const json& s : shown["sources"]) sources.insert(s["name"]);
  EXPECT_EQ(sources, (std::set<std::string>{"hr", "okta"}));
  const json found = HttpWithHeaders(port, "GET", "/ui/api/people?q=BRUNO", session).Json();
  ASSERT_EQ(found["total"], 1) << found.dump();
  EXPECT_EQ(found["people"][0]["email"], "bruno@corp.example");
  EXPECT_EQ(found["people"][0]["role"], "member");
  const json everyone = HttpWithHeaders(port, "GET", "/ui/api/people?limit=5", session).Json();
  EXPECT_EQ(everyone["people"].size(), 5u);
  EXPECT_GT(everyone["total"].get<int>(), 5);
  const json bruno =
      HttpWithHeaders(port, "GET", "/ui/api/people/bruno@corp.example", session).Json();
  const CliRun explained = Cli({"explain", "bruno@corp.example", "--json"});
  ASSERT_EQ(explained.status, 0) << explained.err;
  const json cli = json::parse(explained.out);
  EXPECT_EQ(bruno["permissions"], cli["permissions"]);
  EXPECT_EQ(bruno["why"], cli["why"]);
  const json audit =
      HttpWithHeaders(port, "GET", "/ui/api/audit?email=bruno@corp.example", session).Json();
  ASSERT_GE(audit["total"].get<int>(), 1) << audit.dump();
  EXPECT_EQ(audit["entries"][0]["action"], "invite");
  EXPECT_EQ(audit["entries"][0]["rules"], json::array({"qa"}));
  EXPECT_EQ(audit["chain"]["ok"], true);
  const HttpAnswer report = HttpWithHeaders(port, "GET", "/ui/api/report.html", session);
  ASSERT_EQ(report.status, 200);
  EXPECT_NE(report.Header("Content-Disposition").find("attachment"), std::string::npos);
  EXPECT_NE(report.body.find("bruno@corp.example"), std::string::npos);

  // Sync now: only with the session's CSRF token, and from this origin.
  EXPECT_EQ(HttpWithHeaders(port, "POST", "/ui/api/sync", session).status, 403);
  Headers elsewhere = change;
  elsewhere.emplace_back("Origin", "https://evil.example");
  EXPECT_EQ(HttpWithHeaders(port, "POST", "/ui/api/sync", elsewhere).status, 403);
  EXPECT_EQ(HttpWithHeaders(port, "POST", "/ui/api/sync", change).status, 202);
  ASSERT_TRUE(WaitForRuns("full", 2, milliseconds(15000))) << Log();

  // Signing out ends the session.
  EXPECT_EQ(HttpWithHeaders(port, "DELETE", "/ui/api/session", change).status, 204);
  EXPECT_EQ(HttpWithHeaders(port, "GET", "/ui/api/overview", session).status, 401);

  // Failed sign-ins from one address are cut off after a few.
  for (int i = 1; i < daemon::Console::kSignInFailuresPerMinute; ++i) {
    EXPECT_EQ(HttpWithHeaders(port, "POST", "/ui/api/session", {}, R"({"token": "guess"})").status,
              401);
  }
  const HttpAnswer refused =
      HttpWithHeaders(port, "POST", "/ui/api/session", {}, json({{"token", kAdminToken}}).dump());
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(refused.Header("Retry-After"), "60");
  EXPECT_NE(Log().find("console.signin_refused"), std::string::npos);
  EXPECT_EQ(StopDaemon(), 0);
}

TEST_F(DaemonTest, NotifiesReadyStatusWatchdogAndStopping) {
  WriteConfig();
  StartDaemon();
  // WATCHDOG_USEC=200ms: a ping about every 100 ms.
  const auto started = SteadyClock::now();
  int pings = 0;
  bool status_seen = false;
  while (SteadyClock::now() - started < milliseconds(1000)) {
    std::string m = notify_->Next(milliseconds(300));
    if (m.find("WATCHDOG=1") != std::string::npos) ++pings;
    status_seen = status_seen || m.find("STATUS=last full run ok") != std::string::npos;
  }
  EXPECT_GE(pings, 5) << "watchdog pings in one second";
  ASSERT_TRUE(WaitForRuns("full", 1, milliseconds(10000)));
  if (!status_seen) {
    status_seen = !notify_->WaitFor("STATUS=last full run ok", milliseconds(3000)).empty();
  }
  EXPECT_TRUE(status_seen) << "no STATUS= after the first run";
  EXPECT_EQ(StopDaemon(SIGTERM), 0);
  bool stopping = false;
  for (std::string m = notify_->Next(milliseconds(500)); !m.empty();
       m = notify_->Next(milliseconds(200))) {
    stopping = stopping || m.find("STOPPING=1") != std::string::npos;
  }
  EXPECT_TRUE(stopping);
}

TEST_F(DaemonTest, FirstRunAppliesTheDirectoryAndApplyByHandIsRefused) {
  WriteConfig();
  StartDaemon();
  ASSERT_TRUE(WaitForRuns("full", 1, milliseconds(10000)));
  auto users = AccountUsers();
  EXPECT_TRUE(users.count("eve@corp.example"));
  EXPECT_TRUE(users.count("bruno@corp.example"));
  EXPECT_FALSE(users.count("kim@corp.example"));  // no rule gives kim anything
  // The daemon holds the run lock; the CLI says where to go instead.
  std::ostringstream out, err;
  int status = daemon::RunCli({"--config", config_, "apply"}, out, err);
  EXPECT_EQ(status, daemon::kExitFailed);
  EXPECT_NE(err.str().find("idsyncd"), std::string::npos) << err.str();
  EXPECT_NE(err.str().find("/v1/sync"), std::string::npos) << err.str();
  EXPECT_EQ(StopDaemon(), 0);
}

TEST_F(DaemonTest, ScimChangeReachesTheAccountWithinOneSecond) {
  WriteConfig();
  StartDaemon();
  ASSERT_TRUE(WaitForRuns("full", 1, milliseconds(10000)));
  const std::string sam = ScimCreateUser("sam@corp.example", "Okta Person");
  ASSERT_FALSE(sam.empty());
  std::uint64_t seen = LastSeq();
  // A group that gives sam access: an invite.
  auto asked = SteadyClock::now();
  const std::string voice = ScimCreateGroup("Okta Voice", {sam});
  auto answered = SteadyClock::now();
  ASSERT_FALSE(voice.empty());
  std::uint64_t invite = WaitForWrite(seen, "POST /users", milliseconds(3000));
  ASSERT_NE(invite, 0u) << "sam was never invited";
  EXPECT_LT(SteadyClock::now() - answered, milliseconds(1000));
  (void)asked;
  ASSERT_TRUE(AccountUsers().count("sam@corp.example"));
  // The CLI reads the SCIM source from the store; the admin API from memory.
  std::ostringstream out, err;
  EXPECT_EQ(
      daemon::RunCli({"--config", config_, "explain", "sam@corp.example", "--json"}, out, err),
      daemon::kExitOk)
      << err.str();
  EXPECT_NE(out.str().find("okta-voice"), std::string::npos) << out.str();
  json explained = AdminJson("/v1/explain/sam@corp.example");
  EXPECT_EQ(explained["rules"], json({"okta-voice"})) << explained.dump();

  const std::string knowledge = ScimCreateGroup("Okta Knowledge", {});
  ASSERT_FALSE(knowledge.empty());
  // p99 over PATCHes that each change sam's permissions: from the PATCH's
  // answer to the account emulator's applied write.
  std::vector<double> latencies_ms;
  for (int i = 0; i < 200; ++i) {
    seen = LastSeq();
    HttpAnswer patched = ScimMembership(knowledge, sam, i % 2 == 0);
    ASSERT_TRUE(patched.status == 200 || patched.status == 204) << patched.body;
    const auto t0 = SteadyClock::now();
    std::uint64_t write = WaitForWrite(seen, "PATCH /users/{id}", milliseconds(3000));
    ASSERT_NE(write, 0u) << "PATCH " << i << " never reached the account";
    latencies_ms.push_back(
        std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count());
  }
  std::sort(latencies_ms.begin(), latencies_ms.end());
  const double p50 = latencies_ms[latencies_ms.size() / 2];
  const double p99 = latencies_ms[static_cast<std::size_t>(latencies_ms.size() * 0.99)];
  std::cout << "SCIM PATCH -> account write over " << latencies_ms.size() << " changes: p50 " << p50
            << " ms, p99 " << p99 << " ms, max " << latencies_ms.back() << " ms\n";
  RecordProperty("scim_to_account_p99_ms", std::to_string(p99));
  EXPECT_LT(p99, 1000.0);

  // Taking sam out of the only group that gives access removes sam.
  seen = LastSeq();
  HttpAnswer removed = ScimMembership(voice, sam, false);
  ASSERT_TRUE(removed.status == 200 || removed.status == 204) << removed.body;
  EXPECT_NE(WaitForWrite(seen, "DELETE /users/{id}", milliseconds(3000)), 0u);
  EXPECT_FALSE(AccountUsers().count("sam@corp.example"));
  EXPECT_EQ(StopDaemon(), 0);
  ExpectEveryWriteOnce();
}

// SCIM writes that share commits: 8 clients POST users at once, and the
// daemon is SIGKILLed right after the 200th 201. After a restart, every user
// answered 201 is there (the service loads them from the store). Three
// rounds, each killing at another moment.
TEST_F(DaemonTest, EveryScimWriteAnswered201SurvivesASigkill) {
  WriteConfig();
  StartDaemon();
  ASSERT_TRUE(WaitForRuns("full", 1, milliseconds(10000)));
  std::vector<std::string> created;
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::mutex mu;
    std::condition_variable cv;
    std::size_t answered = 0;  // guarded by mu, as is created
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    const int port = scim_port_;
    for (int c = 0; c < 8; ++c) {
      clients.emplace_back([&, c] {
        for (int i = 0; !stop.load(); ++i) {
          const std::string email = "k" + std::to_string(round) + "-" + std::to_string(c) + "-" +
                                    std::to_string(i) + "@corp.example";
          const json body = {{"schemas", {"urn:ietf:params:scim:schemas:core:2.0:User"}},
                             {"userName", email},
                             {"active", true},
                             {"emails", {{{"value", email}, {"primary", true}}}}};
          const HttpAnswer a = Http(port, "POST", "/scim/v2/Users", scim_token_, body.dump());
          if (a.status != 201) break;  // the daemon is gone
          std::lock_guard lock(mu);
          created.push_back(a.Json().value("id", ""));
          ++answered;
          cv.notify_all();
        }
      });
    }
    {
      std::unique_lock lock(mu);
      ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return answered >= 200; }))
          << answered << " users created in 30 s";
    }
    EXPECT_EQ(StopDaemon(SIGKILL), 128 + SIGKILL);
    stop.store(true);
    for (std::thread& t : clients) t.join();

    StartDaemon();
    std::size_t missing = 0;
    for (const std::string& id : created) {
      const HttpAnswer a = Http(scim_port_, "GET", "/scim/v2/Users/" + id, scim_token_);
      if (a.status != 200) ++missing;
      EXPECT_EQ(a.status, 200) << "user " << id << " was answered 201 and is gone: " << a.body;
    }
    std::cout << created.size() << " users answered 201 before " << round + 1 << " kill(s), "
              << missing << " missing after the restart\n";
  }
  EXPECT_EQ(StopDaemon(), 0);
}

// server.max_patch_values and server.max_response reach the SCIM service,
// at start and on reload.
TEST_F(DaemonTest, ScimRequestLimitsComeFromTheServerSection) {
  server_extra_ = "  max_patch_values: 3\n  max_response: 2KiB\n";
  WriteConfig();
  StartDaemon();
  std::vector<std::string> users;
  for (int i = 0; i < 8; ++i) {
    users.push_back(ScimCreateUser("limit" + std::to_string(i) + "@corp.example",
                                   "Limit " + std::string(200, 'x')));
    ASSERT_FALSE(users.back().empty());
  }
  const std::string group = ScimCreateGroup("Limited", {});
  ASSERT_FALSE(group.empty());
  auto add_members = [&](int n) {
    json value = json::array();
    for (int i = 0; i < n; ++i) value.push_back({{"value", users[i]}});
    const json body = {{"schemas", {"urn:ietf:params:scim:api:messages:2.0:PatchOp"}},
                       {"Operations", {{{"op", "add"}, {"path", "members"}, {"value", value}}}}};
    return Http(scim_port_, "PATCH", "/scim/v2/Groups/" + group, kScimToken, body.dump());
  };
  HttpAnswer refused = add_members(4);
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_EQ(refused.Json().value("scimType", ""), "invalidValue") << refused.body;
  EXPECT_NE(refused.body.find("server.max_patch_values"), std::string::npos) << refused.body;
  EXPECT_EQ(add_members(3).status, 204);

  HttpAnswer list = Http(scim_port_, "GET", "/scim/v2/Users", kScimToken);
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_LE(list.body.size(), 2048u);
  const json page = list.Json();
  EXPECT_GE(page["totalResults"].get<int>(), 8);
  EXPECT_LT(page["itemsPerPage"].get<int>(), page["totalResults"].get<int>());
  EXPECT_EQ(page["itemsPerPage"].get<std::size_t>(), page["Resources"].size());

  // A reload with other limits takes effect; the resources carry over.
  server_extra_ = "  max_patch_values: 10\n";
  WriteConfig();
  ASSERT_EQ(::kill(pid_, SIGHUP), 0);
  ASSERT_NE(notify_->WaitFor("RELOADING=1", milliseconds(5000)), "");
  ASSERT_TRUE(
      testing::WaitUntil([&] { return add_members(8).status == 204; }, milliseconds(10000)));
  const json grown = Http(scim_port_, "GET", "/scim/v2/Groups/" + group, kScimToken).Json();
  EXPECT_EQ(grown["members"].size(), 8u) << grown.dump();
  const json all = Http(scim_port_, "GET", "/scim/v2/Users", kScimToken).Json();
  EXPECT_EQ(all["itemsPerPage"], all["totalResults"]);
  EXPECT_EQ(StopDaemon(), 0);
}

// Every admin endpoint of the real daemon, without a token, with a wrong one
// and with the right one; /metrics as a Prometheus scraper reads it.
TEST_F(DaemonTest, AdminEndpointsAndMetricsOfTheRealDaemon) {
  WriteConfig();
  StartDaemon();
  ASSERT_TRUE(WaitForRuns("full", 1, milliseconds(10000)));
  // Open to anyone who can reach the loopback listener.
  EXPECT_EQ(Http(admin_port_, "GET", "/healthz", "").status, 200);
  EXPECT_EQ(Http(admin_port_, "GET", "/readyz", "").status, 200);
  EXPECT_EQ(Http(scim_port_, "GET", "/healthz", "").status, 200);
  // A SCIM request, so that the SCIM metrics have a sample.
  ASSERT_FALSE(ScimCreateUser("metrics@corp.example", "Okta Person").empty());

  struct Call {
    const char* method;
    std::string path;
    int ok_status;
  };
  const std::vector<Call> calls = {
      {"GET", "/v1/status", 200},
      {"GET", "/v1/plan", 200},
      {"GET", "/v1/explain/eve@corp.example", 200},
      {"POST", "/v1/sync", 202},
  };
  for (const Call& call : calls) {
    SCOPED_TRACE(std::string(call.method) + " " + call.path);
    EXPECT_EQ(Http(admin_port_, call.method, call.path, "", "{}", "application/json").status, 401);
    EXPECT_EQ(
        Http(admin_port_, call.method, call.path, "not-the-token", "{}", "application/json").status,
        401);
    HttpAnswer good =
        Http(admin_port_, call.method, call.path, kAdminToken, "{}", "application/json");
    EXPECT_EQ(good.status, call.ok_status) << good.body;
    if (call.ok_status == 200) {
      EXPECT_FALSE(json::parse(good.body, nullptr, false).is_discarded()) << good.body;
    }
  }
  // The plan against an account the first run brought in step: nothing to do.
  json plan = AdminJson("/v1/plan");
  EXPECT_EQ(plan["blocked"], false) << plan.dump();
  EXPECT_TRUE(plan["operations"].empty()) << plan.dump();
  json explained = AdminJson("/v1/explain/eve@corp.example");
  EXPECT_EQ(explained["email"], "eve@corp.example") << explained.dump();
  EXPECT_EQ(Http(admin_port_, "GET", "/v1/explain/nobody@corp.example", kAdminToken).status, 404);
  EXPECT_EQ(Http(admin_port_, "GET", "/v1/nothing-here", kAdminToken).status, 404);
  EXPECT_EQ(Http(admin_port_, "DELETE", "/v1/status", kAdminToken).status, 405);

  HttpAnswer metrics = Http(admin_port_, "GET", "/metrics", "");
  ASSERT_EQ(metrics.status, 200);
  json parsed = daemon::testing::ParsePrometheusText(metrics.body);
  ASSERT_EQ(parsed["ok"], true) << parsed.dump() << "\n" << metrics.body;
  EXPECT_GE(daemon::testing::SampleValue(parsed, "idsync_runs_total", {{"result", "ok"}}), 1.0)
      << metrics.body;
  for (const char* family :
       {"idsync_run_duration_seconds", "idsync_operations", "idsync_outbox_depth",
        "idsync_source_last_success_timestamp_seconds", "idsync_scim_requests",
        "idsync_scim_request_duration_seconds", "idsync_account_requests"}) {
    EXPECT_TRUE(parsed["families"].contains(family)) << family << " missing:\n" << metrics.body;
  }
  // No secret on the page.
  EXPECT_EQ(metrics.body.find(kAdminToken), std::string::npos);
  EXPECT_EQ(StopDaemon(), 0);
}

// The alerting rules the docs ship (docs/idsync-alerts.yml), evaluated by
// promtool against this daemon's /metrics before and after the events they
// are about: each fires on the first such event after the start, and the
// others stay quiet.
TEST_F(DaemonTest, DocumentedAlertsSeeTheFirstEvents) {
  WriteConfig();
  StartDaemon();
  ASSERT_TRUE(WaitForRuns("full", 1, milliseconds(10000)));
  auto scrape = [&](const std::string& name) {
    const HttpAnswer a = Http(admin_port_, "GET", "/metrics", "");
    EXPECT_EQ(a.status, 200);
    std::ofstream(dir_ / name) << a.body;
    return a.body;
  };
  scrape("before.prom");

  // Six SCIM requests with a wrong token.
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(Http(scim_port_, "GET", "/scim/v2/Users", "not-the-token").status, 401);
  }
  // A PATCH refused.
  const std::string id = ScimCreateUser("pat@corp.example", "Okta Person");
  json bad = {{"schemas", {"urn:ietf:params:scim:api:messages:2.0:PatchOp"}},
              {"Operations", {{{"op", "copy"}, {"path", "title"}}}}};
  EXPECT_EQ(Http(scim_port_, "PATCH", "/scim/v2/Users/" + id, kScimToken, bad.dump()).status, 400);
  // The directory export emptied: removing everyone is over max_removals.
  std::string ldif = ReadFile(std::string(IDSYNC_SOURCE_DIR) + "/examples/directory.ldif");
  std::ofstream(dir_ / "directory.ldif")
      << ldif.substr(0, ldif.find("\ndn: ", ldif.find("dn: ou=groups")) + 1);
  ASSERT_EQ(Http(admin_port_, "POST", "/v1/sync", kAdminToken, "{}", "application/json").status,
            202);
  ASSERT_TRUE(WaitForRuns("full", 2, milliseconds(10000)));
  // A reload refused.
  std::ofstream(config_) << "account: [this is not\n";
  ASSERT_EQ(::kill(pid_, SIGHUP), 0);
  const auto until = SteadyClock::now() + milliseconds(5000);
  while (SteadyClock::now() < until &&
         scrape("after.prom").find("idsync_config_reloads_total{result=\"failed\"} 1") ==
             std::string::npos) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_NE(scrape("after.prom").find("idsync_config_reloads_total{result=\"failed\"} 1"),
            std::string::npos);

  const json expect = {
      {"IdsyncDown", json::array()},
      {"IdsyncSourceFailing", json::array()},
      {"IdsyncRunsNotOk", json::array()},
      {"IdsyncNoSuccessfulRun", json::array()},
      {"IdsyncPlanBlocked",
       {{{"limit", "max_removals"}, {"job", "idsync"}, {"instance", "idsyncd"}}}},
      {"IdsyncOutboxStuck", json::array()},
      {"IdsyncOperationsFailing", json::array()},
      {"IdsyncAccountErrors", json::array()},
      {"IdsyncScimAuthFailures", {{{"instance", "idsyncd"}}}},
      {"IdsyncScimPatchRefused",
       {{{"source", "okta"},
         {"scim_type", "invalidSyntax"},
         {"job", "idsync"},
         {"instance", "idsyncd"}}}},
      {"IdsyncReloadRefused", {{{"result", "failed"}, {"job", "idsync"}, {"instance", "idsyncd"}}}},
  };
  std::ofstream(dir_ / "expect.json") << expect.dump();
  const std::string cmd = std::string(IDSYNC_PYTHON3) + " " + IDSYNC_SOURCE_DIR +
                          "/tests/e2e/alerts_check.py " + IDSYNC_SOURCE_DIR +
                          "/docs/idsync-alerts.yml " + (dir_ / "before.prom").string() + " " +
                          (dir_ / "after.prom").string() + " " + (dir_ / "expect.json").string() +
                          " >" + (dir_ / "promtool.out").string() + " 2>&1";
  const int status = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ReadFile(dir_ / "promtool.out");
}

TEST_F(DaemonTest, SighupSwapsAGoodConfigAndRefusesABrokenOne) {
  WriteConfig();
  StartDaemon();
  ASSERT_TRUE(WaitForRuns("full", 1, milliseconds(10000)));
  ASSERT_FALSE(AccountUsers().count("kim@corp.example"));

  // A good change: everyone gets analytics read. The reload starts a full run.
  WriteConfig("  - {name: everyone, match: {group: Everyone}, permissions: {analytics: read}}\n");
  ASSERT_EQ(::kill(pid_, SIGHUP), 0);
  ASSERT_NE(notify_->WaitFor("RELOADING=1", milliseconds(5000)), "");
  ASSERT_TRUE(WaitForRuns("full", 2, milliseconds(10000)));
  EXPECT_TRUE(AccountUsers().count("kim@corp.example")) << "the new rule did not take effect";

  // A broken one: refused, the old configuration keeps serving.
  std::ofstream(config_) << "account: [this is not\n";
  ASSERT_EQ(::kill(pid_, SIGHUP), 0);
  EXPECT_TRUE(testing::WaitUntil([&] { return Log().find("config.refused") != std::string::npos; },
                                 milliseconds(10000)))
      << Log();
  EXPECT_TRUE(Alive());
  HttpAnswer users = Http(scim_port_, "GET", "/scim/v2/Users", kScimToken);
  EXPECT_EQ(users.status, 200) << users.body;
  EXPECT_EQ(Http(admin_port_, "GET", "/readyz", "").status, 200);
  // And it still syncs with the old rules.
  ASSERT_EQ(Http(admin_port_, "POST", "/v1/sync", kAdminToken, "{}", "application/json").status,
            202);
  ASSERT_TRUE(WaitForRuns("full", 3, milliseconds(10000)));
  EXPECT_TRUE(AccountUsers().count("kim@corp.example"));
  EXPECT_EQ(StopDaemon(), 0);
}

TEST_F(DaemonTest, SigtermMidApplyLosesNothing) {
  // One write at a time, each 400 ms slow: the first run takes seconds.
  emulator::Faults slow;
  slow.latency = {milliseconds(400), milliseconds(400)};
  emulator_->SetFaults(slow);
  WriteConfig("", /*concurrency=*/1);
  StartDaemon();
  // Wait for the first writes to land, then stop in the middle.
  const auto until = SteadyClock::now() + milliseconds(20000);
  int applied = 0;
  while (SteadyClock::now() < until && applied < 2) {
    applied = 0;
    for (const auto& r : emulator_->Requests()) applied += r.method != "GET" && r.applied;
    std::this_thread::sleep_for(milliseconds(20));
  }
  ASSERT_GE(applied, 2);
  EXPECT_EQ(StopDaemon(SIGTERM), 0);
  const std::size_t invited_before_restart = AccountUsers().size();
  // Ten people to invite plus the owner: the stop parked part of the run.
  EXPECT_LT(invited_before_restart, 11u) << "the run was not interrupted";

  emulator_->SetFaults({});
  StartDaemon();
  ASSERT_TRUE(WaitForRuns("full", 2, milliseconds(20000)));
  EXPECT_EQ(AccountUsers().size(), 11u) << "the rest was never applied";
  // Nothing left to do: the account is what the directory says.
  std::ostringstream out, err;
  EXPECT_EQ(StopDaemon(), 0);
  int status = daemon::RunCli({"--config", config_, "plan", "--json"}, out, err);
  EXPECT_EQ(status, daemon::kExitOk) << err.str();
  json plan = json::parse(out.str(), nullptr, false);
  ASSERT_TRUE(plan.is_object()) << out.str();
  EXPECT_TRUE(plan["operations"].empty()) << plan.dump(2);
  ExpectEveryWriteOnce();
}

// A write stuck in its retries (the account answers every write 503) does
// not hold SIGTERM up to the forced exit: the wait before the next try ends
// at once, the write stays sent, and the next start finishes the run.
TEST_F(DaemonTest, SigtermDuringRetriesStopsPromptly) {
  emulator::Faults down;
  down.error_rate = {{"POST *", 1.0}};
  down.error_statuses = {503};
  emulator_->SetFaults(down);
  WriteConfig("", /*concurrency=*/1);
  StartDaemon();
  // Wait until the first invite has been refused a few times (retrying).
  const auto until = SteadyClock::now() + milliseconds(20000);
  int refused = 0;
  while (SteadyClock::now() < until && refused < 3) {
    refused = 0;
    for (const auto& r : emulator_->Requests()) refused += r.method == "POST" && r.status == 503;
    std::this_thread::sleep_for(milliseconds(20));
  }
  ASSERT_GE(refused, 3);
  const auto stopping = SteadyClock::now();
  EXPECT_EQ(StopDaemon(SIGTERM), 0);
  // The forced exit would come after 20 s; the retry_for is a minute.
  EXPECT_LT(SteadyClock::now() - stopping, milliseconds(8000));
  EXPECT_EQ(AccountUsers().size(), 1u);  // the owner only

  emulator_->SetFaults({});
  StartDaemon();
  ASSERT_TRUE(WaitForRuns("full", 2, milliseconds(20000)));
  EXPECT_EQ(AccountUsers().size(), 11u) << "the run was not finished after the restart";
  EXPECT_EQ(StopDaemon(), 0);
  ExpectEveryWriteOnce();
}

// A plan a safety limit refuses: nothing is sent, and the refusal shows in
// /v1/status, `idsync status`, the metrics and the log, run after run, until
// an operator applies it with `idsync apply --force` (idsyncd stopped).
TEST_F(DaemonTest, ABlockedPlanIsShownUntilAppliedWithForce) {
  // The first run would invite 10 people: over max_changes 3.
  WriteConfig("", 4, "1h", "max_removals: 5\n  max_changes: 3");
  StartDaemon();
  ASSERT_TRUE(WaitForRuns("full", 1, milliseconds(10000)));
  EXPECT_EQ(AccountUsers().size(), 1u) << "a blocked plan sent something";
  for (const auto& r : emulator_->Requests()) EXPECT_EQ(r.method, "GET") << r.path;

  auto expect_blocked_in = [](const json& status, const std::string& where) {
    ASSERT_TRUE(status.contains("runs")) << where << ": " << status.dump(2);
    ASSERT_FALSE(status["runs"].empty()) << where;
    const json& last = status["runs"][0];
    EXPECT_EQ(last["result"], "blocked") << where << ": " << last.dump();
    EXPECT_EQ(last["summary"]["blocked"], true) << where << ": " << last.dump();
    EXPECT_EQ(last["summary"]["invite"], 10) << where << ": " << last.dump();
    EXPECT_EQ(last["summary"]["applied"], 0) << where << ": " << last.dump();
    ASSERT_EQ(last["summary"]["reasons"].size(), 1u) << where << ": " << last.dump();
    EXPECT_NE(last["summary"]["reasons"][0].get<std::string>().find("max_changes 3"),
              std::string::npos)
        << where << ": " << last.dump();
  };
  expect_blocked_in(AdminJson("/v1/status"), "/v1/status");
  EXPECT_EQ(Metric("idsync_runs_total", {{"result", "blocked"}}), 1.0);
  EXPECT_EQ(Metric("idsync_safety_limit_trips_total", {{"limit", "max_changes"}}), 1.0);
  EXPECT_EQ(Metric("idsync_safety_limit_trips_total", {{"limit", "max_removals"}}), 0.0);
  EXPECT_EQ(Metric("idsync_runs_total", {{"result", "ok"}}), 0.0);
  EXPECT_NE(Log().find("run.blocked"), std::string::npos) << Log();
  const json plan = AdminJson("/v1/plan");
  EXPECT_EQ(plan["blocked"], true) << plan.dump();
  EXPECT_EQ(plan["operations"].size(), 10u) << plan.dump();

  // Another run changes nothing: still refused, counted again.
  ASSERT_EQ(Admin("POST", "/v1/sync", "{}").status, 202);
  ASSERT_TRUE(WaitForRuns("full", 2, milliseconds(10000)));
  expect_blocked_in(AdminJson("/v1/status"), "/v1/status, second run");
  EXPECT_EQ(Metric("idsync_runs_total", {{"result", "blocked"}}), 2.0);
  EXPECT_EQ(Metric("idsync_safety_limit_trips_total", {{"limit", "max_changes"}}), 2.0);
  EXPECT_EQ(AccountUsers().size(), 1u);
  EXPECT_EQ(StopDaemon(), 0);

  // The operator's view: `idsync status` shows the refusal; `apply` is
  // refused the same way; `apply --force` passes it.
  CliRun status = Cli({"status"});
  ASSERT_EQ(status.status, daemon::kExitOk) << status.err;
  const std::string newest = status.out.substr(0, status.out.find('\n', status.out.find('#')));
  EXPECT_NE(newest.find("blocked"), std::string::npos) << status.out;
  CliRun status_json = Cli({"status", "--json"});
  ASSERT_EQ(status_json.status, daemon::kExitOk) << status_json.err;
  expect_blocked_in(json::parse(status_json.out), "idsync status --json");
  CliRun refused = Cli({"apply"});
  EXPECT_EQ(refused.status, daemon::kExitBlocked) << refused.out << refused.err;
  EXPECT_EQ(AccountUsers().size(), 1u);
  CliRun forced = Cli({"apply", "--force"});
  ASSERT_EQ(forced.status, daemon::kExitOk) << forced.out << forced.err;
  EXPECT_EQ(AccountUsers().size(), 11u);
  status_json = Cli({"status", "--json"});
  ASSERT_EQ(status_json.status, daemon::kExitOk) << status_json.err;
  EXPECT_EQ(json::parse(status_json.out)["runs"][0]["result"], "ok") << status_json.out;

  // Back under idsyncd: its run has nothing left to do and is not refused.
  StartDaemon();
  ASSERT_TRUE(WaitForRuns("full", 5, milliseconds(10000)));
  const json after = AdminJson("/v1/status");
  EXPECT_EQ(after["runs"][0]["result"], "ok") << after.dump(2);
  EXPECT_EQ(Metric("idsync_runs_total", {{"result", "blocked"}}), 0.0);
  EXPECT_EQ(Metric("idsync_runs_total", {{"result", "ok"}}), 1.0);
  EXPECT_EQ(AdminJson("/v1/plan")["blocked"], false);
  EXPECT_EQ(StopDaemon(), 0);
}

// idsyncd stays ready while what it reads from or writes to fails: /readyz
// is about idsync itself (configuration loaded, store writable); a failing
// source or account shows in /v1/status and the metrics, and SCIM is still
// served.
TEST_F(DaemonTest, ReadyWhileASourceOrTheAccountFails) {
  WriteConfig();
  StartDaemon();
  ASSERT_TRUE(WaitForRuns("full", 1, milliseconds(10000)));
  EXPECT_EQ(Http(admin_port_, "GET", "/readyz", "").status, 200);
  EXPECT_EQ(Metric("idsync_source_up", {{"source", "hr"}}), 1.0);

  fs::rename(dir_ / "directory.ldif", dir_ / "directory.ldif.away");
  ASSERT_EQ(Admin("POST", "/v1/sync", "{}").status, 202);
  ASSERT_TRUE(WaitForRuns("full", 2, milliseconds(10000)));
  HttpAnswer ready = Http(admin_port_, "GET", "/readyz", "");
  EXPECT_EQ(ready.status, 200) << ready.body;
  EXPECT_EQ(ready.Json().value("ready", false), true) << ready.body;
  EXPECT_EQ(Metric("idsync_source_up", {{"source", "hr"}}), 0.0);
  EXPECT_EQ(Metric("idsync_runs_total", {{"result", "source_failed"}}), 1.0);
  const json status = AdminJson("/v1/status");
  EXPECT_EQ(status["runs"][0]["result"], "source_failed") << status.dump(2);
  ASSERT_EQ(status["runs"][0]["summary"]["failed_sources"].size(), 1u) << status.dump(2);
  EXPECT_EQ(status["runs"][0]["summary"]["failed_sources"][0].get<std::string>().rfind("hr: ", 0),
            0u)
      << status.dump(2);
  EXPECT_EQ(Http(scim_port_, "GET", "/scim/v2/Users", kScimToken).status, 200);
  EXPECT_EQ(Http(scim_port_, "GET", "/healthz", "").status, 200);

  // The account refuses idsync's token as well (401: no retries): the run
  // fails; still ready.
  emulator_->SetTokens("a-rotated-token", "");
  ASSERT_EQ(Admin("POST", "/v1/sync", "{}").status, 202);
  ASSERT_TRUE(WaitForRuns("full", 3, milliseconds(10000)));
  ready = Http(admin_port_, "GET", "/readyz", "");
  EXPECT_EQ(ready.status, 200) << ready.body;
  EXPECT_EQ(AdminJson("/v1/status")["runs"][0]["result"], "failed");
  EXPECT_EQ(Metric("idsync_runs_total", {{"result", "failed"}}), 1.0);
  EXPECT_EQ(Http(scim_port_, "GET", "/scim/v2/Users", kScimToken).status, 200);

  // Both back: the next run is ok again.
  emulator_->SetTokens(kAccountToken, "");
  fs::rename(dir_ / "directory.ldif.away", dir_ / "directory.ldif");
  ASSERT_EQ(Admin("POST", "/v1/sync", "{}").status, 202);
  ASSERT_TRUE(WaitForRuns("full", 4, milliseconds(10000)));
  EXPECT_EQ(AdminJson("/v1/status")["runs"][0]["result"], "ok");
  EXPECT_EQ(Metric("idsync_source_up", {{"source", "hr"}}), 1.0);
  EXPECT_EQ(Http(admin_port_, "GET", "/readyz", "").status, 200);
  EXPECT_EQ(StopDaemon(), 0);
}

// No secret reaches what idsync writes or shows: the account token, an LDAP
// bind password, the SCIM and admin bearer tokens (and wrong guesses at
// them) appear nowhere in idsyncd's log, the admin API's answers, the
// metrics, `idsync` output (plan, status, audit, explain, validate) or the
// store's files (audit rows included), also after failures that log errors:
// a source that cannot be reached, the account refusing the token, a reload.
TEST_F(DaemonTest, NoSecretInTheLogApiCliOutputOrStore) {
  constexpr const char* kBindPassword = "e2e-Bind-Pw-5d1c9a";
  constexpr const char* kWrongScimToken = "e2e-scim-guess-4c2b71";
  constexpr const char* kWrongAdminToken = "e2e-admin-guess-8e1f03";
  // Read by the daemon (it inherits the environment) and the CLI alike.
  ::setenv("IDSYNC_E2E_BIND_PASSWORD", kBindPassword, 1);
  const std::string ldap_source =
      "  - name: ldap-dead\n"
      "    type: ldap\n"
      "    url: ldap://127.0.0.1:1\n"
      "    allow_insecure: true\n"
      "    connect_timeout: 2s\n"
      "    bind: {dn: \"cn=idsync,ou=services,dc=corp,dc=example\", "
      "password: \"${env:IDSYNC_E2E_BIND_PASSWORD}\"}\n"
      "    users: {base: \"ou=people,dc=corp,dc=example\"}\n";
  WriteConfig("", 4, "1h", "max_removals: 5\n  max_changes: none", ldap_source);
  StartDaemon();
  ASSERT_TRUE(WaitForRuns("full", 1, milliseconds(10000)));
  // Each secret was used: the account took its token, SCIM took its token,
  // the admin API its own, and the LDAP source was tried (and failed).
  EXPECT_EQ(AccountUsers().size(), 11u);
  ASSERT_FALSE(ScimCreateUser("secret-check@corp.example", "Okta Person").empty());
  EXPECT_EQ(Admin("GET", "/v1/status").status, 200);
  EXPECT_NE(Log().find("ldap-dead"), std::string::npos) << Log();
  // Wrong tokens are refused.
  EXPECT_EQ(Http(scim_port_, "GET", "/scim/v2/Users", kWrongScimToken).status, 401);
  EXPECT_EQ(Http(admin_port_, "GET", "/v1/status", kWrongAdminToken).status, 401);
  EXPECT_EQ(
      Http(admin_port_, "POST", "/v1/sync", kWrongAdminToken, "{}", "application/json").status,
      401);
  // The account refuses idsync's token for one run: its errors are logged.
  emulator_->SetTokens("e2e-rotated-token", "");
  ASSERT_EQ(Admin("POST", "/v1/sync", "{}").status, 202);
  ASSERT_TRUE(WaitForRuns("full", 2, milliseconds(10000)));
  EXPECT_NE(Log().find("run.failed"), std::string::npos) << Log();
  emulator_->SetTokens(kAccountToken, "");
  // A reload (the configuration is read and checked again).
  ASSERT_EQ(::kill(pid_, SIGHUP), 0);
  ASSERT_NE(notify_->WaitFor("RELOADING=1", milliseconds(5000)), "");
  ASSERT_TRUE(WaitForRuns("full", 3, milliseconds(10000)));

  std::map<std::string, std::string> shown;  // where -> what it showed
  for (const char* path : {"/v1/status", "/v1/plan", "/v1/explain/eve@corp.example"}) {
    const HttpAnswer a = Admin("GET", path);
    EXPECT_EQ(a.status, 200) << path << ": " << a.body;
    shown[std::string("GET ") + path] = a.body;
  }
  shown["GET /metrics"] = Http(admin_port_, "GET", "/metrics", "").body;
  shown["GET /readyz"] = Http(admin_port_, "GET", "/readyz", "").body;
  shown["SCIM GET /Users"] = Http(scim_port_, "GET", "/scim/v2/Users", kScimToken).body;
  EXPECT_EQ(StopDaemon(), 0);
  shown["idsyncd's log"] = ReadFile(dir_ / "idsyncd.log");
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"plan", "--json"},
                                             {"plan"},
                                             {"status"},
                                             {"status", "--json"},
                                             {"audit", "--json"},
                                             {"audit"},
                                             {"explain", "--all", "--json"},
                                             {"validate", "--online"},
                                             {"validate", "--online", "--json"}}) {
    const CliRun run = Cli(args);
    std::string name = "idsync";
    for (const auto& a : args) name += " " + a;
    EXPECT_NE(run.status, daemon::kExitUsage) << name << "\n" << run.err;
    shown[name] = run.out + "\n" + run.err;
  }
  const CliRun audit = Cli({"audit", "--json"});
  ASSERT_GE(json::parse(audit.out).size(), 10u) << "the audit rows checked hold the run's changes";
  int store_files = 0;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("state.db", 0) != 0) continue;
    ++store_files;
    shown["store file " + name] = ReadFile(entry.path());
  }
  EXPECT_GE(store_files, 1);
  // The failures above left their messages where they are shown.
  EXPECT_NE(shown["GET /v1/status"].find("ldap-dead"), std::string::npos);
  EXPECT_NE(shown["idsyncd's log"].find("source.failed"), std::string::npos);

  for (const auto& [where, text] : shown) {
    EXPECT_FALSE(text.empty()) << where << " showed nothing: nothing was checked";
    for (const char* secret : {kAccountToken, kScimToken, kAdminToken, kBindPassword,
                               kWrongScimToken, kWrongAdminToken}) {
      EXPECT_EQ(text.find(secret), std::string::npos) << "\"" << secret << "\" in " << where;
    }
  }
}

TEST_F(DaemonTest, AFailingSourceDeprovisionsNobody) {
  WriteConfig();
  StartDaemon();
  ASSERT_TRUE(WaitForRuns("full", 1, milliseconds(10000)));
  const auto before = AccountUsers();
  ASSERT_GT(before.size(), 5u);
  const std::uint64_t seen = LastSeq();

  // The export disappears (unreadable even to root): the next run must not
  // take it as "everyone left".
  fs::rename(dir_ / "directory.ldif", dir_ / "directory.ldif.away");
  ASSERT_EQ(Http(admin_port_, "POST", "/v1/sync", kAdminToken, "{}", "application/json").status,
            202);
  ASSERT_TRUE(WaitForRuns("full", 2, milliseconds(10000)));
  EXPECT_EQ(AccountUsers(), before);
  for (const auto& r : emulator_->Requests(seen)) {
    EXPECT_EQ(r.method, "GET") << "a write while the source failed: " << r.path;
  }
  json status = AdminJson("/v1/status");
  bool shown = false;
  for (const auto& s : status["sources"]) {
    if (s["name"] != "hr") continue;
    shown = true;
    EXPECT_EQ(s["state"], "failing") << s.dump();
    EXPECT_FALSE(s["last_error"].get<std::string>().empty());
    EXPECT_GT(s["users"].get<int>(), 5) << "the last good read stands in";
  }
  EXPECT_TRUE(shown) << status.dump(2);
  EXPECT_NE(ReadFile(dir_ / "idsyncd.log").find("source.failed"), std::string::npos);
  EXPECT_EQ(StopDaemon(), 0);

  // `idsync status` shows the same.
  std::ostringstream out, err;
  EXPECT_EQ(daemon::RunCli({"--config", config_, "status"}, out, err), daemon::kExitOk)
      << err.str();
  EXPECT_NE(out.str().find("failing"), std::string::npos) << out.str();
}

}  // namespace
}  // namespace idsync::e2e
