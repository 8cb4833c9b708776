#include "tcp_proxy.h"

#include <cerrno>
#include <cstring>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace idsync::ldap::testing {
namespace {

sockaddr_in Loopback(std::uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  return address;
}

Result<std::uint16_t> BoundPort(int fd) {
  sockaddr_in address{};
  socklen_t length = sizeof address;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return InternalError(std::string("getsockname: ") + std::strerror(errno));
  }
  return ntohs(address.sin_port);
}

// Writes all of `data`; false when the peer is gone.
bool WriteAll(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

Result<std::uint16_t> ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return InternalError(std::string("socket: ") + std::strerror(errno));
  sockaddr_in address = Loopback(0);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return InternalError(std::string("bind: ") + std::strerror(errno));
  }
  Result<std::uint16_t> port = BoundPort(fd);
  ::close(fd);
  return port;
}

std::uint16_t UrlPort(const std::string& url) {
  std::size_t colon = url.rfind(':');
  return static_cast<std::uint16_t>(std::stoi(url.substr(colon + 1)));
}

Result<std::unique_ptr<TcpProxy>> TcpProxy::Start(std::uint16_t upstream_port, ProxyFault fault) {
  std::unique_ptr<TcpProxy> proxy(new TcpProxy());
  proxy->upstream_port_ = upstream_port;
  proxy->fault_ = fault;
  proxy->listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (proxy->listen_fd_ < 0) return InternalError(std::string("socket: ") + std::strerror(errno));
  sockaddr_in address = Loopback(0);
  if (::bind(proxy->listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(proxy->listen_fd_, 16) != 0) {
    return InternalError(std::string("bind/listen: ") + std::strerror(errno));
  }
  ASSIGN_OR_RETURN(proxy->port_, BoundPort(proxy->listen_fd_));
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return InternalError(std::string("pipe: ") + std::strerror(errno));
  }
  proxy->wake_read_ = pipe_fds[0];
  proxy->wake_write_ = pipe_fds[1];
  proxy->thread_ = std::thread([p = proxy.get()] { p->Run(); });
  return proxy;
}

TcpProxy::~TcpProxy() {
  if (thread_.joinable()) {
    char byte = 0;
    (void)!::write(wake_write_, &byte, 1);
    thread_.join();
  }
  for (int fd : {listen_fd_, wake_read_, wake_write_}) {
    if (fd >= 0) ::close(fd);
  }
}

void TcpProxy::CutNow() {
  char byte = 1;
  (void)!::write(wake_write_, &byte, 1);
}

void TcpProxy::Run() {
  struct Pair {
    int client = -1;
    int server = -1;
  };
  std::vector<Pair> pairs;
  std::size_t forwarded = 0;  // server-to-client bytes
  auto close_pair = [](Pair& pair) {
    if (pair.client >= 0) ::close(pair.client);
    if (pair.server >= 0) ::close(pair.server);
    pair.client = pair.server = -1;
  };

  while (true) {
    const bool stalled = fault_.kind == ProxyFault::Kind::kStall && faulted_.load();
    std::vector<pollfd> fds;
    fds.push_back({wake_read_, POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    for (const Pair& pair : pairs) {
      // A stalled proxy reads nothing more, so both sides just wait.
      short events = stalled ? 0 : POLLIN;
      fds.push_back({pair.client, events, 0});
      fds.push_back({pair.server, events, 0});
    }
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents != 0) {
      char byte = 0;
      if (::read(wake_read_, &byte, 1) != 1 || byte == 0) break;
      // CutNow(): every open connection is closed; new ones are served.
      for (Pair& pair : pairs) close_pair(pair);
      std::erase_if(pairs, [](const Pair& pair) { return pair.client < 0; });
      continue;
    }
    const std::size_t polled = pairs.size();  // a pair accepted now is polled next round
    if ((fds[1].revents & POLLIN) != 0) {
      int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client >= 0) {
        ++connections_;
        int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in upstream = Loopback(upstream_port_);
        if (server < 0 ||
            ::connect(server, reinterpret_cast<sockaddr*>(&upstream), sizeof upstream) != 0) {
          if (server >= 0) ::close(server);
          ::close(client);
        } else {
          pairs.push_back({client, server});
        }
      }
    }
    if (fault_.kind != ProxyFault::Kind::kNone && forwarded >= fault_.after_bytes) {
      faulted_ = true;
    }
    for (std::size_t i = 0; i < polled; ++i) {
      Pair& pair = pairs[i];
      const pollfd& client = fds[2 + 2 * i];
      const pollfd& server = fds[3 + 2 * i];
      if (pair.client < 0) continue;
      char buffer[16384];
      if ((client.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        ssize_t n = ::recv(pair.client, buffer, sizeof buffer, 0);
        if (n <= 0 || !WriteAll(pair.server, buffer, static_cast<std::size_t>(n))) {
          close_pair(pair);
          continue;
        }
      }
      if ((server.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        std::size_t room = fault_.kind == ProxyFault::Kind::kNone
                               ? sizeof buffer
                               : std::min(sizeof buffer, fault_.after_bytes - forwarded);
        ssize_t n = room == 0 ? 0 : ::recv(pair.server, buffer, room, 0);
        if (n > 0) forwarded += static_cast<std::size_t>(n);
        if (n <= 0 || !WriteAll(pair.client, buffer, static_cast<std::size_t>(n))) {
          if (room != 0) close_pair(pair);
        }
      }
      if (fault_.kind != ProxyFault::Kind::kNone && forwarded >= fault_.after_bytes &&
          !faulted_.load()) {
        faulted_ = true;
      }
    }
    if (faulted_.load() && fault_.kind == ProxyFault::Kind::kCut) {
      for (Pair& pair : pairs) close_pair(pair);
    }
    std::erase_if(pairs, [](const Pair& pair) { return pair.client < 0; });
  }
  for (Pair& pair : pairs) close_pair(pair);
}

}  // namespace idsync::ldap::testing
