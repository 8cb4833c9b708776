// What the end-to-end tests share: HTTP over loopback, a stand-in for
// systemd's notify socket, and a test base that makes a temporary directory,
// starts the account emulator and runs the real idsyncd against it. Each
// test keeps its own configuration and its own checks. Used from the test's
// thread only; NotifySocket reads on a thread of its own.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/types.h>

#include "idsync/emulator/emulator.h"

#include "wait_until.h"  // testing::WaitUntil: wait for a state, never sleep to order events

namespace idsync::e2e {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

// An account with its owner (an admin the tests' configurations protect)
// and two projects: support-bot (p_support) and sales-bot (p_sales).
inline constexpr char kAccountSeed[] = R"({
  "projects": [{"id": "p_support", "name": "support-bot"}, {"id": "p_sales", "name": "sales-bot"}],
  "users": [
    {"id": "u_owner", "email": "owner@corp.example", "name": "Account Owner", "role": "admin",
     "status": "active", "permissions": {}, "projects": []}
  ]
})";

// The whole file; "" when it cannot be read.
std::string ReadFile(const fs::path& path);

struct HttpAnswer {
  int status = 0;  // -1 when no answer came
  std::string content_type;
  std::string body;                                          // the error text when status is -1
  std::vector<std::pair<std::string, std::string>> headers;  // as received
  // The body as JSON; null when it is not JSON.
  json Json() const;
  // The first header named `name` (case ignored), or "".
  std::string Header(const std::string& name) const;
};

// One request to 127.0.0.1:port with a bearer `token` (none when empty). A
// body, and every POST, PUT or PATCH, goes with `content_type`.
HttpAnswer Http(int port, const std::string& method, const std::string& path,
                const std::string& token, const std::string& body = "",
                const std::string& content_type = "application/scim+json");

// One request with the headers given, as a browser sends it.
HttpAnswer HttpWithHeaders(int port, const std::string& method, const std::string& path,
                           const std::vector<std::pair<std::string, std::string>>& headers,
                           const std::string& body = "",
                           const std::string& content_type = "application/json");

// A unix datagram socket standing in for systemd's notify socket. Like
// systemd, it reads every datagram as it comes (a full socket would block
// the daemon's sd_notify calls); Next() hands them out in order.
class NotifySocket {
 public:
  explicit NotifySocket(std::string path);
  ~NotifySocket();
  NotifySocket(const NotifySocket&) = delete;
  NotifySocket& operator=(const NotifySocket&) = delete;

  bool bound() const { return bound_; }
  const std::string& path() const { return path_; }

  // The next datagram, or "" after `wait`.
  std::string Next(milliseconds wait);
  // Reads datagrams until one contains `needle` (returned) or `wait` passes ("").
  std::string WaitFor(const std::string& needle, milliseconds wait);

 private:
  void Read();

  std::string path_;
  int fd_ = -1;
  bool bound_ = false;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::thread reader_;
};

// Finished runs of `kind` ("full" or "partial") in a /v1/status answer.
std::size_t FinishedRuns(const json& status, const std::string& kind);

// The port a "daemon.started" line gives for `listener` ("scim", "admin");
// 0 when the line names none.
int ListenerPort(const std::string& line, const std::string& listener);

// A temporary directory, the account emulator, and idsyncd started from
// config_ with its output in dir_/idsyncd.log. TearDown kills a daemon
// still running and prints its log when the test failed.
class E2eTest : public ::testing::Test {
 protected:
  struct Account {
    std::string dir_prefix;  // the directory is <tmp>/<prefix>-<pid>-<n>
    std::string token;
    std::string seed_json;
    std::uint64_t random_seed = 0;
    std::string admin_token;  // for the admin API calls below
    std::string scim_token;   // for the SCIM calls below (none when empty)
  };

  // Makes dir_ and starts emulator_; call with ASSERT_NO_FATAL_FAILURE.
  void SetUpAccount(const Account& account);
  void TearDown() override;

  // The configuration's opening: the account (emulator_, the token from the
  // environment; `concurrency` 0 leaves the default) and the store in dir_.
  std::string AccountAndStoreYaml(int concurrency = 0) const;

  // Starts idsyncd --config config_. `env` ("NAME=value") is set in its
  // environment; systemd's notify variables are removed otherwise.
  // `max_files` > 0 sets its open-file limit, soft and hard.
  void LaunchDaemon(const std::vector<std::string>& env = {}, int max_files = 0);
  // Waits for this start's "daemon.started" line; "" when idsyncd exited or
  // `wait` passed (a failure is added).
  std::string WaitForStartLine(milliseconds wait = milliseconds(15000));
  // Reads scim_port_ and admin_port_ from this start's "daemon.started"
  // line; call with ASSERT_NO_FATAL_FAILURE.
  void ReadListenerPorts();
  // Sends `sig` and waits for the exit status (-1 when it did not exit in time).
  int StopDaemon(int sig = SIGTERM, milliseconds wait = milliseconds(30000));
  bool Alive() const;
  // What the daemon started last logged (restarts append to the same log).
  std::string Log() const;

  // An admin API call with admin_token.
  HttpAnswer Admin(const std::string& method, const std::string& path,
                   const std::string& body = "");
  // Waits until /v1/status shows `n` finished runs of `kind`.
  bool WaitForRuns(const std::string& kind, std::size_t n, milliseconds wait);

  // A SCIM call to /scim/v2`path` with scim_token, expected to be answered
  // `want`; the answer's body as JSON (null when it is not JSON).
  json ScimJson(const std::string& method, const std::string& path, const json& body, int want);
  // Creates an active SCIM user with `email` as its userName and work
  // address; its id, "" when it was not created (a failure is added).
  std::string ScimCreateUser(const std::string& email, const std::string& display_name);
  // Creates a SCIM group of `members` (user ids); its id, "" when it was not
  // created (a failure is added).
  std::string ScimCreateGroup(const std::string& name, const std::vector<std::string>& members);
  // PATCHes `user` into `group`'s members (`add`) or out of them.
  HttpAnswer ScimMembership(const std::string& group, const std::string& user, bool add);

  // Waits until `until` for a write the emulator applied after log entry
  // `after` to `endpoint` (e.g. "POST /users") and, when `email` is not
  // empty, for that address (lower-case); its seq, or 0 when none came.
  std::uint64_t WaitForWrite(std::uint64_t after, const std::string& endpoint,
                             SteadyClock::time_point until, const std::string& email = "") const;
  // The same, waiting `wait` from now.
  std::uint64_t WaitForWrite(std::uint64_t after, const std::string& endpoint, milliseconds wait,
                             const std::string& email = "") const {
    return WaitForWrite(after, endpoint, SteadyClock::now() + wait, email);
  }

  // The account's users by lower-case e-mail.
  std::map<std::string, json> AccountUsers() const;
  // The seq of the emulator's latest logged request (0: none yet).
  std::uint64_t LastSeq() const;
  // Every write the emulator applied landed once: no idempotency key twice;
  // and there was at least one.
  void ExpectEveryWriteOnce() const;

  fs::path dir_;
  std::string config_;
  std::string admin_token_;
  std::string scim_token_;
  std::unique_ptr<emulator::AccountEmulator> emulator_;
  pid_t pid_ = -1;
  int scim_port_ = 0;
  int admin_port_ = 0;
  std::uintmax_t log_offset_ = 0;
};

}  // namespace idsync::e2e
