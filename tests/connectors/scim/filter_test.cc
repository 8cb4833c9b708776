#include "idsync/scim/filter.h"

#include <string>
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
  EXPECT_TRUE(json.ok()) << json.status().ToString();
  return json.ok() ? *json : Json();
}

// ---------------------------------------------------------------------------
// Grammar

struct GrammarCase {
  std::string_view filter;
  std::string_view printed;  // Filter::ToString()
};

TEST(ScimFilterParse, ValidFiltersParseWithScimPrecedence) {
  const std::vector<GrammarCase> cases = {
      // RFC 7644 3.4.2.2 examples.
      {R"(userName eq "bjensen")", R"(userName eq "bjensen")"},
      {R"(name.familyName co "O'Malley")", R"(name.familyName co "O'Malley")"},
      {R"(userName sw "J")", R"(userName sw "J")"},
      {R"(urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J")",
       R"(urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J")"},
      {"title pr", "title pr"},
      {R"(meta.lastModified gt "2011-05-13T04:42:34Z")",
       R"(meta.lastModified gt "2011-05-13T04:42:34Z")"},
      {R"(title pr and userType eq "Employee")", R"((title pr and userType eq "Employee"))"},
      {R"(title pr or userType eq "Intern")", R"((title pr or userType eq "Intern"))"},
      {R"(schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")",
       R"(schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")"},
      {R"(userType eq "Employee" and (emails co "example.com" or emails.value co "example.org"))",
       R"((userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")))"},
      {R"(userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org"))",
       R"((userType ne "Employee" and not ((emails co "example.com" or emails.value co "example.org"))))"},
      {R"(userType eq "Employee" and emails[type eq "work" and value co "@example.com"])",
       R"((userType eq "Employee" and emails[(type eq "work" and value co "@example.com")]))"},
      {R"(emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"])",
       R"((emails[(type eq "work" and value co "@example.com")] or ims[(type eq "xmpp" and value co "@foo.com")]))"},
      // Precedence: not > and > or; and/or associate to the left.
      {"a eq 1 or b eq 2 and c eq 3", "(a eq 1 or (b eq 2 and c eq 3))"},
      {"a eq 1 and b eq 2 or c eq 3", "((a eq 1 and b eq 2) or c eq 3)"},
      {"a eq 1 and b eq 2 and c eq 3", "(a eq 1 and b eq 2 and c eq 3)"},
      {"a eq 1 or b eq 2 or c eq 3", "(a eq 1 or b eq 2 or c eq 3)"},
      {"not (a eq 1) and b eq 2", "(not (a eq 1) and b eq 2)"},
      {"(a eq 1 or b eq 2) and c eq 3", "((a eq 1 or b eq 2) and c eq 3)"},
      {"not(a pr)", "not (a pr)"},
      {"not (not (a pr))", "not (not (a pr))"},
      {"((a pr))", "a pr"},
      // Case-insensitive operators and keywords.
      {R"(userName EQ "x" AND title Pr OR nickName pR)",
       R"(((userName eq "x" and title pr) or nickName pr))"},
      {"a eq 1 Or NOT (b eq 2)", "(a eq 1 or not (b eq 2))"},
      // Value paths, with a sub-attribute and an operator as Entra sends.
      {R"(emails[type eq "work"].value eq "a@b.example")",
       R"(emails[type eq "work"].value eq "a@b.example")"},
      {R"(emails[type eq "work" and primary eq true])",
       R"(emails[(type eq "work" and primary eq true)])"},
      {R"(members[value eq "2819c223"])", R"(members[value eq "2819c223"])"},
      {R"(emails[not (type eq "work")])", R"(emails[not (type eq "work")])"},
      {"emails[type eq work]", R"(emails[type eq "work"])"},
      // URN-qualified names; known URNs take their schema spelling.
      {R"(urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984")",
       R"(urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984")"},
      {R"(URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:manager.value eq "x")",
       R"(urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "x")"},
      {R"(urn:ietf:params:scim:schemas:extension:Acme:2.0:User:badge eq "7")",
       R"(urn:ietf:params:scim:schemas:extension:Acme:2.0:User:badge eq "7")"},
      // Literals.
      {"a eq true", "a eq true"},
      {"a eq False", "a eq false"},
      {"a eq null", "a eq null"},
      {"a ne NULL", "a ne null"},
      {"a eq -1.5e3", "a eq -1.5e3"},
      {"a eq 0", "a eq 0"},
      {R"(a eq "q\"uote\\back\/sl\u00e9\ud83d\ude00")",
       "a eq \"q\\\"uote\\\\back/sl\xC3\xA9\xF0\x9F\x98\x80\""},
      {R"(a eq "tab\there")", R"(a eq "tab\there")"},
      {R"(a eq "")", R"(a eq "")"},
      // Unquoted values without spaces are strings (Microsoft's suite).
      {"userName eq foo@bar.example", R"(userName eq "foo@bar.example")"},
      {"meta.Created gt 2015-10-10T14:38:21.8617979-07:00",
       R"(meta.Created gt "2015-10-10T14:38:21.8617979-07:00")"},
      {"name.FamilyName eq Employee and (emails.Value co example.com or emails.Value co "
       "example.org)",
       R"((name.FamilyName eq "Employee" and (emails.Value co "example.com" or emails.Value co "example.org")))"},
      {"userName sw O", R"(userName sw "O")"},
      {"a eq 12abc", R"(a eq "12abc")"},
      // Whitespace, sub-attribute $ref, an attribute called "not".
      {"  userName   eq   \"x\"  ", R"(userName eq "x")"},
      {"( a pr )", "a pr"},
      {"members.$ref pr", "members.$ref pr"},
      {"not pr", "not pr"},
      {"x-rank_2 gt 3", "x-rank_2 gt 3"},
  };
  for (const GrammarCase& c : cases) {
    Result<Filter> f = Filter::Parse(c.filter);
    ASSERT_TRUE(f.ok()) << c.filter << ": " << f.status().ToString();
    EXPECT_EQ(f->ToString(), c.printed) << c.filter;
  }
}

