// A complete SCIM listener for tests: SQLite store in a directory, the real
// ScimService over StoreResourcePersistence, the ScimEndpoint and the httpd
// server on loopback port 0; plus a small HTTP client to call it. Used by the
// SCIM integration tests and by scim_test_server (newman, benchmarks).
// Not thread-safe to start or restart; Call() may run from several threads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/httpd/server.h"
#include "idsync/scim/endpoint.h"
#include "idsync/scim/service.h"
#include "idsync/store/store.h"

namespace idsync::scim::testing {

struct HarnessOptions {
  // Each scim source with the one token that reaches it.
  std::vector<std::pair<std::string, std::string>> sources = {{"okta", "okta-token"},
                                                              {"entra", "entra-token"}};
  std::string store_dir;  // the SQLite file goes here; "" makes (and later removes) a temp dir
  std::string listen = "127.0.0.1:0";
  std::uint64_t max_body = 1024 * 1024;
  int threads = 8;
  // Handlers running at once, not counting those waiting for a commit
  // (httpd::Options::running); 0: as many as threads.
  int running = 0;
  int max_queued = 256;
  std::string scim_path = "/scim/v2";
};

// An HTTP answer as the client saw it.
struct HttpReply {
  int status = 0;  // 0: no answer (connection failed)
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
  }
};

class ScimHarness {
 public:
  static Result<std::unique_ptr<ScimHarness>> Start(HarnessOptions options);
  ~ScimHarness();

  int port() const { return port_; }
  const HarnessOptions& options() const { return options_; }
  // The store (for checks on what was persisted).
  store::Store& store() { return *store_; }
  ScimService& service() { return *service_; }

  // Stops the listener and the service, then starts both again over the same
  // store (as a daemon restart would). The port may change.
  Status Restart();

  // Sends one request on a new connection. `target` is the path and query
  // below the host ("/scim/v2/Users?filter=..."), already percent-encoded.
  // An empty `token` sends no Authorization header.
  HttpReply Call(const std::string& method, const std::string& target, const std::string& token,
                 const std::string& body = "",
                 const std::string& content_type = "application/scim+json") const;

  // Every change the service reported, in order.
  std::vector<ScimChange> Changes() const;

 private:
  ScimHarness() = default;
  Status StartServing();
  void StopServing();

  HarnessOptions options_;
  std::string temp_dir_;  // removed on destruction when we made it
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<StoreResourcePersistence> persistence_;
  std::unique_ptr<ScimService> service_;
  std::unique_ptr<ScimEndpoint> endpoint_;
  std::unique_ptr<httpd::Server> server_;
  int port_ = 0;
  mutable std::mutex changes_mu_;
  std::vector<ScimChange> changes_;
};

// Percent-encodes `s` for a query value.
std::string UrlEncode(const std::string& s);

}  // namespace idsync::scim::testing
