#include "wire.h"

#include <utility>

#include <nlohmann/json.hpp>

namespace idsync::account::wire {
namespace {

using mapping::AccountRecord;
using mapping::AccountUser;
using mapping::Role;
using nlohmann::json;

Result<json> ParseObject(const std::string& body) {
  // Parse without exceptions: a truncated or garbled answer is expected input.
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InternalError("answer is not JSON");
  if (!j.is_object()) return InternalError("answer is not a JSON object");
  return j;
}

// A string member; `required` members must be present and a string, others may
// be absent or null (then empty).
Status GetString(const json& obj, const char* key, bool required, std::string* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) return InternalError(std::string("missing \"") + key + "\"");
    out->clear();
    return Status::Ok();
  }
  if (!it->is_string()) return InternalError(std::string("\"") + key + "\" is not a string");
  *out = it->get<std::string>();
  return Status::Ok();
}

Status GetStringArray(const json& obj, const char* key, std::vector<std::string>* out) {
  out->clear();
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return Status::Ok();
  if (!it->is_array()) return InternalError(std::string("\"") + key + "\" is not an array");
  for (const json& v : *it) {
    if (!v.is_string()) return InternalError(std::string("\"") + key + "\" holds a non-string");
    out->push_back(v.get<std::string>());
  }
  return Status::Ok();
}

Result<AccountRecord> UserFromJson(const json& j) {
  if (!j.is_object()) return InternalError("a user is not a JSON object");
  AccountRecord r;
  RETURN_IF_ERROR(GetString(j, "id", true, &r.id));
  if (r.id.empty()) return InternalError("a user has an empty \"id\"");
  RETURN_IF_ERROR(GetString(j, "email", true, &r.email));
  RETURN_IF_ERROR(GetString(j, "name", false, &r.name));
  std::string role;
  RETURN_IF_ERROR(GetString(j, "role", true, &role));
  if (role == "admin") {
    r.role = Role::kAdmin;
  } else if (role == "member") {
    r.role = Role::kMember;
  } else {
    return InternalError("user " + r.id + " has unknown role \"" + role + "\"");
  }
  std::string status;
  RETURN_IF_ERROR(GetString(j, "status", false, &status));
  if (status == "active") {
    r.status = AccountUser::Status::kActive;
  } else if (status == "invited" || status.empty()) {
    r.status = AccountUser::Status::kInvited;
  } else {
    return InternalError("user " + r.id + " has unknown status \"" + status + "\"");
  }
  auto perms = j.find("permissions");
  if (perms != j.end() && !perms->is_null()) {
    if (!perms->is_object()) return InternalError("user " + r.id + ": permissions not an object");
    for (const auto& [key, value] : perms->items()) {
      std::optional<mapping::Level> level;
      if (value.is_string()) level = mapping::ParseLevel(value.get<std::string>());
      if (!level) return InternalError("user " + r.id + ": bad level for \"" + key + "\"");
      r.permissions[key] = *level;
    }
  }
  RETURN_IF_ERROR(GetStringArray(j, "projects", &r.projects));
  RETURN_IF_ERROR(GetString(j, "created_at", false, &r.created_at));
  RETURN_IF_ERROR(GetString(j, "updated_at", false, &r.updated_at));
  return r;
}

json PermissionsJson(const mapping::PermissionSpec& spec) {
  json out = json::object();
  for (const auto& [key, level] : spec) out[key] = std::string(mapping::LevelName(level));
  return out;
}

// Invalid UTF-8 (a directory can hold anything) is replaced, not thrown on:
// the account rejects what it cannot take with a 400 naming the field.
std::string Dump(const json& body) {
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

json ProjectsJson(const std::vector<std::string>& projects) {
  json out = json::array();
  for (const std::string& p : projects) out.push_back(p);
  return out;
}

}  // namespace

Result<AccountRecord> ParseUser(const std::string& body) {
  ASSIGN_OR_RETURN(json j, ParseObject(body));
  return UserFromJson(j);
}