struct InvalidCase {
  std::string_view filter;
  std::string_view detail;  // the message without "invalidFilter: "
};

TEST(ScimFilterParse, MalformedFiltersAreInvalidFilterWithOffset) {
  const std::string too_deep = std::string(40, '(') + "a pr" + std::string(40, ')');
  const std::vector<InvalidCase> cases = {
      {"", "empty filter at offset 0"},
      {"   ", "empty filter at offset 3"},
      {"userName", "expected an operator after 'userName' at offset 8"},
      {"userName eq", "expected a value after 'eq' at offset 11"},
      {"userName eq ", "expected a value at offset 12"},
      {R"(userName xx "a")", "unknown operator 'xx' at offset 9"},
      {R"(userName eq "abc)", "unterminated string at offset 12"},
      {R"(userName eq "a" and)", "expected a filter after 'and' at offset 19"},
      {R"(userName eq "a" or )", "expected an attribute name at offset 19"},
      {R"((userName eq "a")", "expected ')' at offset 16"},
      {R"(userName eq "a"))", "unexpected ')' at offset 15"},
      {R"(userName eq "a" "b")", "unexpected '\"' at offset 16"},
      {"userName eq foo bar", "unexpected 'b' at offset 16"},
      {R"(userName eq "x" andtitle pr)", "unexpected 'a' at offset 16"},
      {R"(emails[type eq "work")", "expected ']' at offset 21"},
      {R"(emails[type eq "work"].)", "expected a sub-attribute at offset 23"},
      {"emails[]", "empty value filter at offset 7"},
      {R"(emails[type[value eq "x"] eq "y"])", "value filters cannot nest at offset 11"},
      {R"(name.givenName[value eq "x"])",
       "a value filter must follow an attribute name at offset 14"},
      {R"(1abc eq "x")", "malformed attribute name '1abc' at offset 0"},
      {R"(name..givenName eq "x")", "malformed sub-attribute in 'name..givenName' at offset 0"},
      {R"(name.givenName.x eq "y")", "malformed sub-attribute in 'name.givenName.x' at offset 0"},
      {"active gt true", "'gt' does not apply to boolean 'active' at offset 7"},
      {R"(emails[primary lt "true"])", "'lt' does not apply to boolean 'primary' at offset 15"},
      {"title co null", "null can only be compared with eq or ne at offset 9"},
      {R"(userName eq "a\q")", "bad escape '\\q' at offset 14"},
      {R"(userName eq "\ud800")", "unpaired surrogate at offset 19"},
      {R"(userName eq "\u12G4")", "bad hex digit in \\u escape at offset 17"},
      {"userName eq \"a\x01\"", "control character in string at offset 14"},
      {"userName eq (x)", "malformed value '(x' at offset 12"},
      {R"(not userName eq "x")", "unknown operator 'userName' at offset 4"},
      {R"(urn:ietf:params:scim:schemas:extension:enterprise:2.0:User eq "x")",
       "expected an attribute name after the schema URN at offset 0"},
      {R"(urn:acme: eq "x")", "expected an attribute name after the schema URN at offset 0"},
      {too_deep, "filter nests deeper than 32 levels (the limit) at offset 33"},
  };
  for (const InvalidCase& c : cases) {
    Result<Filter> f = Filter::Parse(c.filter);
    ASSERT_FALSE(f.ok()) << c.filter << " parsed as " << f->ToString();
    EXPECT_THAT(f, StatusIs(StatusCode::kInvalidArgument)) << c.filter;
    EXPECT_EQ(ScimTypeOf(f.status()), ScimType::kInvalidFilter) << c.filter;
    EXPECT_EQ(ScimErrorDetail(f.status()), c.detail) << c.filter;
  }
}

