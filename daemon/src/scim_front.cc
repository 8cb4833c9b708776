// ScimFront (scim_front.h): the SCIM service and endpoint, swapped whole on
// reload under an exclusive lock; requests and snapshots take it shared.
#include "scim_front.h"

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
  // Shared with screen_, which the event thread reads without mu_.
  std::shared_ptr<scim::ScimEndpoint> endpoint;
};

ScimFront::ScimFront(Logger& log, Metrics& metrics, store::Store& store, NowFn now,
                     ChangeFn on_change)
    : log_(log),
      metrics_(metrics),
      store_(store),
      now_(std::move(now)),
      on_change_(std::move(on_change)) {}

ScimFront::~ScimFront() = default;

Status ScimFront::Start(const config::Config& config) {
  std::unique_lock<std::shared_mutex> l(mu_);
  ASSIGN_OR_RETURN(std::unique_ptr<Live> live, Make(config, nullptr));
  InstallEndpoint(*live, config);
  {
    std::lock_guard<std::mutex> screen(screen_mu_);
    screen_ = live->endpoint;
  }
  live_ = std::move(live);
  return Status::Ok();
}

Status ScimFront::Reload(const config::Config& config) {
  // Requests in flight finish first; new ones wait for the swap.
  std::unique_lock<std::shared_mutex> l(mu_);
  ASSIGN_OR_RETURN(std::unique_ptr<Live> live, Make(config, live_.get()));
  if (!live->service) {
    live->persistence = std::move(live_->persistence);
    live->service = std::move(live_->service);
  }
  InstallEndpoint(*live, config);
  {
    std::lock_guard<std::mutex> screen(screen_mu_);
    screen_ = live->endpoint;
  }
  live_ = std::move(live);
  return Status::Ok();
}

httpd::Response ScimFront::Handle(const httpd::Request& request) {
  std::shared_lock<std::shared_mutex> l(mu_);
  return live_->endpoint->Handle(request);
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
