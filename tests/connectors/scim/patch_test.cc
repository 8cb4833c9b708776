#include "idsync/scim/patch.h"

#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "idsync/scim/errors.h"
#include "idsync/scim/json.h"
#include "idsync/scim/resource.h"
#include "idsync/testing/status_matchers.h"

namespace idsync::scim {
namespace {

Json ParseJson(std::string_view text) {
  Result<Json> json = Json::Parse(text);
  EXPECT_TRUE(json.ok()) << json.status().ToString() << "\n" << text;
  return json.ok() ? *json : Json();
}

// The stored shapes the cases start from.
constexpr std::string_view kUser = R"({
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
  "id": "u1",
  "userName": "bjensen@contoso.com",
  "active": true,
  "name": {"givenName": "Barbara", "familyName": "Jensen"},
  "emails": [{"value": "babs@home.example", "type": "home", "primary": true}]
})";

constexpr std::string_view kGroup = R"({
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
  "id": "g1",
  "displayName": "Tour Guides",
  "members": [{"value": "m1", "display": "Ann"}, {"value": "m2", "display": "Bob"}]
})";

struct PatchCase {
  std::string_view name;
  ResourceType type;
  std::string_view before;
  std::string_view body;   // the PatchOp request as the client sends it
  std::string_view after;  // the whole resource afterwards
  bool changed;
};

void RunCases(const std::vector<PatchCase>& cases) {
  for (const PatchCase& c : cases) {
    SCOPED_TRACE(c.name);
    Result<Patch> patch = Patch::Parse(ParseJson(c.body));
    ASSERT_TRUE(patch.ok()) << patch.status().ToString();
    Json resource = ParseJson(c.before);
    Result<bool> changed = patch->ApplyTo(resource, c.type);
    ASSERT_TRUE(changed.ok()) << changed.status().ToString();
    EXPECT_EQ(resource, ParseJson(c.after)) << resource.Dump();
    EXPECT_EQ(*changed, c.changed);
  }
}

TEST(ScimPatch, OktaDialect) {
  RunCases({
      {"deactivation: path-less replace of active", ResourceType::kUser, kUser,
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "replace", "value": {"active": false}}]})",
       R"({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "u1",
           "userName": "bjensen@contoso.com", "active": false,
           "name": {"givenName": "Barbara", "familyName": "Jensen"},
           "emails": [{"value": "babs@home.example", "type": "home", "primary": true}]})",
       true},
      {"reactivation", ResourceType::kUser,
       R"({"id": "u1", "userName": "bjensen@contoso.com", "active": false})",
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "replace", "value": {"active": true}}]})",
       R"({"id": "u1", "userName": "bjensen@contoso.com", "active": true})", true},
      {"password change is dropped, never stored", ResourceType::kUser,
       R"({"id": "u1", "userName": "bjensen@contoso.com", "active": true})",
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "replace", "value": {"password": "t1meMa$heen"}}]})",
       R"({"id": "u1", "userName": "bjensen@contoso.com", "active": true})", false},
      {"password by path is dropped too", ResourceType::kUser,
       R"({"id": "u1", "userName": "bjensen@contoso.com"})",
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "replace", "path": "password", "value": "x"}]})",
       R"({"id": "u1", "userName": "bjensen@contoso.com"})", false},
      {"group rename: path-less replace carrying the read-only id", ResourceType::kGroup, kGroup,
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "replace",
                           "value": {"id": "g1", "displayName": "Test SCIMv2"}}]})",
       R"({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1",
           "displayName": "Test SCIMv2",
           "members": [{"value": "m1", "display": "Ann"}, {"value": "m2", "display": "Bob"}]})",
       true},
      {"membership: remove by value filter plus add, in one PATCH", ResourceType::kGroup, kGroup,
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [
             {"op": "remove", "path": "members[value eq \"m1\"]"},
             {"op": "add", "path": "members",
              "value": [{"value": "m3", "display": "test.user@okta.local"}]}]})",
       R"({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1",
           "displayName": "Tour Guides",
           "members": [{"value": "m2", "display": "Bob"},
                       {"value": "m3", "display": "test.user@okta.local"}]})",
       true},
      {"removing a member already gone is a no-op", ResourceType::kGroup, kGroup,
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "remove", "path": "members[value eq \"m9\"]"}]})",
       kGroup, false},
      {"push now: replace members whole", ResourceType::kGroup, kGroup,
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "replace", "path": "members",
                           "value": [{"value": "m2", "display": "Bob"},
                                     {"value": "m4", "display": "Dee"}]}]})",
       R"({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1",
           "displayName": "Tour Guides",
           "members": [{"value": "m2", "display": "Bob"}, {"value": "m4", "display": "Dee"}]})",
       true},
      {"push now with no members left", ResourceType::kGroup, kGroup,
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "replace", "path": "members", "value": []}]})",
       R"({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1",
           "displayName": "Tour Guides", "members": []})",
       true},
  });
}

