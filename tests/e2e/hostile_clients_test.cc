// The listeners under hostile clients, black box: the real idsyncd with its
// SCIM and admin listeners, plain (HostileClients/0) and TLS
// (HostileClients/1), receives slow, idle, flooding and malformed clients
// from 127.0.0.1 and 127.0.0.3 up. Throughout, a prober on 127.0.0.2 (not
// under the per-address cap) asks both listeners for /healthz every 100 ms
// and reads the daemon's resident memory: every answer must come within 1 s
// and memory must stay under its value at start plus 256 MiB.
//
// The deadlines are shortened in the configuration (2 s instead of 10 s and
// 30 s) so that the test takes a minute, not ten; the defaults themselves are
// checked by the configuration tests.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "idsync/scim/endpoint.h"

#include "harness.h"

namespace idsync::e2e {
namespace {

using namespace std::chrono_literals;

constexpr const char* kAccountToken = "hostile-account-token";
constexpr const char* kScimToken = "hostile-scim-token";
constexpr const char* kAdminToken = "hostile-admin-token";
constexpr std::chrono::seconds kShortDeadline{2};
constexpr std::chrono::seconds kKeepAlive{6};

// One client connection from a chosen loopback address, clear or TLS, with
// blocking I/O bounded by poll.
class Client {
 public:
  Client(const std::string& from, int port, SSL_CTX* tls, bool handshake = true) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    ::inet_pton(AF_INET, from.c_str(), &local.sin_addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) return;
    sockaddr_in remote{};
    remote.sin_family = AF_INET;
    remote.sin_port = htons(static_cast<uint16_t>(port));
    remote.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&remote), sizeof(remote)) != 0) return;
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (tls != nullptr && handshake) {
      ssl_ = SSL_new(tls);
      SSL_set_fd(ssl_, fd_);
      if (SSL_connect(ssl_) != 1) {
        ERR_clear_error();
        return;
      }
    }
    connected_ = true;
  }
  ~Client() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }

  // The server certificate's subject common name (TLS).
  std::string PeerName() const {
    X509* cert = ssl_ == nullptr ? nullptr : SSL_get1_peer_certificate(ssl_);
    if (cert == nullptr) return "";
    char buf[256] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof(buf));
    X509_free(cert);
    return buf;
  }

  bool Send(std::string_view data) {
    while (!data.empty()) {
      int n;
      if (ssl_ != nullptr) {
        n = SSL_write(ssl_, data.data(), static_cast<int>(data.size()));
      } else {
        n = static_cast<int>(::send(fd_, data.data(), data.size(), MSG_NOSIGNAL));
      }
      if (n <= 0) {
        ERR_clear_error();
        return false;
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Reads more within `wait`; false on EOF, error or timeout.
  bool Fill(std::chrono::milliseconds wait) {
    if (ssl_ == nullptr || SSL_pending(ssl_) == 0) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return false;
    }
    char buf[16384];
    int n;
    if (ssl_ != nullptr) {
      n = SSL_read(ssl_, buf, sizeof(buf));
      ERR_clear_error();
    } else {
      n = static_cast<int>(::recv(fd_, buf, sizeof(buf), 0));
    }
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    buf_.append(buf, static_cast<size_t>(n));
    return true;
  }

  // The status of the next response (its body read when framed by
  // Content-Length); 0 when none came within `wait`.
  int Status(std::chrono::milliseconds wait = 5000ms, std::string* body = nullptr) {
    const auto until = std::chrono::steady_clock::now() + wait;
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0 || !Fill(left)) return 0;
    }
    const std::string head = buf_.substr(0, end);
    buf_.erase(0, end + 4);
    if (head.size() < 12) return 0;
    const int status = std::atoi(head.substr(9, 3).c_str());
    std::string lower = head;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    const size_t cl = lower.find("content-length:");
    if (cl != std::string::npos) {
      const size_t n = std::strtoul(lower.c_str() + cl + 15, nullptr, 10);
      while (buf_.size() < n) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            until - std::chrono::steady_clock::now());
        if (left.count() <= 0 || !Fill(left)) break;
      }
      if (body != nullptr) *body = buf_.substr(0, n);
      buf_.erase(0, std::min(n, buf_.size()));
    }
    return status;
  }

  // Whether the server closed the connection within `wait` (what it sent
  // before is read and dropped).
  bool ClosedWithin(std::chrono::milliseconds wait) {
    const auto until = std::chrono::steady_clock::now() + wait;
    while (!eof_) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      if (!Fill(left) && !eof_) return false;
    }
    return true;
  }

 private:
  int fd_ = -1;
  SSL* ssl_ = nullptr;
  bool connected_ = false;
  bool eof_ = false;
  std::string buf_;
};

