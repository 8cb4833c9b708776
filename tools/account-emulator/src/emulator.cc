// The emulator's HTTP side: Poco's HTTPServer, the fault pipeline in front of
// the account, the request log, persistence and the /_emulator/ admin API.
#include "idsync/emulator/emulator.h"

#include <atomic>
#include <charconv>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <iostream>
#include <iterator>
#include <mutex>
#include <sstream>

#include <Poco/Exception.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/ThreadPool.h>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <unistd.h>

#include "account_state.h"
#include "fault_injector.h"

namespace idsync::emulator {
namespace {

constexpr std::size_t kMaxBodyBytes = 1 << 20;

std::random_device::result_type OsSeed() { return std::random_device()(); }

// Writes `content` to `path` so that readers see the old or the new file,
// never a partial one: a temporary beside it, flushed to disk, then renamed.
Status WriteFileAtomically(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return InternalError("cannot write " + tmp);
  std::size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return InternalError("cannot write " + tmp);
    }
    done += static_cast<std::size_t>(n);
  }
  bool synced = ::fsync(fd) == 0;
  if (::close(fd) != 0 || !synced) return InternalError("cannot flush " + tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return InternalError("cannot rename " + tmp);
  return Status::Ok();
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("cannot read " + path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string LoggedRequestJson(const LoggedRequest& r) {
  Json j = {
      {"seq", r.seq},
      {"time", r.time},
      {"method", r.method},
      {"path", r.path},
      {"endpoint", r.endpoint},
      {"idempotency_key", r.idempotency_key.empty() ? Json(nullptr) : Json(r.idempotency_key)},
      {"status", r.status},
      {"replay", r.replay},
      {"dropped", r.dropped},
      {"applied", r.applied},
      {"fault", r.fault},
      {"user_id", r.user_id.empty() ? Json(nullptr) : Json(r.user_id)}};
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);  // paths may hold any bytes
}

std::string BearerOf(const Poco::Net::HTTPServerRequest& request) {
  std::string auth = request.get("Authorization", "");
  static constexpr std::string_view kBearer = "Bearer ";
  if (auth.size() <= kBearer.size()) return "";
  for (std::size_t i = 0; i < kBearer.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(auth[i])) !=
        std::tolower(static_cast<unsigned char>(kBearer[i])))
      return "";
  }
  return auth.substr(kBearer.size());
}