TEST(ScimPatch, EntraDialect) {
  RunCases({
      {"capitalised Replace with a boolean as a string", ResourceType::kUser,
       R"({"id": "u1", "userName": "a@contoso.com", "active": true})",
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "Replace", "path": "active", "value": "False"}]})",
       R"({"id": "u1", "userName": "a@contoso.com", "active": false})", true},
      {"path-less Replace whose keys are paths and extension attributes", ResourceType::kUser,
       kUser,
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "Replace", "value": {
             "displayName": "Babs Jensen",
             "name.givenName": "Babs",
             "name.familyName": "Jensen-Smith",
             "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Finance",
             "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "701984",
             "active": "True"}}]})",
       R"({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                       "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
           "id": "u1", "userName": "bjensen@contoso.com", "active": true,
           "displayName": "Babs Jensen",
           "name": {"givenName": "Babs", "familyName": "Jensen-Smith"},
           "emails": [{"value": "babs@home.example", "type": "home", "primary": true}],
           "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
             {"department": "Finance", "employeeNumber": "701984"}})",
       true},
      {"Add on a value path that matches nothing creates the element", ResourceType::kUser, kUser,
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "Add", "path": "emails[type eq \"work\"].value",
                           "value": "bjensen@contoso.com"}]})",
       R"({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "u1",
           "userName": "bjensen@contoso.com", "active": true,
           "name": {"givenName": "Barbara", "familyName": "Jensen"},
           "emails": [{"value": "babs@home.example", "type": "home", "primary": true},
                      {"type": "work", "value": "bjensen@contoso.com"}]})",
       true},
      {"Add on value paths for phone and address, the second reusing the first's element",
       ResourceType::kUser, R"({"id": "u1", "userName": "a@contoso.com"})",
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [
             {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"},
             {"op": "Add", "path": "addresses[type eq \"work\"].locality", "value": "Redmond"},
             {"op": "Add", "path": "addresses[type eq \"work\"].postalCode", "value": "98052"}]})",
       R"({"id": "u1", "userName": "a@contoso.com",
           "phoneNumbers": [{"type": "mobile", "value": "+1 555 0100"}],
           "addresses": [{"type": "work", "locality": "Redmond", "postalCode": "98052"}]})",
       true},
      {"Add on a value path that matches sets the sub-attribute", ResourceType::kUser,
       R"({"id": "u1", "userName": "a@contoso.com",
           "emails": [{"type": "work", "value": "old@contoso.com", "primary": true}]})",
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "Add", "path": "emails[type eq \"work\"].value",
                           "value": "new@contoso.com"}]})",
       R"({"id": "u1", "userName": "a@contoso.com",
           "emails": [{"type": "work", "value": "new@contoso.com", "primary": true}]})",
       true},
      {"Replace on a value path plus sub-attribute", ResourceType::kUser,
       R"({"id": "u1", "userName": "a@contoso.com",
           "emails": [{"type": "work", "value": "old@contoso.com"},
                      {"type": "home", "value": "me@home.example"}]})",
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [
             {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@contoso.com"},
             {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}]})",
       R"({"id": "u1", "userName": "a@contoso.com",
           "name": {"familyName": "updatedFamilyName"},
           "emails": [{"type": "work", "value": "new@contoso.com"},
                      {"type": "home", "value": "me@home.example"}]})",
       true},
      {"manager as a bare id", ResourceType::kUser, R"({"id": "u1", "userName": "a@contoso.com"})",
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "Add",
             "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
             "value": "26118915-6090-4610-87e4-49d8ca9f808d"}]})",
       R"({"id": "u1", "userName": "a@contoso.com",
           "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
             {"manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}}})",
       true},
      {"manager as an object replaces the previous manager", ResourceType::kUser,
       R"({"id": "u1", "userName": "a@contoso.com",
           "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
             {"manager": {"value": "old", "displayName": "Old Boss"}}})",
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "Replace",
             "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
             "value": "new"}]})",
       R"({"id": "u1", "userName": "a@contoso.com",
           "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
             {"manager": {"value": "new"}}})",
       true},
      {"manager removed, Entra listing the old value", ResourceType::kUser,
       R"({"id": "u1", "userName": "a@contoso.com",
           "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
             {"manager": {"value": "old"}, "department": "Sales"}})",
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "Remove",
             "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
             "value": [{"value": "old"}]}]})",
       R"({"id": "u1", "userName": "a@contoso.com",
           "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Sales"}})",
       true},
      {"Add members", ResourceType::kGroup, kGroup,
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"name": "addMember", "op": "Add", "path": "members",
                           "value": [{"displayName": "new User", "value": "m3"}]}]})",
       R"({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1",
           "displayName": "Tour Guides",
           "members": [{"value": "m1", "display": "Ann"}, {"value": "m2", "display": "Bob"},
                       {"value": "m3", "displayName": "new User"}]})",
       true},
      {"adding an existing member is a no-op", ResourceType::kGroup, kGroup,
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "Add", "path": "members", "value": [{"value": "M1"}]}]})",
       kGroup, false},
      {"Remove on members with a value array removes only those", ResourceType::kGroup,
       R"({"id": "g1", "displayName": "G",
           "members": [{"value": "m1"}, {"value": "m2"}, {"value": "m3"}]})",
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "Remove", "path": "members",
                           "value": [{"value": "m1"}, {"value": "m3"}, {"value": "m9"}]}]})",
       R"({"id": "g1", "displayName": "G", "members": [{"value": "m2"}]})", true},
      {"Remove of the last members unassigns the attribute", ResourceType::kGroup,
       R"({"id": "g1", "displayName": "G", "members": [{"value": "m1"}]})",
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "Remove", "path": "members", "value": [{"value": "m1"}]}]})",
       R"({"id": "g1", "displayName": "G"})", true},
      {"Replace displayName and externalId", ResourceType::kGroup, kGroup,
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [
             {"op": "Replace", "path": "displayName", "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"},
             {"op": "Replace", "path": "externalId", "value": "ext-9"}]})",
       R"({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1",
           "displayName": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName",
           "externalId": "ext-9",
           "members": [{"value": "m1", "display": "Ann"}, {"value": "m2", "display": "Bob"}]})",
       true},
      {"members given as bare id strings (Microsoft's suite)", ResourceType::kGroup,
       R"({"id": "g1", "displayName": "Group 1"})",
       R"({"id": "g1", "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "add", "path": "members", "value": "string id 1"}]})",
       R"({"id": "g1", "displayName": "Group 1", "members": [{"value": "string id 1"}]})", true},
      {"remove path members without a value clears them", ResourceType::kGroup, kGroup,
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "remove", "path": "members"}]})",
       R"({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1",
           "displayName": "Tour Guides"})",
       true},
      {"roles with primary as a string", ResourceType::kUser,
       R"({"id": "u1", "userName": "a@contoso.com"})",
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "Add", "path": "roles", "value": [
             {"primary": "True", "type": "WindowsAzureActiveDirectoryRole", "value": "Admin"}]}]})",
       R"({"id": "u1", "userName": "a@contoso.com",
           "roles": [{"primary": true, "type": "WindowsAzureActiveDirectoryRole", "value": "Admin"}]})",
       true},
      {"Replace userName and Add externalId", ResourceType::kUser,
       R"({"id": "u1", "userName": "a@contoso.com"})",
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "Replace", "path": "userName", "value": "ryan3"},
                          {"op": "Add", "path": "externalId", "value": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"}]})",
       R"({"id": "u1", "userName": "ryan3", "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"})",
       true},
  });
}

// Entra's delta sync replaces through value filters whatever was filled in
// since the last cycle, also when the user had no such value before; a
// refusal would lose the whole PATCH, deactivation included.
constexpr std::string_view kEntraUser = R"({
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
  "id": "u1",
  "userName": "maya@corp.example",
  "active": true,
  "emails": [{"value": "maya@corp.example", "type": "work", "primary": true}]
})";

