// The daemon's process (as in Kea, the part the controller starts, reloads
// and stops): the store with the run lock, the SCIM listener, the admin
// listener, two run threads and one change-feed thread per watched source.
//
// Full runs (on schedule, after a reload, POST /v1/sync) run one at a time on
// the bulk thread. SCIM writes and followed changes name the people they
// touched; those are batched for a few milliseconds and reconciled alone (a
// partial run) on the interactive thread, also while a full run is planning
// or sending. Both send through one executor (engine/executor.h): a partial
// run's writes go out ahead of the full run's queued ones, within the same
// account concurrency, and the two never write one person at once.
//
// The parts (daemon/src): a Scheduler runs the two run threads, a
// FeedSupervisor the change feeds, a SnapshotCache keeps the directories'
// latest snapshots for partial runs, a ScimFront the SCIM service swapped on
// reload, a RunReporter the logs, metrics and STATUS= line of finished runs,
// and DaemonAdmin answers the admin API. This class wires them together.
//
// Thread-safety: Start, Reload and Stop are called from the controller's
// thread only; everything else runs on the process's own threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "idsync/account/account_client.h"
#include "idsync/base/status.h"
#include "idsync/config/config.h"
#include "idsync/daemon/log.h"
#include "idsync/daemon/metrics.h"
#include "idsync/daemon/notify.h"
#include "idsync/store/store.h"

namespace idsync::daemon {

// Opens the store a configuration names.
using StoreOpener =
    std::function<Result<std::unique_ptr<store::Store>>(const config::Config& config)>;
// Makes the account client of a configuration (one per Start and Reload).
using AccountFactory = std::function<Result<std::unique_ptr<account::AccountClient>>(
    const config::AccountConfig& config)>;

struct ProcessOptions {
  // How long SCIM-triggered changes are collected before a partial run.
  std::chrono::milliseconds batch_delay{5};
  // How long Stop waits for a run in flight to park its operations.
  std::chrono::milliseconds stop_grace{std::chrono::seconds(20)};
  // After a failed full run, the next one starts after at most this long.
  std::chrono::milliseconds retry_after_failure{std::chrono::seconds(60)};

  // What the process is given from outside, replaceable by tests. Unset:
  // store::Store::Open(config.store), account::AccountClient::Create, and
  // the system clock (milliseconds since the Unix epoch: what runs, the
  // store, SCIM and the metrics record; schedules use the steady clock).
  StoreOpener open_store;
  AccountFactory make_account;
  std::function<std::int64_t()> now;
};

class Process {
 public:
  // `logger`, `metrics` and `notifier` must outlive the process.
  Process(Logger& logger, Metrics& metrics, Notifier& notifier, ProcessOptions options = {});
  ~Process();  // Stop()s
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // Opens the store, takes the run lock, binds the listeners and starts the
  // threads; the first full run starts at once. kFailedPrecondition when the
  // run lock is held (another idsyncd, or an `idsync apply` in progress);
  // kUnavailable when the store cannot be opened or a listener cannot bind;
  // kInvalidArgument for an account or SCIM setting that cannot be used.
  // Nothing keeps running on error.
  Status Start(const config::Config& config);

  // Swaps in a new configuration that has already passed validation: new
  // rules, sources, tokens, limits and account settings take effect for the
  // next run; SCIM requests keep being answered throughout (the listener is
  // kept; requests wait while the handler is swapped). kFailedPrecondition,
  // with the old configuration still in force, when the new one changes what
  // needs a restart (store, server.listen, server.admin_listen, TLS files).
  Status Reload(const config::Config& config);

  // Stops accepting (both listeners), asks the run in flight to park what it
  // has not sent (sent writes finish; unsent ones stay in the outbox to be
  // planned afresh), waits for the threads, releases the run lock. True
  // when everything stopped within the grace period.
  bool Stop();

  // True while the threads are healthy (for the watchdog).
  bool Alive() const;

  // The ports the listeners bound, in the order configured (tests).
  std::vector<int> scim_ports() const;
  std::vector<int> admin_ports() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace idsync::daemon
