// Value coercion and whole-resource normalisation, shared by
// NormalizeResource and PATCH. Internal to connectors/scim.
#pragma once

#include <nlohmann/json.hpp>

#include "idsync/base/status.h"
#include "idsync/scim/resource.h"

#include "schema.h"

namespace idsync::scim {

// Coerces `v`, the whole value of the attribute `info` describes (nothing to
// do when `info` is null): a single value of a multi-valued attribute becomes
// an array, then every element goes through CoerceElement. invalidValue on a
// wrong type.
Status CoerceAttribute(SchemaId schema, const AttrInfo* info, nlohmann::json& v);

// Coerces one value of `info` (one element when multi-valued): booleans from
// "true"/"false" in any case, a bare string into {"value": ...} for complex
// attributes that have a value, numbers into strings for string attributes,
// sub-attribute names into their schema spelling, nulls dropped.
Status CoerceElement(SchemaId schema, const AttrInfo* info, nlohmann::json& v);

// NormalizeResource on the JSON itself; `resource` may be left half-done on
// error (callers work on a copy).
Status NormalizeJson(nlohmann::json& resource, ResourceType type);

}  // namespace idsync::scim
