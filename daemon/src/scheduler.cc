// Scheduler (scheduler.h): the bulk and interactive run threads. Thread-safe:
// its state is under one lock, released while a run runs.
#include "scheduler.h"

#include <algorithm>
#include <utility>

#include "idsync/base/ascii.h"

namespace idsync::daemon {
namespace {

// Outbox priority of partial runs: ahead of bulk work after a crash.
constexpr int kPartialPriority = 10;

}  // namespace

Scheduler::Scheduler(const ProcessOptions& options, NowFn now, Logger& log,
                     Generations& generations, store::Store& store, engine::Executor& executor,
                     SnapshotCache& snapshots, RunReporter& reporter)
    : options_(options),
      now_(std::move(now)),
      log_(log),
      generations_(generations),
      store_(store),
      executor_(executor),
      snapshots_(snapshots),
      reporter_(reporter) {}

Scheduler::~Scheduler() = default;

void Scheduler::Start() {
  {
    std::lock_guard<std::mutex> l(mu_);
    // Also after a Join: a replica that leads again.
    stopping_ = false;
    bulk_thread_done_ = false;
    interactive_thread_done_ = false;
    next_full_ = Clock::now();  // the first full run starts at once
  }
  cancel_run_ = false;
  bulk_thread_ = std::thread([this] { BulkLoop(); });
  interactive_thread_ = std::thread([this] { InteractiveLoop(); });
}

void Scheduler::Enqueue(const std::vector<std::string>& emails) {
  if (emails.empty()) return;
  std::lock_guard<std::mutex> l(mu_);
  if (pending_.empty()) first_pending_ = Clock::now();
  for (const auto& e : emails) pending_.insert(base::AsciiLower(e));
  cv_.notify_all();
}

Status Scheduler::RequestFullRun(bool force) {
  std::lock_guard<std::mutex> l(mu_);
  if (stopping_) return UnavailableError("idsyncd is stopping");
  sync_requested_ = true;
  force_requested_ = force_requested_ || force;
  cv_.notify_all();
  return Status::Ok();
}

void Scheduler::Wake() {
  // Under the lock: a thread between its check and its wait misses nothing.
  std::lock_guard<std::mutex> l(mu_);
  cv_.notify_all();
}

void Scheduler::RequestStop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  cancel_run_ = true;
}

bool Scheduler::Join(std::chrono::milliseconds grace) {
  if (!joinable()) return true;
  std::unique_lock<std::mutex> l(mu_);
  const bool ended = cv_.wait_for(l, grace, [&] {
    return (bulk_thread_done_ || !bulk_thread_.joinable()) &&
           (interactive_thread_done_ || !interactive_thread_.joinable());
  });
  l.unlock();
  if (!ended) return false;
  if (bulk_thread_.joinable()) bulk_thread_.join();
  if (interactive_thread_.joinable()) interactive_thread_.join();
  return true;
}

bool Scheduler::joinable() const {
  return bulk_thread_.joinable() || interactive_thread_.joinable();
}

bool Scheduler::Alive() const {
  std::lock_guard<std::mutex> l(mu_);
  return !bulk_thread_done_ && !interactive_thread_done_;
}

DaemonStatus Scheduler::State() const {
  std::lock_guard<std::mutex> l(mu_);
  DaemonStatus status;
  status.running = full_running_ || partial_running_;
  const auto until_full =
      std::chrono::duration_cast<std::chrono::seconds>(next_full_ - Clock::now()).count();
  status.next_full_run_in_seconds = std::max<std::int64_t>(0, until_full);
  status.people_waiting = static_cast<std::int64_t>(pending_.size());
  return status;
}

// Full runs, one at a time: on schedule, on request, after a reload.
void Scheduler::BulkLoop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stopping_) {
    if (sync_requested_ || Clock::now() >= next_full_) {
      sync_requested_ = false;
      const bool force = std::exchange(force_requested_, false);
      full_running_ = true;
      l.unlock();
      FullRun(force);
      l.lock();
      full_running_ = false;
      continue;
    }
    cv_.wait_until(l, next_full_);
  }
  bulk_thread_done_ = true;
  cv_.notify_all();
}

// Partial runs, one at a time, while full runs plan and send. They wait only
// for a first read of every directory source (a full run's or a change
// feed's).
void Scheduler::InteractiveLoop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stopping_) {
    const bool ready = !pending_.empty() && !DirectoryMissing();
    if (ready && Clock::now() >= first_pending_ + options_.batch_delay) {
      std::vector<std::string> emails(pending_.begin(), pending_.end());
      pending_.clear();
      partial_running_ = true;
      l.unlock();
      PartialRun(std::move(emails));
      l.lock();
      partial_running_ = false;
      continue;
    }
    if (ready) {
      cv_.wait_until(l, first_pending_ + options_.batch_delay);
    } else {
      cv_.wait(l);
    }
  }
  interactive_thread_done_ = true;
  cv_.notify_all();
}

bool Scheduler::DirectoryMissing() const {
  std::shared_ptr<Generation> generation = generations_.Current();
  return generation == nullptr || snapshots_.Missing(generation->config);
}

