#include "idsync/mapping/glob.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace idsync::mapping {
namespace {

struct GlobCase {
  std::string pattern;
  std::string text;
  bool match;
};

TEST(GlobMatch, Table) {
  const std::vector<GlobCase> cases = {
      // Literal, case-insensitive (ASCII).
      {"qa-team", "qa-team", true},
      {"QA-Team", "qa-team", true},
      {"qa-team", "qa-teams", false},
      {"qa-teams", "qa-team", false},
      {"", "", true},
      {"", "x", false},
      // '*'
      {"*", "", true},
      {"*", "anything", true},
      {"qa-*", "qa-", true},
      {"qa-*", "QA-Europe", true},
      {"qa-*", "qa", false},
      {"*-admins", "studio-admins", true},
      {"*-admins", "studio-admins-x", false},
      {"a*b*c", "axxbyyc", true},
      {"a*b*c", "abc", true},
      {"a*b*c", "acb", false},
      {"a*b", "ac", false},
      {"**a**", "bab", true},
      {"*@corp.example", "Ana@Corp.Example", true},
      {"*@corp.example", "ana@corp.example.org", false},
      {"*ab", "aab", true},
      {"*aab", "aaab", true},
      // '?'
      {"?", "x", true},
      {"?", "", false},
      {"?", "xy", false},
      {"team-?", "team-7", true},
      {"team-??", "team-7", false},
      // '?' takes one code point, not one byte.
      {"?", "\xc3\xa9", true},  // é
      {"??", "\xc3\xa9", false},
      {"caf?", "caf\xc3\xa9", true},
      {"?\xe2\x82\xac", "x\xe2\x82\xac", true},  // x€
      {"*?", "\xf0\x9f\x98\x80", true},          // an emoji: one code point
      {"*??", "\xf0\x9f\x98\x80", false},
      // Non-ASCII letters are compared as bytes: no folding.
      {"\xc3\x89", "\xc3\xa9", false},
  };
  for (const GlobCase& c : cases) {
    EXPECT_EQ(GlobMatch(c.pattern, c.text), c.match)
        << "'" << c.pattern << "' ~ '" << c.text << "'";
  }
}

TEST(GlobMatch, NoExponentialBacktracking) {
  // A classic exponential case for recursive matchers: must finish at once.
  const std::string text(5000, 'a');
  const std::string pattern = "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b";
  EXPECT_FALSE(GlobMatch(pattern, text));
  EXPECT_TRUE(GlobMatch(pattern.substr(0, pattern.size() - 1), text));
}

TEST(HasGlob, DetectsWildcards) {
  EXPECT_TRUE(HasGlob("qa-*"));
  EXPECT_TRUE(HasGlob("team-?"));
  EXPECT_FALSE(HasGlob("Voice Team"));
  EXPECT_FALSE(HasGlob(""));
}

TEST(AsciiLower, FoldsOnlyAscii) {
  EXPECT_EQ(AsciiLower("Ana.Lima@Corp.EXAMPLE"), "ana.lima@corp.example");
  EXPECT_EQ(AsciiLower("\xc3\x89MILE"), "\xc3\x89mile");  // É stays as is
  EXPECT_EQ(AsciiLower(""), "");
}

}  // namespace
}  // namespace idsync::mapping
