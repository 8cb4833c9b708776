// Change following of the `ldap` source against a real slapd (skipped when
// slapd is not installed): RFC 4533 refreshAndPersist with syncprov (add,
// modify of e-mail, name and the disabled filter's attribute, delete,
// rename, membership changes, nested ones), the cookie surviving a restart,
// refreshOnly polling, modifyTimestamp polling against a server without
// syncprov, and a dropped connection failing the feed instead of yielding a
// partial snapshot.
#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "idsync/ldap/ldap_source.h"

#include "feeds.h"
#include "require_servers.h"
#include "slapd_fixture.h"
#include "tcp_proxy.h"

namespace idsync::ldap {
namespace {

using ::idsync::ldap::testing::ProxyFault;
using ::idsync::ldap::testing::TcpProxy;
using ::idsync::ldap::testing::UrlPort;
using ::idsync::testing::SlapdFixture;
using ::idsync::testing::SlapdOptions;
using Clock = std::chrono::steady_clock;

constexpr char kPeople[] = "ou=people,dc=corp,dc=example";
constexpr char kGroups[] = "ou=groups,dc=corp,dc=example";

// alice and bob in engineering; carol in platform, which is inside
// engineering; dave in nothing.
constexpr char kSeed[] = R"(dn: uid=alice,ou=people,dc=corp,dc=example
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: A
mail: Alice@Corp.Example

dn: uid=bob,ou=people,dc=corp,dc=example
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: B
mail: bob@corp.example

dn: uid=carol,ou=people,dc=corp,dc=example
objectClass: inetOrgPerson
uid: carol
cn: Carol
sn: C
mail: carol@corp.example

dn: uid=dave,ou=people,dc=corp,dc=example
objectClass: inetOrgPerson
uid: dave
cn: Dave
sn: D
mail: dave@corp.example

dn: cn=platform,ou=groups,dc=corp,dc=example
objectClass: groupOfNames
cn: platform
member: uid=carol,ou=people,dc=corp,dc=example

dn: cn=engineering,ou=groups,dc=corp,dc=example
objectClass: groupOfNames
cn: engineering
member: uid=alice,ou=people,dc=corp,dc=example
member: uid=bob,ou=people,dc=corp,dc=example
member: cn=platform,ou=groups,dc=corp,dc=example
)";

// A FeedStateStore in memory, as the store keeps it.
class MemoryState : public mapping::FeedStateStore {
 public:
  Result<std::optional<std::string>> Load(const std::string& key) override {
    auto it = values_.find(key);
    if (it == values_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  Status Save(const std::string& key, const std::string& value) override {
    values_[key] = value;
    ++saves_;
    return Status::Ok();
  }
  int saves() const { return saves_; }

 private:
  std::map<std::string, std::string> values_;
  int saves_ = 0;
};

ldap::LdapConfig Watched(const std::string& url) {
  ldap::LdapConfig source;
  source.name = "corp";
  source.urls = {url};
  source.users.base = kPeople;
  source.users.filter = "(objectClass=inetOrgPerson)";
  source.users.disabled_filter = "(employeeType=disabled)";
  source.groups.base = kGroups;
  source.groups.filter = "(objectClass=groupOfNames)";
  source.page_size = 100;
  source.connect_timeout = std::chrono::seconds(5);
  source.timeout = std::chrono::seconds(5);
  source.watch = true;
  source.watch_interval = std::chrono::milliseconds(200);
  return source;
}

// What a feed delivered while waiting for a condition.
struct Seen {
  std::set<std::string> emails;
  std::shared_ptr<const mapping::SourceSnapshot> snapshot;  // the last one
  int changes = 0;
  bool full = false;
};

const mapping::DirectoryUser* FindUser(const mapping::SourceSnapshot& s, const std::string& uid) {
  for (const mapping::DirectoryUser& u : s.users) {
    if (u.dn.rfind("uid=" + uid + ",", 0) == 0) return &u;
  }
  return nullptr;
}

// The e-mails of everyone in `group`, nested members included.
std::set<std::string> GroupEmails(const mapping::SourceSnapshot& s, const std::string& name) {
  std::set<std::string> out;
  std::vector<std::uint32_t> pending;
  std::set<std::uint32_t> seen;
  for (std::uint32_t g = 0; g < s.groups.size(); ++g) {
    if (s.groups[g].name == name) pending.push_back(g);
  }
  while (!pending.empty()) {
    std::uint32_t g = pending.back();
    pending.pop_back();
    if (!seen.insert(g).second) continue;
    for (std::uint32_t u : s.groups[g].member_users) out.insert(s.users[u].email);
    for (std::uint32_t sub : s.groups[g].member_groups) pending.push_back(sub);
  }
  return out;
}

// Calls Next() until `done` holds for what was seen, or 10 s pass.
template <typename Pred>
Result<Seen> WaitFor(mapping::ChangeFeed& feed, Pred done) {
  Seen seen;
  const Clock::time_point deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    Result<std::optional<mapping::SourceChange>> next = feed.Next(std::chrono::milliseconds(200));
    if (!next.ok()) return next.status();
    if (next->has_value()) {
      mapping::SourceChange& change = **next;
      ++seen.changes;
      seen.full = seen.full || change.full;
      seen.emails.insert(change.emails.begin(), change.emails.end());
      seen.snapshot = std::move(change.snapshot);
    }
    if (seen.snapshot && done(seen)) return seen;
  }
  return DeadlineExceededError("the feed did not deliver the change in time");
}

class LdapFeedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    IDSYNC_REQUIRE_SERVER(SlapdFixture::Available(), SlapdFixture::WhyUnavailable());
    Start(SlapdOptions{});
  }

