// The `ldap` source against a real slapd started by the fixture (skipped
// when slapd is not installed): reading users and groups, paging, TLS and
// StartTLS with the right and a wrong CA, the insecure-bind refusal,
// fail-over, SASL EXTERNAL over ldapi, disabled_filter, and the fail-closed
// cases (limits, referrals, missing bases, a server that stops, cuts the
// connection or stalls mid-read), plus reconnecting between reads.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "idsync/ldap/ldap_source.h"

#include "read_checks.h"
#include "shared_slapd.h"
#include "slapd_fixture.h"
#include "tcp_proxy.h"

namespace idsync::ldap {
namespace {

using ::idsync::ldap::testing::ClosedPort;
using ::idsync::ldap::testing::Describe;
using ::idsync::ldap::testing::FailedWith;
using ::idsync::ldap::testing::ProxyFault;
using ::idsync::ldap::testing::TcpProxy;
using ::idsync::ldap::testing::UrlPort;
using ::idsync::testing::MustStart;
using ::idsync::testing::OwnSlapdTest;
using ::idsync::testing::SharedSlapdTest;
using ::idsync::testing::SlapdFixture;
using ::idsync::testing::SlapdOptions;

constexpr char kSuffix[] = "dc=corp,dc=example";
constexpr char kPeople[] = "ou=people,dc=corp,dc=example";
constexpr char kGroups[] = "ou=groups,dc=corp,dc=example";
constexpr char kBulk[] = "ou=bulk,dc=corp,dc=example";
constexpr int kBulkUsers = 2500;

// Four people (one non-ASCII, one without mail, one disabled by
// employeeType), and groups: engineering <-> platform (a cycle),
// "Équipe" (non-ASCII name and DN) holding Zoë under another spelling of her
// DN and a member that does not exist.
constexpr char kSeed[] = R"(dn: uid=alice,ou=people,dc=corp,dc=example
objectClass: inetOrgPerson
uid: alice
cn: Alice Example
sn: Example
mail: alice@corp.example

dn: uid=jose,ou=people,dc=corp,dc=example
objectClass: inetOrgPerson
uid: jose
cn:: Sm9zw6kgTcO8bGxlcg==
sn: Muller
mail: Jose@Corp.Example

dn: uid=bob,ou=people,dc=corp,dc=example
objectClass: inetOrgPerson
uid: bob
cn: Bob Leaver
sn: Leaver
mail: bob@corp.example
employeeType: disabled

dn:: Y249Wm/DqyDDhW5nc3Ryw7ZtLG91PXBlb3BsZSxkYz1jb3JwLGRjPWV4YW1wbGU=
objectClass: inetOrgPerson
cn:: Wm/DqyDDhW5nc3Ryw7Zt
sn:: w4VuZ3N0csO2bQ==
uid: zoe

dn: cn=platform,ou=groups,dc=corp,dc=example
objectClass: groupOfNames
cn: platform
member: uid=bob,ou=people,dc=corp,dc=example

dn: cn=engineering,ou=groups,dc=corp,dc=example
objectClass: groupOfNames
cn: engineering
member: uid=alice,ou=people,dc=corp,dc=example
member: uid=jose,ou=people,dc=corp,dc=example
member: cn=platform,ou=groups,dc=corp,dc=example

dn:: Y249w4lxdWlwZSxvdT1ncm91cHMsZGM9Y29ycCxkYz1leGFtcGxl
objectClass: groupOfNames
cn:: w4lxdWlwZQ==
member:: Y249Wk/DiyDDhU5HU1RSw5ZNLG91PXBlb3BsZSxkYz1jb3JwLGRjPWV4YW1wbGU=
member: uid=ghost,ou=people,dc=corp,dc=example
)";

// Closes the cycle once both groups exist.
constexpr char kCycle[] = R"(dn: cn=platform,ou=groups,dc=corp,dc=example
changetype: modify
add: member
member: cn=engineering,ou=groups,dc=corp,dc=example
)";

// A subtree whose only entry is a referral to another server.
constexpr char kReferral[] = R"(dn: ou=elsewhere,dc=corp,dc=example
objectClass: organizationalUnit
ou: elsewhere

dn: ou=moved,ou=elsewhere,dc=corp,dc=example
objectClass: referral
objectClass: extensibleObject
ou: moved
ref: ldap://other.corp.example/ou=moved,dc=corp,dc=example
)";

