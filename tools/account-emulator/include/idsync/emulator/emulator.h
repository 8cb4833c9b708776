// The account emulator: a real HTTP server that implements the Account API
// (contracts/account-api.md) strictly, for idsync's tests, benchmarks and the
// demo. State lives in memory (optionally persisted to a file after every
// change); faults (5xx, 429, latency, dropped connections, a request-rate
// limit) are injected on demand; every API request is logged for tests.
//
// Besides the contract's endpoints it serves admin endpoints under
// /_emulator/ (no faults, not logged, guarded by admin_token when set):
//   GET|PUT /_emulator/faults        the Faults below, as JSON
//   GET  /_emulator/requests[?after=SEQ]  {"requests": [LoggedRequest...]}
//   POST /_emulator/reset-log
//   GET|PUT /_emulator/state         {"users", "projects", "catalog"}; PUT
//                                    replaces the account (audit and
//                                    idempotency keys start afresh)
//   POST /_emulator/users/{id}/accept  invited -> active
//   POST /_emulator/clock            {"advance_seconds": N}
//   PUT  /_emulator/tokens           {"token": T, "read_only_token": R}
//
// Thread-safe: every method may be called from any thread while it serves.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "idsync/base/status.h"

namespace idsync::emulator {

// Added latency: a uniform draw in [min, max]; fixed when min == max.
struct Latency {
  std::chrono::milliseconds min{0};
  std::chrono::milliseconds max{0};
};

// Probability (0..1) per endpoint. Keys: an endpoint as the contract names it
// ("GET /catalog", "GET /projects", "GET /users", "GET /users/{id}",
// "POST /users", "PATCH /users/{id}", "DELETE /users/{id}", "GET /audit"),
// a method ("POST *"), or "*". The most specific key that matches wins.
using RateTable = std::map<std::string, double>;

// Faults applied to contract endpoints, in this order: latency, drop before
// processing, the request-rate limit, injected 429, injected 5xx, then (after
// the request was processed and its change applied) drop after processing.
struct Faults {
  RateTable error_rate;  // 5xx, drawn from error_statuses
  std::vector<int> error_statuses{500, 502, 503};
  RateTable throttle_rate;      // 429 with Retry-After
  int retry_after_seconds = 1;  // for injected 429s
  Latency latency;
  RateTable drop_before_rate;        // socket closed, request never processed
  RateTable drop_after_rate;         // processed (change applied), answer lost
  double rate_limit_per_second = 0;  // across all clients; 0: no limit
  double rate_limit_burst = 0;       // bucket size; 0: one second's worth
};

// Parses the JSON form of Faults (the --faults flag, PUT /_emulator/faults):
// {"error_rate": {"POST /users": 0.2, "*": 0.1} or a number (= {"*": n}),
//  "error_statuses": [500, 503], "throttle_rate": ..., "retry_after_seconds": 1,
//  "latency_ms": 200 or {"min": 100, "max": 300}, "drop_before_rate": ...,
//  "drop_after_rate": ..., "rate_limit_per_second": 200, "rate_limit_burst": 10}.
// Absent fields keep their defaults. kInvalidArgument naming the bad field
// (unknown field or endpoint key, rate outside 0..1, negative value).
Result<Faults> ParseFaults(std::string_view json);
// The JSON form, every field present.
std::string FaultsToJson(const Faults& faults);

// One contract request as the emulator saw it.
struct LoggedRequest {
  std::uint64_t seq = 0;        // 1, 2, ... in the order answers were decided
  std::string time;             // RFC 3339 with milliseconds, emulator clock
  std::string method;           // "POST"
  std::string path;             // as sent, with the query string
  std::string endpoint;         // "PATCH /users/{id}"; empty for an unknown path
  std::string idempotency_key;  // empty when none was sent
  int status = 0;        // the answer (also when dropped after processing); 0: dropped before
  bool replay = false;   // answered from the idempotency cache, nothing changed
  bool dropped = false;  // the connection was closed with no answer
  bool applied = false;  // the request changed the account
  std::string fault;     // "", "drop_before", "rate_limit", "throttle", "error", "drop_after"
  std::string user_id;   // the user created or addressed, when known
  std::string email;     // that user's address, for a write that created, changed or deleted it
};

struct EmulatorOptions {
  std::string host = "127.0.0.1";
  int port = 0;                 // 0: any free port
  std::string token;            // bearer token for the API; empty: no auth
  std::string read_only_token;  // also accepted, but writes get 403; empty: none
  std::string admin_token;      // bearer token for /_emulator/; empty: none needed
  // The starting account: {"users": [...], "projects": [...], "catalog": {...}},
  // the offline account state's shape (users may omit id, status, created_at).
  // Give at most one of seed_json (the text) and seed_file (a path).
  std::string seed_json;
  std::string seed_file;
  // Persist the account (with its audit trail and idempotency keys) to this
  // file after every change, synchronously: written to FILE.tmp, fsynced,
  // renamed. Costly for big accounts under heavy writes. Loaded at start
  // when it exists, taking precedence over the seed.
  std::string state_file;
  Faults faults;
  std::uint64_t random_seed = 0;  // user ids and fault draws; 0: from the OS
  int threads = 64;  // connection threads, at least 16 (an open keep-alive connection holds one)
  // The emulator clock (timestamps, idempotency-key expiry), called from any
  // serving thread. Unset: the system clock.
  std::function<std::chrono::system_clock::time_point()> clock;
  bool verbose = false;                       // one line per request to stderr
  std::size_t request_log_limit = 1'000'000;  // oldest entries dropped beyond it
};

class AccountEmulator {
 public:
  // Binds, loads the seed or state file and starts serving. kInvalidArgument
  // for a bad seed, state file or option; kUnavailable when it cannot bind.
  static Result<std::unique_ptr<AccountEmulator>> Start(EmulatorOptions options);

  ~AccountEmulator();  // Stop()s
  AccountEmulator(const AccountEmulator&) = delete;
  AccountEmulator& operator=(const AccountEmulator&) = delete;

  int port() const;
  std::string base_url() const;  // "http://127.0.0.1:PORT"

  Faults faults() const;
  void SetFaults(const Faults& faults);

  // The request log, oldest first; only entries with seq > after.
  std::vector<LoggedRequest> Requests(std::uint64_t after = 0) const;
  void ResetLog();

  // {"users", "projects", "catalog"}, as GET /_emulator/state answers.
  std::string StateJson() const;
  // Replaces the account like PUT /_emulator/state. kInvalidArgument on a bad document.
  Status SetStateJson(std::string_view json);
  // Turns an invited user active. kNotFound when there is no such user.
  Status AcceptInvite(const std::string& user_id);
  // Moves the emulator clock forward (idempotency keys expire after 24 h).
  void AdvanceClock(std::chrono::seconds by);
  // Replaces the accepted tokens (empty token: no auth).
  void SetTokens(std::string token, std::string read_only_token);

  // Stops serving: aborts open connections and joins every thread. Idempotent.
  void Stop();

 private:
  struct Impl;
  explicit AccountEmulator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace idsync::emulator