// ---------------------------------------------------------------------------
// Limits: comparisons, nesting and length (docs/scim-compatibility.md)

// `n` comparisons joined by `op`: "userName eq \"u0\" or userName eq ...".
std::string Chain(int n, std::string_view op) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    if (i > 0) out += " " + std::string(op) + " ";
    out += "userName eq \"u" + std::to_string(i) + "\"";
  }
  return out;
}

void ExpectInvalidFilter(const Result<Filter>& f, std::string_view detail) {
  ASSERT_FALSE(f.ok());
  EXPECT_THAT(f, StatusIs(StatusCode::kInvalidArgument));
  EXPECT_EQ(ScimTypeOf(f.status()), ScimType::kInvalidFilter);
  EXPECT_EQ(ScimErrorDetail(f.status()), detail);
}

TEST(ScimFilterLimits, HugeOrChainIsRefusedNamingTheComparisonLimit) {
  const std::string text = Chain(120001, "or");
  // The 1,001st comparison starts after 1,000 terms and their " or ".
  const size_t at = Chain(1000, "or").size() + 4;
  ExpectInvalidFilter(
      Filter::Parse(text),
      "filter has more than 1000 comparisons (the limit) at offset " + std::to_string(at));
}

TEST(ScimFilterLimits, ExactlyAThousandComparisonsParseAndEvaluate) {
  for (std::string_view op : {"or", "and"}) {
    Result<Filter> f = Filter::Parse(Chain(1000, op));
    ASSERT_TRUE(f.ok()) << op << ": " << f.status().ToString();
    // Printed as one chain, which parses again (nested pairs would pass the
    // nesting limit).
    EXPECT_TRUE(f->ToString().starts_with("(userName eq \"u0\" " + std::string(op) +
                                          " userName eq \"u1\" " + std::string(op)))
        << op;
    Result<Filter> again = Filter::Parse(f->ToString());
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(again->ToString(), f->ToString());
    EXPECT_EQ(f->Matches(ParseJson(R"({"userName": "U999"})")), op == "or") << op;
    EXPECT_FALSE(f->Matches(ParseJson(R"({"userName": "u1000"})"))) << op;
  }
  ExpectInvalidFilter(Filter::Parse(Chain(1001, "and")),
                      "filter has more than 1000 comparisons (the limit) at offset " +
                          std::to_string(Chain(1000, "and").size() + 5));
}

