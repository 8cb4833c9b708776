// Policy tests' semantics (mapping/policy.h): how a made-up person is
// placed in the sources, what each expect key compares, and what a failure
// names. One table of cases over one rule set.
#include "idsync/mapping/policy.h"

#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace idsync::mapping {
namespace {

constexpr Level N = Level::kNone;
constexpr Level R = Level::kRead;
constexpr Level E = Level::kEdit;

const std::vector<std::string>& Sources() {
  static const std::vector<std::string>* const kSources =
      new std::vector<std::string>{"hr", "contractors", "okta"};
  return *kSources;
}

const RuleSet& Rules() {
  static const RuleSet* const kRules = [] {
    std::vector<Rule> rules(5);
    rules[0].name = "studio-admins";
    rules[0].groups = {"CN=Studio Admins,OU=Groups,DC=corp,DC=example"};
    rules[0].role = Role::kAdmin;
    rules[1].name = "qa";
    rules[1].groups = {"qa-*"};
    rules[1].source = "hr";
    rules[1].presets = {"qa-analyst"};
    rules[1].projects = {"support-bot"};
    rules[2].name = "voice";
    rules[2].groups = {"Voice Team"};
    rules[2].presets = {"voice-specialist"};
    rules[2].permissions = {{"configure.numbers", E}};
    rules[2].projects = {"support-bot", "sales-bot"};
    rules[3].name = "partners";
    rules[3].source = "contractors";
    rules[3].email = "*@partners.example";
    rules[3].permissions = {{"analytics", R}};
    rules[4].name = "writers";
    rules[4].groups = {"Writers"};
    rules[4].permissions = {{"build.knowledge", E}};
    const PresetBook presets = PresetBook::Create(Catalog::Builtin(), {}).value();
    return new RuleSet(RuleSet::Compile(rules, Catalog::Builtin(), presets, Sources()).value());
  }();
  return *kRules;
}

PolicyGroup Named(std::string source, std::string name) { return {source, name, ""}; }
PolicyGroup ByDn(std::string source, std::string dn) { return {source, "", dn}; }

PolicyCase Given(std::vector<PolicyGroup> groups, std::string email = "", bool disabled = false) {
  PolicyCase test;
  test.name = "case";
  test.where = "t.yaml:1:3";
  test.groups = std::move(groups);
  test.email = std::move(email);
  test.disabled = disabled;
  return test;
}

struct Expect {
  std::optional<bool> access;
  std::optional<Role> role;
  std::optional<std::vector<std::string>> projects;
  std::vector<std::pair<std::string, Level>> levels;
};

struct Case {
  const char* name;
  PolicyCase test;
  Expect expect;
  // The keys that differ, in order (empty: the case passes).
  std::vector<std::string> mismatched;
  // What the first difference got, and the rules named as its causes.
  std::string got = "";
  std::vector<std::string> causes = {};
};

std::ostream& operator<<(std::ostream& os, const Case& c) { return os << c.name; }

class PolicyCaseTest : public testing::TestWithParam<Case> {};

TEST_P(PolicyCaseTest, ComparesWhatTheRulesGive) {
  const Case& c = GetParam();
  PolicyCase test = c.test;
  test.expect = {c.expect.access, c.expect.role, c.expect.projects, c.expect.levels};
  const PolicyResult result = RunGiven(Rules(), test, Sources());
  EXPECT_EQ(result.problem, "");
  std::vector<std::string> keys;
  for (const PolicyMismatch& m : result.mismatches) keys.push_back(m.key);
  EXPECT_EQ(keys, c.mismatched);
  EXPECT_EQ(result.passed, c.mismatched.empty());
  if (c.mismatched.empty() || result.mismatches.empty()) return;
  const PolicyMismatch& first = result.mismatches.front();
  EXPECT_EQ(first.got, c.got);
  std::vector<std::string> causes;
  for (const PolicyCause& cause : first.causes) causes.push_back(cause.rule);
  EXPECT_EQ(causes, c.causes);
}

const std::vector<std::string> kBots = {"sales-bot", "support-bot"};

INSTANTIATE_TEST_SUITE_P(
    Policy, PolicyCaseTest,
    testing::Values(
        // Groups by name match name globs, within the rule's source.
        Case{"NameGlobMatches",
             Given({Named("hr", "QA-emea")}),
             {true,
              Role::kMember,
              std::vector<std::string>{"support-bot"},
              {{"configure.dashboards", E}, {"build", R}, {"deployments", R}}},
             {}},
        Case{"RuleOfAnotherSourceDoesNotMatch",
             Given({Named("contractors", "qa-emea")}),
             {false, std::nullopt, std::nullopt, {}},
             {}},
        Case{"ExpectedAccessThatIsNotThere",
             Given({Named("contractors", "qa-emea")}),
             {true, std::nullopt, std::nullopt, {}},
             {"access"},
             "false (no rule matches)"},
        // A group given by DN matches DN rules only; by name, name rules only.
        Case{"DnMatchesADnRuleWhateverItsSpelling",
             Given({ByDn("hr", "cn=studio admins, ou=groups, dc=corp, dc=example")}),
             {true, Role::kAdmin, std::nullopt, {{"configure", E}, {"build.knowledge", E}}},
             {}},
        Case{"NameAloneDoesNotMatchADnRule",
             Given({Named("hr", "Studio Admins")}),
             {std::nullopt, Role::kAdmin, std::nullopt, {}},
             {"role"},
             "member"},
        Case{"AdminNamesTheRuleBehindIt",
             Given({ByDn("hr", "CN=Studio Admins,OU=Groups,DC=corp,DC=example"),
                    Named("hr", "Voice Team")}),
             {std::nullopt, Role::kMember, std::nullopt, {}},
             {"role"},
             "admin",
             {"studio-admins"}},
        // An area key wants every item at exactly that level.
        Case{"AreaAtOneLevel",
             Given({Named("okta", "Voice Team")}),
             {std::nullopt, std::nullopt, std::nullopt, {{"configure.numbers", E}, {"build", R}}},
             {}},
        Case{"AreaWithItemsThatDiffer",
             Given({Named("okta", "Voice Team")}),
             {std::nullopt, std::nullopt, std::nullopt, {{"channels", E}}},
             {"channels"},
             "none on channels.chat, none on channels.widget"},
        Case{"AreaHigherThanExpected",
             Given({Named("okta", "Voice Team")}),
             {std::nullopt, std::nullopt, std::nullopt, {{"analytics", N}}},
             {"analytics"},
             "read",
             {"voice"}},
        Case{"ItemNamesTheRuleThatGaveIt",
             Given({Named("hr", "qa-us"), Named("okta", "Voice Team")}),
             {std::nullopt,
              std::nullopt,
              std::nullopt,
              {{"configure.numbers", R}, {"configure.dashboards", E}}},
             {"configure.numbers"},
             "edit",
             {"voice"}},
        // Projects are an exact set, in any order.
        Case{"ProjectsInAnyOrder",
             Given({Named("okta", "Voice Team")}),
             {std::nullopt, std::nullopt, std::vector<std::string>{"support-bot", "sales-bot"}, {}},
             {}},
        Case{"ProjectsSubsetFails",
             Given({Named("okta", "Voice Team")}),
             {std::nullopt, std::nullopt, std::vector<std::string>{"support-bot"}, {}},
             {"projects"},
             "sales-bot, support-bot",
             {"voice"}},
        Case{"NoProjectsExpectedNoneGot",
             Given({Named("hr", "Writers")}),
             {std::nullopt, std::nullopt, std::vector<std::string>{}, {{"build.knowledge", E}}},
             {}},
        // Disabled: no access; with access: false nothing else is compared.
        Case{"DisabledHasNoAccess",
             Given({Named("hr", "qa-emea")}, "", true),
             {false, Role::kAdmin, kBots, {{"analytics", E}}},
             {}},
        Case{"DisabledButAccessExpected",
             Given({Named("hr", "qa-emea")}, "", true),
             {true, std::nullopt, std::nullopt, {}},
             {"access"},
             "false (disabled in a source)",
             {"qa"}},
        Case{"NoAccessMeansNoneEverywhereAndMember",
             Given({Named("hr", "Everyone")}),
             {std::nullopt,
              Role::kMember,
              std::vector<std::string>{},
              {{"analytics", N}, {"build.knowledge", N}}},
             {}},
        Case{"UnexpectedAccessNamesTheRules",
             Given({Named("hr", "qa-emea"), Named("hr", "Writers")}),
             {false, std::nullopt, std::nullopt, {}},
             {"access"},
             "true",
             {"qa", "writers"}},
        // E-mail rules: the given address, or none at all.
        Case{"EmailRuleMatchesTheGivenAddress",
             Given({}, "lena@partners.example"),
             {true, std::nullopt, std::nullopt, {{"analytics", R}}},
             {}},
        Case{"EmailRuleWithoutAnAddress", Given({}), {false, std::nullopt, std::nullopt, {}}, {}},
        Case{"EmailRuleLimitedToItsSource",
             Given({Named("hr", "Everyone")}, "lena@partners.example"),
             {false, std::nullopt, std::nullopt, {}},
             {}}),
    [](const testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

TEST(PolicyTest, APersonNobodyKnowsIsAProblem) {
  PolicyCase test;
  test.name = "bruno";
  test.where = "t.yaml:3:5";
  test.person = "bruno@corp.example";
  test.expect.role = Role::kMember;
  const PolicyResult result = CheckPolicy(Rules(), test, nullptr);
  EXPECT_FALSE(result.passed);
  EXPECT_EQ(result.problem, "no source knows bruno@corp.example");
  EXPECT_EQ(DescribeFailure(test, result),
            "t.yaml:3:5: policy test \"bruno\" failed\n"
            "  no source knows bruno@corp.example\n");
}

TEST(PolicyTest, AFailureNamesWhereExpectedGotAndWhy) {
  PolicyCase test = Given({Named("hr", "qa-emea"), Named("contractors", "Studio Admins")});
  test.name = "contractors never become admin";
  test.expect.role = Role::kAdmin;
  test.expect.levels = {{"configure.dashboards", R}};
  const PolicyResult result = RunGiven(Rules(), test, Sources());
  EXPECT_EQ(DescribeFailure(test, result),
            "t.yaml:1:3: policy test \"contractors never become admin\" failed\n"
            "  role: expected admin, got member\n"
            "    no rule gives it; rules matched: qa; groups: contractors: Studio Admins, hr: "
            "qa-emea\n"
            "  configure.dashboards: expected read, got edit\n"
            "    from rule \"qa\" via hr: qa-emea\n");
}

TEST(PolicyTest, WithNoGroupThePersonIsInEverySource) {
  PolicyCase test = Given({}, "x@partners.example");
  const Result<PersonAccess> person = MapGiven(Rules(), test, Sources());
  ASSERT_TRUE(person.ok()) << person.status().ToString();
  EXPECT_EQ(person->sources, Sources());
  EXPECT_EQ(person->email, "x@partners.example");
}

}  // namespace
}  // namespace idsync::mapping