// Constant-time comparison, so a token is not guessable by timing.
bool SameToken(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

// Everything one running emulator holds; handlers reach it by reference.
struct Server {
  explicit Server(EmulatorOptions opts, std::uint64_t seed)
      : options(std::move(opts)),
        state(seed),
        faults(options.faults, seed ^ 0x9e3779b97f4a7c15ULL),
        token(options.token),
        read_only_token(options.read_only_token) {}

  Clock::time_point Now() const {
    Clock::time_point base = options.clock ? options.clock() : Clock::now();
    return base + std::chrono::seconds(clock_offset_s.load());
  }

  // Writes the account to the state file; called with state_mu held.
  void PersistLocked() {
    if (options.state_file.empty()) return;
    Status s = WriteFileAtomically(options.state_file, state.PersistJson());
    if (!s.ok()) std::cerr << "emulator.persist_failed " << s.message() << "\n";
  }

  void Log(LoggedRequest entry) {
    std::lock_guard lock(log_mu);
    entry.seq = next_log_seq++;
    if (options.verbose) {
      std::cerr << "emulator.request " << entry.seq << " " << entry.method << " " << entry.path
                << " " << entry.status << (entry.replay ? " replay" : "")
                << (entry.dropped ? " dropped" : "")
                << (entry.fault.empty() ? "" : " fault=" + entry.fault)
                << (entry.idempotency_key.empty() ? "" : " key=" + entry.idempotency_key) << "\n";
    }
    log.push_back(std::move(entry));
    while (log.size() > options.request_log_limit && !log.empty()) log.pop_front();
  }

  // Waits `d` unless the emulator stops first.
  void Sleep(std::chrono::milliseconds d) {
    if (d.count() <= 0) return;
    std::unique_lock lock(stop_mu);
    stop_cv.wait_for(lock, d, [&] { return stopping; });
  }

  EmulatorOptions options;

  mutable std::mutex state_mu;
  AccountState state;
  std::atomic<std::int64_t> clock_offset_s{0};

  FaultInjector faults;

  mutable std::mutex log_mu;
  std::deque<LoggedRequest> log;
  std::uint64_t next_log_seq = 1;

  mutable std::mutex token_mu;
  std::string token;
  std::string read_only_token;

  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stopping = false;
  std::once_flag stopped;

  Poco::Net::ServerSocket listen_socket;
  std::unique_ptr<Poco::ThreadPool> pool;
  std::unique_ptr<Poco::Net::HTTPServer> server;
  int port = 0;
};

void Send(Poco::Net::HTTPServerResponse& response, int status, const std::string& body,
          const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  response.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
  for (const auto& [name, value] : headers) response.set(name, value);
  if (status == 204 || body.empty()) {
    response.setContentLength(0);
    response.send();
    return;
  }
  response.setContentType("application/json");
  response.setContentLength(static_cast<std::streamsize>(body.size()));
  response.sendBuffer(body.data(), body.size());
}

void SendApi(Poco::Net::HTTPServerResponse& response, const ApiResponse& r,
             std::vector<std::pair<std::string, std::string>> headers = {}) {
  if (!r.location.empty()) headers.emplace_back("Location", r.location);
  if (!r.allow.empty()) headers.emplace_back("Allow", r.allow);
  Send(response, r.status, r.body, headers);
}

// Closes the connection without an answer. The socket is taken from the
// session first so that Poco neither answers nor keeps the connection; a
// zero linger makes the close abortive (RST), as a crashed proxy would.
void Drop(Poco::Net::HTTPServerRequest& request, Poco::Net::HTTPServerResponse& response) {
  response.setKeepAlive(false);
  auto* impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl*>(&request);
  if (impl == nullptr) return;
  try {
    Poco::Net::StreamSocket socket = impl->detachSocket();
    socket.setLinger(true, 0);
    socket.close();
  } catch (const Poco::Exception&) {
    // Already gone: nothing more to drop.
  }
}

class Handler : public Poco::Net::HTTPRequestHandler {
 public:
  explicit Handler(Server& impl) : impl_(impl) {}

  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    try {
      Serve(request, response);
    } catch (const Poco::Exception&) {
      // The client went away mid-answer; the connection ends here.
    } catch (const std::exception& e) {
      // A bug below: answer 500 so that it shows, if the connection allows.
      try {
        SendApi(response, ErrorResponse(500, "internal", e.what()));
      } catch (...) {
      }
    }
  }

 private:
  void Serve(Poco::Net::HTTPServerRequest& request, Poco::Net::HTTPServerResponse& response) {
    ApiRequest api;
    api.method = request.getMethod();
    const std::string& uri = request.getURI();
    std::size_t q = uri.find('?');
    api.path = uri.substr(0, q);
    if (q != std::string::npos) api.query = uri.substr(q + 1);
    api.content_type = request.get("Content-Type", "");
    api.idempotency_key = request.get("Idempotency-Key", "");

    // Read the whole body, also when it will be refused, so that the
    // connection stays usable for the next request.
    bool too_large = request.hasContentLength() &&
                     request.getContentLength64() > static_cast<std::int64_t>(kMaxBodyBytes);
    if (!too_large) {
      std::istream& in = request.stream();
      api.body.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      too_large = api.body.size() > kMaxBodyBytes;
    }

    if (api.path == "/_emulator" || api.path.starts_with("/_emulator/")) {
      ServeAdmin(api, request, response, too_large);
      return;
    }
    ServeApi(api, request, response, too_large);
  }

  void ServeApi(ApiRequest& api, Poco::Net::HTTPServerRequest& request,
                Poco::Net::HTTPServerResponse& response, bool too_large) {
    std::string allow;
    LoggedRequest entry;
    entry.method = api.method;
    entry.path = request.getURI();
    entry.endpoint = ClassifyEndpoint(api.method, api.path, &allow);
    entry.idempotency_key = api.idempotency_key;

    impl_.Sleep(impl_.faults.Latency());
    FaultInjector::Decision d = impl_.faults.Decide(entry.endpoint.empty() ? "*" : entry.endpoint,
                                                    std::chrono::steady_clock::now());
    entry.time = FormatTime(impl_.Now(), true);

    switch (d.kind) {
      case FaultInjector::Kind::kDropBefore:
        entry.dropped = true;
        entry.fault = "drop_before";
        impl_.Log(std::move(entry));
        Drop(request, response);
        return;
      case FaultInjector::Kind::kRateLimit:
      case FaultInjector::Kind::kThrottle: {
        entry.status = 429;
        entry.fault = d.kind == FaultInjector::Kind::kRateLimit ? "rate_limit" : "throttle";
        impl_.Log(std::move(entry));
        SendApi(response,
                ErrorResponse(429, "rate_limited",
                              "too many requests; retry after " +
                                  std::to_string(d.retry_after_seconds) + " s"),
                {{"Retry-After", std::to_string(d.retry_after_seconds)}});
        return;
      }
      case FaultInjector::Kind::kError:
        entry.status = d.status;
        entry.fault = "error";
        impl_.Log(std::move(entry));
        SendApi(response, ErrorResponse(d.status,
                                        d.status == 503   ? "unavailable"
                                        : d.status == 502 ? "bad_gateway"
                                                          : "internal",
                                        "injected failure"));
        return;
      case FaultInjector::Kind::kNone:
        break;
    }

    std::vector<std::pair<std::string, std::string>> headers;
    ApiOutcome outcome;
    if (ApiResponse denied; !Authorize(api.method, request, &denied, &headers)) {
      outcome.response = denied;
    } else if (too_large) {
      outcome.response = ErrorResponse(413, "payload_too_large", "the body exceeds 1 MiB");
    } else {
      std::lock_guard lock(impl_.state_mu);
      outcome = impl_.state.Handle(api, impl_.Now());
      if (outcome.applied) impl_.PersistLocked();
    }
    entry.status = outcome.response.status;
    entry.replay = outcome.replay;
    entry.applied = outcome.applied;
    entry.user_id = outcome.user_id;
    entry.email = outcome.email;
    if (d.drop_after) {
      entry.dropped = true;
      entry.fault = "drop_after";
      impl_.Log(std::move(entry));
      Drop(request, response);
      return;
    }
    // Logged before the answer goes out: a client that has its answer can
    // read the log and find the request in it.
    if (outcome.replay) headers.emplace_back("Idempotent-Replayed", "true");
    impl_.Log(std::move(entry));
    SendApi(response, outcome.response, headers);
  }

  bool Authorize(const std::string& method, const Poco::Net::HTTPServerRequest& request,
                 ApiResponse* denied, std::vector<std::pair<std::string, std::string>>* headers) {
    std::string token, read_only;
    {
      std::lock_guard lock(impl_.token_mu);
      token = impl_.token;
      read_only = impl_.read_only_token;
    }
    if (token.empty() && read_only.empty()) return true;
    std::string given = BearerOf(request);
    if (!token.empty() && SameToken(given, token)) return true;
    if (!read_only.empty() && SameToken(given, read_only)) {
      if (method == "GET") return true;
      *denied = ErrorResponse(403, "forbidden", "this token may only read");
      return false;
    }
    *denied = ErrorResponse(401, "unauthorized",
                            given.empty() ? "a bearer token is required" : "invalid bearer token");
    headers->emplace_back("WWW-Authenticate", "Bearer");
    return false;
  }

  void ServeAdmin(const ApiRequest& api, Poco::Net::HTTPServerRequest& request,
                  Poco::Net::HTTPServerResponse& response, bool too_large) {
    if (!impl_.options.admin_token.empty() &&
        !SameToken(BearerOf(request), impl_.options.admin_token)) {
      SendApi(response, ErrorResponse(401, "unauthorized", "the admin token is required"),
              {{"WWW-Authenticate", "Bearer"}});
      return;
    }
    if (too_large) {
      SendApi(response, ErrorResponse(413, "payload_too_large", "the body exceeds 1 MiB"));
      return;
    }
    const std::string& m = api.method;
    const std::string& p = api.path;
    auto method_not_allowed = [&](const char* allow) {
      ApiResponse r = ErrorResponse(405, "method_not_allowed", m + " is not allowed on " + p);
      r.allow = allow;
      SendApi(response, r);
    };
    auto bad = [&](const Status& s) {
      SendApi(response, ErrorResponse(400, "invalid_request", s.message()));
    };

    if (p == "/_emulator/faults") {
      if (m == "GET") return Send(response, 200, FaultsToJson(impl_.faults.faults()));
      if (m != "PUT") return method_not_allowed("GET, PUT");
      Result<Faults> f = ParseFaults(api.body);
      if (!f.ok()) return bad(f.status());
      impl_.faults.Set(*f);
      return Send(response, 200, FaultsToJson(*f));
    }
    if (p == "/_emulator/requests") {
      if (m != "GET") return method_not_allowed("GET");
      std::uint64_t after = 0;
      if (api.query.starts_with("after=")) {
        std::string_view digits = std::string_view(api.query).substr(6);
        auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), after);
        if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) {
          return bad(InvalidArgumentError("after must be a non-negative integer"));
        }
      } else if (!api.query.empty()) {
        return bad(InvalidArgumentError("unknown query parameter (only after=SEQ)"));
      }
      std::string body = "{\"requests\":[";
      bool first = true;
      std::lock_guard lock(impl_.log_mu);
      for (const LoggedRequest& r : impl_.log) {
        if (r.seq <= after) continue;
        if (!first) body += ',';
        first = false;
        body += LoggedRequestJson(r);
      }
      body += "]}";
      return Send(response, 200, body);
    }
    if (p == "/_emulator/reset-log") {
      if (m != "POST") return method_not_allowed("POST");
      std::lock_guard lock(impl_.log_mu);
      impl_.log.clear();
      return Send(response, 204, "");
    }
    if (p == "/_emulator/state") {
      if (m == "GET") {
        std::lock_guard lock(impl_.state_mu);
        return Send(response, 200, impl_.state.StateDocument().dump());
      }
      if (m != "PUT") return method_not_allowed("GET, PUT");
      std::lock_guard lock(impl_.state_mu);
      Status s = impl_.state.Load(api.body, impl_.Now());
      if (!s.ok()) return bad(s);
      impl_.PersistLocked();
      return Send(response, 200, impl_.state.StateDocument().dump());
    }
    if (p == "/_emulator/clock") {
      if (m != "POST") return method_not_allowed("POST");
      nlohmann::json body = nlohmann::json::parse(api.body, nullptr, false);
      if (body.is_discarded() || !body.is_object() || body.size() != 1 ||
          !body.contains("advance_seconds") || !body["advance_seconds"].is_number_integer()) {
        return bad(InvalidArgumentError("expected {\"advance_seconds\": N}"));
      }
      impl_.clock_offset_s += body["advance_seconds"].get<std::int64_t>();
      return Send(response, 200, nlohmann::json({{"now", FormatTime(impl_.Now(), true)}}).dump());
    }
    if (p == "/_emulator/tokens") {
      if (m != "PUT") return method_not_allowed("PUT");
      nlohmann::json body = nlohmann::json::parse(api.body, nullptr, false);
      bool ok = !body.is_discarded() && body.is_object();
      for (auto it = body.begin(); ok && it != body.end(); ++it) {
        ok = (it.key() == "token" || it.key() == "read_only_token") && it->is_string();
      }
      if (!ok) return bad(InvalidArgumentError("expected {\"token\", \"read_only_token\"}"));
      std::lock_guard lock(impl_.token_mu);
      impl_.token = body.value("token", "");
      impl_.read_only_token = body.value("read_only_token", "");
      return Send(response, 204, "");
    }
    static constexpr std::string_view kUsers = "/_emulator/users/";
    static constexpr std::string_view kAccept = "/accept";
    if (p.starts_with(kUsers) && p.ends_with(kAccept) &&
        p.size() > kUsers.size() + kAccept.size()) {
      if (m != "POST") return method_not_allowed("POST");
      std::string id = p.substr(kUsers.size(), p.size() - kUsers.size() - kAccept.size());
      std::lock_guard lock(impl_.state_mu);
      bool changed = false;
      Result<std::string> user = impl_.state.Accept(id, impl_.Now(), &changed);
      if (!user.ok()) {
        return SendApi(response, ErrorResponse(404, "not_found", user.status().message()));
      }
      if (changed) impl_.PersistLocked();
      return Send(response, 200, *user);
    }
    SendApi(response, ErrorResponse(404, "not_found", "no such admin endpoint: " + p));
  }

  Server& impl_;
};