std::string BulkLdif(int count) {
  std::string ldif = "dn: ou=bulk,dc=corp,dc=example\nobjectClass: organizationalUnit\nou: bulk\n";
  for (int i = 0; i < count; ++i) {
    std::string uid = "u" + std::to_string(i);
    ldif += "\ndn: uid=" + uid + ",ou=bulk,dc=corp,dc=example\nobjectClass: inetOrgPerson\n";
    ldif += "uid: " + uid + "\ncn: User " + std::to_string(i) + "\nsn: " + uid + "\nmail: " + uid +
            "@corp.example\n";
  }
  return ldif;
}

// The seeded people and groups as an anonymous ldap:// reader sees them.
ldap::LdapConfig Anonymous(const SlapdFixture& slapd) {
  ldap::LdapConfig source;
  source.name = "corp";
  source.urls = {slapd.ldap_url()};
  source.users.base = kPeople;
  source.users.filter = "(objectClass=inetOrgPerson)";
  source.users.email = "mail";
  source.users.name = "cn";
  source.groups.base = kGroups;
  source.groups.filter = "(objectClass=groupOfNames)";
  source.groups.name = "cn";
  source.groups.member = "member";
  source.page_size = 100;
  source.connect_timeout = std::chrono::seconds(5);
  source.timeout = std::chrono::seconds(10);
  return source;
}

ldap::LdapConfig AsAdmin(const SlapdFixture& slapd, ldap::LdapConfig source) {
  source.bind.kind = ldap::BindConfig::Kind::kSimple;
  source.bind.dn = slapd.admin_dn();
  source.bind.password = slapd.admin_password();
  return source;
}

Result<mapping::SourceSnapshot> ReadOnce(const ldap::LdapConfig& config,
                                         LdapStats* stats = nullptr) {
  Result<std::unique_ptr<LdapSource>> source = LdapSource::Create(config);
  if (!source.ok()) return source.status();
  Result<mapping::SourceSnapshot> snapshot = (*source)->Read();
  if (stats != nullptr) *stats = (*source)->last_stats();
  return snapshot;
}

const mapping::DirectoryUser* FindUser(const mapping::SourceSnapshot& s, const std::string& uid) {
  for (const mapping::DirectoryUser& u : s.users) {
    if (u.dn.rfind("uid=" + uid + ",", 0) == 0) return &u;
  }
  return nullptr;
}

