#include "identity.h"

#include "json_util.h"
#include "text.h"

namespace idsync::scim {

using nlohmann::json;

namespace {

const std::string* StringMember(const json& obj, std::string_view name) {
  const json* v = FindMember(obj, name);
  return v != nullptr && v->is_string() ? &v->get_ref<const std::string&>() : nullptr;
}

}  // namespace

int IdentityEmailIndex(const json& emails) {
  if (!emails.is_array()) return -1;
  int primary = -1, work = -1, first = -1;
  for (size_t i = 0; i < emails.size(); ++i) {
    const json& e = emails[i];
    if (!e.is_object()) continue;
    const std::string* value = StringMember(e, "value");
    if (value == nullptr || value->empty()) continue;
    const int index = static_cast<int>(i);
    if (first < 0) first = index;
    const json* p = FindMember(e, "primary");
    if (primary < 0 && p != nullptr && p->is_boolean() && p->get<bool>()) primary = index;
    const std::string* type = StringMember(e, "type");
    if (work < 0 && type != nullptr && EqualsIgnoreCase(*type, "work")) work = index;
  }
  if (primary >= 0) return primary;
  if (work >= 0) return work;
  return first;
}

std::string IdentityEmail(const json& user) {
  if (const json* emails = FindMember(user, "emails"); emails != nullptr) {
    const int i = IdentityEmailIndex(*emails);
    if (i >= 0) return *StringMember((*emails)[static_cast<size_t>(i)], "value");
  }
  const std::string* user_name = StringMember(user, "userName");
  if (user_name != nullptr && user_name->find('@') != std::string::npos) return *user_name;
  return "";
}

}  // namespace idsync::scim
