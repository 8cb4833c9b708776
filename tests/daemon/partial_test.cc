// Partial mapping (MapOptions::only_emails): the people asked for come out
// exactly as a full Map() gives them, and nobody else does. Run against the
// example company (examples/), read through the LDIF source.
#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "idsync/base/ascii.h"
#include "idsync/config/config.h"
#include "idsync/daemon/connector_registry.h"
#include "idsync/daemon/inputs.h"
#include "idsync/mapping/glob.h"
#include "idsync/mapping/rules.h"

namespace idsync {
namespace {

class PartialMapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<config::Config> loaded = config::LoadConfig(
        std::string(IDSYNC_SOURCE_DIR) + "/examples/idsync.yaml", daemon::BuiltinLoadOptions());
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    config_ = std::move(loaded).value();
    Result<std::unique_ptr<mapping::RuleSet>> rules =
        daemon::CompileRules(config_, mapping::Catalog::Builtin());
    ASSERT_TRUE(rules.ok()) << rules.status().ToString();
    rules_ = std::move(rules).value();
    daemon::SourceReads reads = daemon::ReadAllSources(config_);
    ASSERT_TRUE(reads.failed.empty());
    snapshots_ = std::move(reads.snapshots);
    Result<mapping::MappingResult> full = mapping::Map(*rules_, snapshots_);
    ASSERT_TRUE(full.ok());
    full_ = std::move(full).value();
  }

  mapping::MappingResult MapOnly(std::vector<std::string> emails, bool details = false) {
    mapping::MapOptions options;
    options.only_emails = &emails;
    options.details = details;
    Result<mapping::MappingResult> r = mapping::Map(*rules_, snapshots_, options);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : mapping::MappingResult{};
  }

  static void ExpectSamePerson(const mapping::PersonAccess& a, const mapping::PersonAccess& b) {
    EXPECT_EQ(a.email, b.email);
    EXPECT_EQ(a.name, b.name) << a.email;
    EXPECT_EQ(a.sources, b.sources) << a.email;
    EXPECT_EQ(a.disabled, b.disabled) << a.email;
    EXPECT_EQ(a.has_access, b.has_access) << a.email;
    EXPECT_EQ(a.role, b.role) << a.email;
    EXPECT_EQ(a.levels, b.levels) << a.email;
    EXPECT_EQ(a.why, b.why) << a.email;
    EXPECT_EQ(a.projects, b.projects) << a.email;
    EXPECT_EQ(a.rules, b.rules) << a.email;
    EXPECT_EQ(a.granting_sources, b.granting_sources) << a.email;
  }

  config::Config config_;
  std::unique_ptr<mapping::RuleSet> rules_;
  std::vector<mapping::SourceSnapshot> snapshots_;
  mapping::MappingResult full_;
};

TEST_F(PartialMapTest, EveryPersonAloneMapsAsInTheFullMapping) {
  ASSERT_GT(full_.people.size(), 5u);
  for (const auto& person : full_.people) {
    mapping::MappingResult one = MapOnly({person.email});
    ASSERT_EQ(one.people.size(), 1u) << person.email;
    ExpectSamePerson(one.people[0], person);
  }
}

TEST_F(PartialMapTest, NestedGroupMembershipIsResolvedForTheSubset) {
  // farid is in Voice Leads, which is nested both ways with Voice Team.
  const mapping::PersonAccess* farid = full_.Find("farid@corp.example");
  ASSERT_NE(farid, nullptr);
  ASSERT_TRUE(farid->has_access);
  mapping::MappingResult one = MapOnly({"farid@corp.example"});
  ASSERT_EQ(one.people.size(), 1u);
  EXPECT_EQ(one.people[0].rules, farid->rules);
  EXPECT_TRUE(one.people[0].has_access);
}

TEST_F(PartialMapTest, OnlyThePeopleAskedForComeOutSorted) {
  mapping::MappingResult some =
      MapOnly({"iris@corp.example", "bruno@corp.example", "nobody@corp.example"});
  ASSERT_EQ(some.people.size(), 2u);
  EXPECT_EQ(some.people[0].email, "bruno@corp.example");  // stored as Bruno@Corp.Example
  EXPECT_EQ(some.people[1].email, "iris@corp.example");
  EXPECT_EQ(some.Find("ana@corp.example"), nullptr);
}

TEST_F(PartialMapTest, EmptySubsetMapsNobody) {
  mapping::MappingResult none = MapOnly({});
  EXPECT_TRUE(none.people.empty());
}

TEST_F(PartialMapTest, DetailsForTheSubsetMatchTheFullMapping) {
  mapping::MapOptions options;
  options.details = true;
  Result<mapping::MappingResult> full = mapping::Map(*rules_, snapshots_, options);
  ASSERT_TRUE(full.ok());
  const mapping::PersonAccess* iris = full->Find("iris@corp.example");
  ASSERT_NE(iris, nullptr);
  mapping::MappingResult one = MapOnly({"iris@corp.example"}, /*details=*/true);
  ASSERT_EQ(one.people.size(), 1u);
  EXPECT_EQ(one.people[0].groups, iris->groups);
  ASSERT_FALSE(iris->matches.empty()) << "iris matches no rule: nothing to compare";
  ASSERT_EQ(one.people[0].matches.size(), iris->matches.size());
  for (std::size_t i = 0; i < iris->matches.size(); ++i) {
    EXPECT_EQ(one.people[0].matches[i].via, iris->matches[i].via);
  }
}

TEST_F(PartialMapTest, ASharedAddressStaysUnmappedInTheSubset) {
  // Two entries of one source with the same address: neither is mapped,
  // whether the whole source or just that address is mapped.
  std::vector<mapping::SourceSnapshot> snapshots = snapshots_;
  mapping::DirectoryUser twin = snapshots[0].users[0];
  twin.id = "twin";
  twin.dn = "uid=twin,ou=people,dc=corp,dc=example";
  snapshots[0].users.push_back(twin);
  const std::string email = base::AsciiLower(twin.email);
  std::vector<std::string> only = {email};
  mapping::MapOptions options;
  options.only_emails = &only;
  Result<mapping::MappingResult> one = mapping::Map(*rules_, snapshots, options);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->people.size(), 1u);
  EXPECT_FALSE(one->people[0].has_access);
  EXPECT_EQ(one->duplicate_emails, 2u);
}

}  // namespace
}  // namespace idsync
