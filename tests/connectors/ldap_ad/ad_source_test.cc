// The `ldap` source with flavor active_directory against a real Samba AD DC
// started by the fixture (skipped when Samba is not installed): ldaps with
// the right and a wrong CA, the password bind over ldap:// refused by idsync
// and by Samba, objectGUID text, disabled users, nested and cyclic groups,
// non-ASCII names and DNs, and paging across many pages.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "idsync/ldap/ldap_source.h"

#include "require_servers.h"
#include "samba_fixture.h"

namespace idsync::ldap {
namespace {

using ::idsync::testing::AdUser;
using ::idsync::testing::DecodeBase64;
using ::idsync::testing::MakeAdUser;
using ::idsync::testing::SambaFixture;

// Samba adds about 10-40 entries a second: enough for 15 pages of 10.
constexpr int kBulkUsers = 150;

// Seeded once per binary: four people in OU=Staff (one non-ASCII, one
// disabled, one without mail), groups in OU=Groups: Engineering <->
// Platform (a cycle), Équipe (non-ASCII name and DN), Top -> Mid -> Leaf.
struct Seed {
  std::string ann, zoe, bob, nomail, carl;
  std::string engineering, platform, equipe, top, mid, leaf;
};

class AdSourceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!SambaFixture::Available()) return;
    Result<SambaFixture*> dc = SambaFixture::Shared();
    if (!dc.ok()) {
      *setup_ = dc.status();
      return;
    }
    dc_ = *dc;
    *setup_ = SeedDirectory();
  }

  static Status SeedDirectory() {
    AdUser nomail = MakeAdUser("No Mail", "", "No Mail");
    ASSIGN_OR_RETURN(
        std::vector<std::string> dns,
        dc_->AddUsers({MakeAdUser("Ann Admin", "ann@corp.example.test", "Ann Admin"),
                       MakeAdUser("Zoë Ångström", "Zoe@Corp.Example.Test", "Zoë Ångström"),
                       MakeAdUser("Bob Leaver", "bob@corp.example.test", "Bob Leaver",
                                  /*disabled=*/true),
                       nomail, MakeAdUser("Carl Deep", "carl@corp.example.test", "Carl Deep")}));
    seed_.ann = dns[0];
    seed_.zoe = dns[1];
    seed_.bob = dns[2];
    seed_.nomail = dns[3];
    seed_.carl = dns[4];
    ASSIGN_OR_RETURN(seed_.engineering, dc_->AddGroup("Engineering", {seed_.ann}));
    ASSIGN_OR_RETURN(seed_.platform, dc_->AddGroup("Platform", {seed_.bob, seed_.engineering}));
    RETURN_IF_ERROR(dc_->AddMembers(seed_.engineering, {seed_.platform}));
    ASSIGN_OR_RETURN(seed_.equipe, dc_->AddGroup("Équipe", {seed_.zoe, seed_.nomail}));
    ASSIGN_OR_RETURN(seed_.leaf, dc_->AddGroup("Leaf", {seed_.carl}));
    ASSIGN_OR_RETURN(seed_.mid, dc_->AddGroup("Mid", {seed_.leaf}));
    ASSIGN_OR_RETURN(seed_.top, dc_->AddGroup("Top", {seed_.mid, seed_.zoe}));

    return Status::Ok();
  }

  // Many users for paging, in one ldapadd; only the paging test needs them
  // (CTest runs every test in its own process with its own DC).
  static Status SeedBulk() {
    std::vector<AdUser> bulk;
    for (int i = 0; i < kBulkUsers; ++i) {
      AdUser user = MakeAdUser("Bulk " + std::to_string(i),
                               "bulk" + std::to_string(i) + "@corp.example.test");
      user.ou = "Bulk";
      bulk.push_back(user);
    }
    return dc_->AddUsers(bulk).status();
  }

  void SetUp() override {
    IDSYNC_REQUIRE_SERVER(SambaFixture::Available(), SambaFixture::WhyUnavailable());
    ASSERT_TRUE(setup_->ok()) << setup_->ToString();
  }

  // The seeded people and groups as the administrator reads them over
  // ldaps with the test CA.
  static ldap::LdapConfig Config() {
    ldap::LdapConfig source;
    source.name = "corp-ad";
    source.flavor = ldap::Flavor::kActiveDirectory;
    source.urls = {dc_->ldaps_url()};
    source.tls.ca_file = dc_->ca_file();
    source.bind.kind = ldap::BindConfig::Kind::kSimple;
    source.bind.dn = dc_->admin_dn();
    source.bind.password = dc_->admin_password();
    source.users.base = dc_->OuDn("Staff");
    source.users.filter = "(&(objectClass=user)(objectCategory=person))";
    source.users.email = "mail";
    source.users.name = "displayName";
    source.users.disabled_filter = "(userAccountControl:1.2.840.113556.1.4.803:=2)";
    source.groups.base = dc_->OuDn("Groups");
    source.groups.filter = "(objectClass=group)";
    source.groups.name = "cn";
    source.groups.member = "member";
    source.page_size = 100;
    source.timeout = std::chrono::seconds(20);
    return source;
  }

  static Result<mapping::SourceSnapshot> ReadWith(const ldap::LdapConfig& config,
                                                  LdapStats* stats = nullptr) {
    ASSIGN_OR_RETURN(std::unique_ptr<LdapSource> source, LdapSource::Create(config));
    Result<mapping::SourceSnapshot> snapshot = source->Read();
    if (stats != nullptr) *stats = source->last_stats();
    return snapshot;
  }

  static const mapping::DirectoryUser* User(const mapping::SourceSnapshot& s,
                                            const std::string& email) {
    for (const mapping::DirectoryUser& u : s.users) {
      if (u.email == email) return &u;
    }
    return nullptr;
  }

  static const mapping::DirectoryGroup* Group(const mapping::SourceSnapshot& s,
                                              const std::string& name) {
    for (const mapping::DirectoryGroup& g : s.groups) {
      if (g.name == name) return &g;
    }
    return nullptr;
  }

  static std::vector<std::string> MemberNames(const mapping::SourceSnapshot& s,
                                              const mapping::DirectoryGroup& g) {
    std::vector<std::string> names;
    for (std::uint32_t u : g.member_users) names.push_back("user:" + s.users[u].name);
    for (std::uint32_t m : g.member_groups) names.push_back("group:" + s.groups[m].name);
    std::sort(names.begin(), names.end());
    return names;
  }

  static SambaFixture* dc_;
  static Status* setup_;
  static Seed seed_;
};

