// Case-insensitive member lookup in JSON objects: SCIM attribute names are
// case-insensitive, and identity providers do not all spell them alike.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace idsync::scim {

// The member of `obj` named `name` (exact spelling preferred, else ASCII
// case-insensitive), or nullptr when absent or `obj` is not an object.
const nlohmann::json* FindMember(const nlohmann::json& obj, std::string_view name);
nlohmann::json* FindMember(nlohmann::json& obj, std::string_view name);

// The key under which FindMember finds `name`.
std::optional<std::string> FindKey(const nlohmann::json& obj, std::string_view name);

// Removes the member FindMember finds; false when there is none.
bool EraseMember(nlohmann::json& obj, std::string_view name);

}  // namespace idsync::scim
