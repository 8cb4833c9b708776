#include "idsync/daemon/process.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <shared_mutex>
#include <thread>
#include <utility>

#include "idsync/account/account_client.h"
#include "idsync/base/ascii.h"
#include "idsync/daemon/account_state.h"
#include "idsync/daemon/admin.h"
#include "idsync/daemon/connector_registry.h"
#include "idsync/daemon/inputs.h"
#include "idsync/daemon/render.h"
#include "idsync/daemon/run_lock.h"
#include "idsync/daemon/status.h"
#include "idsync/daemon/sync.h"
#include "idsync/engine/executor.h"
#include "idsync/httpd/server.h"
#include "idsync/mapping/glob.h"
#include "idsync/scim/endpoint.h"
#include "idsync/scim/service.h"
#include "idsync/store/store.h"

namespace idsync::daemon {
namespace {

using Clock = std::chrono::steady_clock;

// Outbox priority of partial runs: ahead of bulk work after a crash.
constexpr int kPartialPriority = 10;

double UnixNow() { return static_cast<double>(SystemNowMs()) / 1000.0; }

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// One configuration's objects. Shared (shared_ptr) because a run, an admin
// request and a reload may hold different generations at once; each keeps
// its own alive until it is done with it.
struct Generation {
  config::Config config;
  std::unique_ptr<account::AccountClient> account;
  // The catalog and compiled rules runs of this configuration reuse.
  RulesCache rules;
  account::ClientCounters reported;  // counters already given to the metrics
  std::mutex counters_mu;
};

// The SCIM handler's objects, swapped whole on reload.
struct ScimLive {
  std::vector<std::string> sources;
  std::vector<std::string> strict_patch_sources;
  std::unique_ptr<scim::StoreResourcePersistence> persistence;
  std::unique_ptr<scim::ScimService> service;
  std::unique_ptr<scim::ScimEndpoint> endpoint;
};

// A change feed's state, kept in the store under its source.
class StoreFeedState : public mapping::FeedStateStore {
 public:
  StoreFeedState(store::Store& store, std::string source)
      : store_(store), source_(std::move(source)) {}
  Result<std::optional<std::string>> Load(const std::string& key) override {
    Result<std::optional<std::string>> value = store_.sources().GetFeedState(source_, key);
    if (value.ok() && value->has_value() && !(*value)->empty()) loaded_ = true;
    return value;
  }
  Status Save(const std::string& key, const std::string& value) override {
    return store_.sources().PutFeedState(source_, key, value);
  }
  // True once a feed found state saved by an earlier one (and returns to
  // false): the feed resumes from it rather than refreshing in full.
  bool TakeLoaded() { return std::exchange(loaded_, false); }

 private:
  store::Store& store_;
  std::string source_;
  bool loaded_ = false;
};

std::vector<std::string> ScimSourceNames(const config::Config& config, bool strict_only = false) {
  std::vector<std::string> names;
  for (const auto& s : config.sources) {
    if (s.type == config::SourceType::kScim && (!strict_only || s.strict_patch)) {
      names.push_back(s.name);
    }
  }
  return names;
}

std::vector<scim::SourceTokens> ScimTokens(const config::Config& config) {
  std::vector<scim::SourceTokens> tokens;
  for (const auto& s : config.sources) {
    if (s.type == config::SourceType::kScim) tokens.push_back({s.name, s.token_hashes});
  }
  return tokens;
}

}  // namespace

struct Process::Impl : public AdminBackend {
  Impl(Logger& l, Metrics& m, Notifier& n, ProcessOptions o)
      : log(l), metrics(m), notifier(n), options(o) {}

  Logger& log;
  Metrics& metrics;
  Notifier& notifier;
  const ProcessOptions options;

  std::unique_ptr<store::Store> store;
  // Sends the writes of every run: partial runs' ahead of full runs'.
  std::unique_ptr<engine::Executor> executor;
  std::unique_ptr<RunLock> lock;
  std::unique_ptr<httpd::Server> scim_server;
  std::unique_ptr<httpd::Server> admin_server;
  std::unique_ptr<AdminApi> admin;

  // SCIM handler objects; requests hold it shared, a reload swaps it exclusively.
  mutable std::shared_mutex scim_mu;
  std::unique_ptr<ScimLive> scim;

  // Everything below is guarded by mu.
  mutable std::mutex mu;
  std::condition_variable cv;
  std::shared_ptr<Generation> generation;
  bool stopping = false;
  bool sync_requested = false;
  bool full_running = false;
  bool partial_running = false;
  bool bulk_thread_done = false;
  bool interactive_thread_done = false;
  std::set<std::string> pending;  // people to reconcile in the next partial run
  Clock::time_point first_pending{};
  Clock::time_point next_full{};
  int failed_full_runs = 0;
  // Directory sources' latest snapshots (full run or change feed), by name.
  // Shared with partial runs in progress and with the feed, which copies
  // its snapshot before patching it while anyone here still holds it.
  std::map<std::string, std::shared_ptr<const mapping::SourceSnapshot>> directory;
  std::map<std::string, SourceStatus> states;
  std::set<std::string> feed_failing;  // sources whose feed failed last
  std::string store_problem;           // for /readyz
  std::string last_run_line;           // for STATUS=

