// AdminApi: the admin HTTP listener's handler (server.admin_listen).
//
// Without a token: GET /healthz (200 "ok"), GET /readyz (200, or 503 with
// the reasons when idsync cannot serve), GET /metrics (Prometheus text).
// With an admin token (Authorization: Bearer <token>, its SHA-256 compared in
// constant time with server.admin_tokens): POST /v1/sync, GET /v1/status,
// GET /v1/plan, GET /v1/explain/{email}, answering the CLI's JSON. The web
// console (/ui/, console.h) has sessions of its own. Errors are
// JSON {"error": "..."}: 401 missing/wrong token, 403 no token configured,
// 404 unknown path, 405 wrong method (with Allow).
//
// What the answers say comes from an AdminBackend that the daemon implements.
// Thread-safe: Handle runs on several httpd worker threads at once.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/daemon/metrics.h"
#include "idsync/httpd/server.h"

namespace idsync::daemon {

class Console;

// What the admin API asks the daemon. Called from httpd worker threads, so
// implementations must be thread-safe; a call may block (a plan reads the
// sources) up to the httpd timeout.
class AdminBackend {
 public:
  virtual ~AdminBackend() = default;

  // Starts a full run now (or queues one behind the run in progress), on
  // whichever replica leads; with `force`, one that passes the safety
  // limits. OK: 202. kFailedPrecondition/kAlreadyExists: 409; kUnavailable:
  // 503 (e.g. stopping, or no replica leads); other codes map as in
  // StatusToHttp.
  virtual Status RequestSync(bool force) = 0;

  // `idsync status --json`'s object: sources, outbox, last runs, audit head.
  virtual Result<std::string> StatusJson() = 0;

  // `idsync plan --json`'s object (a blocked plan is still OK: 200).
  virtual Result<std::string> PlanJson() = 0;

  // `idsync explain EMAIL --json`'s object. kNotFound: no source knows the
  // address (404).
  virtual Result<std::string> ExplainJson(const std::string& email) = 0;

  // Why idsync cannot serve now; empty when ready. Must be cheap: probes
  // call it often.
  struct NotReady {
    std::string reason;  // for anyone: "configuration not loaded", "store not writable"
    std::string detail;  // for token holders only: paths, error text; may be empty
  };
  virtual std::vector<NotReady> NotReadyReasons() = 0;
};

// The HTTP status for a backend error: kInvalidArgument 400, kNotFound 404,
// kAlreadyExists/kFailedPrecondition 409, kPermissionDenied 403,
// kUnauthenticated 401, kResourceExhausted 429, kUnavailable 503,
// kDeadlineExceeded 504, anything else 500.
int StatusToHttp(StatusCode code);

// A JSON error answer {"error": message} with `status`; give it to
// httpd::Options::render_error for the admin listener.
httpd::Response AdminErrorResponse(int status, const std::string& message);

class AdminApi {
 public:
  // `token_hashes`: server.admin_tokens ("sha256:<64 hex>"); empty refuses
  // /v1/* with 403. `backend`, `metrics` and `console` (which answers /ui/;
  // nullptr: no console) must outlive the api.
  AdminApi(std::vector<std::string> token_hashes, AdminBackend& backend, const Metrics& metrics,
           const Console* console = nullptr);

  // Answers one request. Never throws.
  httpd::Response Handle(const httpd::Request& request) const;

  // Replaces the accepted token hashes (after a reload). Thread-safe.
  void SetTokenHashes(std::vector<std::string> token_hashes);

  // A handler for httpd::Server::Start that calls Handle on this api, which
  // must outlive the server.
  httpd::Handler AsHandler() const;

 private:
  // Empty when the request carries an accepted admin token; else the
  // refusal to send (403 none configured, 401 missing or wrong).
  std::optional<httpd::Response> Refusal(const httpd::Request& request) const;

  mutable std::mutex mu_;
  std::vector<std::string> token_hashes_;  // guarded by mu_
  AdminBackend& backend_;
  const Metrics& metrics_;
  const Console* console_;
};

}  // namespace idsync::daemon