TEST(ScimPatch, FilteredReplaceMatchingNothingCreatesTheValue) {
  RunCases({
      {"Entra's delta: a new mobile, a new office, and the leaver disabled", ResourceType::kUser,
       kEntraUser,
       R"({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
           {"op":"Replace","path":"phoneNumbers[type eq \"mobile\"].value","value":"+1 555 0142"},
           {"op":"Replace","path":"addresses[type eq \"work\"].locality","value":"Lisbon"},
           {"op":"Replace","path":"active","value":"False"}]})",
       R"({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "u1",
           "userName": "maya@corp.example", "active": false,
           "emails": [{"value": "maya@corp.example", "type": "work", "primary": true}],
           "phoneNumbers": [{"type": "mobile", "value": "+1 555 0142"}],
           "addresses": [{"type": "work", "locality": "Lisbon"}]})",
       true},
      {"a second value of an attribute that has others", ResourceType::kUser,
       R"({"id": "u1", "userName": "m@x", "phoneNumbers": [{"type": "work", "value": "1"}]})",
       R"({"Operations":[{"op":"replace","path":"phoneNumbers[type eq \"fax\"].value","value":"2"}]})",
       R"({"id": "u1", "userName": "m@x",
           "phoneNumbers": [{"type": "work", "value": "1"}, {"type": "fax", "value": "2"}]})",
       true},
      {"every eq term joined by and is set on the new value", ResourceType::kUser,
       R"({"id": "u1", "userName": "m@x",
           "phoneNumbers": [{"type": "mobile", "value": "1", "primary": true}]})",
       R"({"Operations":[{"op":"replace",
           "path":"phoneNumbers[type eq \"work\" and primary eq true].value","value":"2"}]})",
       R"({"id": "u1", "userName": "m@x",
           "phoneNumbers": [{"type": "mobile", "value": "1", "primary": false},
                            {"type": "work", "primary": true, "value": "2"}]})",
       true},
      {"a whole value replaced through a filter", ResourceType::kUser, kEntraUser,
       R"({"Operations":[{"op":"replace","path":"addresses[type eq \"work\"]",
           "value":{"streetAddress":"1 Rua Augusta","locality":"Lisbon","country":"PT"}}]})",
       R"({"id": "u1", "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
           "userName": "maya@corp.example", "active": true,
           "emails": [{"value": "maya@corp.example", "type": "work", "primary": true}],
           "addresses": [{"type": "work", "streetAddress": "1 Rua Augusta",
                          "locality": "Lisbon", "country": "PT"}]})",
       true},
      {"unassigning what is not there changes nothing", ResourceType::kUser, kEntraUser,
       R"({"Operations":[{"op":"replace","path":"phoneNumbers[type eq \"fax\"].value","value":null}]})",
       kEntraUser, false},
      {"a member by its id (as a filtered add does)", ResourceType::kGroup, kGroup,
       R"({"Operations":[{"op":"replace","path":"members[value eq \"m3\"].display","value":"Cy"}]})",
       R"({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1",
           "displayName": "Tour Guides",
           "members": [{"value": "m1", "display": "Ann"}, {"value": "m2", "display": "Bob"},
                       {"value": "m3", "display": "Cy"}]})",
       true},
  });
}

TEST(ScimPatch, StrictPatchKeepsNoTargetForAFilteredReplace) {
  Result<Patch> patch = Patch::Parse(ParseJson(
      R"({"Operations":[{"op":"replace","path":"phoneNumbers[type eq \"mobile\"].value","value":"1"},
                        {"op":"replace","path":"active","value":false}]})"));
  ASSERT_TRUE(patch.ok()) << patch.status().ToString();
  Json resource = ParseJson(kEntraUser);
  int failed_operation = -1;
  Result<bool> changed = patch->ApplyTo(resource, ResourceType::kUser, PatchOptions{.strict = true},
                                        &failed_operation);
  ASSERT_FALSE(changed.ok());
  EXPECT_EQ(ScimTypeOf(changed.status()), ScimType::kNoTarget);
  EXPECT_EQ(ScimErrorDetail(changed.status()),
            "Operations[0]: no value of 'phoneNumbers' matches the filter (strict_patch: nothing "
            "is created)");
  EXPECT_EQ(failed_operation, 0);
  EXPECT_EQ(resource, ParseJson(kEntraUser)) << "all or nothing";

  // A filtered add still creates under strict_patch (RFC 7644 3.5.2.1 allows it).
  patch = Patch::Parse(ParseJson(
      R"({"Operations":[{"op":"add","path":"phoneNumbers[type eq \"mobile\"].value","value":"1"}]})"));
  ASSERT_TRUE(patch.ok());
  changed = patch->ApplyTo(resource, ResourceType::kUser, PatchOptions{.strict = true});
  ASSERT_TRUE(changed.ok()) << changed.status().ToString();
  EXPECT_TRUE(*changed);
}

// The address is the primary e-mail, else the work one, else the first
// (config.md). A value created through a filter must not move it: that would
// read as one person leaving and another arriving.
TEST(ScimPatch, ACreatedEmailNeverTakesTheAddressOver) {
  RunCases({
      {"a work address on a user named by a non-primary home one: home becomes primary",
       ResourceType::kUser,
       R"({"id": "u1", "userName": "maya", "emails": [{"value": "maya@home.example", "type": "home"}]})",
       R"({"Operations":[{"op":"Replace","path":"emails[type eq \"work\"].value",
           "value":"maya@corp.example"}]})",
       R"({"id": "u1", "userName": "maya",
           "emails": [{"value": "maya@home.example", "type": "home", "primary": true},
                      {"type": "work", "value": "maya@corp.example"}]})",
       true},
      {"the same through an add", ResourceType::kUser,
       R"({"id": "u1", "userName": "maya", "emails": [{"value": "maya@home.example", "Type": "other", "Primary": false}]})",
       R"({"Operations":[{"op":"add","path":"emails[type eq \"work\"].value",
           "value":"maya@corp.example"}]})",
       R"({"id": "u1", "userName": "maya",
           "emails": [{"value": "maya@home.example", "type": "other", "primary": true},
                      {"type": "work", "value": "maya@corp.example"}]})",
       true},
      {"a created value that does not outrank the address leaves primaries alone",
       ResourceType::kUser, kEntraUser,
       R"({"Operations":[{"op":"replace","path":"emails[type eq \"home\"].value",
           "value":"maya@home.example"}]})",
       R"({"id": "u1", "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
           "userName": "maya@corp.example", "active": true,
           "emails": [{"value": "maya@corp.example", "type": "work", "primary": true},
                      {"type": "home", "value": "maya@home.example"}]})",
       true},
      {"a filter that asks for primary: the IdP names the new address", ResourceType::kUser,
       R"({"id": "u1", "userName": "maya", "emails": [{"value": "maya@home.example", "type": "home"}]})",
       R"({"Operations":[{"op":"replace","path":"emails[type eq \"work\" and primary eq true].value",
           "value":"maya@corp.example"}]})",
       R"({"id": "u1", "userName": "maya",
           "emails": [{"value": "maya@home.example", "type": "home"},
                      {"type": "work", "primary": true, "value": "maya@corp.example"}]})",
       true},
      {"no address before (userName is none): the created value names the user",
       ResourceType::kUser, R"({"id": "u1", "userName": "maya"})",
       R"({"Operations":[{"op":"replace","path":"emails[type eq \"work\"].value",
           "value":"maya@corp.example"}]})",
       R"({"id": "u1", "userName": "maya",
           "emails": [{"type": "work", "value": "maya@corp.example"}]})",
       true},
  });
}

