// Change following on Active Directory against a real Samba AD DC (skipped
// when Samba is not installed), through LdapSource::Follow: the
// administrator gets DirSync, an ordinary account (no right to use DirSync)
// gets uSNChanged polling. Both: add, modify, disable, membership change and
// delete reach the feed with the right e-mails; the cookie or mark in the
// FeedStateStore survives a restart; uSNChanged refreshes in full when the
// domain controller's identity changed.
#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "idsync/ldap/ldap_source.h"

#include "require_servers.h"
#include "samba_fixture.h"

namespace idsync::ldap {
namespace {

using ::idsync::testing::AdUser;
using ::idsync::testing::MakeAdUser;
using ::idsync::testing::SambaFixture;

constexpr char kReaderPassword[] = "Reader-Pass-7x";

// The store a daemon would give: what was saved, and how often.
class MemoryStateStore : public mapping::FeedStateStore {
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
  std::map<std::string, std::string>& values() { return values_; }
  int saves() const { return saves_; }

 private:
  std::map<std::string, std::string> values_;
  int saves_ = 0;
};

struct Method {
  std::string name;  // what Follow must pick
  bool admin;        // bind as the administrator (DirSync) or the reader
};

void PrintTo(const Method& method, std::ostream* out) { *out << method.name; }

class AdFeedTest : public ::testing::TestWithParam<Method> {
 protected:
  void SetUp() override {
    IDSYNC_REQUIRE_SERVER(SambaFixture::Available(), SambaFixture::WhyUnavailable());
    Result<SambaFixture*> dc = SambaFixture::Shared();
    ASSERT_TRUE(dc.ok()) << dc.status().ToString();
    dc_ = *dc;
    // The reader once per process; people and groups per test, in OUs of
    // their own, so that the tests also pass when run in one process.
    static bool reader_added = false;
    if (!reader_added) {
      reader_added = true;
      AdUser reader = MakeAdUser("Reader", "");
      reader.ou = "Service";
      reader.password = kReaderPassword;
      Result<std::vector<std::string>> service = dc_->AddUsers({reader});
      ASSERT_TRUE(service.ok()) << service.status().ToString();
    }
    static int tests = 0;
    const std::string tag = std::to_string(++tests);
    staff_ = "Staff" + tag;
    groups_ = "Groups" + tag;
    std::vector<AdUser> people = {MakeAdUser("Ann", "ann@corp.example.test", "Ann"),
                                  MakeAdUser("Bob", "bob@corp.example.test", "Bob"),
                                  MakeAdUser("Cid", "cid@corp.example.test", "Cid")};
    for (AdUser& person : people) person.ou = staff_;
    Result<std::vector<std::string>> users = dc_->AddUsers(people);
    ASSERT_TRUE(users.ok()) << users.status().ToString();
    Result<std::string> sub = dc_->AddGroup("Sub", {(*users)[2]}, groups_);
    ASSERT_TRUE(sub.ok()) << sub.status().ToString();
    Result<std::string> top = dc_->AddGroup("Top", {(*users)[0], *sub}, groups_);
    ASSERT_TRUE(top.ok()) << top.status().ToString();
  }

  // A user in this test's staff OU.
  AdUser Person(const std::string& cn, const std::string& mail) const {
    AdUser user = MakeAdUser(cn, mail, cn);
    user.ou = staff_;
    return user;
  }

  ldap::LdapConfig Config() const {
    ldap::LdapConfig source;
    source.name = "corp-ad";
    source.flavor = ldap::Flavor::kActiveDirectory;
    source.urls = {dc_->ldaps_url()};
    source.tls.ca_file = dc_->ca_file();
    source.bind.kind = ldap::BindConfig::Kind::kSimple;
    if (GetParam().admin) {
      source.bind.dn = dc_->admin_dn();
      source.bind.password = dc_->admin_password();
    } else {
      source.bind.dn = dc_->EntryDn("Reader", "Service");
      source.bind.password = kReaderPassword;
    }
    source.users.base = dc_->OuDn(staff_);
    source.users.filter = "(&(objectClass=user)(objectCategory=person))";
    source.users.name = "displayName";
    source.users.disabled_filter = "(userAccountControl:1.2.840.113556.1.4.803:=2)";
    source.groups.base = dc_->OuDn(groups_);
    source.groups.filter = "(objectClass=group)";
    source.watch = true;
    source.watch_interval = std::chrono::milliseconds(100);
    source.timeout = std::chrono::seconds(20);
    return source;
  }

