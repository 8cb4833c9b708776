// Priority lanes, end to end: the real idsyncd against a rate-limited account
// emulator, with a first full run of 3,000 invites in flight. People pushed
// by an identity provider meanwhile (a SCIM group membership, then a
// deactivation) reach the account within a second, nobody is written twice,
// and the full run still converges.
//
// IDSYNC_LANES_PUSHES sets how many people are pushed (default 20); the
// latency figures in bench/README.md come from a run with 100.

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "idsync/base/ascii.h"
#include "idsync/daemon/cli.h"
#include "idsync/scim/endpoint.h"

#include "harness.h"

namespace idsync::e2e {
namespace {

constexpr const char* kAccountToken = "lanes-account-token";
constexpr const char* kScimToken = "lanes-scim-token";
constexpr const char* kAdminToken = "lanes-admin-token";
constexpr int kDirectoryPeople = 3000;
constexpr int kRequestsPerSecond = 100;

std::string Person(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "u%04d", i);
  return buf;
}

class PriorityLanesTest : public E2eTest {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(SetUpAccount({.dir_prefix = "idsync-lanes",
                                          .token = kAccountToken,
                                          .seed_json = kAccountSeed,
                                          .random_seed = 5,
                                          .admin_token = kAdminToken,
                                          .scim_token = kScimToken}));
  }

  // 3,000 people, everyone in "Voice Team".
  void WriteDirectory() {
    std::ofstream ldif(dir_ / "directory.ldif");
    ldif << "version: 1\n\n"
         << "dn: ou=people,dc=corp,dc=example\nobjectClass: organizationalUnit\nou: people\n\n"
         << "dn: ou=groups,dc=corp,dc=example\nobjectClass: organizationalUnit\nou: groups\n\n";
    for (int i = 0; i < kDirectoryPeople; ++i) {
      const std::string uid = Person(i);
      ldif << "dn: uid=" << uid << ",ou=people,dc=corp,dc=example\n"
           << "objectClass: inetOrgPerson\nuid: " << uid << "\ncn: Person " << uid
           << "\nsn: " << uid << "\nmail: " << uid << "@corp.example\n\n";
    }
    ldif << "dn: cn=Voice Team,ou=groups,dc=corp,dc=example\nobjectClass: groupOfNames\n"
         << "cn: Voice Team\n";
    for (int i = 0; i < kDirectoryPeople; ++i) {
      ldif << "member: uid=" << Person(i) << ",ou=people,dc=corp,dc=example\n";
    }
  }

  void WriteConfig() {
    std::string account = AccountAndStoreYaml(/*concurrency=*/2);
    const std::string fast = "max_requests_per_second: 1000";
    account.replace(account.find(fast), fast.size(),
                    "max_requests_per_second: " + std::to_string(kRequestsPerSecond));
    std::ostringstream y;
    y << account << "sources:\n"
      << "  - name: hr\n"
      << "    type: ldif\n"
      << "    path: " << (dir_ / "directory.ldif").string() << "\n"
      << "    users: {base: \"ou=people,dc=corp,dc=example\", filter: "
         "\"(objectClass=inetOrgPerson)\", email: mail, name: cn}\n"
      << "    groups: {base: \"ou=groups,dc=corp,dc=example\", filter: "
         "\"(objectClass=groupOfNames)\", name: cn, member: member}\n"
      << "    interval: 1h\n"
      << "    jitter: 0s\n"
      << "  - name: okta\n"
      << "    type: scim\n"
      << "    tokens: [\"" << scim::HashToken(kScimToken) << "\"]\n"
      << "server:\n"
      << "  listen: [\"127.0.0.1:0\"]\n"
      << "  admin_listen: [\"127.0.0.1:0\"]\n"
      << "  admin_tokens: [\"" << scim::HashToken(kAdminToken) << "\"]\n"
      << "permissions:\n  catalog: builtin\n"
      << "rules:\n"
      << "  - {name: voice, match: {group: \"Voice Team\", source: hr}, "
         "presets: [voice-specialist], projects: [support-bot]}\n"
      << "  - {name: okta-knowledge, match: {group: \"Okta Knowledge\", source: okta}, "
         "preset: content-editor}\n"
      << "deprovision: remove\nadopt_existing: false\n"
      << "protect: [owner@corp.example]\n"
      << "safety:\n  max_removals: none\n  max_changes: none\n"
      << "logging: {format: text, level: info}\n";
    config_ = (dir_ / "idsync.yaml").string();
    std::ofstream(config_) << y.str();
  }

