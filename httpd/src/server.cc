// The server: one event thread per Server that accepts, completes TLS
// handshakes, reads requests through a RequestParser and writes responses
// that could not be written at once; a pool of worker threads that run the
// handler on whole requests and write the answer.
//
// A connection belongs to one thread at a time. The event thread owns it
// while it is read, written or idle (epoll with EPOLLONESHOT, so that no
// second event arrives while it is handled); a worker owns it from the
// moment a whole request is queued until the worker hands it back: through
// the return queue (the loop is woken), or, for the common case of an
// answer written in full on a kept-alive connection, by re-arming the
// socket itself and leaving a note the loop reads at its next turn. Only
// the event thread creates, times out and closes connections, so no lock
// guards a connection's fields.
#include "idsync/httpd/server.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <ctime>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "idsync/base/json_text.h"

#include "request_parser.h"
#include "transport.h"
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
using internal::Io;

constexpr int kMaxEvents = 256;
// How often deadlines are looked at: their resolution.
constexpr std::chrono::milliseconds kTick{50};
constexpr std::size_t kReadChunk = 16 * 1024;
constexpr int kAcceptBurst = 64;
// After an answer that closes the connection, what the client still sends
// is read and dropped for a while, so that closing does not reset the
// answer away before the client has read it.
constexpr std::chrono::milliseconds kLingerTime{1000};
constexpr std::size_t kLingerBytes = 1024 * 1024;
// Connections refused past a cap that are still being answered; past this
// many more, a refused connection is closed without an answer.
constexpr int kMaxRefusing = 512;
// Writing an answer the server gives on its own (408, 503, ...).
constexpr std::chrono::milliseconds kRefusalWrite{2000};

Response DefaultError(int status, const std::string& message) {
  Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = "{\"error\": " + base::JsonQuote(message) + "}";
  return r;
}

