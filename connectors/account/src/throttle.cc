#include "throttle.h"

#include <algorithm>
#include <cmath>

namespace idsync::account {

RateLimiter::RateLimiter(double rate, int burst, NowFn now, SleepFn sleep)
    : rate_(rate), burst_(std::max(1, burst)), now_(std::move(now)), sleep_(std::move(sleep)) {}

void RateLimiter::Acquire() {
  if (!(rate_ > 0)) return;
  double wait_seconds = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Clock::time_point t = now_();
    if (!started_) {
      started_ = true;
      tokens_ = burst_;
      last_ = t;
    }
    if (t > last_) {
      double elapsed = std::chrono::duration<double>(t - last_).count();
      tokens_ = std::min(burst_, tokens_ + elapsed * rate_);
      last_ = t;
    }
    // Reserve the token now, even when it is not there yet: each waiter is
    // promised its own future token, so threads queue in arrival order and the
    // average rate holds without anyone polling.
    tokens_ -= 1;
    if (tokens_ < 0) wait_seconds = -tokens_ / rate_;
  }
  // Whole milliseconds, rounded to nearest: above 1000/s most waits round to
  // zero, and the debt they leave in tokens_ turns into a later 1 ms sleep.
  auto micros = static_cast<std::int64_t>(std::llround(wait_seconds * 1e6));
  std::chrono::milliseconds wait((micros + 500) / 1000);
  if (wait.count() > 0) sleep_(wait);
}

void InFlightLimit::Acquire() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return free_ > 0; });
  --free_;
}

void InFlightLimit::Release() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++free_;
  }
  cv_.notify_one();
}

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max,
                 std::uint64_t seed)
    : initial_(std::max(initial, std::chrono::milliseconds(1))),
      max_(std::max(max, initial_)),
      rng_(seed != 0 ? seed : std::random_device{}()) {}

std::chrono::milliseconds Backoff::Delay(int retry) {
  // Doubling stops at the cap, so large retry counts cannot overflow.
  std::chrono::milliseconds cap = initial_;
  for (int i = 0; i < retry && cap < max_; ++i) cap *= 2;
  cap = std::min(cap, max_);
  std::lock_guard<std::mutex> lock(mu_);
  std::uniform_int_distribution<std::int64_t> draw(0, cap.count());
  return std::chrono::milliseconds(draw(rng_));
}

}  // namespace idsync::account
