#include "idsync/mapping/reconcile.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "idsync/testing/status_matchers.h"

namespace idsync::mapping {
namespace {

// A small catalog keeps level strings readable: one letter per item, in order
// build.knowledge, build.flows, analytics.reports, channels.voice;
// 'n' none, 'r' read, 'e' edit.
const Catalog& TestCatalog() {
  static const Catalog catalog = *Catalog::Create({
      {"build", "Build", {{"knowledge", "Knowledge"}, {"flows", "Flows"}}},
      {"analytics", "Analytics", {{"reports", "Reports"}}},
      {"channels", "Channels", {{"voice", "Voice"}}},
  });
  return catalog;
}

ItemLevels Lv(std::string_view code) {
  ItemLevels out;
  for (char c : code) {
    out.push_back(c == 'e' ? Level::kEdit : c == 'r' ? Level::kRead : Level::kNone);
  }
  return out;
}

std::string Code(const ItemLevels& levels) {
  std::string out;
  for (Level l : levels) out += l == Level::kEdit ? 'e' : l == Level::kRead ? 'r' : 'n';
  return out;
}

// Someone a rule gives access to, known to corp-ad, which granted it.
PersonAccess Person(std::string email, std::string_view levels,
                    std::vector<std::string> projects = {}) {
  PersonAccess p;
  p.email = std::move(email);
  p.sources = {"corp-ad"};
  p.has_access = true;
  p.levels = Lv(levels);
  p.projects = std::move(projects);
  p.rules = {"staff"};
  p.granting_sources = {"corp-ad"};
  return p;
}

PersonAccess AdminPerson(std::string email) {
  PersonAccess p = Person(std::move(email), "eeee");
  p.role = Role::kAdmin;
  p.rules = {"admins"};
  return p;
}

// Matched a rule, but corp-ad marks the entry disabled.
PersonAccess DisabledPerson(std::string email) {
  PersonAccess p = Person(std::move(email), "rrnn");
  p.disabled = true;
  p.has_access = false;
  return p;
}

// Known to corp-ad, but no rule matches.
PersonAccess UnmatchedPerson(std::string email) {
  PersonAccess p = Person(std::move(email), "nnnn");
  p.has_access = false;
  p.rules.clear();
  p.granting_sources.clear();
  return p;
}

AccountUser User(std::string id, std::string email, std::string_view levels,
                 std::vector<std::string> projects = {}, bool managed = true) {
  AccountUser u;
  u.id = std::move(id);
  u.email = std::move(email);
  u.levels = Lv(levels);
  u.projects = std::move(projects);
  u.managed = managed;
  return u;
}

AccountUser Unmanaged(std::string id, std::string email, std::string_view levels,
                      std::vector<std::string> projects = {}) {
  return User(std::move(id), std::move(email), levels, std::move(projects), false);
}

AccountUser AdminUser(std::string id, std::string email, bool managed = true) {
  AccountUser u = User(std::move(id), std::move(email), "nnnn", {}, managed);
  u.role = Role::kAdmin;
  return u;
}

std::string Show(const AccessState& s) {
  std::string out = std::string(RoleName(s.role)) + " " + Code(s.levels) + " [";
  for (std::size_t i = 0; i < s.projects.size(); ++i) {
    if (i > 0) out += ",";
    out += s.projects[i];
  }
  out += "]";
  if (!s.name.empty()) out += " \"" + s.name + "\"";
  return out;
}

// One line per operation: kind, e-mail, and the access before and after.
std::string Describe(const Operation& op) {
  std::string out = std::string(OpKindName(op.kind)) + " " + op.email + ": ";
  switch (op.kind) {
    case OpKind::kInvite:
      out += Show(op.after);
      break;
    case OpKind::kUpdate:
    case OpKind::kRevoke:
      out += Show(op.before) + " -> " + Show(op.after);
      break;
    case OpKind::kRemove:
      out += Show(op.before);
      break;
  }
  if (op.adopt) out += " (adopt)";
  return out;
}

std::vector<std::string> Ops(const Plan& plan) {
  std::vector<std::string> out;
  for (const Operation& op : plan.operations) out.push_back(Describe(op));
  return out;
}

using Lines = std::vector<std::string>;

struct World {
  std::vector<PersonAccess> people;
  std::vector<AccountUser> account;
  std::vector<Project> projects = {
      {"p1", "support-bot"}, {"p2", "sales-bot"}, {"p3", "faq-bot"}, {"p4", "support-bot"}};
  std::vector<std::string> failed_sources;
  bool hold_all = false;

  Plan Run(const ReconcilePolicy& policy = {}) const {
    Result<Plan> plan = TryRun(policy);
    EXPECT_TRUE(plan.ok()) << plan.status().ToString();
    return plan.ok() ? *plan : Plan{};
  }

