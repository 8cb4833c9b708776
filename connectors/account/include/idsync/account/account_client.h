// The Account API client: the account (contracts/account-api.md) over HTTPS
// through Poco, as a mapping::AccountDirectory.
//
// It sends the bearer token, verifies TLS (CA file or the system store) unless
// told not to, reads every page of GET /users, and retries transient failures
// (5xx, timeouts, dropped connections) with exponential backoff and jitter,
// honouring 429's Retry-After: a write until account.retry_for runs out, a
// read (catalog, projects, users) until account.read_retry_for does. Each
// attempt has account.timeout for connect, send and receive together, and an
// answer may hold at most ClientOptions::max_response_bytes. It keeps at
// most account.concurrency requests in flight and at most
// account.max_requests_per_second per second, across all threads. A
// watchdog thread per client cuts attempts that overrun their time.
// Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "idsync/base/status.h"
#include "idsync/config/config.h"
#include "idsync/mapping/ports.h"

namespace idsync::account {

// What a call is about to retry, and why, before it waits.
struct RetryNotice {
  std::string request;  // method and URL, e.g. "GET https://a.example/api/v1/projects"
  std::string error;    // why the last attempt failed
  int attempts = 0;     // made so far
  std::chrono::milliseconds delay{0};  // until the next attempt
  std::chrono::milliseconds left{0};   // until the call gives up
  bool write = false;  // a write (account.retry_for), else a read (account.read_retry_for)
};

struct ClientOptions {
  // Time and sleep, replaceable by tests. Unset: the steady clock and a real sleep.
  std::function<std::chrono::steady_clock::time_point()> now;
  std::function<void(std::chrono::milliseconds)> sleep;
  // First retry delay and the cap; each retry doubles, with full jitter.
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{std::chrono::seconds(30)};
  std::uint64_t jitter_seed = 0;  // 0: seeded from the OS
  int page_size = 1000;           // GET /users limit
  // Called once per attempt with the HTTP status the account answered, or 0
  // when there was no answer (connection, TLS or timeout), from the thread
  // that made the request; for metrics. Unset: not called.
  std::function<void(int status)> on_response;
  // Called before each wait to retry, from the thread that made the call;
  // for telling people what is being retried. Unset: not called.
  std::function<void(const RetryNotice&)> on_retry;
  // The largest answer body accepted (a page of GET /users included). A
  // larger one fails the call at once with kResourceExhausted.
  std::uint64_t max_response_bytes = std::uint64_t{64} << 20;
};

// Request counts by HTTP status (0 for a transport failure), for metrics.
struct ClientCounters {
  std::int64_t requests = 0;
  std::int64_t retries = 0;
  std::int64_t status_2xx = 0, status_4xx = 0, status_429 = 0, status_5xx = 0, transport = 0;
};

class AccountClient : public mapping::AccountDirectory {
 public:
  // Checks the configuration (URL scheme and host, CA file readable) without
  // connecting. kInvalidArgument naming the problem.
  static Result<std::unique_ptr<AccountClient>> Create(const config::AccountConfig& config,
                                                       ClientOptions options = {});

  virtual ClientCounters counters() const = 0;

  // For shutdown: a call waiting to retry gives up at once, a request on
  // the wire is cut (its connection shut down), and calls return
  // kUnavailable ("idsync is stopping") instead of starting another
  // attempt. Permanent for this client. Thread-safe.
  virtual void Interrupt() = 0;
};

}  // namespace idsync::account
