#include "idsync/mapping/ports.h"

#include <algorithm>
#include <utility>

namespace idsync::mapping {

AccountUser CompactAccountUser(AccountRecord record, const Catalog& catalog) {
  AccountUser user;
  user.id = std::move(record.id);
  user.email = std::move(record.email);
  user.name = std::move(record.name);
  user.role = record.role;
  user.status = record.status;
  user.levels = catalog.ExpandLenient(record.permissions);
  user.projects = std::move(record.projects);
  std::sort(user.projects.begin(), user.projects.end());
  user.projects.erase(std::unique(user.projects.begin(), user.projects.end()), user.projects.end());
  return user;
}

Status AccountDirectory::ForEachCompactUserPage(
    const Catalog& catalog, const std::function<Status(std::vector<AccountUser>& page)>& on_page) {
  std::vector<AccountUser> compact;
  return ForEachUserPage([&](std::vector<AccountRecord>& page) -> Status {
    compact.clear();
    compact.reserve(page.size());
    for (AccountRecord& record : page) {
      compact.push_back(CompactAccountUser(std::move(record), catalog));
    }
    return on_page(compact);
  });
}

}  // namespace idsync::mapping
