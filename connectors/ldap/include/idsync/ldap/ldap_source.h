// The `ldap` source: users and groups read from OpenLDAP or Active Directory
// over LDAP (contracts/config.md, `type: ldap`), each Read() one complete
// snapshot or an error.
//
// Connection: the configured URLs are tried in order, the next one only when
// a URL cannot be reached (connect, TLS or StartTLS failure, or no answer in
// time); a bind that the server refuses is not retried elsewhere. TLS
// certificates and host names are verified unless tls.verify is false. A
// password bind over plain ldap:// without StartTLS is refused unless
// allow_insecure is set.
//
// Reading: every search is a paged search (RFC 2696, critical) asking only
// for the attributes needed; disabled users are those the server finds with
// (&(users.filter)(users.disabled_filter)); Active Directory's ranged
// `member;range=...` values are fetched to the end. Fail closed: any error,
// limit, referral, timeout, dropped connection or incomplete page sequence
// fails the whole Read(); a partial snapshot is never returned.
//
// The connection is kept between reads and made afresh when it failed, when
// it was unused for idle_timeout, or when a kept one turns out to be dead.
// A read of a large directory reads the groups on a second connection to
// the same server while the users are read (closed after the read); a
// failure on either fails the read and stops the other at once.
// An open connection has one idle helper thread, a watchdog that shuts the
// socket down when a call stays blocked past its timeout (libldap does not
// bound a read inside a TLS record or handshake). An LdapSource is used from
// one thread at a time. No libldap type appears here.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "idsync/ldap/ldap_config.h"
#include "idsync/mapping/ports.h"

namespace idsync::ldap {
namespace internal {
struct Connection;
}  // namespace internal

// What the last successful read saw, for logs and metrics.
struct LdapStats {
  std::string url;                     // the URL that served the read
  std::size_t users = 0;               // user entries in the snapshot
  std::size_t disabled_users = 0;      // of those, matched by users.disabled_filter
  std::size_t groups = 0;              // group entries in the snapshot
  std::size_t pages = 0;               // paged-results pages received, all searches together
  std::size_t ranged_fetches = 0;      // extra searches for ranged `member` values
  std::size_t unresolved_members = 0;  // member values naming no user or group read
  std::size_t invalid_member_dns = 0;  // member values that are not valid DNs
  bool reconnected = false;            // a kept connection was dead and the read used a new one
  bool parallel_groups = false;        // the groups came over a second connection
};

// Knobs for tests; production code uses the defaults.
struct LdapSourceOptions {
  // Monotonic clock for idle_timeout; unset: std::chrono::steady_clock.
  std::function<std::chrono::steady_clock::time_point()> now;
  // Once a read has seen more users than this, the groups are read at the
  // same time on a second connection to the same server.
  std::size_t parallel_groups_after = 2000;
};

class LdapSource : public mapping::IdentitySource {
 public:
  // Checks `source` without touching the network. kInvalidArgument naming the
  // source for: no URL, a URL that is not ldap://, ldaps:// or ldapi://, a
  // password bind that a URL would send in clear (ldap:// without
  // tls.start_tls and without allow_insecure), an empty password, SASL
  // EXTERNAL over TCP without a client certificate, a users.base or
  // groups.base that is not a DN, a non-positive page size or timeout.
  static Result<std::unique_ptr<LdapSource>> Create(const LdapConfig& source);
  static Result<std::unique_ptr<LdapSource>> Create(const LdapConfig& source,
                                                    LdapSourceOptions options);

  ~LdapSource() override;
  LdapSource(const LdapSource&) = delete;
  LdapSource& operator=(const LdapSource&) = delete;

  const std::string& name() const override { return source_.name; }

  // One full read; blocks on the network (each operation bounded by
  // `timeout`, each connect by `connect_timeout`). Errors name the source, the
  // URL and what failed, never the password:
  //  kUnavailable       no URL reachable, TLS/StartTLS failure, connection lost
  //  kDeadlineExceeded  no answer in time, or the server's time limit hit
  //  kUnauthenticated   bad credentials or authentication method
  //  kPermissionDenied  the server refused the bind or search for this identity
  //  kResourceExhausted the server's size or administrative limit hit
  //  kFailedPrecondition a referral (never followed), or a critical control
  //                     (paged results) the server does not support
  //  kNotFound          users.base or groups.base does not exist
  //  kInvalidArgument   the server rejected a filter or attribute
  //  kInternal          a protocol oddity (missing paging control, bad GUID, ...)
  Result<mapping::SourceSnapshot> Read() override;

  // Starts following changes (`watch: true`), resuming from what an earlier
  // feed of this source saved in `state` (which must outlive the feed).
  // Opens its own connection and reads the root DSE's supportedControl to
  // pick the method: OpenLDAP with the sync control: RFC 4533
  // refreshAndPersist ("syncrepl", falling back to refreshOnly polling every
  // watch_interval, "syncrepl-poll"); Active Directory: DirSync when listed,
  // else uSNChanged polling; otherwise modifyTimestamp polling. Blocks while
  // connecting. kFailedPrecondition when watch is off; connection errors as
  // Read() documents. The feed is independent of this source object.
  Result<std::unique_ptr<mapping::ChangeFeed>> Follow(mapping::FeedStateStore& state) override;

  // The counts of the last successful Read().
  const LdapStats& last_stats() const { return last_stats_; }

 private:
  LdapSource(LdapConfig source, LdapSourceOptions options);

  // One attempt at a read on the current connection (made if missing).
  Result<mapping::SourceSnapshot> ReadOnce(LdapStats* stats);
  Status Connect();
  std::chrono::steady_clock::time_point Now() const;

  LdapConfig source_;
  LdapSourceOptions options_;
  std::unique_ptr<internal::Connection> connection_;
  std::chrono::steady_clock::time_point last_used_;
  LdapStats last_stats_;
};

}  // namespace idsync::ldap