  std::atomic<bool> cancel_run{false};
  // Every generation made (mu held): a run may still use one a reload
  // replaced, and Stop() interrupts the account clients of all of them.
  std::vector<std::weak_ptr<Generation>> generations;
  std::thread bulk_thread;         // full runs
  std::thread interactive_thread;  // partial runs, while a full run plans or sends

  struct Feed {
    std::string source;
    std::thread thread;
    std::mutex mu;
    mapping::ChangeFeed* current = nullptr;  // guarded by mu
    std::atomic<bool> stop{false};
    std::condition_variable cv;
  };
  std::vector<std::unique_ptr<Feed>> feeds;  // controller thread only
  std::mt19937_64 rng{std::random_device{}()};

  std::shared_ptr<Generation> Current() const {
    std::lock_guard<std::mutex> l(mu);
    return generation;
  }

  // --- SCIM ---

  Result<std::unique_ptr<ScimLive>> MakeScim(const config::Config& config,
                                             const ScimLive* previous) {
    auto live = std::make_unique<ScimLive>();
    live->sources = ScimSourceNames(config);
    live->strict_patch_sources = ScimSourceNames(config, /*strict_only=*/true);
    if (previous != nullptr && previous->sources == live->sources &&
        previous->strict_patch_sources == live->strict_patch_sources) {
      // Same sources: the service (and its in-memory resources) carries over.
      live->persistence = nullptr;
    } else {
      live->persistence = std::make_unique<scim::StoreResourcePersistence>(*store);
      scim::ServiceOptions service_options;
      service_options.sources = live->sources;
      service_options.strict_patch_sources = live->strict_patch_sources;
      service_options.on_patch_refused = [this](const scim::PatchRefusal& r) { PatchRefused(r); };
      service_options.now = SystemNowMs;
      ASSIGN_OR_RETURN(live->service,
                       scim::ScimService::Create(service_options, *live->persistence,
                                                 [this](const scim::ScimChange& change) {
                                                   OnChange(change.emails, false);
                                                 }));
    }
    return live;
  }

  void InstallEndpoint(ScimLive& live, const config::Config& config) {
    scim::EndpointOptions endpoint_options;
    endpoint_options.scim_path = config.server.scim_path;
    endpoint_options.sources = ScimTokens(config);
    endpoint_options.observer = [this](std::string_view method, int status, double seconds) {
      metrics.ScimRequest(method, status, seconds);
    };
    live.endpoint = std::make_unique<scim::ScimEndpoint>(endpoint_options, *live.service);
  }

  // The per-source series exist at 0 for every configured source (at start
  // and after a reload that adds one).
  void DeclareSources(const config::Config& config) {
    for (const config::SourceConfig& source : config.sources) {
      metrics.DeclareSource(source.name);
      if (source.type == config::SourceType::kScim) metrics.ScimSource(source.name);
    }
  }

  // The identity provider will send a refused PATCH again, and after enough
  // failures may stop provisioning: say so where operators look.
  void PatchRefused(const scim::PatchRefusal& r) {
    constexpr std::size_t kMaxDetail = 300;
    std::string detail = r.detail.substr(0, kMaxDetail);
    if (r.detail.size() > kMaxDetail) detail += "...";
    // The id comes from the request's path: as long as it was sent, within reason.
    std::vector<LogField> fields = {
        {"source", r.source}, {"resource", r.type}, {"id", r.id.substr(0, 100)}};
    if (r.operation >= 0) fields.emplace_back("operation", r.operation);
    fields.emplace_back("scim_type", r.scim_type.empty() ? std::string("none") : r.scim_type);
    fields.emplace_back("detail", detail);
    log.Log(LogLevel::kWarning, "scim.patch_refused",
            "a SCIM PATCH was refused; the identity provider will retry it", fields);
    metrics.ScimPatchRefused(r.source, r.scim_type);
  }

  httpd::Response HandleScim(const httpd::Request& request) {
    std::shared_lock<std::shared_mutex> l(scim_mu);
    return scim->endpoint->Handle(request);
  }

  mapping::SourceSnapshot ScimSnapshot(const std::string& source) {
    std::shared_lock<std::shared_mutex> l(scim_mu);
    if (!scim || !scim->service) {
      mapping::SourceSnapshot empty;
      empty.source = source;
      return empty;
    }
    return scim->service->Snapshot(source);
  }