// RFC 7643 2.4: at most one value of a multi-valued attribute is primary,
// and primary is a flag on a value, not part of what the value is.
TEST(ScimPatch, PrimaryStaysOneFlag) {
  RunCases({
      {"replace emails.primary true: the last value it made primary keeps the flag",
       ResourceType::kUser,
       R"({"id": "u1", "userName": "m", "emails": [{"value": "a@x"}, {"value": "b@x", "primary": true},
                                                   {"value": "c@x"}]})",
       R"({"Operations":[{"op":"replace","path":"emails.primary","value":true}]})",
       R"({"id": "u1", "userName": "m", "emails": [{"value": "a@x", "primary": false},
                                                   {"value": "b@x", "primary": false},
                                                   {"value": "c@x", "primary": true}]})",
       true},
      {"replace roles.primary true when the last was primary already", ResourceType::kUser,
       R"({"id": "u1", "userName": "m", "roles": [{"value": "admin"}, {"value": "org", "primary": true}]})",
       R"({"Operations":[{"op":"add","path":"roles.primary","value":true}]})",
       R"({"id": "u1", "userName": "m", "roles": [{"value": "admin", "primary": true},
                                                  {"value": "org", "primary": false}]})",
       true},
      {"a value already there, sent again as primary, is not added twice", ResourceType::kUser,
       R"({"id": "u1", "userName": "m",
           "emails": [{"value": "a@x", "type": "work", "primary": true}]})",
       R"({"Operations":[{"op":"add","path":"emails","value":[
           {"value": "b@x", "primary": true},
           {"value": "a@x", "type": "work", "primary": true}]}]})",
       R"({"id": "u1", "userName": "m",
           "emails": [{"value": "a@x", "type": "work", "primary": true},
                      {"value": "b@x", "primary": false}]})",
       true},
      {"adding a value as primary that is there without the flag sets the flag",
       ResourceType::kUser,
       R"({"id": "u1", "userName": "m", "emails": [{"value": "a@x"}, {"value": "b@x", "primary": true}]})",
       R"({"Operations":[{"op":"add","path":"emails","value":[{"value": "a@x", "primary": true}]}]})",
       R"({"id": "u1", "userName": "m", "emails": [{"value": "a@x", "primary": true},
                                                   {"value": "b@x", "primary": false}]})",
       true},
      {"the last flag sent for one value is the one it keeps", ResourceType::kUser,
       R"({"id": "u1", "userName": "m", "roles": [{"value": "admin"}]})",
       R"({"Operations":[{"op":"replace","path":"roles","value":[
           {"value": "viewer", "primary": true}, {"value": "viewer", "primary": false}]},
           {"op":"add","path":"roles","value":[{"value": "viewer", "type": "x"}]}]})",
       R"({"id": "u1", "userName": "m", "roles": [{"value": "viewer", "primary": false},
                                                  {"value": "viewer", "type": "x"}]})",
       true},
      {"keeping the address clears another primary flag", ResourceType::kUser,
       R"({"id": "u1", "userName": "m", "emails": [{"value": "a@x", "type": "home"},
                                                   {"type": "other", "primary": true}]})",
       R"({"Operations":[{"op":"add","path":"emails[type eq \"work\"].value","value":"w@x"}]})",
       R"({"id": "u1", "userName": "m",
           "emails": [{"value": "a@x", "type": "home", "primary": true},
                      {"type": "other", "primary": false},
                      {"type": "work", "value": "w@x"}]})",
       true},
  });
}

TEST(ScimPatch, GenericRfcSemantics) {
  RunCases({
      {"replace on a complex attribute merges its sub-attributes", ResourceType::kUser, kUser,
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "replace", "path": "name", "value": {"givenName": "Babs"}}]})",
       R"({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "u1",
           "userName": "bjensen@contoso.com", "active": true,
           "name": {"givenName": "Babs", "familyName": "Jensen"},
           "emails": [{"value": "babs@home.example", "type": "home", "primary": true}]})",
       true},
      {"remove a sub-attribute", ResourceType::kUser,
       R"({"id": "u1", "userName": "a", "name": {"givenName": "A", "familyName": "B"}})",
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "remove", "path": "name.givenName"}]})",
       R"({"id": "u1", "userName": "a", "name": {"familyName": "B"}})", true},
      {"remove the last sub-attribute unassigns the parent", ResourceType::kUser,
       R"({"id": "u1", "userName": "a", "name": {"givenName": "A"}})",
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "remove", "path": "NAME.GIVENNAME"}]})",
       R"({"id": "u1", "userName": "a"})", true},
      {"remove elements through a value filter", ResourceType::kUser,
       R"({"id": "u1", "userName": "a",
           "emails": [{"type": "work", "value": "w@x"}, {"type": "home", "value": "h@x"}]})",
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "remove", "path": "emails[type eq \"home\"]"}]})",
       R"({"id": "u1", "userName": "a", "emails": [{"type": "work", "value": "w@x"}]})", true},
      {"remove a sub-attribute through a value filter", ResourceType::kUser,
       R"({"id": "u1", "userName": "a",
           "emails": [{"type": "work", "value": "w@x", "display": "W"}]})",
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "remove", "path": "emails[type eq \"work\"].display"}]})",
       R"({"id": "u1", "userName": "a", "emails": [{"type": "work", "value": "w@x"}]})", true},
      {"replace whole elements through a value filter", ResourceType::kUser,
       R"({"id": "u1", "userName": "a",
           "emails": [{"type": "work", "value": "w@x", "display": "W"}]})",
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "replace", "path": "emails[type eq \"work\"]",
                           "value": {"type": "work", "value": "v@x"}}]})",
       R"({"id": "u1", "userName": "a", "emails": [{"type": "work", "value": "v@x"}]})", true},
      {"an added primary value takes primary from the others", ResourceType::kUser, kUser,
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "add", "path": "emails",
                           "value": [{"value": "w@x", "type": "work", "primary": true}]}]})",
       R"({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "u1",
           "userName": "bjensen@contoso.com", "active": true,
           "name": {"givenName": "Barbara", "familyName": "Jensen"},
           "emails": [{"value": "babs@home.example", "type": "home", "primary": false},
                      {"value": "w@x", "type": "work", "primary": true}]})",
       true},
      {"add to an extension creates it and lists its schema", ResourceType::kUser,
       R"({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "u1", "userName": "a"})",
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "add",
             "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter",
             "value": 4130}]})",
       R"({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                       "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
           "id": "u1", "userName": "a",
           "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"costCenter": "4130"}})",
       true},
      {"path-less add of a whole extension object merges it", ResourceType::kUser,
       R"({"id": "u1", "userName": "a",
           "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"division": "D"}})",
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "add", "value": {
             "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"Department": "X"}}}]})",
       R"({"id": "u1", "userName": "a",
           "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
             {"division": "D", "department": "X"}})",
       true},
      {"remove a whole extension drops its schema", ResourceType::kUser,
       R"({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                       "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
           "id": "u1", "userName": "a",
           "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"division": "D"}})",
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "remove",
             "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"}]})",
       R"({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "u1", "userName": "a"})",
       true},
      {"an unknown extension and unknown attributes are kept as sent", ResourceType::kUser,
       R"({"id": "u1", "userName": "a"})",
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [
             {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:Acme:2.0:User:badge", "value": 7},
             {"op": "add", "path": "favouriteColours", "value": ["green"]},
             {"op": "add", "path": "favouriteColours", "value": ["blue"]}]})",
       R"({"id": "u1", "userName": "a", "favouriteColours": ["green", "blue"],
           "urn:ietf:params:scim:schemas:extension:Acme:2.0:User": {"badge": 7}})",
       true},
      {"replace with null unassigns", ResourceType::kUser,
       R"({"id": "u1", "userName": "a", "title": "T"})",
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "replace", "path": "title", "value": null}]})",
       R"({"id": "u1", "userName": "a"})", true},
      {"remove of an absent attribute is a no-op", ResourceType::kUser,
       R"({"id": "u1", "userName": "a"})",
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "remove", "path": "nickName"},
                          {"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"}]})",
       R"({"id": "u1", "userName": "a"})", false},
      {"attribute names in any case keep the stored spelling", ResourceType::kUser,
       R"({"id": "u1", "userName": "a", "displayName": "A"})",
       R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
           "Operations": [{"op": "REPLACE", "path": "DisplayName", "value": "B"}]})",
       R"({"id": "u1", "userName": "a", "displayName": "B"})", true},
      {"a body without schemas is accepted", ResourceType::kUser,
       R"({"id": "u1", "userName": "a"})",
       R"({"Operations": [{"op": "add", "path": "title", "value": "T"}]})",
       R"({"id": "u1", "userName": "a", "title": "T"})", true},
  });
}