SambaFixture* AdSourceTest::dc_ = nullptr;
Status* AdSourceTest::setup_ = new Status();
Seed AdSourceTest::seed_;

TEST_F(AdSourceTest, ReadsUsersAndGroupsOverLdapsWithTheRightCa) {
  LdapStats stats;
  Result<mapping::SourceSnapshot> snapshot = ReadWith(Config(), &stats);
  ASSERT_TRUE(snapshot.ok()) << snapshot.status().ToString();
  EXPECT_EQ(snapshot->source, "corp-ad");
  ASSERT_EQ(snapshot->users.size(), 5u);
  const mapping::DirectoryUser* zoe = User(*snapshot, "Zoe@Corp.Example.Test");
  ASSERT_NE(zoe, nullptr);
  EXPECT_EQ(zoe->name, "Zoë Ångström");
  EXPECT_EQ(zoe->dn, seed_.zoe);
  EXPECT_EQ(stats.url, dc_->ldaps_url());
  EXPECT_EQ(stats.groups, 6u);
}

TEST_F(AdSourceTest, WrongCaFailsAndReadsNobody) {
  ldap::LdapConfig config = Config();
  config.tls.ca_file = dc_->wrong_ca_file();
  Result<mapping::SourceSnapshot> snapshot = ReadWith(config);
  ASSERT_FALSE(snapshot.ok());
  EXPECT_EQ(snapshot.status().code(), StatusCode::kUnavailable) << snapshot.status().ToString();
  EXPECT_EQ(snapshot.status().message().find(dc_->admin_password()), std::string::npos);
}

TEST_F(AdSourceTest, PasswordBindOverPlainLdapIsRefusedBeforeConnecting) {
  ldap::LdapConfig config = Config();
  config.urls = {dc_->ldap_url()};
  Result<std::unique_ptr<LdapSource>> source = LdapSource::Create(config);
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), StatusCode::kInvalidArgument) << source.status().ToString();
}

