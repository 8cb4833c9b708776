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
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "idsync/emulator/emulator.h"
#include "idsync/scim/endpoint.h"

#include "harness.h"
#include "require_servers.h"
#include "slapd_fixture.h"

namespace idsync::e2e {
namespace {

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

std::size_t Count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

class LdapWatchTest : public E2eTest {
 protected:
  void SetUp() override {
    IDSYNC_REQUIRE_SERVER(SlapdFixture::Available(), SlapdFixture::WhyUnavailable());
    SlapdOptions options;
    options.syncprov = true;
    Result<std::unique_ptr<SlapdFixture>> slapd = SlapdFixture::Start(options);
    ASSERT_TRUE(slapd.ok()) << slapd.status().ToString();
    slapd_ = std::move(slapd).value();
    Status added = slapd_->Add(kDirectory);
    ASSERT_TRUE(added.ok()) << added.ToString();

    ASSERT_NO_FATAL_FAILURE(SetUpAccount({.dir_prefix = "idsync-e2e-watch",
                                          .token = kAccountToken,
                                          .seed_json = kSeed,
                                          .random_seed = 5,
                                          .admin_token = kAdminToken,
                                          .scim_token = ""}));  // no SCIM source
    WriteConfig();
  }

  void TearDown() override {
    E2eTest::TearDown();
    slapd_.reset();
  }

  // Reads (and follows) the directory as its root DN, with the fixture's
  // random password from the environment: a secret nothing may show.
  void WriteConfig() {
    ::setenv("IDSYNC_E2E_WATCH_BIND_PASSWORD", slapd_->admin_password().c_str(), 1);
    std::ostringstream y;
    y << AccountAndStoreYaml() << "sources:\n"
      << "  - name: hr\n"
      << "    type: ldap\n"
      << "    url: " << slapd_->ldap_url() << "\n"
      << "    connect_timeout: 2s\n"
      << "    timeout: 5s\n"
      << "    allow_insecure: true\n"
      << "    bind: {dn: \"" << slapd_->admin_dn()
      << "\", password: \"${env:IDSYNC_E2E_WATCH_BIND_PASSWORD}\"}\n"
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
    LaunchDaemon();
    const std::string line = WaitForStartLine();
    ASSERT_FALSE(line.empty());
    admin_port_ = ListenerPort(line, "admin");
    ASSERT_NE(admin_port_, 0) << line;
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
    HttpAnswer a = Admin("GET", "/v1/status");
    EXPECT_EQ(a.status, 200) << a.body;
    return a.Json();
  }

  // Finished runs of `kind` ("full" or "partial") that /v1/status lists.
  std::size_t Runs(const std::string& kind) { return FinishedRuns(AdminStatus(), kind); }

  json SourceStatus(const std::string& name) {
    json j = AdminStatus();
    for (const auto& s : j["sources"]) {
      if (s["name"] == name) return s;
    }
    return json();
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
  // the persist stage. The refresh hands everyone it read to a partial run
  // (or to a full run that starts after it); settled means that run has
  // finished too: a run finished after the refresh in the log, nobody waits
  // for a partial run and none is running.
  void StartAndSettle() {
    StartDaemon();
    ASSERT_TRUE(WaitForRuns("full", 1, milliseconds(15000))) << Log();
    ASSERT_TRUE(WaitForLog("feed.refreshed", 1, milliseconds(15000))) << Log();
    ASSERT_NE(Log().find("method=syncrepl"), std::string::npos) << Log();
    ASSERT_TRUE(WaitForAccess("alice@corp.example", true, milliseconds(10000)).count() >= 0);
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
          const std::string log = Log();
          const std::size_t refreshed = log.find("feed.refreshed");
          if (log.find("run.finished", refreshed) == std::string::npos) return false;
          const json daemon = AdminStatus().value("daemon", json::object());
          return daemon.value("people_waiting", -1) == 0 && !daemon.value("running", true);
        },
        milliseconds(15000), milliseconds(20)))
        << "the refresh's run never finished:\n"
        << AdminStatus().dump(2) << "\n"
        << Log();
  }

  std::unique_ptr<SlapdFixture> slapd_;
};

