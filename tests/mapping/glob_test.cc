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
      // Non-ASCII letters are case-folded too.
      {"\xc3\x89", "\xc3\xa9", true},                    // É ~ é
      {"\xc3\xa9quipe-*", "\xc3\x89QUIPE-Paris", true},  // équipe-* ~ ÉQUIPE-Paris
      {"?QUIPE", "\xc3\xa9quipe", true},                 // '?' takes É's two bytes
      {"\xd0\xbe\xd1\x82\xd0\xb4\xd0\xb5\xd0\xbb", "\xd0\x9e\xd0\xa2\xd0\x94\xd0\x95\xd0\x9b",
       true},  // отдел ~ ОТДЕЛ
      {"\xce\xbf\xce\xbc\xce\xac\xce\xb4\xce\xb1-*", "\xce\x9f\xce\x9c\xce\x86\xce\x94\xce\x91-1",
       true},                                    // ομάδα-* ~ ΟΜΆΔΑ-1
      {"\xcf\x82", "\xce\xa3", true},            // final sigma ~ Σ
      {"gro\xc3\x9f", "GROSS", false},           // ß is not folded to ss
      {"gro\xc3\x9f", "GRO\xe1\xba\x9e", true},  // ß ~ capital ẞ
      {"\xc4\xb0", "i", false},                  // İ stays as is
      // Bytes that are not UTF-8 match only themselves, one at a time.
      {"\xff", "\xff", true},
      {"\xff", "\xfe", false},
      {"??", "\xc3\x89\x80", true},  // É, then a stray continuation byte
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

struct FoldRow {
  std::string in;
  std::string out;
};

TEST(FoldCase, Table) {
  const std::vector<FoldRow> cases = {
      // ASCII.
      {"", ""},
      {"Studio Admins-42 @[`{", "studio admins-42 @[`{"},
      // Latin-1 Supplement: U+00C0-U+00DE but U+00D7 go +0x20.
      {"\xc3\x80\xc3\x89\xc3\x96\xc3\x98\xc3\x9e",
       "\xc3\xa0\xc3\xa9\xc3\xb6\xc3\xb8\xc3\xbe"},  // ÀÉÖØÞ
      {"\xc3\x97", "\xc3\x97"},                      // × stays
      {"\xc3\x9f", "\xc3\x9f"},                      // ß stays
      {"\xc3\xbf", "\xc3\xbf"},                      // ÿ stays
      {"\xc2\xb5", "\xce\xbc"},                      // micro sign -> μ
      // Latin Extended-A: even -> odd, with the irregular parts.
      {"\xc4\x80\xc4\x81\xc4\xae", "\xc4\x81\xc4\x81\xc4\xaf"},  // ĀāĮ -> āāį
      {"\xc4\xb0\xc4\xb1", "\xc4\xb0\xc4\xb1"},                  // İı stay
      {"\xc4\xb2\xc4\xb6", "\xc4\xb3\xc4\xb7"},                  // Ĳ Ķ
      {"\xc4\xb9\xc5\x81\xc5\x87\xc5\x88",
       "\xc4\xba\xc5\x82\xc5\x88\xc5\x88"},                      // Ĺ Ł Ň ň: odd -> even
      {"\xc5\x8a\xc5\x92\xc5\xb6", "\xc5\x8b\xc5\x93\xc5\xb7"},  // Ŋ Œ Ŷ
      {"\xc5\xb8", "\xc3\xbf"},                                  // Ÿ -> ÿ
      {"\xc5\xb9\xc5\xbb\xc5\xbd\xc5\xbe", "\xc5\xba\xc5\xbc\xc5\xbe\xc5\xbe"},  // Ź Ż Ž ž
      {"\xc5\xbf", "s"},                                                         // long s -> s
      // Latin Extended-B, Latin Extended Additional.
      {"\xc8\x98\xc8\x9a", "\xc8\x99\xc8\x9b"},                  // Ș Ț
      {"\xc8\xba", "\xe2\xb1\xa5"},                              // Ⱥ -> ⱥ grows a byte
      {"\xe1\xba\xa0\xe1\xbb\xb8", "\xe1\xba\xa1\xe1\xbb\xb9"},  // Ạ Ỹ
      {"\xe1\xba\x9e", "\xc3\x9f"},                              // ẞ -> ß
      // Greek: U+0391-U+03A9 (no U+03A2) +0x20, and the accented capitals.
      {"\xce\x91\xce\xa1\xce\xa3\xce\xa9", "\xce\xb1\xcf\x81\xcf\x83\xcf\x89"},  // ΑΡΣΩ
      {"\xce\x86\xce\x8f", "\xce\xac\xcf\x8e"},                                  // Ά Ώ
      {"\xcf\x82", "\xcf\x83"},                                                  // ς -> σ
      // Cyrillic: U+0410-U+042F +0x20, U+0400-U+040F +0x50, and beyond.
      {"\xd0\x90\xd0\xaf", "\xd0\xb0\xd1\x8f"},                  // А Я
      {"\xd0\x80\xd0\x81\xd0\x8f", "\xd1\x90\xd1\x91\xd1\x9f"},  // Ѐ Ё Џ
      {"\xd2\x90", "\xd2\x91"},                                  // Ґ
      {"\xd1\x8f\xd1\x91", "\xd1\x8f\xd1\x91"},                  // я ё stay
      // Armenian.
      {"\xd4\xb1", "\xd5\xa1"},
      // Outside the folded blocks: unchanged.
      {"\xe1\xbc\x88\xef\xbc\xa1", "\xe1\xbc\x88\xef\xbc\xa1"},  // Greek Extended, fullwidth A
      {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},
      // Bytes that are not well-formed UTF-8 pass through; the rest folds.
      {"A\xff-Q", "a\xff-q"},
      {"\xc3", "\xc3"},                          // truncated
      {"\xc3Z", "\xc3z"},                        // lead byte without its continuation
      {"\x80\xc3\x89", "\x80\xc3\xa9"},          // stray continuation, then É
      {"\xc1\x81", "\xc1\x81"},                  // overlong 'A'
      {"\xe0\x81\x81", "\xe0\x81\x81"},          // overlong 'A'
      {"\xed\xa0\x80", "\xed\xa0\x80"},          // a surrogate
      {"\xf4\x90\x80\x80", "\xf4\x90\x80\x80"},  // above U+10FFFF
  };
  for (const FoldRow& c : cases) EXPECT_EQ(FoldCase(c.in), c.out) << c.in;
}

TEST(FoldCase, AppendKeepsWhatIsThere) {
  std::string out = "x:";
  AppendFoldCase("\xc3\x89QUIPE", &out);
  EXPECT_EQ(out, "x:\xc3\xa9quipe");
}

}  // namespace
}  // namespace idsync::mapping