  // People touched by a SCIM write or a followed change.
  void OnChange(const std::vector<std::string>& emails, bool) {
    if (emails.empty()) return;
    std::lock_guard<std::mutex> l(mu);
    if (pending.empty()) first_pending = Clock::now();
    for (const auto& e : emails) pending.insert(base::AsciiLower(e));
    cv.notify_all();
  }

  ReadContext Reads() {
    ReadContext context;
    context.store = store.get();
    context.read =
        [this](
            const config::SourceConfig& source) -> std::optional<Result<mapping::SourceSnapshot>> {
      if (source.type != config::SourceType::kScim) return std::nullopt;
      return Result<mapping::SourceSnapshot>(ScimSnapshot(source.name));
    };
    return context;
  }

  // --- runs ---

  Clock::duration FullInterval(const config::Config& config) {
    Clock::duration interval = std::chrono::minutes(15);
    Clock::duration jitter{0};
    bool first = true;
    for (const auto& s : config.sources) {
      // SCIM sources are pushed to, never read on a schedule.
      if (s.type == config::SourceType::kScim) continue;
      if (first || s.interval < interval) {
        interval = s.interval;
        jitter = s.jitter;
      }
      first = false;
    }
    if (interval < std::chrono::seconds(1)) interval = std::chrono::seconds(1);
    const auto jitter_ms = std::chrono::duration_cast<std::chrono::milliseconds>(jitter).count();
    std::int64_t extra = 0;
    if (jitter_ms > 0) extra = static_cast<std::int64_t>(rng() % (jitter_ms + 1));
    return interval + std::chrono::milliseconds(extra);
  }

  void ReportAccountCounters(Generation& gen) {
    std::lock_guard<std::mutex> l(gen.counters_mu);
    account::ClientCounters now = gen.account->counters();
    auto emit = [&](std::int64_t then, std::int64_t current, int status) {
      for (std::int64_t i = then; i < current; ++i) metrics.AccountRequest(status);
    };
    emit(gen.reported.status_2xx, now.status_2xx, 200);
    emit(gen.reported.status_4xx, now.status_4xx, 400);
    emit(gen.reported.status_429, now.status_429, 429);
    emit(gen.reported.status_5xx, now.status_5xx, 500);
    emit(gen.reported.transport, now.transport, 0);
    gen.reported = now;
  }

  void ReportOutbox() {
    Result<std::vector<store::OutboxEntry>> unfinished = store->outbox().Unfinished();
    if (!unfinished.ok()) return;
    std::int64_t oldest = 0;
    for (const auto& e : *unfinished) {
      if (oldest == 0 || e.created_ms < oldest) oldest = e.created_ms;
    }
    const double age = oldest == 0 ? 0 : std::max(0.0, UnixNow() - oldest / 1000.0);
    metrics.OutboxDepth(static_cast<std::int64_t>(unfinished->size()), age);
  }

  ApplyOptions RunOptions(const std::string& source, int priority, Generation& gen) {
    ApplyOptions o;
    o.source = source;
    o.priority = priority;
    o.rules = &gen.rules;
    o.cancelled = [this] { return cancel_run.load(); };
    o.operation_done = [this](const std::string& op, const char* result) {
      metrics.Operation(op, result);
    };
    return o;
  }

  void FinishedRun(const std::string& kind, const Result<ApplyReport>& report, double seconds) {
    const std::string result(RunResultOf(report));
    if (!report.ok()) {
      log.Error("run.failed", "the " + kind + " run failed",
                {{"kind", kind}, {"error", report.status().message()}});
      if (report.status().HasPayload(kStageKey, kStageStore)) {
        std::lock_guard<std::mutex> l(mu);
        store_problem = report.status().message();
      }
    } else if (report->blocked) {
      for (mapping::SafetyLimit limit : report->plan.tripped) {
        metrics.SafetyTrip(std::string(mapping::SafetyLimitName(limit)));
      }
      log.Warning("run.blocked",
                  "a safety limit refused the plan; nothing was sent (review it with `idsync "
                  "plan`, then `idsync apply --force` with idsyncd stopped, or raise the limit)",
                  {{"kind", kind}, {"reasons", Join(report->plan.reasons)}});
    } else {
      const auto& s = report->plan.summary;
      log.Info("run.finished", "the " + kind + " run finished",
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
        log.Warning("operation.failed", "an operation was rejected", {{"detail", f}});
      }
    }
    metrics.RunFinished(result, seconds, UnixNow());
    ReportOutbox();
    char line[200];
    std::time_t t = std::time(nullptr);
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
      std::lock_guard<std::mutex> l(mu);
      last_run_line = line;
    }
    notifier.SetStatus(line);
  }