  void Start(const SlapdOptions& options) {
    Result<std::unique_ptr<SlapdFixture>> started = SlapdFixture::Start(options);
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    slapd_ = std::move(started).value();
    ASSERT_TRUE(slapd_->Add(kSeed).ok());
  }

  // Follows `config` and consumes the first (full) refresh.
  std::unique_ptr<mapping::ChangeFeed> FollowAndRefresh(const ldap::LdapConfig& config) {
    Result<std::unique_ptr<LdapSource>> source = LdapSource::Create(config);
    EXPECT_TRUE(source.ok()) << source.status().ToString();
    if (!source.ok()) return nullptr;
    source_ = std::move(source).value();
    Result<std::unique_ptr<mapping::ChangeFeed>> feed = source_->Follow(state_);
    EXPECT_TRUE(feed.ok()) << feed.status().ToString();
    if (!feed.ok()) return nullptr;
    Result<std::optional<mapping::SourceChange>> first = (*feed)->Next(std::chrono::seconds(5));
    EXPECT_TRUE(first.ok()) << first.status().ToString();
    return std::move(feed).value();
  }

  Status Modify(const std::string& ldif) { return slapd_->Modify(ldif); }

  std::unique_ptr<SlapdFixture> slapd_;
  std::unique_ptr<LdapSource> source_;
  MemoryState state_;
};

// The daemon drops the source once the feed has started: the feed must not
// depend on it (it once kept a pointer into the source's configuration).
TEST_F(LdapFeedTest, FeedOutlivesTheSourceThatStartedIt) {
  std::unique_ptr<mapping::ChangeFeed> feed;
  {
    ldap::LdapConfig config = Watched(slapd_->ldap_url());
    Result<std::unique_ptr<LdapSource>> source = LdapSource::Create(config);
    ASSERT_TRUE(source.ok());
    Result<std::unique_ptr<mapping::ChangeFeed>> started = (*source)->Follow(state_);
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    feed = std::move(started).value();
  }
  // Reuse the freed memory, as the daemon's later allocations would (and
  // ASan reports any read of it).
  std::vector<std::string> reuse(64, std::string(512, 'z'));
  Result<std::optional<mapping::SourceChange>> first = feed->Next(std::chrono::seconds(5));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE(first->has_value());
  EXPECT_EQ((*first)->snapshot->source, "corp");
  EXPECT_EQ((*first)->snapshot->users.size(), 4u);
}