// ---------------------------------------------------------------------------
// Errors

struct ErrorCase {
  std::string_view name;
  ResourceType type;
  std::string_view before;
  std::string_view body;
  ScimType scim_type;
  std::string_view detail;
};

TEST(ScimPatch, ApplyErrorsHaveTheirScimTypeAndChangeNothing) {
  const std::vector<ErrorCase> cases = {
      {"id by path", ResourceType::kUser, kUser,
       R"({"Operations": [{"op": "replace", "path": "id", "value": "u2"}]})", ScimType::kMutability,
       "Operations[0]: 'id' is read-only"},
      {"a different id in a path-less replace", ResourceType::kGroup, kGroup,
       R"({"Operations": [{"op": "replace", "value": {"id": "g2", "displayName": "X"}}]})",
       ScimType::kMutability, "Operations[0]: 'id' is read-only"},
      {"meta", ResourceType::kUser, kUser,
       R"({"Operations": [{"op": "replace", "path": "meta.lastModified", "value": "2024-01-01T00:00:00Z"}]})",
       ScimType::kMutability, "Operations[0]: 'meta' is read-only"},
      {"a User's groups", ResourceType::kUser, kUser,
       R"({"Operations": [{"op": "add", "path": "groups", "value": [{"value": "g1"}]}]})",
       ScimType::kMutability,
       "Operations[0]: 'groups' is read-only; change the Group's members instead"},
      {"replace through an or filter matching nothing", ResourceType::kUser, kUser,
       R"({"Operations": [{"op": "replace", "path": "emails[type eq \"work\" or type eq \"other\"].value", "value": "w@x"}]})",
       ScimType::kNoTarget,
       "Operations[0]: no value of 'emails' matches the filter, and only eq terms joined by and "
       "can create one"},
      {"replace through a co filter matching nothing", ResourceType::kUser, kUser,
       R"({"Operations": [{"op": "replace", "path": "emails[value co \"@corp\"].type", "value": "work"}]})",
       ScimType::kNoTarget,
       "Operations[0]: no value of 'emails' matches the filter, and only eq terms joined by and "
       "can create one"},
      {"replace through an sw filter matching nothing", ResourceType::kUser, kUser,
       R"({"Operations": [{"op": "replace", "path": "phoneNumbers[type sw \"mob\"].value", "value": "1"}]})",
       ScimType::kNoTarget,
       "Operations[0]: no value of 'phoneNumbers' matches the filter, and only eq terms joined by "
       "and can create one"},
      {"replace through a not filter matching nothing", ResourceType::kUser, kUser,
       R"({"Operations": [{"op": "replace", "path": "emails[not (type eq \"home\")].value", "value": "w@x"}]})",
       ScimType::kNoTarget,
       "Operations[0]: no value of 'emails' matches the filter, and only eq terms joined by and "
       "can create one"},
      {"replace through eq terms that contradict each other", ResourceType::kUser, kUser,
       R"({"Operations": [{"op": "replace", "path": "emails[type eq \"work\" and type eq \"home\"].value", "value": "w@x"}]})",
       ScimType::kNoTarget, "Operations[0]: the filter on 'emails' cannot be satisfied"},
      {"replace of a whole element with a string", ResourceType::kUser, kUser,
       R"({"Operations": [{"op": "replace", "path": "emails[type eq \"work\"]", "value": "w@x"}]})",
       ScimType::kInvalidValue, "Operations[0]: a value of 'emails' must be an object"},
      {"add through a filter that cannot build an element", ResourceType::kUser, kUser,
       R"({"Operations": [{"op": "add", "path": "emails[type ne \"home\"].value", "value": "w@x"}]})",
       ScimType::kNoTarget,
       "Operations[0]: no value of 'emails' matches the filter, and only eq terms joined by and "
       "can create one"},
      {"a sub-attribute of a multi-valued attribute with no values", ResourceType::kUser,
       R"({"id": "u1", "userName": "a"})",
       R"({"Operations": [{"op": "replace", "path": "emails.value", "value": "w@x"}]})",
       ScimType::kNoTarget, "Operations[0]: 'emails' has no values"},
      {"a boolean that is not one", ResourceType::kUser, kUser,
       R"({"Operations": [{"op": "Replace", "path": "active", "value": "maybe"}]})",
       ScimType::kInvalidValue, "Operations[0]: 'active' must be a boolean"},
      {"a complex attribute given a number", ResourceType::kUser, kUser,
       R"({"Operations": [{"op": "replace", "path": "name", "value": 5}]})",
       ScimType::kInvalidValue, "Operations[0]: 'name' must be an object"},
      {"a string attribute given an object", ResourceType::kUser, kUser,
       R"({"Operations": [{"op": "replace", "value": {"userName": {"x": 1}}}]})",
       ScimType::kInvalidValue, "Operations[0]: 'userName' must be a string"},
      {"a sub-attribute of a simple attribute", ResourceType::kUser, kUser,
       R"({"Operations": [{"op": "replace", "path": "userName.first", "value": "x"}]})",
       ScimType::kInvalidPath, "Operations[0]: 'userName' has no sub-attributes"},
      {"a value filter on a single-valued attribute", ResourceType::kUser, kUser,
       R"({"Operations": [{"op": "replace", "path": "name[givenName eq \"B\"].familyName", "value": "x"}]})",
       ScimType::kInvalidPath, "Operations[0]: 'name' is not multi-valued"},
      {"a whole extension given a string", ResourceType::kUser, kUser,
       R"({"Operations": [{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "value": "x"}]})",
       ScimType::kInvalidValue,
       "Operations[0]: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User' takes an "
       "object"},
      {"removing userName", ResourceType::kUser, kUser,
       R"({"Operations": [{"op": "remove", "path": "userName"}]})", ScimType::kInvalidValue,
       "userName is required"},
      {"removing a Group's displayName", ResourceType::kGroup, kGroup,
       R"({"Operations": [{"op": "replace", "path": "displayName", "value": ""}]})",
       ScimType::kInvalidValue, "displayName is required"},
  };
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(c.name);
    Result<Patch> patch = Patch::Parse(ParseJson(c.body));
    ASSERT_TRUE(patch.ok()) << patch.status().ToString();
    Json resource = ParseJson(c.before);
    const Json before = resource;
    Result<bool> changed = patch->ApplyTo(resource, c.type);
    ASSERT_FALSE(changed.ok());
    EXPECT_THAT(changed, StatusIs(StatusCode::kInvalidArgument));
    EXPECT_EQ(ScimTypeOf(changed.status()), c.scim_type) << changed.status().ToString();
    EXPECT_EQ(ScimErrorDetail(changed.status()), c.detail);
    EXPECT_EQ(resource, before) << resource.Dump();
  }
}

