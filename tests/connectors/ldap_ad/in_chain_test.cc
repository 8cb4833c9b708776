// In-chain resolution of nested groups against a real Samba AD DC (skipped
// when Samba is not installed): the server's answer equals idsync's
// client-side closure on nested, cyclic, deep and oddly named groups; and,
// with IDSYNC_AD_BENCH=1, timings of both on a generated nesting (see
// bench/ad_nesting_bench.sh).
#include "in_chain.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "idsync/ldap/ldap_source.h"

#include "connection.h"
#include "require_servers.h"
#include "samba_fixture.h"

namespace idsync::ldap::internal {
namespace {

using ::idsync::testing::AdUser;
using ::idsync::testing::MakeAdUser;
using ::idsync::testing::SambaFixture;

class InChainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    IDSYNC_REQUIRE_SERVER(SambaFixture::Available(), SambaFixture::WhyUnavailable());
    Result<SambaFixture*> dc = SambaFixture::Shared();
    ASSERT_TRUE(dc.ok()) << dc.status().ToString();
    dc_ = *dc;
  }

  ldap::LdapConfig Config(const std::string& users_ou, const std::string& groups_ou) const {
    ldap::LdapConfig source;
    source.name = "corp-ad";
    source.flavor = ldap::Flavor::kActiveDirectory;
    source.urls = {dc_->ldaps_url()};
    source.tls.ca_file = dc_->ca_file();
    source.bind.kind = ldap::BindConfig::Kind::kSimple;
    source.bind.dn = dc_->admin_dn();
    source.bind.password = dc_->admin_password();
    source.users.base = dc_->OuDn(users_ou);
    source.users.filter = "(&(objectClass=user)(objectCategory=person))";
    source.users.name = "displayName";
    source.groups.base = dc_->OuDn(groups_ou);
    source.groups.filter = "(objectClass=group)";
    source.page_size = 50;
    source.timeout = std::chrono::seconds(60);
    source.groups.max_depth = 100;
    return source;
  }

  // Per group DN (lower-cased), the user DNs (lower-cased) of the client-side
  // closure over a full read.
  static Result<std::map<std::string, std::set<std::string>>> ClientSide(
      const ldap::LdapConfig& config) {
    ASSIGN_OR_RETURN(std::unique_ptr<LdapSource> source, LdapSource::Create(config));
    ASSIGN_OR_RETURN(mapping::SourceSnapshot snapshot, source->Read());
    std::vector<std::vector<std::uint32_t>> closure = TransitiveUsers(snapshot);
    std::map<std::string, std::set<std::string>> out;
    for (std::size_t g = 0; g < snapshot.groups.size(); ++g) {
      std::set<std::string>& users = out[Lower(snapshot.groups[g].dn)];
      for (std::uint32_t u : closure[g]) users.insert(Lower(snapshot.users[u].dn));
    }
    return out;
  }

  // The same through the in-chain rule, for the groups the closure knows.
  static Result<std::map<std::string, std::set<std::string>>> ServerSide(
      const ldap::LdapConfig& config, const std::vector<std::string>& group_dns,
      InChainStats* stats) {
    ASSIGN_OR_RETURN(std::unique_ptr<Connection> connection, OpenConnection(config));
    SigpipeGuard guard;
    Session session(config, *connection, nullptr);
    ASSIGN_OR_RETURN(auto members, ResolveInChain(session, group_dns, stats));
    std::map<std::string, std::set<std::string>> out;
    for (std::size_t g = 0; g < group_dns.size(); ++g) {
      std::set<std::string>& users = out[Lower(group_dns[g])];
      for (const std::string& dn : members[g]) users.insert(Lower(dn));
    }
    return out;
  }

  static std::string Lower(std::string text) {
    for (char& c : text) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return text;
  }

  static std::vector<std::string> Keys(const std::map<std::string, std::set<std::string>>& m) {
    std::vector<std::string> keys;
    for (const auto& [key, value] : m) keys.push_back(key);
    return keys;
  }

  SambaFixture* dc_ = nullptr;
};

TEST(InChainFilterTest, EscapesTheGroupDn) {
  EXPECT_EQ(EscapeFilterValue("CN=Team (EU)*\\x"), "CN=Team \\28EU\\29\\2a\\5cx");
  EXPECT_EQ(InChainFilter("(objectClass=user)", "CN=G,DC=x"),
            "(&(objectClass=user)(memberOf:1.2.840.113556.1.4.1941:=CN=G,DC=x))");
}

