#include "idsync/store/store.h"

#include <string_view>

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

Result<std::unique_ptr<Store>> Store::Open(const std::string& url) {
  constexpr std::string_view kSqlite = "sqlite://";
  std::string_view view = url;
  // Only the scheme is ever echoed: a database URL may carry a password.
  if (view.starts_with("postgresql://") || view.starts_with("postgres://")) {
    return InvalidArgumentError("postgresql stores are not supported yet");
  }
  if (!view.starts_with(kSqlite)) {
    std::string_view scheme = view.substr(0, view.find(':'));
    return InvalidArgumentError(
        "store URL scheme \"" + std::string(scheme) +
        "\" is not supported: expected sqlite:///absolute/path.db or sqlite://relative/path.db");
  }
  // "sqlite:///var/lib/x.db" keeps its leading '/' (absolute); "sqlite://x.db"
  // is relative to the working directory.
  std::string path(view.substr(kSqlite.size()));
  if (path.empty() || path.back() == '/') {
    return InvalidArgumentError("store URL \"" + url + "\" names no file");
  }
  return sqlite::OpenSqliteStore(path);
}

}  // namespace idsync::store
