// sd_notify through libsystemd. libsystemd opens a fresh datagram socket per
// message, so sends from the watchdog thread and the main thread need no lock.

#include "idsync/daemon/notify.h"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>

#include <systemd/sd-daemon.h>
#include <time.h>

namespace idsync::daemon {
namespace {

std::string OneLine(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

}  // namespace

Notifier::Notifier() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && socket[0] != '\0';
  uint64_t usec = 0;
  // > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID is unset or ours, so
  // a child that inherited the variables does not ping for its parent.
  if (enabled_ && sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    watchdog_timeout_ = std::chrono::microseconds(usec);
  }
}

Notifier::~Notifier() { StopWatchdog(); }

void Notifier::Send(const std::string& message) {
  if (!enabled_) return;
  // A failed notification is not worth stopping for: systemd either gets the
  // next one or restarts us through the watchdog, which is the right outcome.
  (void)sd_notify(0, message.c_str());
}

void Notifier::Ready(std::string_view status) {
  std::string msg = "READY=1";
  if (!status.empty()) msg += "\nSTATUS=" + OneLine(status);
  Send(msg);
}

void Notifier::SetStatus(std::string_view status) { Send("STATUS=" + OneLine(status)); }

void Notifier::Reloading() {
  // MONOTONIC_USEC lets systemd (Type=notify-reload) tell this reload from an
  // earlier one; older systemd ignores it.
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const std::uint64_t usec = static_cast<std::uint64_t>(ts.tv_sec) * 1000000u +
                             static_cast<std::uint64_t>(ts.tv_nsec) / 1000u;
  Send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

void Notifier::Stopping() { Send("STOPPING=1"); }

void Notifier::Ping() { Send("WATCHDOG=1"); }

void Notifier::StartWatchdog(std::function<bool()> alive) {
  if (watchdog_timeout_.count() <= 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (watchdog_.joinable()) return;
  stop_ = false;
  watchdog_ = std::thread(&Notifier::WatchdogLoop, this, std::move(alive));
}

void Notifier::StopWatchdog() {
  std::thread t;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    t = std::move(watchdog_);
  }
  cv_.notify_all();
  if (t.joinable()) t.join();
}

void Notifier::WatchdogLoop(std::function<bool()> alive) {
  const auto period = watchdog_timeout_ / 2;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    lock.unlock();
    if (!alive || alive()) Ping();
    lock.lock();
    cv_.wait_for(lock, period, [this] { return stop_; });
  }
}

}  // namespace idsync::daemon