TEST(TransitiveUsersTest, FollowsNestingAndCycles) {
  mapping::SourceSnapshot s;
  s.users.resize(4);
  s.groups.resize(4);
  s.groups[0].member_users = {0};
  s.groups[0].member_groups = {1};
  s.groups[1].member_users = {1};
  s.groups[1].member_groups = {2};
  s.groups[2].member_users = {2, 1};
  s.groups[2].member_groups = {0};  // cycle 0 -> 1 -> 2 -> 0
  s.groups[3].member_users = {3};
  std::vector<std::vector<std::uint32_t>> closure = TransitiveUsers(s);
  for (int g = 0; g < 3; ++g) EXPECT_EQ(closure[g], (std::vector<std::uint32_t>{0, 1, 2})) << g;
  EXPECT_EQ(closure[3], (std::vector<std::uint32_t>{3}));
}

TEST_F(InChainTest, EqualsClientSideClosureOnNestedCyclicAndOddlyNamedGroups) {
  Result<std::vector<std::string>> users = dc_->AddUsers(
      {MakeAdUser("Ann", "ann@corp.example.test"), MakeAdUser("Bob", "bob@corp.example.test"),
       MakeAdUser("Zoë Ångström", "zoe@corp.example.test"),
       MakeAdUser("Carl (Contractor)", "carl@corp.example.test"),
       MakeAdUser("Dee", "dee@corp.example.test", "", /*disabled=*/true)});
  ASSERT_TRUE(users.ok()) << users.status().ToString();
  const std::string &ann = (*users)[0], &bob = (*users)[1], &zoe = (*users)[2], &carl = (*users)[3],
                    &dee = (*users)[4];
  AdUser outsider = MakeAdUser("Outsider", "out@corp.example.test");
  outsider.ou = "Elsewhere";
  Result<std::vector<std::string>> other = dc_->AddUsers({outsider});
  ASSERT_TRUE(other.ok()) << other.status().ToString();

  auto group = [&](const std::string& cn, const std::vector<std::string>& members) {
    Result<std::string> dn = dc_->AddGroup(cn, members);
    EXPECT_TRUE(dn.ok()) << dn.status().ToString();
    return dn.ok() ? *dn : std::string();
  };
  std::string engineering = group("Engineering", {ann});
  std::string platform = group("Platform", {bob, engineering});
  ASSERT_TRUE(dc_->AddMembers(engineering, {platform}).ok());  // a cycle
  std::string leaf = group("Team (EU) *", {carl, (*other)[0]});
  std::string level = leaf;
  for (int depth = 1; depth <= 6; ++depth) level = group("Level " + std::to_string(depth), {level});
  std::string equipe = group("Équipe", {zoe, level, dee});
  group("Empty", {});
  ASSERT_FALSE(HasFailure());

  ldap::LdapConfig config = Config("Staff", "Groups");
  Result<std::map<std::string, std::set<std::string>>> client = ClientSide(config);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  InChainStats stats;
  Result<std::map<std::string, std::set<std::string>>> server =
      ServerSide(config, Keys(*client), &stats);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  EXPECT_EQ(*server, *client);
  EXPECT_EQ(stats.searches, client->size());

  // The expected sets themselves, so that two equal wrong answers fail.
  EXPECT_EQ(server->at(Lower(engineering)), (std::set<std::string>{Lower(ann), Lower(bob)}));
  EXPECT_EQ(server->at(Lower(platform)), (std::set<std::string>{Lower(ann), Lower(bob)}));
  EXPECT_EQ(server->at(Lower(leaf)), (std::set<std::string>{Lower(carl)}));
  EXPECT_EQ(server->at(Lower(equipe)),
            (std::set<std::string>{Lower(zoe), Lower(carl), Lower(dee)}));
  EXPECT_TRUE(server->at(Lower(dc_->EntryDn("Empty", "Groups"))).empty());
}

TEST_F(InChainTest, RefusesWithoutTheActiveDirectoryFlavor) {
  ldap::LdapConfig config = Config("Staff", "Groups");
  config.flavor = ldap::Flavor::kOpenLdap;
  Result<std::unique_ptr<Connection>> connection = OpenConnection(config);
  ASSERT_TRUE(connection.ok()) << connection.status().ToString();
  SigpipeGuard guard;
  Session session(config, **connection, nullptr);
  Result<std::vector<std::vector<std::string>>> members =
      ResolveInChain(session, {dc_->EntryDn("Any", "Groups")});
  ASSERT_FALSE(members.ok());
  EXPECT_EQ(members.status().code(), StatusCode::kFailedPrecondition);
}

