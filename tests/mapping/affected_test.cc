// AffectedEmails: whom a change affects, over small directories held in
// memory (before and after the change), one table row per kind of change.
#include "idsync/mapping/affected.h"

#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace idsync::mapping {
namespace {

struct TestGroup {
  std::string id;
  std::string dn;
  std::string name;
  std::vector<std::string> members;  // keys of users and groups; unknown keys name nobody
};

// A directory in memory: users by key (their address), groups by key.
struct Directory {
  std::map<std::string, std::string, std::less<>> users;
  std::map<std::string, TestGroup, std::less<>> groups;
  bool nested = true;
};

class DirectoryView : public MembershipView {
 public:
  explicit DirectoryView(const Directory& d) : d_(d) {}
  std::string_view Email(std::string_view key) const override {
    auto it = d_.users.find(key);
    return it == d_.users.end() ? std::string_view() : std::string_view(it->second);
  }
  std::optional<GroupIdentity> Group(std::string_view key) const override {
    auto it = d_.groups.find(key);
    if (it == d_.groups.end()) return std::nullopt;
    return GroupIdentity{it->second.id, it->second.dn, it->second.name};
  }
  void Members(std::string_view key, std::vector<std::string_view>* users,
               std::vector<std::string_view>* groups) const override {
    for (const std::string& m : d_.groups.find(key)->second.members) {
      if (d_.users.count(m) != 0) {
        users->push_back(m);
      } else if (d_.nested && d_.groups.count(m) != 0) {
        groups->push_back(m);
      }
    }
  }

