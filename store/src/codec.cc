#include "codec.h"

#include <cstdint>
#include <optional>
#include <utility>

#include <nlohmann/json.hpp>

namespace idsync::store::internal {
namespace {

using nlohmann::json;

std::string_view WriteKindName(mapping::AccountWrite::Kind kind) {
  switch (kind) {
    case mapping::AccountWrite::Kind::kInvite:
      return "invite";
    case mapping::AccountWrite::Kind::kPatch:
      return "patch";
    case mapping::AccountWrite::Kind::kDelete:
      return "delete";
  }
  return "invite";
}

// nlohmann::json reports text that is not UTF-8 by throwing from dump();
// exceptions stop here.
Result<std::string> Dump(const json& value) {
  try {
    return value.dump();
  } catch (const json::exception& e) {
    return InvalidArgumentError(std::string("cannot store a value: ") + e.what());
  }
}

Result<json> Parse(std::string_view text, std::string_view what) {
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    return InternalError("stored " + std::string(what) + " is not JSON: " + std::string(text));
  }
  return value;
}

Status Corrupt(std::string_view what, std::string_view text) {
  return InternalError("stored " + std::string(what) +
                       " is not what idsync writes: " + std::string(text));
}

json PermissionsJson(const mapping::PermissionSpec& spec) {
  json out = json::object();
  for (const auto& [key, level] : spec) out[key] = std::string(mapping::LevelName(level));
  return out;
}

Result<mapping::PermissionSpec> PermissionsFromJson(const json& value, std::string_view text) {
  if (!value.is_object()) return Corrupt("permission map", text);
  mapping::PermissionSpec spec;
  for (const auto& [key, level_json] : value.items()) {
    if (!level_json.is_string()) return Corrupt("permission map", text);
    std::optional<mapping::Level> level = mapping::ParseLevel(level_json.get<std::string>());
    if (!level) return Corrupt("permission map", text);
    spec.emplace(key, *level);
  }
  return spec;
}

Result<std::vector<std::string>> StringsFromJson(const json& value, std::string_view text) {
  if (!value.is_array()) return Corrupt("list", text);
  std::vector<std::string> out;
  out.reserve(value.size());
  for (const json& item : value) {
    if (!item.is_string()) return Corrupt("list", text);
    out.push_back(item.get<std::string>());
  }
  return out;
}

Result<std::string> StringField(const json& obj, const char* key, std::string_view text) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return Corrupt("account write", text);
  return it->get<std::string>();
}

}  // namespace

Result<std::string> EncodeWrite(const mapping::AccountWrite& write) {
  json out = json::object();
  out["kind"] = std::string(WriteKindName(write.kind));
  out["user_id"] = write.user_id;
  out["email"] = write.email;
  if (write.name) out["name"] = *write.name;
  if (write.role) out["role"] = std::string(mapping::RoleName(*write.role));
  if (write.permissions) out["permissions"] = PermissionsJson(*write.permissions);
  if (write.projects) out["projects"] = *write.projects;
  out["idempotency_key"] = write.idempotency_key;
  return Dump(out);
}

Result<mapping::AccountWrite> DecodeWrite(std::string_view text) {
  ASSIGN_OR_RETURN(json in, Parse(text, "account write"));
  if (!in.is_object()) return Corrupt("account write", text);
  mapping::AccountWrite write;
  ASSIGN_OR_RETURN(std::string kind, StringField(in, "kind", text));
  if (kind == "invite") {
    write.kind = mapping::AccountWrite::Kind::kInvite;
  } else if (kind == "patch") {
    write.kind = mapping::AccountWrite::Kind::kPatch;
  } else if (kind == "delete") {
    write.kind = mapping::AccountWrite::Kind::kDelete;
  } else {
    return Corrupt("account write", text);
  }
  ASSIGN_OR_RETURN(write.user_id, StringField(in, "user_id", text));
  ASSIGN_OR_RETURN(write.email, StringField(in, "email", text));
  ASSIGN_OR_RETURN(write.idempotency_key, StringField(in, "idempotency_key", text));
  if (in.contains("name")) {
    ASSIGN_OR_RETURN(write.name, StringField(in, "name", text));
  }
  if (in.contains("role")) {
    ASSIGN_OR_RETURN(std::string role, StringField(in, "role", text));
    ASSIGN_OR_RETURN(write.role, DecodeRole(role));
  }
  if (in.contains("permissions")) {
    ASSIGN_OR_RETURN(write.permissions, PermissionsFromJson(in["permissions"], text));
  }
  if (in.contains("projects")) {
    ASSIGN_OR_RETURN(write.projects, StringsFromJson(in["projects"], text));
  }
  return write;
}

Result<std::string> EncodePermissions(const mapping::PermissionSpec& spec) {
  return Dump(PermissionsJson(spec));
}

Result<mapping::PermissionSpec> DecodePermissions(std::string_view text) {
  ASSIGN_OR_RETURN(json in, Parse(text, "permission map"));
  return PermissionsFromJson(in, text);
}

Result<std::string> EncodeStrings(const std::vector<std::string>& list) { return Dump(list); }

Result<std::vector<std::string>> DecodeStrings(std::string_view text) {
  ASSIGN_OR_RETURN(json in, Parse(text, "list"));
  return StringsFromJson(in, text);
}