int FindGroup(const mapping::SourceSnapshot& s, const std::string& name) {
  for (std::size_t i = 0; i < s.groups.size(); ++i) {
    if (s.groups[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

std::vector<std::string> MemberUids(const mapping::SourceSnapshot& s, int group) {
  std::vector<std::string> names;
  for (std::uint32_t u : s.groups[static_cast<std::size_t>(group)].member_users) {
    names.push_back(s.users[u].name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// A server of the test's own holding kSeed, or null when that failed (the
// test has then failed too).
std::unique_ptr<SlapdFixture> StartSeeded(const SlapdOptions& options = {}) {
  std::unique_ptr<SlapdFixture> slapd = MustStart(options);
  if (slapd == nullptr) return nullptr;
  Status seeded = slapd->Add(kSeed);
  EXPECT_TRUE(seeded.ok()) << seeded.ToString();
  return seeded.ok() ? std::move(slapd) : nullptr;
}

// One seeded server shared by the tests that only read (starting slapd
// costs about half a second).
class LdapSourceIntegration : public SharedSlapdTest<LdapSourceIntegration> {
 public:
  static Status Seed(SlapdFixture& slapd) {
    RETURN_IF_ERROR(slapd.Add(kSeed));
    RETURN_IF_ERROR(slapd.Modify(kCycle));
    return slapd.Add(kReferral);
  }
};

// A server holding many users, for paging and for faults in the middle of
// a read (loading them costs about a second).
class LdapSourceBulk : public SharedSlapdTest<LdapSourceBulk> {
 public:
  static Status Seed(SlapdFixture& slapd) { return slapd.Add(BulkLdif(kBulkUsers)); }

 protected:
  // The bulk users, anonymously, without groups.
  ldap::LdapConfig Bulk(const std::string& url) const {
    ldap::LdapConfig config = Anonymous(*slapd_);
    config.urls = {url};
    config.users.base = kBulk;
    config.groups.base.clear();
    return config;
  }
};

TEST_F(LdapSourceIntegration, ReadsUsersWithTheirAttributesAndEntryUuid) {
  Result<mapping::SourceSnapshot> s = ReadOnce(Anonymous(*slapd_));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->source, "corp");
  ASSERT_EQ(s->users.size(), 4u);
  const mapping::DirectoryUser* jose = FindUser(*s, "jose");
  ASSERT_NE(jose, nullptr);
  EXPECT_EQ(jose->email, "Jose@Corp.Example");
  EXPECT_EQ(jose->name, "José Müller");
  EXPECT_EQ(jose->dn, "uid=jose,ou=people,dc=corp,dc=example");
  // entryUUID: 8-4-4-4-12 lower-case hex, distinct per entry.
  EXPECT_EQ(jose->id.size(), 36u);
  EXPECT_EQ(jose->id[8], '-');
  EXPECT_NE(jose->id, FindUser(*s, "alice")->id);
  for (const mapping::DirectoryUser& u : s->users) EXPECT_FALSE(u.disabled) << u.dn;
}

TEST_F(LdapSourceIntegration, ReadsNonAsciiNamesAndDns) {
  Result<mapping::SourceSnapshot> s = ReadOnce(Anonymous(*slapd_));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  int equipe = FindGroup(*s, "Équipe");
  ASSERT_GE(equipe, 0);
  EXPECT_EQ(s->groups[static_cast<std::size_t>(equipe)].dn,
            "cn=Équipe,ou=groups," + std::string(kSuffix));
  // The member value spells Zoë's DN in capitals; it still resolves.
  EXPECT_EQ(MemberUids(*s, equipe), (std::vector<std::string>{"Zoë Ångström"}));
}

TEST_F(LdapSourceIntegration, ReadsNestedGroupsWithACycle) {
  LdapStats stats;
  Result<mapping::SourceSnapshot> s = ReadOnce(Anonymous(*slapd_), &stats);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(s->nested);
  EXPECT_EQ(s->max_depth, 32);
  ASSERT_EQ(s->groups.size(), 3u);
  int engineering = FindGroup(*s, "engineering");
  int platform = FindGroup(*s, "platform");
  ASSERT_GE(engineering, 0);
  ASSERT_GE(platform, 0);
  const auto& eng = s->groups[static_cast<std::size_t>(engineering)];
  const auto& plat = s->groups[static_cast<std::size_t>(platform)];
  EXPECT_EQ(MemberUids(*s, engineering),
            (std::vector<std::string>{"Alice Example", "José Müller"}));
  EXPECT_EQ(MemberUids(*s, platform), (std::vector<std::string>{"Bob Leaver"}));
  EXPECT_EQ(eng.member_groups, (std::vector<std::uint32_t>{static_cast<std::uint32_t>(platform)}));
  EXPECT_EQ(plat.member_groups,
            (std::vector<std::uint32_t>{static_cast<std::uint32_t>(engineering)}));
  EXPECT_EQ(eng.id.size(), 36u);
  // uid=ghost names nobody.
  EXPECT_EQ(stats.unresolved_members, 1u);
  EXPECT_EQ(stats.users, 4u);
  EXPECT_EQ(stats.groups, 3u);
  EXPECT_EQ(stats.url, slapd_->ldap_url());
}

TEST_F(LdapSourceIntegration, NestingSettingsComeFromTheGroupsSection) {
  ldap::LdapConfig config = Anonymous(*slapd_);
  config.groups.nested = false;
  config.groups.max_depth = 5;
  Result<mapping::SourceSnapshot> s = ReadOnce(config);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_FALSE(s->nested);
  EXPECT_EQ(s->max_depth, 5);
}

TEST_F(LdapSourceIntegration, WithoutGroupsReadsOnlyUsers) {
  ldap::LdapConfig config = Anonymous(*slapd_);
  config.groups.base.clear();
  Result<mapping::SourceSnapshot> s = ReadOnce(config);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->users.size(), 4u);
  EXPECT_TRUE(s->groups.empty());
}

TEST_F(LdapSourceIntegration, ConfiguredIdAttributeIsTheUserId) {
  ldap::LdapConfig config = Anonymous(*slapd_);
  config.users.id = "uid";
  Result<mapping::SourceSnapshot> s = ReadOnce(config);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(FindUser(*s, "alice")->id, "alice");
}

TEST_F(LdapSourceIntegration, DisabledFilterIsEvaluatedByTheServer) {
  ldap::LdapConfig config = Anonymous(*slapd_);
  config.users.disabled_filter = "(employeeType=disabled)";
  LdapStats stats;
  Result<mapping::SourceSnapshot> s = ReadOnce(config, &stats);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(FindUser(*s, "bob")->disabled);
  EXPECT_FALSE(FindUser(*s, "alice")->disabled);
  EXPECT_FALSE(FindUser(*s, "jose")->disabled);
  EXPECT_EQ(stats.disabled_users, 1u);
}

TEST_F(LdapSourceIntegration, LdapsWithTheRightCa) {
  ldap::LdapConfig config = AsAdmin(*slapd_, Anonymous(*slapd_));
  config.urls = {slapd_->ldaps_url()};
  config.tls.ca_file = slapd_->ca_file();
  Result<mapping::SourceSnapshot> s = ReadOnce(config);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->users.size(), 4u);
}

TEST_F(LdapSourceIntegration, StartTlsWithTheRightCa) {
  ldap::LdapConfig config = AsAdmin(*slapd_, Anonymous(*slapd_));
  config.tls.start_tls = true;
  config.tls.ca_file = slapd_->ca_file();
  Result<mapping::SourceSnapshot> s = ReadOnce(config);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->users.size(), 4u);
}

TEST_F(LdapSourceIntegration, LdapsWithTheWrongCaFails) {
  ldap::LdapConfig config = AsAdmin(*slapd_, Anonymous(*slapd_));
  config.urls = {slapd_->ldaps_url()};
  config.tls.ca_file = slapd_->wrong_ca_file();
  Result<mapping::SourceSnapshot> s = ReadOnce(config);
  ASSERT_TRUE(FailedWith(s, StatusCode::kUnavailable, slapd_->wrong_ca_file()));
  EXPECT_EQ(s.status().message().find(slapd_->admin_password()), std::string::npos);
}

TEST_F(LdapSourceIntegration, StartTlsWithTheWrongCaFailsWithoutFallingBackToPlainText) {
  ldap::LdapConfig config = AsAdmin(*slapd_, Anonymous(*slapd_));
  config.tls.start_tls = true;
  config.tls.ca_file = slapd_->wrong_ca_file();
  Result<mapping::SourceSnapshot> s = ReadOnce(config);
  ASSERT_TRUE(FailedWith(s, StatusCode::kUnavailable, "StartTLS"));
}

TEST_F(LdapSourceIntegration, VerifyFalseAcceptsACertificateNoCaVouchesFor) {
  ldap::LdapConfig config = AsAdmin(*slapd_, Anonymous(*slapd_));
  config.urls = {slapd_->ldaps_url()};
  config.tls.ca_file = slapd_->wrong_ca_file();
  config.tls.verify = false;
  Result<mapping::SourceSnapshot> s = ReadOnce(config);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
}

TEST_F(LdapSourceIntegration, PasswordBindOverPlainLdapIsRefused) {
  ldap::LdapConfig config = AsAdmin(*slapd_, Anonymous(*slapd_));
  Result<mapping::SourceSnapshot> s = ReadOnce(config);
  ASSERT_TRUE(FailedWith(s, StatusCode::kInvalidArgument, "allow_insecure"));
  EXPECT_EQ(s.status().message().find(slapd_->admin_password()), std::string::npos);
}

TEST_F(LdapSourceIntegration, PasswordBindOverPlainLdapWorksWithAllowInsecure) {
  ldap::LdapConfig config = AsAdmin(*slapd_, Anonymous(*slapd_));
  config.allow_insecure = true;
  Result<mapping::SourceSnapshot> s = ReadOnce(config);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->users.size(), 4u);
}

TEST_F(LdapSourceIntegration, WrongPasswordIsUnauthenticatedAndNotRetriedElsewhere) {
  ldap::LdapConfig config = AsAdmin(*slapd_, Anonymous(*slapd_));
  config.bind.password = "wrong-password-value";
  config.urls = {slapd_->ldaps_url(), slapd_->ldaps_url()};
  config.tls.ca_file = slapd_->ca_file();
  Result<mapping::SourceSnapshot> s = ReadOnce(config);
  ASSERT_TRUE(FailedWith(s, StatusCode::kUnauthenticated));
  EXPECT_EQ(s.status().message().find("wrong-password-value"), std::string::npos);
  EXPECT_EQ(s.status().message().find("no URL could be used"), std::string::npos);
  EXPECT_NE(s.status().message().find(slapd_->admin_dn()), std::string::npos);
}

TEST_F(LdapSourceIntegration, FailsOverToTheSecondUrl) {
  Result<std::uint16_t> closed = ClosedPort();
  ASSERT_TRUE(closed.ok());
  ldap::LdapConfig config = Anonymous(*slapd_);
  config.urls = {"ldap://127.0.0.1:" + std::to_string(*closed), slapd_->ldap_url()};
  LdapStats stats;
  Result<mapping::SourceSnapshot> s = ReadOnce(config, &stats);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(stats.url, slapd_->ldap_url());
  EXPECT_EQ(s->users.size(), 4u);
}

TEST_F(LdapSourceIntegration, FailsOverWhenTheFirstUrlAcceptsAndClosesAtOnce) {
  // Like a balancer without a backend: the TCP connect succeeds, nothing answers.
  Result<std::unique_ptr<TcpProxy>> dead =
      TcpProxy::Start(UrlPort(slapd_->ldap_url()), {ProxyFault::Kind::kCut, 0});
  ASSERT_TRUE(dead.ok()) << dead.status().ToString();
  ldap::LdapConfig config = Anonymous(*slapd_);
  config.urls = {(*dead)->url(), slapd_->ldap_url()};
  LdapStats stats;
  Result<mapping::SourceSnapshot> s = ReadOnce(config, &stats);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*dead)->connections(), 1);
  EXPECT_EQ(stats.url, slapd_->ldap_url());
}