TEST_F(LdapFeedTest, SyncReplStartsWithAFullRefreshOfEverything) {
  Result<std::unique_ptr<LdapSource>> source = LdapSource::Create(Watched(slapd_->ldap_url()));
  ASSERT_TRUE(source.ok());
  Result<std::unique_ptr<mapping::ChangeFeed>> feed = (*source)->Follow(state_);
  ASSERT_TRUE(feed.ok()) << feed.status().ToString();
  EXPECT_EQ((*feed)->method(), "syncrepl");
  Result<std::optional<mapping::SourceChange>> first = (*feed)->Next(std::chrono::seconds(5));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE(first->has_value());
  const mapping::SourceChange& change = **first;
  EXPECT_TRUE(change.full);
  EXPECT_EQ(change.snapshot->users.size(), 4u);
  EXPECT_EQ(change.snapshot->groups.size(), 2u);
  EXPECT_EQ(
      GroupEmails(*change.snapshot, "engineering"),
      (std::set<std::string>{"Alice@Corp.Example", "bob@corp.example", "carol@corp.example"}));
  // The same snapshot a full read gives.
  Result<mapping::SourceSnapshot> read = (*source)->Read();
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->users.size(), change.snapshot->users.size());
  for (const mapping::DirectoryUser& user : read->users) {
    const mapping::DirectoryUser* fed =
        FindUser(*change.snapshot, user.dn.substr(4, user.dn.find(',') - 4));
    ASSERT_NE(fed, nullptr) << user.dn;
    EXPECT_EQ(fed->id, user.id);
    EXPECT_EQ(fed->email, user.email);
  }
  // Saved in the next call, once the server is idle, not before delivery.
  EXPECT_EQ(state_.saves(), 0);
  Result<std::optional<mapping::SourceChange>> idle = (*feed)->Next(std::chrono::milliseconds(10));
  ASSERT_TRUE(idle.ok()) << idle.status().ToString();
  EXPECT_FALSE(idle->has_value());
  EXPECT_GE(state_.saves(), 1);
}

TEST_F(LdapFeedTest, SyncReplDeliversAnAddedUser) {
  auto feed = FollowAndRefresh(Watched(slapd_->ldap_url()));
  ASSERT_NE(feed, nullptr);
  ASSERT_TRUE(slapd_
                  ->Add("dn: uid=erin,ou=people,dc=corp,dc=example\nobjectClass: inetOrgPerson\n"
                        "uid: erin\ncn: Erin\nsn: E\nmail: Erin@Corp.Example\n")
                  .ok());
  Result<Seen> seen =
      WaitFor(*feed, [](const Seen& s) { return s.emails.count("erin@corp.example"); });
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  EXPECT_FALSE(seen->full);
  const mapping::DirectoryUser* erin = FindUser(*seen->snapshot, "erin");
  ASSERT_NE(erin, nullptr);
  EXPECT_EQ(erin->email, "Erin@Corp.Example");
  EXPECT_EQ(seen->snapshot->users.size(), 5u);
  EXPECT_EQ(seen->emails, std::set<std::string>{"erin@corp.example"});
}

TEST_F(LdapFeedTest, SyncReplDeliversAnEmailChangeWithBothAddresses) {
  auto feed = FollowAndRefresh(Watched(slapd_->ldap_url()));
  ASSERT_NE(feed, nullptr);
  ASSERT_TRUE(Modify("dn: uid=bob,ou=people,dc=corp,dc=example\nchangetype: modify\n"
                     "replace: mail\nmail: robert@corp.example\n")
                  .ok());
  Result<Seen> seen =
      WaitFor(*feed, [](const Seen& s) { return s.emails.count("robert@corp.example"); });
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  EXPECT_EQ(seen->emails, (std::set<std::string>{"bob@corp.example", "robert@corp.example"}));
  EXPECT_EQ(FindUser(*seen->snapshot, "bob")->email, "robert@corp.example");
}

