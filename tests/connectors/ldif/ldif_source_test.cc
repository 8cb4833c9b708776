#include "idsync/ldif/ldif_source.h"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace idsync::ldif {
namespace {

std::string ReadTestdata(std::string_view name) {
  std::ifstream in(std::string(IDSYNC_TESTDATA_DIR "/ldif/") + std::string(name), std::ios::binary);
  EXPECT_TRUE(in) << name;
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The settings of the `hr-export` example in contracts/config.md.
LdifConfig CorpSource() {
  LdifConfig source;
  source.name = "hr-export";
  source.users.base = "ou=people,dc=corp,dc=example";
  source.users.filter = "(objectClass=inetOrgPerson)";
  source.users.email = "mail";
  source.users.name = "cn";
  source.groups.base = "ou=groups,dc=corp,dc=example";
  source.groups.filter = "(objectClass=groupOfNames)";
  source.groups.name = "cn";
  source.groups.member = "member";
  return source;
}

LdifConfig AdSource() {
  LdifConfig source;
  source.name = "corp-ad";
  source.users.base = "OU=Staff,DC=ad,DC=example";
  source.users.filter = "(&(objectClass=user)(mail=*))";
  source.users.name = "displayName";
  source.users.disabled_filter = "(userAccountControl:1.2.840.113556.1.4.803:=2)";
  source.groups.base = "OU=Groups,DC=ad,DC=example";
  source.groups.filter = "(objectClass=group)";
  return source;
}

mapping::SourceSnapshot MustRead(const LdifConfig& source, std::string_view text,
                                 LdifStats* stats = nullptr) {
  Result<mapping::SourceSnapshot> r = SnapshotFromLdif(source, text, stats);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) return {};
  return std::move(r).value();
}

std::vector<std::string> UserEmails(const mapping::SourceSnapshot& s) {
  std::vector<std::string> out;
  for (const auto& u : s.users) out.push_back(u.email);
  return out;
}

const mapping::DirectoryUser* FindUser(const mapping::SourceSnapshot& s, std::string_view email) {
  for (const auto& u : s.users) {
    if (u.email == email) return &u;
  }
  return nullptr;
}

const mapping::DirectoryGroup* FindGroup(const mapping::SourceSnapshot& s, std::string_view name) {
  for (const auto& g : s.groups) {
    if (g.name == name) return &g;
  }
  return nullptr;
}

// The e-mails of a group's direct member users, sorted.
std::vector<std::string> MemberEmails(const mapping::SourceSnapshot& s,
                                      const mapping::DirectoryGroup& g) {
  std::vector<std::string> out;
  for (std::uint32_t i : g.member_users) out.push_back(s.users.at(i).email);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> MemberGroupNames(const mapping::SourceSnapshot& s,
                                          const mapping::DirectoryGroup& g) {
  std::vector<std::string> out;
  for (std::uint32_t i : g.member_groups) out.push_back(s.groups.at(i).name);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(SnapshotFromLdif, CarriesSourceSettings) {
  LdifConfig source = CorpSource();
  source.groups.nested = false;
  source.groups.max_depth = 7;
  mapping::SourceSnapshot s = MustRead(source, ReadTestdata("corp.ldif"));
  EXPECT_EQ(s.source, "hr-export");
  EXPECT_FALSE(s.nested);
  EXPECT_EQ(s.max_depth, 7);
  EXPECT_FALSE(s.failed);
}

TEST(SnapshotFromLdif, UsersAreEntriesBelowBaseMatchingFilter) {
  mapping::SourceSnapshot s = MustRead(CorpSource(), ReadTestdata("corp.ldif"));
  // uid=svc is under ou=services (outside the base); ou=people itself does not
  // match the filter.
  EXPECT_EQ(UserEmails(s), (std::vector<std::string>{"Alice@Corp.Example", "jose@corp.example",
                                                     "wang@corp.example", "gone@corp.example"}));
}

TEST(SnapshotFromLdif, UserFieldsComeFromConfiguredAttributes) {
  mapping::SourceSnapshot s = MustRead(CorpSource(), ReadTestdata("corp.ldif"));
  const mapping::DirectoryUser* jose = FindUser(s, "jose@corp.example");
  ASSERT_NE(jose, nullptr);
  EXPECT_EQ(jose->name, "José Müller");
  EXPECT_EQ(jose->dn, "uid=jose,ou=people,dc=corp,dc=example");  // base64 dn decoded
  EXPECT_EQ(jose->id, "0b3c2a10-1111-4d6e-8a1b-000000000002");   // entryUUID
  EXPECT_FALSE(jose->disabled);
  const mapping::DirectoryUser* wang = FindUser(s, "wang@corp.example");
  ASSERT_NE(wang, nullptr);
  EXPECT_EQ(wang->name, "王小明");
}

TEST(SnapshotFromLdif, IdFallsBackToNormalizedDn) {
  mapping::SourceSnapshot s = MustRead(CorpSource(), ReadTestdata("corp.ldif"));
  const mapping::DirectoryUser* wang = FindUser(s, "wang@corp.example");
  ASSERT_NE(wang, nullptr);
  EXPECT_EQ(wang->id, "uid=wang,ou=people,dc=corp,dc=example");
}

TEST(SnapshotFromLdif, IdFromConfiguredAttribute) {
  LdifConfig source = CorpSource();
  source.users.id = "uid";
  mapping::SourceSnapshot s = MustRead(source, ReadTestdata("corp.ldif"));
  const mapping::DirectoryUser* alice = FindUser(s, "Alice@Corp.Example");
  ASSERT_NE(alice, nullptr);
  EXPECT_EQ(alice->id, "alice");
}

TEST(SnapshotFromLdif, BaseWithOtherCaseAndSpacingStillMatches) {
  LdifConfig source = CorpSource();
  source.users.base = "OU=People , DC=Corp,dc=EXAMPLE";
  source.groups.base = "ou=GROUPS,  dc=corp, dc=example";
  mapping::SourceSnapshot s = MustRead(source, ReadTestdata("corp.ldif"));
  EXPECT_EQ(s.users.size(), 4u);
  EXPECT_EQ(s.groups.size(), 3u);
}

TEST(SnapshotFromLdif, BaseIsASuffixOfWholeRdns) {
  // "ou=xpeople" ends with "people,..." as text but is not below ou=people.
  constexpr std::string_view kText =
      "dn: uid=a,ou=people,dc=x\nobjectClass: inetOrgPerson\nmail: a@x\n\n"
      "dn: uid=b,ou=xpeople,dc=x\nobjectClass: inetOrgPerson\nmail: b@x\n\n"
      "dn: uid=c,ou=a\\,ou=people,dc=x\nobjectClass: inetOrgPerson\nmail: c@x\n\n"
      "dn: ou=people,dc=x\nobjectClass: inetOrgPerson\nmail: base@x\n";
  LdifConfig source = CorpSource();
  source.users.base = "ou=people,dc=x";
  mapping::SourceSnapshot s = MustRead(source, kText);
  // uid=c is below "ou=a\,ou=people": one RDN whose value contains a comma,
  // under dc=x only.
  EXPECT_EQ(UserEmails(s), (std::vector<std::string>{"a@x", "base@x"}));
}

TEST(SnapshotFromLdif, EmptyBaseIsTheWholeFile) {
  LdifConfig source = CorpSource();
  source.users.base = "";
  mapping::SourceSnapshot s = MustRead(source, ReadTestdata("corp.ldif"));
  EXPECT_EQ(s.users.size(), 5u);  // svc too
}

TEST(SnapshotFromLdif, NoGroupsSectionReadsNoGroups) {
  LdifConfig source = CorpSource();
  source.groups = config::GroupQuery{};  // what the loader gives without `groups:`
  mapping::SourceSnapshot s = MustRead(source, ReadTestdata("corp.ldif"));
  EXPECT_TRUE(s.groups.empty());
  EXPECT_FALSE(s.users.empty());
}

TEST(SnapshotFromLdif, DefaultFilterTakesEveryEntryBelowBase) {
  LdifConfig source = CorpSource();
  source.users.filter = config::UserQuery{}.filter;  // (objectClass=*)
  mapping::SourceSnapshot s = MustRead(source, ReadTestdata("corp.ldif"));
  EXPECT_EQ(s.users.size(), 5u);  // ou=people itself is an entry at the base
}

TEST(SnapshotFromLdif, GroupsAreEntriesBelowBaseMatchingFilter) {
  mapping::SourceSnapshot s = MustRead(CorpSource(), ReadTestdata("corp.ldif"));
  std::vector<std::string> names;
  for (const auto& g : s.groups) names.push_back(g.name);
  EXPECT_EQ(names, (std::vector<std::string>{"Studio Admins", "Engineering", "All Staff"}));
  EXPECT_EQ(s.groups[0].dn, "cn=Studio Admins,ou=groups,dc=corp,dc=example");
  EXPECT_EQ(s.groups[0].id, "cn=studio admins,ou=groups,dc=corp,dc=example");
}

TEST(SnapshotFromLdif, MembersResolveWhateverTheirSpelling) {
  mapping::SourceSnapshot s = MustRead(CorpSource(), ReadTestdata("corp.ldif"));
  const mapping::DirectoryGroup* eng = FindGroup(s, "Engineering");
  ASSERT_NE(eng, nullptr);
  // "UID=Jose, OU=People, DC=Corp, DC=Example" names jose.
  EXPECT_EQ(MemberEmails(s, *eng), std::vector<std::string>{"jose@corp.example"});
  // "cn=studio admins,..." names the group in lower case.
  EXPECT_EQ(MemberGroupNames(s, *eng), std::vector<std::string>{"Studio Admins"});
}

TEST(SnapshotFromLdif, NestedGroupMembersAreGroups) {
  mapping::SourceSnapshot s = MustRead(CorpSource(), ReadTestdata("corp.ldif"));
  const mapping::DirectoryGroup* all = FindGroup(s, "All Staff");
  ASSERT_NE(all, nullptr);
  EXPECT_EQ(MemberGroupNames(s, *all), std::vector<std::string>{"Engineering"});
  EXPECT_EQ(MemberEmails(s, *all),
            (std::vector<std::string>{"gone@corp.example", "wang@corp.example"}));
}

TEST(SnapshotFromLdif, UnknownAndInvalidMembersAreIgnoredAndCounted) {
  LdifStats stats;
  mapping::SourceSnapshot s = MustRead(CorpSource(), ReadTestdata("corp.ldif"), &stats);
  const mapping::DirectoryGroup* eng = FindGroup(s, "Engineering");
  ASSERT_NE(eng, nullptr);
  // svc (outside the users base) and uid=nobody name nothing in the snapshot;
  // "not a dn" is not a DN.
  EXPECT_EQ(eng->member_users.size(), 1u);
  EXPECT_EQ(eng->member_groups.size(), 1u);
  EXPECT_EQ(stats.unresolved_members, 2u);
  EXPECT_EQ(stats.invalid_member_dns, 1u);
  EXPECT_EQ(stats.entries, 11u);
}

TEST(SnapshotFromLdif, MemberWrittenTwiceIsOneMember) {
  constexpr std::string_view kText =
      "dn: uid=a,dc=x\nobjectClass: person\nmail: a@x\n\n"
      "dn: cn=g,dc=x\nobjectClass: groupOfNames\ncn: g\n"
      "member: uid=a,dc=x\nmember: UID=A, DC=X\n";
  LdifConfig source;
  source.name = "t";
  source.users.filter = "(objectClass=person)";
  source.groups.base = "dc=x";
  source.groups.filter = "(objectClass=groupOfNames)";
  mapping::SourceSnapshot s = MustRead(source, kText);
  ASSERT_EQ(s.groups.size(), 1u);
  EXPECT_EQ(s.groups[0].member_users, std::vector<std::uint32_t>{0});
}

TEST(SnapshotFromLdif, MemberAttributeIsConfigurable) {
  constexpr std::string_view kText =
      "dn: uid=a,dc=x\nobjectClass: person\nmail: a@x\n\n"
      "dn: uid=b,dc=x\nobjectClass: person\nmail: b@x\n\n"
      "dn: cn=g,dc=x\nobjectClass: groupOfUniqueNames\ncn: g\n"
      "uniqueMember: uid=a,dc=x\nmember: uid=b,dc=x\n";
  LdifConfig source;
  source.name = "t";
  source.users.filter = "(objectClass=person)";
  source.groups.base = "dc=x";
  source.groups.filter = "(objectClass=groupOfUniqueNames)";
  source.groups.member = "uniqueMember";
  mapping::SourceSnapshot s = MustRead(source, kText);
  ASSERT_EQ(s.groups.size(), 1u);
  EXPECT_EQ(MemberEmails(s, s.groups[0]), std::vector<std::string>{"a@x"});
}

TEST(SnapshotFromLdif, EntryMatchingBothFiltersIsUserAndGroup) {
  constexpr std::string_view kText =
      "dn: cn=both,dc=x\nobjectClass: person\nobjectClass: group\nmail: both@x\ncn: both\n\n"
      "dn: cn=outer,dc=x\nobjectClass: group\ncn: outer\nmember: cn=both,dc=x\n";
  LdifConfig source;
  source.name = "t";
  source.users.filter = "(objectClass=person)";
  source.groups.base = "dc=x";
  source.groups.filter = "(objectClass=group)";
  mapping::SourceSnapshot s = MustRead(source, kText);
  ASSERT_EQ(s.users.size(), 1u);
  ASSERT_EQ(s.groups.size(), 2u);
  const mapping::DirectoryGroup* outer = FindGroup(s, "outer");
  ASSERT_NE(outer, nullptr);
  EXPECT_EQ(MemberEmails(s, *outer), std::vector<std::string>{"both@x"});
  EXPECT_EQ(MemberGroupNames(s, *outer), std::vector<std::string>{"both"});
}

TEST(SnapshotFromLdif, ActiveDirectoryDisabledFilter) {
  mapping::SourceSnapshot s = MustRead(AdSource(), ReadTestdata("ad.ldif"));
  // Computer1 has no mail and is filtered out.
  ASSERT_EQ(UserEmails(s),
            (std::vector<std::string>{"ann@ad.example", "dan@ad.example", "nina@ad.example"}));
  EXPECT_FALSE(FindUser(s, "ann@ad.example")->disabled);  // 512
  EXPECT_TRUE(FindUser(s, "dan@ad.example")->disabled);   // 514
  EXPECT_TRUE(FindUser(s, "nina@ad.example")->disabled);  // negative, bit 2 set
  EXPECT_EQ(FindUser(s, "ann@ad.example")->name, "Ann Admin");
  ASSERT_EQ(s.groups.size(), 1u);
  EXPECT_EQ(s.groups[0].member_users.size(), 3u);
}

TEST(SnapshotFromLdif, NoDisabledFilterMeansNobodyDisabled) {
  LdifConfig source = AdSource();
  source.users.disabled_filter = "";
  mapping::SourceSnapshot s = MustRead(source, ReadTestdata("ad.ldif"));
  // The same three people as with the filter (two of them disabled there).
  ASSERT_EQ(UserEmails(s),
            (std::vector<std::string>{"ann@ad.example", "dan@ad.example", "nina@ad.example"}));
  for (const auto& u : s.users) EXPECT_FALSE(u.disabled) << u.email;
}

TEST(SnapshotFromLdif, PlainDisabledFilter) {
  LdifConfig source = CorpSource();
  source.users.disabled_filter = "(employeeType=Disabled)";
  mapping::SourceSnapshot s = MustRead(source, ReadTestdata("corp.ldif"));
  EXPECT_TRUE(FindUser(s, "gone@corp.example")->disabled);
  EXPECT_FALSE(FindUser(s, "wang@corp.example")->disabled);
}

struct BadSettingCase {
  std::string_view what;
  void (*change)(LdifConfig&);
};

TEST(SnapshotFromLdif, BadSettingsNameSourceAndSetting) {
  const std::vector<BadSettingCase> cases = {
      {"users.filter", [](LdifConfig& s) { s.users.filter = "(objectClass=person"; }},
      {"users.disabled_filter",
       [](LdifConfig& s) { s.users.disabled_filter = "(uac:1.2.840.113556.1.4.803:=)"; }},
      {"groups.filter", [](LdifConfig& s) { s.groups.filter = "(&)"; }},
      {"users.filter",
       [](LdifConfig& s) { s.users.filter = "(memberOf:1.2.840.113556.1.4.1941:=cn=g,dc=x)"; }},
      {"users.base", [](LdifConfig& s) { s.users.base = "not a dn"; }},
      {"groups.base", [](LdifConfig& s) { s.groups.base = "ou=groups,,dc=x"; }},
  };
  for (const BadSettingCase& c : cases) {
    LdifConfig source = CorpSource();
    c.change(source);
    Result<mapping::SourceSnapshot> r = SnapshotFromLdif(source, ReadTestdata("corp.ldif"));
    ASSERT_FALSE(r.ok()) << c.what;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.what;
    EXPECT_NE(r.status().message().find("source 'hr-export'"), std::string::npos)
        << r.status().message();
    EXPECT_NE(r.status().message().find(c.what), std::string::npos) << r.status().message();
  }
}

TEST(SnapshotFromLdif, MalformedLdifIsInvalidArgumentWithLine) {
  Result<mapping::SourceSnapshot> r =
      SnapshotFromLdif(CorpSource(), "dn: uid=a,dc=x\nmail:: %%%\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("source 'hr-export'"), std::string::npos);
  EXPECT_NE(r.status().message().find("line 2: "), std::string::npos) << r.status().message();
}

TEST(SnapshotFromLdif, EntryWithInvalidDnFailsTheRead) {
  Result<mapping::SourceSnapshot> r = SnapshotFromLdif(CorpSource(), "dn: not a dn\ncn: x\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("not a dn"), std::string::npos);
}

TEST(SnapshotFromLdif, DuplicateUserDnFailsTheRead) {
  constexpr std::string_view kText =
      "dn: uid=a,ou=people,dc=corp,dc=example\nobjectClass: inetOrgPerson\nmail: a@x\n\n"
      "dn: UID=A,ou=people,dc=corp,dc=example\nobjectClass: inetOrgPerson\nmail: b@x\n";
  Result<mapping::SourceSnapshot> r = SnapshotFromLdif(CorpSource(), kText);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

TEST(LdifSource, ReadsThePath) {
  LdifConfig source = CorpSource();
  source.path = IDSYNC_TESTDATA_DIR "/ldif/corp.ldif";
  LdifSource reader(source);
  EXPECT_EQ(reader.name(), "hr-export");
  Result<mapping::SourceSnapshot> r = reader.Read();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->users.size(), 4u);
  EXPECT_EQ(r->groups.size(), 3u);
  EXPECT_EQ(reader.last_stats().invalid_member_dns, 1u);
}

TEST(LdifSource, MissingFileIsNotFound) {
  LdifConfig source = CorpSource();
  source.path = IDSYNC_TESTDATA_DIR "/ldif/does-not-exist.ldif";
  LdifSource reader(source);
  Result<mapping::SourceSnapshot> r = reader.Read();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("does-not-exist.ldif"), std::string::npos);
}

TEST(LdifSource, DirectoryIsNotFound) {
  LdifConfig source = CorpSource();
  source.path = IDSYNC_TESTDATA_DIR "/ldif";
  LdifSource reader(source);
  EXPECT_EQ(reader.Read().status().code(), StatusCode::kNotFound);
}

TEST(LdifSource, ReadsLargeExportInLinearTime) {
  // 20k users and 200 groups of 1000 members each: quadratic member
  // resolution would take minutes here, the hash map takes well under a
  // second. (No clock: a hang shows as a test timeout.)
  std::string text;
  for (int i = 0; i < 20000; ++i) {
    text += "dn: uid=u" + std::to_string(i) + ",ou=people,dc=corp,dc=example\n";
    text += "objectClass: inetOrgPerson\nmail: u" + std::to_string(i) + "@x\n\n";
  }
  for (int g = 0; g < 200; ++g) {
    text += "dn: cn=g" + std::to_string(g) + ",ou=groups,dc=corp,dc=example\n";
    text += "objectClass: groupOfNames\ncn: g" + std::to_string(g) + "\n";
    for (int m = 0; m < 1000; ++m) {
      text += "member: UID=u" + std::to_string((g * 97 + m) % 20000) +
              ",ou=People,dc=corp,dc=example\n";
    }
    text += "\n";
  }
  mapping::SourceSnapshot s = MustRead(CorpSource(), text);
  EXPECT_EQ(s.users.size(), 20000u);
  ASSERT_EQ(s.groups.size(), 200u);
  for (const auto& g : s.groups) EXPECT_EQ(g.member_users.size(), 1000u) << g.name;
}

}  // namespace
}  // namespace idsync::ldif
