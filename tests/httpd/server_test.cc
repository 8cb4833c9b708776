// The HTTP server over real loopback sockets (port 0): framing, routing data,
// body limits, TLS, queueing and stopping.
#include "idsync/httpd/server.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetSSL.h>
#include <Poco/StreamCopier.h>
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "require_servers.h"
#include "wait_until.h"

namespace idsync::httpd {
namespace {

using namespace std::chrono_literals;

// A raw client connection, so that tests control every byte sent.
class RawClient {
 public:
  explicit RawClient(int port, bool ipv6 = false) {
    fd_ = ::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    int rc = -1;
    if (ipv6) {
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      a.sin6_port = htons(static_cast<uint16_t>(port));
      a.sin6_addr = in6addr_loopback;
      rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    } else {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(port));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    }
    connected_ = rc == 0;
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return connected_; }

  bool Send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Reads more bytes into the buffer; false on EOF, error or `wait` passing.
  bool Fill(std::chrono::milliseconds wait = 5s) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return false;
    char buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) return false;
    buf_.append(buf, static_cast<size_t>(n));
    return true;
  }

  // True when the server closed the connection (EOF) within `wait`.
  bool ClosedWithin(std::chrono::milliseconds wait) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return false;
    char c;
    return ::recv(fd_, &c, 1, 0) <= 0;
  }

  struct Reply {
    int status = 0;
    std::string head;  // status line and headers
    std::string body;
  };

  // Reads one response (Content-Length framed, or up to EOF without one).
  // status 0 when nothing complete arrived.
  Reply Read(bool head_request = false) {
    Reply r;
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return r;
    }
    r.head = buf_.substr(0, end + 2);
    buf_.erase(0, end + 4);
    r.status = std::atoi(r.head.substr(9, 3).c_str());
    const std::string lower = Lower(r.head);
    const size_t cl = lower.find("\r\ncontent-length:");
    if (cl == std::string::npos || head_request) return r;
    const size_t n = std::strtoul(r.head.c_str() + cl + 17, nullptr, 10);
    while (buf_.size() < n) {
      if (!Fill()) return Reply{};
    }
    r.body = buf_.substr(0, n);
    buf_.erase(0, n);
    return r;
  }

  static std::string Lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

bool HasHeader(const RawClient::Reply& r, std::string_view line) {
  return RawClient::Lower(r.head).find(RawClient::Lower("\r\n" + std::string(line) + "\r\n")) !=
         std::string::npos;
}

// Describes a request as text: "METHOD path\nname=value\n...".
std::string Describe(const Request& req) {
  std::string out = req.method + " " + req.path + "\n";
  for (const auto& [k, v] : req.query) out += "q:" + k + "=" + v + "\n";
  out += "x-test:" + std::string(req.Header("x-TEST")) + "\n";
  out += "body:" + req.body + "\n";
  out += std::string("tls:") + (req.tls ? "yes" : "no") + "\n";
  return out;
}

Options LocalOptions() {
  Options o;
  o.listen = {"127.0.0.1:0"};
  o.threads = 4;
  o.header_timeout = 2s;
  o.body_timeout = 2s;
  o.keep_alive_timeout = 2s;
  return o;
}

std::unique_ptr<Server> StartOrDie(const Options& o, Handler h) {
  Result<std::unique_ptr<Server>> s = Server::Start(o, std::move(h));
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (!s.ok()) return nullptr;
  return std::move(s).value();
}

Handler EchoHandler(std::atomic<int>* calls = nullptr) {
  return [calls](const Request& req) {
    if (calls) ++*calls;
    Response r;
    r.content_type = "text/plain";
    r.body = Describe(req);
    return r;
  };
}

TEST(Server, BindsPortZeroToARealPort) {
  auto server = StartOrDie(LocalOptions(), EchoHandler());
  ASSERT_TRUE(server);
  ASSERT_EQ(server->ports().size(), 1u);
  EXPECT_GT(server->ports()[0], 0);
  RawClient c(server->ports()[0]);
  EXPECT_TRUE(c.connected());
}

