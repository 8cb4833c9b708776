#include "idsync/scim/errors.h"

#include <array>
#include <cassert>
#include <optional>

namespace idsync::scim {
namespace {

constexpr std::array<ScimType, 10> kAllTypes = {
    ScimType::kInvalidFilter, ScimType::kTooMany,       ScimType::kUniqueness,
    ScimType::kMutability,    ScimType::kInvalidSyntax, ScimType::kInvalidPath,
    ScimType::kNoTarget,      ScimType::kInvalidValue,  ScimType::kInvalidVers,
    ScimType::kSensitive,
};

StatusCode CodeFor(ScimType type) {
  return type == ScimType::kUniqueness ? StatusCode::kAlreadyExists : StatusCode::kInvalidArgument;
}

}  // namespace

std::string_view ScimTypeName(ScimType type) {
  switch (type) {
    case ScimType::kNone:
      return "";
    case ScimType::kInvalidFilter:
      return "invalidFilter";
    case ScimType::kTooMany:
      return "tooMany";
    case ScimType::kUniqueness:
      return "uniqueness";
    case ScimType::kMutability:
      return "mutability";
    case ScimType::kInvalidSyntax:
      return "invalidSyntax";
    case ScimType::kInvalidPath:
      return "invalidPath";
    case ScimType::kNoTarget:
      return "noTarget";
    case ScimType::kInvalidValue:
      return "invalidValue";
    case ScimType::kInvalidVers:
      return "invalidVers";
    case ScimType::kSensitive:
      return "sensitive";
  }
  return "";
}

Status ScimError(ScimType type, std::string_view detail) {
  assert(type != ScimType::kNone);
  std::string message(ScimTypeName(type));
  message += ": ";
  message += detail;
  Status status(CodeFor(type), std::move(message));
  status.SetPayload(kScimTypeKey, std::string(ScimTypeName(type)));
  status.SetPayload(kScimDetailKey, std::string(detail));
  return status;
}

ScimType ScimTypeOf(const Status& status) {
  std::optional<std::string_view> name = status.GetPayload(kScimTypeKey);
  if (!name) return ScimType::kNone;
  for (ScimType type : kAllTypes) {
    if (*name == ScimTypeName(type)) return type;
  }
  return ScimType::kNone;
}

std::string_view ScimErrorDetail(const Status& status) {
  std::optional<std::string_view> detail = status.GetPayload(kScimDetailKey);
  return detail ? *detail : std::string_view(status.message());
}

}  // namespace idsync::scim
