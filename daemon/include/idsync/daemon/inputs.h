// What every run and every command reads first: the rules compiled against a
// catalog, and a snapshot of each source. A source whose read fails stands in
// with its last good read from the store, marked failed, so that nobody it
// granted anything loses access while it fails (DESIGN.md, "Failed sources").
//
// Thread-compatible: functions keep no state of their own (the store they are
// given is thread-safe).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/config/config.h"
#include "idsync/mapping/catalog.h"
#include "idsync/mapping/model.h"
#include "idsync/mapping/rules.h"
#include "idsync/store/store.h"

namespace idsync::daemon {

// Compiles the configuration's presets and rules against `catalog`.
// kInvalidArgument naming the rule or preset (the loader has already checked
// them against the catalog it was given; this catches a catalog change).
Result<std::unique_ptr<mapping::RuleSet>> CompileRules(const config::Config& config,
                                                       const mapping::Catalog& catalog);

// One source's state for `status`, /v1/status and the metrics. Kept in the
// store (SourceState::PutHealth) so that the CLI and the daemon show the same.
using SourceStatus = store::SourceHealth;

// The JSON object of a SourceStatus (status --json, /v1/status).
std::string SourceStatusJson(const SourceStatus& status);

struct SourceReads {
  std::vector<mapping::SourceSnapshot> snapshots;  // one per source, config order
  std::vector<std::string> failed;                 // names of the sources that failed
  std::vector<std::string> errors;                 // "NAME: message", parallel to failed
  std::vector<SourceStatus> states;                // one per source, config order
  // A failed source has no earlier good read to stand in for it, so nobody
  // may lose access in this run.
  bool hold_all = false;
};

// How ReadAllSources reads and what it keeps.
struct ReadContext {
  // The last good reads and the source states; nullptr: neither is used (a
  // failed source then counts as never read).
  store::Store* store = nullptr;
  // Store each good read and each source's state (apply, the daemon). Off,
  // the store is only read (plan, explain).
  bool record = false;
  // Reads a source instead of its connector (the daemon answers SCIM sources
  // from its live SCIM service); nullopt: use the connector.
  std::function<std::optional<Result<mapping::SourceSnapshot>>(const config::SourceConfig&)> read;
  // Milliseconds since the Unix epoch; unset: the system clock.
  std::function<std::int64_t()> now;
};

// Reads every source (through `context.read` or the built-in connectors).
// A source that fails is replaced by its last good read (failed = true) or,
// when it has none, by an empty snapshot (never_read = true, hold_all set);
// the others are still read. A failure to record in the store is not a read
// failure (the run goes on; the state is written next time).
SourceReads ReadAllSources(const config::Config& config, const ReadContext& context = {});

// Each configured source's state as last recorded in `store` (config order);
// a source never recorded shows as never read.
std::vector<SourceStatus> LoadSourceStatuses(const config::Config& config, store::Store& store);

// A change feed that cannot follow `source` makes it failing, as a failed read
// does: its recorded state (a never-recorded source shows as never read) gets
// failing, last_error "change feed: <error>" at `now_ms`. A store failure is
// ignored (the next read or feed records the state again).
void NoteFeedFailed(store::Store& store, const config::SourceConfig& source,
                    const std::string& error, std::int64_t now_ms);

// After NoteFeedFailed, the feed delivered again: the source is read again
// (not failing, last success `now_ms`, `users` and `groups` as the feed's
// snapshot has them). False, and nothing recorded, when the source has no
// recorded state or it cannot be read.
bool NoteFeedRecovered(store::Store& store, const std::string& source, std::int64_t users,
                       std::int64_t groups, std::int64_t now_ms);

// The account's catalog as the last full run (or `validate --online`) cached it
// in `store`; nullopt when none is cached or it cannot be read. Whether a
// configuration uses it (`permissions: {catalog: account}`) is the caller's
// question.
std::optional<mapping::Catalog> CachedAccountCatalog(store::Store& store);

// How `config` says to open its store: the URL, the password, and an
// application_name of "idsyncd" or "idsync" (`program`) and the replica id,
// which names the sessions in pg_stat_activity.
store::StoreOptions StoreOptionsFor(const config::Config& config, std::string_view program);

// The catalog commands check a configuration against before it is loaded:
// CachedAccountCatalog of the store `config_path` names when that store is a
// SQLite file that exists (it is never created; run as root, the process
// first becomes the store's owner, see EnterStoreOwner), else the built-in
// one (for a PostgreSQL store too: its password is not known yet).
mapping::Catalog OfflineCatalog(const std::string& config_path);

}  // namespace idsync::daemon