TEST_F(LdapSourceIntegration, FailsOverWhenTheFirstUrlNeverAnswers) {
  Result<std::unique_ptr<TcpProxy>> silent =
      TcpProxy::Start(UrlPort(slapd_->ldap_url()), {ProxyFault::Kind::kStall, 0});
  ASSERT_TRUE(silent.ok()) << silent.status().ToString();
  ldap::LdapConfig config = Anonymous(*slapd_);
  config.urls = {(*silent)->url(), slapd_->ldap_url()};
  config.timeout = std::chrono::milliseconds(300);
  LdapStats stats;
  Result<mapping::SourceSnapshot> s = ReadOnce(config, &stats);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(stats.url, slapd_->ldap_url());
}

TEST_F(LdapSourceIntegration, ATlsHandshakeThatNeverCompletesTimesOut) {
  Result<std::unique_ptr<TcpProxy>> silent =
      TcpProxy::Start(UrlPort(slapd_->ldaps_url()), {ProxyFault::Kind::kStall, 0});
  ASSERT_TRUE(silent.ok()) << silent.status().ToString();
  ldap::LdapConfig config = Anonymous(*slapd_);
  config.urls = {"ldaps://127.0.0.1:" + std::to_string((*silent)->port())};
  config.tls.ca_file = slapd_->ca_file();
  config.connect_timeout = std::chrono::milliseconds(300);
  config.timeout = std::chrono::milliseconds(300);
  auto started = std::chrono::steady_clock::now();
  Result<mapping::SourceSnapshot> s = ReadOnce(config);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.status().code() == StatusCode::kUnavailable ||
              s.status().code() == StatusCode::kDeadlineExceeded)
      << s.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
}

