// SCIM error kinds (RFC 7644 3.12 "scimType") carried in an idsync::Status.
//
// Every error the SCIM core returns is built by ScimError(): its code is
// kInvalidArgument (kAlreadyExists for uniqueness), its message reads
// "invalidFilter: expected ')' at offset 17" for logs, and the kind and the
// detail travel as payloads, so context added on the way up
// (Status::WithContext) changes neither. The server recovers the kind with
// ScimTypeOf() and answers 400 (409 for uniqueness) with that scimType and
// ScimErrorDetail() as the detail.
// Stateless; safe from any thread.
#pragma once

#include <string>
#include <string_view>

#include "idsync/base/status.h"

namespace idsync::scim {

// Payload keys of a Status built by ScimError(): the scimType keyword and
// the detail for the client.
inline constexpr std::string_view kScimTypeKey = "idsync.scim.type";
inline constexpr std::string_view kScimDetailKey = "idsync.scim.detail";

enum class ScimType {
  kNone,           // not a SCIM error (OK, or a Status from elsewhere)
  kInvalidFilter,  // a filter that breaks the grammar
  kTooMany,
  kUniqueness,     // userName already taken (409)
  kMutability,     // writing a read-only attribute (id, meta, groups)
  kInvalidSyntax,  // request body not the expected structure
  kInvalidPath,    // PATCH path malformed or pointing nowhere sensible
  kNoTarget,       // PATCH path with nothing to operate on
  kInvalidValue,   // value missing or of the wrong type
  kInvalidVers,
  kSensitive,
};

// The RFC 7644 keyword ("invalidFilter", "noTarget", ...); "" for kNone.
std::string_view ScimTypeName(ScimType type);

// A non-OK Status of kind `type` (which must not be kNone) with `detail`.
Status ScimError(ScimType type, std::string_view detail);

// The kind a Status built by ScimError() carries; kNone for OK or any other
// Status.
ScimType ScimTypeOf(const Status& status);

// The detail ScimError() was given, without any context added since (the
// whole message for a Status from elsewhere).
std::string_view ScimErrorDetail(const Status& status);

}  // namespace idsync::scim
