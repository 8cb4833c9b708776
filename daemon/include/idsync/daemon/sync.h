// One sync run, end to end: read the sources and the account, plan, check the
// safety limits, write every operation to the outbox in one transaction, send
// them, and record each result, the account mirror and the audit log.
//
// A Syncer is used from one thread at a time (it starts its own worker
// threads for sending); the store and account it is given must outlive it.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/config/config.h"
#include "idsync/daemon/inputs.h"
#include "idsync/engine/executor.h"
#include "idsync/mapping/ports.h"
#include "idsync/mapping/reconcile.h"
#include "idsync/mapping/rules.h"
#include "idsync/store/store.h"

namespace idsync::daemon {

// Wall-clock time in milliseconds since the Unix epoch; replaceable in tests.
using NowFn = std::function<std::int64_t()>;
std::int64_t SystemNowMs();

// What a run read and decided, before anything is sent.
struct PlannedRun {
  mapping::Catalog catalog;
  std::unique_ptr<mapping::RuleSet> rules;
  std::vector<mapping::Project> projects;
  std::vector<mapping::AccountRecord> account;  // as read
  mapping::MappingResult mapped;
  mapping::Plan plan;
  std::vector<std::string> failed_sources;  // with their errors: "hr: cannot read ..."
  std::vector<SourceStatus> source_states;  // one per source, config order
  // The snapshots mapped (a failed source's last good read in its place).
  std::vector<mapping::SourceSnapshot> snapshots;
  // How long each phase took, in order: ("account", 1.2), ("sources", 0.8), ...
  std::vector<std::pair<std::string, double>> timings;
};

// The catalog a configuration's rules were compiled against, and the rules.
struct CompiledRules {
  mapping::Catalog catalog;
  std::unique_ptr<const mapping::RuleSet> rules;  // never null
};

// The catalog and compiled rules of one configuration, kept between runs so
// that partial runs neither parse the cached catalog nor compile the rules
// again. A full run puts what it planned with (the catalog it read from the
// account, which it also caches in the store); a partial run that finds it
// empty fills it from the store's cached catalog. Thread-safe.
class RulesCache {
 public:
  // What was put last; nullptr when nothing was. Shared: a run keeps using
  // what it took while a full run replaces it.
  std::shared_ptr<const CompiledRules> Get() const;
  void Put(std::shared_ptr<const CompiledRules> compiled);

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const CompiledRules> compiled_;  // guarded by mu_
};

// What each finished partial run counts against the safety window (its
// removals and revokes, and all its changes), by run id: a finished run's
// summary never changes, so each is read from its JSON once. A partial run
// counts the window's runs before it plans. Thread-safe; holds at most
// kMaxRuns runs (past that it starts over).
class RunWindowCounts {
 public:
  struct Counts {
    std::int64_t removals = 0;
    std::int64_t changes = 0;
  };
  static constexpr std::size_t kMaxRuns = 8192;

  std::optional<Counts> Find(std::int64_t run_id) const;
  void Put(std::int64_t run_id, Counts counts);

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::int64_t, Counts> counts_;  // guarded by mu_
};

// Progress of the sending phase, for a terminal or the log.
struct Progress {
  std::int64_t done = 0;  // landed or failed for good
  std::int64_t total = 0;
  std::int64_t failed = 0;
  double elapsed_s = 0;
};
using ProgressFn = std::function<void(const Progress&)>;

struct ApplyOptions {
  bool force = false;               // pass the safety limits
  std::string source = "full-run";  // recorded in the outbox and audit
  int priority = 0;                 // outbox priority (partial runs go ahead of bulk work)
  // Checked before each send: true parks the rest (they stay planned in the
  // outbox, are dropped on the next run's recovery and planned afresh);
  // writes already sent finish. The report counts them as pending.
  std::function<bool()> cancelled;
  // Called as each operation ends (from worker threads, serialized): its
  // kind ("invite", ...) and "applied", "failed", "pending" or "superseded".
  std::function<void(const std::string& op, const char* result)> operation_done;
  // Full runs: called with what was read and mapped (each source's snapshot,
  // a failed source's last good read in its place, and each source's state)
  // once the plan is made, before anything is sent.
  std::function<void(std::vector<mapping::SourceSnapshot>& snapshots,
                     const std::vector<SourceStatus>& states)>
      sources_read;
  ProgressFn progress;  // called as operations finish (from worker threads, serialized)
  // Where runs of this configuration keep the catalog and compiled rules (see
  // RulesCache); it must outlive the call. nullptr: a partial run takes the
  // catalog from the store's cache and compiles the rules itself.
  RulesCache* rules = nullptr;
  // Partial runs: where the counts of earlier runs are kept between runs;
  // nullptr reads each from its summary.
  RunWindowCounts* window_counts = nullptr;
};

// How a run ended.
struct ApplyReport {
  std::int64_t run_id = 0;
  mapping::Plan plan;
  std::int64_t recovered = 0;  // operations from an interrupted run finished first
  std::int64_t dropped = 0;    // never-sent operations of an interrupted run, planned afresh
  std::int64_t applied = 0;
  std::int64_t failed = 0;
  std::int64_t pending = 0;  // left unsent because the account refused our credentials
  // Full runs: writes not sent because a partial run planned the same
  // person meanwhile (the later plan wins); their people, ASCII lower-cased.
  std::vector<std::string> superseded;
  std::vector<std::string> failures;  // "email: reason"
  std::vector<std::string> failed_sources;
  std::vector<SourceStatus> source_states;  // full runs: each source's read
  bool blocked = false;                     // a safety limit refused the plan; nothing was sent
  bool stopped = false;                     // 401/403: the run stopped, operations kept pending
  std::string audit_head;
  double elapsed_s = 0;
  std::vector<std::pair<std::string, double>> timings;  // phases, as PlannedRun's plus "send"
};

// A partial run: a few people reconciled between full runs, after a SCIM
// write or a followed directory change.
struct PartialRequest {
  std::vector<std::string> emails;  // ASCII lower-cased, the people to reconcile
  // Every source's current snapshot, config order (SCIM: the live service;
  // directories: the last read or change feed). They must outlive the call.
  std::vector<const mapping::SourceSnapshot*> snapshots;
  std::vector<std::string> failed_sources;  // sources whose latest read failed
  bool hold_all = false;                    // a failed source was never read
};

class Syncer {
 public:
  // The sources are read with `reads` (its store defaults to `store`).
  // Writes are sent by `executor`, shared by every run of a process so that
  // partial runs go ahead of full runs (engine/executor.h); nullptr: the
  // Syncer has its own, with config.account.concurrency workers.
  Syncer(const config::Config& config, store::Store& store, mapping::AccountDirectory& account,
         NowFn now = SystemNowMs, ReadContext reads = {}, engine::Executor* executor = nullptr);
  ~Syncer();