  std::string CreateUser(const std::string& email) {
    return ScimCreateUser(email, "Pushed " + email);
  }

  void AddToGroup(const std::string& group, const std::string& user) {
    HttpAnswer a = ScimMembership(group, user, /*add=*/true);
    EXPECT_TRUE(a.status == 200 || a.status == 204) << a.body;
  }

  void Deactivate(const std::string& user) {
    HttpAnswer a = Http(scim_port_, "PATCH", "/scim/v2/Users/" + user, kScimToken,
                        json{{"schemas", {"urn:ietf:params:scim:api:messages:2.0:PatchOp"}},
                             {"Operations", {{{"op", "replace"}, {"value", {{"active", false}}}}}}}
                            .dump());
    EXPECT_TRUE(a.status == 200 || a.status == 204) << a.body;
  }

  // Milliseconds until the emulator applies `endpoint` for `email` after log
  // entry `after`; -1 after `wait`.
  double MsUntilWrite(std::uint64_t after, const std::string& endpoint, const std::string& email,
                      SteadyClock::time_point since, milliseconds wait) {
    if (WaitForWrite(after, endpoint, since + wait, email) == 0) return -1;
    return std::chrono::duration<double, std::milli>(SteadyClock::now() - since).count();
  }

  // Applied invites of the directory's people so far.
  int DirectoryInvites() const {
    int n = 0;
    for (const auto& r : emulator_->Requests()) {
      n += r.applied && r.endpoint == "POST /users" && r.email.rfind("u", 0) == 0;
    }
    return n;
  }
};

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(v.size() * p))];
}

