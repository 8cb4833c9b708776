// LDIF content records (RFC 2849) parsed into entries: version line, comments,
// folded lines, base64 ("::") values, URL ("<") values refused, non-ASCII
// UTF-8 kept as is, "changetype: add" records read as content. Pure;
// thread-safe.
#pragma once

#include <string_view>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/filter/filter.h"

namespace idsync::ldif {

// Parses LDIF text. kInvalidArgument "line N: ..." for malformed input (bad
// base64, a value line without ':', a record without dn, a change record
// other than add).
Result<std::vector<filter::Entry>> ParseLdif(std::string_view text);

}  // namespace idsync::ldif