std::string Get(const std::string& path, const std::string& token = "",
                const std::string& connection = "keep-alive") {
  std::string r = "GET " + path + " HTTP/1.1\r\nHost: idsync\r\nConnection: " + connection + "\r\n";
  if (!token.empty()) r += "Authorization: Bearer " + token + "\r\n";
  return r + "\r\n";
}

long RssKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

class HostileClientsTest : public E2eTest, public ::testing::WithParamInterface<bool> {
 protected:
  bool tls() const { return GetParam(); }

  void SetUp() override {
    // A thousand connections and more, on both ends: the daemon inherits this.
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    // Root may raise the hard limit too (CI runs as root).
    if (limit.rlim_max < 8192) {
      const rlimit wanted{8192, 8192};
      if (::setrlimit(RLIMIT_NOFILE, &wanted) == 0) limit = wanted;
    }
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
    ASSERT_GE(limit.rlim_cur, 4096u) << "the test needs 4096 file descriptors";

    ASSERT_NO_FATAL_FAILURE(SetUpAccount({.dir_prefix = "idsync-hostile",
                                          .token = kAccountToken,
                                          .seed_json = kAccountSeed,
                                          .random_seed = 14,
                                          .admin_token = kAdminToken,
                                          .scim_token = kScimToken}));
    std::string tls_yaml;
    if (tls()) {
      const std::string key = (dir_ / "key.pem").string(), cert = (dir_ / "cert.pem").string();
      const std::string cmd =
          "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
          "-addext subjectAltName=IP:127.0.0.1 -keyout '" +
          key + "' -out '" + cert + "' >/dev/null 2>&1";
      ASSERT_EQ(std::system(cmd.c_str()), 0) << "openssl could not make a certificate";
      tls_yaml = "  tls: {cert: " + cert + ", key: " + key + "}\n  admin_tls: {cert: " + cert +
                 ", key: " + key + "}\n";
      ctx_ = SSL_CTX_new(TLS_client_method());
      SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    }
    // The store on tmpfs: the group chain below is 20,000 writes.
    std::string account = AccountAndStoreYaml();
    if (fs::is_directory("/dev/shm")) {
      shm_ = fs::path("/dev/shm") / dir_.filename();
      fs::create_directories(shm_);
      const std::string was = "store: sqlite://" + (dir_ / "state.db").string();
      account.replace(account.find(was), was.size(),
                      "store: sqlite://" + (shm_ / "state.db").string());
    }
    std::ostringstream y;
    y << account << "sources:\n"
      << "  - name: okta\n"
      << "    type: scim\n"
      << "    tokens: [\"" << scim::HashToken(kScimToken) << "\"]\n"
      << "server:\n"
      << "  listen: [\"127.0.0.1:0\"]\n"
      << "  admin_listen: [\"127.0.0.1:0\"]\n"
      << "  admin_tokens: [\"" << scim::HashToken(kAdminToken) << "\"]\n"
      << tls_yaml << "  header_timeout: 2s\n  body_timeout: 2s\n  tls_handshake_timeout: 2s\n"
      << "  keep_alive_timeout: " << kKeepAlive.count() << "s\n"
      << "permissions:\n  catalog: builtin\n"
      << "rules:\n"
      << "  - {name: okta-knowledge, match: {group: \"Okta Knowledge\", source: okta}, "
         "preset: content-editor}\n"
      << "deprovision: remove\nadopt_existing: false\n"
      << "protect: [owner@corp.example]\n"
      << "safety:\n  max_removals: none\n  max_changes: none\n"
      << "logging: {format: text, level: info}\n";
    config_ = (dir_ / "idsync.yaml").string();
    std::ofstream(config_) << y.str();
  }