TEST_F(LdapFeedTest, SyncReplDeliversANameChange) {
  auto feed = FollowAndRefresh(Watched(slapd_->ldap_url()));
  ASSERT_NE(feed, nullptr);
  ASSERT_TRUE(Modify("dn: uid=dave,ou=people,dc=corp,dc=example\nchangetype: modify\n"
                     "replace: cn\ncn: David\n")
                  .ok());
  Result<Seen> seen =
      WaitFor(*feed, [](const Seen& s) { return FindUser(*s.snapshot, "dave")->name == "David"; });
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  EXPECT_EQ(seen->emails, std::set<std::string>{"dave@corp.example"});
}

TEST_F(LdapFeedTest, SyncReplAppliesTheDisabledFilterToAChangedUser) {
  auto feed = FollowAndRefresh(Watched(slapd_->ldap_url()));
  ASSERT_NE(feed, nullptr);
  ASSERT_TRUE(Modify("dn: uid=alice,ou=people,dc=corp,dc=example\nchangetype: modify\n"
                     "add: employeeType\nemployeeType: disabled\n")
                  .ok());
  Result<Seen> seen =
      WaitFor(*feed, [](const Seen& s) { return FindUser(*s.snapshot, "alice")->disabled; });
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  EXPECT_EQ(seen->emails, std::set<std::string>{"alice@corp.example"});
  EXPECT_FALSE(FindUser(*seen->snapshot, "bob")->disabled);
  // And back.
  ASSERT_TRUE(Modify("dn: uid=alice,ou=people,dc=corp,dc=example\nchangetype: modify\n"
                     "delete: employeeType\n")
                  .ok());
  seen = WaitFor(*feed, [](const Seen& s) { return !FindUser(*s.snapshot, "alice")->disabled; });
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
}

TEST_F(LdapFeedTest, SyncReplDeliversADeletedUser) {
  auto feed = FollowAndRefresh(Watched(slapd_->ldap_url()));
  ASSERT_NE(feed, nullptr);
  ASSERT_TRUE(Modify("dn: uid=dave,ou=people,dc=corp,dc=example\nchangetype: delete\n").ok());
  Result<Seen> seen =
      WaitFor(*feed, [](const Seen& s) { return FindUser(*s.snapshot, "dave") == nullptr; });
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  EXPECT_EQ(seen->emails, std::set<std::string>{"dave@corp.example"});
  EXPECT_EQ(seen->snapshot->users.size(), 3u);
}

TEST_F(LdapFeedTest, SyncReplDeliversARenameKeepingTheIdAndMembership) {
  auto feed = FollowAndRefresh(Watched(slapd_->ldap_url()));
  ASSERT_NE(feed, nullptr);
  std::string id_before;
  {
    Result<mapping::SourceSnapshot> read = source_->Read();
    ASSERT_TRUE(read.ok());
    id_before = FindUser(*read, "bob")->id;
  }
  ASSERT_TRUE(Modify("dn: uid=bob,ou=people,dc=corp,dc=example\nchangetype: modrdn\n"
                     "newrdn: uid=bobby\ndeleteoldrdn: 1\n")
                  .ok());
  // memberof's referential integrity rewrites engineering's member value.
  Result<Seen> seen = WaitFor(*feed, [](const Seen& s) {
    return FindUser(*s.snapshot, "bobby") != nullptr &&
           GroupEmails(*s.snapshot, "engineering").count("bob@corp.example") > 0;
  });
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  EXPECT_EQ(FindUser(*seen->snapshot, "bob"), nullptr);
  EXPECT_EQ(FindUser(*seen->snapshot, "bobby")->id, id_before);
  EXPECT_TRUE(seen->emails.count("bob@corp.example"));
}