TEST(ScimFilterLimits, ComparisonsInsideValueFiltersCount) {
  std::string inner;
  for (int i = 0; i < 1001; ++i) {
    if (i > 0) inner += " or ";
    inner += "value eq \"a" + std::to_string(i) + "@x.example\"";
  }
  ExpectInvalidFilter(Filter::Parse("emails[" + inner + "]"),
                      "filter has more than 1000 comparisons (the limit) at offset " +
                          std::to_string(7 + inner.rfind("value")));
  // 999 inside and one outside: 1,000 in all.
  inner = inner.substr(0, inner.find(" or value eq \"a999@"));
  Result<Filter> f = Filter::Parse("userName pr and emails[" + inner + "]");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_TRUE(
      f->Matches(ParseJson(R"({"userName": "x", "emails": [{"value": "a998@x.example"}]})")));
}

TEST(ScimFilterLimits, NestingIsLimitedTo32Levels) {
  auto parens = [](int n) { return std::string(n, '(') + "a pr" + std::string(n, ')'); };
  Result<Filter> ok = Filter::Parse(parens(32));
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_TRUE(ok->Matches(ParseJson(R"({"a": 1})")));
  ExpectInvalidFilter(Filter::Parse(parens(33)),
                      "filter nests deeper than 32 levels (the limit) at offset 33");
  // "not" nests as its parentheses do; chains inside each level add none.
  std::string nots;
  for (int i = 0; i < 40; ++i) nots += "not (a pr or b pr and ";
  nots += "c pr" + std::string(40, ')');
  Result<Filter> deep_not = Filter::Parse(nots);
  ASSERT_FALSE(deep_not.ok());
  EXPECT_EQ(ScimTypeOf(deep_not.status()), ScimType::kInvalidFilter);
  EXPECT_TRUE(ScimErrorDetail(deep_not.status()).starts_with("filter nests deeper than 32 levels"));
  // 100,000 opening parentheses: refused at the limit, without recursing further.
  ExpectInvalidFilter(Filter::Parse(std::string(100000, '(')),
                      "filter nests deeper than 32 levels (the limit) at offset 33");
}

TEST(ScimFilterLimits, TextOver64KiBIsRefusedNamingTheLimit) {
  const std::string prefix = "userName eq \"";
  std::string text = prefix + std::string(64 * 1024 - prefix.size() - 1, 'x') + "\"";
  ASSERT_EQ(text.size(), 64u * 1024);
  EXPECT_TRUE(Filter::Parse(text).ok());
  text.insert(prefix.size(), "x");
  ExpectInvalidFilter(Filter::Parse(text), "filter is longer than 65536 bytes (the limit)");
}

// ---------------------------------------------------------------------------
// Evaluation

constexpr std::string_view kUser = R"({
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
              "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
  "id": "2819c223-7f76-453a-919d-413861904646",
  "externalId": "00uA1b2C3d",
  "userName": "Barbara.Jensen@example.com",
  "name": {"givenName": "Barbara", "familyName": "Jensen"},
  "displayName": "Babs Jensen",
  "title": "Tour Guide",
  "active": true,
  "loginCount": 7,
  "emails": [
    {"value": "bjensen@example.com", "type": "work", "primary": true},
    {"value": "babs@jensen.org", "type": "home"}
  ],
  "phoneNumbers": [{"value": "555-555-8377", "type": "work"}],
  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
    "employeeNumber": "701984",
    "department": "Tour Operations",
    "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
  },
  "meta": {
    "resourceType": "User",
    "created": "2024-03-01T10:00:00Z",
    "lastModified": "2024-05-06T08:30:00.123+02:00",
    "version": "W/\"3\""
  }
})";