// The method as a metric label: one of the served set, else "other".
std::string_view MethodLabel(std::string_view method) {
  static constexpr std::string_view kKnown[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"};
  for (std::string_view m : kKnown) {
    if (method == m) return m;
  }
  return "other";
}

// Blocks SIGPIPE in the calling thread: a write to a closed TLS connection
// must fail with EPIPE, not end the process.
void BlockSigpipe() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

enum class Tag { kListener, kWake, kConn };

struct Pollable {
  explicit Pollable(Tag t) : tag(t) {}
  Tag tag;
};

struct Listener : Pollable {
  Listener() : Pollable(Tag::kListener) {}
  int fd = -1;
};

enum class Phase {
  kHandshake,  // TLS handshake
  kIdle,       // waiting for a request's first byte
  kHead,       // reading a request head
  kBody,       // reading a body
  kHandler,    // a worker owns the connection
  kWrite,      // writing an answer
  kLinger,     // answered and closing: reading and dropping
};

// What follows a written answer.
enum class After { kKeepAlive, kClose, kLinger };

struct Conn : Pollable {
  explicit Conn(const internal::ParserLimits* limits) : Pollable(Tag::kConn), parser(limits) {}
  int fd = -1;
  std::unique_ptr<internal::Transport> io;
  std::string ip;      // the client's address, for the per-address cap
  std::string remote;  // "ip:port"
  bool tls = false;
  bool counted = true;  // false: refused at accept, being answered 503
  bool fresh = true;    // no request answered yet
  Phase phase = Phase::kIdle;
  Clock::time_point deadline;
  internal::RequestParser parser;
  std::string method;  // of the request being read or answered
  std::string out;
  std::size_t out_pos = 0;
  After after = After::kKeepAlive;
  std::size_t lingered = 0;
  std::uint64_t serial = 0;  // unique per connection over the server's life
  std::uint64_t turn = 0;    // requests handed to workers so far
};

struct Job {
  Conn* conn;
  Request request;
  bool wants_close;
  std::uint64_t turn;  // the connection's turn when queued
};

// A connection a worker answered and re-armed itself (see Work).
struct Rearmed {
  Conn* conn;
  std::uint64_t serial;
  std::uint64_t turn;
};

class EventServer : public Server {
 public:
  EventServer(const Options& options, Handler handler)
      : options_(options), handler_(std::move(handler)) {
    if (!options_.render_error) options_.render_error = DefaultError;
    limits_.max_body = options_.max_body;
    limits_.methods = options_.methods;
  }

  ~EventServer() override { Stop(std::chrono::milliseconds(0)); }

  Status Listen();
  void Stop(std::chrono::milliseconds grace) override;
  std::vector<int> ports() const override { return ports_; }
  Status ReloadTls() override;

 private:
  // --- event thread ---
  void Loop();
  void Accept(Listener& listener);
  void Refuse(int fd, const std::string& ip, std::string_view reason);
  void OnEvent(Conn& c);
  void Handshake(Conn& c);
  // Reads and parses until a request is whole, the socket is drained or the
  // connection ends. Runs the buffered bytes first (pipelining).
  // `try_read` false: only when epoll says so (after an answer; TLS always
  // tries, for bytes it holds already).
  void ReadRequests(Conn& c, bool try_read = true);
  // Parses what is buffered; true when the connection was handed on
  // (queued, answered or closed) and reading must stop.
  bool Parse(Conn& c);
  void Dispatch(Conn& c, Request request, bool wants_close);
  // Answers from the event thread (errors, 503, screen responses).
  void Answer(Conn& c, const Response& response, After after, bool head_only = false);
  void RefuseRequest(Conn& c, int status, const std::string& message);
  void Flush(Conn& c);
  void Written(Conn& c);
  void Linger(Conn& c);
  void Arm(Conn& c, std::uint32_t events);
  void ArmFor(Conn& c, Io wanted);
  void Close(Conn& c);
  void TakeReturns();
  // A connection a worker re-armed becomes the loop's again: idle, with the
  // keep-alive deadline.
  void TakeBack(Conn& c);
  void TakeRearmed();
  void CheckDeadlines(Clock::time_point now);
  void BeginStop();
  void Wake();

  // --- workers ---
  void Work(int worker);
  // With jobs_mu_ held: wakes the worker that went idle last when a job
  // waits and another handler may run.
  void WakeOneLocked();

 public:
  // WhileBlocked's two ends, on a worker of this server.
  void BlockBegins();
  void BlockEnds();

 private:
  // Called by a worker: the connection goes back to the event thread.
  void Return(Conn* c);

  std::shared_ptr<internal::TlsContext> Tls() {
    std::lock_guard lock(tls_mu_);
    return tls_;
  }
  void Publish() {
    std::lock_guard lock(count_mu_);
    live_ = static_cast<int>(conns_.size());
    count_cv_.notify_all();
  }

  Options options_;
  Handler handler_;
  internal::ParserLimits limits_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::vector<int> ports_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int spare_fd_ = -1;  // given up to accept (and refuse) when out of descriptors
  Pollable wake_tag_{Tag::kWake};

  std::mutex tls_mu_;
  std::shared_ptr<internal::TlsContext> tls_;

  // Event thread only.
  std::unordered_map<Conn*, std::unique_ptr<Conn>> conns_;
  std::unordered_map<std::string, int> per_ip_;
  int counted_ = 0;
  std::uint64_t serials_ = 0;
  int refusing_ = 0;
  bool accepting_ = true;
  Clock::time_point paused_until_{};  // accept paused after running out of descriptors

  // Worker queue. An idle worker waits on its own signal, and a new job
  // wakes the worker that went idle last: under load that needs few
  // workers, the same few run, warm, and the rest stay asleep (many workers
  // are for handlers that wait, on a store's commit for instance).
  struct Idle {
    std::condition_variable cv;
    bool woken = false;  // guarded by jobs_mu_
  };
  std::mutex jobs_mu_;
  std::deque<Job> jobs_;
  std::vector<std::unique_ptr<Idle>> idle_signals_;  // one per worker
  std::vector<int> idle_;                            // idle workers, the last idle at the back
  int running_ = 0;        // handlers running, not counting those in WhileBlocked
  int running_limit_ = 1;  // Options::running, or threads
  bool workers_quit_ = false;
  std::vector<std::thread> workers_;

  // Connections handed back by workers.
  std::mutex returns_mu_;
  std::vector<Conn*> returns_;
  std::vector<Rearmed> rearmed_;  // no wake-up: taken at the next loop turn

  // Stopping.
  std::atomic<bool> stopping_{false};   // no new connections, no keep-alive
  std::atomic<bool> hard_stop_{false};  // close everything not in a handler
  std::atomic<bool> loop_quit_{false};
  std::mutex count_mu_;
  std::condition_variable count_cv_;
  int live_ = 0;
  std::thread loop_;
  std::mutex stop_mu_;
  bool stopped_ = false;
};

Status EventServer::Listen() {
  const bool tls = !options_.tls_cert.empty() || !options_.tls_key.empty();
  if (tls) {
    if (options_.tls_cert.empty() || options_.tls_key.empty()) {
      return InvalidArgumentError("TLS needs both a certificate and a key");
    }
    ASSIGN_OR_RETURN(tls_, internal::TlsContext::Load(options_.tls_cert, options_.tls_key));
  }
  std::vector<internal::ListenAddress> addresses;
  for (const std::string& text : options_.listen) {
    ASSIGN_OR_RETURN(internal::ListenAddress a, internal::ParseListenAddress(text));
    addresses.push_back(std::move(a));
  }
  if (addresses.empty()) return InvalidArgumentError("no listen address");
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) {
    return UnavailableError(std::string("cannot create the event loop: ") + std::strerror(errno));
  }
  for (std::size_t i = 0; i < addresses.size(); ++i) {
    const internal::ListenAddress& a = addresses[i];
    auto fail = [&](const std::string& why) {
      return UnavailableError("cannot listen on \"" + options_.listen[i] + "\": " + why);
    };
    sockaddr_storage storage{};
    socklen_t length = 0;
    const std::string host = a.host.empty() ? "0.0.0.0" : a.host;
    if (a.ipv6) {
      auto* sa = reinterpret_cast<sockaddr_in6*>(&storage);
      sa->sin6_family = AF_INET6;
      sa->sin6_port = htons(static_cast<std::uint16_t>(a.port));
      if (::inet_pton(AF_INET6, host.c_str(), &sa->sin6_addr) != 1) {
        return InvalidArgumentError("listen address \"" + options_.listen[i] +
                                    "\": not an IPv6 address");
      }
      length = sizeof(sockaddr_in6);
    } else {
      auto* sa = reinterpret_cast<sockaddr_in*>(&storage);
      sa->sin_family = AF_INET;
      sa->sin_port = htons(static_cast<std::uint16_t>(a.port));
      std::string numeric = host == "localhost" ? "127.0.0.1" : host;
      if (::inet_pton(AF_INET, numeric.c_str(), &sa->sin_addr) != 1) {
        return InvalidArgumentError("listen address \"" + options_.listen[i] +
                                    "\": not an IPv4 address");
      }
      length = sizeof(sockaddr_in);
    }
    auto listener = std::make_unique<Listener>();
    listener->fd = ::socket(storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listener->fd < 0) return fail(std::strerror(errno));
    const int one = 1;
    // SO_REUSEADDR for quick restarts, never SO_REUSEPORT: a second process
    // on the same port must fail to bind.
    ::setsockopt(listener->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (a.ipv6) ::setsockopt(listener->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (::bind(listener->fd, reinterpret_cast<sockaddr*>(&storage), length) != 0 ||
        ::listen(listener->fd, 1024) != 0) {
      const std::string why = std::strerror(errno);
      ::close(listener->fd);
      return fail(why);
    }
    sockaddr_storage bound{};
    socklen_t bound_length = sizeof(bound);
    ::getsockname(listener->fd, reinterpret_cast<sockaddr*>(&bound), &bound_length);
    ports_.push_back(ntohs(bound.ss_family == AF_INET6
                               ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                               : reinterpret_cast<sockaddr_in*>(&bound)->sin_port));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = static_cast<Pollable*>(listener.get());
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listener->fd, &ev);
    listeners_.push_back(std::move(listener));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &wake_tag_;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);

  const int workers = std::max(1, options_.threads);
  running_limit_ = options_.running > 0 ? std::min(options_.running, workers) : workers;
  for (int i = 0; i < workers; ++i) idle_signals_.push_back(std::make_unique<Idle>());
  for (int i = 0; i < workers; ++i) {
    workers_.emplace_back([this, i] { Work(i); });
  }
  loop_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

Status EventServer::ReloadTls() {
  if (options_.tls_cert.empty()) return Status::Ok();
  ASSIGN_OR_RETURN(std::shared_ptr<internal::TlsContext> fresh,
                   internal::TlsContext::Load(options_.tls_cert, options_.tls_key));
  std::lock_guard lock(tls_mu_);
  tls_ = std::move(fresh);
  return Status::Ok();
}

void EventServer::Wake() {
  const std::uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof(one));
}

void EventServer::Loop() {
  BlockSigpipe();
  epoll_event events[kMaxEvents];
  Clock::time_point next_check = Clock::now() + kTick;
  bool stop_begun = false;
  while (!loop_quit_.load(std::memory_order_acquire)) {
    const int n = ::epoll_wait(epoll_fd_, events, kMaxEvents, static_cast<int>(kTick.count()));
    for (int i = 0; i < n; ++i) {
      auto* p = static_cast<Pollable*>(events[i].data.ptr);
      switch (p->tag) {
        case Tag::kListener:
          Accept(*static_cast<Listener*>(p));
          break;
        case Tag::kWake: {
          std::uint64_t value;
          [[maybe_unused]] ssize_t r = ::read(wake_fd_, &value, sizeof(value));
          TakeReturns();
          break;
        }
        case Tag::kConn: {
          Conn& c = *static_cast<Conn*>(p);
          // Only a connection a worker re-armed has an event while in a
          // handler's phase: it is idle again, and now the loop's.
          if (c.phase == Phase::kHandler) TakeBack(c);
          OnEvent(c);
          break;
        }
      }
    }
    if (!stop_begun && stopping_.load(std::memory_order_acquire)) {
      stop_begun = true;
      BeginStop();
    }
    TakeRearmed();
    const Clock::time_point now = Clock::now();
    if (now >= next_check) {
      next_check = now + kTick;
      CheckDeadlines(now);
    }
  }
}

void EventServer::BeginStop() {
  for (auto& l : listeners_) {
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, l->fd, nullptr);
    ::close(l->fd);
    l->fd = -1;
  }
  accepting_ = false;
  std::vector<Conn*> idle;
  for (auto& [p, c] : conns_) {
    if (c->phase == Phase::kIdle && !c->parser.in_request()) idle.push_back(p);
    if (c->phase == Phase::kHandshake || c->phase == Phase::kLinger) idle.push_back(p);
  }
  for (Conn* c : idle) Close(*c);
}

