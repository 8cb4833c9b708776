// The latest snapshot of every source, as runs between full runs see them:
// each directory source's from the last full run's read or its change feed
// (the `directory` map), and each SCIM source's from the live SCIM service.
// Partial runs and explain read it; full runs and feeds replace entries.
//
// Snapshots are shared (shared_ptr), never copied to be handed out: a
// partial run keeps the ones it took while a feed replaces them, and a feed
// copies its own before patching it while anyone here still holds it.
// Thread-safe; no method calls out while holding the lock (SCIM snapshots are
// taken after it is released).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "idsync/config/config.h"
#include "idsync/daemon/inputs.h"
#include "idsync/mapping/model.h"
#include "idsync/store/store.h"

#include "scim_front.h"

namespace idsync::daemon {

class SnapshotCache {
 public:
  using Snapshot = std::shared_ptr<const mapping::SourceSnapshot>;

  // `scim` gives the SCIM sources' snapshots; it must outlive the cache.
  explicit SnapshotCache(const ScimFront& scim);

  // What a full run read (config order; a failed source's last good read in
  // its place): replaces every directory source's snapshot, moving from
  // `snapshots`. SCIM sources are left out (the service is their copy).
  void PutReads(const config::Config& config, std::vector<mapping::SourceSnapshot>& snapshots);

  // Replaces `source`'s snapshot (a change feed's); returns the one it
  // replaced, nullptr when there was none.
  Snapshot Replace(const std::string& source, Snapshot snapshot);

  // Marks `source`'s snapshot failed (its feed failed): partial runs then
  // take nobody's access on its word. Nothing when it has none.
  void MarkFailed(const std::string& source);

  // The number of users and groups in `source`'s snapshot; 0 and 0 for none.
  std::pair<std::int64_t, std::int64_t> Counts(const std::string& source) const;

  // True while some directory source of `config` has no snapshot yet.
  bool Missing(const config::Config& config) const;

  // Every source's snapshot in `config` order (SCIM sources taken from the
  // service now), for a partial run; nullopt while Missing(config). With
  // `emails` (ASCII lower-cased), a SCIM source's snapshot holds only what
  // those people need (ScimService::Snapshot with emails): a partial run
  // costs what its people cost, not what the source holds.
  std::optional<std::vector<Snapshot>> ForRun(
      const config::Config& config, const std::vector<std::string>* emails = nullptr) const;

  // As ForRun, with an empty snapshot (named after its source) for a
  // directory source that has none yet (explain).
  std::vector<Snapshot> Latest(const config::Config& config) const;

  // Forgets the snapshots of sources `config` no longer has (a reload).
  void Retain(const config::Config& config);

  // A ReadContext that reads SCIM sources from the service and the others
  // through their connectors (full runs, plans).
  ReadContext Reads(store::Store& store) const;

 private:
  const ScimFront& scim_;
  mutable std::mutex mu_;
  std::map<std::string, Snapshot> directory_;  // guarded by mu_; by source name
};

}  // namespace idsync::daemon
