// How the store writes values into text columns: account writes,
// permission maps and project lists as JSON, roles and statuses as their
// names. Decoding is strict: a value this build did not write is kInternal
// (the store is damaged or was edited), with the offending text named.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/mapping/catalog.h"
#include "idsync/mapping/model.h"
#include "idsync/mapping/ports.h"
#include "idsync/store/source_state.h"

namespace idsync::store::internal {

// {"kind": "invite"|"patch"|"delete", "user_id", "email", "idempotency_key",
//  and "name", "role", "permissions", "projects" only when set}.
// kInvalidArgument when a string is not valid UTF-8.
Result<std::string> EncodeWrite(const mapping::AccountWrite& write);
Result<mapping::AccountWrite> DecodeWrite(std::string_view json);

// {"<key>": "none"|"read"|"edit", ...}
Result<std::string> EncodePermissions(const mapping::PermissionSpec& spec);
Result<mapping::PermissionSpec> DecodePermissions(std::string_view json);

// ["a", "b", ...]
Result<std::string> EncodeStrings(const std::vector<std::string>& list);
Result<std::vector<std::string>> DecodeStrings(std::string_view json);

Result<mapping::Role> DecodeRole(std::string_view name);                  // "member" | "admin"
std::string_view AccountStatusName(mapping::AccountUser::Status status);  // "invited" | "active"
Result<mapping::AccountUser::Status> DecodeAccountStatus(std::string_view name);

// The account's catalog: {"levels": [...], "areas": [{"key", "label", "items":
// [{"key", "label"}]}]}, as the account's GET /catalog answers.
std::string EncodeCatalog(const mapping::Catalog& catalog);
Result<mapping::Catalog> DecodeCatalog(std::string_view json);

// [{"id": "p_1", "name": "support-bot"}, ...]
std::string EncodeProjects(const std::vector<mapping::Project>& projects);
Result<std::vector<mapping::Project>> DecodeProjects(std::string_view json);

// {"name", "type", "failing", "never_read", "last_success_ms",
//  "last_error_ms", "last_error", "users", "groups"}
std::string EncodeHealth(const SourceHealth& health);
Result<SourceHealth> DecodeHealth(std::string_view json);

}  // namespace idsync::store::internal