void EventServer::Accept(Listener& listener) {
  if (!accepting_) return;
  if (Clock::now() < paused_until_) return;
  for (int i = 0; i < kAcceptBurst; ++i) {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    int fd = ::accept4(listener.fd, reinterpret_cast<sockaddr*>(&addr), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) {
        // Out of descriptors: give up the spare one to take the connection
        // off the queue and refuse it, rather than leave it (and every one
        // behind it) hanging.
        if (spare_fd_ >= 0) {
          ::close(spare_fd_);
          spare_fd_ = -1;
          fd = ::accept4(listener.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd >= 0) {
            if (!tls_) {
              const std::string wire = internal::SerializeResponse(
                  options_.render_error(503, "server busy, retry later"), options_.server_name,
                  false, false);
              [[maybe_unused]] ssize_t w = ::send(fd, wire.data(), wire.size(), MSG_NOSIGNAL);
            }
            ::close(fd);
            if (options_.observer) options_.observer->ConnectionRefused("file_descriptors");
          }
          spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        }
        if (spare_fd_ < 0) paused_until_ = Clock::now() + std::chrono::milliseconds(100);
        if (fd < 0) return;
        continue;
      }
      return;  // EAGAIN, or an error of the listening socket: wait for the next event
    }
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (addr.ss_family == AF_INET) {
      auto* sa = reinterpret_cast<sockaddr_in*>(&addr);
      ::inet_ntop(AF_INET, &sa->sin_addr, host, sizeof(host));
      port = ntohs(sa->sin_port);
    } else if (addr.ss_family == AF_INET6) {
      auto* sa = reinterpret_cast<sockaddr_in6*>(&addr);
      ::inet_ntop(AF_INET6, &sa->sin6_addr, host, sizeof(host));
      port = ntohs(sa->sin6_port);
    }
    const std::string ip = host;
    if (counted_ >= options_.max_connections) {
      Refuse(fd, ip, "max_connections");
      continue;
    }
    int& from_ip = per_ip_[ip];
    if (from_ip >= options_.max_connections_per_ip) {
      Refuse(fd, ip, "max_connections_per_ip");
      continue;
    }
    ++from_ip;
    ++counted_;
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto owned = std::make_unique<Conn>(&limits_);
    Conn& c = *owned;
    c.serial = ++serials_;
    c.fd = fd;
    c.ip = ip;
    c.remote = (addr.ss_family == AF_INET6 ? "[" + ip + "]" : ip) + ":" + std::to_string(port);
    std::shared_ptr<internal::TlsContext> tls = Tls();
    c.tls = tls != nullptr;
    c.io = c.tls ? internal::TlsTransport(fd, tls) : internal::PlainTransport(fd);
    conns_.emplace(&c, std::move(owned));
    Publish();
    if (options_.observer) options_.observer->ConnectionOpened();
    if (c.tls) {
      c.phase = Phase::kHandshake;
      c.deadline = Clock::now() + options_.tls_handshake_timeout;
      Handshake(c);
    } else {
      c.phase = Phase::kIdle;
      c.deadline = Clock::now() + options_.header_timeout;
      ReadRequests(c);
    }
  }
}

