#include "idsync/daemon/account_state.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "idsync/base/ascii.h"
#include "idsync/mapping/glob.h"

namespace idsync::daemon {
namespace {

using nlohmann::json;

Result<std::string> StringField(const json& obj, const char* key, const std::string& where,
                                bool required) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) return InvalidArgumentError(where + ": missing \"" + key + "\"");
    return std::string();
  }
  if (!it->is_string()) {
    return InvalidArgumentError(where + ": \"" + key + "\" must be a string");
  }
  return it->get<std::string>();
}

Result<mapping::Catalog> ParseCatalog(const json& j) {
  if (!j.is_object() || !j.contains("areas") || !j["areas"].is_array()) {
    return InvalidArgumentError("catalog: expected {\"areas\": [...]}");
  }
  std::vector<mapping::CatalogArea> areas;
  for (const json& a : j["areas"]) {
    mapping::CatalogArea area;
    ASSIGN_OR_RETURN(area.key, StringField(a, "key", "catalog area", true));
    ASSIGN_OR_RETURN(area.label, StringField(a, "label", "catalog area " + area.key, false));
    if (a.contains("items") && a["items"].is_array()) {
      for (const json& i : a["items"]) {
        mapping::CatalogItem item;
        ASSIGN_OR_RETURN(item.key, StringField(i, "key", "catalog area " + area.key, true));
        ASSIGN_OR_RETURN(item.label, StringField(i, "label", "catalog item " + item.key, false));
        area.items.push_back(std::move(item));
      }
    }
    areas.push_back(std::move(area));
  }
  return mapping::Catalog::Create(std::move(areas));
}

Result<std::vector<mapping::Project>> ParseProjects(const json& j) {
  // Accept both the bare array and GET /projects' answer {"projects": [...]}.
  const json& list = j.is_object() && j.contains("projects") ? j["projects"] : j;
  if (!list.is_array()) return InvalidArgumentError("projects: expected an array");
  std::vector<mapping::Project> projects;
  for (const json& p : list) {
    mapping::Project project;
    ASSIGN_OR_RETURN(project.id, StringField(p, "id", "project", true));
    ASSIGN_OR_RETURN(project.name, StringField(p, "name", "project " + project.id, true));
    projects.push_back(std::move(project));
  }
  return projects;
}

// One user of the file; its levels are left for ExpandUserLevels (the
// catalog may come after the users in the file).
Result<mapping::AccountUser> ParseUser(const json& u, std::size_t index,
                                       mapping::PermissionSpec& spec) {
  std::string where = "users[" + std::to_string(index) + "]";
  if (!u.is_object()) return InvalidArgumentError(where + ": expected an object");
  mapping::AccountUser user;
  ASSIGN_OR_RETURN(user.id, StringField(u, "id", where, true));
  ASSIGN_OR_RETURN(user.email, StringField(u, "email", where, true));
  where += " (" + user.email + ")";
  ASSIGN_OR_RETURN(user.name, StringField(u, "name", where, false));
  ASSIGN_OR_RETURN(std::string role, StringField(u, "role", where, true));
  if (role == "admin") {
    user.role = mapping::Role::kAdmin;
  } else if (role == "member") {
    user.role = mapping::Role::kMember;
  } else {
    return InvalidArgumentError(where + ": unknown role \"" + role + "\"");
  }
  ASSIGN_OR_RETURN(std::string status, StringField(u, "status", where, false));
  if (status.empty() || status == "active") {
    user.status = mapping::AccountUser::Status::kActive;
  } else if (status == "invited") {
    user.status = mapping::AccountUser::Status::kInvited;
  } else {
    return InvalidArgumentError(where + ": unknown status \"" + status + "\"");
  }
  if (auto it = u.find("permissions"); it != u.end() && !it->is_null()) {
    if (!it->is_object()) return InvalidArgumentError(where + ": permissions must be an object");
    for (const auto& [key, value] : it->items()) {
      if (!value.is_string()) {
        return InvalidArgumentError(where + ": permission " + key + " must be a string");
      }
      auto level = mapping::ParseLevel(value.get<std::string>());
      if (!level) {
        return InvalidArgumentError(where + ": unknown level \"" + value.get<std::string>() +
                                    "\" for " + key);
      }
      spec[key] = *level;
    }
  }
  if (auto it = u.find("projects"); it != u.end() && !it->is_null()) {
    if (!it->is_array()) return InvalidArgumentError(where + ": projects must be an array");
    for (const json& p : *it) {
      if (!p.is_string()) return InvalidArgumentError(where + ": project ids must be strings");
      user.projects.push_back(p.get<std::string>());
    }
    std::sort(user.projects.begin(), user.projects.end());
    user.projects.erase(std::unique(user.projects.begin(), user.projects.end()),
                        user.projects.end());
  }
  if (auto it = u.find("managed"); it != u.end()) {
    if (!it->is_boolean()) return InvalidArgumentError(where + ": managed must be true or false");
    user.managed = it->get<bool>();
  }
  return user;
}