class HandlerFactory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit HandlerFactory(Server& impl) : impl_(impl) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new Handler(impl_);
  }

 private:
  Server& impl_;
};

}  // namespace

struct AccountEmulator::Impl : Server {
  using Server::Server;
};

AccountEmulator::AccountEmulator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AccountEmulator::~AccountEmulator() { Stop(); }

Result<std::unique_ptr<AccountEmulator>> AccountEmulator::Start(EmulatorOptions options) {
  if (!options.seed_json.empty() && !options.seed_file.empty()) {
    return InvalidArgumentError("give at most one of seed_json and seed_file");
  }
  if (options.threads < 16) options.threads = 16;
  std::uint64_t seed = options.random_seed != 0 ? options.random_seed : OsSeed();
  auto impl = std::make_unique<Impl>(std::move(options), seed);
  const EmulatorOptions& o = impl->options;

  // The state file wins over the seed once it exists: it is the account as
  // it was left.
  std::string document = o.seed_json;
  bool from_state_file = false;
  if (!o.state_file.empty() && ::access(o.state_file.c_str(), F_OK) == 0) {
    Result<std::string> text = ReadFile(o.state_file);
    if (!text.ok()) return InvalidArgumentError(text.status().message());
    document = *text;
    from_state_file = true;
  } else if (!o.seed_file.empty()) {
    Result<std::string> text = ReadFile(o.seed_file);
    if (!text.ok()) return InvalidArgumentError(text.status().message());
    document = *text;
  }
  if (!document.empty()) {
    Status s = impl->state.Load(document, impl->Now());
    if (!s.ok()) {
      return InvalidArgumentError((from_state_file ? o.state_file : std::string("seed")) + ": " +
                                  s.message());
    }
  }
  if (!from_state_file) {
    std::lock_guard lock(impl->state_mu);
    impl->PersistLocked();
  }

  try {
    Poco::Net::ServerSocket& socket = impl->listen_socket;
    socket.bind(Poco::Net::SocketAddress(o.host, static_cast<Poco::UInt16>(o.port)), true);
    socket.listen(1024);
    impl->port = socket.address().port();

    auto* params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(o.threads);
    params->setMaxQueued(4096);
    params->setKeepAlive(true);
    // Longer than common clients' idle limits (Poco's is 8 s), so that a
    // client never reuses a connection the emulator has just closed.
    params->setKeepAliveTimeout(Poco::Timespan(30, 0));
    params->setMaxKeepAliveRequests(1'000'000'000);
    params->setTimeout(Poco::Timespan(30, 0));
    params->setServerName("account-emulator");
    impl->pool = std::make_unique<Poco::ThreadPool>(2, o.threads + 2, 60);
    impl->server = std::make_unique<Poco::Net::HTTPServer>(new HandlerFactory(*impl), *impl->pool,
                                                           socket, params);
    impl->server->start();
  } catch (const Poco::Exception& e) {
    return UnavailableError("cannot listen on " + o.host + ":" + std::to_string(o.port) + ": " +
                            e.displayText());
  }
  return std::unique_ptr<AccountEmulator>(new AccountEmulator(std::move(impl)));
}

int AccountEmulator::port() const { return impl_->port; }

std::string AccountEmulator::base_url() const {
  std::string host = impl_->options.host;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return "http://" + host + ":" + std::to_string(impl_->port);
}

Faults AccountEmulator::faults() const { return impl_->faults.faults(); }

void AccountEmulator::SetFaults(const Faults& faults) { impl_->faults.Set(faults); }

std::vector<LoggedRequest> AccountEmulator::Requests(std::uint64_t after) const {
  std::lock_guard lock(impl_->log_mu);
  std::vector<LoggedRequest> out;
  for (const LoggedRequest& r : impl_->log) {
    if (r.seq > after) out.push_back(r);
  }
  return out;
}

void AccountEmulator::ResetLog() {
  std::lock_guard lock(impl_->log_mu);
  impl_->log.clear();
}

std::string AccountEmulator::StateJson() const {
  std::lock_guard lock(impl_->state_mu);
  return impl_->state.StateDocument().dump();
}

Status AccountEmulator::SetStateJson(std::string_view json) {
  std::lock_guard lock(impl_->state_mu);
  RETURN_IF_ERROR(impl_->state.Load(json, impl_->Now()));
  impl_->PersistLocked();
  return Status::Ok();
}

Status AccountEmulator::AcceptInvite(const std::string& user_id) {
  std::lock_guard lock(impl_->state_mu);
  bool changed = false;
  Result<std::string> user = impl_->state.Accept(user_id, impl_->Now(), &changed);
  if (!user.ok()) return user.status();
  if (changed) impl_->PersistLocked();
  return Status::Ok();
}

void AccountEmulator::AdvanceClock(std::chrono::seconds by) { impl_->clock_offset_s += by.count(); }

void AccountEmulator::SetTokens(std::string token, std::string read_only_token) {
  std::lock_guard lock(impl_->token_mu);
  impl_->token = std::move(token);
  impl_->read_only_token = std::move(read_only_token);
}

void AccountEmulator::Stop() {
  std::call_once(impl_->stopped, [this] {
    {
      std::lock_guard lock(impl_->stop_mu);
      impl_->stopping = true;
    }
    impl_->stop_cv.notify_all();
    if (impl_->server) {
      // Poco's accept loop polls the listening socket in 250 ms steps;
      // shutting the socket down ends the wait at once.
      ::shutdown(impl_->listen_socket.impl()->sockfd(), SHUT_RDWR);
      // Aborting current connections wakes threads idling in keep-alive.
      impl_->server->stopAll(true);
    }
    if (impl_->pool) impl_->pool->joinAll();
    impl_->server.reset();
  });
}

}  // namespace idsync::emulator
