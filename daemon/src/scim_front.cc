// ScimFront (scim_front.h): the SCIM service and endpoint, swapped whole on
// reload under an exclusive lock; requests and snapshots take it shared.
#include "scim_front.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "idsync/scim/endpoint.h"
#include "idsync/scim/scim_config.h"
#include "idsync/scim/service.h"

namespace idsync::daemon {
namespace {

std::vector<std::string> ScimSourceNames(const config::Config& config, bool strict_only = false) {
  std::vector<std::string> names;
  for (const auto& s : config.sources) {
    const auto* options = s.OptionsAs<scim::ScimConfig>();
    if (s.pushed && (!strict_only || (options != nullptr && options->strict_patch))) {
      names.push_back(s.name);
    }
  }
  return names;
}

std::vector<scim::SourceTokens> ScimTokens(const config::Config& config) {
  std::vector<scim::SourceTokens> tokens;
  for (const auto& s : config.sources) {
    if (s.pushed) tokens.push_back({s.name, s.token_hashes});
  }
  return tokens;
}

}  // namespace

// The SCIM handler's objects, swapped whole on reload.
struct ScimFront::Live {
  std::vector<std::string> sources;
  std::vector<std::string> strict_patch_sources;
  std::uint64_t max_patch_values = 0;  // server.max_patch_values
  std::uint64_t max_response = 0;      // server.max_response
  std::unique_ptr<scim::StoreResourcePersistence> persistence;
  std::unique_ptr<scim::ScimService> service;
  // The store's change log is taken in up to here (guarded by
  // catch_up_mu_; read before the service loaded).
  std::int64_t applied = 0;
  // Shared with screen_, which the event thread reads without mu_.
  std::shared_ptr<scim::ScimEndpoint> endpoint;
};

ScimFront::ScimFront(Logger& log, Metrics& metrics, store::Store& store, NowFn now,
                     ChangeFn on_change, bool shared)
    : log_(log),
      metrics_(metrics),
      store_(store),
      now_(std::move(now)),
      on_change_(std::move(on_change)),
      shared_(shared) {}

ScimFront::~ScimFront() = default;

Status ScimFront::Start(const config::Config& config) {
  std::unique_lock<std::shared_mutex> l(mu_);
  return Install(config, /*new_service=*/true);
}

Status ScimFront::Reload(const config::Config& config) {
  // Requests in flight finish first; new ones wait for the swap.
  std::unique_lock<std::shared_mutex> l(mu_);
  return Install(config, /*new_service=*/false);
}

Status ScimFront::Install(const config::Config& config, bool new_service) {
  ASSIGN_OR_RETURN(std::unique_ptr<Live> live, Make(config, new_service ? nullptr : live_.get()));
  if (!live->service) {
    live->persistence = std::move(live_->persistence);
    live->service = std::move(live_->service);
    live->applied = live_->applied;
  }
  InstallEndpoint(*live, config);
  {
    std::lock_guard<std::mutex> screen(screen_mu_);
    screen_ = live->endpoint;
  }
  live_ = std::move(live);
  config_ = std::make_unique<config::Config>(config);
  return Status::Ok();
}

namespace {

bool ChangesState(std::string_view method) {
  return method != "GET" && method != "HEAD" && method != "OPTIONS";
}

}  // namespace

httpd::Response ScimFront::Handle(const httpd::Request& request) {
  if (shared_ && ChangesState(request.method)) {
    // What another replica wrote a moment ago is the version this write
    // follows. Should the store be away, the write fails on it anyway.
    CatchUp().IgnoreError();
  }
  std::shared_lock<std::shared_mutex> l(mu_);
  return live_->endpoint->Handle(request);
}

Status ScimFront::CatchUp() {
  constexpr int kPage = 500;
  std::lock_guard<std::mutex> serial(catch_up_mu_);
  std::shared_lock<std::shared_mutex> l(mu_);
  if (!live_ || !live_->service) return Status::Ok();
  std::int64_t taken = 0;
  double oldest_s = 0;
  while (true) {
    ASSIGN_OR_RETURN(store::ScimChangePage page, store_.scim().ChangesSince(live_->applied, kPage));
    if (page.gap) {
      log_.Warning("scim.view_reloaded",
                   "this replica's SCIM view fell behind the store's change log; every "
                   "resource is loaded again",
                   {{"after", static_cast<long long>(live_->applied)}});
      l.unlock();
      std::unique_lock<std::shared_mutex> exclusive(mu_);
      if (!config_) return Status::Ok();
      const config::Config config = *config_;
      return Install(config, /*new_service=*/true);
    }
    for (store::ScimChangeRow& change : page.changes) {
      std::optional<scim::StoredResource> now;
      if (change.now) {
        store::ScimResourceRow& row = *change.now;
        now = scim::StoredResource{std::move(row.source), std::move(row.type), std::move(row.id),
                                   std::move(row.json), row.version};
      }
      Status absorbed = live_->service->Absorb(change.source, change.type, change.id, now);
      if (!absorbed.ok()) {
        // A damaged row: what the view holds of it stays.
        log_.Error("scim.change_unreadable",
                   "a SCIM change written by another replica cannot be read back; this "
                   "replica keeps the version it had",
                   {{"source", change.source}, {"id", change.id}, {"error", absorbed.message()}});
      }
      live_->applied = change.seq;
      ++taken;
      if (page.now_ms > change.at_ms) {
        oldest_s = std::max(oldest_s, static_cast<double>(page.now_ms - change.at_ms) / 1000.0);
      }
    }
    if (static_cast<int>(page.changes.size()) < kPage) break;
  }
  metrics_.ScimViewLag(oldest_s, taken);
  return Status::Ok();
}

std::optional<httpd::Response> ScimFront::Screen(httpd::Request* head) const {
  std::shared_ptr<const scim::ScimEndpoint> endpoint;
  {
    std::lock_guard<std::mutex> l(screen_mu_);
    endpoint = screen_;
  }
  if (!endpoint) return std::nullopt;
  return endpoint->Screen(head);
}

mapping::SourceSnapshot ScimFront::Snapshot(const std::string& source) const {
  std::shared_lock<std::shared_mutex> l(mu_);
  if (!live_ || !live_->service) {
    mapping::SourceSnapshot empty;
    empty.source = source;
    return empty;
  }
  return live_->service->Snapshot(source);
}

mapping::SourceSnapshot ScimFront::Snapshot(const std::string& source,
                                            const std::vector<std::string>& emails) const {
  std::shared_lock<std::shared_mutex> l(mu_);
  if (!live_ || !live_->service) {
    mapping::SourceSnapshot empty;
    empty.source = source;
    return empty;
  }
  return live_->service->Snapshot(source, emails);
}

Result<std::unique_ptr<ScimFront::Live>> ScimFront::Make(const config::Config& config,
                                                         const Live* previous) {
  auto live = std::make_unique<Live>();
  live->sources = ScimSourceNames(config);
  live->strict_patch_sources = ScimSourceNames(config, /*strict_only=*/true);
  live->max_patch_values = config.server.max_patch_values;
  live->max_response = config.server.max_response;
  if (previous != nullptr && previous->sources == live->sources &&
      previous->strict_patch_sources == live->strict_patch_sources &&
      previous->max_patch_values == live->max_patch_values &&
      previous->max_response == live->max_response) {
    // Same sources: the service (and its in-memory resources) carries over.
    return live;
  }
  // Read before the resources: a write that lands while they load is
  // taken in again by the next catch-up, as no change when already held.
  ASSIGN_OR_RETURN(live->applied, store_.scim().LastChange());
  live->persistence = std::make_unique<scim::StoreResourcePersistence>(store_);
  scim::ServiceOptions service_options;
  service_options.sources = live->sources;
  service_options.strict_patch_sources = live->strict_patch_sources;
  service_options.max_patch_values = static_cast<std::size_t>(live->max_patch_values);
  service_options.max_response = static_cast<std::size_t>(live->max_response);
  service_options.on_patch_refused = [this](const scim::PatchRefusal& r) { PatchRefused(r); };
  service_options.now = now_;
  ASSIGN_OR_RETURN(live->service, scim::ScimService::Create(service_options, *live->persistence,
                                                            [this](const scim::ScimChange& change) {
                                                              on_change_(change.emails);
                                                            }));
  return live;
}

void ScimFront::InstallEndpoint(Live& live, const config::Config& config) {
  scim::EndpointOptions endpoint_options;
  endpoint_options.scim_path = config.server.scim_path;
  endpoint_options.sources = ScimTokens(config);
  endpoint_options.observer = [this](std::string_view method, int status, double seconds) {
    metrics_.ScimRequest(method, status, seconds);
  };
  live.endpoint = std::make_shared<scim::ScimEndpoint>(endpoint_options, *live.service);
}

// The identity provider will send a refused PATCH again, and after enough
// failures may stop provisioning: say so where operators look.
void ScimFront::PatchRefused(const scim::PatchRefusal& r) {
  constexpr std::size_t kMaxDetail = 300;
  std::string detail = r.detail.substr(0, kMaxDetail);
  if (r.detail.size() > kMaxDetail) detail += "...";
  // The id comes from the request's path: as long as it was sent, within reason.
  std::vector<LogField> fields = {
      {"source", r.source}, {"resource", r.type}, {"id", r.id.substr(0, 100)}};
  if (r.operation >= 0) fields.emplace_back("operation", r.operation);
  fields.emplace_back("scim_type", r.scim_type.empty() ? std::string("none") : r.scim_type);
  fields.emplace_back("detail", detail);
  log_.Log(LogLevel::kWarning, "scim.patch_refused",
           "a SCIM PATCH was refused; the identity provider will retry it", fields);
  metrics_.ScimPatchRefused(r.source, r.scim_type);
}

}  // namespace idsync::daemon
