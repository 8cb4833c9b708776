// On a store several replicas share: keeps this replica's SCIM view
// following what the others write. A thread of its own waits for the
// store's signal of a write (PostgreSQL's NOTIFY, on a connection of its
// own) or for the poll interval, whichever comes first, and then catches
// the view up (ScimFront::CatchUp). Polling catches what a signal lost
// during a reconnect did not bring.
//
// Thread-safe: Start and Stop from the controller's thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <thread>

#include "idsync/daemon/log.h"
#include "idsync/store/store.h"

#include "scim_front.h"

namespace idsync::daemon {

class ScimFollower {
 public:
  // Every reference must outlive the follower. `after_each` (may be empty)
  // is called on the follower's thread after each catch-up: the leader
  // takes the runs other replicas asked of it there.
  ScimFollower(Logger& log, store::Store& store, ScimFront& front,
               std::function<void()> after_each = nullptr,
               std::chrono::milliseconds poll = std::chrono::milliseconds(500));
  ~ScimFollower();  // Stop()s
  ScimFollower(const ScimFollower&) = delete;
  ScimFollower& operator=(const ScimFollower&) = delete;

  void Start();
  // Ends the thread (within a poll interval).
  void Stop();

 private:
  void Loop();

  Logger& log_;
  store::Store& store_;
  ScimFront& front_;
  std::function<void()> after_each_;
  const std::chrono::milliseconds poll_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace idsync::daemon
