// The server runs one Poco TCPServer per listen address over a shared thread
// pool. Poco accepts connections and queues them for the pool; the HTTP/1.1
// framing is ours, so that body limits, Expect, chunked bodies, early 413s
// and the error format stay under our control. One file (~770 lines)
// because the framing, the limits and the connection loop share the
// connection's private state; it is read top to bottom as a request flows.
#include "idsync/httpd/server.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <ctime>
#include <exception>
#include <map>
#include <mutex>

#include <Poco/Exception.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/NetSSL.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/TCPServer.h>
#include <Poco/Net/TCPServerConnection.h>
#include <Poco/Net/TCPServerConnectionFactory.h>
#include <Poco/Net/TCPServerParams.h>
#include <Poco/ThreadPool.h>
#include <Poco/Timespan.h>
#include <sys/socket.h>

#include "idsync/base/json_text.h"

#include "wire.h"

namespace idsync::httpd {

std::string_view Request::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (internal::EqualsIgnoreCase(key, name)) return value;
  }
  return {};
}

const std::string* Request::Query(std::string_view name) const {
  for (const auto& [key, value] : query) {
    if (key == name) return &value;
  }
  return nullptr;
}

namespace {

using Clock = std::chrono::steady_clock;
using internal::EqualsIgnoreCase;

constexpr std::size_t kMaxRequestLine = 16 * 1024;
constexpr std::size_t kMaxHeaderBytes = 64 * 1024;
constexpr std::size_t kMaxHeaders = 100;
constexpr std::size_t kReadChunk = 16 * 1024;
// How long and how much a connection refused with unread body still reads
// after answering, so that closing it does not reset the answer away.
constexpr std::chrono::milliseconds kLingerTime{1000};
constexpr std::size_t kLingerBytes = 4 * 1024 * 1024;
// How often idle connections look at the stop flag.
constexpr std::chrono::milliseconds kStopPoll{100};

Response DefaultError(int status, const std::string& message) {
  Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = "{\"error\": " + base::JsonQuote(message) + "}";
  return r;
}

// A header value or name must not smuggle in a line break.
std::string Clean(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c == '\r' || c == '\n' || c == '\0') c = ' ';
  }
  return out;
}

// Serializes a response. `head_only` leaves the body out (HEAD).
std::string Serialize(const Response& r, const std::string& server_name, bool keep_alive,
                      bool head_only) {
  std::string out;
  out.reserve(256 + r.body.size());
  out += "HTTP/1.1 ";
  out += std::to_string(r.status);
  out += ' ';
  out += internal::ReasonPhrase(r.status);
  out += "\r\nDate: ";
  out += internal::HttpDate(std::time(nullptr));
  if (!server_name.empty()) {
    out += "\r\nServer: ";
    out += Clean(server_name);
  }
  const bool no_body = r.status == 204 || r.status == 304 || (r.status >= 100 && r.status < 200);
  if (!no_body) {
    if (!r.content_type.empty()) {
      out += "\r\nContent-Type: ";
      out += Clean(r.content_type);
    }
    out += "\r\nContent-Length: ";
    out += std::to_string(r.body.size());
  }
  for (const auto& [name, value] : r.headers) {
    if (EqualsIgnoreCase(name, "Content-Length") || EqualsIgnoreCase(name, "Connection") ||
        EqualsIgnoreCase(name, "Transfer-Encoding") || EqualsIgnoreCase(name, "Date")) {
      continue;
    }
    out += "\r\n";
    out += Clean(name);
    out += ": ";
    out += Clean(value);
  }
  out += keep_alive ? "\r\nConnection: keep-alive\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
  if (!no_body && !head_only) out += r.body;
  return out;
}

// The state the listeners, connections and Stop() share.
class Core {
 public:
  Core(const Options& options, Handler handler) : options_(options), handler_(std::move(handler)) {
    if (!options_.render_error) options_.render_error = DefaultError;
  }

  const Options& options() const { return options_; }
  const Handler& handler() const { return handler_; }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  void set_stopping() { stopping_.store(true, std::memory_order_release); }

  Response RenderError(int status, const std::string& message) const {
    try {
      return options_.render_error(status, message);
    } catch (...) {
      return DefaultError(status, message);
    }
  }

  void AddServer(Poco::Net::TCPServer* server) { servers_.push_back(server); }

