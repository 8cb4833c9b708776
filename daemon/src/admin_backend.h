// The daemon's answers to the admin API (AdminBackend): POST /v1/sync asks the
// Scheduler for a full run (a follower asks the leader, through the store); /v1/status is `idsync
// status --json` with the daemon's own state; /v1/plan plans against the configuration in force
// without sending; /v1/explain maps one person from the latest snapshots;
// /readyz says whether the configuration is loaded and the store writable.
//
// Thread-safe (httpd workers call it at once): it holds no state of its own.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/daemon/admin.h"
#include "idsync/daemon/sync.h"
#include "idsync/mapping/rules.h"
#include "idsync/store/store.h"

#include "generation.h"
#include "leadership.h"
#include "run_reporter.h"
#include "scheduler.h"
#include "snapshot_cache.h"

namespace idsync::daemon {

class DaemonAdmin : public AdminBackend {
 public:
  // Every reference must outlive the backend; `now`: wall-clock milliseconds.
  // `replica` says what this replica is (id, leader, epoch) when asked.
  DaemonAdmin(Generations& generations, store::Store& store, SnapshotCache& snapshots,
              Scheduler& scheduler, RunReporter& reporter, NowFn now,
              std::function<ReplicaStatus()> replica);

  Status RequestSync(bool force) override;
  Result<std::string> StatusJson() override;
  Result<std::string> PlanJson() override;
  Result<std::string> ExplainJson(const std::string& email) override;
  std::vector<NotReady> NotReadyReasons() override;

  // The rules of `config`, compiled against the account's catalog cached by
  // the last full run (or the built-in one, as the configuration says).
  Result<std::unique_ptr<mapping::RuleSet>> RulesInForce(const config::Config& config);

 private:
  Generations& generations_;
  store::Store& store_;
  SnapshotCache& snapshots_;
  Scheduler& scheduler_;
  RunReporter& reporter_;
  NowFn now_;
  std::function<ReplicaStatus()> replica_;
};

}  // namespace idsync::daemon
