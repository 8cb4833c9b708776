// The `ldap` source against a scripted LDAP server on loopback, for what
// slapd cannot do: Active Directory's binary objectGUID, ranged `member`
// values, and a server that misbehaves while paging. Every misbehaviour
// must fail the whole read.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "idsync/ldap/ldap_source.h"

#include "fake_ldap_server.h"
#include "read_checks.h"

namespace idsync::ldap {
namespace {

using ::idsync::ldap::testing::Describe;
using ::idsync::ldap::testing::FailedWith;
using ::idsync::ldap::testing::FakeAnswer;
using ::idsync::ldap::testing::FakeEntry;
using ::idsync::ldap::testing::FakeLdapServer;
using ::idsync::ldap::testing::FakeSearch;
using ::idsync::ldap::testing::PageOf;

constexpr char kStaff[] = "OU=Staff,DC=ad,DC=example";
constexpr char kGroups[] = "OU=Groups,DC=ad,DC=example";
constexpr char kBig[] = "CN=Big,OU=Groups,DC=ad,DC=example";
constexpr char kNested[] = "CN=Nested,OU=Groups,DC=ad,DC=example";

std::string UserDn(int i) { return "CN=User " + std::to_string(i) + "," + kStaff; }

// Wire bytes whose GUID text is "0000000i-1111-2222-3333-444455556666".
std::string Guid(int i) {
  std::string bytes = {static_cast<char>(i),
                       0,
                       0,
                       0,
                       0x11,
                       0x11,
                       0x22,
                       0x22,
                       0x33,
                       0x33,
                       0x44,
                       0x44,
                       0x55,
                       0x55,
                       0x66,
                       0x66};
  return bytes;
}

std::string GuidText(int i) {
  return "0000000" + std::to_string(i) + "-1111-2222-3333-444455556666";
}

// An answer of one entry (a base search).
FakeAnswer Answer(FakeEntry entry) {
  FakeAnswer answer;
  answer.entries.push_back(std::move(entry));
  return answer;
}

std::vector<FakeEntry> Users() {
  std::vector<FakeEntry> users;
  for (int i = 0; i < 5; ++i) {
    users.push_back({UserDn(i),
                     {{"mail", {"user" + std::to_string(i) + "@ad.example"}},
                      {"displayName", {"User " + std::to_string(i)}},
                      {"objectGUID", {Guid(i)}}}});
  }
  return users;
}

std::vector<FakeEntry> Groups() {
  return {
      {kBig,
       {{"cn", {"Big"}}, {"objectGUID", {Guid(8)}}, {"member;range=0-1", {UserDn(0), UserDn(1)}}}},
      {kNested, {{"cn", {"Nested"}}, {"objectGUID", {Guid(9)}}, {"member", {kBig}}}}};
}

// Active Directory as the tests expect it: ranged members of CN=Big in
// three steps, User 3 disabled.
FakeAnswer Directory(const FakeSearch& search) {
  if (search.base == kStaff) {
    if (search.attributes == std::vector<std::string>{"1.1"}) {
      return PageOf({{UserDn(3), {}}}, search);
    }
    return PageOf(Users(), search);
  }
  if (search.base == kGroups) return PageOf(Groups(), search);
  if (search.base == kBig && search.attributes == std::vector<std::string>{"member;range=2-*"}) {
    return Answer({kBig, {{"member;range=2-3", {UserDn(2), UserDn(3)}}}});
  }
  if (search.base == kBig && search.attributes == std::vector<std::string>{"member;range=4-*"}) {
    return Answer({kBig, {{"member;range=4-*", {UserDn(4)}}}});
  }
  FakeAnswer missing;
  missing.result_code = 32;
  return missing;
}

ldap::LdapConfig ActiveDirectory(const std::string& url) {
  ldap::LdapConfig source;
  source.name = "corp-ad";
  source.flavor = ldap::Flavor::kActiveDirectory;
  source.urls = {url};
  source.users.base = kStaff;
  source.users.filter = "(&(objectClass=user)(mail=*))";
  source.users.email = "mail";
  source.users.name = "displayName";
  source.users.disabled_filter = "(userAccountControl:1.2.840.113556.1.4.803:=2)";
  source.groups.base = kGroups;
  source.groups.filter = "(objectClass=group)";
  source.groups.name = "cn";
  source.groups.member = "member";
  source.page_size = 2;
  source.timeout = std::chrono::seconds(5);
  return source;
}

struct Outcome {
  Result<mapping::SourceSnapshot> snapshot = InternalError("not read");
  LdapStats stats;
  std::vector<FakeSearch> searches;
  std::chrono::steady_clock::duration took{};  // the read alone
};

// One read by a new source (its connections closed before it returns).
Outcome ReadOnce(const ldap::LdapConfig& config, const LdapSourceOptions& options = {}) {
  Outcome outcome;
  Result<std::unique_ptr<LdapSource>> source = LdapSource::Create(config, options);
  EXPECT_TRUE(source.ok()) << source.status().ToString();
  if (!source.ok()) return outcome;
  const auto start = std::chrono::steady_clock::now();
  outcome.snapshot = (*source)->Read();
  outcome.took = std::chrono::steady_clock::now() - start;
  outcome.stats = (*source)->last_stats();
  return outcome;
}

Outcome ReadFrom(FakeLdapServer::Handler handler, void (*edit)(ldap::LdapConfig*) = nullptr) {
  Result<std::unique_ptr<FakeLdapServer>> server = FakeLdapServer::Start(std::move(handler));
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  if (!server.ok()) return Outcome();
  ldap::LdapConfig config = ActiveDirectory((*server)->url());
  if (edit != nullptr) edit(&config);
  Outcome outcome = ReadOnce(config);
  outcome.searches = (*server)->searches();
  return outcome;
}

// One read with the groups on a second connection from the start.
Outcome ReadWithParallelGroups(const ldap::LdapConfig& config) {
  LdapSourceOptions options;
  options.parallel_groups_after = 0;
  return ReadOnce(config, options);
}

TEST(LdapSourceActiveDirectory, RendersObjectGuidsAsText) {
  Outcome o = ReadFrom(Directory);
  ASSERT_TRUE(o.snapshot.ok()) << o.snapshot.status().ToString();
  ASSERT_EQ(o.snapshot->users.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(o.snapshot->users[static_cast<std::size_t>(i)].id, GuidText(i));
  }
  EXPECT_EQ(o.snapshot->groups[0].id, GuidText(8));
}

TEST(LdapSourceActiveDirectory, FetchesRangedMembersToTheEnd) {
  Outcome o = ReadFrom(Directory);
  ASSERT_TRUE(o.snapshot.ok()) << o.snapshot.status().ToString();
  ASSERT_EQ(o.snapshot->groups.size(), 2u);
  EXPECT_EQ(o.snapshot->groups[0].name, "Big");
  EXPECT_EQ(o.snapshot->groups[0].member_users, (std::vector<std::uint32_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(o.snapshot->groups[1].member_groups, (std::vector<std::uint32_t>{0}));
  EXPECT_EQ(o.stats.ranged_fetches, 2u);
  std::vector<std::vector<std::string>> asked;
  for (const FakeSearch& s : o.searches) {
    if (s.base == kBig) {
      asked.push_back(s.attributes);
      EXPECT_EQ(s.scope, 0);  // base
    }
  }
  EXPECT_EQ(asked,
            (std::vector<std::vector<std::string>>{{"member;range=2-*"}, {"member;range=4-*"}}));
}

TEST(LdapSourceActiveDirectory, DisabledUsersComeFromAServerSideSearchForDnsOnly) {
  Outcome o = ReadFrom(Directory);
  ASSERT_TRUE(o.snapshot.ok()) << o.snapshot.status().ToString();
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(o.snapshot->users[i].disabled, i == 3) << i;
  }
  EXPECT_EQ(o.stats.disabled_users, 1u);
}

TEST(LdapSourceActiveDirectory, EverySearchOfTheBasesIsPagedCriticallyWithOnlyNeededAttributes) {
  Outcome o = ReadFrom(Directory);
  ASSERT_TRUE(o.snapshot.ok()) << o.snapshot.status().ToString();
  std::vector<std::string> user_cookies;
  for (const FakeSearch& s : o.searches) {
    if (s.base == kBig) continue;
    EXPECT_TRUE(s.paged) << s.base;
    EXPECT_TRUE(s.paged_critical) << s.base;
    EXPECT_EQ(s.page_size, 2) << s.base;
    EXPECT_EQ(s.scope, 2) << s.base;  // subtree
    if (s.base == kStaff && s.attributes.size() > 1) {
      EXPECT_EQ(s.attributes, (std::vector<std::string>{"mail", "displayName", "objectGUID"}));
      user_cookies.push_back(s.cookie);
    }
    if (s.base == kGroups) {
      EXPECT_EQ(s.attributes, (std::vector<std::string>{"cn", "member", "objectGUID"}));
    }
  }
  // Five users in pages of two: the cookie of each answer comes back.
  EXPECT_EQ(user_cookies, (std::vector<std::string>{"", "2", "4"}));
  EXPECT_EQ(o.stats.pages, 3u + 1u + 1u);  // users, disabled users, groups
}

// What a misbehaving server does, and the error the read must end with.
struct Fault {
  std::string label;
  FakeLdapServer::Handler handler;
  StatusCode code;
  std::string message_part;
};

TEST(LdapSourceActiveDirectory, RangedMembersReadOnTheSecondConnectionGiveTheSameSnapshot) {
  Result<std::unique_ptr<FakeLdapServer>> server = FakeLdapServer::Start(Directory, true);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  ldap::LdapConfig config = ActiveDirectory((*server)->url());
  Result<std::unique_ptr<LdapSource>> sequential = LdapSource::Create(config);
  ASSERT_TRUE(sequential.ok());
  Result<mapping::SourceSnapshot> one = (*sequential)->Read();
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  const std::size_t searches = (*server)->searches().size();

  LdapSourceOptions options;
  options.parallel_groups_after = 0;
  Result<std::unique_ptr<LdapSource>> parallel = LdapSource::Create(config, options);
  ASSERT_TRUE(parallel.ok());
  Result<mapping::SourceSnapshot> two = (*parallel)->Read();
  ASSERT_TRUE(two.ok()) << two.status().ToString();
  EXPECT_EQ(Describe(*two), Describe(*one));
  EXPECT_EQ((*parallel)->last_stats().ranged_fetches, 2u);
  EXPECT_EQ((*parallel)->last_stats().pages, (*sequential)->last_stats().pages);
  EXPECT_EQ((*server)->searches().size(), 2 * searches);
  ASSERT_EQ(two->groups.size(), 2u);
  EXPECT_EQ(two->groups[0].member_users.size(), 5u);
}

TEST(LdapSourceActiveDirectory, AGroupsFailureStopsAUsersSearchThatWaits) {
  // The users' second page takes 3 s; the groups fail at once on their own
  // connection. The read fails with the groups' error without waiting.
  Result<std::unique_ptr<FakeLdapServer>> server = FakeLdapServer::Start(
      [](const FakeSearch& s) {
        FakeAnswer a = Directory(s);
        if (s.base == kStaff && s.cookie == "2") {
          std::this_thread::sleep_for(std::chrono::seconds(3));
        }
        if (s.base == kGroups) a.result_code = 50;
        return a;
      },
      true);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  ldap::LdapConfig config = ActiveDirectory((*server)->url());
  config.timeout = std::chrono::seconds(20);
  Outcome o = ReadWithParallelGroups(config);
  EXPECT_TRUE(FailedWith(o.snapshot, StatusCode::kPermissionDenied, "groups search"));
  EXPECT_LT(o.took, std::chrono::milliseconds(2500));
}

TEST(LdapSourceActiveDirectory, AUsersFailureDoesNotWaitForTheGroupsConnection) {
  // This server serves one connection at a time: the groups' connection,
  // opened after the first user, gets no answer while the users' is open.
  // The users fail on their second page; the read must fail at once with
  // their error, not wait for the other connection's bind to time out.
  Result<std::unique_ptr<FakeLdapServer>> server = FakeLdapServer::Start([](const FakeSearch& s) {
    FakeAnswer a = Directory(s);
    if (s.base == kStaff && s.cookie == "2") {
      a.result_code = 11;
      a.page_control = false;
    }
    return a;
  });
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  ldap::LdapConfig config = ActiveDirectory((*server)->url());
  config.timeout = std::chrono::seconds(20);
  Outcome o = ReadWithParallelGroups(config);
  EXPECT_TRUE(FailedWith(o.snapshot, StatusCode::kResourceExhausted, "users search"));
  EXPECT_LT(o.took, std::chrono::seconds(5));
}

TEST(LdapSourceActiveDirectory, ParallelGroupsFallBackWhenNoSecondConnectionOpens) {
  // The groups' connection is refused: they are read after the users, on
  // the first connection, and the snapshot is whole.
  Result<std::unique_ptr<FakeLdapServer>> server = FakeLdapServer::Start(Directory);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  ldap::LdapConfig config = ActiveDirectory((*server)->url());
  // Connecting to this server waits for the first connection to close;
  // a short connect_timeout does not help (the TCP connect succeeds), the
  // bind's timeout ends it.
  config.timeout = std::chrono::milliseconds(300);
  Outcome o = ReadWithParallelGroups(config);
  ASSERT_TRUE(o.snapshot.ok()) << o.snapshot.status().ToString();
  EXPECT_EQ(o.snapshot->users.size(), 5u);
  ASSERT_EQ(o.snapshot->groups.size(), 2u);
  EXPECT_EQ(o.snapshot->groups[0].member_users.size(), 5u);
  EXPECT_EQ(o.stats.ranged_fetches, 2u);
}

TEST(LdapSourceActiveDirectory, EveryServerFaultFailsTheWholeRead) {
  const std::vector<Fault> faults = {
      {"no page control",
       [](const FakeSearch& s) {
         FakeAnswer a = Directory(s);
         if (s.base == kStaff) a.page_control = false;
         return a;
       },
       StatusCode::kInternal, "without the paged-results control"},
      {"repeated cookie, no entries",
       [](const FakeSearch& s) {
         if (s.base != kGroups) return Directory(s);
         FakeAnswer a;
         if (s.cookie.empty()) a.entries = Groups();
         a.next_cookie = "again";
         return a;
       },
       StatusCode::kInternal, "repeated its paging cookie"},
      {"size limit on the second page",
       [](const FakeSearch& s) {
         FakeAnswer a = Directory(s);
         if (s.base == kStaff && s.cookie == "2") {
           a.result_code = 4;
           a.page_control = false;
         }
         return a;
       },
       StatusCode::kResourceExhausted, "Size limit exceeded"},
      {"time limit",
       [](const FakeSearch& s) {
         FakeAnswer a = Directory(s);
         if (s.base == kGroups) a.result_code = 3;
         return a;
       },
       StatusCode::kDeadlineExceeded, "groups search"},
      {"busy on the last page",
       [](const FakeSearch& s) {
         FakeAnswer a = Directory(s);
         if (s.base == kStaff && s.cookie == "4") a.result_code = 51;
         return a;
       },
       StatusCode::kUnavailable, "users search"},
      {"referral result",
       [](const FakeSearch& s) {
         FakeAnswer a = Directory(s);
         if (s.base == kGroups) a.result_code = 10;
         return a;
       },
       StatusCode::kFailedPrecondition, "referral"},
      {"critical paging not supported",
       [](const FakeSearch& s) {
         FakeAnswer a = Directory(s);
         if (s.base == kStaff) {
           a = FakeAnswer{};
           a.result_code = 12;
         }
         return a;
       },
       StatusCode::kFailedPrecondition, "users search"},
      {"range that skips values",
       [](const FakeSearch& s) {
         if (s.base == kBig) return Answer({kBig, {{"member;range=3-*", {UserDn(4)}}}});
         return Directory(s);
       },
       StatusCode::kInternal, "member;range=3-*"},
      {"range answered without members",
       [](const FakeSearch& s) {
         if (s.base == kBig) return Answer({kBig, {{"cn", {"Big"}}}});
         return Directory(s);
       },
       StatusCode::kInternal, "no further member values"},
      {"malformed range",
       [](const FakeSearch& s) {
         FakeAnswer a = Directory(s);
         if (s.base == kGroups && s.cookie.empty()) {
           a.entries[0].attributes[2].first = "member;range=0-";
         }
         return a;
       },
       StatusCode::kInternal, "malformed ranged attribute"},
      {"objectGUID of 15 bytes",
       [](const FakeSearch& s) {
         FakeAnswer a = Directory(s);
         if (s.base == kStaff && s.cookie.empty() && !a.entries.empty() &&
             a.entries[0].attributes.size() == 3) {
           a.entries[0].attributes[2].second[0].pop_back();
         }
         return a;
       },
       StatusCode::kInternal, "15 bytes"},
      {"entry returned twice",
       [](const FakeSearch& s) {
         FakeAnswer a = Directory(s);
         if (s.base == kStaff && s.cookie == "2" && s.attributes.size() > 1) {
           a.entries[0] = Users()[0];
         }
         return a;
       },
       StatusCode::kInternal, "twice"},
  };
  for (const Fault& fault : faults) {
    Outcome o = ReadFrom(fault.handler);
    EXPECT_TRUE(FailedWith(o.snapshot, fault.code, fault.message_part)) << fault.label;
    EXPECT_EQ(o.snapshot.status().message().rfind("source 'corp-ad': ", 0), 0u) << fault.label;
  }
}

}  // namespace
}  // namespace idsync::ldap
