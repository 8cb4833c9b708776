#include "snapshot_builder.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace idsync::ldap::internal {
namespace {

using Indices = std::vector<std::uint32_t>;

TEST(SnapshotBuilder, CarriesSourceAndNestingSettings) {
  SnapshotBuilder builder("corp", false, 7);
  mapping::SourceSnapshot s = builder.Finish(nullptr);
  EXPECT_EQ(s.source, "corp");
  EXPECT_FALSE(s.nested);
  EXPECT_EQ(s.max_depth, 7);
  EXPECT_FALSE(s.failed);
}

TEST(SnapshotBuilder, KeepsUserFieldsAndFallsBackToTheNormalizedDn) {
  SnapshotBuilder builder("corp", true, 32);
  ASSERT_TRUE(builder.AddUser("uid=Ann,ou=People,dc=corp", "uuid-1", "ann@corp", "Ann").ok());
  ASSERT_TRUE(builder.AddUser("UID=Bob, OU=People, DC=corp", "", "bob@corp", "Bob").ok());
  mapping::SourceSnapshot s = builder.Finish(nullptr);
  ASSERT_EQ(s.users.size(), 2u);
  EXPECT_EQ(s.users[0].id, "uuid-1");
  EXPECT_EQ(s.users[0].dn, "uid=Ann,ou=People,dc=corp");
  EXPECT_EQ(s.users[0].email, "ann@corp");
  EXPECT_EQ(s.users[0].name, "Ann");
  EXPECT_FALSE(s.users[0].disabled);
  EXPECT_EQ(s.users[1].id, "uid=bob,ou=people,dc=corp");
  EXPECT_EQ(s.users[1].dn, "UID=Bob, OU=People, DC=corp");
}

TEST(SnapshotBuilder, RefusesAnEntryReturnedTwice) {
  SnapshotBuilder builder("corp", true, 32);
  ASSERT_TRUE(builder.AddUser("uid=ann,dc=corp", "1", "", "").ok());
  Status again = builder.AddUser("UID=Ann, DC=corp", "2", "", "");
  EXPECT_EQ(again.code(), StatusCode::kInternal);
  ASSERT_TRUE(builder.AddGroup("cn=g,dc=corp", "g", "g").ok());
  EXPECT_EQ(builder.AddGroup("CN=G,DC=corp", "h", "g").status().code(), StatusCode::kInternal);
}

TEST(SnapshotBuilder, RefusesAnEntryDnThatDoesNotParse) {
  SnapshotBuilder builder("corp", true, 32);
  EXPECT_EQ(builder.AddUser("not a dn", "1", "", "").code(), StatusCode::kInternal);
  EXPECT_EQ(builder.AddGroup("=g,dc=corp", "1", "").status().code(), StatusCode::kInternal);
  EXPECT_EQ(builder.MarkDisabled("nope").status().code(), StatusCode::kInternal);
}

TEST(SnapshotBuilder, MarksDisabledUsersByDnInAnySpelling) {
  SnapshotBuilder builder("corp", true, 32);
  ASSERT_TRUE(builder.AddUser("uid=ann,dc=corp", "1", "", "").ok());
  ASSERT_TRUE(builder.AddUser("uid=bob,dc=corp", "2", "", "").ok());
  Result<bool> marked = builder.MarkDisabled("UID=Bob , DC=Corp");
  ASSERT_TRUE(marked.ok());
  EXPECT_TRUE(*marked);
  // Seen twice (two pages of a changing directory) counts once.
  EXPECT_TRUE(*builder.MarkDisabled("uid=bob,dc=corp"));
  // Someone added between the two searches is not in the snapshot.
  Result<bool> unknown = builder.MarkDisabled("uid=new,dc=corp");
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(*unknown);
  BuildCounts counts;
  mapping::SourceSnapshot s = builder.Finish(&counts);
  EXPECT_FALSE(s.users[0].disabled);
  EXPECT_TRUE(s.users[1].disabled);
  EXPECT_EQ(counts.disabled_users, 1u);
}

TEST(SnapshotBuilder, ResolvesMembersToUsersAndGroupsLikeTheLdifSource) {
  SnapshotBuilder builder("corp", true, 32);
  ASSERT_TRUE(builder.AddUser("uid=ann,ou=people,dc=corp", "u1", "", "").ok());
  ASSERT_TRUE(builder.AddUser("uid=bob,ou=people,dc=corp", "u2", "", "").ok());
  Result<std::uint32_t> a = builder.AddGroup("cn=a,ou=groups,dc=corp", "g1", "a");
  Result<std::uint32_t> b = builder.AddGroup("cn=b,ou=groups,dc=corp", "g2", "b");
  ASSERT_TRUE(a.ok() && b.ok());
  // Members may name groups added later; spellings differ; ranges append.
  builder.AddMembers(*a, {"UID=Bob,OU=People,DC=corp", "cn=b,ou=groups,dc=corp",
                          "uid=ann,ou=people,dc=corp", "uid=gone,ou=people,dc=corp"});
  builder.AddMembers(*a, {"uid=bob,ou=people,dc=corp", "not-a-dn"});
  builder.AddMembers(*b, {"cn=A,ou=Groups,dc=corp"});
  BuildCounts counts;
  mapping::SourceSnapshot s = builder.Finish(&counts);
  ASSERT_EQ(s.groups.size(), 2u);
  EXPECT_EQ(s.groups[0].member_users, (Indices{0, 1}));
  EXPECT_EQ(s.groups[0].member_groups, (Indices{1}));
  EXPECT_EQ(s.groups[1].member_users, Indices{});
  EXPECT_EQ(s.groups[1].member_groups, (Indices{0}));
  EXPECT_EQ(counts.unresolved_members, 1u);
  EXPECT_EQ(counts.invalid_member_dns, 1u);
  EXPECT_EQ(s.groups[0].id, "g1");
  EXPECT_EQ(s.groups[0].name, "a");
}

TEST(SnapshotBuilder, ResolvesNonAsciiDnsCaseInsensitively) {
  SnapshotBuilder builder("corp", true, 32);
  ASSERT_TRUE(builder.AddUser("uid=zoë,ou=people,dc=corp", "u1", "", "Zoë").ok());
  Result<std::uint32_t> g = builder.AddGroup("cn=Équipe,ou=groups,dc=corp", "g1", "Équipe");
  ASSERT_TRUE(g.ok());
  builder.AddMembers(*g, {"uid=ZOË,ou=people,dc=corp"});
  mapping::SourceSnapshot s = builder.Finish(nullptr);
  EXPECT_EQ(s.groups[0].member_users, (Indices{0}));
}

TEST(SnapshotBuilder, MembersGatheredApartResolveAsAddedOnes) {
  // Member values interned before the users and groups they name exist,
  // as a groups read on another connection hands them over.
  SnapshotBuilder builder("corp", true, 32);
  const std::uint32_t ann = builder.InternMember("uid=ann,ou=people,dc=corp");
  const std::uint32_t group_b = builder.InternMember("cn=b,ou=groups,dc=corp");
  const std::uint32_t gone = builder.InternMember("uid=gone,ou=people,dc=corp");
  const std::uint32_t bad = builder.InternMember("not-a-dn");
  EXPECT_EQ(builder.InternMember("uid=ann,ou=people,dc=corp"), ann);
  ASSERT_TRUE(builder.AddUser("uid=ann,ou=people,dc=corp", "u1", "", "").ok());
  ASSERT_TRUE(builder.AddUser("uid=bob,ou=people,dc=corp", "u2", "", "").ok());
  Result<std::uint32_t> a = builder.AddGroup("cn=a,ou=groups,dc=corp", "g1", "a");
  Result<std::uint32_t> b = builder.AddGroup("cn=b,ou=groups,dc=corp", "g2", "b");
  ASSERT_TRUE(a.ok() && b.ok());
  builder.AddMemberIds(*a, {ann, group_b, gone, bad, ann});
  builder.AddMember(*a, "UID=Bob,OU=People,DC=corp");
  builder.AddMemberIds(*a, {group_b});
  BuildCounts counts;
  mapping::SourceSnapshot s = builder.Finish(&counts);
  EXPECT_EQ(s.groups[0].member_users, (Indices{0, 1}));
  EXPECT_EQ(s.groups[0].member_groups, (Indices{1}));
  EXPECT_EQ(counts.unresolved_members, 1u);
  EXPECT_EQ(counts.invalid_member_dns, 1u);
}

TEST(TextIndex, NumbersTextsInOrderAndFindsThemAfterGrowing) {
  TextIndex index;
  EXPECT_EQ(index.Find("x"), TextIndex::kNone);
  bool added = false;
  EXPECT_EQ(index.Insert("", 7, &added), 0u);
  EXPECT_TRUE(added);
  // Many more than the first table holds, with shared prefixes and suffixes.
  std::vector<std::string> texts;
  for (int i = 0; i < 5000; ++i) texts.push_back("uid=u" + std::to_string(i) + ",dc=corp");
  for (std::size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(index.Insert(texts[i], static_cast<std::uint32_t>(i), &added), i + 1);
    EXPECT_TRUE(added);
  }
  EXPECT_EQ(index.Insert("uid=u42,dc=corp", 99, &added), 43u);
  EXPECT_FALSE(added);
  EXPECT_EQ(index.Value(43), 42u);  // the first value stays
  EXPECT_EQ(index.size(), 5001u);
  for (std::size_t i = 0; i < texts.size(); ++i) {
    ASSERT_EQ(index.Find(texts[i]), i + 1);
    ASSERT_EQ(index.Text(static_cast<std::uint32_t>(i + 1)), texts[i]);
  }
  EXPECT_EQ(index.Find(""), 0u);
  EXPECT_EQ(index.Text(0), "");
  EXPECT_EQ(index.Value(0), 7u);
  EXPECT_EQ(index.Find("uid=u42,dc=corp "), TextIndex::kNone);
  EXPECT_EQ(index.Find("UID=u42,dc=corp"), TextIndex::kNone);
}

TEST(TextIndex, InsertAllMatchesOneByOne) {
  // Duplicates inside one batch, across batches, texts of any length
  // (some with NUL bytes), and batches larger than the table.
  std::vector<std::string> texts;
  for (int i = 0; i < 3000; ++i) {
    std::string text =
        std::string(static_cast<std::size_t>(i % 70), 'a') + std::to_string(i % 1700);
    if (i % 11 == 0) text.push_back('\0');
    texts.push_back(text);
  }
  TextIndex one;
  std::vector<std::uint32_t> expected;
  bool added = false;
  for (const std::string& text : texts) expected.push_back(one.Insert(text, 0, &added));
  TextIndex all;
  std::vector<std::uint32_t> keys;
  for (std::size_t start = 0; start < texts.size();) {
    const std::size_t count = std::min<std::size_t>(texts.size() - start, 1 + start % 997);
    std::vector<std::string_view> batch(texts.begin() + static_cast<std::ptrdiff_t>(start),
                                        texts.begin() + static_cast<std::ptrdiff_t>(start + count));
    std::vector<std::uint32_t> out(count, TextIndex::kNone);
    all.InsertAll(batch.data(), batch.size(), out.data());
    keys.insert(keys.end(), out.begin(), out.end());
    start += count;
  }
  EXPECT_EQ(keys, expected);
  ASSERT_EQ(all.size(), one.size());
  for (std::uint32_t key = 0; key < all.size(); ++key) ASSERT_EQ(all.Text(key), one.Text(key));
  all.InsertAll(nullptr, 0, nullptr);
  EXPECT_EQ(all.size(), one.size());
}

}  // namespace
}  // namespace idsync::ldap::internal
