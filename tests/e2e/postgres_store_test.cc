// idsyncd on a PostgreSQL store (a throwaway PostgreSQL 15 for the whole
// binary): the first run applies the directory through the store on the
// server; the replica takes the leader lease and shows it in /v1/status and
// /metrics; `idsync audit verify` and `idsync status` read the store there;
// `idsync apply` is refused while it leads; a second idsyncd follows: it is
// ready, serves SCIM, and what is pushed to it reaches the leader's view
// and the account; after a clean stop the follower takes over within a
// renewal, one epoch on, and after a SIGKILL once the lease expires; a
// console session signed in on one replica works on the other; a
// leader paused past its lease follows when it resumes and leads again
// later, without a restart; a
// SQLite store copied there with `idsync store copy` carries on where it
// stopped.
#include <string>

#include <gtest/gtest.h>

#include "postgres_replicas.h"

namespace idsync::e2e {
namespace {

TEST_F(PostgresStoreTest, OneReplicaLeadsAndAnotherTakesOverAfterItStops) {
  WriteConfig("web-1");
  const std::string first_config = config_;
  LaunchDaemon();
  ASSERT_NE(WaitForStartLine(), "");
  ASSERT_NO_FATAL_FAILURE(ReadListenerPorts());
  ASSERT_TRUE(WaitForRuns("full", 1, milliseconds(20000))) << Log();
  EXPECT_TRUE(AccountUsers().count("bruno@corp.example"));

  json status = Status();
  EXPECT_EQ(status["replica"]["id"], "web-1") << status.dump();
  EXPECT_EQ(status["replica"]["leader"], true);
  EXPECT_EQ(status["replica"]["epoch"], 1);
  const HttpAnswer metrics = Http(admin_port_, "GET", "/metrics", "");
  EXPECT_NE(metrics.body.find("\nidsync_leader 1"), std::string::npos);
  EXPECT_NE(metrics.body.find("\nidsync_leader_epoch 1"), std::string::npos);
  EXPECT_NE(Log().find("leader.elected"), std::string::npos);
  // The store is on the server, and the CLI reads it there.
  EXPECT_EQ(Cli({"audit", "verify"}), daemon::kExitOk);
  EXPECT_EQ(Cli({"status"}), daemon::kExitOk);

  // While it leads, `idsync apply` is refused (after waiting out a lease
  // that might have been left by a dead process) and says where to go.
  std::string err;
  EXPECT_EQ(Cli({"apply"}, &err), daemon::kExitFailed);
  EXPECT_NE(err.find("leader lease is held by web-1/"), std::string::npos) << err;
  EXPECT_NE(err.find("/v1/sync"), std::string::npos) << err;

  EXPECT_TRUE(Alive());
  EXPECT_EQ(StopDaemon(), 0);
  config_ = first_config;
  EXPECT_EQ(Cli({"audit", "verify"}), daemon::kExitOk);
}

TEST_F(PostgresStoreTest, AFollowerServesScimAndTakesOverWhenTheLeaderStops) {
  const Replica leader = Launch("web-1");
  ASSERT_TRUE(WaitForRuns("full", 1, milliseconds(20000))) << Log();
  const std::size_t writes_after_first_run = AppliedWrites();

  // A second replica starts at once, as a follower, and is ready.
  const Replica follower = Launch("web-2");
  json status = Status();
  EXPECT_EQ(status["replica"]["id"], "web-2") << status.dump();
  EXPECT_EQ(status["replica"]["leader"], false);
  EXPECT_EQ(Http(follower.admin_port, "GET", "/readyz", "").status, 200);
  const HttpAnswer metrics = Http(follower.admin_port, "GET", "/metrics", "");
  EXPECT_NE(metrics.body.find("\nidsync_leader 0"), std::string::npos);
  const auto started = SteadyClock::now();
  while (Log().find("leader.following") == std::string::npos &&
         SteadyClock::now() - started < std::chrono::seconds(5)) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_NE(Log().find("leader.following"), std::string::npos) << Log();

  // A console session signed in on one replica works on the other, and
  // signing out on that one ends it on both.
  const HttpAnswer signed_in = HttpWithHeaders(leader.admin_port, "POST", "/ui/api/session", {},
                                               json({{"token", kAdminToken}}).dump());
  ASSERT_EQ(signed_in.status, 200) << signed_in.body;
  const std::string set_cookie = signed_in.Header("Set-Cookie");
  const std::string cookie = set_cookie.substr(0, set_cookie.find(';'));
  const std::string csrf = signed_in.Json()["csrf"];
  EXPECT_EQ(
      HttpWithHeaders(follower.admin_port, "GET", "/ui/api/overview", {{"Cookie", cookie}}).status,
      200);
  EXPECT_EQ(HttpWithHeaders(follower.admin_port, "DELETE", "/ui/api/session",
                            {{"Cookie", cookie}, {"X-CSRF-Token", csrf}})
                .status,
            204);
  EXPECT_EQ(
      HttpWithHeaders(leader.admin_port, "GET", "/ui/api/overview", {{"Cookie", cookie}}).status,
      401);

  // What is pushed to the follower is read back on the leader within a
  // second, and the leader (not the follower) invites the person.
  const std::uint64_t before = LastSeq();
  const std::string user = ScimCreateUser("ines@corp.example", "Ines Pushed");
  ASSERT_NE(user, "");
  const std::string group = ScimCreateGroup("Voice Team", {user});
  ASSERT_NE(group, "");
  Use(leader);
  const auto pushed = SteadyClock::now();
  json seen;
  while (SteadyClock::now() - pushed < std::chrono::seconds(5)) {
    const HttpAnswer a = Http(leader.scim_port, "GET", "/scim/v2/Groups/" + group, kScimToken);
    if (a.status == 200 && a.Json().contains("members")) {
      seen = a.Json();
      break;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_LT(SteadyClock::now() - pushed, std::chrono::seconds(1)) << seen.dump();
  ASSERT_TRUE(seen.contains("members")) << seen.dump();
  EXPECT_EQ(seen["members"][0]["value"], user);
  EXPECT_NE(WaitForWrite(before, "POST /users", milliseconds(15000), "ines@corp.example"), 0u)
      << Log();
  EXPECT_GT(AppliedWrites(), writes_after_first_run);

  // A PATCH on the leader to what the follower created lands on the
  // follower's view too: both write to one store.
  Use(leader);
  ASSERT_EQ(ScimMembership(group, user, /*add=*/false).status, 204);
  Use(follower);
  const auto patched = SteadyClock::now();
  while (SteadyClock::now() - patched < std::chrono::seconds(5)) {
    seen = Http(follower.scim_port, "GET", "/scim/v2/Groups/" + group, kScimToken).Json();
    if (!seen.contains("members") || seen["members"].empty()) break;
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_LT(SteadyClock::now() - patched, std::chrono::seconds(1)) << seen.dump();

  // POST /v1/sync on the follower reaches the leader, which runs; a forced
  // one says so in the leader's log.
  Use(leader);
  const std::size_t full_runs = FinishedRuns(Status(), "full");
  Use(follower);
  EXPECT_EQ(Admin("POST", "/v1/sync", R"({"force": true})").status, 202);
  EXPECT_EQ(Admin("POST", "/v1/sync", R"({"force": "yes"})").status, 400);
  Use(leader);
  ASSERT_TRUE(WaitForRuns("full", full_runs + 1, milliseconds(10000))) << Log();
  EXPECT_NE(Log().find("run.requested"), std::string::npos) << Log();
  EXPECT_NE(Log().find("passes the safety limits"), std::string::npos) << Log();

  // The leader stops: the follower leads within a renewal or two, one
  // epoch on, and runs.
  Use(leader);
  EXPECT_EQ(StopDaemon(), 0);
  const auto stopped = SteadyClock::now();
  status = WaitForLeader(follower, milliseconds(8000));
  EXPECT_LT(SteadyClock::now() - stopped, std::chrono::seconds(3)) << status.dump();
  EXPECT_EQ(status["replica"]["epoch"], 2) << status.dump();
  ASSERT_TRUE(WaitForRuns("full", full_runs + 2, milliseconds(20000))) << Log();
  EXPECT_EQ(StopDaemon(), 0);
  ExpectEveryWriteOnce();
  EXPECT_EQ(Cli({"audit", "verify"}), daemon::kExitOk);
}

TEST_F(PostgresStoreTest, AFollowerBehindThePrunedLogLoadsEverythingAgain) {
  const Replica leader = Launch("web-1");
  ASSERT_TRUE(WaitForRuns("full", 1, milliseconds(20000))) << Log();
  const Replica follower = Launch("web-2");
  // The follower is paused while writes land and the log is pruned past
  // them, as when it falls more than the log keeps behind.
  ASSERT_EQ(::kill(follower.pid, SIGSTOP), 0);
  Use(leader);
  const std::string user = ScimCreateUser("pruned@corp.example", "Pruned Past");
  ASSERT_NE(user, "");
  Result<std::string> pruned = Server()->Psql(
      database_,
      "INSERT INTO scim_changes_pruned (id, upto) SELECT 1, max(seq) FROM scim_changes; "
      "DELETE FROM scim_changes");
  ASSERT_TRUE(pruned.ok()) << pruned.status().ToString();
  ASSERT_EQ(::kill(follower.pid, SIGCONT), 0);
  // It loads every resource again, and so holds the user it never read
  // from the log.
  const auto resumed = SteadyClock::now();
  int status = 0;
  while (SteadyClock::now() - resumed < std::chrono::seconds(5)) {
    status = Http(follower.scim_port, "GET", "/scim/v2/Users/" + user, kScimToken).status;
    if (status == 200) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_EQ(status, 200) << Log();
  EXPECT_NE(Log().find("scim.view_reloaded"), std::string::npos) << Log();
  // Once reloaded it follows the log again: a later write arrives as usual.
  const std::string later = ScimCreateUser("later@corp.example", "Later");
  const auto written = SteadyClock::now();
  while (SteadyClock::now() - written < std::chrono::seconds(5) &&
         Http(follower.scim_port, "GET", "/scim/v2/Users/" + later, kScimToken).status != 200) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_EQ(Http(follower.scim_port, "GET", "/scim/v2/Users/" + later, kScimToken).status, 200);
  Use(follower);
  EXPECT_EQ(StopDaemon(), 0);
  Use(leader);
  EXPECT_EQ(StopDaemon(), 0);
}

TEST_F(PostgresStoreTest, ALeaderThatLostTheLeaseFollowsAndLeadsAgainWithoutARestart) {
  const Replica first = Launch("web-1");
  ASSERT_TRUE(WaitForRuns("full", 1, milliseconds(20000))) << Log();
  const Replica second = Launch("web-2");

  // The leader is paused past its lease (3 s): the other takes over.
  ASSERT_EQ(::kill(first.pid, SIGSTOP), 0);
  json status = WaitForLeader(second, milliseconds(10000));
  EXPECT_EQ(status["replica"]["epoch"], 2) << status.dump();
  ASSERT_EQ(::kill(first.pid, SIGCONT), 0);

  // It resumes, finds the lease gone, stops its runs and follows: the same
  // process, ready, not leading.
  EXPECT_TRUE(WaitForStepDown("web-1", milliseconds(15000))) << Log();
  Use(first);
  EXPECT_TRUE(Alive());
  EXPECT_EQ(Status()["replica"]["leader"], false);
  EXPECT_EQ(Http(first.admin_port, "GET", "/readyz", "").status, 200);
  EXPECT_EQ(Log().find("leader.stuck"), std::string::npos) << Log();

  // The other stops: the first leads again, one epoch on, runs, and sends
  // (its account client, interrupted when it lost the lease, is new).
  Use(second);
  const std::size_t full_runs = FinishedRuns(Status(), "full");
  EXPECT_EQ(StopDaemon(), 0);
  status = WaitForLeader(first, milliseconds(8000));
  EXPECT_EQ(status["replica"]["epoch"], 3) << status.dump();
  ASSERT_TRUE(WaitForRuns("full", full_runs + 1, milliseconds(20000))) << Log();
  const std::uint64_t before = LastSeq();
  const std::string user = ScimCreateUser("ines@corp.example", "Ines Pushed");
  ASSERT_NE(user, "");
  ASSERT_NE(ScimCreateGroup("Voice Team", {user}), "");
  EXPECT_NE(WaitForWrite(before, "POST /users", milliseconds(15000), "ines@corp.example"), 0u)
      << Log();
  EXPECT_EQ(StopDaemon(), 0);
  ExpectEveryWriteOnce();
  EXPECT_EQ(Cli({"audit", "verify"}), daemon::kExitOk);
}

TEST_F(PostgresStoreTest, ALeaseLeftByAKilledLeaderIsTakenOnceItExpires) {
  Launch("web-1");
  ASSERT_TRUE(WaitForRuns("full", 1, milliseconds(20000))) << Log();
  EXPECT_EQ(StopDaemon(SIGKILL), 128 + SIGKILL);
  // The lease (3 s) is still held by the dead process: the next replica
  // starts at once, follows, and leads once the lease has run out.
  const auto killed = SteadyClock::now();
  const Replica next = Launch("web-2");
  json status = WaitForLeader(next, milliseconds(10000));
  const auto waited = SteadyClock::now() - killed;
  EXPECT_GT(waited, milliseconds(500));
  EXPECT_LT(waited, std::chrono::seconds(8));
  EXPECT_EQ(status["replica"]["epoch"], 2) << status.dump();
  ASSERT_TRUE(WaitForRuns("full", 2, milliseconds(20000))) << Log();
  EXPECT_EQ(StopDaemon(), 0);
  ExpectEveryWriteOnce();
}

TEST_F(PostgresStoreTest, TheDatabaseAwayIsWaitedForAndWritesRefusedUntilItIsBack) {
  // Away at start: idsyncd waits, not ready (nothing listens), and a
  // SIGTERM meanwhile stops it cleanly.
  ASSERT_TRUE(Server()->Stop().ok());
  WriteConfig("web-1");
  LaunchDaemon();
  const auto launched = SteadyClock::now();
  while (Log().find("store.waiting") == std::string::npos &&
         SteadyClock::now() - launched < std::chrono::seconds(10)) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_NE(Log().find("store.waiting"), std::string::npos) << Log();
  EXPECT_EQ(Log().find("daemon.started"), std::string::npos) << Log();
  EXPECT_EQ(StopDaemon(SIGTERM, milliseconds(5000)), 0) << Log();

  // Started again while the server is away, then the server comes back:
  // idsyncd starts by itself, leads and runs.
  LaunchDaemon();
  std::this_thread::sleep_for(milliseconds(1500));
  EXPECT_TRUE(Alive());
  ASSERT_TRUE(Server()->Restart().ok());
  ASSERT_NE(WaitForStartLine(milliseconds(20000)), "") << Log();
  ASSERT_NO_FATAL_FAILURE(ReadListenerPorts());
  ASSERT_TRUE(WaitForRuns("full", 1, milliseconds(20000))) << Log();
  const std::string user = ScimCreateUser("away@corp.example", "Away Test");
  ASSERT_NE(user, "");

  // Away while it runs: SCIM reads go on from memory, writes are refused
  // with 503 and nothing is half-stored.
  ASSERT_TRUE(Server()->Stop().ok());
  const HttpAnswer read = Http(scim_port_, "GET", "/scim/v2/Users/" + user, kScimToken);
  EXPECT_EQ(read.status, 200) << read.body;
  const HttpAnswer write = Http(scim_port_, "POST", "/scim/v2/Users", kScimToken,
                                R"({"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],)"
                                R"("userName":"refused@corp.example"})");
  EXPECT_EQ(write.status, 503) << write.body;
  EXPECT_EQ(Http(scim_port_, "GET",
                 "/scim/v2/Users?filter=userName%20eq%20%22refused@corp.example%22", kScimToken)
                .Json()["totalResults"],
            0);

  // Back: writes are taken again, by the same process.
  ASSERT_TRUE(Server()->Restart().ok());
  const auto back = SteadyClock::now();
  int status = 0;
  while (SteadyClock::now() - back < std::chrono::seconds(15)) {
    status = Http(scim_port_, "POST", "/scim/v2/Users", kScimToken,
                  R"({"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],)"
                  R"("userName":"back@corp.example"})")
                 .status;
    if (status == 201) break;
    std::this_thread::sleep_for(milliseconds(200));
  }
  EXPECT_EQ(status, 201);
  EXPECT_EQ(StopDaemon(), 0);
}

TEST_F(PostgresStoreTest, ASqliteStoreCopiedToPostgresCarriesOnWhereItStopped) {
  WriteConfig("web-1", /*on_sqlite=*/true);
  std::string err, out;
  ASSERT_EQ(Cli({"apply"}, &err), daemon::kExitOk) << err;
  const std::size_t applied = AppliedWrites();
  ASSERT_GT(applied, 0u);
  ASSERT_EQ(Cli({"store", "copy", "--to", store_url_}, &err, &out), daemon::kExitOk) << err;
  EXPECT_NE(out.find("audit chain: " + std::to_string(applied) + " entries, verified"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("outbox: " + std::to_string(applied) + " rows"), std::string::npos) << out;
  // A copy never merges.
  EXPECT_EQ(Cli({"store", "copy", "--to", store_url_}, &err), daemon::kExitFailed);
  EXPECT_NE(err.find("not empty"), std::string::npos) << err;

  // On the copy: the chain verifies, and idsyncd finds the account in step
  // with what the SQLite store said it sent: nothing more is written.
  WriteConfig("web-1");
  EXPECT_EQ(Cli({"audit", "verify"}, &err, &out), daemon::kExitOk) << err;
  LaunchDaemon();
  ASSERT_NE(WaitForStartLine(), "") << Log();
  ASSERT_NO_FATAL_FAILURE(ReadListenerPorts());
  ASSERT_TRUE(WaitForRuns("full", 2, milliseconds(20000))) << Log();
  EXPECT_EQ(AppliedWrites(), applied);
  EXPECT_EQ(StopDaemon(), 0);
  ExpectEveryWriteOnce();
}

}  // namespace
}  // namespace idsync::e2e