// With allow_insecure the password does go out in clear, and Samba itself
// refuses the simple bind ("Transport encryption required",
// strongerAuthRequired).
TEST_F(AdSourceTest, SambaRefusesPasswordBindOverPlainLdap) {
  ldap::LdapConfig config = Config();
  config.urls = {dc_->ldap_url()};
  config.allow_insecure = true;
  Result<mapping::SourceSnapshot> snapshot = ReadWith(config);
  ASSERT_FALSE(snapshot.ok());
  EXPECT_EQ(snapshot.status().code(), StatusCode::kPermissionDenied)
      << snapshot.status().ToString();
  EXPECT_EQ(snapshot.status().message().find(dc_->admin_password()), std::string::npos);
}

// objectGUID is 16 bytes; its text puts the first three fields byte-swapped.
// The expected text is built here from ldapsearch's base64 value.
TEST_F(AdSourceTest, ObjectGuidTextIsInActiveDirectoryByteOrder) {
  Result<mapping::SourceSnapshot> snapshot = ReadWith(Config());
  ASSERT_TRUE(snapshot.ok()) << snapshot.status().ToString();
  for (const std::string& dn : {seed_.ann, seed_.zoe}) {
    Result<std::string> base64 = dc_->SearchBase64(dn, "objectGUID");
    ASSERT_TRUE(base64.ok()) << base64.status().ToString();
    Result<std::string> bytes = DecodeBase64(*base64);
    ASSERT_TRUE(bytes.ok());
    ASSERT_EQ(bytes->size(), 16u);
    static constexpr int kOrder[] = {3,  2, 1, 0,  -1, 5,  4,  -1, 7,  6,
                                     -1, 8, 9, -1, 10, 11, 12, 13, 14, 15};
    std::string expected;
    char hex[3];
    for (int i : kOrder) {
      if (i < 0) {
        expected += '-';
        continue;
      }
      std::snprintf(hex, sizeof(hex), "%02x", static_cast<unsigned char>((*bytes)[i]));
      expected += hex;
    }
    const mapping::DirectoryUser* user = nullptr;
    for (const mapping::DirectoryUser& u : snapshot->users) {
      if (u.dn == dn) user = &u;
    }
    ASSERT_NE(user, nullptr) << dn;
    EXPECT_EQ(user->id, expected) << dn;
  }
}

TEST_F(AdSourceTest, DisabledFilterMarksTheDisabledUserOnly) {
  LdapStats stats;
  Result<mapping::SourceSnapshot> snapshot = ReadWith(Config(), &stats);
  ASSERT_TRUE(snapshot.ok()) << snapshot.status().ToString();
  ASSERT_GE(snapshot->users.size(), 2u) << "bob and at least one enabled person";
  for (const mapping::DirectoryUser& u : snapshot->users) {
    EXPECT_EQ(u.disabled, u.dn == seed_.bob) << u.dn;
  }
  EXPECT_EQ(stats.disabled_users, 1u);

  // Enabling and disabling again is seen by the next read.
  ASSERT_TRUE(dc_->SetDisabled(seed_.bob, false).ok());
  Result<mapping::SourceSnapshot> enabled = ReadWith(Config());
  ASSERT_TRUE(dc_->SetDisabled(seed_.bob, true).ok());
  ASSERT_TRUE(enabled.ok()) << enabled.status().ToString();
  const mapping::DirectoryUser* bob = User(*enabled, "bob@corp.example.test");
  ASSERT_NE(bob, nullptr);
  EXPECT_FALSE(bob->disabled);
}

TEST_F(AdSourceTest, NestedCyclicAndNonAsciiGroupsKeepTheirDirectMembers) {
  Result<mapping::SourceSnapshot> snapshot = ReadWith(Config());
  ASSERT_TRUE(snapshot.ok()) << snapshot.status().ToString();
  const mapping::DirectoryGroup* engineering = Group(*snapshot, "Engineering");
  const mapping::DirectoryGroup* platform = Group(*snapshot, "Platform");
  const mapping::DirectoryGroup* equipe = Group(*snapshot, "Équipe");
  const mapping::DirectoryGroup* top = Group(*snapshot, "Top");
  ASSERT_NE(engineering, nullptr);
  ASSERT_NE(platform, nullptr);
  ASSERT_NE(equipe, nullptr);
  ASSERT_NE(top, nullptr);
  EXPECT_EQ(MemberNames(*snapshot, *engineering),
            (std::vector<std::string>{"group:Platform", "user:Ann Admin"}));
  EXPECT_EQ(MemberNames(*snapshot, *platform),
            (std::vector<std::string>{"group:Engineering", "user:Bob Leaver"}));
  EXPECT_EQ(MemberNames(*snapshot, *equipe),
            (std::vector<std::string>{"user:No Mail", "user:Zoë Ångström"}));
  EXPECT_EQ(equipe->dn, seed_.equipe);
  EXPECT_EQ(MemberNames(*snapshot, *top),
            (std::vector<std::string>{"group:Mid", "user:Zoë Ångström"}));
  EXPECT_TRUE(snapshot->nested);
}

