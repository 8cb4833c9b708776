// One bound connection of the `ldap` source to a directory server, and the
// calls the full read and every change feed make over it: opening (the
// configured URLs in order, our own bounded TCP connect, TLS / StartTLS,
// simple or SASL EXTERNAL bind, a root DSE read that also learns the
// server's supportedControl), searches whose waits are bounded by `timeout`
// and backed by a watchdog thread, paged searches (RFC 2696), and the
// mapping of LDAP result codes to Status.
//
// Private to connectors/ldap: libldap types appear here on purpose. A
// Connection is used from one thread at a time; only Watchdog is shared with
// its own helper thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <lber.h>
#include <ldap.h>
#include <sys/time.h>

#include "idsync/base/status.h"
#include "idsync/ldap/ldap_config.h"

#include "ldap_util.h"

namespace idsync::ldap::internal {

using SteadyClock = std::chrono::steady_clock;

struct LdapDeleter {
  void operator()(LDAP* ld) const { ldap_unbind_ext_s(ld, nullptr, nullptr); }
};
// An owned libldap handle; destroying it unbinds and closes the socket.
using LdapHandle = std::unique_ptr<LDAP, LdapDeleter>;

struct MessageDeleter {
  void operator()(LDAPMessage* message) const { ldap_msgfree(message); }
};
// One owned message from ldap_result (LDAP_MSG_ONE).
using Message = std::unique_ptr<LDAPMessage, MessageDeleter>;

struct MemDeleter {
  void operator()(char* text) const { ldap_memfree(text); }
};
// A string libldap allocated.
using LdapString = std::unique_ptr<char, MemDeleter>;

struct ValuesDeleter {
  void operator()(berval** values) const { ldap_value_free_len(values); }
};
struct ControlDeleter {
  void operator()(LDAPControl* control) const { ldap_control_free(control); }
};
struct ControlsDeleter {
  void operator()(LDAPControl** controls) const { ldap_controls_free(controls); }
};
struct ReferralsDeleter {
  void operator()(char** referrals) const { ber_memvfree(reinterpret_cast<void**>(referrals)); }
};
struct BerDeleter {
  void operator()(BerElement* ber) const { ber_free(ber, 0); }
};

// Blocks SIGPIPE in the calling thread while the source talks to the server
// and swallows one that a write to a closed connection raised: a server
// going away must fail the read, not kill the daemon, and a library should
// not change the process's signal handling. Hold one around every call.
class SigpipeGuard {
 public:
  SigpipeGuard();
  ~SigpipeGuard();
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool was_pending_ = false;
};

// A duration as a timeval (negative: zero).
timeval ToTimeval(std::chrono::microseconds duration);

// The handle's last result code (LDAP_OPT_RESULT_CODE).
int ResultCode(LDAP* ld);

// The handle's diagnostic message, or "".
std::string Diagnostic(LDAP* ld);

// "what: <the result code's text> (<diagnostic>)" with the code's canonical
// status (CodeForLdapResult; kInternal for success). Never given a secret.
Status LdapError(int result_code, const std::string& what, const std::string& diagnostic);

// The parts joined with `separator`.
std::string Join(const std::vector<std::string>& parts, std::string_view separator);

// Shuts a socket down when a deadline passes, so that a call blocked inside
// libldap or GnuTLS returns. libldap bounds its waits for whole messages,
// but not a read inside a TLS record or handshake. One thread per
// connection, idle unless armed. Arm/Disarm from the connection's thread.
class Watchdog {
 public:
  explicit Watchdog(int fd);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  void Arm(SteadyClock::time_point deadline);
  void Disarm();
  // Shuts the socket down now (from any thread): a blocked call returns.
  void FireNow();
  // True once the socket was shut down.
  bool fired() const { return fired_.load(); }

 private:
  void Run();

  const int fd_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::optional<SteadyClock::time_point> deadline_;
  bool stop_ = false;
  std::atomic<bool> fired_{false};
  std::thread thread_;
};

// Arms a watchdog for one scope.
class Armed {
 public:
  Armed(Watchdog& watchdog, SteadyClock::time_point deadline) : watchdog_(watchdog) {
    watchdog_.Arm(deadline);
  }
  ~Armed() { watchdog_.Disarm(); }
  Armed(const Armed&) = delete;
  Armed& operator=(const Armed&) = delete;

 private:
  Watchdog& watchdog_;
};

// Time a call blocked inside libldap gets beyond its own deadline before the
// watchdog ends it; libldap's own timeout normally ends it first.
inline constexpr std::chrono::milliseconds kWatchdogGrace(200);

// A connected, secured and bound handle. `watchdog` is declared last, so
// destroyed first: it must never shut down a socket number libldap has
// closed and reused. Destroy it under a SigpipeGuard (the unbind writes).
struct Connection {
  LdapHandle ld;
  std::string url;                              // the URL it is connected to
  std::vector<std::string> supported_controls;  // the root DSE's supportedControl
  std::unique_ptr<Watchdog> watchdog;