TEST_F(LdapSourceIntegration, NoReachableUrlIsUnavailable) {
  Result<std::uint16_t> closed = ClosedPort();
  ASSERT_TRUE(closed.ok());
  ldap::LdapConfig config = Anonymous(*slapd_);
  config.urls = {"ldap://127.0.0.1:" + std::to_string(*closed)};
  Result<mapping::SourceSnapshot> s = ReadOnce(config);
  ASSERT_TRUE(FailedWith(s, StatusCode::kUnavailable, "source 'corp'"));
}

TEST_F(LdapSourceIntegration, SaslExternalOverLdapi) {
  ldap::LdapConfig config = Anonymous(*slapd_);
  config.urls = {slapd_->ldapi_url()};
  config.bind.kind = ldap::BindConfig::Kind::kSaslExternal;
  Result<mapping::SourceSnapshot> s = ReadOnce(config);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->users.size(), 4u);
}

TEST_F(LdapSourceIntegration, AContinuationReferenceFailsTheRead) {
  ldap::LdapConfig config = Anonymous(*slapd_);
  config.users.base = "ou=elsewhere,dc=corp,dc=example";
  config.users.filter = "(objectClass=*)";
  config.groups.base.clear();
  Result<mapping::SourceSnapshot> s = ReadOnce(config);
  ASSERT_TRUE(FailedWith(s, StatusCode::kFailedPrecondition, "other.corp.example"));
}