TEST(ScimPatch, MalformedRequestsFailToParse) {
  struct Case {
    std::string_view body;
    ScimType scim_type;
    std::string_view detail;
  };
  const std::vector<Case> cases = {
      {"[]", ScimType::kInvalidSyntax, "a PATCH body must be a JSON object"},
      {R"({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]})",
       ScimType::kInvalidSyntax, "'Operations' must be a non-empty array"},
      {R"({"Operations": []})", ScimType::kInvalidSyntax, "'Operations' must be a non-empty array"},
      {R"({"Operations": {"op": "add"}})", ScimType::kInvalidSyntax,
       "'Operations' must be a non-empty array"},
      {R"({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
           "Operations": [{"op": "add", "path": "title", "value": "x"}]})",
       ScimType::kInvalidSyntax,
       "'schemas' must list urn:ietf:params:scim:api:messages:2.0:PatchOp"},
      {R"({"Operations": ["add"]})", ScimType::kInvalidSyntax, "Operations[0]: not an object"},
      {R"({"Operations": [{"path": "title", "value": "x"}]})", ScimType::kInvalidSyntax,
       "Operations[0]: 'op' must be a string"},
      {R"({"Operations": [{"op": "add", "path": "title", "value": "x"},
                          {"op": "copy", "path": "title"}]})",
       ScimType::kInvalidSyntax, "Operations[1]: unknown op 'copy'"},
      {R"({"Operations": [{"op": "add", "path": "title"}]})", ScimType::kInvalidValue,
       "Operations[0]: 'value' is required"},
      {R"({"Operations": [{"op": "replace", "value": "x"}]})", ScimType::kInvalidValue,
       "Operations[0]: without a path, 'value' must be an object"},
      {R"({"Operations": [{"op": "remove"}]})", ScimType::kNoTarget,
       "Operations[0]: remove needs a path"},
      {R"({"Operations": [{"op": "remove", "path": ""}]})", ScimType::kNoTarget,
       "Operations[0]: remove needs a path"},
      {R"({"Operations": [{"op": "add", "path": 5, "value": "x"}]})", ScimType::kInvalidPath,
       "Operations[0]: 'path' must be a string"},
      {R"({"Operations": [{"op": "add", "path": "name..givenName", "value": "x"}]})",
       ScimType::kInvalidPath,
       "Operations[0]: malformed sub-attribute in 'name..givenName' at offset 0"},
      {R"({"Operations": [{"op": "add", "path": "title x", "value": "x"}]})",
       ScimType::kInvalidPath, "Operations[0]: unexpected 'x' at offset 6"},
      {R"({"Operations": [{"op": "remove", "path": "members[value eq \"m1\""}]})",
       ScimType::kInvalidFilter, "Operations[0]: expected ']' at offset 21"},
      {R"({"Operations": [{"op": "remove", "path": "members[value zz \"m1\"]"}]})",
       ScimType::kInvalidFilter, "Operations[0]: unknown operator 'zz' at offset 14"},
      {R"({"Operations": [{"op": "replace", "value": {"na me": "x"}}]})", ScimType::kInvalidPath,
       "Operations[0]: value key 'na me': unexpected 'm' at offset 3"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.body);
    Result<Patch> patch = Patch::Parse(ParseJson(c.body));
    ASSERT_FALSE(patch.ok());
    EXPECT_THAT(patch, StatusIs(StatusCode::kInvalidArgument));
    EXPECT_EQ(ScimTypeOf(patch.status()), c.scim_type) << patch.status().ToString();
    EXPECT_EQ(ScimErrorDetail(patch.status()), c.detail);
  }
}

// ---------------------------------------------------------------------------
// Atomicity