constexpr std::string_view kGroup = R"({
  "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
  "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
  "externalId": "grp-1",
  "displayName": "Tour Guides",
  "members": [
    {"value": "2819c223-7f76-453a-919d-413861904646", "display": "Babs Jensen"},
    {"value": "902c246b-6245-4190-8e05-00816be7344a", "display": "Mandy Pepperidge"}
  ]
})";

struct MatchCase {
  std::string_view filter;
  bool matches;
};

void ExpectMatches(std::string_view resource_text, const std::vector<MatchCase>& cases) {
  const Json resource = ParseJson(resource_text);
  for (const MatchCase& c : cases) {
    Result<Filter> f = Filter::Parse(c.filter);
    ASSERT_TRUE(f.ok()) << c.filter << ": " << f.status().ToString();
    EXPECT_EQ(f->Matches(resource), c.matches) << c.filter;
  }
}

TEST(ScimFilterMatch, IdentityProviderFiltersOnUsers) {
  ExpectMatches(kUser, {
                           // Okta's lookup before create, Entra's matching attributes.
                           {R"(userName eq "Barbara.Jensen@example.com")", true},
                           {R"(userName eq "barbara.jensen@EXAMPLE.com")",
                            true},  // userName is not caseExact
                           {R"(externalId eq "00uA1b2C3d")", true},
                           {R"(externalId eq "00ua1b2c3d")", false},  // externalId is caseExact
                           {R"(emails[type eq "work"].value eq "bjensen@example.com")", true},
                           {R"(emails[type eq "work"].value eq "BJENSEN@example.com")", true},
                           {R"(emails[type eq "home"].value eq "bjensen@example.com")", false},
                           // Entra's Test Connection: a random GUID that matches nothing.
                           {R"(userName eq "7c9e6679-7425-40de-944b-e07fc1f90ae7")", false},
                           {R"(id eq "7c9e6679-7425-40de-944b-e07fc1f90ae7")", false},
                           {R"(externalId eq "7c9e6679-7425-40de-944b-e07fc1f90ae7")", false},
                           // Microsoft's suite, unquoted.
                           {"userName eq Barbara.Jensen@example.com", true},
                           {"userName sw B", true},
                           {"name.FamilyName eq Jensen and (emails.Value co example.com or "
                            "emails.Value co example.org)",
                            true},
                           {"meta.Created gt 2015-10-10T14:38:21.8617979-07:00", true},
                           {"DisplayName eq \"BabsJensen\"", false},
                       });
}

