// How the SCIM service answers: SCIM error bodies (RFC 7644 3.12) for each
// kind of refusal, and a resource as rendered for the request that asked
// for it (meta.location for the request's base URL, the projection applied,
// the version as ETag). Internal to connectors/scim. Stateless; safe from
// any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "idsync/base/status.h"
#include "idsync/scim/resource.h"
#include "idsync/scim/service.h"

#include "projection.h"
#include "resource_table.h"

namespace idsync::scim::internal {

inline constexpr std::string_view kListResponseSchema =
    "urn:ietf:params:scim:api:messages:2.0:ListResponse";

// `j` as compact JSON text (invalid UTF-8 replaced).
std::string Dump(const nlohmann::json& j);

// "User" | "Group".
std::string_view TypeName(ResourceType type);

// `base_url` without trailing '/'.
std::string TrimBase(std::string_view base_url);

// The resource's URL: "<base_url>/Users/<id>" or "<base_url>/Groups/<id>".
std::string Location(std::string_view base_url, ResourceType type, const std::string& id);

// The weak ETag of a version: W/"<version>".
std::string VersionTag(std::int64_t version);

// A SCIM error; `scim_type` "" leaves scimType out.
ScimResponse ErrorResponse(int status, std::string_view scim_type, std::string_view detail);

// A Status from the SCIM core or the service as an answer: its scimType with
// 400 (409 for uniqueness), else by code (400, 404, 409, 412; 500 for the
// rest, without the message).
ScimResponse StatusResponse(const Status& status);

// The persistence port failed, so nothing changed: 503 when the failure is
// transient, else 500. The port's message is not passed on (it may name
// files or database details the identity provider has no business with).
ScimResponse PersistenceFailure(const Status& status);

// 405 naming the methods `path` takes, also in `allow`.
ScimResponse MethodNotAllowed(std::string_view method, std::string_view path,
                              std::string_view allow);

// 404 for a resource id the source does not hold.
ScimResponse NotFound(ResourceType type, const std::string& id);

// 412: If-Match names a version other than `current`'s.
ScimResponse PreconditionFailed(const Entry& current);

// `body` as the answer.
ScimResponse JsonResponse(int status, const nlohmann::json& body);

// The resource as answered: its stored body with meta.location for this
// request's base URL, projected. Needs the source's shared lock (or its
// writer mutex) while `e` is used.
nlohmann::json Render(const Entry& e, ResourceType type, const ScimRequest& req,
                      const Projection& projection);

// Render() as the answer, with the version as ETag.
ScimResponse ResourceResponse(int status, const Entry& e, ResourceType type, const ScimRequest& req,
                              const Projection& projection);

}  // namespace idsync::scim::internal
