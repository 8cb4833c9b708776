// A scripted LDAP server on loopback for what slapd cannot show: Active
// Directory's binary objectGUID and ranged `member;range=...` values, and a
// server that misbehaves while paging (no page control, a repeated cookie,
// an error on a later page). It speaks just enough LDAPv3 (BER through
// liblber): binds always succeed, searches are answered by a handler, and
// every search is logged with its paged-results control. Serves one
// connection at a time on its own thread (or, when started concurrent,
// each connection on a thread of its own, the handler called from any of
// them); the public methods are thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "idsync/base/status.h"

namespace idsync::ldap::testing {

struct FakeEntry {
  std::string dn;
  // Attribute descriptions as sent (e.g. "member;range=0-1499") and values.
  std::vector<std::pair<std::string, std::vector<std::string>>> attributes;
};

// One search as the client sent it.
struct FakeSearch {
  std::string base;
  int scope = 0;
  std::vector<std::string> attributes;
  bool paged = false;  // a paged-results control was attached
  bool paged_critical = false;
  int page_size = 0;
  std::string cookie;
};

// How to answer one search.
struct FakeAnswer {
  std::vector<FakeEntry> entries;
  int result_code = 0;
  std::string diagnostic;
  bool page_control = true;  // attach a paged-results response (when the search was paged)
  std::string next_cookie;   // in that control; empty: the last page
};

class FakeLdapServer {
 public:
  using Handler = std::function<FakeAnswer(const FakeSearch&)>;

  // Listens on 127.0.0.1, a free port. Root DSE reads (base "") get an empty
  // success without reaching the handler.
  static Result<std::unique_ptr<FakeLdapServer>> Start(Handler handler, bool concurrent = false);
  ~FakeLdapServer();

  std::string url() const { return "ldap://127.0.0.1:" + std::to_string(port_); }
  // Every search but root DSE reads, in order.
  std::vector<FakeSearch> searches() const;

 private:
  FakeLdapServer() = default;
  void Run();
  bool Serve(int fd);  // false when asked to stop

  Handler handler_;
  bool concurrent_ = false;
  std::vector<std::thread> connections_;  // concurrent: one per connection
  std::uint16_t port_ = 0;
  int listen_fd_ = -1;
  int wake_read_ = -1;
  int wake_write_ = -1;
  mutable std::mutex mutex_;
  std::vector<FakeSearch> searches_;
  std::thread thread_;
};

// Paged-results responses for `entries` cut into pages of the client's
// page size, the cookie being the offset of the next page.
FakeAnswer PageOf(const std::vector<FakeEntry>& entries, const FakeSearch& search);

}  // namespace idsync::ldap::testing
