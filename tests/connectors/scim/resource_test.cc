#include "idsync/scim/resource.h"

#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "idsync/scim/errors.h"
#include "idsync/scim/json.h"
#include "idsync/testing/status_matchers.h"

namespace idsync::scim {
namespace {

Json ParseJson(std::string_view text) {
  Result<Json> json = Json::Parse(text);
  EXPECT_TRUE(json.ok()) << json.status().ToString() << "\n" << text;
  return json.ok() ? *json : Json();
}

struct NormalizeCase {
  std::string_view name;
  ResourceType type;
  std::string_view input;
  std::string_view normalized;
};

TEST(ScimNormalize, IdentityProviderShapesBecomeStoredShapes) {
  const std::vector<NormalizeCase> cases = {
      {"Microsoft's suite: active as a string, capitalised sub-attributes, nulls",
       ResourceType::kUser,
       R"({"userName": "emp1", "active": "True",
           "emails": [{"Primary": true, "type": "work", "value": "a@x"}],
           "name": {"familyName": "Employee", "honorificPrefix": null},
           "addresses": [{"country": null, "type": "other", "primary": false}],
           "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"Department": "some"}})",
       R"({"userName": "emp1", "active": true,
           "emails": [{"primary": true, "type": "work", "value": "a@x"}],
           "name": {"familyName": "Employee"},
           "addresses": [{"type": "other", "primary": false}],
           "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "some"}})"},
      {"Okta's POST: password dropped, groups left for the server", ResourceType::kUser,
       R"({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
           "userName": "isaac.brock@example.com", "password": "1mz050nq", "groups": [],
           "emails": [{"primary": true, "value": "isaac.brock@example.com", "type": "work"}],
           "displayName": "Isaac Brock", "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7",
           "active": true})",
       R"({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
           "userName": "isaac.brock@example.com", "groups": [],
           "emails": [{"primary": true, "value": "isaac.brock@example.com", "type": "work"}],
           "displayName": "Isaac Brock", "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7",
           "active": true})"},
      {"manager as a string; extension URN and top-level names in any case", ResourceType::kUser,
       R"({"USERNAME": "a", "DisplayName": "A",
           "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER": {"Manager": "boss-id"}})",
       R"({"userName": "a", "displayName": "A",
           "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "boss-id"}}})"},
      {"a single value of a multi-valued attribute; numbers as strings", ResourceType::kUser,
       R"({"userName": "a", "emails": {"value": "a@x", "primary": "false"}, "externalId": 42})",
       R"({"userName": "a", "emails": [{"value": "a@x", "primary": false}], "externalId": "42"})"},
      {"Group members as bare ids; unknown attributes kept", ResourceType::kGroup,
       R"({"displayName": "G", "members": ["m1", {"value": "m2", "displayName": "new User"}],
           "acme": {"x": null}})",
       R"({"displayName": "G", "members": [{"value": "m1"}, {"value": "m2", "displayName": "new User"}],
           "acme": {"x": null}})"},
      {"when both spellings are sent the schema spelling wins", ResourceType::kUser,
       R"({"userName": "a", "Title": "T1", "title": "T2"})", R"({"userName": "a", "title": "T2"})"},
  };
  for (const NormalizeCase& c : cases) {
    SCOPED_TRACE(c.name);
    Json resource = ParseJson(c.input);
    Status s = NormalizeResource(resource, c.type);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(resource, ParseJson(c.normalized)) << resource.Dump();
  }
}

struct BadCase {
  std::string_view name;
  ResourceType type;
  std::string_view input;
  ScimType scim_type;
  std::string_view detail;
};

TEST(ScimNormalize, WrongShapesAreRejectedAndLeaveTheResource) {
  const std::vector<BadCase> cases = {
      {"no userName (Microsoft's suite expects 400)", ResourceType::kUser,
       R"({"active": true, "displayName": "Kimberly Baker"})", ScimType::kInvalidValue,
       "userName is required"},
      {"empty userName", ResourceType::kUser, R"({"userName": ""})", ScimType::kInvalidValue,
       "userName is required"},
      {"Group without displayName", ResourceType::kGroup, R"({"members": []})",
       ScimType::kInvalidValue, "displayName is required"},
      {"active not a boolean", ResourceType::kUser, R"({"userName": "a", "active": "yes"})",
       ScimType::kInvalidValue, "'active' must be a boolean"},
      {"emails of arrays", ResourceType::kUser, R"({"userName": "a", "emails": [[1]]})",
       ScimType::kInvalidValue, "'emails' must be an object"},
      {"name as a string", ResourceType::kUser, R"({"userName": "a", "name": "A B"})",
       ScimType::kInvalidValue, "'name' must be an object"},
      {"primary not a boolean", ResourceType::kUser,
       R"({"userName": "a", "emails": [{"value": "a@x", "primary": 1}]})", ScimType::kInvalidValue,
       "'emails.primary' must be a boolean"},
      {"extension not an object", ResourceType::kUser,
       R"({"userName": "a", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": 5})",
       ScimType::kInvalidValue,
       "'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User' must be an object"},
      {"not an object", ResourceType::kUser, R"(["userName"])", ScimType::kInvalidSyntax,
       "a resource must be a JSON object"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.name);
    Json resource = ParseJson(c.input);
    const Json before = resource;
    Status s = NormalizeResource(resource, c.type);
    ASSERT_FALSE(s.ok());
    EXPECT_THAT(s, StatusIs(StatusCode::kInvalidArgument));
    EXPECT_EQ(ScimTypeOf(s), c.scim_type) << s.ToString();
    EXPECT_EQ(ScimErrorDetail(s), c.detail);
    EXPECT_EQ(resource, before) << resource.Dump();
  }
}

}  // namespace
}  // namespace idsync::scim