  Result<Plan> TryRun(const ReconcilePolicy& policy = {}) const {
    ReconcileInput input;
    input.people = &people;
    input.account = &account;
    input.projects = &projects;
    input.failed_sources = failed_sources;
    input.hold_all_reductions = hold_all;
    return Reconcile(input, TestCatalog(), policy);
  }
};

ReconcilePolicy Revoking() {
  ReconcilePolicy policy;
  policy.deprovision = DeprovisionMode::kRevoke;
  return policy;
}

ReconcilePolicy Adopting() {
  ReconcilePolicy policy;
  policy.adopt_existing = true;
  return policy;
}

Limit Count(double n) { return {Limit::Kind::kCount, n}; }
Limit Percent(double p) { return {Limit::Kind::kPercent, p}; }

TEST(OpKindName, NamesEveryKind) {
  EXPECT_EQ(OpKindName(OpKind::kInvite), "invite");
  EXPECT_EQ(OpKindName(OpKind::kUpdate), "update");
  EXPECT_EQ(OpKindName(OpKind::kRemove), "remove");
  EXPECT_EQ(OpKindName(OpKind::kRevoke), "revoke");
}

TEST(LimitAllowed, CountsPercentagesAndUnlimited) {
  struct Case {
    Limit limit;
    std::int64_t managed;
    std::int64_t want;
  };
  const Case cases[] = {
      {Limit{}, 100, std::numeric_limits<std::int64_t>::max()},
      {Count(10), 100, 10},
      {Count(10), 0, 10},
      {Count(0), 100, 0},
      {Percent(5), 100, 5},
      {Percent(5), 30, 1},   // 1.5 rounds down
      {Percent(10), 30, 3},  // exact despite binary fractions
      {Percent(7), 100, 7},
      {Percent(14), 50, 7},
      {Percent(33.3), 1000, 333},
      {Percent(18.4), 375, 69},  // 375 * 18.4 / 100 is 68.99999999999999 in binary
      {Percent(0.5), 10, 1},     // above 0%: at least one
      {Percent(100), 7, 7},
      {Percent(50), 0, 1},
      {Percent(0), 100, 0},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(c.limit.Allowed(c.managed), c.want)
        << "kind " << static_cast<int>(c.limit.kind) << " value " << c.limit.value << " of "
        << c.managed;
  }
}

TEST(Reconcile, NullInputIsInvalidArgument) {
  const std::vector<PersonAccess> people;
  const std::vector<AccountUser> account;
  const std::vector<Project> projects;
  struct Case {
    const char* name;
    ReconcileInput input;
  };
  Case cases[3];
  cases[0].name = "people";
  cases[0].input.account = &account;
  cases[0].input.projects = &projects;
  cases[1].name = "account";
  cases[1].input.people = &people;
  cases[1].input.projects = &projects;
  cases[2].name = "projects";
  cases[2].input.people = &people;
  cases[2].input.account = &account;
  for (const Case& c : cases) {
    Result<Plan> plan = Reconcile(c.input, TestCatalog(), {});
    ASSERT_FALSE(plan.ok()) << c.name;
    EXPECT_THAT(plan, StatusIs(StatusCode::kInvalidArgument)) << c.name;
  }
  ReconcileInput all;
  all.people = &people;
  all.account = &account;
  all.projects = &projects;
  EXPECT_TRUE(Reconcile(all, TestCatalog(), {}).ok());
}

TEST(Reconcile, UnknownProjectNameIsNotFound) {
  World w;
  w.people = {Person("ana@corp.example", "rnnn", {"support-bot", "nope-bot"})};
  Result<Plan> plan = w.TryRun();
  ASSERT_FALSE(plan.ok());
  EXPECT_THAT(plan, StatusIs(StatusCode::kNotFound));
  EXPECT_NE(plan.status().message().find("\"nope-bot\""), std::string::npos)
      << plan.status().message();
  EXPECT_NE(plan.status().message().find("staff"), std::string::npos) << plan.status().message();
}

TEST(Reconcile, ProjectNamesAreExactAndRepeatedNameTakesFirst) {
  World w;
  w.people = {Person("ana@corp.example", "rnnn", {"support-bot", "faq-bot"})};
  EXPECT_EQ(Ops(w.Run()), Lines{"invite ana@corp.example: member rnnn [p1,p3]"});

  w.people = {Person("ana@corp.example", "rnnn", {"Support-Bot"})};
  EXPECT_THAT(w.TryRun(), StatusIs(StatusCode::kNotFound));
}

TEST(Reconcile, InvitesPersonWithoutAccountUser) {
  World w;
  w.people = {Person("ana@corp.example", "renn", {"sales-bot", "support-bot"})};
  w.people[0].name = "Ana Lima";
  w.people[0].rules = {"staff", "sales"};
  w.account = {User("u1", "bob@corp.example", "nnnn")};
  w.people.push_back(Person("bob@corp.example", "nnnn"));
  const Plan plan = w.Run();
  EXPECT_EQ(Ops(plan), Lines{"invite ana@corp.example: member renn [p1,p2] \"Ana Lima\""});
  ASSERT_EQ(plan.operations.size(), 1u);
  EXPECT_EQ(plan.operations[0].user_id, "");
  EXPECT_EQ(plan.operations[0].rules, (Lines{"staff", "sales"}));
  EXPECT_EQ(plan.summary.invite, 1);
  EXPECT_EQ(plan.summary.unchanged, 1);
}

TEST(Reconcile, InvitesAdminWithEveryItemAtEdit) {
  World w;
  PersonAccess admin = AdminPerson("root@corp.example");
  admin.levels.clear();  // whatever the mapping left, an admin is edit everywhere
  w.people = {admin};
  EXPECT_EQ(Ops(w.Run()), Lines{"invite root@corp.example: admin eeee []"});
}

TEST(Reconcile, UpdatesWhatDiffers) {
  struct Case {
    const char* name;
    PersonAccess person;
    AccountUser user;
    std::string want;
    std::string reason;
  };
  PersonAccess named = Person("ana@corp.example", "rnnn");
  named.name = "Ana Lima";
  AccountUser user_named = User("u1", "ana@corp.example", "rnnn");
  user_named.name = "Ana";
  PersonAccess member_r = Person("ana@corp.example", "rnnn");
  AccountUser admin_user = AdminUser("u1", "ana@corp.example");
  const Case cases[] = {
      {"levels", Person("ana@corp.example", "renn"), User("u1", "ana@corp.example", "rnnn"),
       "update ana@corp.example: member rnnn [] -> member renn []", "permissions"},
      {"lower level", Person("ana@corp.example", "rnnn"), User("u1", "ana@corp.example", "ennn"),
       "update ana@corp.example: member ennn [] -> member rnnn []", "permissions"},
      {"member to admin", AdminPerson("ana@corp.example"), User("u1", "ana@corp.example", "rnnn"),
       "update ana@corp.example: member rnnn [] -> admin eeee []", "role"},
      {"admin to member", member_r, admin_user,
       "update ana@corp.example: admin nnnn [] -> member rnnn []", "role, permissions"},
      {"project added", Person("ana@corp.example", "rnnn", {"sales-bot", "support-bot"}),
       User("u1", "ana@corp.example", "rnnn", {"p1"}),
       "update ana@corp.example: member rnnn [p1] -> member rnnn [p1,p2]", "projects"},
      {"project removed", Person("ana@corp.example", "rnnn"),
       User("u1", "ana@corp.example", "rnnn", {"p2"}),
       "update ana@corp.example: member rnnn [p2] -> member rnnn []", "projects"},
      {"name", named, user_named,
       "update ana@corp.example: member rnnn [] \"Ana\" -> member rnnn [] \"Ana Lima\"", "name"},
      {"levels and projects", Person("ana@corp.example", "nnre", {"faq-bot"}),
       User("u1", "ana@corp.example", "rnnn"),
       "update ana@corp.example: member rnnn [] -> member nnre [p3]", "permissions, projects"},
  };
  for (const Case& c : cases) {
    World w;
    w.people = {c.person};
    w.account = {c.user};
    const Plan plan = w.Run();
    EXPECT_EQ(Ops(plan), Lines{c.want}) << c.name;
    if (plan.operations.size() != 1) continue;
    const Operation& op = plan.operations[0];
    EXPECT_EQ(op.reason, c.reason) << c.name;
    EXPECT_EQ(op.user_id, "u1") << c.name;
    EXPECT_EQ(op.rules, c.person.rules) << c.name;
    EXPECT_FALSE(op.adopt) << c.name;
    EXPECT_EQ(plan.summary.update, 1) << c.name;
    EXPECT_EQ(plan.summary.unchanged, 0) << c.name;
  }
}

TEST(Reconcile, AdminLevelsAreNotCompared) {
  for (std::string_view stored : {"nnnn", "rrnn", "eeee"}) {
    World w;
    w.people = {AdminPerson("root@corp.example")};
    AccountUser user = AdminUser("u1", "root@corp.example");
    user.levels = Lv(stored);
    w.account = {user};
    const Plan plan = w.Run();
    EXPECT_EQ(Ops(plan), Lines{}) << stored;
    EXPECT_EQ(plan.summary.unchanged, 1) << stored;
  }
}

TEST(Reconcile, MatchingUserIsUnchanged) {
  World w;
  PersonAccess ana = Person("ana@corp.example", "renn", {"support-bot", "sales-bot"});
  ana.name = "Ana Lima";
  w.people = {ana};
  AccountUser user = User("u1", "Ana@Corp.EXAMPLE", "renn", {"p1", "p2"});
  user.name = "Ana Lima";
  w.account = {user};
  const Plan plan = w.Run();
  EXPECT_EQ(Ops(plan), Lines{});
  EXPECT_EQ(plan.summary.unchanged, 1);
  EXPECT_EQ(plan.managed_before, 1);
}

TEST(Reconcile, EmptyNameInSourcesKeepsAccountName) {
  World w;
  w.people = {Person("ana@corp.example", "rnnn")};
  AccountUser user = User("u1", "ana@corp.example", "rnnn");
  user.name = "Ana Lima";
  w.account = {user};
  EXPECT_EQ(Ops(w.Run()), Lines{});
}

TEST(Reconcile, AccountLevelsShorterThanCatalogCountAsNone) {
  World w;
  w.people = {Person("ana@corp.example", "rnnn")};
  w.account = {User("u1", "ana@corp.example", "r")};
  EXPECT_EQ(Ops(w.Run()), Lines{});
}

TEST(Reconcile, ProtectedUsersAreNeverTouched) {
  struct Case {
    const char* name;
    World world;
    ReconcilePolicy policy;
  };
  Case cases[4];
  cases[0].name = "managed, no source knows it";
  cases[0].world.account = {User("u1", "Owner@corp.example", "eeee")};
  cases[1].name = "managed, rules differ";
  cases[1].world.people = {Person("owner@corp.example", "rnnn")};
  cases[1].world.account = {User("u1", "owner@corp.example", "eeee")};
  cases[2].name = "unmanaged, adoptable";
  cases[2].world.people = {Person("owner@corp.example", "rnnn")};
  cases[2].world.account = {Unmanaged("u1", "owner@corp.example", "rnnn")};
  cases[2].policy.adopt_existing = true;
  cases[3].name = "no account user";
  cases[3].world.people = {Person("owner@corp.example", "rnnn")};
  for (Case& c : cases) {
    // Without protection something would happen to each of them.
    const Plan open = c.world.Run(c.policy);
    EXPECT_FALSE(open.operations.empty() && open.adopted.empty()) << c.name;

    c.policy.protect = {"OWNER@Corp.Example"};
    const Plan plan = c.world.Run(c.policy);
    EXPECT_EQ(Ops(plan), Lines{}) << c.name;
    EXPECT_EQ(plan.adopted, Lines{}) << c.name;
    EXPECT_EQ(plan.conflicts, Lines{}) << c.name;
  }
}

TEST(Reconcile, OnlyManagedUsersAreDeprovisioned) {
  World w;
  w.account = {User("u1", "gone@corp.example", "rnnn"),
               Unmanaged("u2", "local@corp.example", "eeee")};
  for (bool adopt : {false, true}) {
    ReconcilePolicy policy;
    policy.adopt_existing = adopt;
    const Plan plan = w.Run(policy);
    EXPECT_EQ(Ops(plan), Lines{"remove gone@corp.example: member rnnn []"}) << adopt;
    EXPECT_EQ(plan.adopted, Lines{}) << adopt;
    EXPECT_EQ(plan.managed_before, 1) << adopt;
    EXPECT_EQ(plan.summary.unchanged, 0) << adopt;
  }
}

TEST(Reconcile, AdoptExistingUpdatesUnmanagedUser) {
  World w;
  w.people = {Person("ana@corp.example", "renn", {"support-bot"})};
  w.account = {Unmanaged("u1", "Ana@corp.example", "rnnn")};
  const Plan plan = w.Run(Adopting());
  EXPECT_EQ(Ops(plan),
            Lines{"update Ana@corp.example: member rnnn [] -> member renn [p1] (adopt)"});
  EXPECT_EQ(plan.adopted, Lines{});
  EXPECT_EQ(plan.conflicts, Lines{});
}

TEST(Reconcile, AdoptExistingListsUsersWithNothingToChange) {
  World w;
  w.people = {Person("ana@corp.example", "renn", {"support-bot"})};
  w.account = {Unmanaged("u1", "Ana@corp.example", "renn", {"p1"})};
  const Plan plan = w.Run(Adopting());
  EXPECT_EQ(Ops(plan), Lines{});
  EXPECT_EQ(plan.adopted, Lines{"ana@corp.example"});
  EXPECT_EQ(plan.summary.unchanged, 1);
  EXPECT_EQ(plan.managed_before, 0);
}

TEST(Reconcile, AdoptExistingDeprovisionsDisabledKnownPerson) {
  World w;
  w.people = {DisabledPerson("ana@corp.example")};
  w.account = {Unmanaged("u1", "ana@corp.example", "rrnn"),
               Unmanaged("u2", "stranger@corp.example", "rrnn")};
  const Plan plan = w.Run(Adopting());
  EXPECT_EQ(Ops(plan), Lines{"remove ana@corp.example: member rrnn [] (adopt)"});
  ASSERT_EQ(plan.operations.size(), 1u);
  EXPECT_EQ(plan.operations[0].reason, "disabled in corp-ad");
}

TEST(Reconcile, WithoutAdoptionUnmanagedUserIsAConflict) {
  World w;
  w.people = {Person("ana@corp.example", "renn"), DisabledPerson("bob@corp.example")};
  w.account = {Unmanaged("u1", "Ana@corp.example", "rnnn"),
               Unmanaged("u2", "bob@corp.example", "rrnn")};
  const Plan plan = w.Run();
  EXPECT_EQ(Ops(plan), Lines{});
  EXPECT_EQ(plan.conflicts, Lines{"ana@corp.example"});
  EXPECT_EQ(plan.adopted, Lines{});
  EXPECT_EQ(plan.summary.unchanged, 0);
}

TEST(Reconcile, DeprovisionReasons) {
  PersonAccess twice = DisabledPerson("ana@corp.example");
  twice.sources = {"corp-ad", "okta"};
  PersonAccess nowhere = DisabledPerson("ana@corp.example");
  nowhere.sources.clear();
  struct Case {
    const char* name;
    std::vector<PersonAccess> people;
    std::string reason;
  };
  const Case cases[] = {
      {"no person", {}, "no source knows this person"},
      {"disabled", {DisabledPerson("ana@corp.example")}, "disabled in corp-ad"},
      {"disabled, two sources", {twice}, "disabled in one of corp-ad, okta"},
      {"disabled, sources unknown", {nowhere}, "disabled in a source"},
      {"no rule", {UnmatchedPerson("ana@corp.example")}, "no rule matches"},
  };
  for (const Case& c : cases) {
    for (DeprovisionMode mode : {DeprovisionMode::kRemove, DeprovisionMode::kRevoke}) {
      World w;
      w.people = c.people;
      w.account = {User("u1", "ana@corp.example", "rrnn")};
      ReconcilePolicy policy;
      policy.deprovision = mode;
      const Plan plan = w.Run(policy);
      ASSERT_EQ(plan.operations.size(), 1u) << c.name;
      EXPECT_EQ(plan.operations[0].reason, c.reason) << c.name;
    }
  }
}

TEST(Reconcile, DeprovisionRemoveDeletesUserWithBeforeValues) {
  World w;
  AccountUser user = User("u1", "Ana@corp.example", "rrnn", {"p1", "p3"});
  user.name = "Ana Lima";
  w.account = {user};
  const Plan plan = w.Run();
  EXPECT_EQ(Ops(plan), Lines{"remove Ana@corp.example: member rrnn [p1,p3] \"Ana Lima\""});
  ASSERT_EQ(plan.operations.size(), 1u);
  EXPECT_EQ(plan.operations[0].user_id, "u1");
  EXPECT_EQ(plan.summary.remove, 1);
  EXPECT_EQ(plan.summary.revoke, 0);
}

TEST(Reconcile, DeprovisionRevokeKeepsMemberWithNothing) {
  World w;
  w.people = {DisabledPerson("ana@corp.example")};
  AccountUser admin = AdminUser("u1", "ana@corp.example");
  admin.projects = {"p2"};
  w.account = {admin, AdminUser("u9", "root@corp.example", false)};
  const Plan plan = w.Run(Revoking());
  EXPECT_EQ(Ops(plan), Lines{"revoke ana@corp.example: admin nnnn [p2] -> member nnnn []"});
  EXPECT_EQ(plan.summary.revoke, 1);
  EXPECT_EQ(plan.summary.remove, 0);
  EXPECT_FALSE(plan.blocked);
}

TEST(Reconcile, AlreadyRevokedUserIsUnchanged) {
  World w;
  w.people = {DisabledPerson("ana@corp.example")};
  w.account = {User("u1", "ana@corp.example", "nnnn")};
  const Plan plan = w.Run(Revoking());
  EXPECT_EQ(Ops(plan), Lines{});
  EXPECT_EQ(plan.summary.unchanged, 1);
  EXPECT_EQ(plan.held, Lines{});
}

TEST(Reconcile, RevokeOfUnacceptedInviteRemoves) {
  World w;
  w.people = {DisabledPerson("ana@corp.example")};
  AccountUser invited = User("u1", "ana@corp.example", "rrnn");
  invited.status = AccountUser::Status::kInvited;
  w.account = {invited};
  const Plan plan = w.Run(Revoking());
  EXPECT_EQ(Ops(plan), Lines{"remove ana@corp.example: member rrnn []"});
  ASSERT_EQ(plan.operations.size(), 1u);
  EXPECT_EQ(plan.operations[0].reason, "invite never accepted");
}

TEST(Reconcile, FailedSourceHoldsReductionsButNotAdditions) {
  struct Case {
    const char* name;
    PersonAccess person;
    AccountUser user;
    DeprovisionMode mode;
    Lines failing;  // operations when corp-ad, which granted the person, fails
    Lines held;
    Lines healthy;  // operations when only another source fails
  };
  const Case cases[] = {
      {"removal",
       DisabledPerson("ana@corp.example"),
       User("u1", "ana@corp.example", "rrnn"),
       DeprovisionMode::kRemove,
       {},
       {"ana@corp.example"},
       {"remove ana@corp.example: member rrnn []"}},
      {"revoke",
       DisabledPerson("ana@corp.example"),
       User("u1", "ana@corp.example", "rrnn"),
       DeprovisionMode::kRevoke,
       {},
       {"ana@corp.example"},
       {"revoke ana@corp.example: member rrnn [] -> member nnnn []"}},
      {"level downgrade",
       Person("ana@corp.example", "rnnn"),
       User("u1", "ana@corp.example", "ennn"),
       DeprovisionMode::kRemove,
       {},
       {"ana@corp.example"},
       {"update ana@corp.example: member ennn [] -> member rnnn []"}},
      {"lost project",
       Person("ana@corp.example", "rnnn"),
       User("u1", "ana@corp.example", "rnnn", {"p1"}),
       DeprovisionMode::kRemove,
       {},
       {"ana@corp.example"},
       {"update ana@corp.example: member rnnn [p1] -> member rnnn []"}},
      {"role downgrade",
       Person("ana@corp.example", "rnnn"),
       AdminUser("u1", "ana@corp.example"),
       DeprovisionMode::kRemove,
       {},
       {"ana@corp.example"},
       {"update ana@corp.example: admin nnnn [] -> member rnnn []"}},
      {"addition",
       Person("ana@corp.example", "eenn", {"support-bot", "sales-bot"}),
       User("u1", "ana@corp.example", "rnnn", {"p1"}),
       DeprovisionMode::kRemove,
       {"update ana@corp.example: member rnnn [p1] -> member eenn [p1,p2]"},
       {},
       {"update ana@corp.example: member rnnn [p1] -> member eenn [p1,p2]"}},
      {"addition with a downgrade",
       Person("ana@corp.example", "ernn", {"sales-bot"}),
       User("u1", "ana@corp.example", "reen", {"p1"}),
       DeprovisionMode::kRemove,
       {"update ana@corp.example: member reen [p1] -> member eeen [p1,p2]"},
       {"ana@corp.example"},
       {"update ana@corp.example: member reen [p1] -> member ernn [p2]"}},
  };
  for (const Case& c : cases) {
    World w;
    w.people = {c.person};
    w.account = {c.user, AdminUser("u9", "root@corp.example", false)};
    ReconcilePolicy policy;
    policy.deprovision = c.mode;

    w.failed_sources = {"okta", "corp-ad"};
    Plan plan = w.Run(policy);
    EXPECT_EQ(Ops(plan), c.failing) << c.name;
    EXPECT_EQ(plan.held, c.held) << c.name;

    w.failed_sources = {"okta"};
    plan = w.Run(policy);
    EXPECT_EQ(Ops(plan), c.healthy) << c.name;
    EXPECT_EQ(plan.held, Lines{}) << c.name;
  }
}

TEST(Reconcile, HoldAllReductionsHoldsManagedUserNoSourceKnows) {
  World w;
  w.account = {User("u1", "gone@corp.example", "rnnn")};
  w.people = {Person("new@corp.example", "rnnn")};
  w.failed_sources = {"corp-ad"};

  // A person nobody knows was granted nothing by the failing source.
  Plan plan = w.Run();
  EXPECT_EQ(Ops(plan), (Lines{"invite new@corp.example: member rnnn []",
                              "remove gone@corp.example: member rnnn []"}));

  w.hold_all = true;
  plan = w.Run();
  EXPECT_EQ(Ops(plan), Lines{"invite new@corp.example: member rnnn []"});
  EXPECT_EQ(plan.held, Lines{"gone@corp.example"});
  EXPECT_EQ(plan.summary.unchanged, 1);
}

TEST(Reconcile, HoldAllReductionsHoldsDowngradeOfEveryone) {
  World w;
  PersonAccess ana = Person("ana@corp.example", "rnnn");
  ana.granting_sources = {"okta"};
  w.people = {ana};
  w.account = {User("u1", "ana@corp.example", "ennn")};
  w.hold_all = true;
  const Plan plan = w.Run();
  EXPECT_EQ(Ops(plan), Lines{});
  EXPECT_EQ(plan.held, Lines{"ana@corp.example"});
}

TEST(Reconcile, OtherSourcesPeopleAreStillReduced) {
  World w;
  PersonAccess ana = DisabledPerson("ana@corp.example");
  PersonAccess bob = DisabledPerson("bob@corp.example");
  bob.sources = {"okta"};
  bob.granting_sources = {"okta"};
  PersonAccess cid = Person("cid@corp.example", "rnnn");
  cid.granting_sources = {"okta"};
  w.people = {ana, bob, cid};
  w.account = {User("u1", "ana@corp.example", "rrnn"), User("u2", "bob@corp.example", "rrnn"),
               User("u3", "cid@corp.example", "eenn")};
  w.failed_sources = {"corp-ad"};
  const Plan plan = w.Run();
  EXPECT_EQ(Ops(plan), (Lines{"update cid@corp.example: member eenn [] -> member rnnn []",
                              "remove bob@corp.example: member rrnn []"}));
  EXPECT_EQ(plan.held, Lines{"ana@corp.example"});
}

TEST(Reconcile, OperationsAreOrderedByKindThenEmail) {
  World w;
  w.people = {Person("zed@corp.example", "rnnn"), Person("amy@corp.example", "rnnn"),
              Person("yan@corp.example", "ennn"), Person("bea@corp.example", "ennn"),
              DisabledPerson("xia@corp.example"), DisabledPerson("cat@corp.example")};
  w.account = {User("u1", "yan@corp.example", "rnnn"), User("u2", "xia@corp.example", "rrnn"),
               User("u3", "Bea@corp.example", "rnnn"), User("u4", "cat@corp.example", "rrnn"),
               User("u5", "wes@corp.example", "rrnn"), User("u6", "dan@corp.example", "rrnn")};
  const Plan plan = w.Run();
  EXPECT_EQ(Ops(plan), (Lines{
                           "invite amy@corp.example: member rnnn []",
                           "invite zed@corp.example: member rnnn []",
                           "update Bea@corp.example: member rnnn [] -> member ennn []",
                           "update yan@corp.example: member rnnn [] -> member ennn []",
                           "remove cat@corp.example: member rrnn []",
                           "remove dan@corp.example: member rrnn []",
                           "remove wes@corp.example: member rrnn []",
                           "remove xia@corp.example: member rrnn []",
                       }));
  EXPECT_EQ(plan.summary.invite, 2);
  EXPECT_EQ(plan.summary.update, 2);
  EXPECT_EQ(plan.summary.remove, 4);
  EXPECT_EQ(plan.summary.revoke, 0);

  // Revokes come before removes.
  const Plan revoking = w.Run(Revoking());
  ASSERT_EQ(revoking.operations.size(), 8u);
  EXPECT_EQ(revoking.operations[4].kind, OpKind::kRevoke);
  EXPECT_EQ(revoking.operations[4].email, "cat@corp.example");
  EXPECT_EQ(revoking.operations[7].email, "xia@corp.example");
  EXPECT_EQ(revoking.summary.revoke, 4);
}

TEST(Reconcile, SummaryCountsManagedAndUnchanged) {
  World w;
  w.people = {Person("ana@corp.example", "rnnn"), Person("bob@corp.example", "rnnn"),
              Person("cid@corp.example", "rnnn")};
  w.account = {User("u1", "ana@corp.example", "rnnn"), User("u2", "bob@corp.example", "ennn"),
               Unmanaged("u3", "cid@corp.example", "rnnn"),
               Unmanaged("u4", "local@corp.example", "rnnn")};
  Plan plan = w.Run();
  EXPECT_EQ(plan.managed_before, 2);
  EXPECT_EQ(plan.summary.update, 1);
  EXPECT_EQ(plan.summary.unchanged, 1);

  plan = w.Run(Adopting());
  EXPECT_EQ(plan.summary.unchanged, 2);  // ana, and cid adopted as is
  EXPECT_EQ(plan.adopted, Lines{"cid@corp.example"});
}

// A world of 20 managed users, `gone` of whom no source knows any more.
World WithDepartures(int gone) {
  World w;
  w.account.push_back(AdminUser("u-root", "root@corp.example", false));
  for (int i = 0; i < 20; ++i) {
    std::string email = "user" + std::to_string(100 + i) + "@corp.example";
    w.account.push_back(User("u" + std::to_string(i), email, "rnnn"));
    if (i >= gone) w.people.push_back(Person(email, "rnnn"));
  }
  return w;
}

TEST(Reconcile, RemovalLimitAtBelowAndAboveThreshold) {
  struct Case {
    Limit limit;
    bool revoke;
    int gone;
    bool blocked;
    std::string reason;
  };
  const Case cases[] = {
      {Count(3), false, 2, false, ""},
      {Count(3), false, 3, false, ""},
      {Count(3), false, 4, true, "4 removals exceed max_removals 3 (of 20 managed users)"},
      {Count(3), true, 4, true, "4 removals exceed max_removals 3 (of 20 managed users)"},
      {Count(0), false, 0, false, ""},
      {Count(0), false, 1, true, "1 removal exceeds max_removals 0 (of 20 managed users)"},
      {Percent(10), false, 1, false, ""},
      {Percent(10), false, 2, false, ""},
      {Percent(10), true, 3, true, "3 removals exceed max_removals 10% = 2 (of 20 managed users)"},
      {Percent(12.5), false, 2, false, ""},  // 2.5 rounds down to 2
      {Percent(12.5), false, 3, true,
       "3 removals exceed max_removals 12.5% = 2 (of 20 managed users)"},
  };
  for (const Case& c : cases) {
    ReconcilePolicy policy;
    if (c.revoke) policy.deprovision = DeprovisionMode::kRevoke;
    policy.max_removals = c.limit;
    const Plan plan = WithDepartures(c.gone).Run(policy);
    const std::string label =
        "limit " + std::to_string(c.limit.value) + " gone " + std::to_string(c.gone);
    EXPECT_EQ(plan.summary.remove + plan.summary.revoke, c.gone) << label;
    EXPECT_EQ(plan.managed_before, 20) << label;
    EXPECT_EQ(plan.blocked, c.blocked) << label;
    EXPECT_FALSE(plan.forced) << label;
    EXPECT_EQ(plan.reasons, c.reason.empty() ? Lines{} : Lines{c.reason}) << label;
    EXPECT_EQ(plan.tripped, c.reason.empty() ? std::vector<SafetyLimit>{}
                                             : std::vector<SafetyLimit>{SafetyLimit::kMaxRemovals})
        << label;
  }
}

TEST(Reconcile, ChangeLimitCountsEveryOperation) {
  struct Case {
    Limit limit;
    bool blocked;
    std::string reason;
  };
  const Case cases[] = {
      {Count(4), false, ""},
      {Count(3), false, ""},
      {Count(2), true, "3 changes exceed max_changes 2 (of 20 managed users)"},
      {Percent(15), false, ""},
      {Percent(10), true, "3 changes exceed max_changes 10% = 2 (of 20 managed users)"},
  };
  for (const Case& c : cases) {
    World w = WithDepartures(1);
    w.people.push_back(Person("new@corp.example", "rnnn"));
    w.people[0].levels = Lv("ennn");  // one update
    ReconcilePolicy policy;
    policy.max_changes = c.limit;
    const Plan plan = w.Run(policy);
    ASSERT_EQ(plan.operations.size(), 3u);
    EXPECT_EQ(plan.blocked, c.blocked) << c.limit.value;
    EXPECT_EQ(plan.reasons, c.reason.empty() ? Lines{} : Lines{c.reason}) << c.limit.value;
    EXPECT_EQ(plan.tripped, c.reason.empty() ? std::vector<SafetyLimit>{}
                                             : std::vector<SafetyLimit>{SafetyLimit::kMaxChanges})
        << c.limit.value;
  }
}

TEST(Reconcile, EarlierRunsInTheWindowCount) {
  struct Case {
    std::int64_t window_removals;
    std::int64_t window_changes;
    int gone;
    Lines reasons;
  };
  const Case cases[] = {
      {1, 0, 2, {}},
      {2, 0, 1, {}},
      {2,
       0,
       2,
       {"4 removals (2 in this plan, 2 earlier in the window) exceed max_removals 3 "
        "(of 20 managed users)"}},
      {0, 4, 1, {}},
      {0,
       5,
       1,
       {"6 changes (1 in this plan, 5 earlier in the window) exceed max_changes 5 (of "
        "20 managed users)"}},
      // Nothing new to remove or change: earlier runs alone refuse nothing.
      {9, 9, 0, {}},
  };
  for (const Case& c : cases) {
    ReconcilePolicy policy;
    policy.max_removals = Count(3);
    policy.max_changes = Count(5);
    policy.window_removals = c.window_removals;
    policy.window_changes = c.window_changes;
    const Plan plan = WithDepartures(c.gone).Run(policy);
    EXPECT_EQ(plan.reasons, c.reasons) << c.window_removals << "/" << c.window_changes;
    EXPECT_EQ(plan.blocked, !c.reasons.empty()) << c.window_removals << "/" << c.window_changes;
  }
}

TEST(Reconcile, ForcePassesLimitsAndKeepsReasons) {
  ReconcilePolicy policy;
  policy.max_removals = Count(1);
  policy.max_changes = Count(1);
  policy.force = true;
  const Plan plan = WithDepartures(2).Run(policy);
  EXPECT_FALSE(plan.blocked);
  EXPECT_TRUE(plan.forced);
  EXPECT_EQ(plan.reasons, (Lines{"2 removals exceed max_removals 1 (of 20 managed users)",
                                 "2 changes exceed max_changes 1 (of 20 managed users)"}));
  EXPECT_EQ(plan.operations.size(), 2u);

  // Force on a plan within the limits is not "forced".
  const Plan fine = WithDepartures(1).Run(policy);
  EXPECT_FALSE(fine.blocked);
  EXPECT_FALSE(fine.forced);
  EXPECT_EQ(fine.reasons, Lines{});
}

TEST(Reconcile, LastActiveAdminIsKept) {
  constexpr const char* kNoAdmin = "the plan would leave the account without an active admin";
  AccountUser invited_admin = AdminUser("u8", "pending@corp.example", false);
  invited_admin.status = AccountUser::Status::kInvited;
  AccountUser invited_managed_admin = AdminUser("u1", "root@corp.example");
  invited_managed_admin.status = AccountUser::Status::kInvited;
  struct Case {
    const char* name;
    std::vector<PersonAccess> people;
    std::vector<AccountUser> account;
    DeprovisionMode mode;
    bool blocked;
  };
  const Case cases[] = {
      {"removing the only active admin",
       {},
       {AdminUser("u1", "root@corp.example")},
       DeprovisionMode::kRemove,
       true},
      {"revoking the only active admin",
       {},
       {AdminUser("u1", "root@corp.example")},
       DeprovisionMode::kRevoke,
       true},
      {"demoting the only active admin",
       {Person("root@corp.example", "eeee")},
       {AdminUser("u1", "root@corp.example")},
       DeprovisionMode::kRemove,
       true},
      {"an invited admin does not count",
       {},
       {AdminUser("u1", "root@corp.example"), invited_admin},
       DeprovisionMode::kRemove,
       true},
      {"inviting an admin does not count",
       {AdminPerson("new@corp.example")},
       {AdminUser("u1", "root@corp.example")},
       DeprovisionMode::kRemove,
       true},
      {"a second active admin remains",
       {},
       {AdminUser("u1", "root@corp.example"), AdminUser("u2", "boss@corp.example", false)},
       DeprovisionMode::kRemove,
       false},
      {"a member promoted to admin remains",
       {AdminPerson("ana@corp.example")},
       {AdminUser("u1", "root@corp.example"), User("u2", "ana@corp.example", "rnnn")},
       DeprovisionMode::kRemove,
       false},
      {"no active admin before",
       {},
       {invited_managed_admin, User("u2", "ana@corp.example", "rnnn", {}, false)},
       DeprovisionMode::kRemove,
       false},
  };
  for (const Case& c : cases) {
    World w;
    w.people = c.people;
    w.account = c.account;
    ReconcilePolicy policy;
    policy.deprovision = c.mode;
    const Plan plan = w.Run(policy);
    EXPECT_FALSE(plan.operations.empty()) << c.name;
    EXPECT_EQ(plan.blocked, c.blocked) << c.name;
    EXPECT_EQ(plan.reasons, c.blocked ? Lines{kNoAdmin} : Lines{}) << c.name;
    EXPECT_EQ(plan.tripped, c.blocked ? std::vector<SafetyLimit>{SafetyLimit::kLastAdmin}
                                      : std::vector<SafetyLimit>{})
        << c.name;

    policy.force = true;
    const Plan forced = w.Run(policy);
    EXPECT_FALSE(forced.blocked) << c.name;
    EXPECT_EQ(forced.forced, c.blocked) << c.name;
  }
}

TEST(Reconcile, IsDeterministic) {
  World w = WithDepartures(3);
  w.people.push_back(Person("new@corp.example", "rnnn"));
  std::reverse(w.people.begin(), w.people.end());
  const Plan a = w.Run();
  std::reverse(w.account.begin(), w.account.end());
  const Plan b = w.Run();
  EXPECT_EQ(Ops(a), Ops(b));
  EXPECT_EQ(a.operations.size(), 4u);
}

}  // namespace
}  // namespace idsync::mapping