  // Starts idsyncd (with `max_files` open files at most, when set) and the
  // prober.
  void Start(int max_files = 0) {
    ASSERT_NO_FATAL_FAILURE(LaunchDaemon({}, max_files));
    ASSERT_NO_FATAL_FAILURE(ReadListenerPorts());
    start_rss_ = RssKiB(pid_);
    ASSERT_GT(start_rss_, 0);
    prober_ = std::thread([this] { Probe(); });
  }

  void TearDown() override {
    stop_probe_ = true;
    if (prober_.joinable()) prober_.join();
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
    E2eTest::TearDown();
    if (!shm_.empty()) fs::remove_all(shm_);
  }

  // A SCIM call on `c` (kept alive): the status; the answer's body in *body.
  static int Scim(Client& c, const std::string& method, const std::string& path,
                  const std::string& body, std::string* answer = nullptr) {
    std::string wire = method + " /scim/v2" + path +
                       " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kScimToken + "\r\n";
    if (!body.empty()) {
      wire +=
          "Content-Type: application/scim+json\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\n";
    }
    wire += "\r\n" + body;
    if (!c.Send(wire)) return 0;
    return c.Status(20000ms, answer);
  }

  static std::string AddMembers(const std::vector<std::string>& ids) {
    json values = json::array();
    for (const std::string& id : ids) values.push_back({{"value", id}});
    return json{{"schemas", {"urn:ietf:params:scim:api:messages:2.0:PatchOp"}},
                {"Operations", {{{"op", "add"}, {"path", "members"}, {"value", values}}}}}
        .dump();
  }

  // Every 100 ms: /healthz on both listeners from 127.0.0.2, and the RSS.
  void Probe() {
    while (!stop_probe_) {
      for (int port : {scim_port_, admin_port_}) {
        const auto start = std::chrono::steady_clock::now();
        Client c("127.0.0.2", port, ctx_);
        const int status =
            c.connected() && c.Send(Get("/healthz", "", "close")) ? c.Status(1000ms) : 0;
        const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - start);
        probes_ += 1;
        if (status != 200 || took > 1000ms) {
          std::lock_guard lock(mu_);
          slow_probes_.push_back(step_ + ": port " + std::to_string(port) + " status " +
                                 std::to_string(status) + " in " + std::to_string(took.count()) +
                                 " ms");
        }
        max_probe_ms_ = std::max<long>(max_probe_ms_, took.count());
      }
      const long rss = RssKiB(pid_);
      if (rss > max_rss_) max_rss_ = rss;
      std::this_thread::sleep_for(100ms);
    }
  }

  void Step(const std::string& name) {
    std::lock_guard lock(mu_);
    step_ = name;
  }

  // After each attack: the daemon lives and the prober saw nothing slow.
  void ExpectHealthy() {
    ASSERT_TRUE(Alive()) << "idsyncd died during: " << step_ << "\n" << Log();
    std::lock_guard lock(mu_);
    EXPECT_TRUE(slow_probes_.empty()) << "slow or failed /healthz: " << slow_probes_.front();
    slow_probes_.clear();
  }

  // The /metrics page, from the admin listener.
  std::string Metrics() {
    Client c("127.0.0.2", admin_port_, ctx_);
    std::string body;
    if (!c.connected() || !c.Send(Get("/metrics", kAdminToken, "close")) ||
        c.Status(5000ms, &body) != 200) {
      ADD_FAILURE() << "GET /metrics failed";
    }
    return body;
  }

  SSL_CTX* ctx_ = nullptr;
  fs::path shm_;
  long start_rss_ = 0;
  std::atomic<long> max_rss_{0};
  std::atomic<long> max_probe_ms_{0};
  std::atomic<int> probes_{0};
  std::atomic<bool> stop_probe_{false};
  std::thread prober_;
  std::mutex mu_;
  std::string step_ = "start";
  std::vector<std::string> slow_probes_;
};

