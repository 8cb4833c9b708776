// The offline account state file (account-api.md, "Offline account state"):
// the answer of GET /users, optionally with "projects" and "catalog", read so
// that `idsync plan --account-state FILE` can plan without the account.
//
// Pure parsing; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/mapping/catalog.h"
#include "idsync/mapping/model.h"

namespace idsync::daemon {

struct AccountState {
  // Levels expanded against `catalog` (or the built-in one).
  std::vector<mapping::AccountUser> users;
  // Each user's stored permission map, parallel to `users`.
  std::vector<mapping::PermissionSpec> permissions;
  std::vector<mapping::Project> projects;   // empty when the file has none
  bool has_projects = false;                // the file listed projects
  std::optional<mapping::Catalog> catalog;  // when the file carries one
};

// Parses the JSON text of a state file. Users' permissions are expanded
// against the file's catalog when present, else against `fallback`. Keys the
// catalog does not know are ignored. kInvalidArgument naming the user and
// field for malformed JSON, a missing id or email, or an unknown role,
// status or level.
Result<AccountState> ParseAccountState(const std::string& text, const mapping::Catalog& fallback);

// Expands every user's stored permissions again against `catalog` (the one
// the plan is computed in). Keys that catalog does not know are ignored.
void ExpandUserLevels(AccountState& state, const mapping::Catalog& catalog);

// Reads and parses `path`. kNotFound when it cannot be read.
Result<AccountState> LoadAccountState(const std::string& path, const mapping::Catalog& fallback);

}  // namespace idsync::daemon
