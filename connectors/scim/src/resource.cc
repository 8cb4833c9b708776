#include "idsync/scim/resource.h"

#include <string>
#include <vector>

#include "idsync/scim/errors.h"

#include "json_internal.h"
#include "json_util.h"
#include "normalize.h"
#include "text.h"

namespace idsync::scim {
namespace {

using nlohmann::json;

std::vector<std::string> Keys(const json& obj) {
  std::vector<std::string> keys;
  for (auto it = obj.begin(); it != obj.end(); ++it) keys.push_back(it.key());
  return keys;
}

// Moves obj[key] to obj[canonical] unless that spelling is already taken (a
// client sending both spellings keeps the schema one). Returns the key the
// value now lives under, or "" when it was dropped as a duplicate.
std::string Rename(json& obj, const std::string& key, std::string_view canonical) {
  if (key == canonical) return key;
  std::string target(canonical);
  if (obj.contains(target)) {
    obj.erase(key);
    return "";
  }
  obj[target] = std::move(obj[key]);
  obj.erase(key);
  return target;
}

bool HasValueSubAttribute(SchemaId schema, const AttrInfo& info) {
  return FindAttr(schema, std::string(info.name) + ".value") != nullptr;
}

// Normalises the members of an object whose attributes live in `schema` under
// `prefix` ("" for the resource or an extension object itself).
Status NormalizeMembers(json& obj, SchemaId schema, std::string_view prefix) {
  for (const std::string& key : Keys(obj)) {
    if (obj[key].is_null()) {
      obj.erase(key);
      continue;
    }
    std::string dotted = prefix.empty() ? key : std::string(prefix) + "." + key;
    const AttrInfo* info = FindAttr(schema, dotted);
    if (info == nullptr) continue;
    const std::string now = Rename(obj, key, LeafName(*info));
    if (now.empty()) continue;
    RETURN_IF_ERROR(CoerceAttribute(schema, info, obj[now]));
  }
  return Status::Ok();
}

Status RequireString(const json& resource, std::string_view name) {
  const json* v = FindMember(resource, name);
  if (v == nullptr || !v->is_string() || v->get_ref<const std::string&>().empty()) {
    return ScimError(ScimType::kInvalidValue, std::string(name) + " is required");
  }
  return Status::Ok();
}

}  // namespace

Status CoerceAttribute(SchemaId schema, const AttrInfo* info, json& v) {
  if (info == nullptr || v.is_null()) return Status::Ok();
  if (!info->multi_valued) return CoerceElement(schema, info, v);
  if (!v.is_array()) v = json::array({std::move(v)});
  json out = json::array();
  for (json& e : v) {
    if (e.is_null()) continue;
    RETURN_IF_ERROR(CoerceElement(schema, info, e));
    out.push_back(std::move(e));
  }
  v = std::move(out);
  return Status::Ok();
}

Status CoerceElement(SchemaId schema, const AttrInfo* info, json& v) {
  if (info == nullptr || v.is_null()) return Status::Ok();
  const std::string name(info->name);
  switch (info->type) {
    case AttrType::kComplex:
      // Entra sends manager as a bare id, and Microsoft's suite members as
      // bare ids: both mean {"value": id}.
      if (v.is_string() && HasValueSubAttribute(schema, *info)) v = json{{"value", std::move(v)}};
      if (!v.is_object()) {
        return ScimError(ScimType::kInvalidValue, "'" + name + "' must be an object");
      }
      return NormalizeMembers(v, schema, info->name);
    case AttrType::kBoolean:
      if (v.is_string()) {
        const std::string& s = v.get_ref<const std::string&>();
        if (EqualsIgnoreCase(s, "true")) {
          v = true;
        } else if (EqualsIgnoreCase(s, "false")) {
          v = false;
        }
      }
      if (!v.is_boolean()) {
        return ScimError(ScimType::kInvalidValue, "'" + name + "' must be a boolean");
      }
      return Status::Ok();
    case AttrType::kInteger:
    case AttrType::kDecimal:
      if (!v.is_number()) {
        return ScimError(ScimType::kInvalidValue, "'" + name + "' must be a number");
      }
      return Status::Ok();
    case AttrType::kString:
    case AttrType::kReference:
    case AttrType::kBinary:
    case AttrType::kDateTime:
      if (v.is_number() || v.is_boolean()) v = v.dump();
      if (!v.is_string()) {
        return ScimError(ScimType::kInvalidValue, "'" + name + "' must be a string");
      }
      return Status::Ok();
  }
  return Status::Ok();
}

Status NormalizeJson(json& resource, ResourceType type) {
  if (!resource.is_object()) {
    return ScimError(ScimType::kInvalidSyntax, "a resource must be a JSON object");
  }
  for (const std::string& key : Keys(resource)) {
    json& v = resource[key];
    if (v.is_null()) {
      resource.erase(key);
      continue;
    }
    if (StartsWithIgnoreCase(key, "urn:")) {
      const SchemaId schema = ClassifyUrn(key);
      if (schema == SchemaId::kOther) continue;
      if (schema == SchemaId::kCore) continue;  // odd but harmless; kept as sent
      const std::string now = Rename(resource, key, CanonicalUrn(key));
      if (now.empty()) continue;
      json& ext = resource[now];
      if (!ext.is_object()) {
        return ScimError(ScimType::kInvalidValue, "'" + now + "' must be an object");
      }
      RETURN_IF_ERROR(NormalizeMembers(ext, schema, ""));
      continue;
    }
    const AttrInfo* info = FindAttr(SchemaId::kCore, key);
    if (info == nullptr) continue;
    if (type == ResourceType::kUser && info->name == "password") {
      resource.erase(key);  // never stored, whatever the spelling
      continue;
    }
    const std::string now = Rename(resource, key, LeafName(*info));
    if (now.empty()) continue;
    RETURN_IF_ERROR(CoerceAttribute(SchemaId::kCore, info, resource[now]));
  }
  return RequireString(resource, type == ResourceType::kUser ? "userName" : "displayName");
}

Status NormalizeResource(Json& resource, ResourceType type) {
  json copy = JsonAccess::Get(resource);
  RETURN_IF_ERROR(NormalizeJson(copy, type));
  JsonAccess::Get(resource) = std::move(copy);
  return Status::Ok();
}

}  // namespace idsync::scim