  // True when the root DSE listed `oid`.
  bool Supports(std::string_view oid) const;
};

// Opens a connection to the first of `source.urls` that can be reached.
// Only an unreachable URL (kUnavailable, kDeadlineExceeded) sends it to the
// next; a refused bind fails at once. Errors name the source and URL(s),
// never the password; codes as LdapSource::Read documents. Blocks, each
// connect bounded by connect_timeout and the rest by timeout.
Result<std::unique_ptr<Connection>> OpenConnection(const LdapConfig& source);

// Opens a connection to `url` (one of source.urls) alone, as OpenConnection
// does: a second connection to the server another one already uses.
Result<std::unique_ptr<Connection>> OpenConnectionTo(const LdapConfig& source,
                                                     const std::string& url);

// One conversation with the server: searches with deadlines, entries handed
// to a callback, every failure turned into a Status that names the source,
// the URL and the search. Borrows the source and the connection.
class Session {
 public:
  using EntryFn = std::function<Status(LDAPMessage* entry)>;

  // `pages`, when not null, counts the paged-results pages received.
  Session(const LdapConfig& source, Connection& connection, std::size_t* pages);

  LDAP* ld() const { return ld_; }
  Watchdog& watchdog() const { return watchdog_; }
  const LdapConfig& source() const { return source_; }

  // A status of `code` whose message is prefixed with the source and URL.
  Status Error(StatusCode code, const std::string& message) const;
  // LdapError(result_code, what, diagnostic), prefixed the same way.
  Status Ldap(int result_code, const std::string& what, const std::string& diagnostic) const;

  // Runs one search to its end. With `paged`, pages of page_size with the
  // paged-results control marked critical, until the server returns an empty
  // cookie. A reference, a result code other than success, a missing page
  // control, a timeout or a lost connection is an error.
  Status Search(const std::string& what, const std::string& base, int scope,
                const std::string& filter, const std::vector<std::string>& attributes, bool paged,
                const EntryFn& on_entry);

  // Waits for the messages of one search operation, handing entries to
  // `on_entry`, until its final result, which goes to `*done`. Each wait is
  // bounded by `timeout` from the call. A reference fails it.
  Status Collect(const std::string& what, int message_id, const EntryFn& on_entry,
                 std::size_t* entries, Message* done);

  // Parses a search's final result: success, or an error for a referral or
  // any other code. `*controls`, when not null, receives the response
  // controls (owned by the caller).
  Status CheckResult(const std::string& what, const std::string& base, LDAPMessage* done,
                     LDAPControl*** controls);

  // " to url1, url2" for a referral list, or "".
  static std::string ReferralText(char** referrals);

 private:
  const LdapConfig& source_;
  LDAP* ld_;
  Watchdog& watchdog_;
  std::string prefix_;
  std::size_t* pages_;
};

// One entry read in a single pass over its message, nothing copied: the DN
// and each attribute's values as they sit in the message, valid until the
// message is freed or the next Read. The full read uses it on every entry;
// looking attributes up one by one (ldap_get_values_len) rescans the entry
// and copies each value. Reuse one reader for many entries.
class EntryReader {
 public:
  struct Attribute {
    std::string_view description;  // "member;range=0-1499" as the server wrote it
    const berval* values;          // `count` of them
    std::size_t count;
  };

  EntryReader() = default;
  ~EntryReader() { Clear(); }
  EntryReader(const EntryReader&) = delete;
  EntryReader& operator=(const EntryReader&) = delete;

  // Reads `entry`; the error names the session's source and URL.
  Status Read(const Session& session, LDAPMessage* entry);

  std::string_view dn() const { return dn_; }
  const std::vector<Attribute>& attributes() const { return attributes_; }
  // The first attribute whose description is `description`
  // (case-insensitively), or null.
  const Attribute* Find(std::string_view description) const;
  // Its first value, or "".
  std::string_view First(std::string_view description) const;

 private:
  void Clear();

  std::string_view dn_;
  std::vector<Attribute> attributes_;
  std::vector<berval*> arrays_;  // the value arrays libldap allocated
  BerElement* ber_ = nullptr;
};

// As EntryId, from a read entry.
Result<std::string> EntryId(const Session& session, const EntryReader& entry,
                            const std::string& attribute, std::string_view dn);

// As UserId, from a read entry.
Result<std::string> UserId(const Session& session, const EntryReader& entry, std::string_view dn);

// The entry's DN.
Result<std::string> EntryDn(const Session& session, LDAPMessage* entry);

// Every value of `attribute` in the entry (none: empty).
std::vector<std::string> Values(LDAP* ld, LDAPMessage* entry, const std::string& attribute);

// The first value of `attribute`, or "".
std::string First(LDAP* ld, LDAPMessage* entry, const std::string& attribute);

// Every attribute description the entry carries ("member;range=0-1499"
// included), in order.
Result<std::vector<std::string>> Descriptions(const Session& session, LDAPMessage* entry);

// The stable id of an entry: `attribute`'s first value, a GUID rendered as
// text (objectGUID under the AD flavor). "" when the entry has none.
Result<std::string> EntryId(const Session& session, LDAPMessage* entry,
                            const std::string& attribute, const std::string& dn);

// A user's id as the full read computes it: users.id when set and present,
// else the flavor's id attribute.
Result<std::string> UserId(const Session& session, LDAPMessage* entry, const std::string& dn);

}  // namespace idsync::ldap::internal
