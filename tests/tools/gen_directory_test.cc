// The synthetic directory behind the benchmarks and the demo: deterministic,
// and shaped as promised (group sizes, nesting, non-ASCII names, cycles).
#include <algorithm>
#include <sstream>

#include <gtest/gtest.h>

#include "idsync/gen/directory_generator.h"
#include "idsync/mapping/catalog.h"
#include "idsync/mapping/rules.h"

namespace idsync::gen {
namespace {

DirectoryOptions Company(std::uint64_t seed = 3) {
  DirectoryOptions o;
  o.users = 60000;
  o.groups = 4000;
  o.seed = seed;
  o.cycles = 3;
  return o;
}

TEST(GenerateDirectory, SameSeedSameDirectory) {
  std::ostringstream a, b;
  WriteLdif(GenerateDirectory(Company()), "dc=corp,dc=example", a);
  WriteLdif(GenerateDirectory(Company()), "dc=corp,dc=example", b);
  EXPECT_EQ(a.str(), b.str());
  std::ostringstream c;
  WriteLdif(GenerateDirectory(Company(4)), "dc=corp,dc=example", c);
  EXPECT_NE(a.str(), c.str());
}

TEST(GenerateDirectory, GroupSizesFollowTheCompanyShape) {
  mapping::SourceSnapshot s = GenerateDirectory(Company());
  ASSERT_EQ(s.groups.size(), 4000u);
  std::size_t small = 0, large = 0, giant = 0;
  for (const auto& g : s.groups) {
    std::size_t n = g.member_users.size();
    if (n >= 20000) {
      ++giant;
    } else if (n > 200) {
      ++large;
    } else {
      ++small;
    }
  }
  EXPECT_GE(giant, 1u);
  EXPECT_LE(giant, 5u);
  // About 5% of groups have 200-2,000 members (sampling and de-duplication blur the edges).
  EXPECT_GT(large, 4000u * 3 / 100);
  EXPECT_LT(large, 4000u * 8 / 100);
  EXPECT_GT(small, 4000u * 90 / 100);
}

TEST(GenerateDirectory, NestingIsDeepButBoundedWithTheRequestedCycles) {
  mapping::SourceSnapshot s = GenerateDirectory(Company());
  std::size_t holders = 0;
  for (const auto& g : s.groups) holders += !g.member_groups.empty();
  EXPECT_GT(holders, 4000u * 5 / 100);
  EXPECT_LT(holders, 4000u * 15 / 100);

  // Mapping with max_depth 9 succeeds, and nesting reaches at least depth 5:
  // a rule on every group of level 0 would show it, but max_depth is the
  // sharper check: at 4 the same directory must fail.
  const auto& catalog = mapping::Catalog::Builtin();
  auto book = mapping::PresetBook::Create(catalog, {});
  mapping::Rule rule;
  rule.name = "all";
  rule.groups = {"*"};
  rule.presets = {"qa-analyst"};
  auto rules = mapping::RuleSet::Compile({rule}, catalog, *book, {});
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  s.max_depth = 10;  // nine levels below the top, plus cycles counted as one
  EXPECT_TRUE(mapping::Map(*rules, {s}).ok());
  s.max_depth = 4;
  EXPECT_EQ(mapping::Map(*rules, {s}).status().code(), StatusCode::kFailedPrecondition);
}

TEST(GenerateDirectory, SomeNamesAreNotAscii) {
  mapping::SourceSnapshot s = GenerateDirectory(Company());
  std::size_t non_ascii = std::count_if(s.users.begin(), s.users.end(), [](const auto& u) {
    return std::any_of(u.name.begin(), u.name.end(), [](unsigned char c) { return c >= 0x80; });
  });
  EXPECT_GT(non_ascii, s.users.size() * 3 / 100);
  EXPECT_LT(non_ascii, s.users.size() * 7 / 100);
}

TEST(WriteLdif, Base64EncodesNonAsciiValues) {
  DirectoryOptions o;
  o.users = 400;
  o.groups = 10;
  std::ostringstream out;
  WriteLdif(GenerateDirectory(o), o.base, out);
  std::string text = out.str();
  EXPECT_NE(text.find("cn:: "), std::string::npos);
  EXPECT_TRUE(std::all_of(text.begin(), text.end(), [](unsigned char c) { return c < 0x80; }));
}

}  // namespace
}  // namespace idsync::gen
