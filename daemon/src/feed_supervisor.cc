// FeedSupervisor (feed_supervisor.h): one thread per watched source following
// its changes. Start and Stop on the controller's thread; the feeds share only
// the set of failing ones.
#include "feed_supervisor.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <utility>

#include "idsync/daemon/connector_registry.h"
#include "idsync/daemon/inputs.h"

namespace idsync::daemon {
namespace {

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

}  // namespace

struct FeedSupervisor::Feed {
  std::string source;
  std::thread thread;
  std::mutex mu;
  mapping::ChangeFeed* current = nullptr;  // guarded by mu
  std::atomic<bool> stop{false};
  std::condition_variable cv;
};

FeedSupervisor::FeedSupervisor(Logger& log, Metrics& metrics, store::Store& store, NowFn now,
                               SnapshotCache& snapshots, Scheduler& scheduler)
    : log_(log),
      metrics_(metrics),
      store_(store),
      now_(std::move(now)),
      snapshots_(snapshots),
      scheduler_(scheduler) {}

FeedSupervisor::~FeedSupervisor() { Stop(); }

double FeedSupervisor::UnixNow() const { return static_cast<double>(now_()) / 1000.0; }

void FeedSupervisor::Start(const config::Config& config) {
  for (const auto& source : config.sources) {
    if (!source.watch || source.pushed) continue;
    auto feed = std::make_unique<Feed>();
    feed->source = source.name;
    Feed* raw = feed.get();
    config::SourceConfig copy = source;
    feed->thread = std::thread([this, raw, copy] { FeedLoop(*raw, copy); });
    feeds_.push_back(std::move(feed));
  }
}

void FeedSupervisor::Stop() {
  for (auto& feed : feeds_) {
    feed->stop = true;
    {
      std::lock_guard<std::mutex> l(feed->mu);
      if (feed->current != nullptr) feed->current->Interrupt();
      feed->cv.notify_all();
    }
  }
  for (auto& feed : feeds_) {
    if (feed->thread.joinable()) feed->thread.join();
  }
  feeds_.clear();
}

void FeedSupervisor::FeedLoop(Feed& feed, const config::SourceConfig& source) {
  StoreFeedState state(store_, source.name);
  const auto retry =
      std::max<std::chrono::milliseconds>(source.watch_interval, std::chrono::seconds(5));
  while (!feed.stop) {
    Result<std::unique_ptr<mapping::ChangeFeed>> followed =
        [&]() -> Result<std::unique_ptr<mapping::ChangeFeed>> {
      ConnectorContext context;
      context.store = &store_;
      ASSIGN_OR_RETURN(std::unique_ptr<mapping::IdentitySource> reader,
                       BuiltinConnectors().Create(source, context));
      return reader->Follow(state);
    }();
    if (!followed.ok()) {
      log_.Warning("feed.unavailable",
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
    log_.Info("feed.started", "following the source's changes",
              {{"source", source.name}, {"method", std::string(current->method())}});
    bool first = true;
    while (!feed.stop) {
      Result<std::optional<mapping::SourceChange>> next =
          current->Next(std::chrono::milliseconds(1000));
      if (!next.ok()) {
        if (!feed.stop) {
          log_.Warning("feed.error", "lost track of the source's changes; full runs go on",
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
          log_.Info("feed.resumed", "the change feed resumed from its saved state",
                    {{"source", source.name}});
        }
      }
      if (!next->has_value()) continue;
      const auto people = static_cast<long long>((*next)->emails.size());
      if (full) {
        log_.Info("feed.refreshed", "the change feed read the whole source",
                  {{"source", source.name},
                   {"users", static_cast<long long>((*next)->snapshot->users.size())}});
      } else {
        log_.Debug("feed.changes", "the change feed delivered changes",
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
// does: /v1/status and the metrics show it, and the snapshot the feed kept
// becomes the last good read (partial runs take nobody's access on its word)
// until a feed or a full read succeeds again.
void FeedSupervisor::FeedFailed(const config::SourceConfig& source, const std::string& error) {
  metrics_.SourceRead(source.name, false, 0, UnixNow());
  {
    std::lock_guard<std::mutex> l(mu_);
    failing_.insert(source.name);
  }
  snapshots_.MarkFailed(source.name);
  NoteFeedFailed(store_, source, error, now_());
}

// After FeedFailed, a change delivered again: the source is read again.
void FeedSupervisor::FeedRecovered(const config::SourceConfig& source) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (failing_.erase(source.name) == 0) return;
  }
  const auto [users, groups] = snapshots_.Counts(source.name);
  if (NoteFeedRecovered(store_, source.name, users, groups, now_())) {
    metrics_.SourceRead(source.name, true, users + groups, UnixNow());
  }
}

void FeedSupervisor::ApplyChange(const config::SourceConfig& source, mapping::SourceChange change) {
  std::vector<std::string> emails = std::move(change.emails);
  // The cache shares the feed's snapshot (the feed copies it before its next
  // patch while this one is held); a copy only when it is not marked as a
  // good read of this source.
  std::shared_ptr<const mapping::SourceSnapshot> snapshot = std::move(change.snapshot);
  if (snapshot->source != source.name || snapshot->failed || snapshot->never_read) {
    auto fixed = std::make_shared<mapping::SourceSnapshot>(*snapshot);
    fixed->source = source.name;
    fixed->failed = false;
    fixed->never_read = false;
    snapshot = std::move(fixed);
  }
  if (change.full) {
    // Everyone the source knows now, and (below) everyone it knew.
    for (const auto& u : snapshot->users) emails.push_back(u.email);
  }
  // The one replaced is freed here, outside the cache's lock.
  SnapshotCache::Snapshot replaced = snapshots_.Replace(source.name, std::move(snapshot));
  if (change.full && replaced != nullptr) {
    for (const auto& u : replaced->users) emails.push_back(u.email);
  }
  std::erase_if(emails, [](const std::string& e) { return e.empty(); });
  scheduler_.Enqueue(emails);
}

}  // namespace idsync::daemon