  // Connections accepted and waiting for a worker, over all listeners.
  int Queued() const {
    int n = 0;
    for (const Poco::Net::TCPServer* s : servers_) n += s->queuedConnections();
    return n;
  }

  void Register(const void* key, const Poco::Net::StreamSocket& socket) {
    std::lock_guard lock(mu_);
    active_.emplace(key, socket.impl()->sockfd());
  }
  void Unregister(const void* key) {
    std::lock_guard lock(mu_);
    active_.erase(key);
    cv_.notify_all();
  }
  // Waits until no connection is open, or `deadline`. True when none is.
  bool WaitIdle(Clock::time_point deadline) {
    std::unique_lock lock(mu_);
    return cv_.wait_until(lock, deadline, [&] { return active_.empty(); });
  }
  void WaitIdleForever() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return active_.empty(); });
  }
  // Shuts every open connection down at the socket level, which wakes any
  // read or write blocked on it (the TLS layer is not touched from here).
  void ShutdownAll() {
    std::lock_guard lock(mu_);
    for (const auto& [key, fd] : active_) ::shutdown(fd, SHUT_RDWR);
  }

 private:
  Options options_;
  Handler handler_;
  std::atomic<bool> stopping_{false};
  std::vector<Poco::Net::TCPServer*> servers_;  // set before any starts
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<const void*, int> active_;
};

// Buffered reads from one connection with a timeout per read.
class Reader {
 public:
  Reader(Poco::Net::StreamSocket& socket, bool tls) : socket_(socket), tls_(tls) {}

  // Waits up to `limit` for the first byte of a request, waking every
  // kStopPoll to look at `core.stopping()`. False on timeout, stop or EOF.
  bool WaitForRequest(std::chrono::milliseconds limit, const Core& core) {
    if (pos_ < buf_.size()) return true;
    const Clock::time_point deadline = Clock::now() + limit;
    while (!core.stopping()) {
      // Only TLS can hold decrypted bytes the kernel no longer shows.
      if (tls_ && socket_.available() > 0) return Fill();
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return false;
      const auto slice = std::min(left, kStopPoll);
      if (socket_.poll(Poco::Timespan(slice.count() * 1000),
                       Poco::Net::Socket::SELECT_READ | Poco::Net::Socket::SELECT_ERROR)) {
        return Fill();
      }
    }
    return false;
  }

  // Reads a line ending in LF (CR before it dropped) of at most `max` bytes.
  // kResourceExhausted when longer; kUnavailable on EOF or timeout.
  Status ReadLine(std::size_t max, std::string* line) {
    while (true) {
      const std::size_t lf = buf_.find('\n', pos_);
      if (lf != std::string::npos) {
        if (lf - pos_ > max) return ResourceExhaustedError("line too long");
        std::size_t end = lf;
        if (end > pos_ && buf_[end - 1] == '\r') --end;
        line->assign(buf_, pos_, end - pos_);
        pos_ = lf + 1;
        Compact();
        return Status::Ok();
      }
      if (buf_.size() - pos_ > max) return ResourceExhaustedError("line too long");
      if (!Fill()) return UnavailableError("connection closed or timed out");
    }
  }

  // Appends exactly `n` bytes to `out`.
  Status ReadExact(std::size_t n, std::string* out) {
    while (n > 0) {
      if (pos_ == buf_.size() && !Fill()) return UnavailableError("connection closed or timed out");
      const std::size_t take = std::min(n, buf_.size() - pos_);
      out->append(buf_, pos_, take);
      pos_ += take;
      n -= take;
      Compact();
    }
    return Status::Ok();
  }

  // Reads whatever arrives for up to `time` or `bytes`, dropping it.
  void Drain(std::chrono::milliseconds time, std::size_t bytes) {
    const Clock::time_point deadline = Clock::now() + time;
    std::size_t seen = 0;
    char chunk[kReadChunk];
    try {
      while (seen < bytes) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) return;
        if (!socket_.poll(Poco::Timespan(left.count() * 1000),
                          Poco::Net::Socket::SELECT_READ | Poco::Net::Socket::SELECT_ERROR)) {
          return;
        }
        const int n = socket_.receiveBytes(chunk, sizeof(chunk));
        if (n <= 0) return;
        seen += static_cast<std::size_t>(n);
      }
    } catch (const Poco::Exception&) {
    }
  }

 private:
  // One blocking read; the socket's receive timeout (set by the connection)
  // bounds it, so no poll() is spent per read.
  bool Fill() {
    try {
      char chunk[kReadChunk];
      const int n = socket_.receiveBytes(chunk, sizeof(chunk));
      if (n <= 0) return false;
      buf_.append(chunk, static_cast<std::size_t>(n));
      return true;
    } catch (const Poco::Exception&) {
      return false;
    }
  }
  void Compact() {
    if (pos_ == buf_.size()) {
      buf_.clear();
      pos_ = 0;
    } else if (pos_ > 64 * 1024) {
      buf_.erase(0, pos_);
      pos_ = 0;
    }
  }

  Poco::Net::StreamSocket& socket_;
  bool tls_;
  std::string buf_;
  std::size_t pos_ = 0;
};