TEST(ScimFilterMatch, OperatorsAndCaseExactness) {
  ExpectMatches(
      kUser,
      {
          {R"(id eq "2819c223-7f76-453a-919d-413861904646")", true},
          {R"(id eq "2819C223-7F76-453A-919D-413861904646")", false},  // id is caseExact
          {R"(USERNAME EQ "barbara.jensen@example.com")", true},       // names any case
          {R"(displayName eq "BABS JENSEN")", true},
          {R"(displayName ne "babs jensen")", false},
          {R"(displayName ne "Someone")", true},
          {R"(name.familyName sw "jen")", true},
          {R"(name.givenName ew "ARA")", true},
          {R"(name.givenName co "rbar")", true},
          {R"(name.givenName co "xyz")", false},
          {R"(meta.version eq "W/\"3\"")", true},
          {R"(meta.version eq "w/\"3\"")", false},  // meta.version is caseExact
          {R"(userName gt "A")", true},
          {R"(userName lt "a")", false},
          {R"(userName ge "barbara.jensen@example.com")", true},
          {R"(userName le "BARBARA.JENSEN@EXAMPLE.COM")", true},
          // Presence and null.
          {"title pr", true},
          {"nickName pr", false},
          {"not (nickName pr)", true},
          {"nickName eq null", true},
          {"title eq null", false},
          {"title ne null", true},
          {R"(nickName ne "x")", true},  // absent is "not equal"
          // Booleans, also spelled as strings.
          {"active eq true", true},
          {"active eq false", false},
          {"active ne false", true},
          {R"(active eq "True")", true},
          // Numbers.
          {"loginCount gt 5", true},
          {"loginCount le 6", false},
          {"loginCount eq 7.0", true},
          {R"(loginCount eq "7")", true},
          {"loginCount co 7", false},
          // dateTime compares by instant: 08:30+02:00 is 06:30Z.
          {R"(meta.lastModified gt "2024-05-06T06:00:00Z")", true},
          {R"(meta.lastModified lt "2024-05-06T07:00:00Z")", true},
          {R"(meta.lastModified lt "2024-05-06T06:30:00.1Z")", false},
          {R"(meta.created eq "2024-03-01T11:00:00+01:00")", true},
          {R"(meta.created ge "2024-03-01T10:00:00.000000001Z")", false},
          // Multi-valued: any value; complex compared by "value".
          {R"(emails.value co "jensen.org")", true},
          {R"(emails co "@example.com")", true},
          {R"(emails.type eq "other")", false},
          {R"(emails.type ne "work")", true},  // the home address is not work
          {R"(emails[type eq "work" and primary eq true])", true},
          {R"(emails[type eq "home" and primary eq true])", false},
          {R"(emails[value ew ".org"])", true},
          {R"(emails[not (type eq "work")])", true},
          {R"(phoneNumbers[type eq "mobile"])", false},
          {R"(phoneNumbers[type eq "work"].value sw "555")", true},
          // Extension attributes, URN-qualified, and number literals against strings.
          {R"(urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984")",
           true},
          {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq 701984",
           true},
          {R"(urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "tour operations")",
           true},
          {R"(urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d")",
           true},
          {R"(urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager eq "26118915-6090-4610-87e4-49d8ca9f808d")",
           true},
          {R"(employeeNumber eq "701984")", false},  // unqualified means the core schema
          {R"(urn:ietf:params:scim:schemas:core:2.0:User:userName eq "barbara.jensen@example.com")",
           true},
          {R"(urn:ietf:params:scim:schemas:extension:Acme:2.0:User:badge pr)", false},
          // Precedence decides: title pr or (nickName pr and userName eq "nobody").
          {R"(title pr or nickName pr and userName eq "nobody")", true},
          {R"((title pr or nickName pr) and userName eq "nobody")", false},
          {R"(not (title pr) or userName eq "nobody")", false},
      });
}

TEST(ScimFilterMatch, GroupFilters) {
  ExpectMatches(kGroup, {
                            {R"(displayName eq "tour guides")", true},
                            {R"(externalId eq "grp-1")", true},
                            {R"(externalId eq "GRP-1")", false},
                            {R"(members[value eq "902c246b-6245-4190-8e05-00816be7344a"])", true},
                            {R"(members[value eq "00000000-0000-0000-0000-000000000000"])", false},
                            {R"(members.value eq "902c246b-6245-4190-8e05-00816be7344a")", true},
                            {R"(members[display co "mandy"])", true},
                            {R"(members pr)", true},
                            {R"(id eq "7c9e6679-7425-40de-944b-e07fc1f90ae7")", false},
                        });
}

TEST(ScimFilterMatch, NonObjectsAndWrongTypesNeverMatch) {
  ExpectMatches(R"({"userName": 5, "emails": "x", "active": "maybe"})",
                {
                    {R"(userName eq "five")", false},
                    {R"(userName sw "5")", false},
                    {"userName eq 5", true},
                    {R"(userName eq "5")", true},  // a quoted number still compares as a number
                    {R"(emails[type eq "work"])", false},
                    {"active eq true", false},
                });
  ExpectMatches("[1, 2]", {{"a pr", false}});
}

