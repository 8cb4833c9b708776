// The PostgreSQL Session (sql_session.h) over libpq: one connection, opened
// when first needed and opened again after it is lost, every call bounded
// by a deadline. Parameters go out as text (bytes as binary bytea) with
// their types inferred by the server; rows come back as text.
//
// No password, and no connection URL (which may hold one), ever appears in
// a message: a connection is named by its host, port and database.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "idsync/base/status.h"

#include "sql_session.h"

namespace idsync::store::pg {

struct ConnectOptions {
  // A libpq connection URI (postgresql://user@host:port/db?sslmode=...) or
  // key=value string. Its settings win over the defaults below, except the
  // password.
  std::string url;
  // Overrides any password in `url`; "" leaves it to the URL, PGPASSWORD or
  // PGPASSFILE.
  std::string password;
  // application_name, so that an operator (or a test) finds the sessions.
  std::string application_name = "idsync";
  // The longest a statement (or a connection attempt) may take before the
  // connection is dropped and the call fails with kUnavailable.
  std::chrono::milliseconds call_timeout{30000};
  // The server ends a session that has waited this long inside a
  // transaction for its next statement (a paused client), releasing its
  // locks.
  std::chrono::milliseconds idle_in_transaction_timeout{5000};
};

// The PostgreSQL-specific part of a session: what the store's opening and
// the leader's lease need beyond the shared parts.
class PgSession : public internal::Session {
 public:
  // Connects if not connected; kUnavailable when the server cannot be
  // reached or refuses (authentication, missing database).
  virtual Status Connect() = 0;
  // "host:port/database", for messages.
  virtual std::string Describe() const = 0;
  // Runs one or more statements with no parameters (a migration).
  virtual Status ExecScript(std::string_view sql) = 0;
};

// A session that connects on first use.
std::unique_ptr<PgSession> NewPgSession(ConnectOptions options);

// The advisory lock keys idsync takes (pg_advisory_xact_lock).
inline constexpr std::int64_t kMigrationLockKey = 0x6964'7379'6e63'0001;   // "idsync" 1
inline constexpr std::int64_t kAuditLockKey = 0x6964'7379'6e63'0002;       // "idsync" 2
inline constexpr std::int64_t kScimChangeLockKey = 0x6964'7379'6e63'0003;  // "idsync" 3

}  // namespace idsync::store::pg
