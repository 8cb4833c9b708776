// SCIM filters (connectors/scim/include/idsync/scim/filter.h): parse,
// evaluate against a fixed set of users and groups, print. A filter that
// parses prints as a filter that parses again and prints the same.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "idsync/scim/filter.h"
#include "idsync/scim/json.h"

namespace {

using idsync::scim::Filter;
using idsync::scim::Json;

const std::vector<Json>& Resources() {
  static const std::vector<Json>* const kResources = [] {
    auto* out = new std::vector<Json>();
    for (const char* text : {
             R"({"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"u1",
                 "userName":"Ada@Example.com","active":true,"displayName":"Ada L",
                 "name":{"givenName":"Ada","familyName":"Lovelace"},
                 "emails":[{"value":"ada@example.com","type":"work","primary":true},
                           {"value":"a@home.example","type":"home"}],
                 "meta":{"created":"2024-01-02T03:04:05Z","lastModified":"2024-02-03T04:05:06.5+01:00"},
                 "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
                   {"employeeNumber":"42","manager":{"value":"u2"}}})",
             R"({"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"u2",
                 "userName":"bob","active":false,"title":null,"x":1.5,"n":[1,2,3]})",
             R"({"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"id":"g1",
                 "displayName":"Okta Knowledge","members":[{"value":"u1","type":"User"},
                 {"value":"g2","type":"Group"}]})",
         }) {
      out->push_back(Json::Parse(text).value());
    }
    return out;
  }();
  return *kResources;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  idsync::Result<Filter> filter = Filter::Parse(text);
  if (!filter.ok()) return 0;
  std::vector<bool> matched;
  for (const Json& r : Resources()) matched.push_back(filter->Matches(r));
  (void)filter->AsIndexedEquality();
  const std::string printed = filter->ToString();
  idsync::Result<Filter> again = Filter::Parse(printed);
  if (!again.ok()) std::abort();  // printed a filter that does not parse
  if (again->ToString() != printed) std::abort();
  for (std::size_t i = 0; i < Resources().size(); ++i) {
    if (again->Matches(Resources()[i]) != matched[i]) std::abort();
  }
  return 0;
}
