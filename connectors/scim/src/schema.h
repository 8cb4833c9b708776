// The attribute facts of RFC 7643 the SCIM core needs: type, multi-valued,
// caseExact and mutability of the core User/Group attributes and of the
// enterprise User extension, looked up by dotted name ("emails.value").
// Read-only tables; safe from any thread.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace idsync::scim {

enum class SchemaId {
  kCore,        // unqualified names, or the core User/Group URNs
  kEnterprise,  // urn:ietf:params:scim:schemas:extension:enterprise:2.0:User
  kOther,       // any other extension: no attribute facts known
};

enum class AttrType {
  kString,
  kBoolean,
  kDecimal,
  kInteger,
  kDateTime,
  kReference,
  kBinary,
  kComplex
};
enum class Mutability { kReadWrite, kReadOnly, kImmutable, kWriteOnly };

struct AttrInfo {
  std::string_view name;  // schema spelling, dotted for sub-attributes
  AttrType type;
  bool multi_valued;
  bool case_exact;
  Mutability mutability;
};

// Which table a URN selects; "" is kCore.
SchemaId ClassifyUrn(std::string_view urn);

// The schema spelling of a known URN, else `urn` itself.
std::string CanonicalUrn(std::string_view urn);

// The known URN `token` starts with, followed by ':' or the end, matched
// case-insensitively; "" when none. Lets "urn:...:2.0:User:manager.value"
// split at the right colon although the URN itself holds dots and colons.
std::string_view KnownUrnPrefix(std::string_view token);

// Facts of `dotted` (ASCII case-insensitive) in `schema`; nullptr when
// unknown (always for kOther).
const AttrInfo* FindAttr(SchemaId schema, std::string_view dotted);

// Every attribute `schema` describes (top-level ones and, after each, its
// sub-attributes), in table order; empty for kOther. The core table holds the
// User and Group attributes together.
std::span<const AttrInfo> SchemaAttrs(SchemaId schema);

// The last segment of info.name: the key to store a value under.
std::string_view LeafName(const AttrInfo& info);

}  // namespace idsync::scim
