#include "idsync/mapping/rules.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "idsync/testing/status_matchers.h"

namespace idsync::mapping {
namespace {

constexpr Level N = Level::kNone;
constexpr Level R = Level::kRead;
constexpr Level E = Level::kEdit;

const Catalog& Cat() { return Catalog::Builtin(); }

std::size_t Item(std::string_view key) { return Cat().Resolve(key)->begin; }

ItemLevels Levels(const PermissionSpec& spec) { return Cat().Expand(spec).value(); }

const PresetBook& Book() {
  static const PresetBook* const kBook = new PresetBook(
      PresetBook::Create(Cat(), {{"support-lead", {{"analytics", E}, {"channels", R}}}}).value());
  return *kBook;
}

Result<RuleSet> Compile(const std::vector<Rule>& rules,
                        const std::vector<std::string>& known_sources = {}) {
  return RuleSet::Compile(rules, Cat(), Book(), known_sources);
}

Rule MakeRule(std::string name, std::vector<std::string> groups) {
  Rule rule;
  rule.name = std::move(name);
  rule.groups = std::move(groups);
  return rule;
}

// Builds a snapshot with users and groups named in the test; members are
// given by name and resolved to indices here.
class SnapshotBuilder {
 public:
  explicit SnapshotBuilder(std::string source) { snap_.source = std::move(source); }

  SnapshotBuilder& User(const std::string& id, const std::string& email,
                        const std::string& name = "", bool disabled = false) {
    DirectoryUser user;
    user.id = id;
    user.dn = "uid=" + id + ",ou=People,dc=corp,dc=example";
    user.email = email;
    user.name = name;
    user.disabled = disabled;
    snap_.users.push_back(user);
    return *this;
  }

  SnapshotBuilder& Group(const std::string& name, const std::vector<std::string>& users,
                         const std::vector<std::string>& groups = {}) {
    DirectoryGroup group;
    group.id = "g-" + name;
    group.dn = "CN=" + name + ",OU=Groups,DC=corp,DC=example";
    group.name = name;
    snap_.groups.push_back(group);
    pending_.push_back({users, groups});
    return *this;
  }

  SnapshotBuilder& Nested(bool nested) {
    snap_.nested = nested;
    return *this;
  }

  SnapshotBuilder& MaxDepth(int depth) {
    snap_.max_depth = depth;
    return *this;
  }

  SourceSnapshot Build() const {
    SourceSnapshot snap = snap_;
    for (std::size_t g = 0; g < pending_.size(); ++g) {
      for (const std::string& id : pending_[g].users) {
        snap.groups[g].member_users.push_back(Find(snap_.users, id));
      }
      for (const std::string& name : pending_[g].groups) {
        snap.groups[g].member_groups.push_back(FindGroup(name));
      }
    }
    return snap;
  }

 private:
  static std::uint32_t Find(const std::vector<DirectoryUser>& users, const std::string& id) {
    for (std::uint32_t i = 0; i < users.size(); ++i) {
      if (users[i].id == id) return i;
    }
    ADD_FAILURE() << "no user " << id;
    return 0;
  }
  std::uint32_t FindGroup(const std::string& name) const {
    for (std::uint32_t i = 0; i < snap_.groups.size(); ++i) {
      if (snap_.groups[i].name == name) return i;
    }
    ADD_FAILURE() << "no group " << name;
    return 0;
  }