Result<UserPage> ParseUserPage(const std::string& body) {
  ASSIGN_OR_RETURN(json j, ParseObject(body));
  auto users = j.find("users");
  if (users == j.end() || !users->is_array()) return InternalError("missing \"users\" array");
  UserPage page;
  page.users.reserve(users->size());
  for (const json& u : *users) {
    ASSIGN_OR_RETURN(AccountRecord r, UserFromJson(u));
    page.users.push_back(std::move(r));
  }
  auto cursor = j.find("next_cursor");
  if (cursor != j.end() && !cursor->is_null()) {
    if (!cursor->is_string()) return InternalError("\"next_cursor\" is not a string");
    page.next_cursor = cursor->get<std::string>();
  }
  return page;
}

Result<mapping::Catalog> ParseCatalog(const std::string& body) {
  ASSIGN_OR_RETURN(json j, ParseObject(body));
  auto areas = j.find("areas");
  if (areas == j.end() || !areas->is_array()) return InternalError("missing \"areas\" array");
  std::vector<mapping::CatalogArea> out;
  for (const json& a : *areas) {
    if (!a.is_object()) return InternalError("an area is not a JSON object");
    mapping::CatalogArea area;
    RETURN_IF_ERROR(GetString(a, "key", true, &area.key));
    RETURN_IF_ERROR(GetString(a, "label", false, &area.label));
    auto items = a.find("items");
    if (items == a.end() || !items->is_array()) {
      return InternalError("area " + area.key + " has no \"items\" array");
    }
    for (const json& i : *items) {
      if (!i.is_object()) return InternalError("an item of " + area.key + " is not an object");
      mapping::CatalogItem item;
      RETURN_IF_ERROR(GetString(i, "key", true, &item.key));
      RETURN_IF_ERROR(GetString(i, "label", false, &item.label));
      area.items.push_back(std::move(item));
    }
    out.push_back(std::move(area));
  }
  Result<mapping::Catalog> catalog = mapping::Catalog::Create(std::move(out));
  if (!catalog.ok()) return InternalError("bad catalog: " + catalog.status().message());
  return catalog;
}

Result<std::vector<mapping::Project>> ParseProjects(const std::string& body) {
  ASSIGN_OR_RETURN(json j, ParseObject(body));
  auto projects = j.find("projects");
  if (projects == j.end() || !projects->is_array()) {
    return InternalError("missing \"projects\" array");
  }
  std::vector<mapping::Project> out;
  for (const json& p : *projects) {
    if (!p.is_object()) return InternalError("a project is not a JSON object");
    mapping::Project project;
    RETURN_IF_ERROR(GetString(p, "id", true, &project.id));
    RETURN_IF_ERROR(GetString(p, "name", false, &project.name));
    out.push_back(std::move(project));
  }
  return out;
}

ApiError ParseError(const std::string& body) {
  ApiError out;
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return out;
  auto error = j.find("error");
  if (error == j.end() || !error->is_object()) return out;
  // Each field independently: a wrong type in one leaves the others usable.
  GetString(*error, "code", false, &out.code).IgnoreError();
  GetString(*error, "message", false, &out.message).IgnoreError();
  GetString(*error, "user_id", false, &out.user_id).IgnoreError();
  return out;
}

std::string InviteBody(const mapping::AccountWrite& write) {
  json body = json::object();
  body["email"] = write.email;
  body["name"] = write.name.value_or("");
  body["role"] = std::string(mapping::RoleName(write.role.value_or(Role::kMember)));
  body["permissions"] = PermissionsJson(write.permissions.value_or(mapping::PermissionSpec{}));
  body["projects"] = ProjectsJson(write.projects.value_or(std::vector<std::string>{}));
  return Dump(body);
}

std::string PatchBody(const mapping::AccountWrite& write) {
  json body = json::object();
  if (write.name) body["name"] = *write.name;
  if (write.role) body["role"] = std::string(mapping::RoleName(*write.role));
  if (write.permissions) body["permissions"] = PermissionsJson(*write.permissions);
  if (write.projects) body["projects"] = ProjectsJson(*write.projects);
  return Dump(body);
}

}  // namespace idsync::account::wire