// RFC 7644 3.4.2.2: "pr" needs a non-empty value.
TEST(ScimFilterMatch, PresentNeedsANonEmptyValue) {
  ExpectMatches(R"({"title": "", "nickName": "N", "emails": [], "name": {},
                    "phoneNumbers": [{"value": ""}], "active": false})",
                {
                    {"title pr", false},
                    {"nickName pr", true},
                    {"emails pr", false},
                    {"name pr", false},
                    {"phoneNumbers.value pr", false},
                    {"active pr", true},
                    {"displayName pr", false},
                });
}

// ---------------------------------------------------------------------------
// Index fast path

TEST(ScimFilterIndex, SimpleEqualityOnIndexedAttributes) {
  struct Case {
    std::string_view filter;
    std::string_view attribute;
    std::string_view value;
    bool case_exact;
  };
  const std::vector<Case> cases = {
      {R"(userName eq "bjensen@example.com")", "userName", "bjensen@example.com", false},
      {R"(USERNAME Eq "Bob")", "userName", "Bob", false},
      {"userName eq bob@example.com", "userName", "bob@example.com", false},
      {R"(externalId eq "00uA1b")", "externalId", "00uA1b", true},
      {"externalId eq 12345", "externalId", "12345", true},
      {R"(id eq "2819c223")", "id", "2819c223", true},
      {R"(displayName eq "Tour Guides")", "displayName", "Tour Guides", false},
      {R"(urn:ietf:params:scim:schemas:core:2.0:User:userName eq "b")", "userName", "b", false},
      {R"(  ( userName eq "a\"b" )  )", "userName", "a\"b", false},
  };
  for (const Case& c : cases) {
    Result<Filter> f = Filter::Parse(c.filter);
    ASSERT_TRUE(f.ok()) << c.filter;
    std::optional<IndexedEquality> eq = f->AsIndexedEquality();
    ASSERT_TRUE(eq.has_value()) << c.filter;
    EXPECT_EQ(eq->attribute, c.attribute) << c.filter;
    EXPECT_EQ(eq->value, c.value) << c.filter;
    EXPECT_EQ(eq->case_exact, c.case_exact) << c.filter;
  }
}

TEST(ScimFilterIndex, OtherFiltersHaveNoFastPath) {
  for (std::string_view text : {
           R"(userName ne "x")",
           R"(userName co "x")",
           R"(userName eq "x" and active eq true)",
           R"(userName eq "x" or userName eq "y")",
           R"(not (userName eq "x"))",
           R"(displayName co "x")",
           R"(emails.value eq "x")",
           R"(emails[type eq "work"].value eq "x")",
           "userName eq null",
           "userName pr",
           R"(urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "1")",
       }) {
    Result<Filter> f = Filter::Parse(text);
    ASSERT_TRUE(f.ok()) << text;
    EXPECT_FALSE(f->AsIndexedEquality().has_value()) << text;
  }
}

// ---------------------------------------------------------------------------
// Errors and JSON

TEST(ScimErrors, KindRoundTripsThroughStatus) {
  Status s = ScimError(ScimType::kNoTarget, "nothing there");
  EXPECT_THAT(s, StatusIs(StatusCode::kInvalidArgument));
  EXPECT_EQ(s.message(), "noTarget: nothing there");
  EXPECT_EQ(ScimTypeOf(s), ScimType::kNoTarget);
  EXPECT_EQ(ScimErrorDetail(s), "nothing there");

  Status u = ScimError(ScimType::kUniqueness, "taken");
  EXPECT_THAT(u, StatusIs(StatusCode::kAlreadyExists));
  EXPECT_EQ(ScimTypeOf(u), ScimType::kUniqueness);

  EXPECT_EQ(ScimTypeOf(Status::Ok()), ScimType::kNone);
  EXPECT_EQ(ScimTypeOf(InvalidArgumentError("noTargetish: x")), ScimType::kNone);
  // A message that merely reads like one is not a SCIM error: the kind is a
  // fact beside the message, never parsed out of it.
  EXPECT_EQ(ScimTypeOf(InternalError("invalidFilter: x")), ScimType::kNone);
  EXPECT_EQ(ScimTypeOf(InvalidArgumentError("invalidFilter: x")), ScimType::kNone);
  EXPECT_EQ(ScimErrorDetail(InternalError("plain")), "plain");
}

