// This replica's hold on the leader lease of a shared (PostgreSQL) store:
// taken at start, renewed every third of the lease on a thread of its own,
// released at a clean stop. While it holds the lease the store's fence is
// set at its epoch, so that each leader-only write checks, in its own
// transaction, that no other replica took over (store/lease.h).
//
// Two ways in. idsyncd campaigns (Campaign): a thread tries for the lease
// every third of it, and once it wins (the leader died, stopped, or was
// never there) this replica leads until it stops. `idsync apply` and
// `idsync store copy` take it at once (Start), waiting out a lease left by
// a process that died (at most a lease and a renewal) and refusing one
// that is being renewed. A leader that loses the lease (it could not renew
// in time, or was paused and another took over) logs leader.lost and has its
// writes refused by the fence; a campaigning one, once on_change says its
// leader's work has stopped, follows and contends again (leader.following),
// and otherwise reports itself unhealthy, so that systemd restarts it.
//
// Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
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
  // Called with (true, epoch) when this replica starts leading, and with
  // (false, epoch) when it stops. After a loss it returns once nothing runs
  // as leader any more: true, and a campaigning replica contends again;
  // false (something would not stop), and it stays unhealthy. The value is
  // not used otherwise.
  using OnChange = std::function<bool(bool leader, std::int64_t epoch)>;

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
  // Contends for the lease on a thread of its own until Retire/Stop: once it
  // wins it leads (sets the fence, calls on_change, renews), and after a
  // loss it contends again. Returns at once.
  void Campaign();
  // No more contending: a replica that does not lead now never will. One
  // that leads keeps renewing until Stop. Waits for an election or a loss
  // under way (its on_change call included) to end.
  void Retire();
  // Stops renewing and releases the lease.
  void Stop();

  ReplicaStatus status() const;
  // False from a loss of the lease until the leader's work has stopped;
  // for good when it would not stop, or when not campaigning (Start).
  bool healthy() const;

 private:
  // Campaign's thread: contends, renews while it leads, and contends again
  // after a loss.
  void Contend();
  // This replica now leads at `epoch`.
  void Elected(std::int64_t epoch);
  // Renews until Stop (nullopt) or until the lease is lost (why).
  std::optional<std::string> Renew();
  // After a loss: logs it and calls on_change. True when the leader's work
  // has stopped.
  bool Lost(const std::string& why);

  Logger& log_;
  OnChange on_change_;
  store::Store& store_;
  const std::string id_;
  const std::string holder_;
  const std::chrono::milliseconds lease_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool retired_ = false;
  bool changing_ = false;  // between winning or losing and on_change's return
  bool leader_ = false;
  bool lost_ = false;
  std::int64_t epoch_ = 0;
  std::thread renewer_;
};

// The replica id when server.replica_id is not set: "HOSTNAME-PID".
std::string DefaultReplicaId();

}  // namespace idsync::daemon
