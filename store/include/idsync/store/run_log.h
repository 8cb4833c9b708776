// The run log: one row per sync run, full or partial, from its start to its
// result. `idsync status`, /v1/status and the safety window read it.
// Thread-safe; blocks on I/O.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "idsync/base/status.h"

namespace idsync::store {

// One run (a full run, or a partial run).
struct RunRecord {
  std::int64_t id = 0;
  std::string kind;  // "full" | "partial" (stores written before 0.2 say "apply" for full)
  std::int64_t started_ms = 0;
  std::int64_t finished_ms = 0;  // 0 while running (or interrupted)
  // "" while running; then how it ended, in the words idsync_runs_total
  // counts (the daemon's RunResultOf decides both): "ok" | "failed" (it could
  // not recover, plan or record, or the account refused the credentials) |
  // "blocked" (a safety limit) | "source_failed" | "operations_failed"; or
  // "stopped": the process died during the run (CloseInterruptedRuns). Rows
  // written before these words were shared say "failed" for the last two and
  // "stopped" for refused credentials as well.
  std::string result;
  std::string summary_json;  // counts: invite/update/remove/revoke/unchanged, failed, ...
  std::string audit_head;    // the audit head when the run finished
  std::string error;
};

// Full runs asked of the leader (RunLog::RequestRun) and not yet taken.
struct RunRequests {
  int count = 0;
  bool force = false;  // one of them passes the safety limits
};

// What RunLog::PruneHistory forgot.
struct HistoryPruned {
  std::int64_t entries = 0;  // finished outbox entries
  std::int64_t runs = 0;
};

class RunLog {
 public:
  virtual ~RunLog() = default;

  virtual Result<std::int64_t> BeginRun(const std::string& kind, std::int64_t at_ms) = 0;
  // Records the end of run.id (finished_ms, result, summary, audit head,
  // error). kNotFound for an unknown id; kInvalidArgument for an empty result
  // ("" means still running).
  virtual Status FinishRun(const RunRecord& run) = 0;
  // Newest first; limit <= 0: all.
  virtual Result<std::vector<RunRecord>> RecentRuns(int limit) = 0;
  // Runs begun and never finished (the process died): marked "stopped".
  virtual Status CloseInterruptedRuns(std::int64_t at_ms) = 0;

  // Asks the leader, whichever replica it is, for a full run (POST /v1/sync
  // on a follower): kept in the store, and the watchers of the SCIM change
  // log are woken (the leader is one), until the leader takes it. `by`
  // names who asked, for the log.
  virtual Status RequestRun(bool force, const std::string& by, std::int64_t at_ms) = 0;
  // Takes every run asked for (a leader-only write, fenced); none is an
  // empty answer.
  virtual Result<RunRequests> TakeRunRequests() = 0;

  // Forgets history older than `before_ms`: outbox entries that are done,
  // failed or dropped and last changed before it, then runs finished before
  // it that no remaining entry belongs to, except the `keep_runs` most
  // recent runs. Unfinished entries and the audit log are never touched. A
  // leader-only write (fenced). On SQLite the write-ahead log is then
  // checkpointed, so that the file does not keep what was deleted.
  virtual Result<HistoryPruned> PruneHistory(std::int64_t before_ms, int keep_runs) = 0;
};

}  // namespace idsync::store
