// SnapshotCache (snapshot_cache.h): the latest snapshot of every source for
// partial runs and explain. Thread-safe: one lock, never held while calling out.
#include "snapshot_cache.h"

namespace idsync::daemon {

SnapshotCache::SnapshotCache(const ScimFront& scim) : scim_(scim) {}

void SnapshotCache::PutReads(const config::Config& config,
                             std::vector<mapping::SourceSnapshot>& snapshots) {
  std::lock_guard<std::mutex> l(mu_);
  for (std::size_t i = 0; i < config.sources.size() && i < snapshots.size(); ++i) {
    const auto& source = config.sources[i];
    if (source.pushed) continue;
    directory_[source.name] =
        std::make_shared<const mapping::SourceSnapshot>(std::move(snapshots[i]));
  }
}

SnapshotCache::Snapshot SnapshotCache::Replace(const std::string& source, Snapshot snapshot) {
  std::lock_guard<std::mutex> l(mu_);
  std::swap(directory_[source], snapshot);
  // The old one is freed by the caller, after the lock.
  return snapshot;
}

void SnapshotCache::MarkFailed(const std::string& source) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = directory_.find(source);
  if (it != directory_.end() && it->second != nullptr && !it->second->failed) {
    // Rare, and partial runs may hold the old one: a copy.
    auto marked = std::make_shared<mapping::SourceSnapshot>(*it->second);
    marked->failed = true;
    it->second = std::move(marked);
  }
}

std::pair<std::int64_t, std::int64_t> SnapshotCache::Counts(const std::string& source) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = directory_.find(source);
  if (it == directory_.end() || it->second == nullptr) return {0, 0};
  return {static_cast<std::int64_t>(it->second->users.size()),
          static_cast<std::int64_t>(it->second->groups.size())};
}

bool SnapshotCache::Missing(const config::Config& config) const {
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& s : config.sources) {
    if (!s.pushed && directory_.count(s.name) == 0) return true;
  }
  return false;
}

std::optional<std::vector<SnapshotCache::Snapshot>> SnapshotCache::ForRun(
    const config::Config& config, const std::vector<std::string>* emails) const {
  std::vector<Snapshot> snapshots;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& source : config.sources) {
      if (source.pushed) {
        snapshots.emplace_back();
        continue;
      }
      auto it = directory_.find(source.name);
      if (it == directory_.end()) return std::nullopt;
      snapshots.push_back(it->second);
    }
  }
  for (std::size_t i = 0; i < config.sources.size(); ++i) {
    const auto& source = config.sources[i];
    if (!source.pushed) continue;
    snapshots[i] = std::make_shared<const mapping::SourceSnapshot>(
        emails != nullptr ? scim_.Snapshot(source.name, *emails) : scim_.Snapshot(source.name));
  }
  return snapshots;
}

std::vector<SnapshotCache::Snapshot> SnapshotCache::Latest(const config::Config& config) const {
  std::vector<Snapshot> snapshots;
  for (const auto& source : config.sources) {
    Snapshot snapshot;
    if (source.pushed) {
      snapshot = std::make_shared<const mapping::SourceSnapshot>(scim_.Snapshot(source.name));
    } else {
      std::lock_guard<std::mutex> l(mu_);
      auto it = directory_.find(source.name);
      if (it != directory_.end()) snapshot = it->second;
    }
    if (snapshot == nullptr) {
      auto empty = std::make_shared<mapping::SourceSnapshot>();
      empty->source = source.name;
      snapshot = std::move(empty);
    }
    snapshots.push_back(std::move(snapshot));
  }
  return snapshots;
}

void SnapshotCache::Retain(const config::Config& config) {
  std::vector<Snapshot> dropped;  // freed after the lock
  std::lock_guard<std::mutex> l(mu_);
  for (auto it = directory_.begin(); it != directory_.end();) {
    if (config.FindSource(it->first) == nullptr) {
      dropped.push_back(std::move(it->second));
      it = directory_.erase(it);
    } else {
      ++it;
    }
  }
}

ReadContext SnapshotCache::Reads(store::Store& store) const {
  ReadContext context;
  context.store = &store;
  context.read =
      [this](const config::SourceConfig& source) -> std::optional<Result<mapping::SourceSnapshot>> {
    if (!source.pushed) return std::nullopt;
    return Result<mapping::SourceSnapshot>(scim_.Snapshot(source.name));
  };
  return context;
}

}  // namespace idsync::daemon
