// A small HTTP/1.1 server for idsync's two listeners: SCIM (server.listen)
// and admin (server.admin_listen). It owns the sockets, TLS, threads, body
// limits, deadlines and connection caps; what a request means is the
// handler's business.
//
// One event thread reads every connection (epoll); a request reaches a
// worker only once it has arrived whole, so a slow or idle client holds no
// worker. The handler is called from the worker threads, several at once;
// it must be thread-safe. OpenSSL never shows here.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
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
  // What the HeadScreen found out about the request (who its token belongs
  // to, say), for the handler; never taken from the wire. Empty otherwise.
  std::string screened;

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

// Called when the server refuses a request before the handler sees it (a
// body over max_body: 413, a request that cannot be parsed: 400, a method
// not served: 501, a deadline: 408, the queue full: 503), so that each
// listener answers in its own error format. Unset: a plain JSON body
// {"error": "..."}. Called on the event thread: it must be quick.
using ErrorRenderer = std::function<Response(int status, const std::string& message)>;

// Looks at a request's head as soon as it has arrived, before its body is
// read and before any "100 Continue": a response returned is sent at once
// and the connection closed, its body unread (a missing token, say).
// nullopt lets the request go on; the screen may note what it found in
// `head->screened` for the handler. Called on the event thread: it must be
// quick and thread-safe; `head->body` is empty.
using HeadScreen = std::function<std::optional<Response>(Request* head)>;

// What happens to connections, for metrics. Called on the event thread;
// every method must be quick and thread-safe. Each `reason` or `deadline`
// is one of the few words listed; a `method` is the request's only when it
// is one of GET HEAD POST PUT PATCH DELETE, else "other".
class Observer {
 public:
  virtual ~Observer() = default;
  // A connection was taken (counts toward the caps) and, later, closed.
  virtual void ConnectionOpened() {}
  virtual void ConnectionClosed() {}
  // A connection was answered 503 and closed at once. `reason`:
  // "max_connections", "max_connections_per_ip" or "file_descriptors".
  virtual void ConnectionRefused(std::string_view /*reason*/) {}
  // A deadline passed: "tls_handshake", "header", "body", "keep_alive" or
  // "write".
  virtual void DeadlinePassed(std::string_view /*deadline*/) {}
  // The server answered a request itself (no handler ran) with `status`.
  virtual void RequestRefused(std::string_view /*method*/, int /*status*/) {}
};

struct Options {
  // "host:port" each ("127.0.0.1:0" binds a free port; "[::1]:8443" for IPv6).
  std::vector<std::string> listen;
  // Both set: every listener speaks TLS with this certificate and key (PEM).
  std::string tls_cert;
  std::string tls_key;
  std::uint64_t max_body = 1024 * 1024;  // larger bodies get 413 unread
  int threads = 16;                      // worker threads
  // Handlers running at once, not counting those inside WhileBlocked (0: as
  // many as threads). A handler that waits (for a store's commit) in
  // WhileBlocked lets another run, so `threads` can be many more than the
  // cores while only `running` compute.
  int running = 0;
  int max_queued = 256;  // whole requests waiting for a worker; more get 503
  // Deadlines (docs/operations.md, "Exposing the SCIM endpoint"). Past one,
  // a request still being read gets 408; the connection is closed.
  std::chrono::milliseconds header_timeout{std::chrono::seconds(10)};  // the whole head
  std::chrono::milliseconds body_timeout{std::chrono::seconds(30)};    // the whole body
  std::chrono::milliseconds tls_handshake_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds keep_alive_timeout{std::chrono::seconds(60)};  // idle between requests
  std::chrono::milliseconds write_timeout{std::chrono::seconds(30)};       // one response
  // Open connections over all listen addresses, and from one client address.
  // Past either cap a new connection is answered 503 and closed.
  int max_connections = 4096;
  int max_connections_per_ip = 256;
  // Methods served; any other is answered 501 before a handler runs.
  std::vector<std::string> methods = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"};
  std::string server_name = "idsync";
  ErrorRenderer render_error;
  HeadScreen screen;
  std::shared_ptr<Observer> observer;
};

// Runs `wait` as a wait of the handler this thread runs: while it lasts,
// the handler does not count against Options::running. Outside a handler,
// runs `wait`.
void WhileBlocked(const std::function<void()>& wait);

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

  // Reads the TLS certificate and key again from the same paths (a renewed
  // certificate); new connections use them. On error the ones in use stay
  // and the message names the file. Ok at once without TLS.
  virtual Status ReloadTls() = 0;
};

}  // namespace idsync::httpd
