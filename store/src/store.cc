#include "idsync/store/store.h"

#include <memory>
#include <set>
#include <string_view>

#include "idsync/base/ascii.h"

#include "pg_store.h"
#include "sqlite_store.h"

namespace idsync::store {

std::string_view OutboxStateName(OutboxState state) {
  switch (state) {
    case OutboxState::kPlanned:
      return "planned";
    case OutboxState::kSent:
      return "sent";
    case OutboxState::kDone:
      return "done";
    case OutboxState::kFailed:
      return "failed";
    case OutboxState::kDropped:
      return "dropped";
  }
  return "planned";
}

std::string RedactedStoreUrl(std::string_view url) {
  if (!url.starts_with("postgresql://") && !url.starts_with("postgres://")) {
    return std::string(url);
  }
  const std::size_t authority = url.find("://") + 3;
  std::string_view rest = url.substr(authority);
  rest = rest.substr(0, rest.find('?'));
  // The user info ends at the last '@' before the path.
  const std::size_t path = rest.find('/');
  const std::size_t at = rest.substr(0, path).rfind('@');
  if (at != std::string_view::npos) rest = rest.substr(at + 1);
  return std::string(url.substr(0, authority)) + std::string(rest);
}

Result<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  constexpr std::string_view kSqlite = "sqlite://";
  const std::string& url = options.url;
  std::string_view view = url;
  // Only the scheme is ever echoed: a database URL may carry a password.
  if (view.starts_with("postgresql://") || view.starts_with("postgres://")) {
    pg::ConnectOptions connect;
    connect.url = url;
    connect.password = options.password;
    connect.application_name = options.application_name;
    connect.call_timeout = options.call_timeout;
    return pg::OpenPgStore(std::move(connect));
  }
  if (!view.starts_with(kSqlite)) {
    std::string_view scheme = view.substr(0, view.find(':'));
    return InvalidArgumentError("store URL scheme \"" + std::string(scheme) +
                                "\" is not supported: expected sqlite:///absolute/path.db, "
                                "sqlite://relative/path.db or postgresql://user@host/db");
  }
  // "sqlite:///var/lib/x.db" keeps its leading '/' (absolute); "sqlite://x.db"
  // is relative to the working directory.
  std::string path(view.substr(kSqlite.size()));
  if (path.empty() || path.back() == '/') {
    return InvalidArgumentError("store URL \"" + url + "\" names no file");
  }
  return sqlite::OpenSqliteStore(path);
}

namespace {

// A write that was durable before it was handed over.
class LandedWrite final : public PendingWrite {
 public:
  Status Wait() override { return Status::Ok(); }
};

}  // namespace

Result<std::unique_ptr<PendingWrite>> ScimResources::StagePutIf(const ScimResourceRow& row,
                                                                std::int64_t stored_version) {
  RETURN_IF_ERROR(PutIf(row, stored_version));
  return std::unique_ptr<PendingWrite>(std::make_unique<LandedWrite>());
}

Result<std::unique_ptr<PendingWrite>> ScimResources::StageDelete(const std::string& source,
                                                                 const std::string& type,
                                                                 const std::string& id) {
  RETURN_IF_ERROR(Delete(source, type, id));
  return std::unique_ptr<PendingWrite>(std::make_unique<LandedWrite>());
}

Result<std::vector<mapping::AccountRecord>> AccountMirror::UsersFor(
    const std::vector<std::string>& emails) {
  ASSIGN_OR_RETURN(std::vector<mapping::AccountRecord> all, Users());
  const std::set<std::string> wanted(emails.begin(), emails.end());
  std::vector<mapping::AccountRecord> out;
  for (mapping::AccountRecord& u : all) {
    const bool admin =
        u.role == mapping::Role::kAdmin && u.status == mapping::AccountUser::Status::kActive;
    if (admin || wanted.count(base::AsciiLower(u.email)) != 0) out.push_back(std::move(u));
  }
  return out;
}

Result<std::int64_t> AccountMirror::ManagedCount() {
  ASSIGN_OR_RETURN(std::vector<ManagedUser> all, Managed());
  return static_cast<std::int64_t>(all.size());
}

Result<std::vector<ManagedUser>> AccountMirror::ManagedAmong(
    const std::vector<std::string>& user_ids) {
  ASSIGN_OR_RETURN(std::vector<ManagedUser> all, Managed());
  const std::set<std::string> wanted(user_ids.begin(), user_ids.end());
  std::vector<ManagedUser> out;
  for (ManagedUser& m : all) {
    if (wanted.count(m.user_id) != 0) out.push_back(std::move(m));
  }
  return out;
}

}  // namespace idsync::store