TEST(ScimErrors, ContextKeepsTheKindAndTheDetail) {
  // Context added on the way up once turned a 400 into a 500.
  Status s = ScimError(ScimType::kInvalidFilter, "expected ')' at offset 17")
                 .WithContext("GET /Users")
                 .WithContext("source okta");
  EXPECT_EQ(ScimTypeOf(s), ScimType::kInvalidFilter);
  EXPECT_EQ(ScimErrorDetail(s), "expected ')' at offset 17");
  EXPECT_EQ(s.message(), "source okta: GET /Users: invalidFilter: expected ')' at offset 17");
}

TEST(ScimJson, MalformedOrTooDeepIsInvalidSyntax) {
  struct Case {
    std::string_view text;
    int max_depth;
    std::string_view detail;
  };
  const std::string deep = std::string(65, '[') + std::string(65, ']');
  const std::vector<Case> cases = {
      {"{\"a\": }", kDefaultMaxJsonDepth, "malformed JSON at byte 7"},
      {"", kDefaultMaxJsonDepth, "malformed JSON at byte 1"},
      {"{} x", kDefaultMaxJsonDepth, "malformed JSON at byte 4"},
      {deep, kDefaultMaxJsonDepth, "JSON nests deeper than 64 levels"},
      {R"({"a": {"b": [1]}})", 2, "JSON nests deeper than 2 levels"},
  };
  for (const Case& c : cases) {
    Result<Json> j = Json::Parse(c.text, c.max_depth);
    ASSERT_FALSE(j.ok()) << c.text;
    EXPECT_EQ(ScimTypeOf(j.status()), ScimType::kInvalidSyntax) << c.text;
    EXPECT_EQ(ScimErrorDetail(j.status()), c.detail) << c.text;
  }
  // Brackets inside strings do not count as nesting.
  EXPECT_TRUE(Json::Parse(R"({"a": "[[[[\"{{{{"})", 1).ok());
  EXPECT_TRUE(Json::Parse(std::string(64, '[') + std::string(64, ']')).ok());
}

TEST(ScimJson, HundredThousandDeepIsRefusedWithoutRecursing) {
  // Refused by the scan before the parser (or a destructor) sees the nesting.
  for (const std::string& text :
       {std::string(100000, '['), std::string(100000, '[') + std::string(100000, ']'),
        std::string(50000, '{') + R"("a":)" + std::string(50000, '[')}) {
    Result<Json> j = Json::Parse(text);
    ASSERT_FALSE(j.ok());
    EXPECT_EQ(ScimTypeOf(j.status()), ScimType::kInvalidSyntax);
    EXPECT_EQ(ScimErrorDetail(j.status()), "JSON nests deeper than 64 levels");
  }
}

TEST(ScimJson, DumpIsCompactAndEqualityIsStructural) {
  const Json a = ParseJson(R"({ "b": [1, 2.5, "x"], "a": {"n": null, "t": true} })");
  EXPECT_EQ(a.Dump(), R"({"a":{"n":null,"t":true},"b":[1,2.5,"x"]})");
  EXPECT_EQ(a, ParseJson(R"({"a":{"t":true,"n":null},"b":[1,2.5,"x"]})"));
  EXPECT_FALSE(a == ParseJson(R"({"a":{"t":true},"b":[1,2.5,"x"]})"));
  EXPECT_TRUE(Json().IsNull());
  EXPECT_TRUE(a.IsObject());
}

}  // namespace
}  // namespace idsync::scim
