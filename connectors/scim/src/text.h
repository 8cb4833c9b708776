// ASCII text helpers for the SCIM core. SCIM names and keywords are ASCII;
// values compare with ASCII case folding (no Unicode case folding).
#pragma once

#include "idsync/base/ascii.h"

namespace idsync::scim {

using base::AsciiLower;
using base::EqualsIgnoreCase;
using base::StartsWithIgnoreCase;

}  // namespace idsync::scim