TEST_F(LdapFeedTest, SyncReplDeliversAMembershipChangeWithTheMembersEmails) {
  auto feed = FollowAndRefresh(Watched(slapd_->ldap_url()));
  ASSERT_NE(feed, nullptr);
  ASSERT_TRUE(Modify("dn: cn=platform,ou=groups,dc=corp,dc=example\nchangetype: modify\n"
                     "add: member\nmember: uid=dave,ou=people,dc=corp,dc=example\n")
                  .ok());
  Result<Seen> seen = WaitFor(*feed, [](const Seen& s) {
    return GroupEmails(*s.snapshot, "engineering").count("dave@corp.example") > 0;
  });
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  // dave joined platform (and engineering above it); carol, already in
  // both, is not touched.
  EXPECT_EQ(seen->emails, std::set<std::string>{"dave@corp.example"});
}

TEST_F(LdapFeedTest, SyncReplNestedGroupChangeTouchesTheNestedMembersWhoLeft) {
  auto feed = FollowAndRefresh(Watched(slapd_->ldap_url()));
  ASSERT_NE(feed, nullptr);
  // platform leaves engineering: carol (nested) loses engineering.
  ASSERT_TRUE(Modify("dn: cn=engineering,ou=groups,dc=corp,dc=example\nchangetype: modify\n"
                     "delete: member\nmember: cn=platform,ou=groups,dc=corp,dc=example\n")
                  .ok());
  Result<Seen> seen = WaitFor(*feed, [](const Seen& s) {
    return GroupEmails(*s.snapshot, "engineering").count("carol@corp.example") == 0;
  });
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  // alice and bob stay in engineering.
  EXPECT_EQ(seen->emails, std::set<std::string>{"carol@corp.example"});
}

TEST_F(LdapFeedTest, TheCookieSurvivesARestartWithoutAFullRefresh) {
  {
    auto feed = FollowAndRefresh(Watched(slapd_->ldap_url()));
    ASSERT_NE(feed, nullptr);
  }
  source_.reset();
  // While idsync is down.
  ASSERT_TRUE(Modify("dn: uid=carol,ou=people,dc=corp,dc=example\nchangetype: modify\n"
                     "replace: mail\nmail: caroline@corp.example\n")
                  .ok());
  ASSERT_TRUE(Modify("dn: uid=dave,ou=people,dc=corp,dc=example\nchangetype: delete\n").ok());

  Result<std::unique_ptr<LdapSource>> source = LdapSource::Create(Watched(slapd_->ldap_url()));
  ASSERT_TRUE(source.ok());
  Result<std::unique_ptr<mapping::ChangeFeed>> feed = (*source)->Follow(state_);
  ASSERT_TRUE(feed.ok());
  Result<Seen> seen = WaitFor(**feed, [](const Seen& s) {
    return s.emails.count("caroline@corp.example") && s.emails.count("dave@corp.example");
  });
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  EXPECT_FALSE(seen->full);
  EXPECT_EQ(seen->emails, (std::set<std::string>{"carol@corp.example", "caroline@corp.example",
                                                 "dave@corp.example"}));
  EXPECT_EQ(seen->snapshot->users.size(), 3u);
}

TEST_F(LdapFeedTest, RefreshOnlyPollingDeliversChanges) {
  MemoryState state;
  ldap::LdapConfig config = Watched(slapd_->ldap_url());
  internal::FeedContext context;
  context.source = std::make_shared<const ldap::LdapConfig>(config);
  context.state = &state;
  context.state_key = "test";
  Result<std::unique_ptr<mapping::ChangeFeed>> feed =
      internal::NewSyncReplFeed(std::move(context), /*poll_only=*/true);
  ASSERT_TRUE(feed.ok());
  EXPECT_EQ((*feed)->method(), "syncrepl-poll");
  Result<std::optional<mapping::SourceChange>> first = (*feed)->Next(std::chrono::seconds(5));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE(first->has_value());
  EXPECT_TRUE((*first)->full);
  ASSERT_TRUE(Modify("dn: uid=alice,ou=people,dc=corp,dc=example\nchangetype: modify\n"
                     "replace: mail\nmail: al@corp.example\n")
                  .ok());
  ASSERT_TRUE(Modify("dn: uid=dave,ou=people,dc=corp,dc=example\nchangetype: delete\n").ok());
  Result<Seen> seen = WaitFor(**feed, [](const Seen& s) {
    return s.emails.count("al@corp.example") && s.emails.count("dave@corp.example");
  });
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  EXPECT_EQ(seen->snapshot->users.size(), 3u);
  EXPECT_EQ(seen->emails,
            (std::set<std::string>{"al@corp.example", "alice@corp.example", "dave@corp.example"}));
}

