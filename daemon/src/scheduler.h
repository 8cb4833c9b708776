// The daemon's two run threads. The bulk thread runs full runs, one at a time:
// at once after Start, then every source interval (the shortest of the
// directory sources', plus its jitter), on request (POST /v1/sync, a reload),
// and after a failed run within options.retry_after_failure. The interactive
// thread runs partial runs, one at a time and also while a full run plans or
// sends: the people SCIM writes and followed changes touched, batched for
// options.batch_delay, once every directory source has a snapshot.
//
// Thread-safe: Enqueue, RequestFullRun, Wake and the accessors may be called
// from any thread; Start, RequestStop and Join from the controller's thread.
// Lock order: the scheduler's lock is taken before Generations' and the
// SnapshotCache's, never after.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/daemon/log.h"
#include "idsync/daemon/process.h"
#include "idsync/daemon/status.h"
#include "idsync/daemon/sync.h"
#include "idsync/engine/executor.h"
#include "idsync/store/store.h"

#include "generation.h"
#include "run_reporter.h"
#include "snapshot_cache.h"

namespace idsync::daemon {

class Scheduler {
 public:
  // Every reference must outlive the scheduler; `now`: wall-clock
  // milliseconds for the runs.
  Scheduler(const ProcessOptions& options, NowFn now, Logger& log, Generations& generations,
            store::Store& store, engine::Executor& executor, SnapshotCache& snapshots,
            RunReporter& reporter);
  ~Scheduler();  // the threads must have been joined (Join)
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Starts both threads; the first full run starts at once. Again after a
  // RequestStop and a successful Join (a replica that leads again).
  void Start();

  // People to reconcile in the next partial run (ASCII lower-cased here).
  void Enqueue(const std::vector<std::string>& emails);

  // A full run now, or after the one in progress; with `force`, one that
  // passes the safety limits (as `idsync apply --force`). kUnavailable when
  // stopping.
  Status RequestFullRun(bool force = false);

  // Something a waiting partial run needs has arrived (a first snapshot).
  void Wake();

  // Asks both threads to end: no run starts any more, and the one in flight
  // is cancelled (it parks what it has not sent). Does not wait.
  void RequestStop();

  // Waits up to `grace` for both threads to end, then joins them. False
  // when they did not end in time (they are left running).
  bool Join(std::chrono::milliseconds grace);

  // True while a thread has not been joined (Start without a successful Join).
  bool joinable() const;

  // True while neither thread has ended (for the watchdog).
  bool Alive() const;

  // What /v1/status shows under "daemon" (last_run left empty).
  DaemonStatus State() const;

 private:
  using Clock = std::chrono::steady_clock;

  void BulkLoop();
  void InteractiveLoop();
  void FullRun(bool force);
  // After each full run: forgets finished history older than
  // retention.runs, keeping the kRunsAlwaysKept latest runs.
  void PruneHistory(const config::Config& config);
  static constexpr int kRunsAlwaysKept = 100;
  void PartialRun(std::vector<std::string> emails);
  // The options of a run from `source` ("full-run", "partial") in `generation`.
  ApplyOptions RunOptions(const std::string& source, int priority, Generation& generation);
  // The time to the next scheduled full run (mu_ held: it draws the jitter).
  Clock::duration FullInterval(const config::Config& config);
  // True while the configuration is not loaded or some directory source has
  // no snapshot yet (mu_ held).
  bool DirectoryMissing() const;

  const ProcessOptions options_;
  NowFn now_;
  Logger& log_;
  Generations& generations_;
  store::Store& store_;
  engine::Executor& executor_;
  SnapshotCache& snapshots_;
  RunReporter& reporter_;
  RunWindowCounts window_counts_;  // of the partial runs in the safety window

  std::atomic<bool> cancel_run_{false};
  std::thread bulk_thread_;         // full runs
  std::thread interactive_thread_;  // partial runs

  // Everything below is guarded by mu_.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool sync_requested_ = false;
  bool force_requested_ = false;  // the next requested full run passes the safety limits
  bool full_running_ = false;
  bool partial_running_ = false;
  bool bulk_thread_done_ = false;
  bool interactive_thread_done_ = false;
  std::set<std::string> pending_;  // people to reconcile in the next partial run
  Clock::time_point first_pending_{};
  Clock::time_point next_full_{};
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace idsync::daemon
