// The fixture of the tests that run idsyncd replicas on a PostgreSQL store
// (a throwaway PostgreSQL 15 per test binary, a fresh database per test):
// the configuration of a replica, launching several idsyncd processes and
// pointing the harness's calls at one of them, waiting for a leader.
#pragma once

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include "idsync/daemon/cli.h"
#include "idsync/scim/endpoint.h"

#include "harness.h"
#include "postgres_fixture.h"
#include "require_servers.h"

namespace idsync::e2e {

using testing::PostgresFixture;

inline constexpr const char* kAccountToken = "e2e-pg-account-token";
inline constexpr const char* kScimToken = "e2e-pg-scim-token";
inline constexpr const char* kAdminToken = "e2e-pg-admin-token";

inline PostgresFixture* Server() { return PostgresFixture::Shared(); }

class PostgresStoreTest : public E2eTest {
 protected:
  void SetUp() override {
    IDSYNC_REQUIRE_SERVER(PostgresFixture::Available(), PostgresFixture::WhyUnavailable());
    ASSERT_NE(Server(), nullptr) << "the test PostgreSQL server did not start";
    ASSERT_NO_FATAL_FAILURE(SetUpAccount({.dir_prefix = "idsync-e2e-pg",
                                          .token = kAccountToken,
                                          .seed_json = kAccountSeed,
                                          .random_seed = 5,
                                          .admin_token = kAdminToken,
                                          .scim_token = kScimToken}));
    fs::copy_file(std::string(IDSYNC_SOURCE_DIR) + "/examples/directory.ldif",
                  dir_ / "directory.ldif");
    Result<std::string> database = Server()->CreateDatabase();
    ASSERT_TRUE(database.ok()) << database.status().ToString();
    database_ = *database;
    store_url_ = Server()->Url(*database);
  }

  // The configuration of replica `replica_id` on this test's database (or,
  // with `on_sqlite`, on a SQLite file in the test's directory).
  std::string WriteConfig(const std::string& replica_id, bool on_sqlite = false) {
    std::string account_and_store = AccountAndStoreYaml();
    const std::size_t store = account_and_store.find("store: ");
    if (!on_sqlite) {
      account_and_store.replace(store, account_and_store.find('\n', store) - store,
                                "store: \"" + store_url_ + "\"");
    }
    std::ostringstream y;
    y << account_and_store << "sources:\n"
      << "  - name: hr\n"
      << "    type: ldif\n"
      << "    path: " << (dir_ / "directory.ldif").string() << "\n"
      << "    users: {base: \"ou=people,dc=corp,dc=example\", filter: "
         "\"(objectClass=inetOrgPerson)\", email: mail, name: cn}\n"
      << "    groups: {base: \"ou=groups,dc=corp,dc=example\", filter: "
         "\"(objectClass=groupOfNames)\", name: cn, member: member}\n"
      << "    interval: 1h\n"
      << "  - name: okta\n"
      << "    type: scim\n"
      << "    tokens: [\"" << scim::HashToken(kScimToken) << "\"]\n"
      << "server:\n"
      << "  listen: [\"127.0.0.1:0\"]\n"
      << "  admin_listen: [\"127.0.0.1:0\"]\n"
      << "  admin_tokens: [\"" << scim::HashToken(kAdminToken) << "\"]\n"
      << "  replica_id: " << replica_id << "\n"
      << "ha: {lease: 3s}\n"
      << "permissions:\n  catalog: builtin\n"
      << "rules:\n"
      << "  - {name: qa, match: {group: \"qa-*\", source: hr}, preset: qa-analyst, "
         "projects: [support-bot]}\n"
      << "  - {name: voice, match: {group: \"Voice Team\"}, presets: [voice-specialist], "
         "projects: [support-bot, sales-bot]}\n"
      << "protect: [owner@corp.example]\n"
      << "logging: {format: text, level: debug}\n";
    config_ = (dir_ / ("idsync-" + replica_id + ".yaml")).string();
    std::ofstream(config_) << y.str();
    return config_;
  }

