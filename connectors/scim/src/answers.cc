// The service's answers.
#include "answers.h"

#include "idsync/scim/errors.h"

#include "json_internal.h"
#include "json_util.h"

namespace idsync::scim::internal {
namespace {

using nlohmann::json;

constexpr std::string_view kErrorSchema = "urn:ietf:params:scim:api:messages:2.0:Error";

std::string_view EndpointOf(ResourceType type) {
  return type == ResourceType::kUser ? "/Users" : "/Groups";
}

}  // namespace

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string_view TypeName(ResourceType type) {
  return type == ResourceType::kUser ? "User" : "Group";
}

std::string TrimBase(std::string_view base_url) {
  while (!base_url.empty() && base_url.back() == '/') base_url.remove_suffix(1);
  return std::string(base_url);
}

std::string Location(std::string_view base_url, ResourceType type, const std::string& id) {
  return TrimBase(base_url) + std::string(EndpointOf(type)) + "/" + id;
}

std::string VersionTag(std::int64_t version) { return "W/\"" + std::to_string(version) + "\""; }

ScimResponse ErrorResponse(int status, std::string_view scim_type, std::string_view detail) {
  json body = {{"schemas", json::array({kErrorSchema})},
               {"status", std::to_string(status)},
               {"detail", std::string(detail)}};
  if (!scim_type.empty()) body["scimType"] = std::string(scim_type);
  ScimResponse r;
  r.status = status;
  r.body = Dump(body);
  return r;
}

ScimResponse StatusResponse(const Status& status) {
  const ScimType type = ScimTypeOf(status);
  if (type != ScimType::kNone) {
    return ErrorResponse(type == ScimType::kUniqueness ? 409 : 400, ScimTypeName(type),
                         ScimErrorDetail(status));
  }
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
      return ErrorResponse(400, "", status.message());
    case StatusCode::kNotFound:
      return ErrorResponse(404, "", status.message());
    case StatusCode::kAlreadyExists:
      return ErrorResponse(409, "uniqueness", status.message());
    case StatusCode::kFailedPrecondition:
      return ErrorResponse(412, "", status.message());
    default:
      return ErrorResponse(500, "", "internal error");
  }
}

ScimResponse PersistenceFailure(const Status& status) {
  const bool transient = status.code() == StatusCode::kUnavailable ||
                         status.code() == StatusCode::kDeadlineExceeded ||
                         status.code() == StatusCode::kResourceExhausted;
  return ErrorResponse(transient ? 503 : 500, "",
                       "the change could not be stored, nothing was changed; try again later");
}

ScimResponse MethodNotAllowed(std::string_view method, std::string_view path,
                              std::string_view allow) {
  ScimResponse r = ErrorResponse(405, "",
                                 std::string(method) + " is not allowed on " + std::string(path) +
                                     "; use " + std::string(allow));
  r.allow = std::string(allow);
  return r;
}

ScimResponse NotFound(ResourceType type, const std::string& id) {
  return ErrorResponse(404, "", std::string(TypeName(type)) + " " + id + " not found");
}

ScimResponse PreconditionFailed(const Entry& current) {
  ScimResponse r = ErrorResponse(
      412, "", "If-Match does not name the current version " + VersionTag(current.version));
  return r;
}

ScimResponse JsonResponse(int status, const json& body) {
  ScimResponse r;
  r.status = status;
  r.body = Dump(body);
  return r;
}

json Render(const Entry& e, ResourceType type, const ScimRequest& req,
            const Projection& projection) {
  json out = JsonAccess::Get(e.body);
  if (json* meta = FindMember(out, "meta"); meta != nullptr && meta->is_object()) {
    (*meta)["location"] = Location(req.base_url, type, e.id);
  }
  return projection.IsIdentity() ? out : projection.Apply(out);
}

ScimResponse ResourceResponse(int status, const Entry& e, ResourceType type, const ScimRequest& req,
                              const Projection& projection) {
  ScimResponse r;
  r.status = status;
  r.body = Dump(Render(e, type, req, projection));
  r.etag = VersionTag(e.version);
  return r;
}

}  // namespace idsync::scim::internal
