// SCIM error kinds (RFC 7644 3.12 "scimType") carried in an idsync::Status.
//
// Every error the SCIM core returns is built by ScimError(): its code is
// kInvalidArgument (kAlreadyExists for uniqueness) and its message starts with
// the scimType keyword and ": ", e.g. "invalidFilter: expected ')' at offset
// 17". The server recovers the kind with ScimTypeOf() and answers 400 (409 for
// uniqueness) with that scimType and ScimErrorDetail() as the detail.
// Stateless; safe from any thread.
#pragma once

#include <string>
#include <string_view>

#include "idsync/base/status.h"

namespace idsync::scim {

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

// The message without its "scimType: " prefix (the whole message when there
// is none).
std::string_view ScimErrorDetail(const Status& status);

}  // namespace idsync::scim