 private:
  const Directory& d_;
};

// Users a..e at a@x .. e@x; "staff" = {a, b, "eng"}, "eng" = {c, d}.
Directory Base() {
  Directory d;
  for (std::string k : {"a", "b", "c", "d", "e"}) d.users[k] = k + "@x";
  d.groups["staff"] = {"staff-id", "cn=staff,dc=x", "Staff", {"a", "b", "eng"}};
  d.groups["eng"] = {"eng-id", "cn=eng,dc=x", "Engineering", {"c", "d"}};
  return d;
}

template <typename F>
Directory Changed(F change) {
  Directory d = Base();
  change(d);
  return d;
}

struct Case {
  std::string name;
  Directory before;
  Directory after;
  std::vector<std::string> touched_users;
  std::vector<std::string> touched_groups;
  std::vector<std::string> want;
};

std::vector<std::string> AffectedBy(const Case& c) {
  TouchedEntries touched;
  for (const std::string& k : c.touched_users) touched.users.push_back(k);
  for (const std::string& k : c.touched_groups) touched.groups.push_back(k);
  return AffectedEmails(touched, DirectoryView(c.before), DirectoryView(c.after));
}

TEST(AffectedEmails, ByKindOfChange) {
  const std::vector<Case> cases = {
      {"no change", Base(), Base(), {}, {"staff"}, {}},
      {"nothing touched",
       Base(),
       Changed([](Directory& d) { d.groups["staff"].name = "X"; }),
       {},
       {},
       {}},
      {"member added",
       Base(),
       Changed([](Directory& d) { d.groups["staff"].members.push_back("e"); }),
       {},
       {"staff"},
       {"e@x"}},
      {"member removed",
       Base(),
       Changed([](Directory& d) {
         d.groups["staff"].members = {"a", "eng"};
       }),
       {},
       {"staff"},
       {"b@x"}},
      {"member swapped",
       Base(),
       Changed([](Directory& d) {
         d.groups["staff"].members = {"e", "b", "eng"};
       }),
       {},
       {"staff"},
       {"a@x", "e@x"}},
      {"group renamed",
       Base(),
       Changed([](Directory& d) { d.groups["staff"].name = "Team"; }),
       {},
       {"staff"},
       {"a@x", "b@x", "c@x", "d@x"}},
      {"renamed by case only",
       Base(),
       Changed([](Directory& d) { d.groups["staff"].name = "STAFF"; }),
       {},
       {"staff"},
       {"a@x", "b@x", "c@x", "d@x"}},
      {"group renamed and a member removed",
       Base(),
       Changed([](Directory& d) {
         d.groups["staff"].name = "Team";
         d.groups["staff"].members = {"a", "eng"};
       }),
       {},
       {"staff"},
       {"a@x", "b@x", "c@x", "d@x"}},
      {"DN moved",
       Base(),
       Changed([](Directory& d) { d.groups["eng"].dn = "cn=eng,ou=moved,dc=x"; }),
       {},
       {"eng"},
       {"c@x", "d@x"}},
      {"id changed",
       Base(),
       Changed([](Directory& d) { d.groups["eng"].id = "eng-id-2"; }),
       {},
       {"eng"},
       {"c@x", "d@x"}},
      {"nested group gains a member: the outer group's members are not affected",
       Base(),
       Changed([](Directory& d) { d.groups["eng"].members.push_back("e"); }),
       {},
       {"eng"},
       {"e@x"}},
      {"nested group loses a member",
       Base(),
       Changed([](Directory& d) { d.groups["eng"].members = {"c"}; }),
       {},
       {"eng"},
       {"d@x"}},
      {"a nested group joins: its members join",
       Base(),
       Changed([](Directory& d) {
         d.groups["ops"] = {"ops-id", "cn=ops,dc=x", "Ops", {"e", "a"}};
         d.groups["staff"].members.push_back("ops");
       }),
       {},
       {"staff", "ops"},
       {"a@x", "e@x"}},
      {"a nested group leaves: its members leave",
       Base(),
       Changed([](Directory& d) {
         d.groups["staff"].members = {"a", "b"};
       }),
       {},
       {"staff"},
       {"c@x", "d@x"}},
      {"without nesting a member group reaches nobody",
       Changed([](Directory& d) { d.nested = false; }),
       Changed([](Directory& d) {
         d.nested = false;
         d.groups["staff"].members = {"a", "b"};
       }),
       {},
       {"staff"},
       {}},
      {"a nested group renamed: only its own members",
       Base(),
       Changed([](Directory& d) { d.groups["eng"].name = "R&D"; }),
       {},
       {"eng"},
       {"c@x", "d@x"}},
      {"group created, with a nested group",
       Base(),
       Changed([](Directory& d) {
         d.groups["all"] = {"all-id", "cn=all,dc=x", "All", {"e", "eng", "nobody"}};
       }),
       {},
       {"all"},
       {"c@x", "d@x", "e@x"}},
      {"group deleted, with a nested group",
       Base(),
       Changed([](Directory& d) { d.groups.erase("staff"); }),
       {},
       {"staff"},
       {"a@x", "b@x", "c@x", "d@x"}},
      {"nesting cycle ends",
       Changed([](Directory& d) { d.groups["eng"].members.push_back("staff"); }),
       Changed([](Directory& d) {
         d.groups["eng"].members.push_back("staff");
         d.groups["staff"].members.push_back("e");
       }),
       {},
       {"staff"},
       {"e@x"}},
      {"user e-mail change: old and new address",
       Base(),
       Changed([](Directory& d) { d.users["a"] = "alice@x"; }),
       {"a"},
       {},
       {"a@x", "alice@x"}},
      {"user created",
       Base(),
       Changed([](Directory& d) { d.users["f"] = "f@x"; }),
       {"f"},
       {},
       {"f@x"}},
      {"user deleted",
       Base(),
       Changed([](Directory& d) { d.users.erase("b"); }),
       {"b"},
       {},
       {"b@x"}},
      {"user without an address",
       Base(),
       Changed([](Directory& d) { d.users["a"] = ""; }),
       {"a"},
       {},
       {"a@x"}},
      {"addresses are lower-cased",
       Changed([](Directory& d) { d.users["e"] = "E.Doe@X"; }),
       Changed([](Directory& d) {
         d.users["e"] = "E.Doe@X";
         d.groups["staff"].members.push_back("e");
       }),
       {},
       {"staff"},
       {"e.doe@x"}},
      {"a member whose address changed is named by both",
       Base(),
       Changed([](Directory& d) {
         d.users["e"] = "new-e@x";
         d.groups["staff"].members.push_back("e");
       }),
       {"e"},
       {"staff"},
       {"e@x", "new-e@x"}},
      {"a key listed twice counts once",
       Base(),
       Changed([](Directory& d) { d.groups["staff"].members.push_back("e"); }),
       {"e", "e"},
       {"staff", "staff"},
       {"e@x"}},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(AffectedBy(c), c.want) << c.name;
  }
}

}  // namespace
}  // namespace idsync::mapping