std::size_t CountLines(const std::string& page, const std::string& prefix) {
  std::size_t n = 0;
  std::istringstream in(page);
  std::string line;
  while (std::getline(in, line)) n += line.rfind(prefix, 0) == 0 ? 1 : 0;
  return n;
}

double Sample(const std::string& page, const std::string& series) {
  const size_t at = page.find(series + " ");
  return at == std::string::npos ? -1 : std::strtod(page.c_str() + at + series.size() + 1, nullptr);
}

TEST_P(HostileClientsTest, EveryAttackIsAnsweredAndHealthzStaysUp) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const int scim = scim_port_, admin = admin_port_;

  // --- Slow heads: 200 connections on each listener that send a request
  // head one byte every 500 ms get 408 at header_timeout and are closed.
  {
    Step("slow heads");
    std::vector<std::unique_ptr<Client>> slow;
    for (int port : {scim, admin}) {
      for (int i = 0; i < 200; ++i) {
        auto c = std::make_unique<Client>("127.0.0.3", port, ctx_);
        ASSERT_TRUE(c->connected());
        ASSERT_TRUE(c->Send("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
        slow.push_back(std::move(c));
      }
    }
    const auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start < kShortDeadline + 1s) {
      for (auto& c : slow) c->Send("X");
      std::this_thread::sleep_for(500ms);
    }
    int timed_out = 0;
    for (auto& c : slow) timed_out += c->Status(2000ms) == 408 ? 1 : 0;
    EXPECT_EQ(timed_out, 400);
    for (auto& c : slow) EXPECT_TRUE(c->ClosedWithin(2000ms));
    ASSERT_NO_FATAL_FAILURE(ExpectHealthy());
  }

  // --- Slow body: a head then part of the body: 408 at body_timeout.
  {
    Step("slow body");
    Client c("127.0.0.1", scim, ctx_);
    ASSERT_TRUE(c.Send("POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                       std::string(kScimToken) +
                       "\r\nContent-Type: application/scim+json\r\nContent-Length: 100\r\n\r\n{"));
    EXPECT_EQ(c.Status(kShortDeadline + 2s), 408);
    EXPECT_TRUE(c.ClosedWithin(2000ms));
    ASSERT_NO_FATAL_FAILURE(ExpectHealthy());
  }

  // --- A connection that never completes its TLS handshake (or, in clear,
  // never sends a byte) is closed at its deadline.
  {
    Step("silent connection");
    Client c("127.0.0.1", scim, ctx_, /*handshake=*/false);
    ASSERT_TRUE(c.connected());
    if (tls()) {
      ASSERT_TRUE(c.Send(std::string("\x16\x03\x01\x00", 4)));  // a ClientHello begun
    }
    EXPECT_TRUE(c.ClosedWithin(kShortDeadline + 2s));
    ASSERT_NO_FATAL_FAILURE(ExpectHealthy());
  }

  // --- 300 connections from one address: the cap (256) holds, the rest get
  // 503 at once.
  {
    Step("300 connections from one address");
    std::vector<std::unique_ptr<Client>> many;
    for (int i = 0; i < 300; ++i) many.push_back(std::make_unique<Client>("127.0.0.4", scim, ctx_));
    int refused = 0;
    for (auto& c : many) refused += c->connected() && c->Status(300ms) == 503 ? 1 : 0;
    EXPECT_EQ(refused, 300 - 256);
    const std::string metrics = Metrics();
    EXPECT_GE(Sample(metrics,
                     "idsync_http_connections_refused_total{listener=\"scim\","
                     "reason=\"max_connections_per_ip\"}"),
              44);
    ASSERT_NO_FATAL_FAILURE(ExpectHealthy());
  }

  // --- 1,000 idle keep-alive connections (from four addresses): each asked
  // once and then says nothing. /healthz answers; keep_alive_timeout ends them.
  {
    Step("1000 idle keep-alive connections");
    std::vector<std::unique_ptr<Client>> idle;
    for (int i = 0; i < 1000; ++i) {
      const std::string from = "127.0.0." + std::to_string(10 + i / 250);
      auto c = std::make_unique<Client>(from, scim, ctx_);
      ASSERT_TRUE(c->connected()) << i;
      ASSERT_TRUE(c->Send(Get("/healthz")));
      ASSERT_EQ(c->Status(), 200) << i;
      idle.push_back(std::move(c));
    }
    const std::string metrics = Metrics();
    EXPECT_GE(Sample(metrics, "idsync_http_connections{listener=\"scim\"}"), 1000);
    std::this_thread::sleep_for(1s);
    int closed = 0;
    for (auto& c : idle) closed += c->ClosedWithin(kKeepAlive + 3s) ? 1 : 0;
    EXPECT_EQ(closed, 1000);
    ASSERT_NO_FATAL_FAILURE(ExpectHealthy());
  }

  // --- Made-up methods: 501 before any handler, and one "other" series.
  {
    Step("made-up methods");
    const std::string before = Metrics();
    for (int i = 0; i < 300; ++i) {
      Client c("127.0.0.5", scim, ctx_);
      char method[16];
      std::snprintf(method, sizeof method, "M%06dQ", i);
      ASSERT_TRUE(c.Send(std::string(method) + " / HTTP/1.1\r\nHost: x\r\n\r\n"));
      ASSERT_EQ(c.Status(), 501);
    }
    const std::string after = Metrics();
    EXPECT_EQ(CountLines(after, "idsync_scim_requests_total{"),
              CountLines(before, "idsync_scim_requests_total{"));
    const std::string other = "idsync_scim_requests_total{method=\"other\",status=\"501\"}";
    EXPECT_EQ(Sample(after, other) - Sample(before, other), 300);
    ASSERT_NO_FATAL_FAILURE(ExpectHealthy());
  }

  // --- Malformed and oversized requests, each on its own connection.
  {
    Step("malformed requests");
    const std::string auth = "Authorization: Bearer " + std::string(kScimToken) + "\r\n";
    struct Case {
      std::string wire;
      int status;
    };
    const std::vector<Case> cases = {
        {"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\n" + auth +
             "X: a\rTransfer-Encoding: chunked\r\n\r\n",
         400},
        {"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nX: a" + std::string(1, '\0') + "\r\n\r\n", 400},
        {"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\n" + auth +
             "Content-Length: 99999999999999999999\r\n\r\n",
         413},
        {"POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\n" + auth +
             "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         400},
        {"GET /scim/v2/Users?filter=" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n",
         414},
    };
    for (const Case& k : cases) {
      Client c("127.0.0.1", scim, ctx_);
      ASSERT_TRUE(c.Send(k.wire));
      EXPECT_EQ(c.Status(), k.status) << k.wire.substr(0, 80);
      EXPECT_TRUE(c.ClosedWithin(3000ms));
    }
    // 100,000-deep JSON.
    const std::string deep(100000, '[');
    Client c("127.0.0.1", scim, ctx_);
    ASSERT_TRUE(c.Send("POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\n" + auth +
                       "Content-Type: application/scim+json\r\nContent-Length: " +
                       std::to_string(deep.size()) + "\r\n\r\n" + deep));
    EXPECT_EQ(c.Status(), 400);
    ASSERT_NO_FATAL_FAILURE(ExpectHealthy());
  }

  // --- Work per request: a filter past 1,000 comparisons, a PATCH of
  // 20,000 members.
  {
    Step("filter and PATCH limits");
    Client c("127.0.0.1", scim, ctx_);
    std::string filter = "userName eq \"u0\"";
    for (int i = 1; i <= 1000; ++i) filter += " or userName eq \"u" + std::to_string(i) + "\"";
    std::string answer;
    EXPECT_EQ(Scim(c, "POST", "/Users/.search",
                   json{{"schemas", {"urn:ietf:params:scim:api:messages:2.0:SearchRequest"}},
                        {"filter", filter}}
                       .dump(),
                   &answer),
              400);
    EXPECT_NE(answer.find("invalidFilter"), std::string::npos) << answer;
    EXPECT_NE(answer.find("1000 comparisons"), std::string::npos) << answer;
    std::string group_answer;
    ASSERT_EQ(
        Scim(c, "POST", "/Groups",
             R"({"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Big"})",
             &group_answer),
        201)
        << group_answer;
    const std::string big = json::parse(group_answer)["id"];
    std::vector<std::string> ids;
    for (int i = 0; i < 20000; ++i) ids.push_back("m" + std::to_string(i));
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(Scim(c, "PATCH", "/Groups/" + big, AddMembers(ids), &answer), 400);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    EXPECT_NE(answer.find("invalidValue"), std::string::npos) << answer;
    EXPECT_NE(answer.find("server.max_patch_values"), std::string::npos) << answer;
    ASSERT_NO_FATAL_FAILURE(ExpectHealthy());
  }

  // --- A group chain 10,000 deep, built by PATCH (each group takes the next
  // as a member) with a person at the bottom, then the top group renamed to
  // the name a rule matches: the daemon walks the chain and lives.
  if (!tls()) {
    Step("group chain 10,000 deep");
    constexpr int kDepth = 10000;
    constexpr int kWriters = 4;
    std::vector<std::string> groups(kDepth);
    std::vector<std::thread> writers;
    std::atomic<int> failures{0};
    for (int w = 0; w < kWriters; ++w) {
      writers.emplace_back([&, w] {
        Client c("127.0.0.7", scim, ctx_);
        for (int i = w; i < kDepth; i += kWriters) {
          std::string answer;
          if (Scim(c, "POST", "/Groups",
                   json{{"schemas", {"urn:ietf:params:scim:schemas:core:2.0:Group"}},
                        {"displayName", "chain-" + std::to_string(i)}}
                       .dump(),
                   &answer) != 201) {
            ++failures;
            return;
          }
          groups[i] = json::parse(answer)["id"];
        }
      });
    }
    for (std::thread& t : writers) t.join();
    ASSERT_EQ(failures.load(), 0);
    Client c("127.0.0.7", scim, ctx_);
    std::string answer;
    ASSERT_EQ(
        Scim(
            c, "POST", "/Users",
            R"({"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"deep@corp.example","active":true,"emails":[{"value":"deep@corp.example","primary":true}]})",
            &answer),
        201)
        << answer;
    const std::string person = json::parse(answer)["id"];
    // A PATCH is answered 200 with the resource or 204 without it.
    const auto patched = [](int status) { return status == 200 || status == 204; };
    ASSERT_TRUE(patched(Scim(c, "PATCH", "/Groups/" + groups[kDepth - 1], AddMembers({person}))));
    for (int i = 0; i + 1 < kDepth; ++i) {
      ASSERT_TRUE(patched(Scim(c, "PATCH", "/Groups/" + groups[i], AddMembers({groups[i + 1]}))))
          << i;
    }
    const std::string rename =
        json{{"schemas", {"urn:ietf:params:scim:api:messages:2.0:PatchOp"}},
             {"Operations",
              {{{"op", "replace"}, {"path", "displayName"}, {"value", "Okta Knowledge"}}}}}
            .dump();
    EXPECT_TRUE(patched(Scim(c, "PATCH", "/Groups/" + groups[0], rename)));
    // The partial run the rename sets off walks the chain (and refuses it
    // past groups.max_depth); the daemon must stay up meanwhile.
    std::this_thread::sleep_for(2s);
    ASSERT_NO_FATAL_FAILURE(ExpectHealthy());
  }

  // --- No token: 401 at once, no 100 Continue, the body never read.
  {
    Step("expect without a token");
    Client c("127.0.0.1", scim, ctx_);
    ASSERT_TRUE(
        c.Send("POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
               "Content-Type: application/scim+json\r\nExpect: 100-continue\r\n\r\n"));
    EXPECT_EQ(c.Status(1000ms), 401);
    EXPECT_TRUE(c.ClosedWithin(3000ms));
    ASSERT_NO_FATAL_FAILURE(ExpectHealthy());
  }

  // --- TLS: a certificate renewed in place is served after SIGHUP.
  if (tls()) {
    Step("certificate renewal");
    const std::string key = (dir_ / "key.pem").string(), cert = (dir_ / "cert.pem").string();
    const std::string cmd =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=renewed "
        "-keyout '" +
        key + "' -out '" + cert + "' >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    const std::string reloads = "idsync_config_reloads_total{result=\"ok\"}";
    const double before = Sample(Metrics(), reloads);
    ASSERT_EQ(::kill(pid_, SIGHUP), 0);
    ASSERT_TRUE(
        ::idsync::testing::WaitUntil([&] { return Sample(Metrics(), reloads) > before; }, 10s))
        << Log();
    for (int port : {scim, admin}) {
      Client c("127.0.0.1", port, ctx_);
      ASSERT_TRUE(c.connected());
      EXPECT_EQ(c.PeerName(), "renewed") << port;
    }
    ASSERT_NO_FATAL_FAILURE(ExpectHealthy());
  }

  stop_probe_ = true;
  prober_.join();
  EXPECT_GT(probes_.load(), 100);
  EXPECT_LT(max_rss_.load(), start_rss_ + 256 * 1024)
      << "RSS at start " << start_rss_ << " KiB, at most " << max_rss_.load() << " KiB";
  std::cout << "hostile clients (" << (tls() ? "TLS" : "clear") << "): " << probes_.load()
            << " probes, slowest " << max_probe_ms_.load() << " ms; RSS " << start_rss_
            << " KiB at start, " << max_rss_.load() << " KiB at most\n";
  ASSERT_TRUE(Alive());
}