  // Reads the sources and the account and computes the plan; changes
  // nothing. Errors: the account unreachable or refusing us (its status),
  // a project name unknown to the account (kNotFound), nesting too deep
  // (kFailedPrecondition). Failed sources are not errors: they are listed
  // and hold back reductions.
  Result<PlannedRun> Plan(bool force);

  // One full run (see the file comment). The report says what happened;
  // an error status means the run could not start (store, account, plan).
  Result<ApplyReport> Apply(const ApplyOptions& options);

  // Reconciles only request.emails against the account mirror in the store
  // (no account or directory read), with the safety limits counted over the
  // partial runs of the last safety.window, and sends the operations (with
  // options.priority). Recorded as a run of kind "partial". The account
  // catalog and projects come from the store's cache of the last full run
  // (read from the account when absent). Errors as Apply's.
  Result<ApplyReport> ApplyPartial(const PartialRequest& request, const ApplyOptions& options);

 private:
  Result<PlannedRun> PlanWith(bool force, bool record);
  // Records adoptions, writes every operation to the outbox and sends them.
  Status Commit(const mapping::Plan& plan, const mapping::Catalog& catalog,
                const std::vector<mapping::Project>& projects,
                const std::vector<mapping::AccountRecord>& account, ApplyReport& report,
                const ApplyOptions& options, engine::Lane lane, engine::Mark planned_at);
  // `cache`'s catalog and rules; when it is empty or nullptr, the catalog of
  // CachedCatalog and the rules compiled against it (put in `cache`).
  Result<std::shared_ptr<const CompiledRules>> Compiled(RulesCache* cache);
  // The built-in catalog, or with `catalog: account` the store's cached one
  // (read from the account and cached when there is none).
  Result<mapping::Catalog> CachedCatalog();
  Result<std::vector<mapping::Project>> CachedProjects();
  Status Recover(ApplyReport& report, const ApplyOptions& options);
  // Sends entries through the executor in `lane`; bulk entries are
  // superseded by claims made after `planned_at`.
  Status Execute(std::vector<store::OutboxEntry> entries, ApplyReport& report,
                 const ApplyOptions& options, engine::Lane lane, engine::Mark planned_at,
                 bool droppable);
  Status SendOne(const store::OutboxEntry& entry, const ApplyOptions& options, ApplyReport& report,
                 bool& stop);
  // Records the end of run report.run_id of `kind` ("full", "partial"): its
  // RunResultOf(report, error), error's message, elapsed time, summary and
  // audit head.
  Status FinishRun(const char* kind, std::chrono::steady_clock::time_point started,
                   const Status& error, ApplyReport& report);

  const config::Config& config_;
  store::Store& store_;
  mapping::AccountDirectory& account_;
  NowFn now_;
  ReadContext reads_;
  std::unique_ptr<engine::Executor> own_executor_;
  engine::Executor* executor_;
};

// The exit status DESIGN.md gives a finished apply: 3 blocked, 1 when anything
// failed, stayed pending or a source failed, else 0.
int ApplyExitCode(const ApplyReport& report);

// How a run ended, in the words the store's run log records and
// idsync_runs_total{result} counts (docs/operations.md): "failed" when
// `error` is not OK (the run could not recover, plan or record) or the
// account refused our credentials (report.stopped); else "blocked" (a safety
// limit refused the plan), "source_failed" (a source could not be read),
// "operations_failed" (operations were rejected or left pending) or "ok", the
// first that applies. The store has one more, "stopped", for a run the
// process died in (RunLog::CloseInterruptedRuns).
std::string_view RunResultOf(const ApplyReport& report, const Status& error = Status::Ok());

// The same for what Apply or ApplyPartial returned: "failed" for an error.
std::string_view RunResultOf(const Result<ApplyReport>& outcome);

}  // namespace idsync::daemon
