// DaemonAdmin (admin_backend.h): what the admin API answers, from the parts
// that own the state. Thread-safe: it keeps none of its own.
#include "admin_backend.h"

#include <memory>
#include <optional>
#include <utility>

#include "idsync/base/ascii.h"
#include "idsync/daemon/inputs.h"
#include "idsync/daemon/render.h"
#include "idsync/daemon/status.h"
#include "idsync/mapping/rules.h"

namespace idsync::daemon {

DaemonAdmin::DaemonAdmin(Generations& generations, store::Store& store, SnapshotCache& snapshots,
                         Scheduler& scheduler, RunReporter& reporter, NowFn now,
                         std::function<ReplicaStatus()> replica)
    : generations_(generations),
      store_(store),
      snapshots_(snapshots),
      scheduler_(scheduler),
      reporter_(reporter),
      now_(std::move(now)),
      replica_(std::move(replica)) {}

Status DaemonAdmin::RequestSync(bool force) {
  const ReplicaStatus me = replica_();
  if (me.leader) return scheduler_.RequestFullRun(force);
  // A follower passes the request to the leader through the store.
  ASSIGN_OR_RETURN(std::optional<store::LeaseState> lease, store_.lease().Current());
  if (!lease || lease->expired) {
    return UnavailableError(
        "no replica leads now; ask again in a few seconds (another takes over within ha.lease)");
  }
  return store_.runs().RequestRun(force, me.id, now_());
}

Result<std::string> DaemonAdmin::StatusJson() {
  std::shared_ptr<Generation> gen = generations_.Current();
  DaemonStatus daemon = scheduler_.State();
  daemon.last_run = reporter_.LastRun();
  const ReplicaStatus replica = replica_();
  daemon.replica_id = replica.id;
  daemon.leader = replica.leader;
  daemon.epoch = replica.epoch;
  return daemon::StatusJson(gen->config, store_, &daemon);
}

Result<std::string> DaemonAdmin::PlanJson() {
  std::shared_ptr<Generation> gen = generations_.Current();
  Syncer syncer(gen->config, store_, *gen->account, now_, snapshots_.Reads(store_));
  Result<PlannedRun> run = syncer.Plan(false);
  reporter_.AccountRequests(*gen);
  if (!run.ok()) return run.status();
  return daemon::PlanJson(run->plan, run->catalog, run->projects);
}

Result<std::string> DaemonAdmin::ExplainJson(const std::string& email) {
  std::shared_ptr<Generation> gen = generations_.Current();
  ASSIGN_OR_RETURN(std::unique_ptr<mapping::RuleSet> rules, RulesInForce(gen->config));
  const std::vector<SnapshotCache::Snapshot> held = snapshots_.Latest(gen->config);
  std::vector<const mapping::SourceSnapshot*> snapshots;
  for (const SnapshotCache::Snapshot& snapshot : held) snapshots.push_back(snapshot.get());
  std::vector<std::string> only = {base::AsciiLower(email)};
  mapping::MapOptions map_options;
  map_options.details = true;
  map_options.only_emails = &only;
  ASSIGN_OR_RETURN(mapping::MappingResult mapped, mapping::Map(*rules, snapshots, map_options));
  const mapping::PersonAccess* person = mapped.Find(email);
  if (person == nullptr) return NotFoundError("no source knows " + email);
  return daemon::ExplainJson(*rules, *person);
}

Result<std::unique_ptr<mapping::RuleSet>> DaemonAdmin::RulesInForce(const config::Config& config) {
  mapping::Catalog catalog = mapping::Catalog::Builtin();
  if (config.catalog_source == config::CatalogSource::kAccount) {
    if (std::optional<mapping::Catalog> cached = CachedAccountCatalog(store_)) {
      catalog = std::move(*cached);
    }
  }
  return CompileRules(config, catalog);
}

std::vector<AdminBackend::NotReady> DaemonAdmin::NotReadyReasons() {
  std::vector<NotReady> reasons;
  if (generations_.Current() == nullptr) reasons.push_back({"configuration not loaded", ""});
  const std::string store_problem = reporter_.StoreProblem();
  if (!store_problem.empty()) reasons.push_back({"store not writable", store_problem});
  return reasons;
}

}  // namespace idsync::daemon