Scheduler::Clock::duration Scheduler::FullInterval(const config::Config& config) {
  Clock::duration interval = std::chrono::minutes(15);
  Clock::duration jitter{0};
  bool first = true;
  for (const auto& s : config.sources) {
    // SCIM sources are pushed to, never read on a schedule.
    if (s.pushed) continue;
    if (first || s.interval < interval) {
      interval = s.interval;
      jitter = s.jitter;
    }
    first = false;
  }
  if (interval < std::chrono::seconds(1)) interval = std::chrono::seconds(1);
  const auto jitter_ms = std::chrono::duration_cast<std::chrono::milliseconds>(jitter).count();
  std::int64_t extra = 0;
  if (jitter_ms > 0) extra = static_cast<std::int64_t>(rng_() % (jitter_ms + 1));
  return interval + std::chrono::milliseconds(extra);
}

ApplyOptions Scheduler::RunOptions(const std::string& source, int priority,
                                   Generation& generation) {
  ApplyOptions o;
  o.source = source;
  o.priority = priority;
  o.cancelled = [this] { return cancel_run_.load(); };
  o.operation_done = [this](const std::string& op, const char* result) {
    reporter_.Operation(op, result);
  };
  o.rules = &generation.rules;
  o.window_counts = &window_counts_;
  return o;
}

void Scheduler::FullRun(bool force) {
  std::shared_ptr<Generation> gen = generations_.Current();
  if (force) {
    log_.Warning("run.started",
                 "a full run started that passes the safety limits, as asked (POST /v1/sync "
                 "with force)",
                 {{"force", "true"}});
  } else {
    log_.Info("run.started", "a full run started", {});
  }
  const auto started = Clock::now();
  Syncer syncer(gen->config, store_, *gen->account, now_, snapshots_.Reads(store_), &executor_);
  ApplyOptions run_options = RunOptions("full-run", 0, *gen);
  run_options.force = force;
  // What the run read, once it has planned: partial runs from here on use
  // these snapshots (while the full run is still sending).
  run_options.sources_read = [&](std::vector<mapping::SourceSnapshot>& snapshots,
                                 const std::vector<SourceStatus>& source_states) {
    snapshots_.PutReads(gen->config, snapshots);
    reporter_.SourcesRead(source_states);
    Wake();  // partial runs waiting for a first read
  };
  Result<ApplyReport> report = syncer.Apply(run_options);
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  reporter_.AccountRequests(*gen);
  reporter_.Finished("full", report, seconds);
  // A partial run planned these people while this run was under way; its
  // plan may have used an older read of the directories than this run's:
  // plan them again now, against the mirror.
  if (report.ok() && !report->superseded.empty()) Enqueue(report->superseded);
  PruneHistory(gen->config);
  std::lock_guard<std::mutex> l(mu_);
  if (report.ok() && !report->stopped) {
    next_full_ = Clock::now() + FullInterval(gen->config);
  } else {
    next_full_ = Clock::now() +
                 std::min<Clock::duration>(FullInterval(gen->config), options_.retry_after_failure);
  }
}

void Scheduler::PruneHistory(const config::Config& config) {
  const std::int64_t keep_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(config.retention_runs).count();
  Result<store::HistoryPruned> pruned =
      store_.runs().PruneHistory(now_() - keep_ms, kRunsAlwaysKept);
  if (!pruned.ok()) {
    log_.Warning("store.prune_failed",
                 "finished history could not be pruned; tried again after "
                 "the next full run",
                 {{"error", pruned.status().message()}});
  } else if (pruned->entries > 0 || pruned->runs > 0) {
    log_.Info("store.pruned", "finished outbox entries and runs past retention.runs were deleted",
              {{"entries", static_cast<long long>(pruned->entries)},
               {"runs", static_cast<long long>(pruned->runs)}});
  }
}

void Scheduler::PartialRun(std::vector<std::string> emails) {
  std::shared_ptr<Generation> gen = generations_.Current();
  // Held for the run: a change delivered meanwhile replaces the cache's
  // pointer, not these.
  std::vector<std::string> people;
  people.reserve(emails.size());
  for (const std::string& e : emails) people.push_back(base::AsciiLower(e));
  std::sort(people.begin(), people.end());
  people.erase(std::unique(people.begin(), people.end()), people.end());
  std::optional<std::vector<SnapshotCache::Snapshot>> snapshots =
      snapshots_.ForRun(gen->config, &people);
  if (!snapshots.has_value()) {
    // No read of some source yet: wait for the full run to cover them.
    std::lock_guard<std::mutex> l(mu_);
    for (auto& e : emails) pending_.insert(e);
    if (pending_.size() == emails.size()) first_pending_ = Clock::now();
    return;
  }
  PartialRequest request;
  for (std::size_t i = 0; i < gen->config.sources.size(); ++i) {
    const auto& source = gen->config.sources[i];
    const mapping::SourceSnapshot& snap = *(*snapshots)[i];
    if (!source.pushed && snap.failed) {
      request.failed_sources.push_back(source.name);
      if (snap.never_read) request.hold_all = true;
    }
    request.snapshots.push_back(&snap);
  }
  request.emails = std::move(emails);
  const auto started = Clock::now();
  Syncer syncer(gen->config, store_, *gen->account, now_, snapshots_.Reads(store_), &executor_);
  Result<ApplyReport> report =
      syncer.ApplyPartial(request, RunOptions("partial", kPartialPriority, *gen));
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  reporter_.AccountRequests(*gen);
  log_.Debug("partial.people", "a partial run reconciled people",
             {{"people", static_cast<long long>(request.emails.size())}});
  reporter_.Finished("partial", report, seconds);
}

}  // namespace idsync::daemon
