// A small HTTP/1.1 server for idsync's two listeners: SCIM (server.listen)
// and admin (server.admin_listen). It owns the sockets, TLS, threads, body
// limits and timeouts; what a request means is the handler's business.
//
// The handler is called from the server's worker threads, several at once;
// it must be thread-safe. The library behind it (Poco) never shows here.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "idsync/base/status.h"

namespace idsync::httpd {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // decoded path, without the query: "/scim/v2/Users/abc"
  // Decoded query parameters in the order sent ("filter", "userName eq \"x\"").
  std::vector<std::pair<std::string, std::string>> query;
  Headers headers;  // as sent; look up with Header()
  std::string body;
  std::string remote;  // "127.0.0.1:53122"
  bool tls = false;

  // The first header named `name` (ASCII case-insensitive), or "".
  std::string_view Header(std::string_view name) const;
  // The first query parameter named `name` (exact), or nullptr.
  const std::string* Query(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  Headers headers;  // extra headers: ETag, Location, Retry-After, WWW-Authenticate, ...
};

using Handler = std::function<Response(const Request&)>;

// Called when the server refuses a request before the handler sees it (body
// over max_body: 413, a request that cannot be parsed: 400, the queue full:
// 503), so that each listener answers in its own error format. Unset: a
// plain JSON body {"error": "..."}.
using ErrorRenderer = std::function<Response(int status, const std::string& message)>;

struct Options {
  // "host:port" each ("127.0.0.1:0" binds a free port; "[::1]:8443" for IPv6).
  std::vector<std::string> listen;
  // Both set: every listener speaks TLS with this certificate and key (PEM).
  std::string tls_cert;
  std::string tls_key;
  std::uint64_t max_body = 1024 * 1024;  // larger bodies get 413 unread
  int threads = 16;                      // worker threads (concurrent requests)
  int max_queued = 256;                  // connections waiting for a worker; more get 503
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};  // per read/write
  std::chrono::milliseconds keep_alive{std::chrono::seconds(15)};
  std::string server_name = "idsync";
  ErrorRenderer render_error;
};

class Server {
 public:
  // Binds every address in options.listen and starts serving with `handler`.
  // kInvalidArgument for a malformed address; kUnavailable when an address
  // cannot be bound or the TLS files cannot be read (the message says which;
  // never a key's content). Nothing keeps running on error.
  static Result<std::unique_ptr<Server>> Start(const Options& options, Handler handler);

  // Stops accepting, lets requests in flight finish (up to `grace`), closes.
  virtual ~Server() = default;
  virtual void Stop(std::chrono::milliseconds grace = std::chrono::seconds(5)) = 0;

  // The bound ports, in the order of options.listen (the real port for ":0").
  virtual std::vector<int> ports() const = 0;
};

}  // namespace idsync::httpd