// Why reading a request stopped short.
struct Refusal {
  int status = 0;  // 0: the connection just ended (EOF, timeout): answer nothing
  std::string message;
  bool body_unread = false;  // the client may still be sending: linger before closing
};

// One parsed request head plus how its body comes.
struct Head {
  Request request;
  bool http10 = false;
  bool wants_close = false;
  bool chunked = false;
  std::uint64_t length = 0;
  bool expect_continue = false;
};

class Connection : public Poco::Net::TCPServerConnection {
 public:
  Connection(const Poco::Net::StreamSocket& socket, Core& core, bool tls)
      : Poco::Net::TCPServerConnection(socket), core_(core), tls_(tls) {}

  void run() override {
    core_.Register(this, socket());
    try {
      Serve();
    } catch (...) {
      // A connection's failure ends that connection only.
    }
    // Unregistered before closing, so that Stop() never shuts down a
    // descriptor number already reused by another connection.
    core_.Unregister(this);
    try {
      socket().close();
    } catch (...) {
    }
  }

 private:
  void Serve() {
    Poco::Net::StreamSocket& s = socket();
    const Options& opt = core_.options();
    const Poco::Timespan io_timeout(opt.timeout.count() * 1000);
    s.setReceiveTimeout(io_timeout);
    s.setSendTimeout(io_timeout);
    s.setNoDelay(true);
    std::string remote;
    try {
      remote = s.peerAddress().toString();
    } catch (const Poco::Exception&) {
    }
    Reader reader(s, tls_);
    bool first = true;
    while (true) {
      if (!reader.WaitForRequest(first ? opt.timeout : opt.keep_alive, core_)) return;
      first = false;
      Head head;
      Refusal refusal;
      if (!ReadHead(reader, &head, &refusal) || !ReadBody(reader, &head, &refusal)) {
        if (refusal.status != 0) {
          Send(core_.RenderError(refusal.status, refusal.message), false, false);
          if (refusal.body_unread) Linger(reader);
        }
        return;
      }
      head.request.remote = remote;
      head.request.tls = tls_;
      Response response;
      try {
        response = core_.handler()(head.request);
      } catch (const std::exception&) {
        response = core_.RenderError(500, "internal error");
      } catch (...) {
        response = core_.RenderError(500, "internal error");
      }
      bool keep_alive = !head.wants_close && !core_.stopping() && core_.Queued() == 0;
      for (const auto& [name, value] : response.headers) {
        if (EqualsIgnoreCase(name, "Connection") && internal::HasToken(value, "close")) {
          keep_alive = false;
        }
      }
      if (!Send(response, keep_alive, head.request.method == "HEAD")) return;
      if (!keep_alive) return;
    }
  }

  bool Send(const Response& response, bool keep_alive, bool head_only) {
    const std::string wire =
        Serialize(response, core_.options().server_name, keep_alive, head_only);
    return SendRaw(wire);
  }

  bool SendRaw(std::string_view data) {
    try {
      while (!data.empty()) {
        const int n = socket().sendBytes(data.data(), static_cast<int>(data.size()));
        if (n <= 0) return false;
        data.remove_prefix(static_cast<std::size_t>(n));
      }
      return true;
    } catch (const Poco::Exception&) {
      return false;
    }
  }

  // After refusing a request whose body was not read: stop sending, then
  // read (and drop) for a while so the client sees the answer, not a reset.
  void Linger(Reader& reader) {
    try {
      ::shutdown(socket().impl()->sockfd(), SHUT_WR);
    } catch (...) {
    }
    reader.Drain(kLingerTime, kLingerBytes);
  }

