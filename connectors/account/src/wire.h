// The Account API's JSON (contracts/account-api.md): parsing its answers into
// idsync values and writing request bodies. Pure functions, thread-safe.
// A parse error is kInternal naming what was wrong; the client treats it as a
// malformed answer.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/mapping/catalog.h"
#include "idsync/mapping/model.h"
#include "idsync/mapping/ports.h"

namespace idsync::account::wire {

// One User object.
Result<mapping::AccountRecord> ParseUser(const std::string& body);

// A page of GET /users.
struct UserPage {
  std::vector<mapping::AccountRecord> users;
  std::optional<std::string> next_cursor;  // nullopt: the last page
};
Result<UserPage> ParseUserPage(const std::string& body);

// The same page in the compact form (mapping::CompactAccountUser), levels
// expanded through `catalog`.
struct CompactUserPage {
  std::vector<mapping::AccountUser> users;
  std::optional<std::string> next_cursor;
};
Result<CompactUserPage> ParseCompactUserPage(const std::string& body,
                                             const mapping::Catalog& catalog);

// GET /catalog, checked by mapping::Catalog::Create.
Result<mapping::Catalog> ParseCatalog(const std::string& body);

// GET /projects.
Result<std::vector<mapping::Project>> ParseProjects(const std::string& body);

// {"error": {"code", "message", "user_id"}}; fields left empty when the body
// is not of that shape (never fails).
struct ApiError {
  std::string code;
  std::string message;
  std::string user_id;
};
ApiError ParseError(const std::string& body);

// POST /users: email, name, role, permissions and projects, all present.
std::string InviteBody(const mapping::AccountWrite& write);

// PATCH /users/{id}: only the fields the write sets (name, role,
// permissions, projects).
std::string PatchBody(const mapping::AccountWrite& write);

}  // namespace idsync::account::wire
