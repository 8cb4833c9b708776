// A loopback TCP proxy for fault injection in the `ldap` source's
// integration tests: it forwards connections to an upstream port and, after
// a given number of bytes from the server, either cuts every connection
// (a server that goes away mid-read) or stops forwarding while keeping the
// connections open (a stalled server). It also counts the connections it
// accepted. Runs its own thread; the public methods are thread-safe.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <thread>

#include "idsync/base/status.h"

namespace idsync::ldap::testing {

struct ProxyFault {
  enum class Kind { kNone, kCut, kStall };
  Kind kind = Kind::kNone;
  // Server-to-client bytes forwarded (over all connections) before the fault.
  std::size_t after_bytes = std::numeric_limits<std::size_t>::max();
};

class TcpProxy {
 public:
  // Listens on 127.0.0.1, a free port, and forwards to 127.0.0.1:upstream_port.
  static Result<std::unique_ptr<TcpProxy>> Start(std::uint16_t upstream_port, ProxyFault fault);
  ~TcpProxy();  // stops the thread and closes every socket

  std::uint16_t port() const { return port_; }
  std::string url() const { return "ldap://127.0.0.1:" + std::to_string(port_); }
  int connections() const { return connections_.load(); }
  // Closes every connection open now (a server or firewall dropping them);
  // later connections are forwarded as before. Returns at once.
  void CutNow();
  bool faulted() const { return faulted_.load(); }

 private:
  TcpProxy() = default;
  void Run();

  std::uint16_t upstream_port_ = 0;
  std::uint16_t port_ = 0;
  ProxyFault fault_;
  int listen_fd_ = -1;
  int wake_read_ = -1;
  int wake_write_ = -1;
  std::atomic<int> connections_{0};
  std::atomic<bool> faulted_{false};
  std::thread thread_;
};

// The port of a loopback socket that was bound and closed again: nothing
// listens there, so connecting is refused.
Result<std::uint16_t> ClosedPort();

// The port of an ldap://HOST:PORT URL.
std::uint16_t UrlPort(const std::string& url);

}  // namespace idsync::ldap::testing
