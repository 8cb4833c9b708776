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
#include <optional>
#include <string>
#include <vector>

#include "idsync/config/config.h"
#include "idsync/mapping/ports.h"
#include "idsync/mapping/reconcile.h"
#include "idsync/mapping/rules.h"
#include "idsync/mapping/status.h"
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
  // How long each phase took, in order: ("account", 1.2), ("sources", 0.8), ...
  std::vector<std::pair<std::string, double>> timings;
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
  ProgressFn progress;              // called as operations finish (from worker threads, serialized)
};

// How a run ended.
struct ApplyReport {
  std::int64_t run_id = 0;
  mapping::Plan plan;
  std::int64_t recovered = 0;  // operations from an interrupted run finished first
  std::int64_t dropped = 0;    // never-sent operations of an interrupted run, planned afresh
  std::int64_t applied = 0;
  std::int64_t failed = 0;
  std::int64_t pending = 0;           // left unsent because the account refused our credentials
  std::vector<std::string> failures;  // "email: reason"
  std::vector<std::string> failed_sources;
  bool blocked = false;  // a safety limit refused the plan; nothing was sent
  bool stopped = false;  // 401/403: the run stopped, operations kept pending
  std::string audit_head;
  double elapsed_s = 0;
  std::vector<std::pair<std::string, double>> timings;  // phases, as PlannedRun's plus "send"
};

class Syncer {
 public:
  Syncer(const config::Config& config, store::Store& store, mapping::AccountDirectory& account,
         NowFn now = SystemNowMs);

  // Reads the sources and the account and computes the plan; changes
  // nothing. Errors: the account unreachable or refusing us (its status),
  // a project name unknown to the account (kNotFound), nesting too deep
  // (kFailedPrecondition). Failed sources are not errors: they are listed
  // and hold back reductions.
  Result<PlannedRun> Plan(bool force);

  // One full run (see the file comment). The report says what happened;
  // an error status means the run could not start (store, account, plan).
  Result<ApplyReport> Apply(const ApplyOptions& options);

 private:
  struct Send;
  Status Recover(ApplyReport& report, const ApplyOptions& options);
  Status Execute(std::vector<store::OutboxEntry> entries, ApplyReport& report,
                 const ApplyOptions& options);
  Status SendOne(const store::OutboxEntry& entry, ApplyReport& report, bool& stop);

  const config::Config& config_;
  store::Store& store_;
  mapping::AccountDirectory& account_;
  NowFn now_;
};

// The exit status DESIGN.md gives a finished apply: 3 blocked, 1 when anything
// failed, stayed pending or a source failed, else 0.
int ApplyExitCode(const ApplyReport& report);

}  // namespace idsync::daemon