// groups.in_chain: the server names every nested user of a group, so each
// group lists them among its direct users; the cycle is no problem.
TEST_F(AdSourceTest, InChainListsNestedUsersInEveryGroup) {
  ldap::LdapConfig config = Config();
  config.groups.in_chain = true;
  Result<mapping::SourceSnapshot> snapshot = ReadWith(config);
  ASSERT_TRUE(snapshot.ok()) << snapshot.status().ToString();
  auto users_of = [&](const std::string& name) {
    std::vector<std::string> names;
    const mapping::DirectoryGroup* g = Group(*snapshot, name);
    if (g == nullptr) return names;
    for (std::uint32_t u : g->member_users) names.push_back(snapshot->users[u].name);
    std::sort(names.begin(), names.end());
    return names;
  };
  EXPECT_EQ(users_of("Top"), (std::vector<std::string>{"Carl Deep", "Zoë Ångström"}));
  EXPECT_EQ(users_of("Mid"), (std::vector<std::string>{"Carl Deep"}));
  EXPECT_EQ(users_of("Engineering"), (std::vector<std::string>{"Ann Admin", "Bob Leaver"}));
  EXPECT_EQ(users_of("Platform"), (std::vector<std::string>{"Ann Admin", "Bob Leaver"}));
}

// A large read fetches the groups on a second connection while the users
// arrive (LdapSourceOptions::parallel_groups_after, forced here for the small
// seeded domain): over ldaps to the DC it is the same read.
TEST_F(AdSourceTest, GroupsOnASecondConnectionGiveTheSameRead) {
  Result<mapping::SourceSnapshot> one = ReadWith(Config());
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  LdapSourceOptions options;
  options.parallel_groups_after = 0;
  Result<std::unique_ptr<LdapSource>> source = LdapSource::Create(Config(), options);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  Result<mapping::SourceSnapshot> two = (*source)->Read();
  ASSERT_TRUE(two.ok()) << two.status().ToString();
  EXPECT_TRUE((*source)->last_stats().parallel_groups);
  ASSERT_FALSE(one->users.empty());
  ASSERT_EQ(two->users.size(), one->users.size());
  for (std::size_t i = 0; i < one->users.size(); ++i) {
    EXPECT_EQ(two->users[i].id, one->users[i].id);
    EXPECT_EQ(two->users[i].dn, one->users[i].dn);
    EXPECT_EQ(two->users[i].email, one->users[i].email);
    EXPECT_EQ(two->users[i].name, one->users[i].name);
    EXPECT_EQ(two->users[i].disabled, one->users[i].disabled);
  }
  ASSERT_EQ(two->groups.size(), one->groups.size());
  ASSERT_GE(one->groups.size(), 4u);
  for (std::size_t i = 0; i < one->groups.size(); ++i) {
    EXPECT_EQ(two->groups[i].id, one->groups[i].id);
    EXPECT_EQ(two->groups[i].name, one->groups[i].name);
    EXPECT_EQ(MemberNames(*two, two->groups[i]), MemberNames(*one, one->groups[i]))
        << one->groups[i].name;
  }
}

TEST_F(AdSourceTest, PagesAcrossManyPages) {
  ASSERT_TRUE(SeedBulk().ok());
  ldap::LdapConfig config = Config();
  config.users.base = dc_->OuDn("Bulk");
  config.page_size = 10;
  LdapStats stats;
  Result<mapping::SourceSnapshot> snapshot = ReadWith(config, &stats);
  ASSERT_TRUE(snapshot.ok()) << snapshot.status().ToString();
  ASSERT_EQ(snapshot->users.size(), static_cast<std::size_t>(kBulkUsers));
  std::vector<std::string> emails;
  for (const mapping::DirectoryUser& u : snapshot->users) emails.push_back(u.email);
  std::sort(emails.begin(), emails.end());
  EXPECT_EQ(std::unique(emails.begin(), emails.end()), emails.end());
  // Users, disabled users and groups are each paged by 10.
  EXPECT_GE(stats.pages, static_cast<std::size_t>(kBulkUsers / 10));
}

}  // namespace
}  // namespace idsync::ldap
