// The HTTP client of the account API (~720 lines): the request/response
// plumbing over Poco (session pool, SIGPIPE guard, URL encoding), the retry
// and rate-limit policy (Retry-After, deadlines, backoff) and the mapping of
// each endpoint's answers to Status. Kept whole so that Poco types never leave
// this file and every endpoint goes through the same retry path.

#include "idsync/account/account_client.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <Poco/Exception.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/NetSSL.h>
#include <Poco/Net/SSLException.h>
#include <Poco/StreamCopier.h>
#include <Poco/Timespan.h>
#include <Poco/URI.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include "idsync/base/ascii.h"
#include "idsync/mapping/glob.h"

#include "throttle.h"
#include "wire.h"

namespace idsync::account {
namespace {

using mapping::AccountRecord;
using mapping::AccountWrite;
using std::chrono::milliseconds;

// One HTTP request as the client means to send it (every attempt the same).
struct Request {
  std::string method;
  std::string target;  // path and query
  std::string body;
  bool has_body = false;
  std::string idempotency_key;
};

Request Get(std::string target) {
  Request req;
  req.method = "GET";
  req.target = std::move(target);
  return req;
}

struct Response {
  int status = 0;
  std::string body;
  std::optional<double> retry_after;  // seconds, from a Retry-After header
};

// What one attempt gave: an answer, or a transport failure.
struct Attempt {
  std::optional<Response> response;
  Status error;
  bool permanent = false;  // retrying cannot help (the certificate is not trusted)
  bool reused = false;     // the connection had already served a request
};

// A pooled connection; `used` tells a stale keep-alive connection (the
// server may have closed it while idle) from a fresh one.
struct PooledSession {
  std::unique_ptr<Poco::Net::HTTPClientSession> session;
  bool used = false;
  Clock::time_point idle_since;  // when it went back to the pool
};

// Connects a session before its request is sent, so that the socket an
// attempt uses exists, and can be cut, from the start. Poco keeps
// reconnect() protected; a derived class may name it for any session.
struct SessionAccess : Poco::Net::HTTPClientSession {
  static void Connect(Poco::Net::HTTPClientSession& session) {
    if (!session.connected()) (session.*(&SessionAccess::reconnect))();
  }
};

// Blocks SIGPIPE in the calling thread while a request runs, and swallows
// one the request raised. A peer that closes mid-write must not kill the
// daemon, and a library should not change the process's signal handling.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeGuard() {
    if (!was_pending_) {
      sigset_t pending;
      sigemptyset(&pending);
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        timespec zero{0, 0};
        while (sigtimedwait(&pipe_, nullptr, &zero) == -1 && errno == EINTR) {
        }
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool was_pending_ = false;
};

bool HasControlChar(const std::string& s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// Percent-encodes everything but RFC 3986 unreserved characters, so an id or
// cursor is always one path segment or query value.
std::string Encode(const std::string& s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    }
  }
  return out;
}

// Retry-After in delta-seconds (a decimal count, fractions tolerated). An
// HTTP-date is not honoured: the regular backoff applies instead.
std::optional<double> ParseRetryAfter(const std::string& value) {
  std::string v = value;
  while (!v.empty() && v.back() == ' ') v.pop_back();
  while (!v.empty() && v.front() == ' ') v.erase(v.begin());
  if (v.empty() || !std::isdigit(static_cast<unsigned char>(v[0]))) return std::nullopt;
  std::size_t used = 0;
  double seconds = 0;
  try {
    seconds = std::stod(v, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (used != v.size() || !std::isfinite(seconds) || seconds < 0) return std::nullopt;
  // Far beyond any retry deadline; the cap keeps the arithmetic in range.
  return std::min(seconds, 1e7);
}

class HttpAccountClient final : public AccountClient {
 public:
  struct Endpoint {
    bool https = false;
    std::string host;
    std::uint16_t port = 0;
    std::string prefix;  // path before "/users", no trailing '/'
    std::string origin;  // "https://host[:port]", for messages
  };

  HttpAccountClient(const config::AccountConfig& config, ClientOptions options, Endpoint endpoint,
                    Poco::Net::Context::Ptr context)
      : token_(config.token),
        timeout_(config.timeout),
        retry_for_(std::min<milliseconds>(config.retry_for, std::chrono::hours(24 * 365 * 10))),
        read_retry_for_(
            std::min<milliseconds>(config.read_retry_for, std::chrono::hours(24 * 365 * 10))),
        max_response_(options.max_response_bytes),
        max_idle_(static_cast<std::size_t>(std::max(1, config.concurrency))),
        page_size_(std::clamp(options.page_size, 1, 1000)),
        endpoint_(std::move(endpoint)),
        context_(std::move(context)),
        now_(options.now ? options.now : [] { return Clock::now(); }),
        sleep_(options.sleep ? options.sleep
                             : [](milliseconds d) { std::this_thread::sleep_for(d); }),
        replaced_sleep_(static_cast<bool>(options.sleep)),
        // A burst of up to one second's worth, at most one per slot in flight.
        rate_(config.max_requests_per_second,
              static_cast<int>(std::clamp(std::floor(config.max_requests_per_second), 1.0,
                                          static_cast<double>(std::max(1, config.concurrency)))),
              now_, sleep_),
        in_flight_(config.concurrency),
        backoff_(options.initial_backoff, options.max_backoff, options.jitter_seed),
        on_response_(std::move(options.on_response)),
        on_retry_(std::move(options.on_retry)) {
    watchdog_ = std::thread([this] { Watch(); });
  }

  ~HttpAccountClient() override {
    {
      std::lock_guard<std::mutex> lock(wire_mu_);
      closing_ = true;
    }
    wire_cv_.notify_all();
    watchdog_.join();
  }

  Result<mapping::Catalog> GetCatalog() override {
    Request req = Get(endpoint_.prefix + "/catalog");
    std::optional<mapping::Catalog> catalog;
    RETURN_IF_ERROR(Call(req, ReadDeadline(), [&](const Response& r) -> Status {
      if (r.status / 100 != 2) return HttpError(req, r);
      Result<mapping::Catalog> parsed = wire::ParseCatalog(r.body);
      if (!parsed.ok()) return Malformed(req, r, parsed.status());
      catalog = std::move(parsed).value();
      return Status::Ok();
    }));
    return std::move(*catalog);
  }

  Result<std::vector<mapping::Project>> ListProjects() override {
    Request req = Get(endpoint_.prefix + "/projects");
    std::vector<mapping::Project> projects;
    RETURN_IF_ERROR(Call(req, ReadDeadline(), [&](const Response& r) -> Status {
      if (r.status / 100 != 2) return HttpError(req, r);
      Result<std::vector<mapping::Project>> parsed = wire::ParseProjects(r.body);
      if (!parsed.ok()) return Malformed(req, r, parsed.status());
      projects = std::move(parsed).value();
      return Status::Ok();
    }));
    return projects;
  }

  Result<std::vector<AccountRecord>> ListUsers() override { return ListAll(ReadDeadline()); }

  Status ForEachUserPage(
      const std::function<Status(std::vector<AccountRecord>& page)>& on_page) override {
    return ForEachPage(ReadDeadline(), on_page);
  }

  Result<AccountRecord> GetUser(const std::string& id) override {
    if (id.empty()) return InvalidArgumentError("account: GetUser needs a user id");
    Request req = Get(endpoint_.prefix + "/users/" + Encode(id));
    AccountRecord user;
    RETURN_IF_ERROR(Call(req, ReadDeadline(), [&](const Response& r) -> Status {
      if (r.status / 100 != 2) return HttpError(req, r);
      Result<AccountRecord> parsed = wire::ParseUser(r.body);
      if (!parsed.ok()) return Malformed(req, r, parsed.status());
      user = std::move(parsed).value();
      return Status::Ok();
    }));
    return user;
  }

  Result<AccountRecord> Write(const AccountWrite& write) override {
    const Clock::time_point deadline = Deadline();
    if (HasControlChar(write.idempotency_key)) {
      return InvalidArgumentError("account: the idempotency key holds a control character");
    }
    Request req;
    req.idempotency_key = write.idempotency_key;
    switch (write.kind) {
      case AccountWrite::Kind::kInvite:
        req.method = "POST";
        req.target = endpoint_.prefix + "/users";
        req.body = wire::InviteBody(write);
        req.has_body = true;
        break;
      case AccountWrite::Kind::kPatch:
      case AccountWrite::Kind::kDelete:
        if (write.user_id.empty()) {
          return InvalidArgumentError("account: a patch or delete needs a user id");
        }
        req.target = endpoint_.prefix + "/users/" + Encode(write.user_id);
        if (write.kind == AccountWrite::Kind::kPatch) {
          req.method = "PATCH";
          req.body = wire::PatchBody(write);
          req.has_body = true;
        } else {
          req.method = "DELETE";
        }
        break;
    }

    AccountRecord user;
    bool exists = false;
    std::string existing_id;
    Status status = Call(req, deadline, [&](const Response& r) -> Status {
      if (write.kind == AccountWrite::Kind::kDelete) {
        // Already gone is what a delete wants: a retry after a lost answer
        // lands here too.
        if (r.status / 100 == 2 || r.status == 404) return Status::Ok();
        return HttpError(req, r);
      }
      if (write.kind == AccountWrite::Kind::kInvite && r.status == 409) {
        wire::ApiError e = wire::ParseError(r.body);
        // An unnamed 409 on POST /users can only be the address in use; a
        // named one that is not user_exists is some other refusal.
        if (e.code.empty() || e.code == "user_exists") {
          exists = true;
          existing_id = e.user_id;
          return UserExists(req, write.email, existing_id);
        }
      }
      if (r.status / 100 != 2) return HttpError(req, r);
      Result<AccountRecord> parsed = wire::ParseUser(r.body);
      if (!parsed.ok()) return Malformed(req, r, parsed.status());
      user = std::move(parsed).value();
      return Status::Ok();
    });
    if (exists && status.code() == StatusCode::kAlreadyExists && existing_id.empty()) {
      // The account did not say who: find the holder of the address.
      Result<std::string> id = FindIdByEmail(write.email, deadline);
      if (!id.ok()) {
        return Status(id.status().code(),
                      Describe(req) + ": HTTP 409 user_exists, looking up the existing user: " +
                          id.status().message());
      }
      return UserExists(req, write.email, *id);
    }
    RETURN_IF_ERROR(status);
    return user;
  }

  void Interrupt() override {
    {
      std::lock_guard<std::mutex> lock(interrupt_mu_);
      interrupted_ = true;
    }
    interrupt_cv_.notify_all();
    // Requests on the wire end now rather than at their answer or timeout.
    std::lock_guard<std::mutex> lock(wire_mu_);
    for (Wire* wire : wires_) Cut(*wire);
  }

  ClientCounters counters() const override {
    ClientCounters c;
    c.requests = requests_.load();
    c.retries = retries_.load();
    c.status_2xx = status_2xx_.load();
    c.status_4xx = status_4xx_.load();
    c.status_429 = status_429_.load();
    c.status_5xx = status_5xx_.load();
    c.transport = transport_.load();
    return c;
  }

 private:
  using Interpret = std::function<Status(const Response&)>;

  // Writes are retried for account.retry_for; reads, which a person or a
  // run waits for, for account.read_retry_for.
  Clock::time_point Deadline() const { return now_() + retry_for_; }
  Clock::time_point ReadDeadline() const { return now_() + read_retry_for_; }
  bool IsWrite(const Request& req) const { return req.method != "GET"; }

  std::string Describe(const Request& req) const {
    return "account: " + req.method + " " + req.target.substr(0, req.target.find('?'));
  }

  // The whole URL, for messages that must say where idsync was trying.
  std::string Url(const Request& req) const {
    return endpoint_.origin + req.target.substr(0, req.target.find('?'));
  }

  // The token must never reach a message, whatever the account echoes back.
  std::string Redact(std::string text) const {
    if (token_.empty()) return text;
    for (std::size_t at = text.find(token_); at != std::string::npos; at = text.find(token_, at)) {
      text.replace(at, token_.size(), "[redacted]");
    }
    return text;
  }

  // An invite's 409: the address belongs to account user `id` (a fact the
  // caller acts on, so it travels as a payload, not in the text).
  Status UserExists(const Request& req, const std::string& email, const std::string& id) const {
    Status s = AlreadyExistsError(Describe(req) + ": HTTP 409 user_exists: " + email +
                                  " is already account user " + (id.empty() ? "(unnamed)" : id));
    s.SetPayload(mapping::kExistingUserIdKey, id);
    return s;
  }

  // A non-2xx answer as a Status. kUnavailable means "retry" to Call.
  Status HttpError(const Request& req, const Response& r) const {
    wire::ApiError e = wire::ParseError(r.body);
    std::string text = Describe(req) + ": HTTP " + std::to_string(r.status);
    if (!e.code.empty()) text += " " + e.code;
    if (!e.message.empty()) {
      text += ": " + e.message;
    } else if (e.code.empty() && !r.body.empty()) {
      std::string excerpt = r.body.substr(0, 200);
      for (char& c : excerpt) {
        if (static_cast<unsigned char>(c) < 0x20) c = ' ';
      }
      text += ": " + excerpt;
    }
    text = Redact(std::move(text));
    Status s;
    if (r.status == 401) {
      s = UnauthenticatedError(std::move(text));
    } else if (r.status == 403) {
      s = PermissionDeniedError(std::move(text));
    } else if (r.status == 404) {
      s = NotFoundError(std::move(text));
    } else if (r.status == 429 || r.status / 100 == 5) {
      s = UnavailableError(std::move(text));
    } else {
      // Other 4xx, and redirects or other oddities that a retry cannot fix.
      s = InvalidArgumentError(std::move(text));
    }
    if (r.retry_after) s.set_retry_after_seconds(*r.retry_after);
    return s;
  }

  Status Malformed(const Request& req, const Response& r, const Status& why) const {
    return UnavailableError(Redact(Describe(req) + ": malformed answer (HTTP " +
                                   std::to_string(r.status) + "): " + why.message()));
  }

  // Sends `req` until `interpret` returns something other than kUnavailable,
  // the certificate is refused, or the next try would start after `deadline`.
  Status Call(const Request& req, Clock::time_point deadline, const Interpret& interpret) {
    bool fresh_retry_done = false;
    int backoff_retries = 0;
    int attempts = 0;
    const Clock::time_point first = now_();
    for (;;) {
      if (interrupted_) return Stopping(req);
      ++requests_;
      if (attempts++ > 0) ++retries_;
      Attempt a = Exchange(req);
      Status s;
      if (!a.response) {
        ++transport_;
        if (on_response_) on_response_(0);
        if (a.permanent) return a.error;
        s = a.error;
        if (a.reused && !fresh_retry_done) {
          // A keep-alive connection the server closed while it sat in the
          // pool: not the account failing. Every idle one is likely as stale,
          // so drop them all and try again at once on a new connection.
          fresh_retry_done = true;
          DropIdleSessions();
          continue;
        }
      } else {
        CountStatus(a.response->status);
        if (on_response_) on_response_(a.response->status);
        s = interpret(*a.response);
        if (s.code() != StatusCode::kUnavailable) return s;
      }
      milliseconds delay =
          s.retry_after_seconds()
              ? milliseconds(static_cast<std::int64_t>(std::ceil(*s.retry_after_seconds() * 1000)))
              : backoff_.Delay(backoff_retries);
      ++backoff_retries;
      const std::string prefix = Describe(req) + ": ";
      std::string last = s.message();
      if (last.rfind(prefix, 0) == 0) last.erase(0, prefix.size());
      if (now_() + delay >= deadline) {
        auto spent = std::chrono::duration_cast<milliseconds>(now_() - first).count();
        Status out = DeadlineExceededError(
            prefix + "gave up on " + Url(req) + " after " + std::to_string(attempts) +
            " attempt(s) in " + std::to_string(spent / 1000) + "." +
            std::to_string(spent % 1000 / 100) + "s (" +
            (IsWrite(req) ? "account.retry_for" : "account.read_retry_for") +
            "); last error: " + last);
        if (s.retry_after_seconds()) out.set_retry_after_seconds(*s.retry_after_seconds());
        return out;
      }
      if (on_retry_) {
        RetryNotice notice;
        notice.request = req.method + " " + Url(req);
        notice.error = last;
        notice.attempts = attempts;
        notice.delay = delay;
        notice.left = std::chrono::duration_cast<milliseconds>(deadline - now_());
        notice.write = IsWrite(req);
        on_retry_(notice);
      }
      WaitToRetry(delay);
    }
  }

  Status Stopping(const Request& req) const {
    return UnavailableError(Describe(req) + ": idsync is stopping; not tried again");
  }

  // The pause before a retry; Interrupt() ends it early.
  void WaitToRetry(milliseconds delay) {
    if (replaced_sleep_) {
      sleep_(delay);
      return;
    }
    std::unique_lock<std::mutex> lock(interrupt_mu_);
    interrupt_cv_.wait_for(lock, delay, [&] { return interrupted_.load(); });
  }

  void CountStatus(int status) {
    if (status / 100 == 2) {
      ++status_2xx_;
    } else if (status == 429) {
      ++status_429_;
    } else if (status / 100 == 4) {
      ++status_4xx_;
    } else if (status / 100 == 5) {
      ++status_5xx_;
    }
  }

  // An attempt on the wire: its socket and the time it must be done by.
  // Registered while the attempt runs, so that the watchdog (past the
  // deadline) and Interrupt() can shut the socket down under it.
  struct Wire {
    int fd = -1;
    Clock::time_point deadline;
    bool cut = false;  // guarded by wire_mu_
  };

  // Registers `wire` for the watchdog; Release() (or the destructor)
  // unregisters it before the socket can be closed or reused.
  class WireGuard {
   public:
    WireGuard(HttpAccountClient& client, Wire& wire) : client_(client), wire_(wire) {
      {
        std::lock_guard<std::mutex> lock(client_.wire_mu_);
        client_.wires_.insert(&wire_);
        if (client_.interrupted_) client_.Cut(wire_);
      }
      client_.wire_cv_.notify_all();
    }
    ~WireGuard() { Release(); }
    WireGuard(const WireGuard&) = delete;
    WireGuard& operator=(const WireGuard&) = delete;

    // Unregisters; true when the socket was cut meanwhile.
    bool Release() {
      std::lock_guard<std::mutex> lock(client_.wire_mu_);
      if (registered_) client_.wires_.erase(&wire_);
      registered_ = false;
      return wire_.cut;
    }
    bool cut() const {
      std::lock_guard<std::mutex> lock(client_.wire_mu_);
      return wire_.cut;
    }

   private:
    HttpAccountClient& client_;
    Wire& wire_;
    bool registered_ = true;
  };

  // Shuts the socket down (not closed: its owner still holds the fd), so a
  // blocked connect, send or receive returns at once. Under wire_mu_.
  void Cut(Wire& wire) {
    if (wire.cut) return;
    wire.cut = true;
    ::shutdown(wire.fd, SHUT_RDWR);
  }

  // The watchdog: cuts each attempt on the wire when its deadline passes.
  // Real time, whatever clock the retry policy uses: sockets wait in it.
  void Watch() {
    std::unique_lock<std::mutex> lock(wire_mu_);
    while (!closing_) {
      Clock::time_point next = Clock::time_point::max();
      const Clock::time_point now = Clock::now();
      for (Wire* wire : wires_) {
        if (wire->cut) continue;
        if (wire->deadline <= now) {
          Cut(*wire);
        } else {
          next = std::min(next, wire->deadline);
        }
      }
      if (next == Clock::time_point::max()) {
        wire_cv_.wait(lock);
      } else {
        wire_cv_.wait_until(lock, next);
      }
    }
  }

  // One request on one connection, inside the in-flight and rate limits,
  // within account.timeout from connect to the answer's last byte.
  Attempt Exchange(const Request& req) {
    InFlightLimit::Slot slot(in_flight_);
    rate_.Acquire();
    Attempt out;
    PooledSession ps = TakeSession();
    out.reused = ps.used;
    SigpipeGuard no_sigpipe;
    std::string failure;
    Wire wire;
    wire.deadline = Clock::now() + timeout_;
    std::optional<WireGuard> guard;
    auto cut_failure = [&]() {
      if (interrupted_) {
        out.permanent = true;
        out.error = Stopping(req);
      } else {
        out.error =
            UnavailableError(Describe(req) + ": no complete answer within " + Seconds(timeout_) +
                             " (account.timeout: connect, send and receive together)");
      }
      return out;
    };
    try {
      // Connect bounded by its own timeout (no longer than the attempt's);
      // from here on the watchdog holds the whole attempt to its deadline.
      SessionAccess::Connect(*ps.session);
      wire.fd = static_cast<int>(ps.session->socket().impl()->sockfd());
      guard.emplace(*this, wire);
      Poco::Net::HTTPRequest hr(req.method, req.target, Poco::Net::HTTPMessage::HTTP_1_1);
      hr.setKeepAlive(true);
      hr.set("Authorization", "Bearer " + token_);
      hr.set("Accept", "application/json");
      hr.set("User-Agent", "idsync");
      if (!req.idempotency_key.empty()) hr.set("Idempotency-Key", req.idempotency_key);
      if (req.has_body) {
        hr.setContentType("application/json");
        hr.setContentLength64(static_cast<Poco::Int64>(req.body.size()));
      }
      std::ostream& os = ps.session->sendRequest(hr);
      if (req.has_body) os.write(req.body.data(), static_cast<std::streamsize>(req.body.size()));
      Poco::Net::HTTPResponse hresp;
      std::istream& is = ps.session->receiveResponse(hresp);
      Response r;
      r.status = static_cast<int>(hresp.getStatus());
      const bool sized = hresp.hasContentLength() && hresp.getContentLength64() >= 0;
      if (sized && static_cast<std::uint64_t>(hresp.getContentLength64()) > max_response_) {
        return TooLarge(req, out, std::to_string(hresp.getContentLength64()) + " bytes");
      }
      // A page of users is half a megabyte: grown piecemeal, its string is
      // reallocated over and over among the freed records of earlier pages.
      if (sized && hresp.getContentLength64() > 0) {
        r.body.reserve(static_cast<std::size_t>(hresp.getContentLength64()));
      }
      char buffer[16384];
      while (is.read(buffer, sizeof buffer) || is.gcount() > 0) {
        r.body.append(buffer, static_cast<std::size_t>(is.gcount()));
        if (r.body.size() > max_response_) return TooLarge(req, out, "more");
      }
      if (guard->Release()) return cut_failure();
      if (is.bad() ||
          (sized && static_cast<Poco::Int64>(r.body.size()) != hresp.getContentLength64())) {
        // The connection ended (or failed) before the body did.
        out.error = UnavailableError(Describe(req) + ": answer cut short after " +
                                     std::to_string(r.body.size()) + " bytes");
        return out;
      }
      if (hresp.has("Retry-After")) r.retry_after = ParseRetryAfter(hresp.get("Retry-After"));
      ps.used = true;
      if (hresp.getKeepAlive()) ReturnSession(std::move(ps));
      out.response = std::move(r);
      return out;
    } catch (const Poco::Net::CertificateValidationException& e) {
      out.permanent = true;
      failure = "TLS certificate not accepted: " + e.displayText();
    } catch (const Poco::Net::SSLException& e) {
      // OpenSSL reports an untrusted chain only through its message.
      std::string text = e.displayText();
      out.permanent = text.find("certificate verify failed") != std::string::npos;
      failure = (out.permanent ? "TLS certificate not trusted: " : "TLS: ") + text;
    } catch (const Poco::TimeoutException& e) {
      failure = "timed out: " + e.displayText();
    } catch (const Poco::Exception& e) {
      failure = e.displayText();
    } catch (const std::exception& e) {
      failure = e.what();
    }
    // A failure caused by the cut is reported as the cut.
    if (guard && guard->Release()) {
      out.permanent = false;
      return cut_failure();
    }
    if (interrupted_) {
      out.permanent = true;
      out.error = Stopping(req);
      return out;
    }
    // The session is dropped here: after a failure its state is unknown.
    out.error = UnavailableError(Redact(Describe(req) + ": " + failure));
    return out;
  }

  // An answer over max_response_bytes: the account would send the same
  // again, so it is not retried. The session is dropped with its unread
  // rest.
  Attempt& TooLarge(const Request& req, Attempt& out, const std::string& size) const {
    out.permanent = true;
    out.error = ResourceExhaustedError(Describe(req) + ": the answer is larger than " +
                                       std::to_string(max_response_) + " bytes (" + size +
                                       "), the most idsync reads from the account in one answer");
    return out;
  }

  static std::string Seconds(milliseconds d) {
    std::string text = std::to_string(d.count() / 1000);
    if (d.count() % 1000 != 0) text += "." + std::to_string(d.count() % 1000 / 100);
    return text + "s";
  }

  PooledSession TakeSession() {
    {
      std::lock_guard<std::mutex> lock(pool_mu_);
      // Older idle connections are closed rather than reused: Poco would
      // reconnect them inside sendRequest, on a socket the watchdog does
      // not know.
      const Clock::time_point stale = Clock::now() - kMaxIdle;
      std::erase_if(idle_, [&](const PooledSession& ps) { return ps.idle_since < stale; });
      if (!idle_.empty()) {
        PooledSession ps = std::move(idle_.back());
        idle_.pop_back();
        return ps;
      }
    }
    PooledSession ps;
    if (endpoint_.https) {
      ps.session =
          std::make_unique<Poco::Net::HTTPSClientSession>(endpoint_.host, endpoint_.port, context_);
    } else {
      ps.session = std::make_unique<Poco::Net::HTTPClientSession>(endpoint_.host, endpoint_.port);
    }
    Poco::Timespan t(static_cast<Poco::Timespan::TimeDiff>(timeout_.count()) * 1000);
    ps.session->setTimeout(t, t, t);
    ps.session->setKeepAlive(true);
    // Idle connections are retired by TakeSession, never by Poco.
    ps.session->setKeepAliveTimeout(Poco::Timespan(24 * 3600, 0));
    return ps;
  }

  void ReturnSession(PooledSession ps) {
    ps.idle_since = Clock::now();
    std::lock_guard<std::mutex> lock(pool_mu_);
    if (idle_.size() < max_idle_) idle_.push_back(std::move(ps));
  }

  void DropIdleSessions() {
    std::vector<PooledSession> stale;
    {
      std::lock_guard<std::mutex> lock(pool_mu_);
      stale.swap(idle_);
    }
  }

  Result<std::vector<AccountRecord>> ListAll(Clock::time_point deadline) {
    std::vector<AccountRecord> all;
    RETURN_IF_ERROR(ForEachPage(deadline, [&](std::vector<AccountRecord>& page) -> Status {
      if (all.empty()) {
        all = std::move(page);
      } else {
        all.reserve(all.size() + page.size());
        for (AccountRecord& u : page) all.push_back(std::move(u));
      }
      return Status::Ok();
    }));
    return all;
  }

  Status ForEachPage(Clock::time_point deadline,
                     const std::function<Status(std::vector<AccountRecord>& page)>& on_page) {
    return PageThroughUsers<wire::UserPage>(
        deadline, [](const std::string& body) { return wire::ParseUserPage(body); }, on_page);
  }

  Status ForEachCompactUserPage(
      const mapping::Catalog& catalog,
      const std::function<Status(std::vector<mapping::AccountUser>& page)>& on_page) override {
    return PageThroughUsers<wire::CompactUserPage>(
        ReadDeadline(),
        [&catalog](const std::string& body) { return wire::ParseCompactUserPage(body, catalog); },
        on_page);
  }

  // Asks for GET /users page by page; `parse` reads an answer into a Page
  // (users and next_cursor), whose users go to `on_page`.
  template <typename Page, typename Parse, typename OnPage>
  Status PageThroughUsers(Clock::time_point deadline, const Parse& parse, const OnPage& on_page) {
    std::optional<std::string> cursor;
    std::set<std::string> seen;
    do {
      Request req = Get(endpoint_.prefix + "/users?limit=" + std::to_string(page_size_));
      if (cursor) req.target += "&cursor=" + Encode(*cursor);
      Page page;
      RETURN_IF_ERROR(Call(req, deadline, [&](const Response& r) -> Status {
        if (r.status / 100 != 2) return HttpError(req, r);
        Result<Page> parsed = parse(r.body);
        if (!parsed.ok()) return Malformed(req, r, parsed.status());
        page = std::move(parsed).value();
        return Status::Ok();
      }));
      RETURN_IF_ERROR(on_page(page.users));
      cursor = std::move(page.next_cursor);
      if (cursor && !seen.insert(*cursor).second) {
        // A cursor seen before would page forever.
        return InternalError(Describe(req) + ": the account repeated a page cursor");
      }
    } while (cursor);
    return Status::Ok();
  }

  Result<std::string> FindIdByEmail(const std::string& email, Clock::time_point deadline) {
    ASSIGN_OR_RETURN(std::vector<AccountRecord> users, ListAll(deadline));
    const std::string want = base::AsciiLower(email);
    for (const AccountRecord& u : users) {
      if (base::AsciiLower(u.email) == want) return u.id;
    }
    return InternalError("no user has the e-mail " + email);
  }

  // Poco's own default: servers keep idle connections at least this long.
  static constexpr milliseconds kMaxIdle{8000};

  const std::string token_;
  const milliseconds timeout_;
  const milliseconds retry_for_;
  const milliseconds read_retry_for_;
  const std::uint64_t max_response_;
  const std::size_t max_idle_;
  const int page_size_;
  const Endpoint endpoint_;
  const Poco::Net::Context::Ptr context_;  // null for http://
  const NowFn now_;
  const SleepFn sleep_;
  const bool replaced_sleep_;  // tests' own sleep: used as it is
  std::atomic<bool> interrupted_{false};
  std::mutex interrupt_mu_;
  std::condition_variable interrupt_cv_;
  RateLimiter rate_;
  InFlightLimit in_flight_;
  Backoff backoff_;

  std::mutex pool_mu_;
  std::vector<PooledSession> idle_;

  std::function<void(int)> on_response_;
  std::function<void(const RetryNotice&)> on_retry_;

  // Attempts on the wire, for the watchdog and Interrupt().
  mutable std::mutex wire_mu_;
  std::condition_variable wire_cv_;
  std::set<Wire*> wires_;  // guarded by wire_mu_
  bool closing_ = false;   // guarded by wire_mu_
  std::thread watchdog_;
  std::atomic<std::int64_t> requests_{0}, retries_{0}, status_2xx_{0}, status_4xx_{0},
      status_429_{0}, status_5xx_{0}, transport_{0};
};

}  // namespace

Result<std::unique_ptr<AccountClient>> AccountClient::Create(const config::AccountConfig& config,
                                                             ClientOptions options) {
  Poco::URI uri;
  try {
    uri = Poco::URI(config.url);
  } catch (const Poco::Exception& e) {
    return InvalidArgumentError("account.url is not a valid URL: " + e.message());
  }
  HttpAccountClient::Endpoint endpoint;
  const std::string scheme = base::AsciiLower(uri.getScheme());
  if (scheme != "http" && scheme != "https") {
    return InvalidArgumentError("account.url must start with http:// or https://");
  }
  endpoint.https = scheme == "https";
  if (uri.getHost().empty()) return InvalidArgumentError("account.url has no host");
  if (!uri.getUserInfo().empty()) {
    // Credentials belong in account.token; a URL ends up in messages.
    return InvalidArgumentError("account.url must not hold a user name or password");
  }
  if (!uri.getRawQuery().empty() || !uri.getFragment().empty()) {
    return InvalidArgumentError("account.url must not have a query or fragment");
  }
  endpoint.host = uri.getHost();
  endpoint.port = uri.getPort();
  endpoint.origin = scheme + "://" + uri.getAuthority();
  endpoint.prefix = uri.getPathEtc();
  while (!endpoint.prefix.empty() && endpoint.prefix.back() == '/') endpoint.prefix.pop_back();
  if (HasControlChar(config.token)) {
    return InvalidArgumentError("account.token holds a control character");
  }
  if (config.timeout.count() <= 0) return InvalidArgumentError("account.timeout must be positive");
  if (config.concurrency < 1) return InvalidArgumentError("account.concurrency must be at least 1");

  Poco::Net::Context::Ptr context;
  if (endpoint.https) {
    if (!config.ca_file.empty() && !std::ifstream(config.ca_file).good()) {
      return InvalidArgumentError("account.ca_file " + config.ca_file + " cannot be read");
    }
    static std::once_flag ssl_once;
    std::call_once(ssl_once, [] { Poco::Net::initializeSSL(); });
    try {
      Poco::Net::Context::Params params;
      params.caLocation = config.ca_file;
      // Without a CA file, the system's trust store.
      params.loadDefaultCAs = config.ca_file.empty();
      params.verificationMode =
          config.verify ? Poco::Net::Context::VERIFY_STRICT : Poco::Net::Context::VERIFY_NONE;
      context = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, params);
      context->requireMinimumProtocol(Poco::Net::Context::PROTO_TLSV1_2);
    } catch (const Poco::Exception& e) {
      return InvalidArgumentError("account TLS setup failed (ca_file " + config.ca_file +
                                  "): " + e.displayText());
    }
  }
  return std::unique_ptr<AccountClient>(
      new HttpAccountClient(config, std::move(options), std::move(endpoint), std::move(context)));
}

}  // namespace idsync::account
