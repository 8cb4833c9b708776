// The `attributes` and `excludedAttributes` parameters (RFC 7644 3.4.2.5,
// 3.9): which attributes of a resource an answer carries. id and schemas
// are always returned. Internal to connectors/scim. A parsed Projection is
// immutable and may be shared between threads.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace idsync::scim {

// One attribute named in a parameter: "userName", "name.givenName",
// "emails.value", "urn:...:enterprise:2.0:User:manager" or a whole extension.
struct AttrSelector {
  std::string urn;   // the extension's URN ("" for core attributes)
  std::string attr;  // "" selects the whole extension
  std::string sub;   // sub-attribute, or ""
  std::string text;  // as written (value filter removed)
};

class Projection {
 public:
  // Everything (no parameter given).
  Projection() = default;

  // Parses the comma-separated lists of the two parameters (either may be
  // empty). Lenient, as identity providers expect: a value filter on an
  // attribute ("emails[type eq \"work\"]") selects the whole attribute and
  // names nobody knows select nothing. Never fails.
  static Projection Parse(std::string_view attributes, std::string_view excluded);

  // True when neither parameter selected anything.
  bool IsIdentity() const { return include_.empty() && exclude_.empty(); }

  // The projected copy of `resource` (a JSON object).
  nlohmann::json Apply(const nlohmann::json& resource) const;

 private:
  std::vector<AttrSelector> include_;
  std::vector<AttrSelector> exclude_;
};

}  // namespace idsync::scim
