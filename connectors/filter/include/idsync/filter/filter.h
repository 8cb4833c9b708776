// LDAP search filters (RFC 4515): parsing, printing and evaluation against an
// entry held in memory.
//
// Evaluation follows directory-string semantics: attribute names are
// case-insensitive; equality, substrings, >= and <= compare values
// case-insensitively with insignificant spaces ignored, and numerically when
// both sides are integers; the extensible matches Active Directory filters use,
// LDAP_MATCHING_RULE_BIT_AND (1.2.840.113556.1.4.803) and BIT_OR
// (1.2.840.113556.1.4.804), are supported. A parsed Filter is immutable and
// may be shared between threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "idsync/base/status.h"

namespace idsync::filter {

// An entry to evaluate a filter against.
struct Entry {
  std::string dn;
  // Attribute descriptions as read (any case) and their values, in order.
  std::vector<std::pair<std::string, std::vector<std::string>>> attributes;

  // The values of `name` (compared case-insensitively, options such as
  // ";binary" ignored), or nullptr when the entry has none.
  const std::vector<std::string>* Get(std::string_view name) const;
  // The first value of `name`, or "".
  std::string_view First(std::string_view name) const;
};

struct Node;  // defined in filter.cc

class Filter {
 public:
  // Parses RFC 4515 text; surrounding whitespace is allowed and a filter
  // without outer parentheses ("mail=*") is accepted as one item.
  // kInvalidArgument naming the offset of the first problem.
  static Result<Filter> Parse(std::string_view text);

  Filter(Filter&&) noexcept;
  Filter& operator=(Filter&&) noexcept;
  ~Filter();

  // kInvalidArgument naming the first extensible match whose matching rule
  // cannot be evaluated in memory (the in-chain rule, for one).
  Status CheckEvaluable() const;

  // True when `entry` matches. Unknown matching rules evaluate to false
  // (RFC 4511 "Undefined" becomes false at the top).
  bool Matches(const Entry& entry) const;

  // The filter in RFC 4515 form, fully parenthesized.
  std::string ToString() const;

 private:
  explicit Filter(std::unique_ptr<Node> root);
  std::unique_ptr<Node> root_;
};

}  // namespace idsync::filter
