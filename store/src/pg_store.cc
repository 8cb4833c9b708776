// The PostgreSQL store: the session, its migrations and the shared parts.

#include "pg_store.h"

#include <mutex>
#include <utility>

#include "pg_schema.h"
#include "sql_parts.h"

namespace idsync::store::pg {
namespace {

class PgStore final : public Store {
 public:
  // The lease has a connection of its own, so that a renewal never waits
  // behind the parts' work (or their lost connection).
  PgStore(std::unique_ptr<PgSession> session, std::unique_ptr<PgSession> lease_session)
      : session_(std::move(session)),
        lease_session_(std::move(lease_session)),
        parts_(*session_, *lease_session_) {}

  RunLog& runs() override { return parts_.runs; }
  Outbox& outbox() override { return parts_.outbox; }
  AccountMirror& mirror() override { return parts_.mirror; }
  AuditLog& audit() override { return parts_.audit; }
  ScimResources& scim() override { return parts_.scim; }
  SourceState& sources() override { return parts_.sources; }
  AccountCache& account_cache() override { return parts_.account_cache; }
  Lease& lease() override { return parts_.lease; }
  void SetFence(std::optional<Fence> fence) override {
    std::lock_guard lock(session_->mu);
    session_->fence = std::move(fence);
  }

 private:
  std::unique_ptr<PgSession> session_;
  std::unique_ptr<PgSession> lease_session_;
  internal::Parts parts_;
};

}  // namespace

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
  // Connects when first used.
  std::unique_ptr<PgSession> lease_session = NewPgSession(std::move(lease_options));
  return std::unique_ptr<Store>(
      std::make_unique<PgStore>(std::move(session), std::move(lease_session)));
}

}  // namespace idsync::store::pg
