// SCIM filters (RFC 7644 3.4.2.2): parsing and evaluation against a resource.
//
// The whole grammar: attribute paths with sub-attributes ("name.givenName"),
// URN-qualified names ("urn:...:enterprise:2.0:User:employeeNumber"), value
// paths ("emails[type eq \"work\"]", also followed by a sub-attribute and an
// operator as Entra ID sends: "emails[type eq \"work\"].value eq \"x\""), the
// operators eq ne co sw ew pr gt ge lt le, and/or/not with not > and > or,
// parentheses, and JSON string, number, true, false and null literals.
// Attribute names, operators and keywords are case-insensitive. A value
// without quotes and without spaces is read as a string (userName eq
// foo@bar), true/false/null or a number when it is one.
//
// Evaluation: a multi-valued attribute matches when any value does; a complex
// value compared without a sub-attribute is compared by its "value"; strings
// compare case-insensitively (ASCII) unless the attribute is caseExact in RFC
// 7643 (id, externalId, meta.location, ...); gt/ge/lt/le order numbers by
// value, dateTime strings (meta.created, meta.lastModified, or any two
// xsd:dateTime strings) by instant, other strings lexicographically. Values of
// the wrong type never match; evaluation cannot fail.
//
// A parsed Filter is immutable and may be shared between threads.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "idsync/base/status.h"
#include "idsync/scim/json.h"

namespace idsync::scim {

struct FilterNode;  // defined in src/ast.h

// A filter the server can answer from an index: `attribute eq "value"`.
struct IndexedEquality {
  // "id", "userName", "externalId" or "displayName" (schema spelling).
  std::string attribute;
  std::string value;  // as written in the filter (quotes and escapes removed)
  bool case_exact;    // false for userName and displayName: compare ASCII case-insensitively
};

class Filter {
 public:
  // Parses filter text (already URL-decoded). On a grammar error:
  // kInvalidArgument with scimType invalidFilter naming the offset; the same
  // past a limit, the detail naming it: more than 1,000 comparisons, nesting
  // (parentheses, not, value filters) deeper than 32, text over 64 KiB.
  static Result<Filter> Parse(std::string_view text);

  Filter(Filter&&) noexcept;
  Filter& operator=(Filter&&) noexcept;
  ~Filter();

  // True when `resource` (a JSON object) matches.
  bool Matches(const Json& resource) const;

  // When the whole filter is `id eq`, `userName eq`, `externalId eq` or
  // `displayName eq` a value (unqualified or qualified with the core User or
  // Group URN), that attribute and value; Matches() agrees with an exact
  // lookup on them (ASCII case-folded unless case_exact).
  std::optional<IndexedEquality> AsIndexedEquality() const;

  // The filter fully parenthesised, names as written, strings quoted:
  // `(a eq "x" or (b pr and not (c eq 1)))`. For tests and logs.
  std::string ToString() const;

 private:
  explicit Filter(std::unique_ptr<FilterNode> root);
  std::unique_ptr<FilterNode> root_;
};

}  // namespace idsync::scim