TEST(Server, DecodesMethodPathAndQueryInOrder) {
  auto server = StartOrDie(LocalOptions(), EchoHandler());
  ASSERT_TRUE(server);
  RawClient c(server->ports()[0]);
  ASSERT_TRUE(c.Send(
      "GET /scim/v2/Us%65rs?filter=userName+eq+%22a%40b.c%22&x=1&x=2&flag&count=10 HTTP/1.1\r\n"
      "Host: x\r\nX-Test: hello there \r\n\r\n"));
  const RawClient::Reply r = c.Read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body,
            "GET /scim/v2/Users\nq:filter=userName eq \"a@b.c\"\nq:x=1\nq:x=2\nq:flag=\n"
            "q:count=10\nx-test:hello there\nbody:\ntls:no\n");
  EXPECT_TRUE(HasHeader(r, "Content-Type: text/plain"));
  EXPECT_TRUE(HasHeader(r, "Server: idsync"));
}

TEST(Server, AcceptsAbsoluteFormTargets) {
  auto server = StartOrDie(LocalOptions(), EchoHandler());
  ASSERT_TRUE(server);
  RawClient c(server->ports()[0]);
  ASSERT_TRUE(c.Send("DELETE http://h:1/Groups/7?a=b HTTP/1.1\r\nHost: h\r\n\r\n"));
  const RawClient::Reply r = c.Read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.substr(0, r.body.find("x-test")), "DELETE /Groups/7\nq:a=b\n");
}

TEST(Server, SendsStatusHeadersAndBodyTheHandlerSet) {
  auto server = StartOrDie(LocalOptions(), [](const Request&) {
    Response r;
    r.status = 201;
    r.content_type = "application/scim+json";
    r.body = "{\"id\":\"1\"}";
    r.headers = {
        {"Location", "http://h/Users/1"}, {"ETag", "W/\"1\""}, {"X-Evil", "a\r\nInjected: yes"}};
    return r;
  });
  ASSERT_TRUE(server);
  RawClient c(server->ports()[0]);
  ASSERT_TRUE(c.Send("POST /Users HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"));
  const RawClient::Reply r = c.Read();
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.body, "{\"id\":\"1\"}");
  EXPECT_TRUE(HasHeader(r, "Content-Type: application/scim+json"));
  EXPECT_TRUE(HasHeader(r, "Location: http://h/Users/1"));
  EXPECT_TRUE(HasHeader(r, "ETag: W/\"1\""));
  EXPECT_FALSE(HasHeader(r, "Injected: yes"));
}

TEST(Server, NoContentHasNoBody) {
  auto server = StartOrDie(LocalOptions(), [](const Request&) {
    Response r;
    r.status = 204;
    r.body = "ignored";
    return r;
  });
  ASSERT_TRUE(server);
  RawClient c(server->ports()[0]);
  ASSERT_TRUE(
      c.Send("DELETE /Users/1 HTTP/1.1\r\nHost: h\r\n\r\nDELETE /Users/2 HTTP/1.1\r\n"
             "Host: h\r\n\r\n"));
  const RawClient::Reply a = c.Read();
  EXPECT_EQ(a.status, 204);
  EXPECT_EQ(RawClient::Lower(a.head).find("content-length"), std::string::npos);
  // The second pipelined request is framed right, so no body leaked.
  EXPECT_EQ(c.Read().status, 204);
}

TEST(Server, HeadAnswersWithoutBody) {
  auto server = StartOrDie(LocalOptions(), EchoHandler());
  ASSERT_TRUE(server);
  RawClient c(server->ports()[0]);
  ASSERT_TRUE(c.Send("HEAD /x HTTP/1.1\r\nHost: h\r\n\r\nGET /y HTTP/1.1\r\nHost: h\r\n\r\n"));
  const RawClient::Reply head = c.Read(/*head_request=*/true);
  EXPECT_EQ(head.status, 200);
  const RawClient::Reply get = c.Read();
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.body.substr(0, 6), "GET /y");
}

