// Three idsyncd replicas on one PostgreSQL store, under faults, while an
// identity provider pushes: Okta-shaped creates and Entra-shaped group
// PATCHes, spread over all three, each retried on another replica when it
// gets no answer or a 5xx (as identity providers retry). The account
// answers slowly, so that writes are in flight when the faults land:
//
//   1. the leader is SIGKILLed while it sends, and started again;
//   2. the next leader is SIGSTOPped past its lease, then SIGCONTed: its
//      writes are refused by the fence, and it stops its runs and follows
//      again, without a restart;
//   3. the leader's database connections are terminated
//      (pg_terminate_backend);
//   4. PostgreSQL itself is restarted.
//
// At the end every pushed person is in the account once, every write
// reached it once (by idempotency key), nothing is pending or failed, the
// account is what the configuration asks for (`idsync plan` has nothing to
// do), the epochs only grew, and the audit chain verifies.
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "postgres_replicas.h"

namespace idsync::e2e {
namespace {

constexpr int kReplicas = 3;
// At least this many people are pushed, and pushing goes on until the
// faults are over.
constexpr int kPeople = 36;

class ReplicasChaosTest : public PostgresStoreTest {
 protected:
  // Replica i runs as "web-<i+1>"; relaunching it keeps the id.
  void Start(int i) {
    std::lock_guard lock(mu_);
    slots_[i] = Launch("web-" + std::to_string(i + 1));
  }

  Replica Slot(int i) {
    std::lock_guard lock(mu_);
    return slots_[i];
  }

  // SIGKILLs replica i and starts it again (a crash, then systemd's restart).
  void Restart(int i, int sig = SIGKILL) {
    Replica r = Slot(i);
    ::kill(r.pid, sig);
    ::waitpid(r.pid, nullptr, 0);
    {
      std::lock_guard lock(mu_);
      slots_[i].scim_port = 0;  // no answers until it is back
      for (Replica& launched : replicas_) {
        if (launched.pid == r.pid) launched.pid = -1;  // reaped: never signalled again
      }
    }
    Start(i);
  }

  // The replica that says it leads, and its epoch; waits up to `wait`.
  // Every replica is asked, so that a paused one does not hold this up.
  std::pair<int, std::int64_t> Leader(milliseconds wait) {
    const auto until = SteadyClock::now() + wait;
    while (SteadyClock::now() < until) {
      for (int i = 0; i < kReplicas; ++i) {
        const Replica r = Slot(i);
        if (r.admin_port == 0 || stopped_ == i) continue;
        const HttpAnswer a = Http(r.admin_port, "GET", "/v1/status", kAdminToken);
        if (a.status != 200) continue;
        const json status = a.Json();
        if (status["replica"]["leader"] == true) {
          const std::int64_t epoch = status["replica"]["epoch"];
          epochs_.push_back(epoch);
          return {i, epoch};
        }
      }
      std::this_thread::sleep_for(milliseconds(50));
    }
    ADD_FAILURE() << "no replica leads after " << wait.count() << " ms";
    return {-1, 0};
  }

  // One SCIM request as an identity provider sends it: retried, on the
  // next replica, until one answers it with other than a 5xx. The answer.
  HttpAnswer Push(int first, const std::string& method, const std::string& path,
                  const std::string& body) {
    HttpAnswer a;
    for (int attempt = 0; attempt < 400; ++attempt) {
      const Replica r = Slot((first + attempt) % kReplicas);
      if (r.scim_port != 0) {
        a = Http(r.scim_port, method, "/scim/v2" + path, kScimToken, body);
        if (a.status > 0 && a.status < 500) return a;
        ++retries_;
      }
      std::this_thread::sleep_for(milliseconds(50));
    }
    ADD_FAILURE() << method << " " << path << " was never answered: " << a.status << " " << a.body;
    return a;
  }

