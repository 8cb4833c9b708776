// Which e-mail address names a SCIM user (config.md): the primary `emails`
// value, else the `work` one, else the first, else the userName when it is
// an address. Shared by the service (the snapshot's address) and PATCH (a
// value a filter creates must not take the address over). Stateless.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace idsync::scim {

// The index in `emails` (a User's multi-valued attribute) of the value that
// names the user, or -1 when none does (no element with a non-empty string
// value, or `emails` is not an array).
int IdentityEmailIndex(const nlohmann::json& emails);

// The address of `user` (a JSON object), as stored; "" when it has none.
std::string IdentityEmail(const nlohmann::json& user);

}  // namespace idsync::scim
