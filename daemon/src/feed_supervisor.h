// The change-feed threads: one per watched directory source, following its
// changes (syncrepl, DirSync, USN, modifyTimestamp) from where the last feed
// stopped (its cursor is kept in the store). Each change replaces the
// source's snapshot in the SnapshotCache and names the people it touched to
// the Scheduler for a partial run. A feed that cannot follow its source makes
// the source failing (NoteFeedFailed) until it delivers again
// (NoteFeedRecovered); full runs go on meanwhile.
//
// Thread-safe: Start and Stop are called from the controller's thread; the
// feed threads share only the set of failing feeds (under a lock).
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "idsync/config/config.h"
#include "idsync/daemon/log.h"
#include "idsync/daemon/metrics.h"
#include "idsync/daemon/sync.h"
#include "idsync/mapping/ports.h"
#include "idsync/store/store.h"

#include "scheduler.h"
#include "snapshot_cache.h"

namespace idsync::daemon {

class FeedSupervisor {
 public:
  // Every reference must outlive the supervisor; `now`: wall-clock
  // milliseconds (source health, metrics).
  FeedSupervisor(Logger& log, Metrics& metrics, store::Store& store, NowFn now,
                 SnapshotCache& snapshots, Scheduler& scheduler);
  ~FeedSupervisor();  // Stop()s
  FeedSupervisor(const FeedSupervisor&) = delete;
  FeedSupervisor& operator=(const FeedSupervisor&) = delete;

  // Starts a feed thread for every source of `config` with `watch` set.
  void Start(const config::Config& config);

  // Interrupts every feed and joins its thread. Blocks for at most about a
  // second per feed (a feed waits for changes in one-second steps).
  void Stop();

 private:
  struct Feed;
  void FeedLoop(Feed& feed, const config::SourceConfig& source);
  void ApplyChange(const config::SourceConfig& source, mapping::SourceChange change);
  void FeedFailed(const config::SourceConfig& source, const std::string& error);
  void FeedRecovered(const config::SourceConfig& source);
  double UnixNow() const;

  Logger& log_;
  Metrics& metrics_;
  store::Store& store_;
  NowFn now_;
  SnapshotCache& snapshots_;
  Scheduler& scheduler_;
  std::vector<std::unique_ptr<Feed>> feeds_;  // controller thread only
  std::mutex mu_;
  std::set<std::string> failing_;  // guarded by mu_; sources whose feed failed last
};

}  // namespace idsync::daemon
