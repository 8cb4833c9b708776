// idsyncd following a real slapd end to end: the real binary with an `ldap`
// source (`watch: true`, syncrepl on a fixture-started slapd with syncprov)
// and a full-run interval of an hour, against the account emulator on
// loopback. Shows a membership change in LDAP reaching the account through a
// partial run within seconds and without a full run, its removal taking the
// access away, a stopped slapd failing the feed (shown in /v1/status) while
// nobody is deprovisioned, and a restarted idsyncd resuming the feed from the
// cookie it stored instead of refreshing in full.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "idsync/emulator/emulator.h"
#include "idsync/mapping/glob.h"
#include "idsync/scim/endpoint.h"

#include "slapd_fixture.h"

namespace idsync {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;
using testing::SlapdFixture;
using testing::SlapdOptions;

constexpr const char* kAccountToken = "e2e-watch-account-token";
constexpr const char* kAdminToken = "e2e-watch-admin-token";

constexpr const char* kSeed = R"({
  "projects": [{"id": "p_support", "name": "support-bot"}],
  "users": [
    {"id": "u_owner", "email": "owner@corp.example", "name": "Account Owner", "role": "admin",
     "status": "active", "permissions": {}, "projects": []}
  ]
})";

// Under the fixture's ou=people and ou=groups.
constexpr const char* kDirectory = R"(dn: uid=alice,ou=people,dc=corp,dc=example
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: A
mail: alice@corp.example

dn: uid=bob,ou=people,dc=corp,dc=example
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: B
mail: bob@corp.example

dn: uid=carol,ou=people,dc=corp,dc=example
objectClass: inetOrgPerson
uid: carol
cn: Carol
sn: C
mail: carol@corp.example

dn: cn=voice,ou=groups,dc=corp,dc=example
objectClass: groupOfNames
cn: voice
member: uid=alice,ou=people,dc=corp,dc=example

dn: cn=lobby,ou=groups,dc=corp,dc=example
objectClass: groupOfNames
cn: lobby
member: uid=carol,ou=people,dc=corp,dc=example
)";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::size_t Count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

struct HttpAnswer {
  int status = 0;
  std::string body;
};

HttpAnswer Http(int port, const std::string& method, const std::string& path,
                const std::string& body = "") {
  HttpAnswer answer;
  try {
    Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port));
    session.setTimeout(Poco::Timespan(10, 0));
    Poco::Net::HTTPRequest request(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
    request.set("Authorization", std::string("Bearer ") + kAdminToken);
    if (method == "POST") {
      request.setContentType("application/json");
      request.setContentLength(static_cast<std::streamsize>(body.size()));
    }
    std::ostream& out = session.sendRequest(request);
    out << body;
    Poco::Net::HTTPResponse response;
    std::istream& in = session.receiveResponse(response);
    std::ostringstream s;
    s << in.rdbuf();
    answer.status = static_cast<int>(response.getStatus());
    answer.body = s.str();
  } catch (const std::exception& e) {
    answer.status = -1;
    answer.body = e.what();
  }
  return answer;
}

class LdapWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!SlapdFixture::Available()) GTEST_SKIP() << "slapd is not installed";
    SlapdOptions options;
    options.syncprov = true;
    Result<std::unique_ptr<SlapdFixture>> slapd = SlapdFixture::Start(options);
    ASSERT_TRUE(slapd.ok()) << slapd.status().ToString();
    slapd_ = std::move(slapd).value();
    Status added = slapd_->Add(kDirectory);
    ASSERT_TRUE(added.ok()) << added.ToString();

    static int counter = 0;
    dir_ = fs::temp_directory_path() /
           ("idsync-e2e-watch-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ::setenv("IDSYNC_E2E_WATCH_ACCOUNT_TOKEN", kAccountToken, 1);
    emulator::EmulatorOptions emulator_options;
    emulator_options.token = kAccountToken;
    emulator_options.seed_json = kSeed;
    emulator_options.random_seed = 5;
    auto started = emulator::AccountEmulator::Start(emulator_options);
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    emulator_ = std::move(started).value();
    WriteConfig();
  }

  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    emulator_.reset();
    if (::testing::Test::HasFailure() && !dir_.empty()) {
      std::cerr << "idsyncd's log:\n" << ReadFile(dir_ / "idsyncd.log") << "\n";
    }
    slapd_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  void WriteConfig() {
    std::ostringstream y;
    y << "account:\n"
      << "  url: " << emulator_->base_url() << "\n"
      << "  token: ${env:IDSYNC_E2E_WATCH_ACCOUNT_TOKEN}\n"
      << "  max_requests_per_second: 1000\n"
      << "  timeout: 5s\n"
      << "  retry_for: 1m\n"
      << "store: sqlite://" << (dir_ / "state.db").string() << "\n"
      << "sources:\n"
      << "  - name: hr\n"
      << "    type: ldap\n"
      << "    url: " << slapd_->ldap_url() << "\n"
      << "    connect_timeout: 2s\n"
      << "    timeout: 5s\n"
      << "    users: {base: \"ou=people,dc=corp,dc=example\", filter: "
         "\"(objectClass=inetOrgPerson)\", email: mail, name: cn}\n"
      << "    groups: {base: \"ou=groups,dc=corp,dc=example\", filter: "
         "\"(objectClass=groupOfNames)\", name: cn, member: member}\n"
      << "    interval: 1h\n"
      << "    jitter: 0s\n"
      << "    watch: true\n"
      << "    watch_interval: 1s\n"
      << "server:\n"
      << "  admin_listen: [\"127.0.0.1:0\"]\n"
      << "  admin_tokens: [\"" << scim::HashToken(kAdminToken) << "\"]\n"
      << "permissions:\n  catalog: builtin\n"
      << "rules:\n"
      << "  - {name: voice, match: {group: \"voice\"}, presets: [voice-specialist], "
         "projects: [support-bot]}\n"
      << "deprovision: remove\nadopt_existing: false\n"
      << "protect: [owner@corp.example]\n"
      << "safety:\n  max_removals: 5\n  max_changes: none\n"
      << "logging: {format: text, level: debug}\n";
    config_ = (dir_ / "idsync.yaml").string();
    std::ofstream(config_) << y.str();
  }

  // Starts idsyncd and waits for its admin port (from the latest start's
  // line in the log, which restarts append to).
  void StartDaemon() {
    const std::string log = (dir_ / "idsyncd.log").string();
    log_offset_ = fs::exists(log) ? fs::file_size(log) : 0;
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      ::dup2(fd, STDERR_FILENO);
      ::dup2(fd, STDOUT_FILENO);
      ::unsetenv("NOTIFY_SOCKET");
      ::execl(IDSYNCD_BINARY, IDSYNCD_BINARY, "--config", config_.c_str(), nullptr);
      ::_exit(127);
    }
    const std::regex admin("admin:([0-9]+)");
    const auto until = SteadyClock::now() + milliseconds(15000);
    while (SteadyClock::now() < until) {
      const std::string text = Log();
      const std::size_t at = text.find("daemon.started");
      if (at != std::string::npos) {
        std::string line = text.substr(at, text.find('\n', at) - at);
        std::smatch m;
        ASSERT_TRUE(std::regex_search(line, m, admin)) << line;
        admin_port_ = std::stoi(m[1]);
        return;
      }
      ASSERT_EQ(::waitpid(pid_, nullptr, WNOHANG), 0) << "idsyncd exited:\n" << text;
      std::this_thread::sleep_for(milliseconds(20));
    }
    FAIL() << "idsyncd did not start:\n" << Log();
  }

  int StopDaemon() {
    ::kill(pid_, SIGTERM);
    const auto until = SteadyClock::now() + milliseconds(30000);
    int status = 0;
    while (SteadyClock::now() < until) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(milliseconds(10));
    }
    return -1;
  }

  // What the daemon started last logged.
  std::string Log() {
    std::string text = ReadFile(dir_ / "idsyncd.log");
    return log_offset_ < text.size() ? text.substr(log_offset_) : std::string();
  }

  bool WaitForLog(const std::string& needle, std::size_t times, milliseconds wait) {
    const auto until = SteadyClock::now() + wait;
    while (SteadyClock::now() < until) {
      if (Count(Log(), needle) >= times) return true;
      std::this_thread::sleep_for(milliseconds(20));
    }
    return false;
  }

  json AdminStatus() {
    HttpAnswer a = Http(admin_port_, "GET", "/v1/status");
    EXPECT_EQ(a.status, 200) << a.body;
    json j = json::parse(a.body, nullptr, false);
    return j.is_discarded() ? json() : j;
  }

  // Finished runs of `kind` ("apply" is a full run) that /v1/status lists.
  std::size_t Runs(const std::string& kind) {
    std::size_t done = 0;
    json j = AdminStatus();
    if (!j.is_object()) return 0;
    for (const auto& r : j["runs"]) {
      if (r["kind"] == kind && !r["result"].get<std::string>().empty()) ++done;
    }
    return done;
  }

  bool WaitForRuns(const std::string& kind, std::size_t n, milliseconds wait) {
    const auto until = SteadyClock::now() + wait;
    while (SteadyClock::now() < until) {
      if (Runs(kind) >= n) return true;
      std::this_thread::sleep_for(milliseconds(50));
    }
    return false;
  }

  json SourceStatus(const std::string& name) {
    json j = AdminStatus();
    for (const auto& s : j["sources"]) {
      if (s["name"] == name) return s;
    }
    return json();
  }

  std::map<std::string, json> AccountUsers() {
    std::map<std::string, json> users;
    json state = json::parse(emulator_->StateJson());
    for (const auto& u : state["users"]) {
      users[mapping::AsciiLower(u["email"].get<std::string>())] = u;
    }
    return users;
  }

  // True when `email` holds some access in the account: listed with a
  // project or a permission other than none.
  bool HasAccess(const std::string& email) {
    auto users = AccountUsers();
    auto it = users.find(email);
    if (it == users.end()) return false;
    const json& u = it->second;
    if (u.contains("projects") && !u["projects"].empty()) return true;
    if (u.contains("permissions")) {
      for (const auto& [key, level] : u["permissions"].items()) {
        if (level.is_string() && level != "none") return true;
        if (level.is_object()) {
          for (const auto& [item, value] : level.items()) {
            if (value != "none") return true;
          }
        }
      }
    }
    return false;
  }

  // Waits until HasAccess(email) == want; the time it took, or -1 ms.
  milliseconds WaitForAccess(const std::string& email, bool want, milliseconds wait) {
    const auto start = SteadyClock::now();
    while (SteadyClock::now() < start + wait) {
      if (HasAccess(email) == want) {
        return std::chrono::duration_cast<milliseconds>(SteadyClock::now() - start);
      }
      std::this_thread::sleep_for(milliseconds(10));
    }
    return milliseconds(-1);
  }

  Status SetVoiceMember(const std::string& uid, bool add) {
    return slapd_->Modify(std::string("dn: cn=voice,ou=groups,dc=corp,dc=example\n") +
                          "changetype: modify\n" + (add ? "add" : "delete") + ": member\n" +
                          "member: uid=" + uid + ",ou=people,dc=corp,dc=example\n");
  }

  // After the first full run, the feed's own first refresh (it reports
  // "feed.refreshed") must be done before a change can only come through
  // the persist stage.
  void StartAndSettle() {
    StartDaemon();
    ASSERT_TRUE(WaitForRuns("apply", 1, milliseconds(15000))) << Log();
    ASSERT_TRUE(WaitForLog("feed.refreshed", 1, milliseconds(15000))) << Log();
    ASSERT_NE(Log().find("method=syncrepl"), std::string::npos) << Log();
    ASSERT_TRUE(WaitForAccess("alice@corp.example", true, milliseconds(10000)).count() >= 0);
  }

  std::unique_ptr<SlapdFixture> slapd_;
  fs::path dir_;
  std::string config_;
  std::unique_ptr<emulator::AccountEmulator> emulator_;
  pid_t pid_ = -1;
  int admin_port_ = 0;
  std::uintmax_t log_offset_ = 0;
};