  bool ReadHead(Reader& reader, Head* head, Refusal* refusal) {
    std::string line;
    // RFC 9112 2.2: ignore empty lines before the request line.
    for (int i = 0; i < 4; ++i) {
      Status st = reader.ReadLine(kMaxRequestLine, &line);
      if (!st.ok()) {
        if (st.code() == StatusCode::kResourceExhausted) {
          *refusal = {414, "request line too long", true};
        }
        return false;
      }
      if (!line.empty()) break;
    }
    if (line.empty()) {
      *refusal = {400, "malformed request line", true};
      return false;
    }
    const std::size_t sp1 = line.find(' ');
    const std::size_t sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp1 == std::string::npos || sp2 == std::string::npos || sp1 == 0 ||
        line.find(' ', sp2 + 1) != std::string::npos) {
      *refusal = {400, "malformed request line", true};
      return false;
    }
    Request& req = head->request;
    req.method = line.substr(0, sp1);
    for (char c : req.method) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) {
        *refusal = {400, "malformed request method", true};
        return false;
      }
    }
    const std::string version = line.substr(sp2 + 1);
    if (version == "HTTP/1.0") {
      head->http10 = true;
    } else if (version != "HTTP/1.1") {
      *refusal = {version.rfind("HTTP/", 0) == 0 ? 505 : 400, "unsupported HTTP version", true};
      return false;
    }
    std::optional<internal::Target> target =
        internal::ParseTarget(std::string_view(line).substr(sp1 + 1, sp2 - sp1 - 1));
    if (!target) {
      *refusal = {400, "malformed request target", true};
      return false;
    }
    req.path = std::move(target->path);
    req.query = std::move(target->query);

    std::size_t header_bytes = 0;
    while (true) {
      Status st = reader.ReadLine(kMaxHeaderBytes, &line);
      if (!st.ok()) {
        if (st.code() == StatusCode::kResourceExhausted) {
          *refusal = {431, "request headers too large", true};
        }
        return false;
      }
      if (line.empty()) break;
      header_bytes += line.size();
      if (header_bytes > kMaxHeaderBytes || req.headers.size() >= kMaxHeaders) {
        *refusal = {431, "request headers too large", true};
        return false;
      }
      const std::size_t colon = line.find(':');
      if (line[0] == ' ' || line[0] == '\t' || colon == std::string::npos || colon == 0 ||
          line.find_first_of(" \t") < colon) {
        *refusal = {400, "malformed header line", true};
        return false;
      }
      req.headers.emplace_back(
          line.substr(0, colon),
          std::string(internal::TrimOws(std::string_view(line).substr(colon + 1))));
    }

    const std::string_view connection = req.Header("Connection");
    head->wants_close = internal::HasToken(connection, "close") ||
                        (head->http10 && !internal::HasToken(connection, "keep-alive"));

    bool have_length = false;
    bool have_te = false;
    for (const auto& [name, value] : req.headers) {
      if (EqualsIgnoreCase(name, "Transfer-Encoding")) {
        have_te = true;
        // Only "chunked" as the final (here: only) coding is understood.
        std::string_view v = internal::TrimOws(value);
        const std::size_t comma = v.rfind(',');
        const std::string_view last =
            internal::TrimOws(comma == std::string_view::npos ? v : v.substr(comma + 1));
        if (!EqualsIgnoreCase(last, "chunked") || head->http10) {
          *refusal = {400, "unsupported transfer encoding", true};
          return false;
        }
        if (comma != std::string_view::npos) {
          *refusal = {501, "unsupported transfer encoding", true};
          return false;
        }
        head->chunked = true;
      } else if (EqualsIgnoreCase(name, "Content-Length")) {
        std::optional<std::uint64_t> n = internal::ParseContentLength(internal::TrimOws(value));
        if (!n || (have_length && *n != head->length)) {
          *refusal = {400, "malformed Content-Length", true};
          return false;
        }
        have_length = true;
        head->length = *n;
      }
    }
    if (have_te && have_length) {
      // RFC 9112 6.1: a request with both is answered and the connection closed.
      head->wants_close = true;
      head->length = 0;
    }
    const std::string_view expect = req.Header("Expect");
    if (!expect.empty()) {
      if (!EqualsIgnoreCase(expect, "100-continue")) {
        *refusal = {417, "unsupported expectation", true};
        return false;
      }
      head->expect_continue = !head->http10;
    }
    const std::uint64_t max_body = core_.options().max_body;
    if (!head->chunked && head->length > max_body) {
      *refusal = {413, "request body larger than " + std::to_string(max_body) + " bytes", true};
      return false;
    }
    return true;
  }

  bool ReadBody(Reader& reader, Head* head, Refusal* refusal) {
    if (!head->chunked && head->length == 0) return true;
    if (head->expect_continue && !SendRaw("HTTP/1.1 100 Continue\r\n\r\n")) return false;
    std::string& body = head->request.body;
    if (!head->chunked) {
      body.reserve(head->length);
      if (!reader.ReadExact(head->length, &body).ok()) {
        *refusal = {};
        return false;
      }
      return true;
    }
    const std::uint64_t max_body = core_.options().max_body;
    std::string line;
    while (true) {
      if (!reader.ReadLine(1024, &line).ok()) {
        *refusal = {400, "malformed chunked body", true};
        return false;
      }
      const std::size_t semi = line.find(';');
      const std::string_view size_text = internal::TrimOws(std::string_view(line).substr(0, semi));
      if (size_text.empty() || size_text.size() > 15) {
        *refusal = {400, "malformed chunk size", true};
        return false;
      }
      std::uint64_t size = 0;
      for (char c : size_text) {
        int v = -1;
        if (c >= '0' && c <= '9') v = c - '0';
        if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
        if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
        if (v < 0) {
          *refusal = {400, "malformed chunk size", true};
          return false;
        }
        size = size * 16 + static_cast<std::uint64_t>(v);
      }
      if (size == 0) break;
      if (body.size() + size > max_body) {
        *refusal = {413, "request body larger than " + std::to_string(max_body) + " bytes", true};
        return false;
      }
      if (!reader.ReadExact(size, &body).ok() || !reader.ReadLine(2, &line).ok() || !line.empty()) {
        *refusal = {400, "malformed chunked body", true};
        return false;
      }
    }
    // Trailer fields: read and dropped.
    std::size_t trailer_bytes = 0;
    while (true) {
      if (!reader.ReadLine(kMaxHeaderBytes, &line).ok()) {
        *refusal = {400, "malformed chunked body", true};
        return false;
      }
      if (line.empty()) return true;
      trailer_bytes += line.size();
      if (trailer_bytes > kMaxHeaderBytes) {
        *refusal = {431, "request trailers too large", true};
        return false;
      }
    }
  }

  Core& core_;
  bool tls_;
};

