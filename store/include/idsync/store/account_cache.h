// The account's catalog and projects as the last full run read them, so
// that partial runs and offline commands (explain, validate) resolve
// permission keys and project names without asking the account.
// Thread-safe; blocks on I/O.
#pragma once

#include <optional>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/mapping/catalog.h"
#include "idsync/mapping/model.h"

namespace idsync::store {

class AccountCache {
 public:
  virtual ~AccountCache() = default;

  virtual Status PutCatalog(const mapping::Catalog& catalog) = 0;
  // nullopt when none was cached; kDataLoss when the cached one is unreadable.
  virtual Result<std::optional<mapping::Catalog>> GetCatalog() = 0;
  virtual Status PutProjects(const std::vector<mapping::Project>& projects) = 0;
  // nullopt when none were cached; kDataLoss when unreadable.
  virtual Result<std::optional<std::vector<mapping::Project>>> GetProjects() = 0;
};

}  // namespace idsync::store