void EventServer::Refuse(int fd, const std::string& ip, std::string_view reason) {
  if (options_.observer) options_.observer->ConnectionRefused(reason);
  if (refusing_ >= kMaxRefusing) {
    ::close(fd);
    return;
  }
  ++refusing_;
  auto owned = std::make_unique<Conn>(&limits_);
  Conn& c = *owned;
  c.serial = ++serials_;
  c.fd = fd;
  c.ip = ip;
  c.counted = false;
  std::shared_ptr<internal::TlsContext> tls = Tls();
  c.tls = tls != nullptr;
  c.io = c.tls ? internal::TlsTransport(fd, tls) : internal::PlainTransport(fd);
  conns_.emplace(&c, std::move(owned));
  Publish();
  if (c.tls) {
    // The answer needs the handshake; it gets a short deadline.
    c.phase = Phase::kHandshake;
    c.deadline = Clock::now() + std::min(options_.tls_handshake_timeout, kRefusalWrite);
    Handshake(c);
    return;
  }
  Answer(c, options_.render_error(503, "too many connections, retry later"), After::kLinger);
}

void EventServer::OnEvent(Conn& c) {
  switch (c.phase) {
    case Phase::kHandshake:
      Handshake(c);
      break;
    case Phase::kIdle:
    case Phase::kHead:
    case Phase::kBody:
      ReadRequests(c);
      break;
    case Phase::kWrite:
      Flush(c);
      break;
    case Phase::kLinger:
      Linger(c);
      break;
    case Phase::kHandler:
      break;  // not armed while a worker has it
  }
}