  // What a full run read, once it has planned: partial runs from here on
  // use these snapshots (while the full run is still sending).
  void SourcesRead(const config::Config& config, std::vector<mapping::SourceSnapshot>& snapshots,
                   const std::vector<SourceStatus>& source_states) {
    {
      std::lock_guard<std::mutex> l(mu);
      store_problem.clear();
      for (std::size_t i = 0; i < config.sources.size() && i < snapshots.size(); ++i) {
        const auto& source = config.sources[i];
        if (source.type == config::SourceType::kScim) continue;
        directory[source.name] =
            std::make_shared<const mapping::SourceSnapshot>(std::move(snapshots[i]));
      }
      for (const auto& st : source_states) states[st.name] = st;
      cv.notify_all();  // partial runs waiting for a first read
    }
    for (const auto& st : source_states) {
      metrics.SourceRead(
          st.name, !st.failing, st.users + st.groups,
          static_cast<double>(st.failing ? st.last_error_ms : st.last_success_ms) / 1000.0);
      if (st.failing) {
        log.Warning("source.failed",
                    st.never_read ? "a source cannot be read and has never been read: no "
                                    "managed user loses access in this run"
                                  : "a source cannot be read: its last good read stands in "
                                    "and nobody it granted loses access",
                    {{"source", st.name}, {"error", st.last_error}});
      }
    }
  }

  void FullRun() {
    std::shared_ptr<Generation> gen = Current();
    log.Info("run.started", "a full run started", {});
    const auto started = Clock::now();
    Syncer syncer(gen->config, *store, *gen->account, SystemNowMs, Reads(), executor.get());
    ApplyOptions run_options = RunOptions("full-run", 0, *gen);
    run_options.sources_read = [&](std::vector<mapping::SourceSnapshot>& snapshots,
                                   const std::vector<SourceStatus>& source_states) {
      SourcesRead(gen->config, snapshots, source_states);
    };
    Result<ApplyReport> report = syncer.Apply(run_options);
    const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    ReportAccountCounters(*gen);
    FinishedRun("full", report, seconds);
    // A partial run planned these people while this run was under way; its
    // plan may have used an older read of the directories than this run's:
    // plan them again now, against the mirror.
    if (report.ok() && !report->superseded.empty()) OnChange(report->superseded, false);
    std::lock_guard<std::mutex> l(mu);
    if (report.ok() && !report->stopped) {
      failed_full_runs = 0;
      next_full = Clock::now() + FullInterval(gen->config);
    } else {
      ++failed_full_runs;
      next_full = Clock::now() +
                  std::min<Clock::duration>(FullInterval(gen->config), options.retry_after_failure);
    }
  }

  void PartialRun(std::vector<std::string> emails) {
    std::shared_ptr<Generation> gen = Current();
    // Held for the run: a change delivered meanwhile replaces the directory's
    // pointer, not these.
    std::vector<std::shared_ptr<const mapping::SourceSnapshot>> snapshots;
    PartialRequest request;
    {
      std::lock_guard<std::mutex> l(mu);
      for (const auto& source : gen->config.sources) {
        if (source.type == config::SourceType::kScim) continue;
        auto it = directory.find(source.name);
        if (it == directory.end()) {
          // No read of this source yet: wait for the full run to cover them.
          for (auto& e : emails) pending.insert(e);
          if (pending.size() == emails.size()) first_pending = Clock::now();
          return;
        }
      }
      for (const auto& source : gen->config.sources) {
        if (source.type == config::SourceType::kScim) {
          snapshots.emplace_back();
          continue;
        }
        snapshots.push_back(directory[source.name]);
        const mapping::SourceSnapshot& snap = *snapshots.back();
        if (snap.failed) {
          request.failed_sources.push_back(source.name);
          if (snap.never_read) request.hold_all = true;
        }
      }
    }
    for (std::size_t i = 0; i < gen->config.sources.size(); ++i) {
      const auto& source = gen->config.sources[i];
      if (source.type == config::SourceType::kScim) {
        snapshots[i] = std::make_shared<const mapping::SourceSnapshot>(ScimSnapshot(source.name));
      }
      request.snapshots.push_back(snapshots[i].get());
    }
    request.emails = std::move(emails);
    const auto started = Clock::now();
    Syncer syncer(gen->config, *store, *gen->account, SystemNowMs, Reads(), executor.get());
    Result<ApplyReport> report =
        syncer.ApplyPartial(request, RunOptions("partial", kPartialPriority, *gen));
    const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    ReportAccountCounters(*gen);
    log.Debug("partial.people", "a partial run reconciled people",
              {{"people", static_cast<long long>(request.emails.size())}});
    FinishedRun("partial", report, seconds);
  }

  // Full runs, one at a time: on schedule, on request, after a reload.
  void BulkLoop() {
    std::unique_lock<std::mutex> l(mu);
    while (!stopping) {
      if (sync_requested || Clock::now() >= next_full) {
        sync_requested = false;
        full_running = true;
        l.unlock();
        FullRun();
        l.lock();
        full_running = false;
        continue;
      }
      cv.wait_until(l, next_full);
    }
    bulk_thread_done = true;
    cv.notify_all();
  }

