// SCIM PATCH (connectors/scim/include/idsync/scim/patch.h): a PatchOp body
// parsed and applied to a fixed User or Group, with the default semantics or
// with strict_patch. The first byte picks the resource and the semantics.
// A PATCH that fails leaves the resource byte for byte as it was; one that
// succeeds gives a resource that prints as JSON that parses again, and
// applying the same PATCH to the same resource again gives the same result.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "idsync/scim/json.h"
#include "idsync/scim/patch.h"
#include "idsync/scim/resource.h"

namespace {

using idsync::scim::Json;
using idsync::scim::Patch;
using idsync::scim::PatchOptions;
using idsync::scim::ResourceType;

const Json& Fixed(ResourceType type) {
  static const Json* const kUser = new Json(Json::Parse(R"({
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
    "id": "u1", "externalId": "00u1", "userName": "ada@corp.example", "active": true,
    "displayName": "Ada L", "name": {"givenName": "Ada", "familyName": "Lovelace"},
    "emails": [{"value": "ada@corp.example", "type": "work", "primary": true},
               {"value": "ada@home.example", "type": "home"}],
    "phoneNumbers": [{"value": "+1 555 0100", "type": "mobile"}],
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
      {"employeeNumber": "42", "department": "QA", "manager": {"value": "u2"}},
    "meta": {"resourceType": "User", "created": "2024-01-02T03:04:05Z",
             "lastModified": "2024-01-02T03:04:05Z", "version": "W/\"1\""}})")
                                                .value());
  static const Json* const kGroup = new Json(Json::Parse(R"({
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
    "id": "g1", "displayName": "QA Leads",
    "members": [{"value": "u1", "type": "User"}, {"value": "u2"}, {"value": "g2", "type": "Group"}],
    "meta": {"resourceType": "Group", "created": "2024-01-02T03:04:05Z",
             "lastModified": "2024-01-02T03:04:05Z", "version": "W/\"1\""}})")
                                                 .value());
  return type == ResourceType::kUser ? *kUser : *kGroup;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const ResourceType type = (data[0] & 1) != 0 ? ResourceType::kGroup : ResourceType::kUser;
  PatchOptions options;
  options.strict = (data[0] & 2) != 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  idsync::Result<Json> body = Json::Parse(text);
  if (!body.ok()) return 0;
  int failed = -2;
  idsync::Result<Patch> patch = Patch::Parse(*body, &failed);
  if (!patch.ok()) return 0;
  (void)patch->values();

  const std::string before = Fixed(type).Dump();
  Json resource = Fixed(type);
  idsync::Result<bool> changed = patch->ApplyTo(resource, type, options, &failed);
  const std::string after = resource.Dump();
  if (!changed.ok()) {
    if (after != before) std::abort();  // a failed PATCH changed the resource
    return 0;
  }
  if (!*changed && after != before) std::abort();  // said unchanged, but is not
  idsync::Result<Json> reparsed = Json::Parse(after);
  if (!reparsed.ok() || reparsed->Dump() != after) std::abort();

  Json again = Fixed(type);
  idsync::Result<bool> changed_again = patch->ApplyTo(again, type, options);
  if (!changed_again.ok() || *changed_again != *changed || again.Dump() != after) std::abort();
  return 0;
}
