// RouteScimRequest: which handler a method and path go to, the canonical
// path the listener passes on, and the methods a 405 names.
#include "idsync/scim/route.h"

#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace idsync::scim {
namespace {

struct Case {
  std::string method;
  std::string path;
  ScimHandler handler;
  std::string canonical;
  std::optional<ResourceType> type;
  std::string id;
  std::string allow;
};

TEST(RouteScimRequest, MethodAndPathToHandler) {
  constexpr auto kUser = ResourceType::kUser;
  constexpr auto kGroup = ResourceType::kGroup;
  const std::string kItem = "GET, PUT, PATCH, DELETE";
  const std::vector<Case> cases = {
      {"GET", "/Users", ScimHandler::kList, "/Users", kUser, "", "GET, POST"},
      {"POST", "/Groups", ScimHandler::kCreate, "/Groups", kGroup, "", "GET, POST"},
      {"DELETE", "/Users", ScimHandler::kMethodNotAllowed, "/Users", kUser, "", "GET, POST"},
      {"POST", "/Users/.search", ScimHandler::kSearch, "/Users/.search", kUser, "", "POST"},
      {"GET", "/Groups/.search", ScimHandler::kMethodNotAllowed, "/Groups/.search", kGroup, "",
       "POST"},
      {"GET", "/Users/abc", ScimHandler::kGet, "/Users/abc", kUser, "abc", kItem},
      {"PUT", "/Groups/abc", ScimHandler::kReplace, "/Groups/abc", kGroup, "abc", kItem},
      {"PATCH", "/Users/abc", ScimHandler::kModify, "/Users/abc", kUser, "abc", kItem},
      {"DELETE", "/Groups/abc", ScimHandler::kDelete, "/Groups/abc", kGroup, "abc", kItem},
      {"POST", "/Users/abc", ScimHandler::kMethodNotAllowed, "/Users/abc", kUser, "abc", kItem},
      // ".search" is matched as written; in another case it is an id.
      {"GET", "/Users/.SEARCH", ScimHandler::kGet, "/Users/.SEARCH", kUser, ".SEARCH", kItem},
      {"GET", "/Users/abc/def", ScimHandler::kNotFound, "/Users/abc/def", kUser, "", ""},
      // Endpoint names in any case, empty segments and trailing '/' dropped;
      // ids and methods as written.
      {"GET", "/users/", ScimHandler::kList, "/Users", kUser, "", "GET, POST"},
      {"GET", "//GROUPS//AbC/", ScimHandler::kGet, "/Groups/AbC", kGroup, "AbC", kItem},
      {"get", "/Users", ScimHandler::kMethodNotAllowed, "/Users", kUser, "", "GET, POST"},
      {"GET", "/serviceproviderconfig", ScimHandler::kServiceProviderConfig,
       "/ServiceProviderConfig", std::nullopt, "", "GET"},
      {"PUT", "/ServiceProviderConfig", ScimHandler::kMethodNotAllowed, "/ServiceProviderConfig",
       std::nullopt, "", "GET"},
      {"GET", "/ServiceProviderConfig/x", ScimHandler::kNotFound, "/ServiceProviderConfig/x",
       std::nullopt, "", ""},
      {"GET", "/ResourceTypes", ScimHandler::kResourceTypes, "/ResourceTypes", std::nullopt, "",
       "GET"},
      {"GET", "/resourcetypes/User", ScimHandler::kResourceTypes, "/ResourceTypes/User",
       std::nullopt, "User", "GET"},
      {"GET", "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", ScimHandler::kSchemas,
       "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", std::nullopt,
       "urn:ietf:params:scim:schemas:core:2.0:User", "GET"},
      {"DELETE", "/Schemas", ScimHandler::kMethodNotAllowed, "/Schemas", std::nullopt, "", "GET"},
      {"GET", "/Schemas/a/b", ScimHandler::kNotFound, "/Schemas/a/b", std::nullopt, "", ""},
      {"POST", "/Bulk", ScimHandler::kBulk, "/Bulk", std::nullopt, "", ""},
      {"GET", "/me", ScimHandler::kMe, "/Me", std::nullopt, "", ""},
      {"POST", "/.search", ScimHandler::kSearchAllTypes, "/.search", std::nullopt, "", ""},
      {"GET", "/", ScimHandler::kNotFound, "/", std::nullopt, "", ""},
      {"GET", "", ScimHandler::kNotFound, "/", std::nullopt, "", ""},
      {"GET", "/Unknown", ScimHandler::kNotFound, "/Unknown", std::nullopt, "", ""},
  };
  for (const Case& c : cases) {
    const ScimRoute r = RouteScimRequest(c.method, c.path);
    const std::string where = c.method + " " + c.path;
    EXPECT_EQ(r.handler, c.handler) << where;
    EXPECT_EQ(r.path, c.canonical) << where;
    EXPECT_EQ(r.type, c.type) << where;
    EXPECT_EQ(r.id, c.id) << where;
    EXPECT_EQ(r.allow, c.allow) << where;
  }
}

}  // namespace
}  // namespace idsync::scim
