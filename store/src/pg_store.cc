// The PostgreSQL store: the session, its migrations and the shared parts.

#include "pg_store.h"

#include <utility>

#include "pg_schema.h"
#include "sql_parts.h"

namespace idsync::store::pg {
namespace {

class PgStore final : public Store {
 public:
  explicit PgStore(std::unique_ptr<PgSession> session)
      : session_(std::move(session)), parts_(*session_) {}

  RunLog& runs() override { return parts_.runs; }
  Outbox& outbox() override { return parts_.outbox; }
  AccountMirror& mirror() override { return parts_.mirror; }
  AuditLog& audit() override { return parts_.audit; }
  ScimResources& scim() override { return parts_.scim; }
  SourceState& sources() override { return parts_.sources; }
  AccountCache& account_cache() override { return parts_.account_cache; }

 private:
  std::unique_ptr<PgSession> session_;
  internal::Parts parts_;
};

}  // namespace

Result<std::unique_ptr<Store>> OpenPgStore(ConnectOptions options) {
  std::unique_ptr<PgSession> session = NewPgSession(std::move(options));
  {
    std::lock_guard lock(session->mu);
    RETURN_IF_ERROR(session->Connect());
  }
  RETURN_IF_ERROR(ApplyPgMigrations(*session, PgMigrations())
                      .WithContext("PostgreSQL store at " + session->Describe()));
  return std::unique_ptr<Store>(std::make_unique<PgStore>(std::move(session)));
}

}  // namespace idsync::store::pg