TEST(ScimPatch, FailingSecondOperationLeavesResourceUnchanged) {
  Result<Patch> patch = Patch::Parse(ParseJson(R"({
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [
      {"op": "replace", "path": "displayName", "value": "Changed"},
      {"op": "replace", "path": "emails[type ne \"home\"].value", "value": "x@y"}]})"));
  ASSERT_TRUE(patch.ok()) << patch.status().ToString();
  Json resource = ParseJson(kUser);
  int failed_operation = -1;
  Result<bool> changed = patch->ApplyTo(resource, ResourceType::kUser, {}, &failed_operation);
  ASSERT_FALSE(changed.ok());
  EXPECT_EQ(ScimTypeOf(changed.status()), ScimType::kNoTarget);
  EXPECT_EQ(ScimErrorDetail(changed.status()),
            "Operations[1]: no value of 'emails' matches the filter, and only eq terms joined by "
            "and can create one");
  EXPECT_EQ(failed_operation, 1);
  EXPECT_EQ(resource, ParseJson(kUser)) << resource.Dump();
}

TEST(ScimPatch, ParseReportsTheOperationAtFault) {
  int failed_operation = -1;
  Result<Patch> patch =
      Patch::Parse(ParseJson(R"({"Operations": [{"op": "add", "path": "title", "value": "x"},
                                   {"op": "add", "path": "title", "value": "y"},
                                   {"op": "copy", "path": "title"}]})"),
                   &failed_operation);
  ASSERT_FALSE(patch.ok());
  EXPECT_EQ(failed_operation, 2);
  failed_operation = -1;
  patch = Patch::Parse(ParseJson(R"({"Operations": []})"), &failed_operation);
  ASSERT_FALSE(patch.ok());
  EXPECT_EQ(failed_operation, -1) << "the body as a whole, not one operation";
}

TEST(ScimPatch, FailingFinalCheckNamesNoOperation) {
  Result<Patch> patch =
      Patch::Parse(ParseJson(R"({"Operations": [{"op": "remove", "path": "userName"}]})"));
  ASSERT_TRUE(patch.ok());
  Json resource = ParseJson(kUser);
  int failed_operation = -1;
  ASSERT_FALSE(patch->ApplyTo(resource, ResourceType::kUser, {}, &failed_operation).ok());
  EXPECT_EQ(failed_operation, -1);
}

TEST(ScimPatch, FailingFinalCheckLeavesResourceUnchanged) {
  Result<Patch> patch = Patch::Parse(ParseJson(R"({
    "Operations": [{"op": "add", "path": "title", "value": "T"},
                   {"op": "remove", "path": "userName"}]})"));
  ASSERT_TRUE(patch.ok()) << patch.status().ToString();
  Json resource = ParseJson(kUser);
  Result<bool> changed = patch->ApplyTo(resource, ResourceType::kUser);
  ASSERT_FALSE(changed.ok());
  EXPECT_EQ(ScimTypeOf(changed.status()), ScimType::kInvalidValue);
  EXPECT_EQ(resource, ParseJson(kUser)) << resource.Dump();
}

TEST(ScimPatch, ParsedPatchAppliesToManyResources) {
  Result<Patch> patch = Patch::Parse(ParseJson(
      R"({"Operations": [{"op": "add", "path": "members", "value": [{"value": "m9"}]}]})"));
  ASSERT_TRUE(patch.ok());
  Json a = ParseJson(R"({"id": "g1", "displayName": "A"})");
  Json b = ParseJson(R"({"id": "g2", "displayName": "B", "members": [{"value": "m9"}]})");
  ASSERT_TRUE(patch->ApplyTo(a, ResourceType::kGroup).ok());
  Result<bool> b_changed = patch->ApplyTo(b, ResourceType::kGroup);
  ASSERT_TRUE(b_changed.ok());
  EXPECT_FALSE(*b_changed);
  EXPECT_EQ(a, ParseJson(R"({"id": "g1", "displayName": "A", "members": [{"value": "m9"}]})"));
}

// Values are matched by hash, then confirmed: the same outcomes as comparing
// every pair, on the cases where "the same value" is subtle.
TEST(ScimPatch, HashedMatchingKeepsWhatTheSameValueMeans) {
  RunCases({
      {"members differing in case are one member", ResourceType::kGroup,
       R"({"id": "g1", "displayName": "G", "members": [{"value": "ABC"}, {"value": "d"}]})",
       R"({"Operations":[{"op":"add","path":"members","value":[{"value":"abc"},{"value":"e"},{"value":"E"}]}]})",
       R"({"id": "g1", "displayName": "G",
           "members": [{"value": "ABC"}, {"value": "d"}, {"value": "e"}]})",
       true},
      {"members are the same by value whatever else they carry", ResourceType::kGroup,
       R"({"id": "g1", "displayName": "G", "members": [{"value": "a", "display": "Ann"}]})",
       R"({"Operations":[{"op":"add","path":"members","value":[{"value":"a","display":"Other"}]}]})",
       R"({"id": "g1", "displayName": "G", "members": [{"value": "a", "display": "Ann"}]})", false},
      {"remove by value takes every copy, in any case", ResourceType::kGroup,
       R"({"id": "g1", "displayName": "G",
           "members": [{"value": "m1"}, {"value": "M1"}, {"value": "m2"}, {"value": "m1"}]})",
       R"({"Operations":[{"op":"remove","path":"members","value":[{"value":"m1"},{"value":"m1"}]}]})",
       R"({"id": "g1", "displayName": "G", "members": [{"value": "m2"}]})", true},
      {"other values compare whole, numbers by value, primary aside", ResourceType::kUser,
       R"({"id": "u1", "userName": "m", "x-tags": [1, {"k": 2.0, "primary": true}]})",
       R"({"Operations":[{"op":"add","path":"x-tags","value":[1.0, {"k": 2}, {"k": 3}, "1"]}]})",
       R"({"id": "u1", "userName": "m", "x-tags": [1, {"k": 2.0, "primary": true}, {"k": 3}, "1"]})",
       true},
      {"emails differing in case are two values (only members compare by value)",
       ResourceType::kUser, R"({"id": "u1", "userName": "m", "emails": [{"value": "a@x"}]})",
       R"({"Operations":[{"op":"add","path":"emails","value":[{"value":"A@x"}]}]})",
       R"({"id": "u1", "userName": "m", "emails": [{"value": "a@x"}, {"value": "A@x"}]})", true},
      {"a filtered remove of many members keeps the order of the rest", ResourceType::kGroup,
       R"({"id": "g1", "displayName": "G",
           "members": [{"value": "a1"}, {"value": "b1"}, {"value": "a2"}, {"value": "b2"}]})",
       R"({"Operations":[{"op":"remove","path":"members[value sw \"a\"]"}]})",
       R"({"id": "g1", "displayName": "G", "members": [{"value": "b1"}, {"value": "b2"}]})", true},
  });
}

