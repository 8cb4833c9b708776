#include "fake_ldap_server.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include <arpa/inet.h>
#include <fcntl.h>
#include <lber.h>
#include <ldap.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace idsync::ldap::testing {
namespace {

struct BerDeleter {
  void operator()(BerElement* ber) const { ber_free(ber, 1); }
};
using Ber = std::unique_ptr<BerElement, BerDeleter>;

// Reads exactly `size` bytes unless the peer closes or the wake pipe fires.
bool ReadFull(int fd, int wake, char* out, std::size_t size) {
  while (size > 0) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {wake, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (fds[1].revents != 0) return false;
    ssize_t n = ::recv(fd, out, size, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    out += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// One whole BER-encoded LDAPMessage (tag, length and content).
std::optional<std::string> ReadMessage(int fd, int wake) {
  char head[2];
  if (!ReadFull(fd, wake, head, 2)) return std::nullopt;
  std::string message(head, 2);
  std::size_t length = static_cast<unsigned char>(head[1]);
  if ((length & 0x80) != 0) {
    std::size_t count = length & 0x7f;
    if (count == 0 || count > 4) return std::nullopt;
    std::string bytes(count, '\0');
    if (!ReadFull(fd, wake, bytes.data(), count)) return std::nullopt;
    message += bytes;
    length = 0;
    for (char c : bytes) length = (length << 8) | static_cast<unsigned char>(c);
  }
  std::string content(length, '\0');
  if (length > 0 && !ReadFull(fd, wake, content.data(), length)) return std::nullopt;
  return message + content;
}

bool Send(int fd, BerElement* ber) {
  berval* flat = nullptr;
  if (ber_flatten(ber, &flat) != 0) return false;
  const char* data = flat->bv_val;
  std::size_t size = flat->bv_len;
  bool ok = true;
  while (size > 0) {
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      break;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  ber_bvfree(flat);
  return ok;
}

std::string ToString(const berval& value) {
  return value.bv_val == nullptr ? std::string() : std::string(value.bv_val, value.bv_len);
}

bool SendEntry(int fd, ber_int_t id, const FakeEntry& entry) {
  Ber ber(ber_alloc_t(LBER_USE_DER));
  ber_printf(ber.get(), "{it{s{", id, LDAP_RES_SEARCH_ENTRY, entry.dn.c_str());
  for (const auto& [name, values] : entry.attributes) {
    ber_printf(ber.get(), "{s[", name.c_str());
    for (const std::string& v : values) {
      ber_printf(ber.get(), "o", v.data(), static_cast<ber_len_t>(v.size()));
    }
    ber_printf(ber.get(), "]}");
  }
  ber_printf(ber.get(), "}}}");
  return Send(fd, ber.get());
}

bool SendDone(int fd, ber_int_t id, const FakeSearch* search, const FakeAnswer& answer) {
  Ber ber(ber_alloc_t(LBER_USE_DER));
  ber_printf(ber.get(), "{it{ess}", id, LDAP_RES_SEARCH_RESULT,
             static_cast<ber_int_t>(answer.result_code), "", answer.diagnostic.c_str());
  if (search != nullptr && search->paged && answer.page_control) {
    Ber value(ber_alloc_t(LBER_USE_DER));
    berval cookie{};
    cookie.bv_val = const_cast<char*>(answer.next_cookie.data());
    cookie.bv_len = answer.next_cookie.size();
    ber_printf(value.get(), "{iO}", static_cast<ber_int_t>(0), &cookie);
    berval* flat = nullptr;
    ber_flatten(value.get(), &flat);
    ber_printf(ber.get(), "t{{sO}}", LDAP_TAG_CONTROLS, LDAP_CONTROL_PAGEDRESULTS, flat);
    ber_bvfree(flat);
  }
  ber_printf(ber.get(), "}");
  return Send(fd, ber.get());
}

sockaddr_in Loopback(std::uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  return address;
}

}  // namespace

FakeAnswer PageOf(const std::vector<FakeEntry>& entries, const FakeSearch& search) {
  std::size_t offset = search.cookie.empty() ? 0 : std::stoul(search.cookie);
  std::size_t size = search.page_size > 0 ? static_cast<std::size_t>(search.page_size) : 1000;
  FakeAnswer answer;
  std::size_t end = std::min(entries.size(), offset + size);
  for (std::size_t i = offset; i < end; ++i) answer.entries.push_back(entries[i]);
  if (end < entries.size()) answer.next_cookie = std::to_string(end);
  return answer;
}

Result<std::unique_ptr<FakeLdapServer>> FakeLdapServer::Start(Handler handler, bool concurrent) {
  std::unique_ptr<FakeLdapServer> server(new FakeLdapServer());
  server->handler_ = std::move(handler);
  server->concurrent_ = concurrent;
  server->listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (server->listen_fd_ < 0) return InternalError(std::string("socket: ") + std::strerror(errno));
  sockaddr_in address = Loopback(0);
  socklen_t length = sizeof address;
  if (::bind(server->listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(server->listen_fd_, 8) != 0 ||
      ::getsockname(server->listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    return InternalError(std::string("listen: ") + std::strerror(errno));
  }
  server->port_ = ntohs(address.sin_port);
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return InternalError(std::string("pipe: ") + std::strerror(errno));
  }
  server->wake_read_ = pipe_fds[0];
  server->wake_write_ = pipe_fds[1];
  server->thread_ = std::thread([s = server.get()] { s->Run(); });
  return server;
}

FakeLdapServer::~FakeLdapServer() {
  if (thread_.joinable()) {
    char byte = 0;
    (void)!::write(wake_write_, &byte, 1);
    thread_.join();
  }
  for (int fd : {listen_fd_, wake_read_, wake_write_}) {
    if (fd >= 0) ::close(fd);
  }
}

std::vector<FakeSearch> FakeLdapServer::searches() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return searches_;
}

void FakeLdapServer::Run() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_read_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents != 0) break;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    // Each message goes out in its own small writes; without this, Nagle's
    // algorithm and delayed acknowledgements add tens of milliseconds each.
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (concurrent_) {
      // (Serve stops when the wake pipe fires, which it never drains.)
      connections_.emplace_back([this, fd] {
        Serve(fd);
        ::close(fd);
      });
      continue;
    }
    bool keep_going = Serve(fd);
    ::close(fd);
    if (!keep_going) break;
  }
  for (std::thread& connection : connections_) connection.join();
}

bool FakeLdapServer::Serve(int fd) {
  while (true) {
    std::optional<std::string> message = ReadMessage(fd, wake_read_);
    if (!message) {
      pollfd wake{wake_read_, POLLIN, 0};
      return ::poll(&wake, 1, 0) == 0;
    }
    berval raw{};
    raw.bv_val = message->data();
    raw.bv_len = message->size();
    Ber ber(ber_init(&raw));
    ber_int_t id = 0;
    ber_len_t length = 0;
    if (ber_scanf(ber.get(), "{i", &id) == LBER_ERROR) return true;
    ber_tag_t op = ber_peek_tag(ber.get(), &length);
    if (op == LDAP_REQ_UNBIND) return true;
    if (op == LDAP_REQ_BIND) {
      Ber reply(ber_alloc_t(LBER_USE_DER));
      ber_printf(reply.get(), "{it{ess}}", id, LDAP_RES_BIND, static_cast<ber_int_t>(0), "", "");
      if (!Send(fd, reply.get())) return true;
      continue;
    }
    if (op != LDAP_REQ_SEARCH) continue;  // abandon and the rest need no answer

    FakeSearch search;
    berval base{};
    ber_int_t scope = 0, deref = 0, size_limit = 0, time_limit = 0, types_only = 0;
    BerVarray attributes = nullptr;
    if (ber_scanf(ber.get(), "{meeiibx{W}}", &base, &scope, &deref, &size_limit, &time_limit,
                  &types_only, &attributes) == LBER_ERROR) {
      return true;
    }
    search.base = ToString(base);
    search.scope = scope;
    for (BerVarray a = attributes; a != nullptr && a->bv_val != nullptr; ++a) {
      search.attributes.push_back(ToString(*a));
    }
    ber_bvarray_free(attributes);
    if (ber_peek_tag(ber.get(), &length) == LDAP_TAG_CONTROLS) {
      char* last = nullptr;
      for (ber_tag_t tag = ber_first_element(ber.get(), &length, &last); tag != LBER_DEFAULT;
           tag = ber_next_element(ber.get(), &length, last)) {
        berval oid{};
        berval value{};
        ber_int_t critical = 0;
        ber_scanf(ber.get(), "{m", &oid);
        if (ber_peek_tag(ber.get(), &length) == LBER_BOOLEAN) ber_scanf(ber.get(), "b", &critical);
        if (ber_peek_tag(ber.get(), &length) == LBER_OCTETSTRING) ber_scanf(ber.get(), "m", &value);
        ber_scanf(ber.get(), "}");
        if (ToString(oid) != LDAP_CONTROL_PAGEDRESULTS) continue;
        Ber page(ber_init(&value));
        ber_int_t page_size = 0;
        berval cookie{};
        ber_scanf(page.get(), "{im}", &page_size, &cookie);
        search.paged = true;
        search.paged_critical = critical != 0;
        search.page_size = page_size;
        search.cookie = ToString(cookie);
      }
    }

    if (search.base.empty()) {
      // The connection probe's root DSE read.
      if (!SendDone(fd, id, nullptr, FakeAnswer{})) return true;
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      searches_.push_back(search);
    }
    FakeAnswer answer = handler_(search);
    for (const FakeEntry& entry : answer.entries) {
      if (!SendEntry(fd, id, entry)) return true;
    }
    if (!SendDone(fd, id, &search, answer)) return true;
  }
}

}  // namespace idsync::ldap::testing
