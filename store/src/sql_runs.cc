// The run log, over a Session.

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
  std::lock_guard lock(s_.mu);
  return Fenced(s_, [&]() -> Result<std::int64_t> {
    Result<std::int64_t> id = QueryInt(
        s_, "INSERT INTO runs (kind, started_ms) VALUES ($1, $2) RETURNING id", {kind, at_ms}, 0);
    if (!id.ok()) return id.status().WithContext("begin run");
    return id;
  });
}

Status SqlRunLog::FinishRun(const RunRecord& run) {
  if (run.result.empty()) {
    return InvalidArgumentError("run " + std::to_string(run.id) +
                                ": a finished run needs a result");
  }
  std::lock_guard lock(s_.mu);
  return Fenced(s_, [&]() -> Status {
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

}  // namespace idsync::store::internal