  // Pushes users (Okta's shape) and adds each to the "Voice Team" group
  // (Entra's PATCH shape), spread over the replicas: at least kPeople, and
  // on until faults_over_.
  void PushPeople(const std::string& group) {
    for (int n = 0; n < kPeople || !faults_over_; ++n) {
      const std::string email = "chaos" + std::to_string(n) + "@corp.example";
      const json user = {{"schemas", {"urn:ietf:params:scim:schemas:core:2.0:User"}},
                         {"userName", email},
                         {"externalId", "ext-" + std::to_string(n)},
                         {"name", {{"givenName", "Chaos"}, {"familyName", std::to_string(n)}}},
                         {"displayName", "Chaos " + std::to_string(n)},
                         {"active", true},
                         {"emails", {{{"value", email}, {"primary", true}, {"type", "work"}}}}};
      HttpAnswer created = Push(n, "POST", "/Users", user.dump());
      std::string id;
      if (created.status == 201) {
        id = created.Json().value("id", "");
      } else if (created.status == 409) {
        // An earlier attempt was stored but its answer lost: look it up.
        const HttpAnswer found =
            Push(n + 1, "GET", "/Users?filter=userName%20eq%20%22" + email + "%22", "");
        if (found.status == 200 && !found.Json()["Resources"].empty()) {
          id = found.Json()["Resources"][0].value("id", "");
        }
      }
      if (id.empty()) {
        ADD_FAILURE() << "user " << email << " not created: " << created.status << " "
                      << created.body;
        continue;
      }
      const json add = {
          {"schemas", {"urn:ietf:params:scim:api:messages:2.0:PatchOp"}},
          {"Operations", {{{"op", "Add"}, {"path", "members"}, {"value", {{{"value", id}}}}}}}};
      const HttpAnswer patched = Push(n + 2, "PATCH", "/Groups/" + group, add.dump());
      EXPECT_TRUE(patched.status == 204 || patched.status == 200) << patched.body;
      emails_.insert(email);
      std::this_thread::sleep_for(milliseconds(100));
    }
  }

  // Waits until the applied writes grow past `count`.
  void AwaitWrites(std::size_t count, milliseconds wait) {
    const auto until = SteadyClock::now() + wait;
    while (AppliedWrites() < count && SteadyClock::now() < until) {
      std::this_thread::sleep_for(milliseconds(20));
    }
  }

