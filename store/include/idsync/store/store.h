// The store: idsync's single source of durable state, split by the parts of
// idsync that use it:
//
//   RunLog         the runs and their results          (run_log.h)
//   Outbox         planned account writes               (outbox.h)
//   AccountMirror  the account as last seen; managed    (account_mirror.h)
//   AuditLog       the hash chain of changes made       (audit_log.h)
//   ScimResources  what identity providers pushed       (scim_resources.h)
//   SourceState    each source's last read, health, feed cursor (source_state.h)
//   AccountCache   the account's catalog and projects   (account_cache.h)
//   Lease          which process leads, and the fence   (lease.h)
//   ConsoleSessions  sign-ins to the web console        (console_sessions.h)
//
// A backend implements the parts and holds the policy of none: what a write
// changes, who becomes managed, how the audit chain is checked are decided
// by the callers (and by VerifyAuditChain). SQLite is the embedded backend
// (one file, WAL, versioned schema migrations); PostgreSQL is the shared
// one that several replicas use together. Every part is thread-safe
// and blocks on I/O; its failures of the database itself carry the payload
// kStageKey = kStageStore (base/status.h). Times are milliseconds since the
// Unix epoch, given by the caller, so that tests control them.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "idsync/base/status.h"
#include "idsync/store/account_cache.h"
#include "idsync/store/account_mirror.h"
#include "idsync/store/audit_log.h"
#include "idsync/store/console_sessions.h"
#include "idsync/store/lease.h"
#include "idsync/store/outbox.h"
#include "idsync/store/run_log.h"
#include "idsync/store/scim_resources.h"
#include "idsync/store/source_state.h"

namespace idsync::store {

// Where the store is and how to reach it.
struct StoreOptions {
  // "sqlite:///var/lib/idsync/state.db", "sqlite://relative/path.db", or a
  // libpq URI "postgresql://user@host:port/db?sslmode=verify-full". Never
  // echoed in a message: it may hold a password.
  std::string url;
  // PostgreSQL only: the password, overriding the URL's (PGPASSFILE and
  // PGPASSWORD work too, as for any libpq client).
  std::string password;
  // PostgreSQL only: the session's application_name, which names the
  // replica in pg_stat_activity.
  std::string application_name = "idsync";
  // PostgreSQL only: the longest one call may wait for the server before
  // its connection is dropped and it fails with kUnavailable.
  std::chrono::milliseconds call_timeout{30000};
};

// The store URL as messages may show it: a sqlite:// URL as is; a
// postgresql:// URL as scheme://host:port/database, with neither the user's
// password nor the query (which may hold one).
std::string RedactedStoreUrl(std::string_view url);

class Store {
 public:
  virtual ~Store() = default;

  // Opens (creating if needed) the store; runs pending schema migrations
  // (on PostgreSQL under an advisory lock: one process migrates, others
  // wait). kInvalidArgument for another scheme; kUnavailable when the file
  // cannot be opened or written, or the server cannot be reached or
  // refuses; kFailedPrecondition when its schema is newer than this build
  // knows (or the file is not an SQLite database). A new SQLite file is
  // created with mode 0600; its directory must exist.
  static Result<std::unique_ptr<Store>> Open(const StoreOptions& options);
  static Result<std::unique_ptr<Store>> Open(const std::string& url) {
    StoreOptions options;
    options.url = url;
    return Open(options);
  }

  // The parts; each lives as long as the store.
  virtual RunLog& runs() = 0;
  virtual Outbox& outbox() = 0;
  virtual AccountMirror& mirror() = 0;
  virtual AuditLog& audit() = 0;
  virtual ScimResources& scim() = 0;
  virtual SourceState& sources() = 0;
  virtual AccountCache& account_cache() = 0;
  virtual Lease& lease() = 0;
  virtual ConsoleSessions& console_sessions() = 0;

  // From now on every leader-only write checks `fence` in its transaction
  // (lease.h); nullopt: no check (one process alone on the store, tests).
  virtual void SetFence(std::optional<Fence> fence) = 0;
};

}  // namespace idsync::store
