// What `idsync status` and /v1/status show (status.h). Pure functions over
// the store; thread-safe as the store is.
#include "idsync/daemon/status.h"

#include <ctime>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "idsync/mapping/reconcile.h"

namespace idsync::daemon {

using nlohmann::ordered_json;

Result<std::string> StatusJson(const config::Config& config, store::Store& store,
                               const DaemonStatus* daemon) {
  ASSIGN_OR_RETURN(std::vector<store::RunRecord> runs, store.runs().RecentRuns(10));
  ASSIGN_OR_RETURN(std::vector<store::OutboxEntry> pending, store.outbox().Unfinished());
  ASSIGN_OR_RETURN(std::vector<store::OutboxEntry> failed, store.outbox().Failed(20));
  ASSIGN_OR_RETURN(store::AuditCheck check, store.audit().Verify(std::nullopt));
  const std::vector<SourceStatus> sources = LoadSourceStatuses(config, store);
  ordered_json j;
  j["runs"] = ordered_json::array();
  for (const auto& r : runs) {
    ordered_json run{{"id", r.id},
                     {"kind", RunKindName(r.kind)},
                     {"started", FormatTime(r.started_ms)},
                     {"finished", FormatTime(r.finished_ms)},
                     {"result", r.result},
                     {"error", r.error},
                     {"audit_head", r.audit_head}};
    run["summary"] =
        nlohmann::json::parse(r.summary_json.empty() ? "{}" : r.summary_json, nullptr, false);
    j["runs"].push_back(run);
  }
  auto entry = [](const store::OutboxEntry& e) {
    return ordered_json{{"id", e.id},
                        {"op", std::string(mapping::OpKindName(e.kind))},
                        {"email", e.email},
                        {"state", std::string(store::OutboxStateName(e.state))},
                        {"attempts", e.attempts},
                        {"error", e.error},
                        {"updated", FormatTime(e.updated_ms)}};
  };
  j["pending"] = ordered_json::array();
  for (const auto& e : pending) j["pending"].push_back(entry(e));
  j["failed"] = ordered_json::array();
  for (const auto& e : failed) j["failed"].push_back(entry(e));
  j["audit"] = {{"head", check.head}, {"entries", check.entries}, {"intact", check.ok}};
  j["sources"] = ordered_json::array();
  for (const auto& st : sources) {
    j["sources"].push_back(ordered_json{{"name", st.name},
                                        {"type", st.type},
                                        {"state", SourceStateName(st)},
                                        {"last_success", FormatTime(st.last_success_ms)},
                                        {"last_error", st.last_error},
                                        {"last_error_at", FormatTime(st.last_error_ms)},
                                        {"users", st.users},
                                        {"groups", st.groups}});
  }
  if (daemon != nullptr) {
    j["daemon"] = {{"running", daemon->running},
                   {"next_full_run_in_seconds", daemon->next_full_run_in_seconds},
                   {"people_waiting", daemon->people_waiting},
                   {"last_run", daemon->last_run}};
    j["replica"] = {
        {"id", daemon->replica_id}, {"leader", daemon->leader}, {"epoch", daemon->epoch}};
  }
  return j.dump(2);
}

std::string FormatTime(std::int64_t unix_ms) {
  if (unix_ms <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string SourceStateName(const SourceStatus& s) {
  if (s.failing) return s.never_read ? "never-read" : "failing";
  return s.last_success_ms > 0 ? "ok" : "not-read";
}

std::string RunKindName(const std::string& stored) { return stored == "apply" ? "full" : stored; }

}  // namespace idsync::daemon
