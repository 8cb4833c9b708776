#include "idsync/scim/errors.h"

#include <array>
#include <cassert>

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
  return Status(CodeFor(type), std::move(message));
}

ScimType ScimTypeOf(const Status& status) {
  if (status.ok()) return ScimType::kNone;
  const std::string& message = status.message();
  const size_t colon = message.find(": ");
  if (colon == std::string::npos) return ScimType::kNone;
  const std::string_view prefix(message.data(), colon);
  for (ScimType type : kAllTypes) {
    if (prefix == ScimTypeName(type) && status.code() == CodeFor(type)) return type;
  }
  return ScimType::kNone;
}

std::string_view ScimErrorDetail(const Status& status) {
  std::string_view message = status.message();
  if (ScimTypeOf(status) == ScimType::kNone) return message;
  return message.substr(message.find(": ") + 2);
}

}  // namespace idsync::scim
