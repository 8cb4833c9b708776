// The SCIM discovery documents (RFC 7644 section 4, RFC 7643 sections 5-7):
// /ServiceProviderConfig, /ResourceTypes and /Schemas, built from the
// attribute tables in schema.h so that they describe exactly what idsync
// understands. Internal to connectors/scim. Stateless; safe from any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace idsync::scim {

// The ServiceProviderConfig resource; `base_url` (no trailing '/') makes
// meta.location; `max_results` is filter.maxResults.
nlohmann::json ServiceProviderConfigJson(std::string_view base_url, int max_results);

// The ResourceType resources, User first then Group.
std::vector<nlohmann::json> ResourceTypesJson(std::string_view base_url);

// The Schema resources: core User, core Group, enterprise User.
std::vector<nlohmann::json> SchemasJson(std::string_view base_url);

}  // namespace idsync::scim
