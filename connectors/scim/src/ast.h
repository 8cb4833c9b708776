// The parsed form of SCIM filters and PATCH paths, shared by filter.cc and
// patch.cc. Internal to connectors/scim.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "idsync/base/status.h"

#include "schema.h"

namespace idsync::scim {

struct FilterNode;

// A comparison value as written in a filter.
struct Literal {
  enum class Kind { kString, kNumber, kBool, kNull };
  Kind kind = Kind::kNull;
  // kString: the decoded string; otherwise the token as written ("12",
  // "True"), which is what a string attribute is compared with.
  std::string text;
  double number = 0;
  bool boolean = false;
  bool quoted = false;
};

// attrPath, valuePath and PATCH path: [urn ":"] attr ["[" filter "]"] ["." sub]
// (a sub-attribute may also directly follow attr: "name.givenName").
struct AttrPath {
  std::string urn;  // schema spelling when known; "" when unqualified
  SchemaId schema = SchemaId::kCore;
  std::string attr;                    // "" only for a PATCH path naming a whole extension
  std::unique_ptr<FilterNode> filter;  // the value filter, or null
  std::string sub;                     // sub-attribute, or ""
  std::string text;                    // as written
};

enum class CompareOp { kEq, kNe, kCo, kSw, kEw, kGt, kGe, kLt, kLe, kPr };

// Limits on what one filter (or the value filter of a PATCH path) may ask
// for; past one, the parse fails with invalidFilter naming it.
inline constexpr std::size_t kMaxFilterBytes = 64 * 1024;
inline constexpr int kMaxFilterComparisons = 1000;
// Parentheses, "not" and value filters count; a chain of and/or does not
// nest (it is one node), so the tree is at most a few times this deep and
// recursion over it (evaluation, printing, destruction) is bounded.
inline constexpr int kMaxFilterDepth = 32;

struct FilterNode {
  enum class Kind { kAnd, kOr, kNot, kCompare, kValuePath };
  Kind kind = Kind::kCompare;
  // kAnd, kOr: two or more operands, in the order written (a chain of the
  // same operator is one node, not a left-deep tree); kNot: exactly one.
  std::vector<std::unique_ptr<FilterNode>> children;
  AttrPath path;                  // kCompare, kValuePath
  CompareOp op = CompareOp::kEq;  // kCompare
  Literal value;                  // kCompare (not kPr)
  // Facts of the compared attribute (of its "value" when it is complex);
  // null when unknown. Points into the static schema tables.
  const AttrInfo* info = nullptr;
};

// Parses a whole filter; every error is invalidFilter, including text over
// kMaxFilterBytes, more than kMaxFilterComparisons comparisons and nesting
// deeper than kMaxFilterDepth (the detail names the limit).
Result<std::unique_ptr<FilterNode>> ParseFilterText(std::string_view text);

// Parses a PATCH path; errors in its structure are invalidPath, errors inside
// a value filter invalidFilter (the value filter has the limits of a
// filter; the whole path is at most kMaxFilterBytes, else invalidPath). A
// path may name a whole known extension (attr empty).
Result<AttrPath> ParsePatchPath(std::string_view text);

// True when `node` holds for the JSON object `base`: the resource, or for the
// filter of a value path, one element of that multi-valued attribute.
bool EvaluateFilter(const FilterNode& node, const nlohmann::json& base);

// Fully parenthesised text of `node`.
std::string FilterToString(const FilterNode& node);

}  // namespace idsync::scim