class ConnectionFactory : public Poco::Net::TCPServerConnectionFactory {
 public:
  ConnectionFactory(Core& core, bool tls) : core_(core), tls_(tls) {}
  Poco::Net::TCPServerConnection* createConnection(const Poco::Net::StreamSocket& socket) override {
    return new Connection(socket, core_, tls_);
  }

 private:
  Core& core_;
  bool tls_;
};

// Runs on the accepting thread: when too many connections already wait for
// a worker, answers 503 at once and closes.
class QueueFilter : public Poco::Net::TCPServerConnectionFilter {
 public:
  explicit QueueFilter(Core& core) : core_(core) {}
  bool accept(const Poco::Net::StreamSocket& socket) override {
    if (core_.stopping()) return false;
    if (core_.Queued() < core_.options().max_queued) return true;
    try {
      Poco::Net::StreamSocket s(socket);
      s.setSendTimeout(Poco::Timespan(1, 0));
      s.setReceiveTimeout(Poco::Timespan(1, 0));
      const std::string wire = Serialize(core_.RenderError(503, "server busy, retry later"),
                                         core_.options().server_name, false, false);
      s.sendBytes(wire.data(), static_cast<int>(wire.size()));
      ::shutdown(s.impl()->sockfd(), SHUT_WR);
    } catch (...) {
    }
    return false;
  }

 private:
  Core& core_;
};

class PocoServer : public Server {
 public:
  PocoServer(const Options& options, Handler handler)
      : core_(options, std::move(handler)), pool_(1, std::max(1, options.threads), 60) {}

  ~PocoServer() override { Stop(std::chrono::milliseconds(0)); }