TEST_F(LdapSourceIntegration, AReferralResultFailsTheRead) {
  ldap::LdapConfig config = Anonymous(*slapd_);
  config.users.base = "ou=moved,ou=elsewhere,dc=corp,dc=example";
  config.groups.base.clear();
  Result<mapping::SourceSnapshot> s = ReadOnce(config);
  ASSERT_TRUE(FailedWith(s, StatusCode::kFailedPrecondition, "referral"));
}

TEST_F(LdapSourceIntegration, AMissingBaseIsNotFound) {
  ldap::LdapConfig config = Anonymous(*slapd_);
  config.groups.base = "ou=nowhere,dc=corp,dc=example";
  Result<mapping::SourceSnapshot> s = ReadOnce(config);
  ASSERT_TRUE(FailedWith(s, StatusCode::kNotFound, "groups search"));
}

TEST_F(LdapSourceIntegration, ABadFilterIsInvalidArgument) {
  ldap::LdapConfig config = Anonymous(*slapd_);
  config.users.filter = "(&(objectClass=inetOrgPerson)";
  Result<mapping::SourceSnapshot> s = ReadOnce(config);
  ASSERT_TRUE(FailedWith(s, StatusCode::kInvalidArgument));
}

// The number of entries in a /proc/self directory.
int CountEntries(const char* directory) {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(directory)) {
    (void)entry;
    ++n;
  }
  return n;
}

TEST_F(LdapSourceIntegration, ReleasesSocketsAndThreads) {
  ldap::LdapConfig tls = Anonymous(*slapd_);
  tls.urls = {slapd_->ldaps_url()};
  tls.tls.ca_file = slapd_->ca_file();
  ldap::LdapConfig plain = Anonymous(*slapd_);
  ASSERT_TRUE(ReadOnce(tls).ok());  // libldap and GnuTLS set up their globals once
  const int fds = CountEntries("/proc/self/fd");
  const int threads = CountEntries("/proc/self/task");
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(ReadOnce(tls).ok());
    ASSERT_TRUE(ReadOnce(plain).ok());
    ldap::LdapConfig wrong = tls;
    wrong.tls.ca_file = slapd_->wrong_ca_file();
    ASSERT_FALSE(ReadOnce(wrong).ok());
  }
  EXPECT_EQ(CountEntries("/proc/self/fd"), fds);
  EXPECT_EQ(CountEntries("/proc/self/task"), threads);
}

TEST_F(LdapSourceIntegration, KeepsTheConnectionBetweenReadsUntilIdle) {
  Result<std::unique_ptr<TcpProxy>> proxy = TcpProxy::Start(UrlPort(slapd_->ldap_url()), {});
  ASSERT_TRUE(proxy.ok()) << proxy.status().ToString();
  ldap::LdapConfig config = Anonymous(*slapd_);
  config.urls = {(*proxy)->url()};
  config.idle_timeout = std::chrono::minutes(5);
  auto now = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  LdapSourceOptions options;
  options.now = [&now] { return now; };
  Result<std::unique_ptr<LdapSource>> source = LdapSource::Create(config, options);
  ASSERT_TRUE(source.ok());
  ASSERT_TRUE((*source)->Read().ok());
  now += std::chrono::minutes(4);
  ASSERT_TRUE((*source)->Read().ok());
  EXPECT_EQ((*proxy)->connections(), 1);
  now += std::chrono::minutes(5);
  ASSERT_TRUE((*source)->Read().ok());
  EXPECT_EQ((*proxy)->connections(), 2);
}

// Describe() sorted, for comparing two reads regardless of order.
std::vector<std::string> SortedDescription(const mapping::SourceSnapshot& s) {
  std::vector<std::string> lines = Describe(s);
  std::sort(lines.begin(), lines.end());
  return lines;
}