// Out of file descriptors: idsyncd limited to 64 open files, 100 clients.
// Those it cannot take are answered 503 (TLS: closed) rather than left in
// the queue, and once they leave it serves again.
TEST_P(HostileClientsTest, RunningOutOfFileDescriptorsIsSurvived) {
  ASSERT_NO_FATAL_FAILURE(Start(/*max_files=*/64));
  const auto open_files = [&] {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e :
         fs::directory_iterator("/proc/" + std::to_string(pid_) + "/fd"))
      ++n;
    return n;
  };
  ASSERT_LT(open_files(), 54u) << "idsyncd needs too many files at rest for this test";
  Step("out of file descriptors");
  std::vector<std::unique_ptr<Client>> many;
  for (int i = 0; i < 100; ++i) {
    many.push_back(std::make_unique<Client>("127.0.0.6", scim_port_, ctx_, /*handshake=*/!tls()));
  }
  int turned_away = 0;
  for (auto& c : many) {
    if (tls()) {
      turned_away += c->ClosedWithin(300ms) ? 1 : 0;
    } else {
      turned_away += c->Status(300ms) == 503 ? 1 : 0;
    }
  }
  EXPECT_GT(turned_away, 0);
  EXPECT_LT(turned_away, 100);
  ASSERT_TRUE(Alive()) << Log();
  many.clear();
  // Served again: the prober's misses while the files ran out are expected.
  std::this_thread::sleep_for(500ms);
  {
    std::lock_guard lock(mu_);
    slow_probes_.clear();
  }
  std::this_thread::sleep_for(1s);
  ASSERT_NO_FATAL_FAILURE(ExpectHealthy());
  EXPECT_GT(Sample(Metrics(),
                   "idsync_http_connections_refused_total{listener=\"scim\","
                   "reason=\"file_descriptors\"}"),
            0);
}

INSTANTIATE_TEST_SUITE_P(Listeners, HostileClientsTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Tls" : "Clear"; });

}  // namespace
}  // namespace idsync::e2e
