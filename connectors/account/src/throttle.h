// Pacing for the Account API client: a token bucket shared by all threads
// (requests per second), a counting limit on requests in flight, and the
// retry delay (exponential backoff with full jitter). Time and sleep come in
// as functions so tests can drive them. All three are thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <random>

namespace idsync::account {

using Clock = std::chrono::steady_clock;
using NowFn = std::function<Clock::time_point()>;
using SleepFn = std::function<void(std::chrono::milliseconds)>;

// At most `rate` acquisitions per second on average, `burst` at once after
// an idle spell. A rate of zero or below means no limit.
class RateLimiter {
 public:
  RateLimiter(double rate, int burst, NowFn now, SleepFn sleep);

  // Takes one token, sleeping (outside the lock) until it is due.
  void Acquire();

 private:
  const double rate_;
  const double burst_;
  const NowFn now_;
  const SleepFn sleep_;
  std::mutex mu_;
  bool started_ = false;
  double tokens_ = 0;  // below zero: tokens already promised to sleepers
  Clock::time_point last_;
};

// At most `limit` holders at once; Acquire blocks until a slot is free.
class InFlightLimit {
 public:
  explicit InFlightLimit(int limit) : free_(limit < 1 ? 1 : limit) {}

  void Acquire();
  void Release();

  // Holds one slot for its lifetime.
  class Slot {
   public:
    explicit Slot(InFlightLimit& limit) : limit_(limit) { limit_.Acquire(); }
    ~Slot() { limit_.Release(); }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;

   private:
    InFlightLimit& limit_;
  };

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int free_;
};

// Retry delays: the n-th retry (0-based) waits a uniform draw from
// [0, min(max, initial * 2^n)].
class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, std::uint64_t seed);

  std::chrono::milliseconds Delay(int retry);

 private:
  const std::chrono::milliseconds initial_;
  const std::chrono::milliseconds max_;
  std::mutex mu_;
  std::mt19937_64 rng_;
};

}  // namespace idsync::account
