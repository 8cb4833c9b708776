// The daemon's SCIM front: the service that keeps what identity providers
// push (in the store), the endpoint that authenticates and answers their
// requests, and the snapshots runs read of each SCIM source. A reload swaps
// the endpoint (tokens, path) and, when the SCIM sources change, the service;
// requests in flight finish first and new ones wait for the swap.
//
// On a store other replicas share, the service is one view of it among
// several: CatchUp takes in what the others wrote (the store's SCIM change
// log), and every write catches up first, so that it applies to the latest
// version of what it changes.
//
// Thread-safe: Handle and Snapshot run on many threads at once (a shared
// lock); Start and Reload on the controller's thread (exclusive).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/config/config.h"
#include "idsync/daemon/log.h"
#include "idsync/daemon/metrics.h"
#include "idsync/daemon/sync.h"
#include "idsync/httpd/server.h"
#include "idsync/mapping/model.h"
#include "idsync/store/store.h"

namespace idsync::scim {
class ScimEndpoint;
class ScimService;
class StoreResourcePersistence;
struct PatchRefusal;
}  // namespace idsync::scim

namespace idsync::daemon {

class ScimFront {
 public:
  // Called with the people a SCIM write touched (addresses as the service
  // gives them), from the request's thread.
  using ChangeFn = std::function<void(const std::vector<std::string>& emails)>;

  // Every reference must outlive the front; `now`: wall-clock milliseconds.
  // `shared`: other replicas write to the store too.
  ScimFront(Logger& log, Metrics& metrics, store::Store& store, NowFn now, ChangeFn on_change,
            bool shared = false);
  ~ScimFront();

  // Makes the service (loading every SCIM source's resources from the store)
  // and the endpoint for `config`. The service's error when it cannot load.
  Status Start(const config::Config& config);

  // Swaps in `config`'s endpoint; the service (with its resources in memory)
  // carries over unless the SCIM sources, their strict_patch,
  // server.max_patch_values or server.max_response changed (then a new one
  // loads them from the store). On error the old objects stay in force.
  Status Reload(const config::Config& config);

  // Answers one request of the SCIM listener (after Start).
  httpd::Response Handle(const httpd::Request& request);

  // The endpoint's look at a request's head before its body
  // (httpd::HeadScreen): 401 for a missing or unknown token. It takes no
  // lock a reload holds long, so the event thread never waits on one.
  std::optional<httpd::Response> Screen(httpd::Request* head) const;

  // The SCIM source `source` as a snapshot; empty (named `source`) before
  // Start.
  mapping::SourceSnapshot Snapshot(const std::string& source) const;
  // Only what the people with `emails` (ASCII lower-cased) need
  // (ScimService::Snapshot with emails).
  mapping::SourceSnapshot Snapshot(const std::string& source,
                                   const std::vector<std::string>& emails) const;

  // Takes into the view every change written to the store since the last
  // catch-up (by other replicas; this one's own come back as no change),
  // and tells on_change whom they touched. When the store's log no longer
  // reaches back that far, loads every resource again. The store's error
  // when it cannot be read; the view then stays as it was.
  Status CatchUp();

 private:
  struct Live;
  // The objects for `config`; the service is left null when `previous` has
  // the same SCIM sources (the caller carries it over).
  Result<std::unique_ptr<Live>> Make(const config::Config& config, const Live* previous);
  // Start and Reload's swap (mu_ held exclusively).
  Status Install(const config::Config& config, bool new_service);
  void InstallEndpoint(Live& live, const config::Config& config);
  void PatchRefused(const scim::PatchRefusal& refusal);

  Logger& log_;
  Metrics& metrics_;
  store::Store& store_;
  NowFn now_;
  ChangeFn on_change_;
  const bool shared_;
  // Serializes catch-ups; taken before mu_.
  std::mutex catch_up_mu_;
  mutable std::shared_mutex mu_;
  std::unique_ptr<Live> live_;              // guarded by mu_
  std::unique_ptr<config::Config> config_;  // the last installed; guarded by mu_
  mutable std::mutex screen_mu_;
  std::shared_ptr<const scim::ScimEndpoint> screen_;  // guarded by screen_mu_
};

}  // namespace idsync::daemon
