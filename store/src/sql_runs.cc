// The run log, over a Session.

#include <algorithm>
#include <mutex>

#include "sql_parts.h"

namespace idsync::store::internal {
namespace {

constexpr std::string_view kRunColumns =
    "id, kind, started_ms, finished_ms, result, summary_json, audit_head, error";

// The fields in kRunColumns order.
RunRecord ReadRun(const Rows& row) {
  using R = RunRecord;
  return ReadFields<R>(row, &R::id, &R::kind, &R::started_ms, &R::finished_ms, &R::result,
                       &R::summary_json, &R::audit_head, &R::error);
}

}  // namespace

Result<std::int64_t> SqlRunLog::BeginRun(const std::string& kind, std::int64_t at_ms) {
  std::int64_t id = 0;
  auto begin = [&]() -> Status {
    RETURN_IF_ERROR(CheckFence(s_));
    ASSIGN_OR_RETURN(
        id, QueryInt(s_, "INSERT INTO runs (kind, started_ms) VALUES ($1, $2) RETURNING id",
                     {kind, at_ms}, 0));
    return Status::Ok();
  };
  RETURN_IF_ERROR(s_.Write(begin).WithContext("begin run"));
  return id;
}

Status SqlRunLog::FinishRun(const RunRecord& run) {
  if (run.result.empty()) {
    return InvalidArgumentError("run " + std::to_string(run.id) +
                                ": a finished run needs a result");
  }
  return s_.Write([&]() -> Status {
    RETURN_IF_ERROR(CheckFence(s_));
    Result<std::int64_t> changed = s_.Exec(
        "UPDATE runs SET finished_ms = $2, result = $3, summary_json = $4, "
        "audit_head = $5, error = $6 WHERE id = $1",
        {run.id, run.finished_ms, run.result, run.summary_json, run.audit_head, run.error});
    if (!changed.ok()) return changed.status().WithContext("finish run");
    if (*changed == 0) return NotFoundError("no run " + std::to_string(run.id));
    return Status::Ok();
  });
}

Result<std::vector<RunRecord>> SqlRunLog::RecentRuns(int limit) {
  std::lock_guard lock(s_.mu);
  return QueryAll<RunRecord>(
      s_, Concat({"SELECT ", kRunColumns, " FROM runs ORDER BY id DESC LIMIT $1"}),
      {limit > 0 ? std::int64_t{limit} : kNoLimit}, ReadRun);
}

Status SqlRunLog::CloseInterruptedRuns(std::int64_t at_ms) {
  std::lock_guard lock(s_.mu);
  return Fenced(s_, [&]() -> Status {
    // A run's result is "" exactly while it runs (FinishRun refuses "").
    return s_
        .Exec(
            "UPDATE runs SET finished_ms = $1, result = 'stopped', "
            "error = CASE WHEN error = '' THEN 'interrupted' ELSE error END WHERE result = ''",
            {at_ms})
        .status()
        .WithContext("close interrupted runs");
  });
}

Status SqlRunLog::RequestRun(bool force, const std::string& by, std::int64_t at_ms) {
  std::lock_guard lock(s_.mu);
  Status asked = [&]() -> Status {
    ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(s_));
    RETURN_IF_ERROR(
        s_.Exec("INSERT INTO run_requests (force, requested_by, at_ms) VALUES ($1, $2, $3)",
                {std::int64_t{force ? 1 : 0}, by, at_ms})
            .status());
    if (!s_.dialect().notify_scim.empty()) {
      RETURN_IF_ERROR(s_.Exec(s_.dialect().notify_scim, {}).status());
    }
    return tx.Commit();
  }();
  return asked.WithContext("ask the leader for a run");
}

Result<RunRequests> SqlRunLog::TakeRunRequests() {
  std::lock_guard lock(s_.mu);
  Result<RunRequests> taken = Fenced(s_, [&]() -> Result<RunRequests> {
    RunRequests requests;
    ASSIGN_OR_RETURN(std::unique_ptr<Rows> rows,
                     s_.Query("DELETE FROM run_requests RETURNING force", {}));
    while (true) {
      ASSIGN_OR_RETURN(bool row, rows->Next());
      if (!row) break;
      ++requests.count;
      requests.force = requests.force || rows->Int(0) != 0;
    }
    return requests;
  });
  if (!taken.ok()) return taken.status().WithContext("take the runs asked for");
  return taken;
}

Result<HistoryPruned> SqlRunLog::PruneHistory(std::int64_t before_ms, int keep_runs) {
  std::lock_guard lock(s_.mu);
  HistoryPruned pruned;
  {
    ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(s_));
    RETURN_IF_ERROR(CheckFence(s_));
    Result<std::int64_t> entries = s_.Exec(
        "DELETE FROM outbox WHERE state IN ('done', 'failed', 'dropped') "
        "AND updated_ms < $1",
        {before_ms});
    if (!entries.ok()) return entries.status().WithContext("prune the outbox");
    Result<std::int64_t> runs = s_.Exec(
        "DELETE FROM runs WHERE finished_ms > 0 AND finished_ms < $1 "
        "AND id NOT IN (SELECT run_id FROM outbox WHERE run_id IS NOT NULL) "
        "AND id NOT IN (SELECT id FROM runs ORDER BY id DESC LIMIT $2)",
        {before_ms, std::int64_t{std::max(keep_runs, 0)}});
    if (!runs.ok()) return runs.status().WithContext("prune the run history");
    RETURN_IF_ERROR(tx.Commit().WithContext("prune the run history"));
    pruned.entries = *entries;
    pruned.runs = *runs;
  }
  if (!s_.dialect().checkpoint.empty() && (pruned.entries > 0 || pruned.runs > 0)) {
    RETURN_IF_ERROR(s_.Exec(s_.dialect().checkpoint, {}).status().WithContext("checkpoint"));
  }
  return pruned;
}

}  // namespace idsync::store::internal