TEST_F(LdapSourceIntegration, GroupsReadOnASecondConnectionGiveTheSameSnapshot) {
  Result<std::unique_ptr<TcpProxy>> proxy = TcpProxy::Start(UrlPort(slapd_->ldap_url()), {});
  ASSERT_TRUE(proxy.ok()) << proxy.status().ToString();
  ldap::LdapConfig config = Anonymous(*slapd_);
  config.urls = {(*proxy)->url()};
  config.page_size = 1;
  config.users.disabled_filter = "(employeeType=disabled)";
  Result<std::unique_ptr<LdapSource>> sequential = LdapSource::Create(config);
  ASSERT_TRUE(sequential.ok());
  Result<mapping::SourceSnapshot> one = (*sequential)->Read();
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  LdapStats one_stats = (*sequential)->last_stats();
  EXPECT_EQ((*proxy)->connections(), 1);

  LdapSourceOptions options;
  options.parallel_groups_after = 0;
  Result<std::unique_ptr<LdapSource>> parallel = LdapSource::Create(config, options);
  ASSERT_TRUE(parallel.ok());
  for (int read = 0; read < 2; ++read) {
    Result<mapping::SourceSnapshot> two = (*parallel)->Read();
    ASSERT_TRUE(two.ok()) << two.status().ToString();
    EXPECT_EQ(SortedDescription(*two), SortedDescription(*one));
    const LdapStats& stats = (*parallel)->last_stats();
    EXPECT_EQ(stats.pages, one_stats.pages);
    EXPECT_TRUE(stats.parallel_groups);
    EXPECT_FALSE(one_stats.parallel_groups);
    EXPECT_EQ(stats.groups, 3u);
    EXPECT_EQ(stats.disabled_users, 1u);
    EXPECT_EQ(stats.unresolved_members, 1u);
  }
  // The first connection is kept, the groups' one is made for each read.
  EXPECT_EQ((*proxy)->connections(), 1 + 1 + 2);
  ASSERT_EQ(SortedDescription(*one).size(), 7u);
}

TEST_F(LdapSourceIntegration, AFailedGroupsSearchOnTheSecondConnectionFailsTheRead) {
  ldap::LdapConfig config = Anonymous(*slapd_);
  config.page_size = 1;
  config.groups.base = "ou=nowhere," + std::string(kSuffix);
  LdapSourceOptions options;
  options.parallel_groups_after = 0;
  Result<std::unique_ptr<LdapSource>> source = LdapSource::Create(config, options);
  ASSERT_TRUE(source.ok());
  for (int read = 0; read < 2; ++read) {
    Result<mapping::SourceSnapshot> s = (*source)->Read();
    ASSERT_TRUE(FailedWith(s, StatusCode::kNotFound, "groups search under 'ou=nowhere"));
  }
}

TEST_F(LdapSourceIntegration, AFailedUsersSearchStopsTheGroupsRead) {
  // The users fail on their second page, after the groups read started.
  ldap::LdapConfig config = Anonymous(*slapd_);
  config.page_size = 1;
  config.users.filter = "(|(uid=alice)(uid=jose)(objectClass=referral))";
  config.users.base = kSuffix;
  LdapSourceOptions options;
  options.parallel_groups_after = 0;
  Result<std::unique_ptr<LdapSource>> source = LdapSource::Create(config, options);
  ASSERT_TRUE(source.ok());
  Result<mapping::SourceSnapshot> s = (*source)->Read();
  ASSERT_TRUE(FailedWith(s, StatusCode::kFailedPrecondition, "users search"));
}

TEST_F(LdapSourceBulk, PagesThroughManyPages) {
  ldap::LdapConfig config = Bulk(slapd_->ldap_url());
  config.page_size = 100;
  LdapStats stats;
  Result<mapping::SourceSnapshot> s = ReadOnce(config, &stats);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->users.size(), static_cast<std::size_t>(kBulkUsers));
  EXPECT_GE(stats.pages, static_cast<std::size_t>(kBulkUsers / 100));
  std::vector<std::string> emails;
  for (const mapping::DirectoryUser& u : s->users) emails.push_back(u.email);
  std::sort(emails.begin(), emails.end());
  EXPECT_EQ(std::unique(emails.begin(), emails.end()), emails.end());
}