int EnvInt(const char* name, int fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::atoi(value) : fallback;
}

// IDSYNC_AD_BENCH=1: a generated nesting of IDSYNC_AD_BENCH_GROUPS groups in
// chains IDSYNC_AD_BENCH_DEPTH deep, IDSYNC_AD_BENCH_USERS users spread over
// them; prints the time of a full read plus client-side closure against a
// full read plus one in-chain search per group.
TEST_F(InChainTest, BenchmarkAgainstClientSideClosure) {
  if (std::getenv("IDSYNC_AD_BENCH") == nullptr) GTEST_SKIP() << "set IDSYNC_AD_BENCH=1";
  const int n_users = EnvInt("IDSYNC_AD_BENCH_USERS", 400);
  const int n_groups = EnvInt("IDSYNC_AD_BENCH_GROUPS", 100);
  const int depth = std::max(1, EnvInt("IDSYNC_AD_BENCH_DEPTH", 5));
  const int rounds = std::max(1, EnvInt("IDSYNC_AD_BENCH_ROUNDS", 3));

  auto t0 = std::chrono::steady_clock::now();
  std::vector<AdUser> users;
  for (int i = 0; i < n_users; ++i) {
    AdUser u = MakeAdUser("B" + std::to_string(i), "b" + std::to_string(i) + "@corp.example.test");
    u.ou = "BenchUsers";
    users.push_back(u);
  }
  Result<std::vector<std::string>> user_dns = dc_->AddUsers(users);
  ASSERT_TRUE(user_dns.ok()) << user_dns.status().ToString();
  // Groups in chains: group i's parent is i-1 unless i starts a new chain.
  // Every group gets its share of users directly; adding child groups
  // before parents lets each LDIF entry name only existing members.
  ASSERT_TRUE(dc_->EnsureOu("BenchGroups").ok());
  std::string ldif;
  std::vector<std::string> group_dns(static_cast<std::size_t>(n_groups));
  for (int i = n_groups - 1; i >= 0; --i) {
    group_dns[i] = dc_->EntryDn("BG" + std::to_string(i), "BenchGroups");
    ldif += "dn: " + group_dns[i] + "\nobjectClass: group\n";
    for (int u = i; u < n_users; u += n_groups) ldif += "member: " + (*user_dns)[u] + "\n";
    if (i + 1 < n_groups && (i + 1) % depth != 0) ldif += "member: " + group_dns[i + 1] + "\n";
    ldif += "\n";
  }
  ASSERT_TRUE(dc_->Add(ldif).ok());
  double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  ldap::LdapConfig config = Config("BenchUsers", "BenchGroups");
  config.page_size = 1000;
  double client_best = 1e9, server_best = 1e9;
  std::map<std::string, std::set<std::string>> client_answer, server_answer;
  for (int round = 0; round < rounds; ++round) {
    auto c0 = std::chrono::steady_clock::now();
    Result<std::map<std::string, std::set<std::string>>> client = ClientSide(config);
    auto c1 = std::chrono::steady_clock::now();
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    // The in-chain variant still needs the full read (users, group names);
    // it replaces only the closure, with one search per group.
    Result<std::map<std::string, std::set<std::string>>> reread = ClientSide(config);
    ASSERT_TRUE(reread.ok());
    InChainStats stats;
    Result<std::map<std::string, std::set<std::string>>> server =
        ServerSide(config, Keys(*client), &stats);
    auto c2 = std::chrono::steady_clock::now();
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    client_best = std::min(client_best, std::chrono::duration<double>(c1 - c0).count());
    server_best = std::min(server_best, std::chrono::duration<double>(c2 - c1).count());
    client_answer = *client;
    server_answer = *server;
  }
  EXPECT_EQ(server_answer, client_answer);
  std::printf(
      "ad_nesting_bench users=%d groups=%d depth=%d load_s=%.1f rounds=%d "
      "client_closure_s=%.3f in_chain_s=%.3f ratio=%.1f\n",
      n_users, n_groups, depth, load_s, rounds, client_best, server_best,
      server_best / client_best);
}

}  // namespace
}  // namespace idsync::ldap::internal
