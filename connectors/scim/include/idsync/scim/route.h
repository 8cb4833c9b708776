// Which handler of the SCIM service a request goes to (RFC 7644 section 3),
// decided here and nowhere else: ScimService dispatches on the route, and
// the SCIM listener (ScimEndpoint) passes the route's canonical path on and
// names the route's methods in a 405's Allow header.
//
// Pure; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "idsync/scim/resource.h"

namespace idsync::scim {

enum class ScimHandler {
  kNotFound,               // no such endpoint (404)
  kMethodNotAllowed,       // the path takes other methods, see ScimRoute::allow (405)
  kBulk,                   // /Bulk (501)
  kMe,                     // /Me (501)
  kSearchAllTypes,         // /.search across resource types (501)
  kList,                   // GET /Users, GET /Groups
  kCreate,                 // POST /Users, POST /Groups
  kSearch,                 // POST /Users/.search, POST /Groups/.search
  kGet,                    // GET /Users/{id}, GET /Groups/{id}
  kReplace,                // PUT /Users/{id}, PUT /Groups/{id}
  kModify,                 // PATCH /Users/{id}, PATCH /Groups/{id}
  kDelete,                 // DELETE /Users/{id}, DELETE /Groups/{id}
  kServiceProviderConfig,  // GET /ServiceProviderConfig
  kResourceTypes,          // GET /ResourceTypes, GET /ResourceTypes/{id}
  kSchemas,                // GET /Schemas, GET /Schemas/{id}
};

struct ScimRoute {
  ScimHandler handler = ScimHandler::kNotFound;
  // The path as RFC 7644 spells it: the endpoint name in its own case
  // ("/users/abc" is "/Users/abc"), empty segments and a trailing '/'
  // dropped; "/" when nothing is left.
  std::string path;
  // Set for every path under /Users or /Groups (also when the answer is a
  // 404 or a 405).
  std::optional<ResourceType> type;
  // The resource's id (kGet, kReplace, kModify, kDelete), or the discovery
  // resource's (kResourceTypes, kSchemas); "" for a list.
  std::string id;
  // The methods the path takes ("GET, POST"), for a 405's Allow header; ""
  // for an unknown path and the paths answered 501.
  std::string allow;
};

// Where `method` on `path` (the path below the SCIM base, as received) goes.
// Endpoint names match case-insensitively; the method, the ".search" segment
// and ids as written. Never fails: an unknown path routes to kNotFound.
ScimRoute RouteScimRequest(std::string_view method, std::string_view path);

}  // namespace idsync::scim