  // Partial runs, one at a time, while full runs plan and send: the people
  // touched by SCIM writes and followed changes, batched for
  // options.batch_delay. They wait only for a first read of every directory
  // source (a full run's or a change feed's).
  void InteractiveLoop() {
    std::unique_lock<std::mutex> l(mu);
    while (!stopping) {
      const bool ready = !pending.empty() && !directory_missing();
      if (ready && Clock::now() >= first_pending + options.batch_delay) {
        std::vector<std::string> emails(pending.begin(), pending.end());
        pending.clear();
        partial_running = true;
        l.unlock();
        PartialRun(std::move(emails));
        l.lock();
        partial_running = false;
        continue;
      }
      if (ready) {
        cv.wait_until(l, first_pending + options.batch_delay);
      } else {
        cv.wait(l);
      }
    }
    interactive_thread_done = true;
    cv.notify_all();
  }

  // True while some directory source has no snapshot yet (mu held).
  bool directory_missing() const {
    if (!generation) return true;
    for (const auto& s : generation->config.sources) {
      if (s.type != config::SourceType::kScim && directory.count(s.name) == 0) return true;
    }
    return false;
  }

  // --- change feeds ---

  void StartFeeds(const config::Config& config) {
    for (const auto& source : config.sources) {
      if (!source.watch || source.type == config::SourceType::kScim) continue;
      auto feed = std::make_unique<Feed>();
      feed->source = source.name;
      Feed* raw = feed.get();
      config::SourceConfig copy = source;
      feed->thread = std::thread([this, raw, copy] { FeedLoop(*raw, copy); });
      feeds.push_back(std::move(feed));
    }
  }

  void StopFeeds() {
    for (auto& feed : feeds) {
      feed->stop = true;
      {
        std::lock_guard<std::mutex> l(feed->mu);
        if (feed->current != nullptr) feed->current->Interrupt();
        feed->cv.notify_all();
      }
    }
    for (auto& feed : feeds) {
      if (feed->thread.joinable()) feed->thread.join();
    }
    feeds.clear();
  }

  void FeedLoop(Feed& feed, const config::SourceConfig& source) {
    StoreFeedState state(*store, source.name);
    const auto retry =
        std::max<std::chrono::milliseconds>(source.watch_interval, std::chrono::seconds(5));
    while (!feed.stop) {
      Result<std::unique_ptr<mapping::ChangeFeed>> followed =
          [&]() -> Result<std::unique_ptr<mapping::ChangeFeed>> {
        ConnectorContext context;
        context.store = store.get();
        ASSIGN_OR_RETURN(std::unique_ptr<mapping::IdentitySource> reader,
                         BuiltinConnectors().Create(source, context));
        return reader->Follow(state);
      }();
      if (!followed.ok()) {
        log.Warning("feed.unavailable",
                    "cannot follow the source's changes; full runs go on, retrying later",
                    {{"source", source.name}, {"error", followed.status().message()}});
        FeedFailed(source, followed.status().message());
        std::unique_lock<std::mutex> l(feed.mu);
        feed.cv.wait_for(l, retry * 4, [&] { return feed.stop.load(); });
        continue;
      }
      std::unique_ptr<mapping::ChangeFeed> current = std::move(followed).value();
      {
        std::lock_guard<std::mutex> l(feed.mu);
        feed.current = current.get();
      }
      log.Info("feed.started", "following the source's changes",
               {{"source", source.name}, {"method", std::string(current->method())}});
      bool first = true;
      while (!feed.stop) {
        Result<std::optional<mapping::SourceChange>> next =
            current->Next(std::chrono::milliseconds(1000));
        if (!next.ok()) {
          if (!feed.stop) {
            log.Warning("feed.error", "lost track of the source's changes; full runs go on",
                        {{"source", source.name}, {"error", next.status().message()}});
            FeedFailed(source, next.status().message());
          }
          break;
        }
        const bool full = next->has_value() && (*next)->full;
        if (first) {
          // The first answer tells whether the feed picked up where the
          // last one stopped (its saved cookie) or read everything again.
          first = false;
          if (state.TakeLoaded() && !full) {
            log.Info("feed.resumed", "the change feed resumed from its saved state",
                     {{"source", source.name}});
          }
        }
        if (!next->has_value()) continue;
        const auto people = static_cast<long long>((*next)->emails.size());
        if (full) {
          log.Info("feed.refreshed", "the change feed read the whole source",
                   {{"source", source.name},
                    {"users", static_cast<long long>((*next)->snapshot->users.size())}});
        } else {
          log.Debug("feed.changes", "the change feed delivered changes",
                    {{"source", source.name}, {"people", people}});
        }
        ApplyChange(source, std::move(**next));
        FeedRecovered(source);
      }
      {
        std::lock_guard<std::mutex> l(feed.mu);
        feed.current = nullptr;
      }
      current.reset();
      std::unique_lock<std::mutex> l(feed.mu);
      feed.cv.wait_for(l, retry, [&] { return feed.stop.load(); });
    }
  }

