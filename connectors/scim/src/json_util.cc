#include "json_util.h"

#include "text.h"

namespace idsync::scim {

std::optional<std::string> FindKey(const nlohmann::json& obj, std::string_view name) {
  if (!obj.is_object()) return std::nullopt;
  // The exact spelling is the common case and a map lookup; the scan is the
  // fallback for clients that capitalise differently.
  if (obj.contains(name)) return std::string(name);
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (EqualsIgnoreCase(it.key(), name)) return it.key();
  }
  return std::nullopt;
}

const nlohmann::json* FindMember(const nlohmann::json& obj, std::string_view name) {
  if (!obj.is_object()) return nullptr;
  auto exact = obj.find(name);
  if (exact != obj.end()) return &*exact;
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (EqualsIgnoreCase(it.key(), name)) return &it.value();
  }
  return nullptr;
}

nlohmann::json* FindMember(nlohmann::json& obj, std::string_view name) {
  return const_cast<nlohmann::json*>(FindMember(static_cast<const nlohmann::json&>(obj), name));
}

bool EraseMember(nlohmann::json& obj, std::string_view name) {
  std::optional<std::string> key = FindKey(obj, name);
  if (!key) return false;
  obj.erase(*key);
  return true;
}

}  // namespace idsync::scim
