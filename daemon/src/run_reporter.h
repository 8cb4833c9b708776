// What the daemon tells operators about its runs: the log lines and metrics of
// each finished run (its result from RunResultOf, as the run log records it),
// the account's request counters, the outbox depth, each source's read, and
// the systemd STATUS= line. It also remembers what /readyz and /v1/status ask
// for: a store that could not be written, and the last run's line.
//
// Thread-safe: the run threads report while admin workers read.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/daemon/inputs.h"
#include "idsync/daemon/log.h"
#include "idsync/daemon/metrics.h"
#include "idsync/daemon/notify.h"
#include "idsync/daemon/sync.h"
#include "idsync/store/store.h"

#include "generation.h"

namespace idsync::daemon {

class RunReporter {
 public:
  // Every reference must outlive the reporter; `now`: wall-clock milliseconds.
  RunReporter(Logger& log, Metrics& metrics, Notifier& notifier, store::Store& store, NowFn now);

  // A run of `kind` ("full", "partial") ended after `seconds`: logs it,
  // counts it under RunResultOf(report), updates the outbox gauges and the
  // STATUS= line. A store failure (kStageStore) is kept for /readyz, but
  // not a write the fence refused: the store is fine, the lease moved on.
  void Finished(const std::string& kind, const Result<ApplyReport>& report, double seconds);

  // A full run read its sources: the store answered (the store problem is
  // cleared), each source's read is counted, and each failing one logged.
  void SourcesRead(const std::vector<SourceStatus>& states);

  // One outbox operation ended (ApplyOptions::operation_done).
  void Operation(const std::string& kind, const char* result);

  // Counts the requests `generation`'s account client made since last asked.
  void AccountRequests(Generation& generation);

  // Why the store cannot be written ("" when it can), as the last run found.
  std::string StoreProblem() const;
  // This replica stopped leading: what its runs found no longer says
  // anything about it (a follower runs none), so the store problem is
  // cleared.
  void LeadershipEnded();

  // "last full run ok at 10:00:00Z: 3 applied, 0 failed"; "" before the first.
  std::string LastRun() const;

 private:
  double UnixNow() const;
  void ReportOutbox();

  Logger& log_;
  Metrics& metrics_;
  Notifier& notifier_;
  store::Store& store_;
  NowFn now_;
  mutable std::mutex mu_;
  std::string store_problem_;  // guarded by mu_
  std::string last_run_;       // guarded by mu_
};

}  // namespace idsync::daemon
