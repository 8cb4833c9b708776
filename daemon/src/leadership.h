// This replica's hold on the leader lease of a shared (PostgreSQL) store:
// taken at start, renewed every third of the lease on a thread of its own,
// released at a clean stop. While it holds the lease the store's fence is
// set at its epoch, so that each leader-only write checks, in its own
// transaction, that no other replica took over (store/lease.h).
//
// Until replicas that follow a leader exist, a second idsyncd on the same
// store does not start: TakeAtStart waits out a lease left by a process
// that died (at most a lease and a renewal), and refuses one that is being
// renewed. A leader that loses the lease (it could not renew in time, or
// was paused and another took over) logs leader.lost, has its writes
// refused by the fence, and reports itself not alive, so that systemd's
// watchdog restarts it.
//
// Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "idsync/base/status.h"
#include "idsync/daemon/log.h"
#include "idsync/store/store.h"

namespace idsync::daemon {

// What /v1/status shows of this replica.
struct ReplicaStatus {
  std::string id;
  bool leader = false;
  std::int64_t epoch = 0;
};

class Leadership {
 public:
  // Called with (leader, epoch) when this replica starts or stops leading.
  using OnChange = std::function<void(bool leader, std::int64_t epoch)>;

  // `replica_id` names this replica (server.replica_id, or host name and
  // pid; "apply" for the CLI); the lease's holder adds the pid and a random
  // suffix, so that no two processes ever hold it under one name.
  Leadership(Logger& log, store::Store& store, std::string replica_id,
             std::chrono::milliseconds lease, OnChange on_change = nullptr);
  ~Leadership();  // Stop()s
  Leadership(const Leadership&) = delete;
  Leadership& operator=(const Leadership&) = delete;

  // Takes the lease, waiting up to a lease and a renewal for one left by a
  // process that is gone, then sets the fence and starts renewing.
  // kFailedPrecondition naming the holder when another process keeps
  // renewing it (an idsyncd, or "apply/PID/..." for `idsync apply`); the
  // store's errors as they are.
  Status Start();
  // Stops renewing, clears the fence and releases the lease.
  void Stop();

  ReplicaStatus status() const;
  // False once the lease was lost.
  bool healthy() const;

 private:
  void Renew();
  void Lost(const std::string& why);

  Logger& log_;
  OnChange on_change_;
  store::Store& store_;
  const std::string id_;
  const std::string holder_;
  const std::chrono::milliseconds lease_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool leader_ = false;
  bool lost_ = false;
  std::int64_t epoch_ = 0;
  std::thread renewer_;
};

// The replica id when server.replica_id is not set: "HOSTNAME-PID".
std::string DefaultReplicaId();

}  // namespace idsync::daemon