  // A feed that cannot follow its source makes it failing, as a failed read
  // does: /v1/status and the metrics show it, and the snapshot the feed
  // kept becomes the last good read (partial runs take nobody's access on
  // its word) until a feed or a full read succeeds again.
  void FeedFailed(const config::SourceConfig& source, const std::string& error) {
    metrics.SourceRead(source.name, false, 0, UnixNow());
    {
      std::lock_guard<std::mutex> l(mu);
      feed_failing.insert(source.name);
      auto it = directory.find(source.name);
      if (it != directory.end() && !it->second->failed) {
        // Rare, and partial runs may hold the old one: a copy.
        auto marked = std::make_shared<mapping::SourceSnapshot>(*it->second);
        marked->failed = true;
        it->second = std::move(marked);
      }
    }
    NoteFeedFailed(*store, source, error, SystemNowMs());
  }

  // After FeedFailed, a change delivered again: the source is read again.
  void FeedRecovered(const config::SourceConfig& source) {
    std::int64_t users = 0;
    std::int64_t groups = 0;
    {
      std::lock_guard<std::mutex> l(mu);
      if (feed_failing.erase(source.name) == 0) return;
      auto it = directory.find(source.name);
      if (it != directory.end()) {
        users = static_cast<std::int64_t>(it->second->users.size());
        groups = static_cast<std::int64_t>(it->second->groups.size());
      }
    }
    if (NoteFeedRecovered(*store, source.name, users, groups, SystemNowMs())) {
      metrics.SourceRead(source.name, true, users + groups, UnixNow());
    }
  }

  void ApplyChange(const config::SourceConfig& source, mapping::SourceChange change) {
    std::vector<std::string> emails = std::move(change.emails);
    // The directory shares the feed's snapshot (the feed copies it before its
    // next patch while this one is held); a copy only when it is not marked
    // as a good read of this source.
    std::shared_ptr<const mapping::SourceSnapshot> snapshot = std::move(change.snapshot);
    if (snapshot->source != source.name || snapshot->failed || snapshot->never_read) {
      auto fixed = std::make_shared<mapping::SourceSnapshot>(*snapshot);
      fixed->source = source.name;
      fixed->failed = false;
      fixed->never_read = false;
      snapshot = std::move(fixed);
    }
    std::lock_guard<std::mutex> l(mu);
    auto it = directory.find(source.name);
    if (change.full) {
      // Everyone the source knew or knows now.
      if (it != directory.end()) {
        for (const auto& u : it->second->users) emails.push_back(u.email);
      }
      for (const auto& u : snapshot->users) emails.push_back(u.email);
    }
    // The old one is freed after the lock (declared before it).
    std::swap(directory[source.name], snapshot);
    if (emails.empty()) return;
    if (pending.empty()) first_pending = Clock::now();
    for (const auto& e : emails) {
      if (!e.empty()) pending.insert(base::AsciiLower(e));
    }
    cv.notify_all();
  }

  // --- AdminBackend ---

  Status RequestSync() override {
    std::lock_guard<std::mutex> l(mu);
    if (stopping) return UnavailableError("idsyncd is stopping");
    sync_requested = true;
    cv.notify_all();
    return Status::Ok();
  }

  Result<std::string> StatusJson() override {
    std::shared_ptr<Generation> gen = Current();
    DaemonStatus daemon;
    {
      std::lock_guard<std::mutex> l(mu);
      const auto until_full =
          std::chrono::duration_cast<std::chrono::seconds>(next_full - Clock::now()).count();
      daemon.running = full_running || partial_running;
      daemon.next_full_run_in_seconds = std::max<std::int64_t>(0, until_full);
      daemon.people_waiting = static_cast<std::int64_t>(pending.size());
      daemon.last_run = last_run_line;
    }
    return daemon::StatusJson(gen->config, *store, &daemon);
  }

  Result<std::string> PlanJson() override {
    std::shared_ptr<Generation> gen = Current();
    Syncer syncer(gen->config, *store, *gen->account, SystemNowMs, Reads());
    Result<PlannedRun> run = syncer.Plan(false);
    ReportAccountCounters(*gen);
    if (!run.ok()) return run.status();
    return daemon::PlanJson(run->plan, run->catalog, run->projects);
  }