void EventServer::Handshake(Conn& c) {
  const Io r = c.io->Handshake();
  if (r == Io::kWantRead || r == Io::kWantWrite) {
    ArmFor(c, r);
    return;
  }
  if (r != Io::kOk) {
    Close(c);
    return;
  }
  if (!c.counted) {
    Answer(c, options_.render_error(503, "too many connections, retry later"), After::kLinger);
    return;
  }
  c.phase = Phase::kIdle;
  c.deadline = Clock::now() + options_.header_timeout;
  ReadRequests(c);
}

void EventServer::ReadRequests(Conn& c, bool try_read) {
  if (Parse(c)) return;
  // Clear text with nothing known to be waiting: epoll says when bytes come,
  // which saves a read that would find none.
  if (!try_read && !c.tls) {
    Arm(c, EPOLLIN);
    return;
  }
  char chunk[kReadChunk];
  while (true) {
    std::size_t n = 0;
    const Io r = c.io->Read(chunk, sizeof(chunk), &n);
    if (r == Io::kWantRead || r == Io::kWantWrite) {
      ArmFor(c, r);
      return;
    }
    if (r != Io::kOk) {
      // The client went away (or broke the connection) mid-request or idle.
      Close(c);
      return;
    }
    c.parser.Feed(std::string_view(chunk, n));
    if (Parse(c)) return;
    // In clear text a short read drained the socket. (TLS reads one record
    // at a time and may hold more: it reads on until told to wait.)
    if (!c.tls && n < sizeof(chunk)) {
      Arm(c, EPOLLIN);
      return;
    }
  }
}

bool EventServer::Parse(Conn& c) {
  while (true) {
    if (c.phase == Phase::kIdle && c.parser.in_request()) {
      c.phase = Phase::kHead;
      c.method.clear();
      // A new connection's first head is due header_timeout after the
      // connection (or its handshake), not after its first byte.
      if (!c.fresh) c.deadline = Clock::now() + options_.header_timeout;
    }
    switch (c.parser.Next()) {
      case internal::RequestParser::Event::kNeedMore:
        return false;
      case internal::RequestParser::Event::kError:
        c.method = std::string(MethodLabel(c.parser.head().method));
        RefuseRequest(c, c.parser.refusal().status, c.parser.refusal().message);
        return true;
      case internal::RequestParser::Event::kHead: {
        Request& head = *c.parser.mutable_head();
        c.method = head.method;
        if (options_.screen) {
          std::optional<Response> early;
          try {
            early = options_.screen(&head);
          } catch (...) {
            early = options_.render_error(500, "internal error");
          }
          if (early) {
            // Answered on the head: the body, if any, is never read.
            Answer(c, *early, After::kLinger, head.method == "HEAD");
            return true;
          }
        }
        c.phase = Phase::kBody;
        c.deadline = Clock::now() + options_.body_timeout;
        if (c.parser.expect_continue() && c.parser.body_pending()) {
          static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
          std::size_t written = 0;
          if (c.io->Write(kContinue.data(), kContinue.size(), &written) != Io::kOk ||
              written != kContinue.size()) {
            Close(c);
            return true;
          }
        }
        break;
      }
      case internal::RequestParser::Event::kRequest: {
        const bool wants_close = c.parser.wants_close();
        Request request = c.parser.TakeRequest();
        request.remote = c.remote;
        request.tls = c.tls;
        Dispatch(c, std::move(request), wants_close);
        return true;
      }
    }
  }
}

