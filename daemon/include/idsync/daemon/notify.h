// Notifier: tells systemd how idsyncd is doing (sd_notify): READY=1 once
// serving, STATUS= lines, RELOADING=1 / STOPPING=1, and WATCHDOG=1 pings from
// a thread at half of WATCHDOG_USEC while a liveness check passes.
//
// Everything is a no-op when NOTIFY_SOCKET is unset (run by hand, in tests),
// and the watchdog only runs when systemd asked for it for this process
// (WATCHDOG_USEC set and WATCHDOG_PID unset or ours). Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace idsync::daemon {

class Notifier {
 public:
  // Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID now.
  Notifier();
  // Stops the watchdog thread.
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // True when NOTIFY_SOCKET is set (messages go somewhere).
  bool enabled() const { return enabled_; }

  // READY=1, with STATUS=`status` when not empty.
  void Ready(std::string_view status = {});
  // STATUS=`status` (one line; newlines become spaces).
  void SetStatus(std::string_view status);
  // RELOADING=1 (with MONOTONIC_USEC=); follow with Ready() when done.
  void Reloading();
  // STOPPING=1.
  void Stopping();
  // One WATCHDOG=1 now.
  void Ping();

  // The watchdog period systemd asked for (WATCHDOG_USEC), or zero when the
  // watchdog is off for this process.
  std::chrono::microseconds watchdog_timeout() const { return watchdog_timeout_; }

  // Starts a thread sending WATCHDOG=1 every watchdog_timeout()/2 while
  // `alive()` returns true (a false skips that ping, so systemd restarts a
  // stuck daemon). Does nothing when the watchdog is off. `alive` runs on the
  // watchdog thread and must not block for long.
  void StartWatchdog(std::function<bool()> alive);
  // Stops and joins the watchdog thread; safe to call twice.
  void StopWatchdog();

 private:
  void Send(const std::string& message);
  void WatchdogLoop(std::function<bool()> alive);

  bool enabled_ = false;
  std::chrono::microseconds watchdog_timeout_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread watchdog_;
};

}  // namespace idsync::daemon