  Result<std::string> ExplainJson(const std::string& email) override {
    std::shared_ptr<Generation> gen = Current();
    mapping::Catalog catalog = mapping::Catalog::Builtin();
    if (gen->config.catalog_source == config::CatalogSource::kAccount) {
      if (std::optional<mapping::Catalog> cached = CachedAccountCatalog(*store)) {
        catalog = std::move(*cached);
      }
    }
    ASSIGN_OR_RETURN(std::unique_ptr<mapping::RuleSet> rules, CompileRules(gen->config, catalog));
    std::vector<std::shared_ptr<const mapping::SourceSnapshot>> held;
    std::vector<const mapping::SourceSnapshot*> snapshots;
    for (const auto& source : gen->config.sources) {
      std::shared_ptr<const mapping::SourceSnapshot> snapshot;
      if (source.type == config::SourceType::kScim) {
        snapshot = std::make_shared<const mapping::SourceSnapshot>(ScimSnapshot(source.name));
      } else {
        std::lock_guard<std::mutex> l(mu);
        auto it = directory.find(source.name);
        if (it != directory.end()) snapshot = it->second;
      }
      if (snapshot == nullptr) {
        auto empty = std::make_shared<mapping::SourceSnapshot>();
        empty->source = source.name;
        snapshot = std::move(empty);
      }
      held.push_back(snapshot);
      snapshots.push_back(held.back().get());
    }
    std::vector<std::string> only = {base::AsciiLower(email)};
    mapping::MapOptions map_options;
    map_options.details = true;
    map_options.only_emails = &only;
    ASSIGN_OR_RETURN(mapping::MappingResult mapped, mapping::Map(*rules, snapshots, map_options));
    const mapping::PersonAccess* person = mapped.Find(email);
    if (person == nullptr) return NotFoundError("no source knows " + email);
    return daemon::ExplainJson(*rules, *person);
  }

  std::vector<std::string> NotReadyReasons() override {
    std::vector<std::string> reasons;
    std::lock_guard<std::mutex> l(mu);
    if (!generation) reasons.push_back("configuration not loaded");
    if (!store_problem.empty()) reasons.push_back("store not writable: " + store_problem);
    return reasons;
  }
};

Process::Process(Logger& logger, Metrics& metrics, Notifier& notifier, ProcessOptions options)
    : impl_(std::make_unique<Impl>(logger, metrics, notifier, options)) {}

Process::~Process() { Stop(); }

Status Process::Start(const config::Config& config) {
  Impl& p = *impl_;
  const std::string path = config.SqlitePath();
  if (!path.empty() && path != ":memory:") {
    RETURN_IF_ERROR(EnterStoreOwner(path));
    p.lock = std::make_unique<RunLock>(path);
    Status locked = p.lock->Acquire("idsyncd");
    if (!locked.ok()) {
      p.lock.reset();
      return locked;
    }
  }
  ASSIGN_OR_RETURN(p.store, store::Store::Open(config.store));
  p.executor = std::make_unique<engine::Executor>(std::clamp(config.account.concurrency, 1, 64));

  auto gen = std::make_shared<Generation>();
  gen->config = config;
  if (config.account.url.empty()) {
    return InvalidArgumentError(config.path + ": idsyncd needs an `account:` section");
  }
  ASSIGN_OR_RETURN(gen->account, account::AccountClient::Create(config.account));

  p.DeclareSources(config);
  ASSIGN_OR_RETURN(p.scim, p.MakeScim(config, nullptr));
  p.InstallEndpoint(*p.scim, config);
  {
    std::lock_guard<std::mutex> l(p.mu);
    p.generation = gen;
    std::erase_if(p.generations, [](const auto& weak) { return weak.expired(); });
    p.generations.push_back(gen);
    p.next_full = Clock::now();  // the first full run starts at once
  }

  if (!config.server.listen.empty()) {
    httpd::Options o;
    o.listen = config.server.listen;
    o.tls_cert = config.server.tls_cert;
    o.tls_key = config.server.tls_key;
    o.max_body = config.server.max_body;
    // Identity providers keep connections open and each open connection holds
    // a worker: size for 64 of them (bench/README.md, "SCIM listener").
    o.threads = 64;
    o.render_error = scim::ScimErrorResponse;
    Result<std::unique_ptr<httpd::Server>> server =
        httpd::Server::Start(o, [&p](const httpd::Request& r) { return p.HandleScim(r); });
    if (!server.ok()) return server.status().WithContext("SCIM listener");
    p.scim_server = std::move(server).value();
  }
  p.admin = std::make_unique<AdminApi>(config.server.admin_tokens, p, p.metrics);
  if (!config.server.admin_listen.empty()) {
    httpd::Options o;
    o.listen = config.server.admin_listen;
    o.threads = 4;
    o.render_error = AdminErrorResponse;
    Result<std::unique_ptr<httpd::Server>> server = httpd::Server::Start(o, p.admin->AsHandler());
    if (!server.ok()) {
      if (p.scim_server) p.scim_server->Stop(std::chrono::milliseconds(100));
      p.scim_server.reset();
      return server.status().WithContext("admin listener");
    }
    p.admin_server = std::move(server).value();
  }
  p.bulk_thread = std::thread([&p] { p.BulkLoop(); });
  p.interactive_thread = std::thread([&p] { p.InteractiveLoop(); });
  p.StartFeeds(config);
  return Status::Ok();
}

