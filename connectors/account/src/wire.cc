#include "wire.h"

#include <utility>

#include <nlohmann/json.hpp>

#include "user_reader.h"

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

Result<AccountRecord> ParseUser(const std::string& body) { return ReadUser(body); }

Result<UserPage> ParseUserPage(const std::string& body) {
  UserPage page;
  UserSink sink;
  sink.records = &page.users;
  RETURN_IF_ERROR(ReadUserPage(body, sink, &page.next_cursor));
  return page;
}

Result<CompactUserPage> ParseCompactUserPage(const std::string& body,
                                             const mapping::Catalog& catalog) {
  CompactUserPage page;
  UserSink sink;
  sink.compact = &page.users;
  sink.catalog = &catalog;
  RETURN_IF_ERROR(ReadUserPage(body, sink, &page.next_cursor));
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
