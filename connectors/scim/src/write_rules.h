// What a write (POST, PUT, PATCH, DELETE) checks and sets before anything is
// stored: a body parsed and normalised into the stored shape, the schemas a
// resource carries, userName uniqueness within a source, If-Match, and
// whether a write changes anything at all. Internal to connectors/scim.
// Stateless.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "idsync/base/status.h"
#include "idsync/scim/json.h"
#include "idsync/scim/resource.h"
#include "idsync/scim/service.h"

#include "resource_table.h"

namespace idsync::scim::internal {

// A POST or PUT body (nested at most `max_json_depth`) normalised into the
// stored shape, without id, meta, schemas and a User's groups (the server
// sets those). invalidSyntax for no body or one that is not a JSON object;
// NormalizeResource's errors.
Result<Json> ParseResourceBody(const ScimRequest& req, ResourceType type, int max_json_depth);

// The schemas list a resource carries: its core URN, then the URN of every
// extension object present.
nlohmann::json SchemasFor(const nlohmann::json& resource, ResourceType type);

// uniqueness (409) when a user of `s` other than `except_id` (null: any)
// has `e`'s userName, compared case-insensitively.
Status CheckUnique(const SourceState& s, const Entry& e, const std::string* except_id);

// RFC 7232 If-Match with weak comparison: true for no header, "*", or a
// list naming `version`.
bool IfMatchHolds(std::string_view header, std::int64_t version);

// Whether two resources are equal apart from meta: what decides whether a
// write changed anything.
bool SameContent(const nlohmann::json& a, const nlohmann::json& b);

}  // namespace idsync::scim::internal