Result<mapping::Role> DecodeRole(std::string_view name) {
  if (name == "member") return mapping::Role::kMember;
  if (name == "admin") return mapping::Role::kAdmin;
  return Corrupt("role", name);
}

std::string_view AccountStatusName(mapping::AccountUser::Status status) {
  return status == mapping::AccountUser::Status::kInvited ? "invited" : "active";
}

Result<mapping::AccountUser::Status> DecodeAccountStatus(std::string_view name) {
  if (name == "invited") return mapping::AccountUser::Status::kInvited;
  if (name == "active") return mapping::AccountUser::Status::kActive;
  return Corrupt("account status", name);
}

std::string EncodeCatalog(const mapping::Catalog& catalog) {
  json areas = json::array();
  for (const auto& area : catalog.areas()) {
    json items = json::array();
    for (const auto& item : area.items) items.push_back({{"key", item.key}, {"label", item.label}});
    areas.push_back({{"key", area.key}, {"label", area.label}, {"items", items}});
  }
  return json{{"levels", {"none", "read", "edit"}}, {"areas", areas}}.dump();
}

namespace {

// The string at `key`, "" when absent; nullopt when it holds anything else
// (a damaged row is refused, never thrown on).
std::optional<std::string> OptionalString(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return std::string();
  if (!it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

}  // namespace

Result<mapping::Catalog> DecodeCatalog(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("areas") || !j["areas"].is_array()) {
    return DataLossError("stored catalog: expected {\"areas\": [...]}");
  }
  std::vector<mapping::CatalogArea> areas;
  for (const json& a : j["areas"]) {
    if (!a.is_object() || !a.contains("key") || !a["key"].is_string()) {
      return DataLossError("stored catalog: an area without a key");
    }
    mapping::CatalogArea area;
    area.key = a["key"].get<std::string>();
    std::optional<std::string> label = OptionalString(a, "label");
    if (!label) return DataLossError("stored catalog: the label of " + area.key + " is not text");
    area.label = std::move(*label);
    if (a.contains("items") && a["items"].is_array()) {
      for (const json& i : a["items"]) {
        if (!i.is_object() || !i.contains("key") || !i["key"].is_string()) {
          return DataLossError("stored catalog: an item of " + area.key + " without a key");
        }
        std::optional<std::string> item_label = OptionalString(i, "label");
        if (!item_label) {
          return DataLossError("stored catalog: an item label of " + area.key + " is not text");
        }
        area.items.push_back({i["key"].get<std::string>(), std::move(*item_label)});
      }
    }
    areas.push_back(std::move(area));
  }
  Result<mapping::Catalog> catalog = mapping::Catalog::Create(std::move(areas));
  if (!catalog.ok()) return DataLossError("stored catalog: " + catalog.status().message());
  return catalog;
}

std::string EncodeProjects(const std::vector<mapping::Project>& projects) {
  json j = json::array();
  for (const auto& p : projects) j.push_back({{"id", p.id}, {"name", p.name}});
  return j.dump();
}

Result<std::vector<mapping::Project>> DecodeProjects(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return DataLossError("stored projects: expected an array");
  std::vector<mapping::Project> out;
  for (const auto& p : j) {
    if (!p.is_object() || !p.contains("id") || !p["id"].is_string()) {
      return DataLossError("stored projects: a project without an id");
    }
    std::optional<std::string> name = OptionalString(p, "name");
    if (!name) return DataLossError("stored projects: a project name is not text");
    out.push_back({p["id"].get<std::string>(), std::move(*name)});
  }
  return out;
}

std::string EncodeHealth(const SourceHealth& s) {
  nlohmann::ordered_json j;
  j["name"] = s.name;
  j["type"] = s.type;
  j["failing"] = s.failing;
  j["never_read"] = s.never_read;
  j["last_success_ms"] = s.last_success_ms;
  j["last_error_ms"] = s.last_error_ms;
  j["last_error"] = s.last_error;
  j["users"] = s.users;
  j["groups"] = s.groups;
  return j.dump();
}

namespace {

// The integer at `key` (0 when absent). Only an integer that fits: a
// fraction or an exponent (1.7e21) is refused rather than converted, which
// would be undefined past the range of int64.
Result<std::int64_t> IntField(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return std::int64_t{0};
  if (it->is_number_integer() && !it->is_number_unsigned()) return it->get<std::int64_t>();
  if (it->is_number_unsigned() &&
      it->get<std::uint64_t>() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(it->get<std::uint64_t>());
  }
  return DataLossError(std::string("stored source health: \"") + key +
                       "\" is not an integer of 64 bits");
}

}  // namespace

Result<SourceHealth> DecodeHealth(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return DataLossError("stored source health: expected an object");
  SourceHealth s;
  try {
    s.name = j.value("name", "");
    s.type = j.value("type", "");
    s.failing = j.value("failing", false);
    s.never_read = j.value("never_read", false);
    s.last_error = j.value("last_error", "");
  } catch (const json::exception& e) {
    return DataLossError(std::string("stored source health: ") + e.what());
  }
  ASSIGN_OR_RETURN(s.last_success_ms, IntField(j, "last_success_ms"));
  ASSIGN_OR_RETURN(s.last_error_ms, IntField(j, "last_error_ms"));
  ASSIGN_OR_RETURN(s.users, IntField(j, "users"));
  ASSIGN_OR_RETURN(s.groups, IntField(j, "groups"));
  return s;
}

}  // namespace idsync::store::internal