// Runs of member removes through members[value eq "…"] and of member adds
// are applied in one pass each; the outcome is that of applying them in turn.
TEST(ScimPatch, RunsOfMemberOperationsActAsOneAtATime) {
  RunCases({
      {"removes and adds interleaved", ResourceType::kGroup,
       R"({"id": "g1", "displayName": "G", "members": [{"value": "m1"}, {"value": "m2"}, {"value": "m3"}]})",
       R"({"Operations":[{"op":"remove","path":"members[value eq \"M1\"]"},
                         {"op":"remove","path":"members[value eq \"m3\"]"},
                         {"op":"remove","path":"members[value eq \"gone\"]"},
                         {"op":"add","path":"members","value":[{"value":"m5"}]},
                         {"op":"add","path":"Members","value":{"value":"m1"}},
                         {"op":"add","value":{"members":[{"value":"M5"},{"value":"m6"}]}},
                         {"op":"remove","path":"members[value eq \"m5\"]"}]})",
       R"({"id": "g1", "displayName": "G", "members": [{"value": "m2"}, {"value": "m1"}, {"value": "m6"}]})",
       true},
      {"removing every member drops the attribute; a later add brings it back",
       ResourceType::kGroup,
       R"({"id": "g1", "displayName": "G", "members": [{"value": "m1"}, {"value": "m2"}]})",
       R"({"Operations":[{"op":"remove","path":"members[value eq \"m1\"]"},
                         {"op":"remove","path":"members[value eq \"m2\"]"},
                         {"op":"remove","path":"members[value eq \"m3\"]"}]})",
       R"({"id": "g1", "displayName": "G"})", true},
      {"removes on a group without members change nothing", ResourceType::kGroup,
       R"({"id": "g1", "displayName": "G"})",
       R"({"Operations":[{"op":"remove","path":"members[value eq \"m1\"]"},
                         {"op":"remove","path":"members[value eq \"m2\"]"}]})",
       R"({"id": "g1", "displayName": "G"})", false},
      {"other filters end a run", ResourceType::kGroup,
       R"({"id": "g1", "displayName": "G", "members": [{"value": "a1"}, {"value": "b1"}, {"value": "c1"}]})",
       R"({"Operations":[{"op":"remove","path":"members[value eq \"c1\"]"},
                         {"op":"remove","path":"members[value sw \"a\"]"},
                         {"op":"remove","path":"members[value eq \"zz\"]"}]})",
       R"({"id": "g1", "displayName": "G", "members": [{"value": "b1"}]})", true},
  });
  // An add in a run whose value is not a member is refused as that operation.
  Result<Patch> patch = Patch::Parse(ParseJson(
      R"({"Operations":[{"op":"add","path":"members","value":[{"value":"m1"}]},
                        {"op":"add","path":"members","value":[7]}]})"));
  ASSERT_TRUE(patch.ok()) << patch.status().ToString();
  Json group = ParseJson(kGroup);
  int failed = -1;
  Result<bool> changed = patch->ApplyTo(group, ResourceType::kGroup, {}, &failed);
  ASSERT_FALSE(changed.ok());
  EXPECT_EQ(ScimTypeOf(changed.status()), ScimType::kInvalidValue);
  EXPECT_TRUE(ScimErrorDetail(changed.status()).starts_with("Operations[1]: "))
      << ScimErrorDetail(changed.status());
  EXPECT_EQ(failed, 1);
  EXPECT_EQ(group, ParseJson(kGroup));
}

TEST(ScimPatch, ValuesCountsWhatTheRequestAddsOrRemoves) {
  struct Case {
    std::string_view body;
    size_t values;
  };
  const std::vector<Case> cases = {
      {R"({"Operations":[{"op":"add","path":"members","value":[{"value":"a"},{"value":"b"}]}]})",
       2},
      {R"({"Operations":[{"op":"remove","path":"members[value eq \"a\"]"},
                         {"op":"replace","path":"displayName","value":"x"}]})",
       2},
      {R"({"Operations":[{"op":"add","value":{"members":[{"value":"a"},{"value":"b"},{"value":"c"}],
                                              "displayName":"x"}}]})",
       4},
      {R"({"Operations":[{"op":"remove","path":"members","value":[]}]})", 0},
  };
  for (const Case& c : cases) {
    Result<Patch> patch = Patch::Parse(ParseJson(c.body));
    ASSERT_TRUE(patch.ok()) << c.body << ": " << patch.status().ToString();
    EXPECT_EQ(patch->values(), c.values) << c.body;
  }
}

TEST(ScimPatch, PathsHaveTheFilterLimits) {
  std::string filter;
  for (int i = 0; i < 1001; ++i) {
    filter += (i > 0 ? " or value eq \"m" : "value eq \"m") + std::to_string(i) + "\"";
  }
  nlohmann::json body = {{"Operations", {{{"op", "remove"}, {"path", "members[" + filter + "]"}}}}};
  Result<Patch> patch = Patch::Parse(ParseJson(body.dump()));
  ASSERT_FALSE(patch.ok());
  EXPECT_EQ(ScimTypeOf(patch.status()), ScimType::kInvalidFilter);
  EXPECT_TRUE(ScimErrorDetail(patch.status())
                  .starts_with("Operations[0]: filter has more than 1000 comparisons (the limit)"))
      << ScimErrorDetail(patch.status());

  body["Operations"][0]["path"] = "members[value eq \"" + std::string(70000, 'x') + "\"]";
  patch = Patch::Parse(ParseJson(body.dump()));
  ASSERT_FALSE(patch.ok());
  EXPECT_EQ(ScimTypeOf(patch.status()), ScimType::kInvalidPath);
  EXPECT_EQ(ScimErrorDetail(patch.status()),
            "Operations[0]: path is longer than 65536 bytes (the limit)");

  body["Operations"][0]["path"] =
      "members[" + std::string(40, '(') + "value pr" + std::string(40, ')') + "]";
  patch = Patch::Parse(ParseJson(body.dump()));
  ASSERT_FALSE(patch.ok());
  EXPECT_EQ(ScimTypeOf(patch.status()), ScimType::kInvalidFilter);
  EXPECT_TRUE(ScimErrorDetail(patch.status()).find("filter nests deeper than 32 levels") !=
              std::string_view::npos);
}

TEST(ScimPatch, NonObjectResourceIsInvalidSyntax) {
  Result<Patch> patch =
      Patch::Parse(ParseJson(R"({"Operations": [{"op": "add", "path": "t", "value": 1}]})"));
  ASSERT_TRUE(patch.ok());
  Json resource = ParseJson("[1]");
  Result<bool> changed = patch->ApplyTo(resource, ResourceType::kUser);
  ASSERT_FALSE(changed.ok());
  EXPECT_EQ(ScimTypeOf(changed.status()), ScimType::kInvalidSyntax);
}

}  // namespace
}  // namespace idsync::scim