  Status Listen(const std::vector<std::string>& listen) {
    const Options& opt = core_.options();
    Poco::Net::Context::Ptr context;
    const bool tls = !opt.tls_cert.empty() || !opt.tls_key.empty();
    if (tls) {
      if (opt.tls_cert.empty() || opt.tls_key.empty()) {
        return InvalidArgumentError("TLS needs both a certificate and a key");
      }
      static std::once_flag ssl_once;
      std::call_once(ssl_once, [] { Poco::Net::initializeSSL(); });
      try {
        Poco::Net::Context::Params params;
        params.privateKeyFile = opt.tls_key;
        params.certificateFile = opt.tls_cert;
        params.verificationMode = Poco::Net::Context::VERIFY_NONE;
        params.loadDefaultCAs = false;
        params.cipherList = "HIGH:!aNULL:!MD5:!RC4";
        context = new Poco::Net::Context(Poco::Net::Context::TLS_SERVER_USE, params);
        context->requireMinimumProtocol(Poco::Net::Context::PROTO_TLSV1_2);
      } catch (const Poco::Exception& e) {
        return UnavailableError("cannot load TLS certificate \"" + opt.tls_cert + "\" or key \"" +
                                opt.tls_key + "\": " + e.displayText());
      }
    }
    std::vector<internal::ListenAddress> addresses;
    for (const std::string& text : listen) {
      ASSIGN_OR_RETURN(internal::ListenAddress a, internal::ParseListenAddress(text));
      addresses.push_back(std::move(a));
    }
    if (addresses.empty()) return InvalidArgumentError("no listen address");
    for (std::size_t i = 0; i < addresses.size(); ++i) {
      const internal::ListenAddress& a = addresses[i];
      try {
        const Poco::Net::SocketAddress address(a.host.empty() ? "0.0.0.0" : a.host,
                                               static_cast<Poco::UInt16>(a.port));
        std::unique_ptr<Poco::Net::ServerSocket> socket;
        if (tls) {
          socket = std::make_unique<Poco::Net::SecureServerSocket>(context);
        } else {
          socket = std::make_unique<Poco::Net::ServerSocket>();
        }
        // SO_REUSEADDR for quick restarts, never SO_REUSEPORT: a second
        // process on the same port must fail to bind.
        if (address.family() == Poco::Net::SocketAddress::IPv6) {
          socket->bind6(address, true, false, true);
        } else {
          socket->bind(address, true, false);
        }
        socket->listen(128);
        ports_.push_back(socket->address().port());
        sockets_.push_back(std::move(socket));
      } catch (const Poco::Exception& e) {
        return UnavailableError("cannot listen on \"" + listen[i] + "\": " + e.displayText());
      }
    }
    for (std::size_t i = 0; i < sockets_.size(); ++i) {
      auto* params = new Poco::Net::TCPServerParams;
      params->setMaxThreads(std::max(1, opt.threads));
      // The QueueFilter answers 503 first; this is only a backstop.
      params->setMaxQueued(std::max(1, opt.max_queued) + 64);
      params->setThreadIdleTime(Poco::Timespan(10, 0));
      auto server = std::make_unique<Poco::Net::TCPServer>(new ConnectionFactory(core_, tls), pool_,
                                                           *sockets_[i], params);
      core_.AddServer(server.get());
      servers_.push_back(std::move(server));
    }
    for (auto& server : servers_) {
      server->setConnectionFilter(new QueueFilter(core_));
      server->start();
    }
    return Status::Ok();
  }

  void Stop(std::chrono::milliseconds grace) override {
    std::lock_guard lock(stop_mu_);
    if (stopped_) return;
    stopped_ = true;
    core_.set_stopping();
    for (auto& server : servers_) server->stop();  // no new connections
    if (!core_.WaitIdle(Clock::now() + grace)) core_.ShutdownAll();
    // A handler still running is waited for: it may use what its owner frees next.
    core_.WaitIdleForever();
    pool_.joinAll();
    servers_.clear();
    for (auto& socket : sockets_) {
      try {
        socket->close();
      } catch (...) {
      }
    }
  }

  std::vector<int> ports() const override { return ports_; }

 private:
  Core core_;
  Poco::ThreadPool pool_;
  std::vector<std::unique_ptr<Poco::Net::ServerSocket>> sockets_;
  std::vector<std::unique_ptr<Poco::Net::TCPServer>> servers_;
  std::vector<int> ports_;
  std::mutex stop_mu_;
  bool stopped_ = false;
};

}  // namespace

Result<std::unique_ptr<Server>> Server::Start(const Options& options, Handler handler) {
  if (!handler) return InvalidArgumentError("no request handler");
  if (options.threads < 1) return InvalidArgumentError("threads must be at least 1");
  auto server = std::make_unique<PocoServer>(options, std::move(handler));
  Status st = server->Listen(options.listen);
  if (!st.ok()) return st;  // the destructor stops whatever started
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace idsync::httpd
