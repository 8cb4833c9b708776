// SCIM resource types, schema URNs, and the normalisation that brings a
// resource sent by an identity provider into the shape idsync stores.
// Stateless; safe from any thread.
#pragma once

#include <string_view>

#include "idsync/base/status.h"
#include "idsync/scim/json.h"

namespace idsync::scim {

enum class ResourceType { kUser, kGroup };

inline constexpr std::string_view kUserSchema = "urn:ietf:params:scim:schemas:core:2.0:User";
inline constexpr std::string_view kGroupSchema = "urn:ietf:params:scim:schemas:core:2.0:Group";
inline constexpr std::string_view kEnterpriseUserSchema =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
inline constexpr std::string_view kPatchOpSchema = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

// Normalises `resource` in place, all or nothing:
// - attributes of the core and enterprise schemas get their schema spelling
//   ("Primary" -> "primary", "DisplayName" -> "displayName");
// - booleans sent as strings ("True", "False") become booleans;
// - a complex attribute with a "value" sub-attribute sent as a bare string
//   (manager "id", members ["id"]) becomes {"value": ...}; a single value of
//   a multi-valued attribute becomes a one-element array;
// - null members (unassigned attributes) are dropped;
// - a User's password is dropped (idsync never stores it).
// id, meta, schemas and groups are left for the caller to set.
// Errors (resource unchanged): invalidSyntax when it is not a JSON object;
// invalidValue for a value of the wrong type, or a User without userName or a
// Group without displayName.
Status NormalizeResource(Json& resource, ResourceType type);

}  // namespace idsync::scim