TEST(Server, ReadsContentLengthBodyAndKeepsTheConnection) {
  std::atomic<int> calls = 0;
  auto server = StartOrDie(LocalOptions(), EchoHandler(&calls));
  ASSERT_TRUE(server);
  RawClient c(server->ports()[0]);
  ASSERT_TRUE(c.Send("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"));
  const RawClient::Reply a = c.Read();
  EXPECT_NE(a.body.find("body:hello\n"), std::string::npos);
  EXPECT_TRUE(HasHeader(a, "Connection: keep-alive"));
  ASSERT_TRUE(c.Send("POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nbye"));
  const RawClient::Reply b = c.Read();
  EXPECT_NE(b.body.find("body:bye\n"), std::string::npos);
  EXPECT_EQ(calls.load(), 2);
}

TEST(Server, DecodesChunkedBodies) {
  auto server = StartOrDie(LocalOptions(), EchoHandler());
  ASSERT_TRUE(server);
  RawClient c(server->ports()[0]);
  ASSERT_TRUE(
      c.Send("POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
             "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n"));
  const RawClient::Reply r = c.Read();
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("body:hello world\n"), std::string::npos);
}

TEST(Server, ClosesWhenTheClientAsks) {
  auto server = StartOrDie(LocalOptions(), EchoHandler());
  ASSERT_TRUE(server);
  RawClient c(server->ports()[0]);
  ASSERT_TRUE(c.Send("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
  const RawClient::Reply r = c.Read();
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(HasHeader(r, "Connection: close"));
  EXPECT_TRUE(c.ClosedWithin(2s));
}

Options LimitedOptions(std::atomic<int>* renders) {
  Options o = LocalOptions();
  o.max_body = 100;
  o.render_error = [renders](int status, const std::string& message) {
    ++*renders;
    Response r;
    r.status = status;
    r.content_type = "application/scim+json";
    r.body = "custom:" + std::to_string(status) + ":" + message;
    return r;
  };
  return o;
}

TEST(Server, RefusesAnOversizedBodyBeforeReadingIt) {
  std::atomic<int> calls = 0, renders = 0;
  auto server = StartOrDie(LimitedOptions(&renders), EchoHandler(&calls));
  ASSERT_TRUE(server);
  RawClient c(server->ports()[0]);
  // Only the head is sent: the answer must come without the body.
  ASSERT_TRUE(c.Send("POST /Users HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n"));
  const RawClient::Reply r = c.Read();
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.body.substr(0, 11), "custom:413:");
  EXPECT_TRUE(HasHeader(r, "Content-Type: application/scim+json"));
  EXPECT_TRUE(HasHeader(r, "Connection: close"));
  EXPECT_EQ(calls.load(), 0);
  EXPECT_EQ(renders.load(), 1);
}

TEST(Server, AcceptsABodyOfExactlyMaxBody) {
  std::atomic<int> renders = 0;
  auto server = StartOrDie(LimitedOptions(&renders), EchoHandler());
  ASSERT_TRUE(server);
  RawClient c(server->ports()[0]);
  ASSERT_TRUE(
      c.Send("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'x')));
  EXPECT_EQ(c.Read().status, 200);
}

TEST(Server, RefusesAChunkedBodyPastTheLimit) {
  std::atomic<int> calls = 0, renders = 0;
  auto server = StartOrDie(LimitedOptions(&renders), EchoHandler(&calls));
  ASSERT_TRUE(server);
  RawClient c(server->ports()[0]);
  ASSERT_TRUE(
      c.Send("POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
             "40\r\n" +
             std::string(64, 'a') + "\r\n40\r\n"));
  const RawClient::Reply r = c.Read();
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(calls.load(), 0);
}

TEST(Server, LargeBodyWithExpectGets413WithoutContinue) {
  std::atomic<int> renders = 0;
  auto server = StartOrDie(LimitedOptions(&renders), EchoHandler());
  ASSERT_TRUE(server);
  RawClient c(server->ports()[0]);
  ASSERT_TRUE(
      c.Send("PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\n"
             "Expect: 100-continue\r\n\r\n"));
  EXPECT_EQ(c.Read().status, 413);
}

TEST(Server, SmallBodyWithExpectGetsContinueThenTheAnswer) {
  auto server = StartOrDie(LocalOptions(), EchoHandler());
  ASSERT_TRUE(server);
  RawClient c(server->ports()[0]);
  ASSERT_TRUE(
      c.Send("PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n"
             "Expect: 100-continue\r\n\r\n"));
  EXPECT_EQ(c.Read().status, 100);
  ASSERT_TRUE(c.Send("ok"));
  const RawClient::Reply r = c.Read();
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("body:ok\n"), std::string::npos);
}

TEST(Server, MalformedRequestsGet400FromTheRenderer) {
  std::atomic<int> calls = 0, renders = 0;
  auto server = StartOrDie(LimitedOptions(&renders), EchoHandler(&calls));
  ASSERT_TRUE(server);
  for (const std::string bad : {
           "GARBAGE\r\n\r\n",
           "GET /a HTTP/1.1\r\nNo colon here\r\n\r\n",
           "GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n",
           "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: ten\r\n\r\n",
           "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
           "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
           "POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
       }) {
    RawClient c(server->ports()[0]);
    ASSERT_TRUE(c.Send(bad));
    const RawClient::Reply r = c.Read();
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(r.body.substr(0, 11), "custom:400:") << bad;
  }
  EXPECT_EQ(calls.load(), 0);
}

TEST(Server, DefaultErrorBodyIsJson) {
  Options o = LocalOptions();
  o.max_body = 10;
  auto server = StartOrDie(o, EchoHandler());
  ASSERT_TRUE(server);
  RawClient c(server->ports()[0]);
  ASSERT_TRUE(c.Send("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n"));
  const RawClient::Reply r = c.Read();
  EXPECT_EQ(r.status, 413);
  EXPECT_TRUE(HasHeader(r, "Content-Type: application/json"));
  EXPECT_EQ(r.body.substr(0, 11), "{\"error\": \"");
}

TEST(Server, HandlerExceptionBecomes500) {
  std::atomic<int> renders = 0;
  auto server = StartOrDie(LimitedOptions(&renders),
                           [](const Request&) -> Response { throw std::runtime_error("boom"); });
  ASSERT_TRUE(server);
  RawClient c(server->ports()[0]);
  ASSERT_TRUE(c.Send("GET /a HTTP/1.1\r\nHost: h\r\n\r\n"));
  const RawClient::Reply r = c.Read();
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, "custom:500:internal error");
}

TEST(Server, ClosesAStalledRequestAfterTheTimeout) {
  Options o = LocalOptions();
  o.header_timeout = 300ms;
  auto server = StartOrDie(o, EchoHandler());
  ASSERT_TRUE(server);
  RawClient c(server->ports()[0]);
  ASSERT_TRUE(c.Send("GET /a HTTP/1.1\r\nHo"));
  EXPECT_EQ(c.Read().status, 408);
  EXPECT_TRUE(c.ClosedWithin(3s));
}

// Counts the deadlines the server reports.
class DeadlineCounter : public Observer {
 public:
  void DeadlinePassed(std::string_view deadline) override {
    std::lock_guard lock(mu_);
    seen_.emplace_back(deadline);
  }
  int Count(std::string_view deadline) {
    std::lock_guard lock(mu_);
    return static_cast<int>(std::count(seen_.begin(), seen_.end(), deadline));
  }

 private:
  std::mutex mu_;
  std::vector<std::string> seen_;
};

TEST(Server, ClosesAClientThatDoesNotReadItsAnswer) {
  Options o = LocalOptions();
  o.write_timeout = 300ms;
  auto counter = std::make_shared<DeadlineCounter>();
  o.observer = counter;
  constexpr std::size_t kBody = 64 * 1024 * 1024;  // far more than the socket buffers hold
  auto server = StartOrDie(o, [](const Request&) {
    Response r;
    r.body.assign(kBody, 'x');
    return r;
  });
  ASSERT_TRUE(server);
  RawClient c(server->ports()[0]);
  ASSERT_TRUE(c.Send("GET /big HTTP/1.1\r\nHost: h\r\n\r\n"));
  // The client reads nothing: past write_timeout the server gives up.
  ASSERT_TRUE(::idsync::testing::WaitUntil([&] { return counter->Count("write") == 1; }, 10s));
  // What was sent before is there, then the connection ends mid-body: the
  // answer never arrives whole.
  EXPECT_EQ(c.Read().status, 0);
}

TEST(Server, ClosesAnIdleKeepAliveConnection) {
  Options o = LocalOptions();
  o.keep_alive_timeout = 300ms;
  auto server = StartOrDie(o, EchoHandler());
  ASSERT_TRUE(server);
  RawClient c(server->ports()[0]);
  ASSERT_TRUE(c.Send("GET /a HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(c.Read().status, 200);
  EXPECT_TRUE(c.ClosedWithin(3s));
}

TEST(Server, ListensOnIpv4AndIpv6Together) {
  RawClient probe(0, true);  // is IPv6 loopback usable here at all?
  Options o = LocalOptions();
  o.listen = {"127.0.0.1:0", "[::1]:0"};
  Result<std::unique_ptr<Server>> s = Server::Start(o, EchoHandler());
  IDSYNC_REQUIRE_SERVER(s.ok() || s.status().code() != StatusCode::kUnavailable,
                        "no IPv6 loopback: " << s.status().ToString());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  const std::vector<int> ports = (*s)->ports();
  ASSERT_EQ(ports.size(), 2u);
  RawClient v6(ports[1], true);
  ASSERT_TRUE(v6.connected());
  ASSERT_TRUE(v6.Send("GET /six HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(v6.Read().body.substr(0, 8), "GET /six");
  RawClient v4(ports[0]);
  ASSERT_TRUE(v4.Send("GET /four HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(v4.Read().body.substr(0, 9), "GET /four");
}

TEST(Server, RejectsMalformedAddresses) {
  for (const std::string bad : {"127.0.0.1", "::1:80", "[::1]80", "h:99999", "h:x", "[]:1"}) {
    Options o = LocalOptions();
    o.listen = {bad};
    Result<std::unique_ptr<Server>> s = Server::Start(o, EchoHandler());
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(Server, APortInUseIsUnavailable) {
  auto first = StartOrDie(LocalOptions(), EchoHandler());
  ASSERT_TRUE(first);
  Options o = LocalOptions();
  o.listen = {"127.0.0.1:" + std::to_string(first->ports()[0])};
  Result<std::unique_ptr<Server>> second = Server::Start(o, EchoHandler());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find(o.listen[0]), std::string::npos);
}

TEST(Server, StopLetsARequestInFlightFinish) {
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false, release = false;
  auto server = StartOrDie(LocalOptions(), [&](const Request&) {
    std::unique_lock lock(mu);
    entered = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
    Response r;
    r.body = "finished";
    return r;
  });
  ASSERT_TRUE(server);
  const int port = server->ports()[0];
  RawClient c(port);
  ASSERT_TRUE(c.Send("GET /slow HTTP/1.1\r\nHost: h\r\n\r\n"));
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return entered; }));
  }
  std::future<void> stopped = std::async(std::launch::async, [&] { server->Stop(10s); });
  // Stop must wait for the handler.
  EXPECT_EQ(stopped.wait_for(300ms), std::future_status::timeout);
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  const RawClient::Reply r = c.Read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "finished");
  EXPECT_TRUE(HasHeader(r, "Connection: close"));
  EXPECT_EQ(stopped.wait_for(5s), std::future_status::ready);
  RawClient after(port);
  EXPECT_FALSE(after.connected());
}

TEST(Server, StopClosesIdleKeepAliveConnectionsPromptly) {
  Options o = LocalOptions();
  o.keep_alive_timeout = 60s;
  auto server = StartOrDie(o, EchoHandler());
  ASSERT_TRUE(server);
  RawClient c(server->ports()[0]);
  ASSERT_TRUE(c.Send("GET /a HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(c.Read().status, 200);
  const auto start = std::chrono::steady_clock::now();
  server->Stop(30s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_TRUE(c.ClosedWithin(1s));
}

TEST(Server, StopAfterGraceCutsAStalledUpload) {
  Options o = LocalOptions();
  o.header_timeout = 60s;
  o.body_timeout = 60s;
  auto server = StartOrDie(o, EchoHandler());
  ASSERT_TRUE(server);
  RawClient c(server->ports()[0]);
  // A first request answered on the same keep-alive connection: a worker
  // holds it, and reads the stalled upload that follows.
  ASSERT_TRUE(c.Send("GET /first HTTP/1.1\r\nHost: h\r\n\r\n"));
  ASSERT_EQ(c.Read().status, 200);
  ASSERT_TRUE(c.Send("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc"));
  const auto start = std::chrono::steady_clock::now();
  server->Stop(300ms);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_TRUE(c.ClosedWithin(1s));
}

// Options::running bounds the handlers that run at once; a handler waiting
// inside WhileBlocked is not counted, so the others run meanwhile.
TEST(Server, RunsAtMostRunningHandlersButNotCountingThoseThatWait) {
  for (const bool blocked : {false, true}) {
    SCOPED_TRACE(blocked ? "waiting in WhileBlocked" : "waiting in the handler");
    std::mutex mu;
    std::condition_variable cv;
    bool release = false;
    std::atomic<int> entered = 0;
    Options o = LocalOptions();
    o.threads = 6;
    o.running = 2;
    auto server = StartOrDie(o, [&](const Request&) {
      ++entered;
      auto wait = [&] {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return release; });
      };
      if (blocked) {
        WhileBlocked(wait);
      } else {
        wait();
      }
      return Response{};
    });
    ASSERT_TRUE(server);
    std::vector<std::unique_ptr<RawClient>> clients;
    for (int i = 0; i < 6; ++i) {
      clients.push_back(std::make_unique<RawClient>(server->ports()[0]));
      ASSERT_TRUE(clients.back()->Send("GET /x HTTP/1.1\r\nHost: h\r\n\r\n"));
    }
    if (blocked) {
      EXPECT_TRUE(::idsync::testing::WaitUntil([&] { return entered.load() == 6; }, 10s))
          << "only " << entered.load() << " handlers ran while the others waited";
    } else {
      ASSERT_TRUE(::idsync::testing::WaitUntil([&] { return entered.load() == 2; }, 10s));
      std::this_thread::sleep_for(300ms);  // a third would have started by now
      EXPECT_EQ(entered.load(), 2);
    }
    {
      std::lock_guard lock(mu);
      release = true;
    }
    cv.notify_all();
    for (auto& c : clients) EXPECT_EQ(c->Read().status, 200);
    EXPECT_EQ(entered.load(), 6);
    server->Stop();
  }
}

// Outside a handler, WhileBlocked only runs what it is given.
TEST(Server, WhileBlockedOutsideAHandlerRunsTheWait) {
  bool ran = false;
  WhileBlocked([&] { ran = true; });
  EXPECT_TRUE(ran);
}

TEST(Server, AnswersBusyWhenTheQueueIsFull) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> renders = 0;
  Options o = LimitedOptions(&renders);
  o.threads = 1;
  o.max_queued = 1;
  std::atomic<int> entered = 0;
  auto server = StartOrDie(o, [&](const Request&) {
    ++entered;
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return release; });
    return Response{};
  });
  ASSERT_TRUE(server);
  const int port = server->ports()[0];
  RawClient busy(port);  // takes the only worker
  ASSERT_TRUE(busy.Send("GET /a HTTP/1.1\r\nHost: h\r\n\r\n"));
  ASSERT_TRUE(::idsync::testing::WaitUntil([&] { return entered.load() == 1; }, 10s))
      << "the first request never reached the handler";
  // A whole request takes the one place in the queue; the next whole
  // request finds it full.
  RawClient queued(port);
  ASSERT_TRUE(queued.Send("GET /b HTTP/1.1\r\nHost: h\r\n\r\n"));
  std::this_thread::sleep_for(200ms);  // let the event thread queue it
  RawClient refused(port);
  ASSERT_TRUE(refused.Send("GET /c HTTP/1.1\r\nHost: h\r\n\r\n"));
  const RawClient::Reply r = refused.Read();
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body.substr(0, 11), "custom:503:");
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  EXPECT_EQ(busy.Read().status, 200);
  EXPECT_EQ(queued.Read().status, 200);
}