TEST_F(LdapSourceBulk, AConnectionCutMidReadFailsTheWholeRead) {
  // The bulk users take many pages; the proxy cuts the connection after
  // some of them.
  Result<std::unique_ptr<TcpProxy>> proxy =
      TcpProxy::Start(UrlPort(slapd_->ldap_url()), {ProxyFault::Kind::kCut, 40'000});
  ASSERT_TRUE(proxy.ok()) << proxy.status().ToString();
  ldap::LdapConfig config = Bulk((*proxy)->url());
  Result<mapping::SourceSnapshot> s = ReadOnce(config);
  EXPECT_TRUE(FailedWith(s, StatusCode::kUnavailable, "users search"));
  EXPECT_TRUE((*proxy)->faulted());
}

TEST_F(LdapSourceBulk, AStalledServerTimesOut) {
  Result<std::unique_ptr<TcpProxy>> proxy =
      TcpProxy::Start(UrlPort(slapd_->ldap_url()), {ProxyFault::Kind::kStall, 40'000});
  ASSERT_TRUE(proxy.ok()) << proxy.status().ToString();
  ldap::LdapConfig config = Bulk((*proxy)->url());
  config.timeout = std::chrono::milliseconds(500);
  Result<mapping::SourceSnapshot> s = ReadOnce(config);
  EXPECT_TRUE(FailedWith(s, StatusCode::kDeadlineExceeded));
  EXPECT_TRUE((*proxy)->faulted());
}

TEST_F(LdapSourceBulk, AServerStallingInsideATlsRecordTimesOut) {
  // Past the handshake, in the middle of the pages: the stall leaves a TLS
  // record half read, which libldap alone would wait for without end.
  Result<std::unique_ptr<TcpProxy>> proxy =
      TcpProxy::Start(UrlPort(slapd_->ldaps_url()), {ProxyFault::Kind::kStall, 40'000});
  ASSERT_TRUE(proxy.ok()) << proxy.status().ToString();
  ldap::LdapConfig config = Bulk("ldaps://127.0.0.1:" + std::to_string((*proxy)->port()));
  config.tls.ca_file = slapd_->ca_file();
  config.timeout = std::chrono::milliseconds(500);
  auto started = std::chrono::steady_clock::now();
  Result<mapping::SourceSnapshot> s = ReadOnce(config);
  EXPECT_TRUE(FailedWith(s, StatusCode::kDeadlineExceeded));
  EXPECT_TRUE((*proxy)->faulted());
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
}

// Tests that stop or restart the server get their own.
class LdapSourceServerLifecycle : public OwnSlapdTest {};

TEST_F(LdapSourceServerLifecycle, ReconnectsAfterTheServerRestarted) {
  std::unique_ptr<SlapdFixture> slapd = StartSeeded();
  ASSERT_NE(slapd, nullptr);
  Result<std::unique_ptr<LdapSource>> source = LdapSource::Create(Anonymous(*slapd));
  ASSERT_TRUE(source.ok());
  ASSERT_TRUE((*source)->Read().ok());
  EXPECT_FALSE((*source)->last_stats().reconnected);
  ASSERT_TRUE(slapd->Restart().ok());
  Result<mapping::SourceSnapshot> again = (*source)->Read();
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE((*source)->last_stats().reconnected);
  EXPECT_EQ(again->users.size(), 4u);
}

TEST_F(LdapSourceServerLifecycle, AStoppedServerFailsTheRead) {
  std::unique_ptr<SlapdFixture> slapd = StartSeeded();
  ASSERT_NE(slapd, nullptr);
  Result<std::unique_ptr<LdapSource>> source = LdapSource::Create(Anonymous(*slapd));
  ASSERT_TRUE(source.ok());
  ASSERT_TRUE((*source)->Read().ok());
  ASSERT_TRUE(slapd->Stop().ok());
  Result<mapping::SourceSnapshot> s = (*source)->Read();
  ASSERT_TRUE(FailedWith(s, StatusCode::kUnavailable));
}

class LdapSourceLimits : public OwnSlapdTest {};

TEST_F(LdapSourceLimits, ASizeLimitFailsTheRead) {
  SlapdOptions options;
  options.size_limit = 3;
  std::unique_ptr<SlapdFixture> slapd = StartSeeded(options);
  ASSERT_NE(slapd, nullptr);
  // Anonymous is not the rootdn, so the limit applies, to paged searches too.
  Result<mapping::SourceSnapshot> s = ReadOnce(Anonymous(*slapd));
  ASSERT_TRUE(FailedWith(s, StatusCode::kResourceExhausted, "Size limit exceeded"));
  // The rootdn is exempt: the same read as admin succeeds.
  ldap::LdapConfig admin = AsAdmin(*slapd, Anonymous(*slapd));
  admin.tls.start_tls = true;
  admin.tls.ca_file = slapd->ca_file();
  Result<mapping::SourceSnapshot> ok = ReadOnce(admin);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->users.size(), 4u);
}

}  // namespace
}  // namespace idsync::ldap