  // Follow() on a new LdapSource kept alive in `source_`.
  std::unique_ptr<mapping::ChangeFeed> Follow(MemoryStateStore& store) {
    config_ = Config();
    Result<std::unique_ptr<LdapSource>> source = LdapSource::Create(config_);
    EXPECT_TRUE(source.ok()) << source.status().ToString();
    if (!source.ok()) return nullptr;
    source_ = std::move(*source);
    Result<std::unique_ptr<mapping::ChangeFeed>> feed = source_->Follow(store);
    EXPECT_TRUE(feed.ok()) << feed.status().ToString();
    if (!feed.ok()) return nullptr;
    EXPECT_EQ((*feed)->method(), GetParam().name);
    return std::move(*feed);
  }

  // The next change, waiting up to 15 s; nullopt (and a failure) if none.
  static std::optional<mapping::SourceChange> NextChange(mapping::ChangeFeed& feed) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < deadline) {
      Result<std::optional<mapping::SourceChange>> next = feed.Next(std::chrono::milliseconds(500));
      if (!next.ok()) {
        ADD_FAILURE() << next.status().ToString();
        return std::nullopt;
      }
      if (next->has_value()) return std::move(**next);
    }
    ADD_FAILURE() << "no change within 15 s";
    return std::nullopt;
  }

  static const mapping::DirectoryUser* User(const mapping::SourceSnapshot& s,
                                            const std::string& email) {
    for (const mapping::DirectoryUser& u : s.users) {
      if (u.email == email) return &u;
    }
    return nullptr;
  }

