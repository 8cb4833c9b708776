// RunReporter (run_reporter.h): log lines, metrics and the STATUS= line of
// finished runs. Thread-safe: its own state is under its lock.
#include "run_reporter.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "idsync/mapping/reconcile.h"
#include "idsync/store/lease.h"

#include "join.h"

namespace idsync::daemon {

RunReporter::RunReporter(Logger& log, Metrics& metrics, Notifier& notifier, store::Store& store,
                         NowFn now)
    : log_(log), metrics_(metrics), notifier_(notifier), store_(store), now_(std::move(now)) {}

double RunReporter::UnixNow() const { return static_cast<double>(now_()) / 1000.0; }

void RunReporter::Finished(const std::string& kind, const Result<ApplyReport>& report,
                           double seconds) {
  const std::string result(RunResultOf(report));
  if (!report.ok()) {
    log_.Error("run.failed", "the " + kind + " run failed",
               {{"kind", kind}, {"error", report.status().message()}});
    if (report.status().HasPayload(kStageKey, kStageStore) && !store::FenceLost(report.status())) {
      std::lock_guard<std::mutex> l(mu_);
      store_problem_ = report.status().message();
    }
  } else if (report->blocked) {
    for (mapping::SafetyLimit limit : report->plan.tripped) {
      metrics_.SafetyTrip(std::string(mapping::SafetyLimitName(limit)));
    }
    log_.Warning("run.blocked",
                 "a safety limit refused the plan; nothing was sent (review it with `idsync "
                 "plan`, then `idsync apply --force` with idsyncd stopped, or raise the limit)",
                 {{"kind", kind}, {"reasons", Join(report->plan.reasons, ", ")}});
  } else {
    const auto& s = report->plan.summary;
    log_.Info("run.finished", "the " + kind + " run finished",
              {{"kind", kind},
               {"run", static_cast<long long>(report->run_id)},
               {"invite", static_cast<long long>(s.invite)},
               {"update", static_cast<long long>(s.update)},
               {"remove", static_cast<long long>(s.remove)},
               {"revoke", static_cast<long long>(s.revoke)},
               {"applied", static_cast<long long>(report->applied)},
               {"failed", static_cast<long long>(report->failed)},
               {"pending", static_cast<long long>(report->pending)},
               {"recovered", static_cast<long long>(report->recovered)},
               {"seconds", seconds},
               {"audit_head", report->audit_head}});
    for (const auto& f : report->failures) {
      log_.Warning("operation.failed", "an operation was rejected", {{"detail", f}});
    }
  }
  metrics_.RunFinished(result, seconds, UnixNow());
  ReportOutbox();
  char line[200];
  std::time_t t = static_cast<std::time_t>(now_() / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char when[32];
  std::strftime(when, sizeof when, "%H:%M:%SZ", &tm);
  std::snprintf(line, sizeof line, "last %s run %s at %s", kind.c_str(), result.c_str(), when);
  if (report.ok()) {
    std::snprintf(line + std::strlen(line), sizeof line - std::strlen(line),
                  ": %lld applied, %lld failed", static_cast<long long>(report->applied),
                  static_cast<long long>(report->failed));
  }
  {
    std::lock_guard<std::mutex> l(mu_);
    last_run_ = line;
  }
  notifier_.SetStatus(line);
}

void RunReporter::SourcesRead(const std::vector<SourceStatus>& states) {
  {
    std::lock_guard<std::mutex> l(mu_);
    store_problem_.clear();
  }
  for (const auto& st : states) {
    metrics_.SourceRead(
        st.name, !st.failing, st.users + st.groups,
        static_cast<double>(st.failing ? st.last_error_ms : st.last_success_ms) / 1000.0);
    if (st.failing) {
      log_.Warning("source.failed",
                   st.never_read ? "a source cannot be read and has never been read: no "
                                   "managed user loses access in this run"
                                 : "a source cannot be read: its last good read stands in "
                                   "and nobody it granted loses access",
                   {{"source", st.name}, {"error", st.last_error}});
    }
  }
}

void RunReporter::Operation(const std::string& kind, const char* result) {
  metrics_.Operation(kind, result);
}

void RunReporter::AccountRequests(Generation& generation) {
  std::lock_guard<std::mutex> l(generation.counters_mu);
  account::ClientCounters now = generation.account->counters();
  auto emit = [&](std::int64_t then, std::int64_t current, int status) {
    for (std::int64_t i = then; i < current; ++i) metrics_.AccountRequest(status);
  };
  const account::ClientCounters& then = generation.reported;
  emit(then.status_2xx, now.status_2xx, 200);
  emit(then.status_4xx, now.status_4xx, 400);
  emit(then.status_429, now.status_429, 429);
  emit(then.status_5xx, now.status_5xx, 500);
  emit(then.transport, now.transport, 0);
  generation.reported = now;
}

void RunReporter::LeadershipEnded() {
  std::lock_guard<std::mutex> l(mu_);
  store_problem_.clear();
}

std::string RunReporter::StoreProblem() const {
  std::lock_guard<std::mutex> l(mu_);
  return store_problem_;
}

std::string RunReporter::LastRun() const {
  std::lock_guard<std::mutex> l(mu_);
  return last_run_;
}

void RunReporter::ReportOutbox() {
  Result<std::vector<store::OutboxEntry>> unfinished = store_.outbox().Unfinished();
  if (!unfinished.ok()) return;
  std::int64_t oldest = 0;
  for (const auto& e : *unfinished) {
    if (oldest == 0 || e.created_ms < oldest) oldest = e.created_ms;
  }
  const double age = oldest == 0 ? 0 : std::max(0.0, UnixNow() - oldest / 1000.0);
  metrics_.OutboxDepth(static_cast<std::int64_t>(unfinished->size()), age);
}

}  // namespace idsync::daemon