TEST_F(LdapFeedTest, ADroppedPersistConnectionFailsTheFeedWithoutASnapshot) {
  Result<std::unique_ptr<TcpProxy>> proxy =
      TcpProxy::Start(UrlPort(slapd_->ldap_url()), ProxyFault{});
  ASSERT_TRUE(proxy.ok());
  auto feed = FollowAndRefresh(Watched((*proxy)->url()));
  ASSERT_NE(feed, nullptr);
  // The refresh is saved in the next call, while the server is idle.
  ASSERT_TRUE(feed->Next(std::chrono::milliseconds(10)).ok());
  const int saves = state_.saves();
  ASSERT_GE(saves, 1);
  (*proxy)->CutNow();
  ASSERT_TRUE(Modify("dn: uid=dave,ou=people,dc=corp,dc=example\nchangetype: delete\n").ok());
  Result<Seen> seen = WaitFor(*feed, [](const Seen&) { return true; });
  ASSERT_FALSE(seen.ok());
  EXPECT_EQ(seen.status().code(), StatusCode::kUnavailable) << seen.status().ToString();
  // Dead from then on, and the saved state is the last good one.
  EXPECT_FALSE(feed->Next(std::chrono::milliseconds(10)).ok());
  EXPECT_EQ(state_.saves(), saves);

  // A new feed resumes from that state and sees the delete.
  Result<std::unique_ptr<mapping::ChangeFeed>> again = source_->Follow(state_);
  ASSERT_TRUE(again.ok());
  Result<Seen> resumed =
      WaitFor(**again, [](const Seen& s) { return FindUser(*s.snapshot, "dave") == nullptr; });
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  EXPECT_FALSE(resumed->full);
  EXPECT_EQ(resumed->snapshot->users.size(), 3u);
}

class LdapModifyTimestampFeedTest : public LdapFeedTest {
 protected:
  void SetUp() override {
    IDSYNC_REQUIRE_SERVER(SlapdFixture::Available(), SlapdFixture::WhyUnavailable());
    SlapdOptions options;
    options.syncprov = false;
    Start(options);
  }
};