  // Direct user members of the group `name`, by e-mail, sorted.
  static std::vector<std::string> Members(const mapping::SourceSnapshot& s,
                                          const std::string& name) {
    std::vector<std::string> out;
    for (const mapping::DirectoryGroup& g : s.groups) {
      if (g.name != name) continue;
      for (std::uint32_t u : g.member_users) out.push_back(s.users[u].email);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  SambaFixture* dc_ = nullptr;
  std::string staff_;  // this test's OUs
  std::string groups_;
  ldap::LdapConfig config_;
  std::unique_ptr<LdapSource> source_;
};

using Emails = std::vector<std::string>;

TEST_P(AdFeedTest, AddModifyDisableMembershipAndDeleteArriveWithTheirEmails) {
  MemoryStateStore store;
  std::unique_ptr<mapping::ChangeFeed> feed = Follow(store);
  ASSERT_NE(feed, nullptr);
  std::optional<mapping::SourceChange> first = NextChange(*feed);
  ASSERT_TRUE(first.has_value());
  EXPECT_TRUE(first->full);
  EXPECT_NE(User(*first->snapshot, "ann@corp.example.test"), nullptr);
  EXPECT_EQ(Members(*first->snapshot, "Top"), (Emails{"ann@corp.example.test"}));
  EXPECT_EQ(Members(*first->snapshot, "Sub"), (Emails{"cid@corp.example.test"}));

  // Add.
  Result<std::vector<std::string>> dee = dc_->AddUsers({Person("Dee", "Dee@Corp.Example.Test")});
  ASSERT_TRUE(dee.ok()) << dee.status().ToString();
  std::optional<mapping::SourceChange> added = NextChange(*feed);
  ASSERT_TRUE(added.has_value());
  EXPECT_FALSE(added->full);
  EXPECT_EQ(added->emails, (Emails{"dee@corp.example.test"}));
  ASSERT_NE(User(*added->snapshot, "Dee@Corp.Example.Test"), nullptr);

  // Modify the address: old and new.
  const std::string bob = dc_->EntryDn("Bob", staff_);
  ASSERT_TRUE(dc_->Replace(bob, "mail", {"robert@corp.example.test"}).ok());
  std::optional<mapping::SourceChange> renamed = NextChange(*feed);
  ASSERT_TRUE(renamed.has_value());
  EXPECT_EQ(renamed->emails, (Emails{"bob@corp.example.test", "robert@corp.example.test"}));
  EXPECT_EQ(User(*renamed->snapshot, "bob@corp.example.test"), nullptr);

  // Disable.
  ASSERT_TRUE(dc_->SetDisabled(bob, true).ok());
  std::optional<mapping::SourceChange> disabled = NextChange(*feed);
  ASSERT_TRUE(disabled.has_value());
  EXPECT_EQ(disabled->emails, (Emails{"robert@corp.example.test"}));
  const mapping::DirectoryUser* robert = User(*disabled->snapshot, "robert@corp.example.test");
  ASSERT_NE(robert, nullptr);
  EXPECT_TRUE(robert->disabled);

  // Membership: a changed group touches the members who joined or left
  // (nested ones included), not those who stayed.
  const std::string sub = dc_->EntryDn("Sub", groups_);
  ASSERT_TRUE(dc_->AddMembers(sub, {(*dee)[0]}).ok());
  std::optional<mapping::SourceChange> joined = NextChange(*feed);
  ASSERT_TRUE(joined.has_value());
  EXPECT_EQ(joined->emails, Emails{"dee@corp.example.test"});
  EXPECT_EQ(Members(*joined->snapshot, "Sub"),
            (Emails{"Dee@Corp.Example.Test", "cid@corp.example.test"}));

  ASSERT_TRUE(dc_->RemoveMembers(sub, {dc_->EntryDn("Cid", staff_)}).ok());
  std::optional<mapping::SourceChange> left = NextChange(*feed);
  ASSERT_TRUE(left.has_value());
  EXPECT_EQ(left->emails, Emails{"cid@corp.example.test"});
  EXPECT_EQ(Members(*left->snapshot, "Sub"), (Emails{"Dee@Corp.Example.Test"}));

  // Delete: the user is gone, from every group too.
  ASSERT_TRUE(dc_->Delete((*dee)[0]).ok());
  std::optional<mapping::SourceChange> deleted = NextChange(*feed);
  ASSERT_TRUE(deleted.has_value());
  EXPECT_EQ(deleted->emails, (Emails{"dee@corp.example.test"}));
  EXPECT_EQ(User(*deleted->snapshot, "Dee@Corp.Example.Test"), nullptr);
  EXPECT_TRUE(Members(*deleted->snapshot, "Sub").empty());

  // A user of the same name again is not a member of the old groups.
  Result<std::vector<std::string>> again = dc_->AddUsers({Person("Dee", "dee2@corp.example.test")});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  std::optional<mapping::SourceChange> readded = NextChange(*feed);
  ASSERT_TRUE(readded.has_value());
  EXPECT_EQ(readded->emails, (Emails{"dee2@corp.example.test"}));
  EXPECT_TRUE(Members(*readded->snapshot, "Sub").empty());

  // Nothing else happened: no change, and the snapshot equals a full read.
  Result<std::optional<mapping::SourceChange>> quiet = feed->Next(std::chrono::milliseconds(400));
  ASSERT_TRUE(quiet.ok()) << quiet.status().ToString();
  EXPECT_FALSE(quiet->has_value());
  Result<mapping::SourceSnapshot> full = source_->Read();
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  ASSERT_FALSE(full->users.empty());
  ASSERT_FALSE(full->groups.empty());
  EXPECT_EQ(full->users.size(), readded->snapshot->users.size());
  for (const mapping::DirectoryUser& u : full->users) {
    const mapping::DirectoryUser* cached = User(*readded->snapshot, u.email);
    ASSERT_NE(cached, nullptr) << u.email;
    EXPECT_EQ(cached->id, u.id);
    EXPECT_EQ(cached->disabled, u.disabled) << u.email;
  }
  for (const mapping::DirectoryGroup& g : full->groups) {
    EXPECT_EQ(Members(*readded->snapshot, g.name), Members(*full, g.name)) << g.name;
  }
}

TEST_P(AdFeedTest, CookieSurvivesARestart) {
  MemoryStateStore store;
  {
    std::unique_ptr<mapping::ChangeFeed> feed = Follow(store);
    ASSERT_NE(feed, nullptr);
    std::optional<mapping::SourceChange> first = NextChange(*feed);
    ASSERT_TRUE(first.has_value());
    EXPECT_TRUE(first->full);
  }
  source_.reset();
  ASSERT_GT(store.saves(), 0);

  // While "down": a new user joins Top, and Ann leaves it.
  Result<std::vector<std::string>> eve = dc_->AddUsers({Person("Eve", "eve@corp.example.test")});
  ASSERT_TRUE(eve.ok()) << eve.status().ToString();
  const std::string top = dc_->EntryDn("Top", groups_);
  ASSERT_TRUE(dc_->AddMembers(top, {(*eve)[0]}).ok());
  ASSERT_TRUE(dc_->RemoveMembers(top, {dc_->EntryDn("Ann", staff_)}).ok());

  std::unique_ptr<mapping::ChangeFeed> feed = Follow(store);
  ASSERT_NE(feed, nullptr);
  std::optional<mapping::SourceChange> resumed = NextChange(*feed);
  ASSERT_TRUE(resumed.has_value());
  EXPECT_FALSE(resumed->full);
  // Top changed: who joined and who left it; Sub's members stayed.
  EXPECT_EQ(resumed->emails, (Emails{"ann@corp.example.test", "eve@corp.example.test"}));
  EXPECT_EQ(Members(*resumed->snapshot, "Top"), (Emails{"eve@corp.example.test"}));
}

INSTANTIATE_TEST_SUITE_P(Methods, AdFeedTest,
                         ::testing::Values(Method{"dirsync", true}, Method{"usnchanged", false}),
                         [](const ::testing::TestParamInfo<Method>& info) {
                           return info.param.name;
                         });

// uSNChanged marks belong to one domain controller: a saved mark of another
// DC (here: another invocationId) makes the next poll a full refresh.
class AdUsnFeedTest : public AdFeedTest {};

TEST_P(AdUsnFeedTest, AnotherDomainControllerMeansAFullRefresh) {
  MemoryStateStore store;
  {
    std::unique_ptr<mapping::ChangeFeed> feed = Follow(store);
    ASSERT_NE(feed, nullptr);
    std::optional<mapping::SourceChange> first = NextChange(*feed);
    ASSERT_TRUE(first.has_value());
  }
  source_.reset();
  ASSERT_EQ(store.values().size(), 1u);
  std::string& saved = store.values().begin()->second;
  // The saved state starts "idsync-ldap-feed 1\n<length>:<mark>", the mark
  // being "<dsServiceName>\n<invocationId>\n<USN>". Change one character of
  // the invocationId, keeping every length, so that the state still parses.
  std::size_t colon = saved.find(':');
  ASSERT_NE(colon, std::string::npos);
  std::size_t first = saved.find('\n', colon);
  std::size_t second = saved.find('\n', first + 1);
  ASSERT_NE(second, std::string::npos);
  ASSERT_EQ(second - first - 1, 36u) << saved.substr(colon, 200);
  char& c = saved[second - 1];
  c = c == '0' ? '1' : '0';

  std::unique_ptr<mapping::ChangeFeed> feed = Follow(store);
  ASSERT_NE(feed, nullptr);
  std::optional<mapping::SourceChange> refreshed = NextChange(*feed);
  ASSERT_TRUE(refreshed.has_value());
  EXPECT_TRUE(refreshed->full);
  EXPECT_NE(User(*refreshed->snapshot, "ann@corp.example.test"), nullptr);
}

INSTANTIATE_TEST_SUITE_P(Usn, AdUsnFeedTest, ::testing::Values(Method{"usnchanged", false}),
                         [](const ::testing::TestParamInfo<Method>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace idsync::ldap

namespace idsync::ldap {
namespace {

// A DirSync cookie the server refuses (damaged here) means a full refresh,
// not a feed that fails forever.
class AdDirSyncFeedTest : public AdFeedTest {};

TEST_P(AdDirSyncFeedTest, RefusedCookieMeansAFullRefresh) {
  MemoryStateStore store;
  {
    std::unique_ptr<mapping::ChangeFeed> feed = Follow(store);
    ASSERT_NE(feed, nullptr);
    ASSERT_TRUE(NextChange(*feed).has_value());
  }
  source_.reset();
  ASSERT_EQ(store.values().size(), 1u);
  std::string& saved = store.values().begin()->second;
  // "idsync-ldap-feed 1\n<length>:<cookie as hex>...": replace the cookie
  // with two bytes, which no DirSync cookie is.
  const std::size_t start = saved.find('\n') + 1;
  const std::size_t colon = saved.find(':', start);
  ASSERT_NE(colon, std::string::npos);
  ASSERT_EQ(saved.substr(colon + 1, 8), "4d534453");  // the "MSDS" signature
  const std::size_t length = std::stoul(saved.substr(start, colon - start));
  saved.replace(start, colon + 1 + length - start, "4:0102");

  std::unique_ptr<mapping::ChangeFeed> feed = Follow(store);
  ASSERT_NE(feed, nullptr);
  std::optional<mapping::SourceChange> refreshed = NextChange(*feed);
  ASSERT_TRUE(refreshed.has_value());
  EXPECT_TRUE(refreshed->full);
  EXPECT_NE(User(*refreshed->snapshot, "ann@corp.example.test"), nullptr);
}

INSTANTIATE_TEST_SUITE_P(DirSync, AdDirSyncFeedTest, ::testing::Values(Method{"dirsync", true}),
                         [](const ::testing::TestParamInfo<Method>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace idsync::ldap