void EventServer::Dispatch(Conn& c, Request request, bool wants_close) {
  {
    std::unique_lock lock(jobs_mu_);
    if (static_cast<int>(jobs_.size()) >= std::max(1, options_.max_queued)) {
      lock.unlock();
      c.method = std::string(MethodLabel(request.method));
      if (options_.observer) options_.observer->RequestRefused(c.method, 503);
      Response busy = options_.render_error(503, "server busy, retry later");
      busy.headers.emplace_back("Retry-After", "1");
      Answer(c, busy, After::kClose, request.method == "HEAD");
      return;
    }
    c.phase = Phase::kHandler;
    ++c.turn;
    jobs_.push_back(Job{&c, std::move(request), wants_close, c.turn});
    WakeOneLocked();
  }
}

// The server whose handler this thread runs; null outside a worker.
thread_local EventServer* serving_here = nullptr;

void EventServer::WakeOneLocked() {
  if (idle_.empty() || jobs_.empty() || running_ >= running_limit_) return;
  Idle& next = *idle_signals_[static_cast<std::size_t>(idle_.back())];
  idle_.pop_back();
  // Counted as running from now: the jobs that follow before it runs do not
  // wake more workers than may run.
  ++running_;
  next.woken = true;
  next.cv.notify_one();
}

void EventServer::BlockBegins() {
  std::lock_guard lock(jobs_mu_);
  --running_;
  WakeOneLocked();
}

void EventServer::BlockEnds() {
  std::lock_guard lock(jobs_mu_);
  ++running_;
}

