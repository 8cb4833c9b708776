// The PostgreSQL store: the session, its migrations and the shared parts.

#include "pg_store.h"

#include <mutex>
#include <utility>

#include "pg_schema.h"
#include "sql_parts.h"

namespace idsync::store::pg {

Result<std::unique_ptr<Store>> OpenPgStore(ConnectOptions options) {
  ConnectOptions lease_options = options;
  lease_options.application_name += " lease";
  std::unique_ptr<PgSession> session = NewPgSession(std::move(options));
  {
    std::lock_guard lock(session->mu);
    RETURN_IF_ERROR(session->Connect());
  }
  RETURN_IF_ERROR(ApplyPgMigrations(*session, PgMigrations())
                      .WithContext("PostgreSQL store at " + session->Describe()));
  // The lease has a connection of its own (connected when first used), so
  // that a renewal never waits behind the parts' work or their lost
  // connection.
  std::unique_ptr<PgSession> lease_session = NewPgSession(std::move(lease_options));
  return std::unique_ptr<Store>(
      std::make_unique<internal::SqlStore>(std::move(session), std::move(lease_session)));
}

}  // namespace idsync::store::pg