TEST_F(LdapModifyTimestampFeedTest, PollsAddsModifiesRenamesAndDeletes) {
  Result<std::unique_ptr<LdapSource>> source = LdapSource::Create(Watched(slapd_->ldap_url()));
  ASSERT_TRUE(source.ok());
  Result<std::unique_ptr<mapping::ChangeFeed>> feed = (*source)->Follow(state_);
  ASSERT_TRUE(feed.ok()) << feed.status().ToString();
  EXPECT_EQ((*feed)->method(), "modifytimestamp");
  Result<std::optional<mapping::SourceChange>> first = (*feed)->Next(std::chrono::seconds(5));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE(first->has_value());
  EXPECT_TRUE((*first)->full);
  EXPECT_EQ((*first)->snapshot->users.size(), 4u);

  ASSERT_TRUE(slapd_
                  ->Add("dn: uid=erin,ou=people,dc=corp,dc=example\nobjectClass: inetOrgPerson\n"
                        "uid: erin\ncn: Erin\nsn: E\nmail: erin@corp.example\n")
                  .ok());
  ASSERT_TRUE(Modify("dn: uid=dave,ou=people,dc=corp,dc=example\nchangetype: delete\n").ok());
  ASSERT_TRUE(Modify("dn: cn=platform,ou=groups,dc=corp,dc=example\nchangetype: modify\n"
                     "add: member\nmember: uid=erin,ou=people,dc=corp,dc=example\n")
                  .ok());
  Result<Seen> seen = WaitFor(**feed, [](const Seen& s) {
    return FindUser(*s.snapshot, "dave") == nullptr &&
           GroupEmails(*s.snapshot, "engineering").count("erin@corp.example") > 0;
  });
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  EXPECT_FALSE(seen->full);
  EXPECT_TRUE(seen->emails.count("erin@corp.example"));
  EXPECT_TRUE(seen->emails.count("dave@corp.example"));
  EXPECT_FALSE(seen->emails.count("carol@corp.example"));  // stayed in platform

  ASSERT_TRUE(Modify("dn: uid=alice,ou=people,dc=corp,dc=example\nchangetype: modrdn\n"
                     "newrdn: uid=alicia\ndeleteoldrdn: 1\n")
                  .ok());
  seen = WaitFor(**feed, [](const Seen& s) { return FindUser(*s.snapshot, "alicia") != nullptr; });
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  EXPECT_EQ(FindUser(*seen->snapshot, "alice"), nullptr);
  EXPECT_TRUE(seen->emails.count("alice@corp.example"));
}

TEST_F(LdapModifyTimestampFeedTest, SavesAPollOnlyOnceTheConsumerHasIt) {
  MemoryState state;
  Result<std::unique_ptr<LdapSource>> source = LdapSource::Create(Watched(slapd_->ldap_url()));
  ASSERT_TRUE(source.ok());
  Result<std::unique_ptr<mapping::ChangeFeed>> feed = (*source)->Follow(state);
  ASSERT_TRUE(feed.ok()) << feed.status().ToString();
  EXPECT_EQ((*feed)->method(), "modifytimestamp");
  Result<std::optional<mapping::SourceChange>> first = (*feed)->Next(std::chrono::seconds(5));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE(first->has_value());
  // Delivered, not saved: a crash now must not skip the refresh.
  EXPECT_EQ(state.saves(), 0);
  // The next call means the consumer has it.
  Result<std::optional<mapping::SourceChange>> idle = (*feed)->Next(std::chrono::milliseconds(1));
  ASSERT_TRUE(idle.ok()) << idle.status().ToString();
  EXPECT_GT(state.saves(), 0);

  // A change is saved the same way, or when the feed ends.
  const int saves = state.saves();
  ASSERT_TRUE(Modify("dn: uid=bob,ou=people,dc=corp,dc=example\nchangetype: modify\n"
                     "replace: mail\nmail: robert@corp.example\n")
                  .ok());
  Result<Seen> seen =
      WaitFor(**feed, [](const Seen& s) { return s.emails.count("robert@corp.example"); });
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  EXPECT_EQ(state.saves(), saves);
  feed->reset();
  EXPECT_GT(state.saves(), saves);
}

TEST_F(LdapModifyTimestampFeedTest, ResumesFromTheSavedHighWaterMark) {
  {
    auto feed = FollowAndRefresh(Watched(slapd_->ldap_url()));
    ASSERT_NE(feed, nullptr);
  }
  ASSERT_TRUE(Modify("dn: uid=bob,ou=people,dc=corp,dc=example\nchangetype: modify\n"
                     "replace: mail\nmail: robert@corp.example\n")
                  .ok());
  Result<std::unique_ptr<mapping::ChangeFeed>> feed = source_->Follow(state_);
  ASSERT_TRUE(feed.ok());
  Result<Seen> seen =
      WaitFor(**feed, [](const Seen& s) { return s.emails.count("robert@corp.example"); });
  ASSERT_TRUE(seen.ok()) << seen.status().ToString();
  EXPECT_FALSE(seen->full);
  EXPECT_EQ(seen->emails, (std::set<std::string>{"bob@corp.example", "robert@corp.example"}));
}

}  // namespace
}  // namespace idsync::ldap
