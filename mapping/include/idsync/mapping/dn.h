// Distinguished names (RFC 4514): parsing and a normal form for comparison.
//
// Two DNs that name the same entry compare equal after normalization
// regardless of attribute-type case, spacing around ',', '=' and '+', escaping
// style (\, versus \2C) and value case: values compare as directory strings,
// case-folded with FoldCase (glob.h: Unicode simple case folding for Latin,
// Greek, Cyrillic and Armenian, so "cn=Équipe" equals "cn=équipe"; bytes
// that are not well-formed UTF-8 compare as they are). Attribute types are
// ASCII and ASCII-folded. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "idsync/base/status.h"

namespace idsync::mapping {

// The normal form of `dn`: attribute types ASCII lower-cased, values
// unescaped and case-folded with FoldCase, then re-escaped minimally; the
// parts of a multi-valued RDN sorted; joined by ',', '+' and '=' with no
// spaces. The empty string is the
// root DN (normal form ""). ';' is accepted as an RDN separator and "..."
// quoted values as RFC 2253 wrote them. kInvalidArgument when `dn` is not a
// valid RFC 4514 string.
Result<std::string> NormalizeDn(std::string_view dn);

// True when both are valid DNs naming the same entry.
bool DnEquals(std::string_view a, std::string_view b);

// True when `text` looks like a DN rather than a name: it contains '='.
bool LooksLikeDn(std::string_view text);

}  // namespace idsync::mapping