Status Process::Reload(const config::Config& config) {
  Impl& p = *impl_;
  std::shared_ptr<Generation> old = p.Current();
  if (!old) return FailedPreconditionError("not started");
  const config::Config& was = old->config;
  std::vector<std::string> restart;
  if (config.store != was.store) restart.push_back("store");
  if (config.server.listen != was.server.listen) restart.push_back("server.listen");
  if (config.server.admin_listen != was.server.admin_listen) {
    restart.push_back("server.admin_listen");
  }
  if (config.server.tls_cert != was.server.tls_cert ||
      config.server.tls_key != was.server.tls_key) {
    restart.push_back("server.tls");
  }
  if (!restart.empty()) {
    return FailedPreconditionError("changing " + Join(restart) + " needs a restart");
  }
  auto gen = std::make_shared<Generation>();
  gen->config = config;
  if (config.account.url.empty()) {
    return InvalidArgumentError(config.path + ": idsyncd needs an `account:` section");
  }
  ASSIGN_OR_RETURN(gen->account, account::AccountClient::Create(config.account));
  {
    // Requests in flight finish first; new ones wait for the swap.
    std::unique_lock<std::shared_mutex> l(p.scim_mu);
    p.DeclareSources(config);
    ASSIGN_OR_RETURN(std::unique_ptr<ScimLive> live, p.MakeScim(config, p.scim.get()));
    if (!live->service) {
      live->persistence = std::move(p.scim->persistence);
      live->service = std::move(p.scim->service);
    }
    p.InstallEndpoint(*live, config);
    p.scim = std::move(live);
  }
  p.admin->SetTokenHashes(config.server.admin_tokens);
  p.executor->SetConcurrency(std::clamp(config.account.concurrency, 1, 64));
  p.StopFeeds();
  {
    std::lock_guard<std::mutex> l(p.mu);
    p.generation = gen;
    std::erase_if(p.generations, [](const auto& weak) { return weak.expired(); });
    p.generations.push_back(gen);
    // Drop snapshots of sources that are gone; new rules apply in a full run now.
    for (auto it = p.directory.begin(); it != p.directory.end();) {
      it = config.FindSource(it->first) == nullptr ? p.directory.erase(it) : std::next(it);
    }
    p.sync_requested = true;
    p.cv.notify_all();
  }
  p.StartFeeds(config);
  return Status::Ok();
}

bool Process::Stop() {
  Impl& p = *impl_;
  {
    std::lock_guard<std::mutex> l(p.mu);
    if (p.stopping && !p.bulk_thread.joinable() && !p.interactive_thread.joinable()) return true;
    p.stopping = true;
    p.cv.notify_all();
  }
  p.cancel_run = true;
  {
    // A write waiting to retry gives up now rather than at the forced exit;
    // it stays sent, and the next start finishes it with the same key.
    std::lock_guard<std::mutex> l(p.mu);
    for (const std::weak_ptr<Generation>& weak : p.generations) {
      if (std::shared_ptr<Generation> gen = weak.lock()) gen->account->Interrupt();
    }
  }
  // Stop accepting SCIM first: what was accepted is already in the store.
  if (p.scim_server) p.scim_server->Stop(std::chrono::seconds(5));
  p.StopFeeds();
  bool parked = true;
  if (p.bulk_thread.joinable() || p.interactive_thread.joinable()) {
    std::unique_lock<std::mutex> l(p.mu);
    parked = p.cv.wait_for(l, p.options.stop_grace, [&] {
      return (p.bulk_thread_done || !p.bulk_thread.joinable()) &&
             (p.interactive_thread_done || !p.interactive_thread.joinable());
    });
    l.unlock();
    if (!parked) return false;  // the caller exits; sent writes are finished after restart
    if (p.bulk_thread.joinable()) p.bulk_thread.join();
    if (p.interactive_thread.joinable()) p.interactive_thread.join();
  }
  if (p.admin_server) p.admin_server->Stop(std::chrono::seconds(2));
  p.admin_server.reset();
  p.scim_server.reset();
  p.lock.reset();
  return parked;
}

bool Process::Alive() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return impl_->generation != nullptr && !impl_->bulk_thread_done &&
         !impl_->interactive_thread_done;
}

std::vector<int> Process::scim_ports() const {
  return impl_->scim_server ? impl_->scim_server->ports() : std::vector<int>{};
}

std::vector<int> Process::admin_ports() const {
  return impl_->admin_server ? impl_->admin_server->ports() : std::vector<int>{};
}

}  // namespace idsync::daemon