  struct Members {
    std::vector<std::string> users, groups;
  };
  SourceSnapshot snap_;
  std::vector<Members> pending_;
};

MappingResult MapOk(const RuleSet& rules, const std::vector<SourceSnapshot>& sources,
                    bool details = false) {
  MapOptions options;
  options.details = details;
  Result<MappingResult> result = Map(rules, sources, options);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  return result.ok() ? std::move(result).value() : MappingResult{};
}

// --- Compile ----------------------------------------------------------------

TEST(RuleSetCompile, Errors) {
  Rule good = MakeRule("good", {"qa-*"});
  good.presets = {"qa-analyst"};
  struct Case {
    std::string what;
    std::vector<Rule> rules;
    std::vector<std::string> known_sources;
    std::string mention;
  };
  std::vector<Case> cases;
  {
    Rule r = good;
    r.name = "";
    cases.push_back({"empty name", {good, r}, {}, "#2"});
  }
  cases.push_back({"duplicate name", {good, good}, {}, "\"good\""});
  {
    Rule r = MakeRule("nomatch", {});
    r.presets = {"qa-analyst"};
    cases.push_back({"no condition", {r}, {}, "nomatch"});
  }
  {
    Rule r = MakeRule("nothing", {"qa-*"});
    cases.push_back({"grants nothing", {r}, {}, "nothing"});
  }
  {
    Rule r = MakeRule("member-only", {"staff"});
    r.role = Role::kMember;
    cases.push_back({"role member alone", {r}, {}, "\"member-only\" grants nothing"});
  }
  {
    Rule r = MakeRule("all-none", {"staff"});
    r.permissions = {{"build", N}};
    cases.push_back({"permissions all none", {r}, {}, "\"all-none\" grants nothing"});
  }
  {
    Rule r = MakeRule("lowered", {"staff"});
    r.role = Role::kMember;
    r.presets = {"support-lead"};
    r.permissions = {{"analytics", N}, {"channels", N}};
    cases.push_back({"preset lowered to none", {r}, {}, "\"lowered\" grants nothing"});
  }
  {
    Rule r = good;
    r.name = "badpreset";
    r.presets = {"qa-analyst", "no-such-preset"};
    cases.push_back({"unknown preset", {r}, {}, "no-such-preset"});
  }
  {
    Rule r = good;
    r.name = "badkey";
    r.permissions = {{"build.nothing", E}};
    cases.push_back({"unknown key", {r}, {}, "build.nothing"});
  }
  {
    Rule r = good;
    r.name = "baddn";
    r.groups = {"CN=Studio\\ZZAdmins,DC=corp"};
    cases.push_back({"malformed DN", {r}, {}, "baddn"});
  }
  {
    Rule r = good;
    r.name = "badsource";
    r.source = "okta";
    cases.push_back({"unknown source", {r}, {"corp-ad"}, "okta"});
  }
  {
    Rule r = good;
    r.name = "emptygroup";
    r.groups = {""};
    cases.push_back({"empty group pattern", {r}, {}, "emptygroup"});
  }
  for (const Case& c : cases) {
    Result<RuleSet> set = Compile(c.rules, c.known_sources);
    ASSERT_FALSE(set.ok()) << c.what;
    EXPECT_THAT(set, StatusIs(StatusCode::kInvalidArgument)) << c.what;
    EXPECT_NE(set.status().message().find(c.mention), std::string::npos)
        << c.what << ": " << set.status().message();
  }
}

TEST(RuleSetCompile, GrantsNothingMessage) {
  Rule rule = MakeRule("members", {"staff"});
  rule.role = Role::kMember;
  Result<RuleSet> set = Compile({rule});
  ASSERT_FALSE(set.ok());
  EXPECT_THAT(set, StatusIs(StatusCode::kInvalidArgument));
  EXPECT_EQ(set.status().message(),
            "rule \"members\" grants nothing: give it a role admin, a preset, a permission above "
            "none, or a project");
}

TEST(RuleSetCompile, AcceptsWhatGrantsSomething) {
  // A member with one item above none, though its area is none.
  Rule member_only = MakeRule("member-only", {"staff"});
  member_only.role = Role::kMember;
  member_only.permissions = {{"build", N}, {"build.tools", R}};
  Rule projects_only = MakeRule("projects-only", {});
  projects_only.email = "*@corp.example";
  projects_only.projects = {"support-bot"};
  Rule by_source = MakeRule("by-source", {});
  by_source.source = "corp-ad";
  by_source.permissions = {{"analytics", R}};
  Rule admin = MakeRule("admin", {"CN=Studio Admins,OU=Groups,DC=corp,DC=example"});
  admin.role = Role::kAdmin;
  Result<RuleSet> set = Compile({member_only, projects_only, by_source, admin}, {"corp-ad"});
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->rules().size(), 4u);
  EXPECT_EQ(set->NormalizedGroupDns(3),
            (std::vector<std::string>{"cn=studio admins,ou=groups,dc=corp,dc=example"}));
  EXPECT_EQ(set->NormalizedGroupDns(0), (std::vector<std::string>{""}));
}

TEST(RuleSetCompile, RuleLevels) {
  struct Case {
    std::string what;
    std::vector<std::string> presets;
    PermissionSpec permissions;
    PermissionSpec expected;  // compared after expansion
  };
  const std::vector<Case> cases = {
      {"preset alone", {"qa-analyst"}, {}, BuiltinPresets()[1].permissions},
      {"own item key lowers only that item",
       {"qa-analyst"},
       {{"build.tools", N}},
       {{"analytics", E},
        {"build", R},
        {"build.tools", N},
        {"channels", R},
        {"configure.dashboards", E},
        {"deployments", R}}},
      {"own area key sets every item of the area",
       {"qa-analyst"},
       {{"build", E}},
       {{"analytics", E},
        {"build", E},
        {"channels", R},
        {"configure.dashboards", E},
        {"deployments", R}}},
      {"area and item keys mixed: the item wins",
       {"qa-analyst"},
       {{"build", E}, {"build.tools", N}, {"analytics", N}},
       {{"build", E},
        {"build.tools", N},
        {"channels", R},
        {"configure.dashboards", E},
        {"deployments", R}}},
      {"own area key lowers the preset's item key",
       {"content-editor"},
       {{"build", R}},
       {{"analytics", R}, {"build", R}, {"channels", R}}},
      {"presets combine by highest level",
       {"content-editor", "voice-specialist"},
       {},
       {{"analytics", R},
        {"build", R},
        {"build.knowledge", E},
        {"channels.voice", E},
        {"channels.chat", R},
        {"channels.widget", R},
        {"configure", R},
        {"deployments", R}}},
      {"custom preset",
       {"support-lead"},
       {{"channels.chat", E}},
       {{"analytics", E}, {"channels", R}, {"channels.chat", E}}},
      {"no preset", {}, {{"deployments.environments", E}}, {{"deployments.environments", E}}},
  };
  for (const Case& c : cases) {
    Rule rule = MakeRule("r", {"g"});
    rule.presets = c.presets;
    rule.permissions = c.permissions;
    Result<RuleSet> set = Compile({rule});
    ASSERT_TRUE(set.ok()) << c.what << ": " << set.status().ToString();
    EXPECT_EQ(set->RuleLevels(0), Levels(c.expected)) << c.what;
  }
}

// --- Map: rules -------------------------------------------------------------

TEST(Map, UnionOfRulesRoleLevelsProjectsAndWhy) {
  Rule qa = MakeRule("qa", {"qa-*"});
  qa.presets = {"qa-analyst"};
  qa.projects = {"support-bot"};
  Rule voice = MakeRule("voice", {"Voice Team"});
  voice.presets = {"voice-specialist"};
  voice.permissions = {{"configure.numbers", E}};
  voice.projects = {"support-bot", "sales-bot"};
  Rule extra = MakeRule("extra", {"qa-europe"});
  extra.permissions = {{"build.tools", E}, {"analytics", E}};
  extra.projects = {"alpha"};
  RuleSet set = Compile({qa, voice, extra}).value();

  SourceSnapshot snap = SnapshotBuilder("corp-ad")
                            .User("ana", "ana@corp.example", "Ana Lima")
                            .Group("QA-Europe", {"ana"})
                            .Group("Voice Team", {"ana"})
                            .Build();
  MappingResult result = MapOk(set, {snap});
  ASSERT_EQ(result.people.size(), 1u);
  const PersonAccess& ana = result.people[0];
  EXPECT_TRUE(ana.has_access);
  EXPECT_EQ(ana.role, Role::kMember);
  EXPECT_EQ(ana.name, "Ana Lima");
  EXPECT_EQ(ana.rules, (std::vector<std::string>{"qa", "voice", "extra"}));
  ASSERT_EQ(ana.matches.size(), 3u);
  EXPECT_EQ(ana.matches[1].rule, 1u);
  EXPECT_EQ(ana.projects, (std::vector<std::string>{"alpha", "sales-bot", "support-bot"}));

  // Expected level and rule for every item.
  struct Row {
    std::string item;
    Level level;
    std::int32_t why;
  };
  const std::vector<Row> table = {
      {"analytics.smart-analyst", E, 0},  // qa edit; extra edit too, qa first
      {"analytics.conversations", E, 0},
      {"analytics.agent-analysis", E, 0},
      {"build.agent", R, 0},  // qa and voice read: qa first
      {"build.knowledge", R, 0},
      {"build.flows", R, 0},
      {"build.tools", E, 2},  // only extra edits it
      {"build.variant-management", R, 0},
      {"build.call-handoffs", R, 0},
      {"build.sms", R, 0},
      {"build.real-time-configuration", R, 0},
      {"build.configuration-builder", R, 0},
      {"build.test-suite", R, 0},
      {"channels.voice", E, 1},  // voice
      {"channels.chat", R, 0},   // qa read, voice none
      {"channels.widget", R, 0},
      {"configure.general", R, 1},  // voice read
      {"configure.numbers", E, 1},  // voice's own key
      {"configure.apis", R, 1},
      {"configure.integrations", R, 1},
      {"configure.metrics", R, 1},
      {"configure.dashboards", E, 0},  // qa edit beats voice read
      {"configure.csat", R, 1},
      {"deployments.environments", R, 0},
      {"deployments.project-history", R, 0},
  };
  ASSERT_EQ(table.size(), Cat().item_count());
  for (const Row& row : table) {
    const std::size_t i = Item(row.item);
    EXPECT_EQ(ana.levels[i], row.level) << row.item;
    EXPECT_EQ(ana.why[i], row.why) << row.item;
  }
}

TEST(Map, WhyIsMinusOneWhereLevelIsNone) {
  Rule rule = MakeRule("r", {"staff"});
  rule.permissions = {{"build.tools", R}};
  RuleSet set = Compile({rule}).value();
  SourceSnapshot snap =
      SnapshotBuilder("ad").User("a", "a@x.example").Group("staff", {"a"}).Build();
  MappingResult result = MapOk(set, {snap});
  ASSERT_EQ(result.people.size(), 1u);
  for (std::size_t i = 0; i < Cat().item_count(); ++i) {
    if (i == Item("build.tools")) {
      EXPECT_EQ(result.people[0].levels[i], R);
      EXPECT_EQ(result.people[0].why[i], 0);
    } else {
      EXPECT_EQ(result.people[0].levels[i], N);
      EXPECT_EQ(result.people[0].why[i], -1);
    }
  }
}

TEST(Map, AdminGetsEditEverywhereFromFirstAdminRule) {
  Rule reader = MakeRule("reader", {"staff"});
  reader.presets = {"content-editor"};
  reader.projects = {"p1"};
  Rule admin1 = MakeRule("admin1", {"CN=Studio Admins, OU=Groups, DC=Corp, DC=Example"});
  admin1.role = Role::kAdmin;
  Rule admin2 = MakeRule("admin2", {"staff"});
  admin2.role = Role::kAdmin;
  RuleSet set = Compile({reader, admin1, admin2}).value();
  SourceSnapshot snap = SnapshotBuilder("ad")
                            .User("a", "a@x.example")
                            .Group("staff", {"a"})
                            .Group("Studio Admins", {"a"})
                            .Build();
  MappingResult result = MapOk(set, {snap});
  ASSERT_EQ(result.people.size(), 1u);
  const PersonAccess& a = result.people[0];
  EXPECT_EQ(a.role, Role::kAdmin);
  EXPECT_EQ(a.levels, Cat().Uniform(E));
  EXPECT_EQ(a.why, std::vector<std::int32_t>(Cat().item_count(), 1));
  EXPECT_EQ(a.rules, (std::vector<std::string>{"reader", "admin1", "admin2"}));
  EXPECT_EQ(a.projects, (std::vector<std::string>{"p1"}));
}

TEST(Map, MemberRoleWithOnlyProjectsGivesAccessWithoutLevels) {
  Rule rule = MakeRule("members", {"staff"});
  rule.role = Role::kMember;
  rule.projects = {"p"};
  RuleSet set = Compile({rule}).value();
  SourceSnapshot snap =
      SnapshotBuilder("ad").User("a", "a@x.example").Group("staff", {"a"}).Build();
  MappingResult result = MapOk(set, {snap});
  ASSERT_EQ(result.people.size(), 1u);
  EXPECT_TRUE(result.people[0].has_access);
  EXPECT_EQ(result.people[0].role, Role::kMember);
  EXPECT_EQ(result.people[0].levels, Cat().Uniform(N));
  EXPECT_EQ(result.people[0].projects, (std::vector<std::string>{"p"}));
}

TEST(Map, GroupPatternsByDnAndNameGlob) {
  struct Case {
    std::string pattern;
    bool match;
  };
  // The user's group is "CN=Studio Admins,OU=Groups,DC=corp,DC=example", name "Studio Admins".
  const std::vector<Case> cases = {
      {"Studio Admins", true},
      {"studio admins", true},
      {"studio*", true},
      {"Studio Admin?", true},
      {"Studio", false},
      {"cn=studio admins,ou=groups,dc=corp,dc=example", true},
      {"CN=Studio\\20Admins, OU=Groups, DC=Corp, DC=Example", true},
      {"CN=Studio Admins,OU=Groups,DC=other,DC=example", false},
      {"CN=Studio*,OU=Groups,DC=corp,DC=example", false},  // a DN is not a glob
  };
  SourceSnapshot snap =
      SnapshotBuilder("ad").User("a", "a@x.example").Group("Studio Admins", {"a"}).Build();
  for (const Case& c : cases) {
    Rule rule = MakeRule("r", {"nothing-here", c.pattern});
    rule.presets = {"qa-analyst"};
    RuleSet set = Compile({rule}).value();
    MappingResult result = MapOk(set, {snap});
    ASSERT_EQ(result.people.size(), 1u);
    EXPECT_EQ(result.people[0].has_access, c.match) << c.pattern;
  }
}

TEST(Map, GroupPatternsFoldNonAsciiCase) {
  struct Case {
    std::string pattern;
    bool match;
  };
  // The user's group is "CN=Équipe Paris,OU=Groups,DC=corp,DC=example",
  // name "Équipe Paris".
  const std::vector<Case> cases = {
      {"\xc3\xa9quipe paris", true},                                  // by name
      {"\xc3\x89QUIPE PARIS", true},                                  // by name
      {"\xc3\xa9quipe-*", false},                                     // glob, no '-'
      {"\xc3\xa9quipe *", true},                                      // glob
      {"?QUIPE PARIS", true},                                         // '?' is one code point
      {"cn=\xc3\xa9quipe paris,ou=groups,dc=corp,dc=example", true},  // by DN
      {"CN=\\C3\\A9QUIPE PARIS,OU=Groups,DC=corp,DC=example", true},  // by DN, escaped
      {"equipe paris", false},                                        // accents matter
  };
  SourceSnapshot snap =
      SnapshotBuilder("ad").User("a", "a@x.example").Group("\xc3\x89quipe Paris", {"a"}).Build();
  for (const Case& c : cases) {
    Rule rule = MakeRule("r", {c.pattern});
    rule.presets = {"qa-analyst"};
    RuleSet set = Compile({rule}).value();
    MappingResult result = MapOk(set, {snap});
    ASSERT_EQ(result.people.size(), 1u);
    EXPECT_EQ(result.people[0].has_access, c.match) << c.pattern;
  }
}

TEST(Map, SourceAndEmailConditions) {
  Rule by_source = MakeRule("okta-voice", {"Voice Team"});
  by_source.source = "okta";
  by_source.projects = {"voice"};
  Rule by_email = MakeRule("corp-only", {"staff"});
  by_email.email = "*@CORP.example";
  by_email.projects = {"corp"};
  Rule source_only = MakeRule("everyone-in-ad", {});
  source_only.source = "ad";
  source_only.projects = {"ad"};
  RuleSet set = Compile({by_source, by_email, source_only}).value();

  SourceSnapshot ad = SnapshotBuilder("ad")
                          .User("a", "a@corp.example")
                          .User("b", "b@contractor.example")
                          .Group("Voice Team", {"a", "b"})
                          .Group("staff", {"a", "b"})
                          .Build();
  SourceSnapshot okta = SnapshotBuilder("okta")
                            .User("b", "B@Contractor.Example")
                            .User("c", "c@corp.example")
                            .Group("Voice Team", {"c"})
                            .Group("staff", {"b"})
                            .Build();
  MappingResult result = MapOk(set, {ad, okta});
  ASSERT_EQ(result.people.size(), 3u);
  const PersonAccess* a = result.Find("a@corp.example");
  const PersonAccess* b = result.Find("b@contractor.example");
  const PersonAccess* c = result.Find("c@corp.example");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_NE(c, nullptr);
  // a: Voice Team only in ad (rule wants okta's), staff + corp address, in ad.
  EXPECT_EQ(a->rules, (std::vector<std::string>{"corp-only", "everyone-in-ad"}));
  EXPECT_EQ(a->granting_sources, (std::vector<std::string>{"ad"}));
  // b: contractor address, okta's Voice Team does not hold b.
  EXPECT_EQ(b->rules, (std::vector<std::string>{"everyone-in-ad"}));
  EXPECT_EQ(b->granting_sources, (std::vector<std::string>{"ad"}));
  EXPECT_EQ(b->sources, (std::vector<std::string>{"ad", "okta"}));
  // c: okta's Voice Team, corp address but in no staff group, not in ad.
  EXPECT_EQ(c->rules, (std::vector<std::string>{"okta-voice"}));
  EXPECT_EQ(c->granting_sources, (std::vector<std::string>{"okta"}));
  EXPECT_EQ(c->projects, (std::vector<std::string>{"voice"}));
}

TEST(Map, PersonNoRuleMatchesIsKnownWithoutAccess) {
  Rule rule = MakeRule("r", {"staff"});
  rule.projects = {"p"};
  RuleSet set = Compile({rule}).value();
  SourceSnapshot snap = SnapshotBuilder("ad")
                            .User("z", "zed@x.example")
                            .User("a", "al@x.example")
                            .Group("staff", {"a"})
                            .Build();
  MappingResult result = MapOk(set, {snap});
  ASSERT_EQ(result.people.size(), 2u);
  EXPECT_EQ(result.people[0].email, "al@x.example");  // sorted by address
  EXPECT_EQ(result.people[1].email, "zed@x.example");
  EXPECT_TRUE(result.people[0].has_access);
  EXPECT_FALSE(result.people[1].has_access);
  EXPECT_TRUE(result.people[1].rules.empty());
  EXPECT_TRUE(result.people[1].projects.empty());
  EXPECT_TRUE(result.people[1].granting_sources.empty());
  EXPECT_EQ(result.people[1].sources, (std::vector<std::string>{"ad"}));
  EXPECT_EQ(result.people[1].why, std::vector<std::int32_t>(Cat().item_count(), -1));
}

// --- Map: nesting -------------------------------------------------------------

// Rules on each of the groups A, B, C, D; A > B > C, C > B (cycle), D > A.
std::vector<Rule> RulePerGroup(const std::vector<std::string>& groups) {
  std::vector<Rule> rules;
  for (const std::string& g : groups) {
    Rule rule = MakeRule("in-" + g, {g});
    rule.projects = {g};
    rules.push_back(rule);
  }
  return rules;
}

TEST(Map, NestedGroupsWithCycle) {
  RuleSet set = Compile(RulePerGroup({"A", "B", "C", "D", "E"})).value();
  SourceSnapshot snap = SnapshotBuilder("ad")
                            .User("u", "u@x.example")
                            .User("v", "v@x.example")
                            .Group("A", {}, {"B"})
                            .Group("B", {}, {"C"})
                            .Group("C", {"u"}, {"B"})
                            .Group("D", {"v"}, {"A"})
                            .Group("E", {}, {"E"})  // contains itself
                            .Build();
  MappingResult result = MapOk(set, {snap}, /*details=*/true);
  const PersonAccess* u = result.Find("u@x.example");
  const PersonAccess* v = result.Find("v@x.example");
  ASSERT_NE(u, nullptr);
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(u->rules, (std::vector<std::string>{"in-A", "in-B", "in-C", "in-D"}));
  EXPECT_EQ(v->rules, (std::vector<std::string>{"in-D"}));
  std::vector<std::string> names;
  for (const GroupRef& g : u->groups) names.push_back(g.name);
  EXPECT_EQ(names, (std::vector<std::string>{"A", "B", "C", "D"}));
  ASSERT_EQ(u->matches.size(), 4u);
  ASSERT_EQ(u->matches[0].via.size(), 1u);
  EXPECT_EQ(u->matches[0].via[0], (GroupRef{"ad", "A", "CN=A,OU=Groups,DC=corp,DC=example"}));
}

TEST(Map, NestedFalseCountsOnlyDirectMembership) {
  RuleSet set = Compile(RulePerGroup({"A", "B", "C"})).value();
  SourceSnapshot snap = SnapshotBuilder("ad")
                            .User("u", "u@x.example")
                            .Group("A", {}, {"B"})
                            .Group("B", {}, {"C"})
                            .Group("C", {"u"})
                            .Nested(false)
                            .MaxDepth(0)  // not checked without nesting
                            .Build();
  MappingResult result = MapOk(set, {snap}, /*details=*/true);
  ASSERT_EQ(result.people.size(), 1u);
  EXPECT_EQ(result.people[0].rules, (std::vector<std::string>{"in-C"}));
  ASSERT_EQ(result.people[0].groups.size(), 1u);
  EXPECT_EQ(result.people[0].groups[0].name, "C");
}

// A chain G0 > G1 > ... > G<levels>, with the user in the last group; a
// cycle at the bottom adds no depth.
SourceSnapshot Chain(int levels, int max_depth) {
  SnapshotBuilder b("corp-ad");
  b.User("u", "u@x.example");
  for (int i = 0; i <= levels; ++i) {
    std::vector<std::string> children;
    if (i < levels) children.push_back("G" + std::to_string(i + 1));
    if (i == levels) children.push_back("Loop");
    b.Group("G" + std::to_string(i),
            i == levels ? std::vector<std::string>{"u"} : std::vector<std::string>{}, children);
  }
  b.Group("Loop", {}, {"G" + std::to_string(levels)});
  b.MaxDepth(max_depth);
  return b.Build();
}

TEST(Map, MaxDepthExactlyReachedIsFine) {
  RuleSet set = Compile(RulePerGroup({"G0"})).value();
  MappingResult result = MapOk(set, {Chain(5, 5)});
  ASSERT_EQ(result.people.size(), 1u);
  EXPECT_EQ(result.people[0].rules, (std::vector<std::string>{"in-G0"}));
}

TEST(Map, MaxDepthExceededFails) {
  RuleSet set = Compile(RulePerGroup({"G0"})).value();
  Result<MappingResult> result = Map(set, {Chain(6, 5)});
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result, StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_NE(result.status().message().find("corp-ad"), std::string::npos)
      << result.status().message();
  EXPECT_NE(result.status().message().find("CN=G0,"), std::string::npos)
      << result.status().message();
}

TEST(Map, DeepNestingNeedsNoRecursion) {
  // 300000 levels: deeper than any call stack would allow for recursion.
  constexpr std::uint32_t kLevels = 300000;
  SourceSnapshot snap;
  snap.source = "ad";
  snap.max_depth = kLevels;
  snap.users.push_back({"u", "", "u@x.example", "", false});
  snap.groups.resize(kLevels + 1);
  for (std::uint32_t i = 0; i <= kLevels; ++i) {
    snap.groups[i].name = "G" + std::to_string(i);
    if (i < kLevels) snap.groups[i].member_groups.push_back(i + 1);
  }
  snap.groups[kLevels].member_users.push_back(0);
  snap.groups[kLevels].member_groups.push_back(0);  // and one big cycle
  RuleSet set = Compile(RulePerGroup({"G0"})).value();
  MappingResult result = MapOk(set, {snap});
  ASSERT_EQ(result.people.size(), 1u);
  EXPECT_TRUE(result.people[0].has_access);
  // Without the cycle, the chain is kLevels deep: one less allowed fails.
  snap.groups[kLevels].member_groups.clear();
  snap.max_depth = kLevels - 1;
  EXPECT_THAT(Map(set, {snap}), StatusIs(StatusCode::kFailedPrecondition));
}

// --- Map: identity ------------------------------------------------------------

TEST(Map, SamePersonFromTwoSourcesJoinedByEmail) {
  Rule ad_rule = MakeRule("ad-qa", {"qa"});
  ad_rule.source = "corp-ad";
  ad_rule.presets = {"qa-analyst"};
  ad_rule.projects = {"support-bot"};
  Rule okta_rule = MakeRule("okta-voice", {"Voice Team"});
  okta_rule.source = "okta";
  okta_rule.permissions = {{"channels.voice", E}};
  okta_rule.projects = {"sales-bot"};
  RuleSet set = Compile({ad_rule, okta_rule}, {"corp-ad", "okta"}).value();

  SourceSnapshot ad =
      SnapshotBuilder("corp-ad").User("ana", "Ana.Lima@Corp.Example").Group("qa", {"ana"}).Build();
  SourceSnapshot okta = SnapshotBuilder("okta")
                            .User("00u1", "ana.lima@corp.example", "Ana Lima")
                            .Group("Voice Team", {"00u1"})
                            .Build();
  MappingResult result = MapOk(set, {ad, okta}, /*details=*/true);
  ASSERT_EQ(result.people.size(), 1u);
  const PersonAccess& ana = result.people[0];
  EXPECT_EQ(ana.email, "ana.lima@corp.example");
  EXPECT_EQ(ana.name, "Ana Lima");  // the first non-empty name
  EXPECT_EQ(ana.sources, (std::vector<std::string>{"corp-ad", "okta"}));
  EXPECT_EQ(ana.granting_sources, (std::vector<std::string>{"corp-ad", "okta"}));
  EXPECT_EQ(ana.rules, (std::vector<std::string>{"ad-qa", "okta-voice"}));
  EXPECT_EQ(ana.projects, (std::vector<std::string>{"sales-bot", "support-bot"}));
  EXPECT_EQ(ana.levels[Item("channels.voice")], E);
  EXPECT_EQ(ana.why[Item("channels.voice")], 1);
  EXPECT_EQ(ana.levels[Item("channels.chat")], R);
  EXPECT_EQ(ana.why[Item("channels.chat")], 0);
  ASSERT_EQ(ana.groups.size(), 2u);
  EXPECT_EQ(ana.groups[0].source, "corp-ad");
  EXPECT_EQ(ana.groups[1].source, "okta");
  EXPECT_EQ(result.Find("ANA.LIMA@corp.example"), &result.people[0]);
  EXPECT_EQ(result.Find("someone@corp.example"), nullptr);
}

TEST(Map, GroupRuleWithSourceIgnoresSameNamedGroupElsewhere) {
  Rule rule = MakeRule("okta-qa", {"qa"});
  rule.source = "okta";
  rule.projects = {"p"};
  RuleSet set = Compile({rule}).value();
  SourceSnapshot ad =
      SnapshotBuilder("corp-ad").User("a", "a@x.example").Group("qa", {"a"}).Build();
  SourceSnapshot okta = SnapshotBuilder("okta").User("a", "a@x.example").Build();
  MappingResult result = MapOk(set, {ad, okta});
  ASSERT_EQ(result.people.size(), 1u);
  EXPECT_FALSE(result.people[0].has_access);
}

TEST(Map, DisabledInAnySourceGetsNothing) {
  Rule rule = MakeRule("qa", {"qa"});
  rule.presets = {"qa-analyst"};
  rule.projects = {"p"};
  RuleSet set = Compile({rule}).value();
  SourceSnapshot ad =
      SnapshotBuilder("corp-ad").User("a", "a@x.example").Group("qa", {"a"}).Build();
  SourceSnapshot okta =
      SnapshotBuilder("okta").User("a", "A@x.example", "", /*disabled=*/true).Build();
  MappingResult result = MapOk(set, {ad, okta});
  ASSERT_EQ(result.people.size(), 1u);
  const PersonAccess& a = result.people[0];
  EXPECT_TRUE(a.disabled);
  EXPECT_FALSE(a.has_access);
  EXPECT_EQ(a.role, Role::kMember);
  EXPECT_EQ(a.levels, Cat().Uniform(N));
  EXPECT_TRUE(a.projects.empty());
  // What matched is still reported, for explain.
  EXPECT_EQ(a.rules, (std::vector<std::string>{"qa"}));
  EXPECT_EQ(a.granting_sources, (std::vector<std::string>{"corp-ad"}));
}

TEST(Map, EntriesWithoutEmailAreNotMapped) {
  Rule rule = MakeRule("qa", {"qa"});
  rule.projects = {"p"};
  RuleSet set = Compile({rule}).value();
  SourceSnapshot ad = SnapshotBuilder("corp-ad")
                          .User("a", "")
                          .User("b", "b@x.example")
                          .Group("qa", {"a", "b"})
                          .Build();
  MappingResult result = MapOk(set, {ad});
  ASSERT_EQ(result.people.size(), 1u);
  EXPECT_EQ(result.people[0].email, "b@x.example");
  EXPECT_EQ(result.entries_without_email, 1u);
  EXPECT_EQ(result.duplicate_emails, 0u);
  EXPECT_EQ(result.warnings,
            (std::vector<std::string>{"corp-ad: entry uid=a,ou=People,dc=corp,dc=example has no "
                                      "e-mail address"}));
}

TEST(Map, SharedEmailWithinOneSourceIsNotMapped) {
  Rule rule = MakeRule("qa", {"qa"});
  rule.projects = {"p"};
  RuleSet set = Compile({rule}).value();
  SourceSnapshot ad = SnapshotBuilder("corp-ad")
                          .User("a1", "dup@x.example")
                          .User("b", "b@x.example")
                          .User("a2", "DUP@x.example")
                          .User("a3", "dup@X.example")
                          .Group("qa", {"a1", "a2", "b"})
                          .Build();
  // Another source knows the address once: that entry is mapped.
  SourceSnapshot okta = SnapshotBuilder("okta").User("d", "dup@x.example").Build();
  MappingResult result = MapOk(set, {ad, okta});
  EXPECT_EQ(result.duplicate_emails, 3u);  // entries left out
  ASSERT_EQ(result.warnings.size(), 1u);
  EXPECT_NE(result.warnings[0].find("corp-ad"), std::string::npos);
  EXPECT_NE(result.warnings[0].find("dup@x.example"), std::string::npos);
  EXPECT_NE(result.warnings[0].find("uid=a3"), std::string::npos);
  ASSERT_EQ(result.people.size(), 2u);
  const PersonAccess* dup = result.Find("dup@x.example");
  ASSERT_NE(dup, nullptr);
  // corp-ad knows the address, though it maps neither entry.
  EXPECT_EQ(dup->sources, (std::vector<std::string>{"corp-ad", "okta"}));
  EXPECT_FALSE(dup->disabled);
  EXPECT_FALSE(dup->has_access);
  EXPECT_TRUE(dup->rules.empty());
  EXPECT_TRUE(result.Find("b@x.example")->has_access);
}

TEST(Map, SharedEmailOnlyIsKnownWithoutAccess) {
  Rule rule = MakeRule("qa", {"qa"});
  rule.projects = {"p"};
  RuleSet set = Compile({rule}).value();
  for (const bool one_disabled : {false, true}) {
    SourceSnapshot ad = SnapshotBuilder("corp-ad")
                            .User("a1", "dup@x.example", "A One")
                            .User("a2", "dup@x.example", "A Two", one_disabled)
                            .Group("qa", {"a1", "a2"})
                            .Build();
    MappingResult result = MapOk(set, {ad});
    EXPECT_EQ(result.duplicate_emails, 2u);
    ASSERT_EQ(result.people.size(), 1u) << one_disabled;
    const PersonAccess& dup = result.people[0];
    EXPECT_EQ(dup.email, "dup@x.example");
    EXPECT_EQ(dup.sources, (std::vector<std::string>{"corp-ad"}));
    EXPECT_EQ(dup.disabled, one_disabled);
    EXPECT_FALSE(dup.has_access);
    EXPECT_TRUE(dup.name.empty());  // which entry is the person is unknown
    EXPECT_TRUE(dup.rules.empty());
    EXPECT_TRUE(dup.granting_sources.empty());
    EXPECT_TRUE(dup.projects.empty());
    EXPECT_EQ(dup.levels, Cat().Uniform(N));
  }
}

TEST(Map, SharedEmailDisabledEntryDisablesEverywhere) {
  // Disabled in corp-ad, where the address is shared: okta's entry, which is
  // mapped and matches, must not give access.
  Rule rule = MakeRule("qa", {"qa"});
  rule.projects = {"p"};
  RuleSet set = Compile({rule}).value();
  SourceSnapshot ad = SnapshotBuilder("corp-ad")
                          .User("a1", "dup@x.example", "", /*disabled=*/true)
                          .User("a2", "Dup@x.example")
                          .Build();
  SourceSnapshot okta =
      SnapshotBuilder("okta").User("d", "dup@x.example", "Dee").Group("qa", {"d"}).Build();
  MappingResult result = MapOk(set, {ad, okta});
  EXPECT_EQ(result.duplicate_emails, 2u);
  ASSERT_EQ(result.warnings.size(), 1u);
  ASSERT_EQ(result.people.size(), 1u);
  const PersonAccess& dup = result.people[0];
  EXPECT_EQ(dup.sources, (std::vector<std::string>{"corp-ad", "okta"}));
  EXPECT_TRUE(dup.disabled);
  EXPECT_FALSE(dup.has_access);
  EXPECT_TRUE(dup.projects.empty());
  EXPECT_EQ(dup.name, "Dee");
  // What matched is still reported, for explain.
  EXPECT_EQ(dup.rules, (std::vector<std::string>{"qa"}));
  EXPECT_EQ(dup.granting_sources, (std::vector<std::string>{"okta"}));
}

TEST(Map, DetailsListGroupsAndVia) {
  Rule rule = MakeRule("qa", {"qa-*", "CN=Testers,OU=Groups,DC=corp,DC=example"});
  rule.projects = {"p"};
  Rule other = MakeRule("other", {});
  other.email = "*@x.example";
  other.projects = {"q"};
  RuleSet set = Compile({rule, other}).value();
  SourceSnapshot ad = SnapshotBuilder("corp-ad")
                          .User("a", "a@x.example")
                          .Group("qa-eu", {"a"})
                          .Group("Testers", {"a"})
                          .Group("Staff", {}, {"qa-eu"})
                          .Build();
  MappingResult result = MapOk(set, {ad}, /*details=*/true);
  ASSERT_EQ(result.people.size(), 1u);
  const PersonAccess& a = result.people[0];
  std::vector<std::string> names;
  for (const GroupRef& g : a.groups) names.push_back(g.name);
  EXPECT_EQ(names, (std::vector<std::string>{"Staff", "Testers", "qa-eu"}));
  ASSERT_EQ(a.matches.size(), 2u);
  std::vector<std::string> via;
  for (const GroupRef& g : a.matches[0].via) via.push_back(g.name);
  EXPECT_EQ(via, (std::vector<std::string>{"Testers", "qa-eu"}));
  EXPECT_TRUE(a.matches[1].via.empty());

  // Without details, neither is filled.
  MappingResult plain = MapOk(set, {ad});
  EXPECT_TRUE(plain.people[0].groups.empty());
  EXPECT_TRUE(plain.people[0].matches[0].via.empty());
}

TEST(Map, ManyRulesUseSeveralBitsetWords) {
  // 130 rules: bits past the first and second 64-bit words.
  std::vector<Rule> rules;
  for (int i = 0; i < 130; ++i) {
    Rule rule = MakeRule("r" + std::to_string(i), {"g" + std::to_string(i)});
    rule.projects = {"p" + std::to_string(i)};
    rules.push_back(rule);
  }
  RuleSet set = Compile(rules).value();
  SourceSnapshot snap = SnapshotBuilder("ad")
                            .User("a", "a@x.example")
                            .Group("g5", {"a"})
                            .Group("g70", {}, {"g129"})
                            .Group("g129", {"a"})
                            .Build();
  MappingResult result = MapOk(set, {snap});
  ASSERT_EQ(result.people.size(), 1u);
  EXPECT_EQ(result.people[0].rules, (std::vector<std::string>{"r5", "r70", "r129"}));
}

TEST(Map, MemberIndexOutOfRangeIsAnError) {
  RuleSet set = Compile(RulePerGroup({"A"})).value();
  SourceSnapshot snap = SnapshotBuilder("ad").User("a", "a@x.example").Group("A", {"a"}).Build();
  snap.groups[0].member_users.push_back(7);
  Result<MappingResult> result = Map(set, {snap});
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result, StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace idsync::mapping
