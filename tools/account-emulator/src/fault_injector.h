// Decides, per contract request, which injected fault (if any) it meets:
// latency, a dropped connection, the request-rate limit, a 429 or a 5xx.
// Draws come from one seeded generator, so a sequential test sees the same
// faults on every run. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>

#include "idsync/emulator/emulator.h"

namespace idsync::emulator {

// The most specific rate for an endpoint: the endpoint itself, then
// "<METHOD> *", then "*"; 0 when none matches.
double RateFor(const RateTable& table, const std::string& endpoint);

class FaultInjector {
 public:
  enum class Kind { kNone, kDropBefore, kRateLimit, kThrottle, kError };
  struct Decision {
    Kind kind = Kind::kNone;
    int status = 0;               // kRateLimit / kThrottle: 429; kError: the 5xx
    int retry_after_seconds = 0;  // kRateLimit / kThrottle
    bool drop_after = false;      // when kNone: drop once processed
  };

  FaultInjector(const Faults& faults, std::uint64_t seed);

  Faults faults() const;
  // Replaces the faults; the rate-limit bucket starts full again.
  void Set(const Faults& faults);

  // How long to hold this request before anything else.
  std::chrono::milliseconds Latency();
  // The fault for a request to `endpoint`, decided at `now`.
  Decision Decide(const std::string& endpoint, std::chrono::steady_clock::time_point now);

 private:
  bool Draw(double probability);  // needs mu_

  mutable std::mutex mu_;
  Faults faults_;
  std::mt19937_64 rng_;
  double tokens_ = 0;
  std::chrono::steady_clock::time_point refilled_{};
};

}  // namespace idsync::emulator
