// The change feeds' entry cache, in memory: whom a batch of changes touches
// (users before and after, those who joined or left a group, nested
// membership included), renames keeping membership, the snapshot it
// rebuilds and shares, and its saved form.
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "feeds.h"

namespace idsync::ldap::internal {
namespace {

using Kind = CachedEntry::Kind;
using Emails = std::vector<std::string>;
using Shared = std::shared_ptr<const mapping::SourceSnapshot>;

CachedEntry User(const std::string& key, const std::string& uid, const std::string& email) {
  CachedEntry e;
  e.kind = Kind::kUser;
  e.key = key;
  e.id = key;
  e.dn = "uid=" + uid + ",ou=people,dc=x";
  e.email = email;
  e.name = uid;
  return e;
}

CachedEntry Group(const std::string& key, const std::string& cn, std::vector<std::string> members) {
  CachedEntry e;
  e.kind = Kind::kGroup;
  e.key = key;
  e.id = key;
  e.dn = "cn=" + cn + ",ou=groups,dc=x";
  e.name = cn;
  e.members = std::move(members);
  return e;
}

ldap::LdapConfig Source() {
  ldap::LdapConfig source;
  source.name = "corp";
  return source;
}

// alice, bob in eng; carol in sub, sub in eng; dave alone.
EntryCache Seeded() {
  EntryCache cache(Source());
  cache.Begin();
  cache.Put(User("u1", "alice", "Alice@X"));
  cache.Put(User("u2", "bob", "bob@x"));
  cache.Put(User("u3", "carol", "carol@x"));
  cache.Put(User("u4", "dave", "dave@x"));
  cache.Put(Group("g1", "sub", {"uid=carol,ou=people,dc=x"}));
  cache.Put(Group("g2", "eng",
                  {"uid=alice,ou=people,dc=x", "UID=Bob, OU=People, DC=X", "cn=sub,ou=groups,dc=x",
                   "uid=ghost,ou=people,dc=x"}));
  cache.Commit();
  return cache;
}

TEST(EntryCache, AnEmailChangeTouchesTheOldAndTheNewAddress) {
  EntryCache cache = Seeded();
  cache.Begin();
  cache.Put(User("u2", "bob", "Robert@X"));
  bool changed = false;
  EXPECT_EQ(cache.Commit(&changed), (Emails{"bob@x", "robert@x"}));
  EXPECT_TRUE(changed);
}

TEST(EntryCache, AnUnchangedEntryTouchesNobody) {
  EntryCache cache = Seeded();
  cache.Begin();
  cache.Put(User("u2", "bob", "bob@x"));
  bool changed = true;
  EXPECT_EQ(cache.Commit(&changed), Emails{});
  EXPECT_FALSE(changed);
}

TEST(EntryCache, AGroupChangeTouchesWhoJoinedAndWhoLeftNotWhoStayed) {
  EntryCache cache = Seeded();
  cache.Begin();
  // alice and bob leave eng, dave joins; carol stays (through sub).
  cache.Put(Group("g2", "eng", {"uid=dave,ou=people,dc=x", "cn=sub,ou=groups,dc=x"}));
  bool changed = false;
  EXPECT_EQ(cache.Commit(&changed), (Emails{"alice@x", "bob@x", "dave@x"}));
  EXPECT_TRUE(changed);
}

TEST(EntryCache, NestedJoinersAndLeaversAreTouched) {
  EntryCache cache = Seeded();
  // dave joins sub, and so eng above it; alice, bob and carol stay.
  cache.Begin();
  cache.Put(Group("g1", "sub", {"uid=carol,ou=people,dc=x", "uid=dave,ou=people,dc=x"}));
  EXPECT_EQ(cache.Commit(), Emails{"dave@x"});
  // sub leaves eng: carol and dave leave eng (they stay in sub).
  cache.Begin();
  cache.Put(Group("g2", "eng", {"uid=alice,ou=people,dc=x", "uid=bob,ou=people,dc=x"}));
  EXPECT_EQ(cache.Commit(), (Emails{"carol@x", "dave@x"}));
  // A new group naming alice, put inside sub: alice joins both.
  cache.Begin();
  cache.Put(Group("g3", "leaf", {"uid=alice,ou=people,dc=x"}));
  cache.Put(
      Group("g1", "sub",
            {"uid=carol,ou=people,dc=x", "uid=dave,ou=people,dc=x", "cn=leaf,ou=groups,dc=x"}));
  EXPECT_EQ(cache.Commit(), Emails{"alice@x"});
  // A deleted subgroup: its members leave it and everything above it.
  cache.Begin();
  EXPECT_TRUE(cache.Remove(Kind::kGroup, "g3"));
  EXPECT_EQ(cache.Commit(), Emails{"alice@x"});
}

TEST(EntryCache, ARenamedGroupTouchesEveryMember) {
  EntryCache cache = Seeded();
  cache.Begin();
  CachedEntry renamed = Group("g1", "sub", {"uid=carol,ou=people,dc=x"});
  renamed.name = "subteam";  // rules match names: carol's access may change
  cache.Put(renamed);
  EXPECT_EQ(cache.Commit(), Emails{"carol@x"});
  cache.Begin();
  cache.Put(Group("g2", "engineering",
                  {"uid=alice,ou=people,dc=x", "UID=Bob, OU=People, DC=X", "cn=sub,ou=groups,dc=x",
                   "uid=ghost,ou=people,dc=x"}));
  EXPECT_EQ(cache.Commit(), (Emails{"alice@x", "bob@x", "carol@x"}));
}

TEST(EntryCache, MembershipIsComparedWithTheStateBeforeTheWholeBatch) {
  // In one batch: dave joins sub, eng takes in "ops" (where dave is), dave
  // leaves sub again. Compared step by step, sub lost and gained dave and
  // eng held him throughout; before and after the batch, dave joined eng.
  EntryCache cache = Seeded();
  cache.Begin();
  cache.Put(Group("g3", "ops", {"uid=dave,ou=people,dc=x"}));
  cache.Commit();
  cache.Begin();
  cache.Put(Group("g1", "sub", {"uid=carol,ou=people,dc=x", "uid=dave,ou=people,dc=x"}));
  cache.Put(Group("g2", "eng",
                  {"uid=alice,ou=people,dc=x", "UID=Bob, OU=People, DC=X", "cn=sub,ou=groups,dc=x",
                   "uid=ghost,ou=people,dc=x", "cn=ops,ou=groups,dc=x"}));
  cache.Put(Group("g1", "sub", {"uid=carol,ou=people,dc=x"}));
  EXPECT_EQ(cache.Commit(), Emails{"dave@x"});
}

TEST(EntryCache, NestedMembersAreLeftOutWhenNestingIsOff) {
  ldap::LdapConfig source = Source();
  source.groups.nested = false;
  EntryCache cache(source);
  cache.Begin();
  cache.Put(User("u3", "carol", "carol@x"));
  cache.Put(Group("g1", "sub", {"uid=carol,ou=people,dc=x"}));
  cache.Put(Group("g2", "eng", {"cn=sub,ou=groups,dc=x"}));
  cache.Commit();
  cache.Begin();
  cache.Remove(Kind::kGroup, "g2");
  EXPECT_EQ(cache.Commit(), Emails{});
}

TEST(EntryCache, ADeleteTouchesTheUserAndTheSnapshotLosesIt) {
  EntryCache cache = Seeded();
  cache.Begin();
  EXPECT_TRUE(cache.RemoveAny("u4"));
  EXPECT_FALSE(cache.RemoveAny("nope"));
  EXPECT_EQ(cache.Commit(), Emails{"dave@x"});
  Result<Shared> snapshot = cache.Snapshot();
  ASSERT_TRUE(snapshot.ok());
  EXPECT_EQ((*snapshot)->users.size(), 3u);
}

TEST(EntryCache, ARenameKeepsTheUserInItsGroups) {
  EntryCache cache = Seeded();
  cache.Begin();
  CachedEntry renamed = User("u2", "robert", "bob@x");
  cache.Put(renamed);
  // eng's member value follows bob; nobody joined or left.
  EXPECT_EQ(cache.Commit(), Emails{"bob@x"});
  Result<Shared> snapshot = cache.Snapshot();
  ASSERT_TRUE(snapshot.ok());
  int eng_groups = 0;
  for (const mapping::DirectoryGroup& group : (*snapshot)->groups) {
    if (group.name != "eng") continue;
    ++eng_groups;
    bool found = false;
    for (std::uint32_t u : group.member_users) found |= (*snapshot)->users[u].dn == renamed.dn;
    EXPECT_TRUE(found);
  }
  EXPECT_EQ(eng_groups, 1) << "no group eng to check";
}

TEST(EntryCache, TheSnapshotResolvesMembersAsAFullReadDoes) {
  EntryCache cache = Seeded();
  Result<Shared> snapshot = cache.Snapshot();
  ASSERT_TRUE(snapshot.ok());
  EXPECT_EQ((*snapshot)->source, "corp");
  ASSERT_EQ((*snapshot)->groups.size(), 2u);
  const mapping::DirectoryGroup& eng =
      (*snapshot)->groups[0].name == "eng" ? (*snapshot)->groups[0] : (*snapshot)->groups[1];
  EXPECT_EQ(eng.member_users.size(), 2u);   // alice, bob (another spelling); ghost unresolved
  EXPECT_EQ(eng.member_groups.size(), 1u);  // sub
}

TEST(EntryCache, DisabledIsKeptAcrossAReplaceUnlessAsked) {
  EntryCache cache = Seeded();
  cache.Begin();
  EXPECT_TRUE(cache.SetDisabled("u1", true));
  EXPECT_FALSE(cache.SetDisabled("g1", true));
  EXPECT_EQ(cache.Commit(), Emails{"alice@x"});
  cache.Begin();
  cache.Put(User("u1", "alice", "Alice@X"));
  cache.Commit();
  EXPECT_TRUE(cache.Find(Kind::kUser, "u1")->disabled);
  cache.Begin();
  cache.Put(User("u1", "alice", "Alice@X"), /*keep_disabled=*/false);
  cache.Commit();
  EXPECT_FALSE(cache.Find(Kind::kUser, "u1")->disabled);
}

TEST(EntryCache, SavesAndLoadsItselfWithTheCookie) {
  EntryCache cache = Seeded();
  cache.Begin();
  cache.SetDisabled("u3", true);
  cache.Commit();
  const std::string saved = cache.Serialize("rid=000,csn=1\nx");
  EntryCache loaded(Source());
  std::string cookie;
  ASSERT_TRUE(loaded.Parse(saved, &cookie).ok());
  EXPECT_EQ(cookie, "rid=000,csn=1\nx");
  EXPECT_EQ(loaded.Serialize(cookie), saved);
  EXPECT_TRUE(loaded.Find(Kind::kUser, "u3")->disabled);
  EXPECT_EQ(loaded.Find(Kind::kGroup, "g2")->members.size(), 4u);
}

TEST(EntryCache, DamagedStateIsRefused) {
  EntryCache cache = Seeded();
  std::string saved = cache.Serialize("c");
  EntryCache loaded(Source());
  std::string cookie;
  Status status = loaded.Parse(saved.substr(0, saved.size() - 3), &cookie);
  EXPECT_EQ(status.code(), StatusCode::kInternal);
  EXPECT_EQ(loaded.users(), 0u);
  EXPECT_EQ(loaded.Parse("something else", &cookie).code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace idsync::ldap::internal

namespace idsync::ldap::internal {
namespace {

class MapState : public mapping::FeedStateStore {
 public:
  Result<std::optional<std::string>> Load(const std::string& key) override {
    auto it = values.find(key);
    if (it == values.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  Status Save(const std::string& key, const std::string& value) override {
    values[key] = value;
    return Status::Ok();
  }
  std::map<std::string, std::string> values;
};

TEST(EntryCache, SmallChangesAreJournaledAndLoadBack) {
  MapState state;
  EntryCache cache = Seeded();
  ASSERT_TRUE(cache.Save(state, "k", "c1").ok());
  const std::string full = state.values["k"];
  cache.Begin();
  cache.Put(User("u2", "bob", "robert@x"));
  cache.RemoveAny("u4");
  cache.Commit();
  ASSERT_TRUE(cache.Save(state, "k", "c2").ok());
  EXPECT_EQ(state.values["k"], full);  // the full copy was not rewritten
  EXPECT_FALSE(state.values["k/journal"].empty());

  EntryCache loaded(Source());
  Result<std::optional<std::string>> cookie = loaded.Load(state, "k");
  ASSERT_TRUE(cookie.ok());
  ASSERT_TRUE(cookie->has_value());
  EXPECT_EQ(**cookie, "c2");
  EXPECT_EQ(loaded.Serialize("x"), cache.Serialize("x"));
  EXPECT_EQ(loaded.Find(Kind::kUser, "u4"), nullptr);
}

TEST(EntryCache, NothingSavedLoadsAsNothing) {
  MapState state;
  EntryCache cache(Source());
  Result<std::optional<std::string>> cookie = cache.Load(state, "k");
  ASSERT_TRUE(cookie.ok());
  EXPECT_FALSE(cookie->has_value());
}

}  // namespace
}  // namespace idsync::ldap::internal

namespace idsync::ldap::internal {
namespace {

// A snapshot as sets of names, independent of entry order.
std::map<std::string, std::set<std::string>> View(const mapping::SourceSnapshot& s) {
  std::map<std::string, std::set<std::string>> out;
  for (const mapping::DirectoryUser& u : s.users) {
    out["users"].insert(u.id + "|" + u.dn + "|" + u.email + "|" + u.name + "|" +
                        (u.disabled ? "d" : "e"));
  }
  for (const mapping::DirectoryGroup& g : s.groups) {
    std::set<std::string>& members = out["group " + g.name];
    members.insert("#" + g.id);
    for (std::uint32_t u : g.member_users) members.insert(s.users[u].dn);
    for (std::uint32_t h : g.member_groups) members.insert(s.groups[h].dn);
  }
  return out;
}

TEST(EntryCache, PatchedSnapshotsEqualRebuiltOnes) {
  EntryCache cache = Seeded();
  ASSERT_TRUE(cache.Snapshot().ok());  // built once; what follows is patched
  cache.Begin();
  cache.Put(User("u2", "bob", "robert@x"));   // modify
  cache.RemoveAny("u1");                      // remove alice
  cache.Put(User("u5", "ghost", "ghost@x"));  // eng named it
  cache.SetDisabled("u3", true);              // disable
  cache.Put(Group("g1", "sub", {"uid=carol,ou=people,dc=x", "uid=dave,ou=people,dc=x"}));
  cache.Commit();
  Result<Shared> patched = cache.Snapshot();
  ASSERT_TRUE(patched.ok());

  EntryCache rebuilt(Source());
  std::string cookie;
  ASSERT_TRUE(rebuilt.Parse(cache.Serialize("c"), &cookie).ok());
  Result<Shared> fresh = rebuilt.Snapshot();
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(View(**patched), View(**fresh));
  EXPECT_EQ((*patched)->users.size(), 4u);
  EXPECT_TRUE(View(**patched)["group eng"].count("uid=ghost,ou=people,dc=x"));
  EXPECT_FALSE(View(**patched)["group eng"].count("uid=alice,ou=people,dc=x"));

  // And again, removing the user that moved into the hole.
  cache.Begin();
  cache.RemoveAny("u5");
  cache.RemoveAny("u4");
  cache.Commit();
  patched = cache.Snapshot();
  ASSERT_TRUE(patched.ok());
  ASSERT_TRUE(rebuilt.Parse(cache.Serialize("c"), &cookie).ok());
  fresh = rebuilt.Snapshot();
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(View(**patched), View(**fresh));
  ASSERT_FALSE((*patched)->groups.empty());
  for (const mapping::DirectoryGroup& g : (*patched)->groups) {
    for (std::uint32_t u : g.member_users) EXPECT_LT(u, (*patched)->users.size());
  }
}

TEST(EntryCache, AHeldSnapshotStaysAsItWasAndAReleasedOneIsReused) {
  EntryCache cache = Seeded();
  Result<Shared> held = cache.Snapshot();
  ASSERT_TRUE(held.ok());
  const std::map<std::string, std::set<std::string>> before = View(**held);
  cache.Begin();
  cache.Put(User("u2", "bob", "robert@x"));
  cache.Put(Group("g1", "sub", {"uid=dave,ou=people,dc=x"}));
  cache.Commit();
  Result<Shared> next = cache.Snapshot();
  ASSERT_TRUE(next.ok());
  EXPECT_NE(held->get(), next->get());
  EXPECT_EQ(View(**held), before);  // the holder's copy did not move
  EXPECT_NE(View(**next), before);

  // Let go of, the last one is patched in place rather than copied.
  const mapping::SourceSnapshot* address = next->get();
  held = Shared();
  next = Shared();
  cache.Begin();
  cache.Put(User("u4", "dave", "david@x"));
  cache.Commit();
  Result<Shared> again = cache.Snapshot();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->get(), address);
  bool found = false;
  for (const mapping::DirectoryUser& u : (*again)->users) found |= u.email == "david@x";
  EXPECT_TRUE(found);

  EntryCache rebuilt(Source());
  std::string cookie;
  ASSERT_TRUE(rebuilt.Parse(cache.Serialize("c"), &cookie).ok());
  Result<Shared> fresh = rebuilt.Snapshot();
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(View(**again), View(**fresh));
}

}  // namespace
}  // namespace idsync::ldap::internal