  std::mutex mu_;
  Replica slots_[kReplicas];
  std::atomic<int> stopped_{-1};  // the replica SIGSTOPped, if any
  std::atomic<int> retries_{0};
  std::atomic<bool> faults_over_{false};
  std::vector<std::int64_t> epochs_;
  std::set<std::string> emails_;  // pusher thread until joined
};

TEST_F(ReplicasChaosTest, EveryOperationOnceThroughKillsPausesCutConnectionsAndARestart) {
  for (int i = 0; i < kReplicas; ++i) Start(i);
  auto [leader, epoch] = Leader(milliseconds(10000));
  ASSERT_GE(leader, 0);
  ASSERT_TRUE(WaitForRuns("full", 1, milliseconds(20000))) << Log();
  // The group the pushed people join, created before the faults.
  const json group_body = {{"schemas", {"urn:ietf:params:scim:schemas:core:2.0:Group"}},
                           {"displayName", "Voice Team"},
                           {"members", json::array()}};
  const HttpAnswer group = Push(1, "POST", "/Groups", group_body.dump());
  ASSERT_EQ(group.status, 201) << group.body;
  const std::string group_id = group.Json()["id"];

  // From here the account answers slowly: writes are in flight when the
  // faults land.
  emulator::Faults slow;
  slow.latency = {milliseconds(40), milliseconds(120)};
  emulator_->SetFaults(slow);
  const std::size_t before = AppliedWrites();
  std::thread pusher([&] { PushPeople(group_id); });
  // An assertion below that fails ends the pushing too.
  struct JoinOnExit {
    std::atomic<bool>& over;
    std::thread& thread;
    ~JoinOnExit() {
      over = true;
      if (thread.joinable()) thread.join();
    }
  } join_pusher{faults_over_, pusher};

  // 1. The leader dies while it sends; systemd starts it again.
  AwaitWrites(before + 4, milliseconds(30000));
  Restart(leader);
  auto [second, second_epoch] = Leader(milliseconds(15000));
  ASSERT_GE(second, 0);
  EXPECT_GT(second_epoch, epoch);

  // 2. The next leader is paused past its lease; another takes over; the
  // paused one resumes, finds the lease gone, and follows again.
  AwaitWrites(AppliedWrites() + 3, milliseconds(20000));
  stopped_ = second;
  ::kill(Slot(second).pid, SIGSTOP);
  auto [third, third_epoch] = Leader(milliseconds(15000));
  ASSERT_GE(third, 0);
  EXPECT_NE(third, second);
  EXPECT_GT(third_epoch, second_epoch);
  ::kill(Slot(second).pid, SIGCONT);
  stopped_ = -1;
  {
    EXPECT_TRUE(WaitForStepDown("web-" + std::to_string(second + 1), milliseconds(15000)))
        << "the paused leader did not notice, or did not go back to following";
    // Healthy again, without a restart: its watchdog would be fed.
    EXPECT_EQ(Log().find("leader.stuck"), std::string::npos);
    const HttpAnswer ready = Http(Slot(second).admin_port, "GET", "/readyz", "");
    EXPECT_EQ(ready.status, 200) << ready.body;
  }

  // 3. The leader's database connections are cut.
  AwaitWrites(AppliedWrites() + 3, milliseconds(20000));
  Result<std::string> terminated =
      Server()->Psql("postgres",
                     "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                     "application_name LIKE 'idsyncd web-" +
                         std::to_string(third + 1) + "%'");
  ASSERT_TRUE(terminated.ok()) << terminated.status().ToString();
  EXPECT_GT(std::atoi(terminated->c_str()), 0) << "no connection of the leader was found";

  // 4. PostgreSQL restarts.
  AwaitWrites(AppliedWrites() + 3, milliseconds(20000));
  ASSERT_TRUE(Server()->Stop().ok());
  std::this_thread::sleep_for(milliseconds(500));
  ASSERT_TRUE(Server()->Restart().ok());

  faults_over_ = true;
  pusher.join();
  emulator_->SetFaults(emulator::Faults{});
  ASSERT_GE(emails_.size(), static_cast<std::size_t>(kPeople));

  // Every replica came through the faults by itself: none is restarted.
  auto [last, last_epoch] = Leader(milliseconds(20000));
  ASSERT_GE(last, 0);
  EXPECT_EQ(Log().find("leader.stuck"), std::string::npos);
  // A full run asked of a follower settles what the faults left: the
  // people whose partial runs failed while the database was away.
  // A follower's first call on a connection the restart cut fails with 503
  // (and Retry-After); a client asks again, as here.
  Use(Slot((last + 1) % kReplicas));
  HttpAnswer asked = Admin("POST", "/v1/sync");
  for (int attempt = 0; attempt < 10 && asked.status == 503; ++attempt) {
    std::this_thread::sleep_for(milliseconds(500));
    asked = Admin("POST", "/v1/sync");
  }
  EXPECT_EQ(asked.status, 202) << asked.body;
  const auto settling = SteadyClock::now();
  while (SteadyClock::now() - settling < std::chrono::seconds(60)) {
    const json now = Status();
    std::size_t in_account = 0;
    const std::map<std::string, json> users = AccountUsers();
    for (const std::string& email : emails_) in_account += users.count(email);
    if (now["pending"].empty() && in_account == emails_.size()) break;
    std::this_thread::sleep_for(milliseconds(200));
  }
  auto [final_leader, final_epoch] = Leader(milliseconds(10000));
  EXPECT_GE(final_epoch, last_epoch);

  // Every pushed person is in the account, once.
  std::map<std::string, int> seen;
  const json state = json::parse(emulator_->StateJson());
  for (const json& user : state["users"]) ++seen[user.value("email", "")];
  for (const std::string& email : emails_) EXPECT_EQ(seen[email], 1) << email;
  ExpectEveryWriteOnce();

  // Nothing pending or failed; the account is what the configuration asks.
  const json status = Status();
  EXPECT_TRUE(status["pending"].empty()) << status["pending"].dump();
  EXPECT_TRUE(status["failed"].empty()) << status["failed"].dump();
  WriteConfig("web-cli");
  std::string out, err;
  EXPECT_EQ(Cli({"plan", "--json"}, &err, &out), daemon::kExitOk) << err;
  const json plan = json::parse(out, nullptr, false);
  ASSERT_TRUE(plan.is_object()) << out;
  EXPECT_TRUE(plan["operations"].empty()) << plan["operations"].dump();
  EXPECT_EQ(Cli({"audit", "verify"}, &err), daemon::kExitOk) << err;

  // The epochs seen only grew.
  for (std::size_t i = 1; i < epochs_.size(); ++i) {
    EXPECT_GE(epochs_[i], epochs_[i - 1]) << "epoch went back at sample " << i;
  }
  std::cout << "chaos: " << emails_.size() << " people pushed, " << AppliedWrites()
            << " writes applied, " << retries_.load()
            << " SCIM requests retried on another replica, epochs 1.." << final_epoch << "\n";
  Use(Slot(final_leader));
}

}  // namespace
}  // namespace idsync::e2e
