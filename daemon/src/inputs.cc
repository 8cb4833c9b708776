#include "idsync/daemon/inputs.h"

#include <chrono>

#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "idsync/daemon/connector_registry.h"
#include "idsync/daemon/run_lock.h"

namespace idsync::daemon {
namespace {

std::int64_t WallNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

SourceStatus LoadStatus(store::Store& store, const config::SourceConfig& source) {
  SourceStatus status;
  Result<std::optional<SourceStatus>> stored = store.sources().GetHealth(source.name);
  if (stored.ok() && stored->has_value()) {
    status = std::move(**stored);
  } else {
    status.never_read = true;
  }
  status.name = source.name;
  status.type = source.type;
  return status;
}

}  // namespace

Result<std::unique_ptr<mapping::RuleSet>> CompileRules(const config::Config& config,
                                                       const mapping::Catalog& catalog) {
  ASSIGN_OR_RETURN(mapping::PresetBook presets,
                   mapping::PresetBook::Create(catalog, config.custom_presets));
  std::vector<std::string> source_names;
  for (const auto& s : config.sources) source_names.push_back(s.name);
  ASSIGN_OR_RETURN(mapping::RuleSet rules,
                   mapping::RuleSet::Compile(config.rules, catalog, presets, source_names));
  return std::make_unique<mapping::RuleSet>(std::move(rules));
}

std::string SourceStatusJson(const SourceStatus& s) {
  nlohmann::ordered_json j;
  j["name"] = s.name;
  j["type"] = s.type;
  j["failing"] = s.failing;
  j["never_read"] = s.never_read;
  j["last_success_ms"] = s.last_success_ms;
  j["last_error_ms"] = s.last_error_ms;
  j["last_error"] = s.last_error;
  j["users"] = s.users;
  j["groups"] = s.groups;
  return j.dump();
}

SourceReads ReadAllSources(const config::Config& config, const ReadContext& context) {
  SourceReads reads;
  const auto now = [&] { return context.now ? context.now() : WallNowMs(); };
  ConnectorContext connectors;
  connectors.store = context.store;
  for (const auto& source : config.sources) {
    Result<mapping::SourceSnapshot> snapshot = [&]() -> Result<mapping::SourceSnapshot> {
      if (context.read) {
        std::optional<Result<mapping::SourceSnapshot>> read = context.read(source);
        if (read.has_value()) return std::move(*read);
      }
      ASSIGN_OR_RETURN(auto reader, BuiltinConnectors().Create(source, connectors));
      return reader->Read();
    }();
    SourceStatus status;
    if (context.store != nullptr) status = LoadStatus(*context.store, source);
    status.name = source.name;
    status.type = source.type;
    const std::int64_t at = now();

    if (snapshot.ok()) {
      snapshot->source = source.name;
      status.failing = false;
      status.never_read = false;
      status.last_success_ms = at;
      status.users = static_cast<std::int64_t>(snapshot->users.size());
      status.groups = static_cast<std::int64_t>(snapshot->groups.size());
      // SCIM sources are their own durable copy (the store's SCIM resources).
      if (context.store != nullptr && context.record && !source.pushed) {
        // Lent to the store and taken back: a 100,000-user snapshot is not
        // copied to be encoded.
        store::SourceRead good;
        good.snapshot = std::move(*snapshot);
        good.read_ms = at;
        context.store->sources().PutRead(good).IgnoreError();
        *snapshot = std::move(good.snapshot);
      }
      reads.snapshots.push_back(std::move(snapshot).value());
    } else {
      // The read is never partially trusted: the last good read stands in.
      std::optional<store::SourceRead> last;
      if (context.store != nullptr) {
        Result<std::optional<store::SourceRead>> stored =
            context.store->sources().GetRead(source.name);
        if (stored.ok()) last = std::move(stored).value();
      }
      mapping::SourceSnapshot stand_in;
      if (last.has_value()) {
        stand_in = std::move(last->snapshot);
      } else {
        if (const auto* directory = source.OptionsAs<config::DirectoryOptions>()) {
          stand_in.nested = directory->groups.nested;
          stand_in.max_depth = directory->groups.max_depth;
        }
        stand_in.never_read = true;
        reads.hold_all = true;
      }
      stand_in.source = source.name;
      stand_in.failed = true;
      status.failing = true;
      status.never_read = stand_in.never_read;
      status.last_error_ms = at;
      status.last_error = snapshot.status().message();
      status.users = static_cast<std::int64_t>(stand_in.users.size());
      status.groups = static_cast<std::int64_t>(stand_in.groups.size());
      reads.snapshots.push_back(std::move(stand_in));
      reads.failed.push_back(source.name);
      reads.errors.push_back(source.name + ": " + snapshot.status().message());
    }
    if (context.store != nullptr && context.record) {
      context.store->sources().PutHealth(status).IgnoreError();
    }
    reads.states.push_back(std::move(status));
  }
  return reads;
}

std::vector<SourceStatus> LoadSourceStatuses(const config::Config& config, store::Store& store) {
  std::vector<SourceStatus> out;
  for (const auto& source : config.sources) out.push_back(LoadStatus(store, source));
  return out;
}

// Health is written here only (and in ReadAllSources), so that what `status`
// shows of a source is decided in one place.
void NoteFeedFailed(store::Store& store, const config::SourceConfig& source,
                    const std::string& error, std::int64_t now_ms) {
  SourceStatus status;
  Result<std::optional<SourceStatus>> stored = store.sources().GetHealth(source.name);
  if (stored.ok() && stored->has_value()) {
    status = std::move(**stored);
  } else {
    status.name = source.name;
    status.never_read = true;
  }
  status.type = source.type;
  status.failing = true;
  status.last_error = "change feed: " + error;
  status.last_error_ms = now_ms;
  store.sources().PutHealth(status).IgnoreError();
}

bool NoteFeedRecovered(store::Store& store, const std::string& source, std::int64_t users,
                       std::int64_t groups, std::int64_t now_ms) {
  Result<std::optional<SourceStatus>> stored = store.sources().GetHealth(source);
  if (!stored.ok() || !stored->has_value()) return false;
  SourceStatus status = std::move(**stored);
  status.failing = false;
  status.never_read = false;
  status.last_success_ms = now_ms;
  status.users = users;
  status.groups = groups;
  store.sources().PutHealth(status).IgnoreError();
  return true;
}

std::optional<mapping::Catalog> CachedAccountCatalog(store::Store& store) {
  Result<std::optional<mapping::Catalog>> cached = store.account_cache().GetCatalog();
  if (!cached.ok()) return std::nullopt;
  return std::move(cached).value();
}

store::StoreOptions StoreOptionsFor(const config::Config& config, std::string_view program) {
  store::StoreOptions options;
  options.url = config.store;
  options.password = config.store_password;
  options.application_name = std::string(program);
  if (!config.server.replica_id.empty()) options.application_name += " " + config.server.replica_id;
  return options;
}

mapping::Catalog OfflineCatalog(const std::string& config_path) {
  Result<std::string> url = config::ReadStoreUrl(config_path);
  if (!url.ok() || url->rfind("sqlite://", 0) != 0) return mapping::Catalog::Builtin();
  std::string path = url->substr(std::string("sqlite://").size());
  struct stat st {};
  // Never create a store just to look into it.
  if (path.empty() || ::stat(path.c_str(), &st) != 0) return mapping::Catalog::Builtin();
  if (!EnterStoreOwner(path).ok()) return mapping::Catalog::Builtin();
  Result<std::unique_ptr<store::Store>> store = store::Store::Open(*url);
  if (!store.ok()) return mapping::Catalog::Builtin();
  std::optional<mapping::Catalog> cached = CachedAccountCatalog(**store);
  return cached.has_value() ? std::move(*cached) : mapping::Catalog::Builtin();
}

}  // namespace idsync::daemon