// Reads the file as a stream: each user is taken out of the document as soon
// as it is parsed, so that neither the text nor a document of every user is
// ever held (a state file of 100,000 users is tens of megabytes of JSON).
Result<AccountState> ParseAccountStream(std::istream& in, const mapping::Catalog& fallback) {
  AccountState state;
  Status problem;         // the first user that did not parse
  std::size_t index = 0;  // of the next user
  std::string top_key;    // the top-level key whose value is being read
  auto take_users = [&](int depth, json::parse_event_t event, json& parsed) {
    using Event = json::parse_event_t;
    if (depth == 1 && event == Event::key) {
      top_key = parsed.get<std::string>();
      return true;
    }
    const bool element_done =
        event == Event::object_end || event == Event::array_end || event == Event::value;
    if (depth != 2 || top_key != "users" || !element_done) return true;
    if (problem.ok()) {
      mapping::PermissionSpec spec;
      Result<mapping::AccountUser> user = ParseUser(parsed, index, spec);
      if (user.ok()) {
        state.users.push_back(std::move(user).value());
        state.permissions.push_back(std::move(spec));
      } else {
        problem = user.status();
      }
    }
    ++index;
    return false;  // kept as a user, not in the document
  };
  json j = json::parse(in, take_users, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgumentError("not valid JSON");
  if (!j.is_object() || !j.contains("users") || !j["users"].is_array()) {
    return InvalidArgumentError("expected an object with a \"users\" array");
  }
  RETURN_IF_ERROR(problem);
  if (j.contains("catalog") && !j["catalog"].is_null()) {
    ASSIGN_OR_RETURN(mapping::Catalog catalog, ParseCatalog(j["catalog"]));
    state.catalog = std::move(catalog);
  }
  if (j.contains("projects") && !j["projects"].is_null()) {
    ASSIGN_OR_RETURN(state.projects, ParseProjects(j["projects"]));
    state.has_projects = true;
  }
  ExpandUserLevels(state, state.catalog ? *state.catalog : fallback);
  std::vector<std::string> seen;
  seen.reserve(state.users.size());
  for (std::size_t i = 0; i < state.users.size(); ++i) {
    const mapping::AccountUser& user = state.users[i];
    seen.push_back(base::AsciiLower(user.email));
    if (!state.has_projects) continue;
    // A project the list does not name could be shown only by its id, and
    // the account would not hold it: the file is not one account's state.
    for (const auto& id : user.projects) {
      bool listed = std::any_of(state.projects.begin(), state.projects.end(),
                                [&](const mapping::Project& p) { return p.id == id; });
      if (!listed) {
        return InvalidArgumentError("users[" + std::to_string(i) + "] (" + user.email +
                                    ") holds project \"" + id +
                                    "\", which the file's \"projects\" list does not name");
      }
    }
  }
  // The account keeps addresses unique case-insensitively; a file that does
  // not would make the plan ambiguous.
  std::sort(seen.begin(), seen.end());
  if (auto dup = std::adjacent_find(seen.begin(), seen.end()); dup != seen.end()) {
    return InvalidArgumentError("two users share the address " + *dup);
  }
  return state;
}

}  // namespace

Result<AccountState> ParseAccountState(const std::string& text, const mapping::Catalog& fallback) {
  std::istringstream in(text);
  return ParseAccountStream(in, fallback);
}

void ExpandUserLevels(AccountState& state, const mapping::Catalog& catalog) {
  for (std::size_t i = 0; i < state.users.size(); ++i) {
    state.users[i].levels = catalog.ExpandLenient(state.permissions[i]);
  }
}

Result<AccountState> LoadAccountState(const std::string& path, const mapping::Catalog& fallback) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFoundError("cannot read account state " + path);
  Result<AccountState> state = ParseAccountStream(in, fallback);
  if (!state.ok()) return state.status().WithContext(path);
  return state;
}

}  // namespace idsync::daemon
