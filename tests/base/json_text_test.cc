#include "idsync/base/json_text.h"

#include <string>

#include <gtest/gtest.h>

namespace idsync::base {
namespace {

TEST(JsonQuote, PlainTextOnlyGetsQuotes) {
  EXPECT_EQ(JsonQuote(""), "\"\"");
  EXPECT_EQ(JsonQuote("alice"), "\"alice\"");
  EXPECT_EQ(JsonQuote("a b=c/d'e"), "\"a b=c/d'e\"");
}

TEST(JsonQuote, QuotesAndBackslashes) {
  EXPECT_EQ(JsonQuote("\""), R"("\"")");
  EXPECT_EQ(JsonQuote("\\"), R"("\\")");
  EXPECT_EQ(JsonQuote(R"(say "hi" \o/)"), R"("say \"hi\" \\o/")");
  EXPECT_EQ(JsonQuote(R"(\")"), R"("\\\"")");
}

TEST(JsonQuote, EveryControlCharacter) {
  for (int c = 0; c < 0x20; ++c) {
    std::string want;
    switch (c) {
      case '\b':
        want = "\\b";
        break;
      case '\f':
        want = "\\f";
        break;
      case '\n':
        want = "\\n";
        break;
      case '\r':
        want = "\\r";
        break;
      case '\t':
        want = "\\t";
        break;
      default: {
        static constexpr char kHex[] = "0123456789abcdef";
        want = std::string("\\u00") + kHex[c >> 4] + kHex[c & 0xF];
      }
    }
    const std::string text(1, static_cast<char>(c));
    EXPECT_EQ(JsonQuote(text), "\"" + want + "\"") << "byte " << c;
  }
}

TEST(JsonQuote, ControlCharactersSpelledOut) {
  // Written out so a wrong table above cannot hide a wrong result.
  EXPECT_EQ(JsonQuote(std::string("\0", 1)), R"("\u0000")");
  EXPECT_EQ(JsonQuote("\x01\x1f"), R"("\u0001\u001f")");
  EXPECT_EQ(JsonQuote("\x1b[31m"), R"("\u001b[31m")");
  EXPECT_EQ(JsonQuote("a\nb\rc\td\be\ff"), R"("a\nb\rc\td\be\ff")");
  EXPECT_EQ(JsonQuote("\x0b"), R"("\u000b")");
}

TEST(JsonQuote, OtherBytesPassAsTheyAre) {
  EXPECT_EQ(JsonQuote(" "), "\" \"");
  EXPECT_EQ(JsonQuote("\x7f"), "\"\x7f\"");
  EXPECT_EQ(JsonQuote("/"), "\"/\"");
  // UTF-8 (2, 3 and 4 bytes) and a byte that is not UTF-8 at all.
  EXPECT_EQ(JsonQuote("Jos\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"),
            "\"Jos\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"");
  EXPECT_EQ(JsonQuote("\xff\x80"), "\"\xff\x80\"");
}

TEST(JsonQuote, MixedRuns) {
  EXPECT_EQ(JsonQuote("ab\"cd\\ef\ngh"), R"("ab\"cd\\ef\ngh")");
  EXPECT_EQ(JsonQuote("\n\n"), R"("\n\n")");
  EXPECT_EQ(JsonQuote("x\n"), R"("x\n")");
  EXPECT_EQ(JsonQuote("\nx"), R"("\nx")");
}

TEST(AppendJsonString, AppendsAfterWhatIsThere) {
  std::string out = "{\"k\":";
  AppendJsonString("v\"1", &out);
  out += ',';
  AppendJsonString("", &out);
  EXPECT_EQ(out, R"({"k":"v\"1","")");
}

TEST(AppendJsonString, MatchesJsonQuote) {
  const std::string text = "tab\there \xC3\xA9 \x02 \"q\" \\";
  std::string out;
  AppendJsonString(text, &out);
  EXPECT_EQ(out, JsonQuote(text));
}

TEST(AppendJsonString, ReusesCapacity) {
  std::string out;
  out.reserve(64);
  const char* data = out.data();
  AppendJsonString("plain \"and\" \x01", &out);
  EXPECT_EQ(out, R"("plain \"and\" \u0001")");
  EXPECT_EQ(out.data(), data);
}

}  // namespace
}  // namespace idsync::base