TEST_F(LdapWatchTest, AWatchedMembershipChangeReachesTheAccountWithoutAFullRun) {
  StartAndSettle();
  EXPECT_FALSE(HasAccess("bob@corp.example"));
  // Let the partial run of the feed's first refresh finish.
  std::this_thread::sleep_for(milliseconds(500));
  const std::size_t partial_before = Runs("partial");

  ASSERT_TRUE(SetVoiceMember("bob", true).ok());
  const milliseconds granted = WaitForAccess("bob@corp.example", true, milliseconds(5000));
  EXPECT_GE(granted.count(), 0) << "bob never got access:\n" << Log();
  EXPECT_LT(granted.count(), 3000);
  EXPECT_TRUE(WaitForRuns("partial", partial_before + 1, milliseconds(5000)));
  EXPECT_EQ(Runs("apply"), 1u) << "a full run came in between";
  EXPECT_TRUE(HasAccess("alice@corp.example"));

  ASSERT_TRUE(SetVoiceMember("bob", false).ok());
  const milliseconds revoked = WaitForAccess("bob@corp.example", false, milliseconds(5000));
  EXPECT_GE(revoked.count(), 0) << "bob kept his access:\n" << Log();
  EXPECT_LT(revoked.count(), 3000);
  EXPECT_EQ(Runs("apply"), 1u) << "a full run came in between";
  EXPECT_TRUE(HasAccess("alice@corp.example"));
  EXPECT_FALSE(HasAccess("carol@corp.example"));
  EXPECT_EQ(StopDaemon(), 0);
}

