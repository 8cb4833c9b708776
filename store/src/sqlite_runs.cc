// The SQLite run log.

#include "sqlite_parts.h"

namespace idsync::store::sqlite {
namespace {

constexpr std::string_view kRunColumns =
    "id, kind, started_ms, finished_ms, result, summary_json, audit_head, error";

// The fields in kRunColumns order.
RunRecord ReadRun(const Stmt& row) {
  using R = RunRecord;
  return ReadFields<R>(row, &R::id, &R::kind, &R::started_ms, &R::finished_ms, &R::result,
                       &R::summary_json, &R::audit_head, &R::error);
}

}  // namespace

Result<std::int64_t> SqliteRunLog::BeginRun(const std::string& kind, std::int64_t at_ms) {
  std::lock_guard lock(c_.mu);
  ASSIGN_OR_RETURN(Stmt stmt,
                   Stmt::Prepare(c_.get(), "INSERT INTO runs (kind, started_ms) VALUES (?1, ?2)"));
  stmt.Bind(1, kind).Bind(2, at_ms);
  RETURN_IF_ERROR(stmt.Run().WithContext("begin run"));
  return static_cast<std::int64_t>(sqlite3_last_insert_rowid(c_.get()));
}

Status SqliteRunLog::FinishRun(const RunRecord& run) {
  if (run.result.empty()) {
    return InvalidArgumentError("run " + std::to_string(run.id) +
                                ": a finished run needs a result");
  }
  std::lock_guard lock(c_.mu);
  ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(c_.get(),
                                            "UPDATE runs SET finished_ms = ?2, result = ?3, "
                                            "summary_json = ?4, audit_head = ?5, error = ?6 "
                                            "WHERE id = ?1"));
  BindAll(stmt, run.id, run.finished_ms, run.result, run.summary_json, run.audit_head, run.error);
  RETURN_IF_ERROR(stmt.Run().WithContext("finish run"));
  if (sqlite3_changes(c_.get()) == 0) return NotFoundError("no run " + std::to_string(run.id));
  return Status::Ok();
}

Result<std::vector<RunRecord>> SqliteRunLog::RecentRuns(int limit) {
  std::lock_guard lock(c_.mu);
  ASSIGN_OR_RETURN(Stmt stmt,
                   Stmt::Prepare(c_.get(), Concat({"SELECT ", kRunColumns,
                                                   " FROM runs ORDER BY id DESC LIMIT ?1"})));
  stmt.Bind(1, static_cast<std::int64_t>(limit > 0 ? limit : -1));  // -1: no limit
  return ReadRows<RunRecord>(stmt, ReadRun);
}

Status SqliteRunLog::CloseInterruptedRuns(std::int64_t at_ms) {
  std::lock_guard lock(c_.mu);
  // A run's result is "" exactly while it runs (FinishRun refuses "").
  ASSIGN_OR_RETURN(Stmt stmt, Stmt::Prepare(c_.get(),
                                            "UPDATE runs SET finished_ms = ?1, result = 'stopped', "
                                            "error = CASE WHEN error = '' THEN 'interrupted' "
                                            "ELSE error END WHERE result = ''"));
  stmt.Bind(1, at_ms);
  return stmt.Run().WithContext("close interrupted runs");
}

}  // namespace idsync::store::sqlite