void EventServer::Work(int worker) {
  BlockSigpipe();
  Idle& me = *idle_signals_[static_cast<std::size_t>(worker)];
  serving_here = this;
  // A worker keeps its place among the running from one job to the next
  // while jobs wait, so that a new job does not wake another worker for the
  // moment between them (a switch per request).
  bool placed = false;
  while (true) {
    Job job;
    {
      std::unique_lock lock(jobs_mu_);
      for (;;) {
        if (placed && (jobs_.empty() || running_ > running_limit_)) {
          --running_;
          placed = false;
        }
        if (placed || workers_quit_) break;
        if (!jobs_.empty() && running_ < running_limit_) {
          ++running_;
          placed = true;
          break;
        }
        idle_.push_back(worker);
        me.cv.wait(lock, [&] { return me.woken || workers_quit_; });
        if (me.woken) {
          placed = true;  // by the waker, who counted this worker as running
          me.woken = false;
        } else {
          std::erase(idle_, worker);
        }
      }
      if (jobs_.empty()) {  // stopping
        if (placed) --running_;
        return;
      }
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    Conn& c = *job.conn;
    Response response;
    try {
      response = handler_(job.request);
    } catch (...) {
      response = options_.render_error(500, "internal error");
    }
    bool keep_alive = !job.wants_close && !stopping_.load(std::memory_order_acquire);
    for (const auto& [name, value] : response.headers) {
      if (EqualsIgnoreCase(name, "Connection") && internal::HasToken(value, "close")) {
        keep_alive = false;
      }
    }
    c.out = internal::SerializeResponse(response, options_.server_name, keep_alive,
                                        job.request.method == "HEAD");
    c.out_pos = 0;
    c.after = keep_alive ? After::kKeepAlive : After::kClose;
    // Most answers fit the socket's buffer: written here, they cost the
    // event thread nothing but taking the connection back.
    while (c.out_pos < c.out.size()) {
      std::size_t n = 0;
      if (c.io->Write(c.out.data() + c.out_pos, c.out.size() - c.out_pos, &n) != Io::kOk) break;
      c.out_pos += n;
    }
    // Answered in full, kept alive, clear text, nothing pipelined behind:
    // the worker waits for the next request itself (re-arms the socket) and
    // tells the loop without waking it. Arming is the last touch of the
    // connection here: from then on an event may hand it to the loop.
    if (c.out_pos == c.out.size() && c.after == After::kKeepAlive && !c.tls &&
        c.parser.buffered() == 0 && !stopping_.load(std::memory_order_acquire)) {
      const Rearmed note{&c, c.serial, job.turn};
      c.out.clear();
      c.out_pos = 0;
      Arm(c, EPOLLIN);
      std::lock_guard lock(returns_mu_);
      rearmed_.push_back(note);
      continue;
    }
    Return(&c);
  }
}

void EventServer::Return(Conn* c) {
  bool first = false;
  {
    std::lock_guard lock(returns_mu_);
    first = returns_.empty();
    returns_.push_back(c);
  }
  if (first) Wake();
}

void EventServer::TakeBack(Conn& c) {
  c.fresh = false;
  c.phase = Phase::kIdle;
  c.deadline = Clock::now() + options_.keep_alive_timeout;
}

void EventServer::TakeRearmed() {
  std::vector<Rearmed> notes;
  {
    std::lock_guard lock(returns_mu_);
    if (rearmed_.empty()) return;
    notes.swap(rearmed_);
  }
  for (const Rearmed& n : notes) {
    // Gone (closed after an event came first), or already taken back and
    // perhaps in a later request: nothing to do.
    auto it = conns_.find(n.conn);
    if (it == conns_.end()) continue;
    Conn& c = *it->second;
    if (c.serial != n.serial || c.turn != n.turn || c.phase != Phase::kHandler) continue;
    TakeBack(c);
    if (stopping_.load(std::memory_order_acquire)) Close(c);
  }
}

void EventServer::TakeReturns() {
  std::vector<Conn*> back;
  {
    std::lock_guard lock(returns_mu_);
    back.swap(returns_);
  }
  for (Conn* c : back) {
    c->phase = Phase::kWrite;
    c->deadline = Clock::now() + options_.write_timeout;
    if (hard_stop_.load(std::memory_order_acquire) && c->out_pos < c->out.size()) {
      Close(*c);
      continue;
    }
    Flush(*c);
  }
}

void EventServer::Answer(Conn& c, const Response& response, After after, bool head_only) {
  c.out = internal::SerializeResponse(response, options_.server_name, after == After::kKeepAlive,
                                      head_only);
  c.out_pos = 0;
  c.after = after;
  c.phase = Phase::kWrite;
  c.deadline =
      Clock::now() + (after == After::kKeepAlive ? options_.write_timeout
                                                 : std::min(options_.write_timeout, kRefusalWrite));
  Flush(c);
}

void EventServer::RefuseRequest(Conn& c, int status, const std::string& message) {
  if (options_.observer) options_.observer->RequestRefused(MethodLabel(c.method), status);
  Answer(c, options_.render_error(status, message), After::kLinger);
}

void EventServer::Flush(Conn& c) {
  while (c.out_pos < c.out.size()) {
    std::size_t n = 0;
    const Io r = c.io->Write(c.out.data() + c.out_pos, c.out.size() - c.out_pos, &n);
    if (r == Io::kWantRead || r == Io::kWantWrite) {
      ArmFor(c, r);
      return;
    }
    if (r != Io::kOk) {
      Close(c);
      return;
    }
    c.out_pos += n;
  }
  Written(c);
}

void EventServer::Written(Conn& c) {
  c.out.clear();
  c.out.shrink_to_fit();
  c.out_pos = 0;
  switch (c.after) {
    case After::kClose:
      Close(c);
      return;
    case After::kLinger:
      c.io->ShutdownWrite();
      c.phase = Phase::kLinger;
      c.deadline = Clock::now() + kLingerTime;
      Linger(c);
      return;
    case After::kKeepAlive:
      if (stopping_.load(std::memory_order_acquire)) {
        Close(c);
        return;
      }
      c.fresh = false;
      c.phase = Phase::kIdle;
      c.deadline = Clock::now() + options_.keep_alive_timeout;
      ReadRequests(c, /*try_read=*/false);
      return;
  }
}

void EventServer::Linger(Conn& c) {
  char chunk[kReadChunk];
  while (c.lingered < kLingerBytes) {
    std::size_t n = 0;
    const Io r = c.io->Read(chunk, sizeof(chunk), &n);
    if (r == Io::kWantRead || r == Io::kWantWrite) {
      ArmFor(c, r);
      return;
    }
    if (r != Io::kOk) break;
    c.lingered += n;
  }
  Close(c);
}

void EventServer::ArmFor(Conn& c, Io wanted) {
  Arm(c, wanted == Io::kWantWrite ? EPOLLOUT : EPOLLIN);
}

void EventServer::Arm(Conn& c, std::uint32_t events) {
  epoll_event ev{};
  ev.events = events | EPOLLONESHOT;
  ev.data.ptr = static_cast<Pollable*>(&c);
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev) != 0) {
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c.fd, &ev);
  }
}