TEST_F(PriorityLanesTest, PushedPeopleGoAheadOfAFullRunInFlight) {
  int pushes = 20;
  if (const char* env = std::getenv("IDSYNC_LANES_PUSHES")) pushes = std::max(1, std::atoi(env));

  // Every write takes 20 ms, and the account takes at most 100 requests a
  // second (idsync keeps under it: account.max_requests_per_second).
  emulator::Faults faults;
  faults.latency = {milliseconds(20), milliseconds(20)};
  faults.rate_limit_per_second = kRequestsPerSecond * 1.2;
  faults.rate_limit_burst = 10;
  emulator_->SetFaults(faults);
  WriteDirectory();
  WriteConfig();
  LaunchDaemon();
  ASSERT_NO_FATAL_FAILURE(ReadListenerPorts());

  // The group the pushed people join, before the full run is well under way.
  const std::string group_id = ScimCreateGroup("Okta Knowledge", {});
  ASSERT_FALSE(group_id.empty());
  ASSERT_TRUE(testing::WaitUntil([&] { return DirectoryInvites() >= 100; }, milliseconds(60000)))
      << "the full run never got going";

  // One of the directory's people, whose full-run invite is still queued
  // (the plan sends invites in address order; u2999 is last), pushed by the
  // identity provider too: the push's plan wins, the full run's invite is
  // superseded, and the person is written once.
  const std::string last = Person(kDirectoryPeople - 1) + "@corp.example";
  std::uint64_t seen = LastSeq();
  const auto pushed_last = SteadyClock::now();
  ASSERT_FALSE(CreateUser(last).empty());
  const double last_ms = MsUntilWrite(seen, "POST /users", last, pushed_last, milliseconds(5000));
  EXPECT_GE(last_ms, 0) << last << " did not reach the account ahead of the full run";
  EXPECT_LT(last_ms, 1000);

  std::vector<double> invite_ms;
  std::vector<double> remove_ms;
  for (int i = 0; i < pushes; ++i) {
    const std::string email = "pushed" + std::to_string(i) + "@corp.example";
    const std::string id = CreateUser(email);
    ASSERT_FALSE(id.empty());
    seen = LastSeq();
    AddToGroup(group_id, id);
    auto t0 = SteadyClock::now();
    const double in = MsUntilWrite(seen, "POST /users", email, t0, milliseconds(10000));
    ASSERT_GE(in, 0) << email << " never reached the account";
    invite_ms.push_back(in);

    seen = LastSeq();
    Deactivate(id);
    t0 = SteadyClock::now();
    const double out = MsUntilWrite(seen, "DELETE /users/{id}", email, t0, milliseconds(10000));
    ASSERT_GE(out, 0) << email << " was never removed";
    remove_ms.push_back(out);
  }
  const int invited_during_pushes = DirectoryInvites();
  EXPECT_LT(invited_during_pushes, kDirectoryPeople)
      << "the full run ended before the pushes did: they did not race it";

  std::cout << "pushed person -> account invite over " << invite_ms.size()
            << " pushes during a full run: p50 " << Percentile(invite_ms, 0.5) << " ms, p99 "
            << Percentile(invite_ms, 0.99) << " ms, max "
            << *std::max_element(invite_ms.begin(), invite_ms.end()) << " ms\n"
            << "pushed deactivation -> account delete: p50 " << Percentile(remove_ms, 0.5)
            << " ms, p99 " << Percentile(remove_ms, 0.99) << " ms, max "
            << *std::max_element(remove_ms.begin(), remove_ms.end()) << " ms\n"
            << "directory invites landed when the pushes ended: " << invited_during_pushes << " of "
            << kDirectoryPeople << "\n";
  EXPECT_LT(Percentile(invite_ms, 0.99), 1000.0);
  EXPECT_LT(Percentile(remove_ms, 0.99), 1000.0);

  // The full run converges: everyone in the directory is in the account.
  // (Status lists the last ten runs, all partial by now: the log says when
  // the full run ends.)
  ASSERT_TRUE(
      testing::WaitUntil([&] { return Log().find("the full run finished") != std::string::npos; },
                         milliseconds(180000)));
  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        HttpAnswer a = Admin("GET", "/v1/status");
        return a.status == 200 && a.Json()["daemon"].value("people_waiting", 1) == 0 &&
               !a.Json()["daemon"].value("running", true);
      },
      milliseconds(30000)));
  EXPECT_EQ(StopDaemon(), 0);
  const std::map<std::string, json> users = AccountUsers();
  EXPECT_EQ(users.size(), static_cast<std::size_t>(kDirectoryPeople) + 1);  // and the owner
  ASSERT_TRUE(users.count(last));
  for (int i = 0; i < pushes; ++i) {
    EXPECT_FALSE(users.count("pushed" + std::to_string(i) + "@corp.example")) << i;
  }

  // Nobody written twice: one invite per person, no write for a directory
  // person besides it, one delete per pushed person.
  ExpectEveryWriteOnce();
  std::map<std::string, int> writes;
  for (const auto& r : emulator_->Requests()) {
    if (r.method == "GET" || !r.applied) continue;
    ++writes[base::AsciiLower(r.email) + " " + r.endpoint];
  }
  for (const auto& [what, n] : writes) EXPECT_EQ(n, 1) << what;
  EXPECT_EQ(writes.count(last + " POST /users"), 1u);
  EXPECT_EQ(writes.count(last + " PATCH /users/{id}"), 0u) << "the full run wrote " << last;

  // Nothing left to do.
  std::ostringstream out, err;
  ASSERT_EQ(daemon::RunCli({"--config", config_, "plan", "--json"}, out, err), daemon::kExitOk)
      << err.str();
  json plan = json::parse(out.str(), nullptr, false);
  ASSERT_TRUE(plan.is_object()) << out.str();
  EXPECT_TRUE(plan["operations"].empty()) << plan["operations"].dump(2);
}

}  // namespace
}  // namespace idsync::e2e