  json Status() {
    HttpAnswer a = Http(admin_port_, "GET", "/v1/status", kAdminToken);
    EXPECT_EQ(a.status, 200) << a.body;
    return a.Json();
  }

  // `idsync ARGS...` against config_, in process.
  int Cli(std::vector<std::string> args, std::string* err_text = nullptr,
          std::string* out_text = nullptr) {
    args.insert(args.begin(), {"--config", config_});
    std::ostringstream out, err;
    const int status = daemon::RunCli(args, out, err);
    if (err_text != nullptr) *err_text = err.str();
    if (out_text != nullptr) *out_text = out.str();
    return status;
  }

  // Writes the account applied, GETs aside.
  std::size_t AppliedWrites() const {
    std::size_t n = 0;
    for (const auto& r : emulator_->Requests()) n += r.method != "GET" && r.applied ? 1 : 0;
    return n;
  }

  void TearDown() override {
    // The replicas other than the one in use; E2eTest stops that one.
    for (const Replica& r : replicas_) {
      if (r.pid != pid_ && r.pid > 0 && ::kill(r.pid, 0) == 0) {
        ::kill(r.pid, SIGKILL);
        ::waitpid(r.pid, nullptr, 0);
      }
    }
    E2eTest::TearDown();
  }

  // One idsyncd of several on the store.
  struct Replica {
    pid_t pid = -1;
    int scim_port = 0;
    int admin_port = 0;
  };

  // Starts replica `id` (its log goes to the shared idsyncd.log) and makes
  // it the one the harness's calls go to.
  Replica Launch(const std::string& id) {
    WriteConfig(id);
    LaunchDaemon();
    EXPECT_NE(WaitForStartLine(), "") << Log();
    ReadListenerPorts();
    replicas_.push_back({pid_, scim_port_, admin_port_});
    return replicas_.back();
  }

  // The harness's calls (Status, ScimJson, StopDaemon, ...) go to `r`.
  void Use(const Replica& r) {
    pid_ = r.pid;
    scim_port_ = r.scim_port;
    admin_port_ = r.admin_port;
  }

  // Waits until `r` says it leads; its /v1/status then.
  json WaitForLeader(const Replica& r, milliseconds wait) {
    Use(r);
    const auto until = SteadyClock::now() + wait;
    json status;
    while (SteadyClock::now() < until) {
      status = Status();
      if (status["replica"]["leader"] == true) return status;
      std::this_thread::sleep_for(milliseconds(100));
    }
    ADD_FAILURE() << "no leader after " << wait.count() << " ms: " << status.dump();
    return status;
  }

  // Waits up to `wait` for replica `id` to log leader.lost and, after it,
  // leader.following (it stopped leading and follows, without a restart).
  // True when both came.
  bool WaitForStepDown(const std::string& id, milliseconds wait) {
    const std::string who = "replica=" + id;
    const auto until = SteadyClock::now() + wait;
    while (SteadyClock::now() < until) {
      const std::string log = Log();
      const std::size_t lost = FindLine(log, "leader.lost", who, 0);
      if (lost != std::string::npos &&
          FindLine(log, "leader.following", who, lost) != std::string::npos) {
        return true;
      }
      std::this_thread::sleep_for(milliseconds(50));
    }
    return false;
  }

  // Where the first log line from `from` on with both `event` and `who`
  // begins; npos when there is none.
  static std::size_t FindLine(const std::string& log, const std::string& event,
                              const std::string& who, std::size_t from) {
    for (std::size_t at = log.find(event, from); at != std::string::npos;
         at = log.find(event, at + 1)) {
      const std::size_t newline = log.rfind('\n', at);
      const std::size_t begin = newline == std::string::npos ? 0 : newline;
      const std::size_t end = log.find('\n', at);
      if (log.substr(begin, end - begin).find(who) != std::string::npos) return begin;
    }
    return std::string::npos;
  }

  std::string database_;
  std::string store_url_;
  std::vector<Replica> replicas_;
};

}  // namespace idsync::e2e
