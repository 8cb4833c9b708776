// The SCIM listener's side of a request: the bearer token (checked against
// each scim source's SHA-256 hashes, in constant time) decides the source;
// the path under server.scim_path goes to the service in the canonical
// spelling its route (idsync/scim/route.h) gives; content types and errors
// follow RFC 7644. `GET /healthz` answers without a token. Everything else
// is the ScimService's business.
//
// Also here: new tokens for `idsync scim-token new`, and the adapter that
// keeps SCIM resources in the store. Thread-safe.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "idsync/httpd/server.h"
#include "idsync/scim/service.h"
#include "idsync/store/store.h"

namespace idsync::scim {

// A bearer token and the hash to put in the config ("sha256:<64 hex>").
// NewTokenPair() draws the token from OpenSSL's RAND_bytes (the process
// terminates if the system has no randomness to give).
struct TokenPair {
  std::string token;  // 32 random bytes from the operating system, base64url, no padding
  std::string hash;
};
TokenPair NewTokenPair();

// "sha256:<lower-case hex of SHA-256(token)>".
std::string HashToken(std::string_view token);

struct SourceTokens {
  std::string source;
  std::vector<std::string> hashes;  // "sha256:<64 hex>", several for rotation
};

// Called once per answered request, for metrics and the access log.
// `method` is the HTTP method; `status` the answer's; `seconds` the time taken.
using RequestObserver = std::function<void(std::string_view method, int status, double seconds)>;

struct EndpointOptions {
  std::string scim_path = "/scim/v2";
  std::vector<SourceTokens> sources;
  // The base URL written in meta.location; empty: built from the request's
  // Host header and scheme.
  std::string public_base_url;
  RequestObserver observer;
  // Bodies nesting objects and arrays deeper than this are refused (400
  // invalidSyntax) before any JSON parser sees them.
  int max_json_depth = 64;
};

class ScimEndpoint {
 public:
  // `service` must outlive the endpoint.
  ScimEndpoint(EndpointOptions options, ScimService& service);

  // Answers one request from the SCIM listener. Missing or unknown token:
  // 401 (with WWW-Authenticate: Bearer); a path outside scim_path: 404; a
  // body with a content type other than application/scim+json or
  // application/json (parameters such as charset allowed): 415; a body
  // nested deeper than max_json_depth: 400; all as SCIM error bodies.
  // Resource names are matched case-insensitively ("/users" is "/Users") and
  // a trailing '/' is ignored; a 405 carries the route's methods in an Allow
  // header. Thread-safe; blocks while the service works.
  httpd::Response Handle(const httpd::Request& request);

  // Looks at a request's head before its body is read (httpd::HeadScreen):
  // under scim_path, a missing or unknown token is answered 401 at once
  // (counted by the observer like any answer); nullopt lets it go on.
  // Thread-safe and quick (one SHA-256).
  // On success it notes the token's source in head->screened, so that
  // Handle need not hash the token again.
  std::optional<httpd::Response> Screen(httpd::Request* head) const;

 private:
  struct TokenDigest {
    std::array<unsigned char, 32> digest;  // SHA-256 of the token
    std::size_t source;                    // index into options_.sources
  };
  httpd::Response Dispatch(const httpd::Request& request);
  // Whether `path` is under scim_path; *rest: what follows it.
  bool UnderBase(std::string_view path, std::string_view* rest) const;
  // The source the request's bearer token belongs to; else the 401.
  std::variant<const std::string*, httpd::Response> Authenticate(
      const httpd::Request& request) const;
  // The source whose hash matches `token`, or nullptr.
  const std::string* SourceFor(std::string_view token) const;

  EndpointOptions options_;
  ScimService& service_;
  std::vector<TokenDigest> tokens_;
};

// The SCIM error body for a refusal made before the endpoint sees the request
// (413 body too large, 400 unreadable request, 503 overloaded); give it to
// httpd::Options::render_error.
httpd::Response ScimErrorResponse(int status, const std::string& message);

// Keeps SCIM resources in the store (its scim_resources table); a write
// replaces only the version it follows (ScimResources::PutIf), so that
// replicas sharing the store never overwrite one another's writes.
class StoreResourcePersistence : public ResourcePersistence {
 public:
  explicit StoreResourcePersistence(store::Store& store,
                                    std::function<std::int64_t()> now_ms = nullptr);
  Status Put(const StoredResource& resource) override;
  Status Delete(const std::string& source, const std::string& type, const std::string& id) override;
  Result<std::unique_ptr<PendingPersist>> Stage(const StoredResource& resource) override;
  Result<std::unique_ptr<PendingPersist>> StageDelete(const std::string& source,
                                                      const std::string& type,
                                                      const std::string& id) override;
  Result<std::vector<StoredResource>> LoadAll(const std::string& source) override;
  Result<std::optional<StoredResource>> Get(const std::string& source, const std::string& type,
                                            const std::string& id) override;

 private:
  store::ScimResourceRow RowOf(const StoredResource& resource) const;

  store::Store& store_;
  std::function<std::int64_t()> now_ms_;
};

}  // namespace idsync::scim