TEST_F(LdapWatchTest, AFailedFeedDeprovisionsNobodyAndResumesFromItsCookie) {
  StartAndSettle();
  std::this_thread::sleep_for(milliseconds(500));
  const auto before = AccountUsers();
  ASSERT_TRUE(before.count("alice@corp.example"));
  const std::uint64_t seen = emulator_->Requests().empty() ? 0 : emulator_->Requests().back().seq;
  EXPECT_EQ(SourceStatus("hr").value("state", ""), "ok") << SourceStatus("hr").dump();

  // The server goes away: the feed fails and says so; nobody loses access.
  ASSERT_TRUE(slapd_->Stop().ok());
  ASSERT_TRUE(WaitForLog("feed.error", 1, milliseconds(10000))) << Log();
  json source = SourceStatus("hr");
  EXPECT_EQ(source.value("state", ""), "failing") << source.dump();
  EXPECT_NE(source.value("last_error", "").find("change feed"), std::string::npos) << source.dump();
  // A full run now cannot read the source either: the last good read stands in.
  ASSERT_EQ(Http(admin_port_, "POST", "/v1/sync", "{}").status, 202);
  ASSERT_TRUE(WaitForRuns("apply", 2, milliseconds(20000))) << Log();
  EXPECT_EQ(AccountUsers(), before);
  for (const auto& r : emulator_->Requests(seen)) {
    EXPECT_EQ(r.method, "GET") << "a write while the source failed: " << r.path;
  }
  EXPECT_EQ(SourceStatus("hr").value("state", ""), "failing");

  // The server comes back and idsyncd restarts: the feed picks up from the
  // cookie it stored, with no full refresh of its own, and follows again.
  ASSERT_TRUE(slapd_->Restart().ok());
  EXPECT_EQ(StopDaemon(), 0);
  StartDaemon();
  ASSERT_TRUE(WaitForRuns("apply", 3, milliseconds(15000))) << Log();
  ASSERT_TRUE(WaitForLog("feed.started", 1, milliseconds(15000))) << Log();
  std::this_thread::sleep_for(milliseconds(1000));
  ASSERT_TRUE(SetVoiceMember("carol", true).ok());
  const milliseconds granted = WaitForAccess("carol@corp.example", true, milliseconds(5000));
  EXPECT_GE(granted.count(), 0) << "carol never got access:\n" << Log();
  EXPECT_TRUE(WaitForLog("feed.changes", 1, milliseconds(5000))) << Log();
  EXPECT_EQ(Count(Log(), "feed.refreshed"), 0u) << "the feed refreshed in full:\n" << Log();
  EXPECT_EQ(Count(Log(), "feed.resumed"), 1u) << Log();
  EXPECT_EQ(Runs("apply"), 3u);
  EXPECT_EQ(SourceStatus("hr").value("state", ""), "ok") << SourceStatus("hr").dump();
  EXPECT_EQ(StopDaemon(), 0);
}

}  // namespace
}  // namespace idsync