void EventServer::Close(Conn& c) {
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
  c.io.reset();
  ::close(c.fd);
  if (c.counted) {
    --counted_;
    auto it = per_ip_.find(c.ip);
    if (it != per_ip_.end() && --it->second <= 0) per_ip_.erase(it);
    if (options_.observer) options_.observer->ConnectionClosed();
  } else {
    --refusing_;
  }
  conns_.erase(&c);
  Publish();
}

void EventServer::CheckDeadlines(Clock::time_point now) {
  const bool hard = hard_stop_.load(std::memory_order_acquire);
  std::vector<Conn*> due;
  for (auto& [p, c] : conns_) {
    if (c->phase == Phase::kHandler) continue;
    if (hard || now >= c->deadline) due.push_back(p);
  }
  for (Conn* p : due) {
    Conn& c = *p;
    if (hard) {
      Close(c);
      continue;
    }
    switch (c.phase) {
      case Phase::kHandshake:
        if (options_.observer && c.counted) options_.observer->DeadlinePassed("tls_handshake");
        Close(c);
        break;
      case Phase::kIdle:
        if (options_.observer) options_.observer->DeadlinePassed(c.fresh ? "header" : "keep_alive");
        Close(c);
        break;
      case Phase::kHead:
      case Phase::kBody:
        if (options_.observer) {
          options_.observer->DeadlinePassed(c.phase == Phase::kHead ? "header" : "body");
        }
        RefuseRequest(c, 408,
                      c.phase == Phase::kHead ? "request head not received in time"
                                              : "request body not received in time");
        break;
      case Phase::kWrite:
        if (options_.observer && c.counted && c.after == After::kKeepAlive) {
          options_.observer->DeadlinePassed("write");
        }
        Close(c);
        break;
      case Phase::kLinger:
      case Phase::kHandler:
        Close(c);
        break;
    }
  }
}

void EventServer::Stop(std::chrono::milliseconds grace) {
  std::lock_guard lock(stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  if (loop_.joinable()) {
    stopping_.store(true, std::memory_order_release);
    Wake();
    {
      std::unique_lock count(count_mu_);
      if (!count_cv_.wait_for(count, grace, [&] { return live_ == 0; })) {
        hard_stop_.store(true, std::memory_order_release);
        Wake();
        // A handler still running is waited for: it may use what its owner
        // frees next.
        count_cv_.wait(count, [&] { return live_ == 0; });
      }
    }
    loop_quit_.store(true, std::memory_order_release);
    Wake();
    loop_.join();
  }
  {
    std::lock_guard jobs(jobs_mu_);
    workers_quit_ = true;
    for (auto& signal : idle_signals_) signal->cv.notify_all();
  }
  for (std::thread& t : workers_) t.join();
  workers_.clear();
  for (auto& l : listeners_) {
    if (l->fd >= 0) ::close(l->fd);
    l->fd = -1;
  }
  for (int* fd : {&epoll_fd_, &wake_fd_, &spare_fd_}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
}

}  // namespace

void WhileBlocked(const std::function<void()>& wait) {
  EventServer* server = serving_here;
  if (server == nullptr) {
    wait();
    return;
  }
  server->BlockBegins();
  wait();
  server->BlockEnds();
}

Result<std::unique_ptr<Server>> Server::Start(const Options& options, Handler handler) {
  if (!handler) return InvalidArgumentError("no request handler");
  if (options.threads < 1) return InvalidArgumentError("threads must be at least 1");
  if (options.max_connections < 1 || options.max_connections_per_ip < 1) {
    return InvalidArgumentError("connection caps must be at least 1");
  }
  auto server = std::make_unique<EventServer>(options, std::move(handler));
  Status st = server->Listen();
  if (!st.ok()) return st;  // the destructor stops whatever started
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace idsync::httpd