TEST_F(LdapWatchTest, AWatchedMembershipChangeReachesTheAccountWithoutAFullRun) {
  StartAndSettle();
  EXPECT_FALSE(HasAccess("bob@corp.example"));
  const std::size_t partial_before = Runs("partial");

  ASSERT_TRUE(SetVoiceMember("bob", true).ok());
  const milliseconds granted = WaitForAccess("bob@corp.example", true, milliseconds(5000));
  EXPECT_GE(granted.count(), 0) << "bob never got access:\n" << Log();
  EXPECT_LT(granted.count(), 3000);
  EXPECT_TRUE(WaitForRuns("partial", partial_before + 1, milliseconds(5000)));
  EXPECT_EQ(Runs("full"), 1u) << "a full run came in between";
  EXPECT_TRUE(HasAccess("alice@corp.example"));

  ASSERT_TRUE(SetVoiceMember("bob", false).ok());
  const milliseconds revoked = WaitForAccess("bob@corp.example", false, milliseconds(5000));
  EXPECT_GE(revoked.count(), 0) << "bob kept his access:\n" << Log();
  EXPECT_LT(revoked.count(), 3000);
  EXPECT_EQ(Runs("full"), 1u) << "a full run came in between";
  EXPECT_TRUE(HasAccess("alice@corp.example"));
  EXPECT_FALSE(HasAccess("carol@corp.example"));
  EXPECT_EQ(StopDaemon(), 0);
}

TEST_F(LdapWatchTest, AFailedFeedDeprovisionsNobodyAndResumesFromItsCookie) {
  StartAndSettle();
  const auto before = AccountUsers();
  ASSERT_TRUE(before.count("alice@corp.example"));
  const std::uint64_t seen = LastSeq();
  EXPECT_EQ(SourceStatus("hr").value("state", ""), "ok") << SourceStatus("hr").dump();

  // The server goes away: the feed fails and says so; nobody loses access.
  ASSERT_TRUE(slapd_->Stop().ok());
  ASSERT_TRUE(WaitForLog("feed.error", 1, milliseconds(10000))) << Log();
  json source = SourceStatus("hr");
  EXPECT_EQ(source.value("state", ""), "failing") << source.dump();
  EXPECT_NE(source.value("last_error", "").find("change feed"), std::string::npos) << source.dump();
  // A full run now cannot read the source either: the last good read stands in.
  ASSERT_EQ(Admin("POST", "/v1/sync", "{}").status, 202);
  ASSERT_TRUE(WaitForRuns("full", 2, milliseconds(20000))) << Log();
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
  ASSERT_TRUE(WaitForRuns("full", 3, milliseconds(15000))) << Log();
  ASSERT_TRUE(WaitForLog("feed.started", 1, milliseconds(15000))) << Log();
  // The feed's first answer from its stored cookie: from here on a change
  // comes through the resumed feed.
  EXPECT_TRUE(WaitForLog("feed.resumed", 1, milliseconds(15000))) << Log();
  ASSERT_TRUE(SetVoiceMember("carol", true).ok());
  const milliseconds granted = WaitForAccess("carol@corp.example", true, milliseconds(5000));
  EXPECT_GE(granted.count(), 0) << "carol never got access:\n" << Log();
  EXPECT_TRUE(WaitForLog("feed.changes", 1, milliseconds(5000))) << Log();
  EXPECT_EQ(Count(Log(), "feed.refreshed"), 0u) << "the feed refreshed in full:\n" << Log();
  EXPECT_EQ(Count(Log(), "feed.resumed"), 1u) << Log();
  EXPECT_EQ(Runs("full"), 3u);
  EXPECT_EQ(SourceStatus("hr").value("state", ""), "ok") << SourceStatus("hr").dump();
  const std::string status = Admin("GET", "/v1/status").body;
  EXPECT_EQ(StopDaemon(), 0);

  // The bind password, used by every read and by the feed through its
  // failure, shows nowhere: not in the log (both starts), the status, the store.
  const std::string password = slapd_->admin_password();
  ASSERT_GE(password.size(), 8u);
  EXPECT_EQ(ReadFile(dir_ / "idsyncd.log").find(password), std::string::npos);
  EXPECT_EQ(status.find(password), std::string::npos) << status;
  int store_files = 0;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    if (entry.path().filename().string().rfind("state.db", 0) != 0) continue;
    ++store_files;
    EXPECT_EQ(ReadFile(entry.path()).find(password), std::string::npos) << entry.path();
  }
  EXPECT_GE(store_files, 1);
}

}  // namespace
}  // namespace idsync::e2e