// A self-signed certificate for 127.0.0.1, made with the openssl tool.
class TlsFiles {
 public:
  TlsFiles() {
    dir_ =
        std::filesystem::temp_directory_path() / ("idsync-httpd-tls-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    const std::string cmd =
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
        "-addext subjectAltName=IP:127.0.0.1 -keyout '" +
        key() + "' -out '" + cert() + "' >/dev/null 2>&1";
    ok_ = std::system(cmd.c_str()) == 0;
  }
  ~TlsFiles() { std::filesystem::remove_all(dir_); }
  bool ok() const { return ok_; }
  std::string cert() const { return (dir_ / "cert.pem").string(); }
  std::string key() const { return (dir_ / "key.pem").string(); }

 private:
  std::filesystem::path dir_;
  bool ok_ = false;
};

TEST(Server, ServesTls) {
  TlsFiles files;
  ASSERT_TRUE(files.ok()) << "openssl req failed";
  Options o = LocalOptions();
  o.tls_cert = files.cert();
  o.tls_key = files.key();
  auto server = StartOrDie(o, EchoHandler());
  ASSERT_TRUE(server);

  Poco::Net::initializeSSL();
  Poco::Net::Context::Params params;
  params.caLocation = files.cert();
  params.verificationMode = Poco::Net::Context::VERIFY_STRICT;
  params.loadDefaultCAs = false;
  Poco::Net::Context::Ptr ctx = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, params);
  Poco::Net::HTTPSClientSession session("127.0.0.1", static_cast<Poco::UInt16>(server->ports()[0]),
                                        ctx);
  for (int i = 0; i < 2; ++i) {  // twice over one kept-alive TLS connection
    Poco::Net::HTTPRequest req(Poco::Net::HTTPRequest::HTTP_POST, "/secure?n=1",
                               Poco::Net::HTTPMessage::HTTP_1_1);
    req.setContentLength(4);
    session.sendRequest(req) << "data";
    Poco::Net::HTTPResponse resp;
    std::istream& in = session.receiveResponse(resp);
    std::ostringstream body;
    Poco::StreamCopier::copyStream(in, body);
    EXPECT_EQ(resp.getStatus(), Poco::Net::HTTPResponse::HTTP_OK);
    EXPECT_EQ(body.str(), "POST /secure\nq:n=1\nx-test:\nbody:data\ntls:yes\n");
  }
  // Plain HTTP on the TLS port gets no answer.
  RawClient plain(server->ports()[0]);
  ASSERT_TRUE(plain.Send("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(plain.Read().status, 0);
}

TEST(Server, MissingTlsKeyIsUnavailableAndNamesTheFile) {
  TlsFiles files;
  ASSERT_TRUE(files.ok());
  Options o = LocalOptions();
  o.tls_cert = files.cert();
  o.tls_key = files.key() + ".missing";
  Result<std::unique_ptr<Server>> s = Server::Start(o, EchoHandler());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(s.status().message().find("key.pem.missing"), std::string::npos);
}

TEST(Server, CertificateWithoutKeyIsInvalid) {
  Options o = LocalOptions();
  o.tls_cert = "/nonexistent/cert.pem";
  Result<std::unique_ptr<Server>> s = Server::Start(o, EchoHandler());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
}

// A TLS client handshake against `port` with `configure` applied to the
// client context; the negotiated SSL (nullptr when the handshake failed).
struct TlsClient {
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  int fd = -1;
  ~TlsClient() {
    if (ssl != nullptr) SSL_free(ssl);
    if (ctx != nullptr) SSL_CTX_free(ctx);
    if (fd >= 0) ::close(fd);
  }
  bool Connect(int port, const std::function<void(SSL_CTX*)>& configure) {
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    configure(ctx);
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return false;
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    const bool ok = SSL_connect(ssl) == 1;
    ERR_clear_error();
    return ok;
  }
  // The certificate's subject common name.
  std::string PeerName() const {
    X509* cert = SSL_get1_peer_certificate(ssl);
    if (cert == nullptr) return "";
    char buf[256] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof(buf));
    X509_free(cert);
    return buf;
  }
};

std::unique_ptr<Server> StartTls(const TlsFiles& files) {
  Options o = LocalOptions();
  o.tls_cert = files.cert();
  o.tls_key = files.key();
  return StartOrDie(o, EchoHandler());
}

TEST(ServerTls, RefusesKeyExchangeWithoutForwardSecrecy) {
  TlsFiles files;
  ASSERT_TRUE(files.ok());
  auto server = StartTls(files);
  ASSERT_TRUE(server);
  const int port = server->ports()[0];
  TlsClient rsa_kx;
  EXPECT_FALSE(rsa_kx.Connect(port, [](SSL_CTX* c) {
    SSL_CTX_set_max_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_cipher_list(c, "AES128-GCM-SHA256:AES256-SHA256:AES128-SHA");
  })) << "an RSA key exchange was accepted";
  TlsClient cbc;
  EXPECT_FALSE(cbc.Connect(port, [](SSL_CTX* c) {
    SSL_CTX_set_max_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_cipher_list(c, "ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES128-SHA");
  })) << "a CBC suite was accepted";
  TlsClient ecdhe;
  EXPECT_TRUE(ecdhe.Connect(port, [](SSL_CTX* c) {
    SSL_CTX_set_max_proto_version(c, TLS1_2_VERSION);
    SSL_CTX_set_cipher_list(c, "ECDHE-RSA-AES128-GCM-SHA256");
  }));
  TlsClient tls13;
  ASSERT_TRUE(tls13.Connect(port, [](SSL_CTX*) {}));
  EXPECT_EQ(SSL_version(tls13.ssl), TLS1_3_VERSION);
}

TEST(ServerTls, RefusesTls11) {
  TlsFiles files;
  ASSERT_TRUE(files.ok());
  auto server = StartTls(files);
  ASSERT_TRUE(server);
  TlsClient old;
  EXPECT_FALSE(old.Connect(server->ports()[0], [](SSL_CTX* c) {
    SSL_CTX_set_security_level(c, 0);
    SSL_CTX_set_min_proto_version(c, TLS1_1_VERSION);
    SSL_CTX_set_max_proto_version(c, TLS1_1_VERSION);
  }));
}

TEST(ServerTls, RefusesClientRenegotiation) {
  TlsFiles files;
  ASSERT_TRUE(files.ok());
  auto server = StartTls(files);
  ASSERT_TRUE(server);
  TlsClient c;
  ASSERT_TRUE(c.Connect(server->ports()[0],
                        [](SSL_CTX* ctx) { SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION); }));
  ASSERT_EQ(SSL_renegotiate(c.ssl), 1);
  // The server answers the new ClientHello with a no_renegotiation alert
  // (or ends the connection): either way no second handshake completes.
  EXPECT_NE(SSL_do_handshake(c.ssl), 1);
  ERR_clear_error();
}

TEST(ServerTls, ReloadTlsServesARenewedCertificateToNewConnections) {
  TlsFiles files;
  ASSERT_TRUE(files.ok());
  auto server = StartTls(files);
  ASSERT_TRUE(server);
  const int port = server->ports()[0];
  TlsClient before;
  ASSERT_TRUE(before.Connect(port, [](SSL_CTX*) {}));
  EXPECT_EQ(before.PeerName(), "127.0.0.1");
  // Renewed in place, as an ACME client does.
  const std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=renewed -keyout '" +
      files.key() + "' -out '" + files.cert() + "' >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  ASSERT_TRUE(server->ReloadTls().ok());
  TlsClient after;
  ASSERT_TRUE(after.Connect(port, [](SSL_CTX*) {}));
  EXPECT_EQ(after.PeerName(), "renewed");
  // A broken file is refused and the certificate in use stays.
  std::ofstream(files.cert()) << "not a certificate";
  const Status st = server->ReloadTls();
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_NE(st.message().find(files.cert()), std::string::npos);
  TlsClient still;
  ASSERT_TRUE(still.Connect(port, [](SSL_CTX*) {}));
  EXPECT_EQ(still.PeerName(), "renewed");
}

}  // namespace
}  // namespace idsync::httpd
