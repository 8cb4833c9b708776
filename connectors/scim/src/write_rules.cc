// The write rules.
#include "write_rules.h"

#include "idsync/scim/errors.h"

#include "json_internal.h"
#include "json_util.h"
#include "text.h"

namespace idsync::scim::internal {
namespace {

using nlohmann::json;

// Removes what a client may send but never sets (RFC 7643: readOnly values
// are ignored): id, meta, schemas (recomputed) and a User's groups (derived
// from the Groups' members).
void DropServerAttributes(json& resource, ResourceType type) {
  EraseMember(resource, "id");
  EraseMember(resource, "meta");
  EraseMember(resource, "schemas");
  if (type == ResourceType::kUser) EraseMember(resource, "groups");
}

}  // namespace

Result<Json> ParseResourceBody(const ScimRequest& req, ResourceType type, int max_json_depth) {
  if (req.body.find_first_not_of(" \t\r\n") == std::string::npos) {
    return ScimError(ScimType::kInvalidSyntax, "the request has no body");
  }
  ASSIGN_OR_RETURN(Json body, Json::Parse(req.body, max_json_depth));
  if (!body.IsObject()) {
    return ScimError(ScimType::kInvalidSyntax, "a resource must be a JSON object");
  }
  DropServerAttributes(JsonAccess::Get(body), type);
  RETURN_IF_ERROR(NormalizeResource(body, type));
  return body;
}

json SchemasFor(const json& resource, ResourceType type) {
  json schemas = json::array({type == ResourceType::kUser ? kUserSchema : kGroupSchema});
  for (auto it = resource.begin(); it != resource.end(); ++it) {
    if (StartsWithIgnoreCase(it.key(), "urn:") && it->is_object()) schemas.push_back(it.key());
  }
  return schemas;
}

Status CheckUnique(const SourceState& s, const Entry& e, const std::string* except_id) {
  auto [lo, hi] = s.users.by_key.equal_range(e.key_lower);
  for (auto it = lo; it != hi; ++it) {
    if (except_id == nullptr || it->second->id != *except_id) {
      return ScimError(ScimType::kUniqueness,
                       "userName is already taken by user " + it->second->id);
    }
  }
  return Status::Ok();
}

bool IfMatchHolds(std::string_view header, std::int64_t version) {
  if (header.find_first_not_of(" \t") == std::string_view::npos) return true;
  const std::string want = std::to_string(version);
  size_t i = 0;
  while (i <= header.size()) {
    size_t comma = header.find(',', i);
    if (comma == std::string_view::npos) comma = header.size();
    std::string_view tag = header.substr(i, comma - i);
    while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t')) tag.remove_prefix(1);
    while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) tag.remove_suffix(1);
    if (tag == "*") return true;
    if (tag.starts_with("W/") || tag.starts_with("w/")) tag.remove_prefix(2);
    if (tag.size() >= 2 && tag.front() == '"' && tag.back() == '"') {
      tag = tag.substr(1, tag.size() - 2);
    }
    if (tag == want) return true;
    i = comma + 1;
  }
  return false;
}

// Compares in place: a large group is not copied.
bool SameContent(const json& a, const json& b) {
  if (!a.is_object() || !b.is_object()) return a == b;
  auto is_meta = [](const std::string& key) { return EqualsIgnoreCase(key, "meta"); };
  size_t na = 0, nb = 0;
  for (auto it = a.begin(); it != a.end(); ++it) {
    if (is_meta(it.key())) continue;
    ++na;
    auto other = b.find(it.key());
    if (other == b.end() || *other != *it) return false;
  }
  for (auto it = b.begin(); it != b.end(); ++it) {
    if (!is_meta(it.key())) ++nb;
  }
  return na == nb;
}

}  // namespace idsync::scim::internal
