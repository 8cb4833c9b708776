#include "idsync/ldif/ldif.h"

#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace idsync::ldif {
namespace {

std::vector<filter::Entry> MustParse(std::string_view text) {
  Result<std::vector<filter::Entry>> r = ParseLdif(text);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) return {};
  return std::move(r).value();
}

std::vector<std::string> Values(const filter::Entry& e, std::string_view name) {
  const std::vector<std::string>* v = e.Get(name);
  return v == nullptr ? std::vector<std::string>{} : *v;
}

TEST(ParseLdif, ReadsRecordsSeparatedByBlankLines) {
  auto entries = MustParse(
      "dn: cn=a,dc=x\n"
      "objectClass: person\n"
      "cn: a\n"
      "\n"
      "\n"
      "dn: cn=b,dc=x\n"
      "cn: b\n");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].dn, "cn=a,dc=x");
  EXPECT_EQ(entries[0].First("objectClass"), "person");
  EXPECT_EQ(entries[1].dn, "cn=b,dc=x");
  EXPECT_EQ(entries[1].First("cn"), "b");
}

TEST(ParseLdif, EmptyInputHasNoEntries) {
  EXPECT_TRUE(MustParse("").empty());
  EXPECT_TRUE(MustParse("\n\n# only a comment\n").empty());
  EXPECT_TRUE(MustParse("version: 1\n").empty());
}

TEST(ParseLdif, AcceptsVersionLine) {
  auto entries = MustParse("version: 1\ndn: cn=a\ncn: a\n");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].dn, "cn=a");
}

TEST(ParseLdif, CollectsRepeatedAttributesInOrder) {
  auto entries = MustParse(
      "dn: cn=g\n"
      "member: cn=1\n"
      "cn: g\n"
      "Member: cn=2\n"
      "MEMBER: cn=3\n");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(Values(entries[0], "member"), (std::vector<std::string>{"cn=1", "cn=2", "cn=3"}));
  ASSERT_EQ(entries[0].attributes.size(), 2u);
  EXPECT_EQ(entries[0].attributes[0].first, "member");  // the first spelling is kept
}

TEST(ParseLdif, KeepsAttributeOptionsInTheName) {
  auto entries = MustParse(
      "dn: cn=a\n"
      "cn;lang-de: Anna\n"
      "cn: Ann\n"
      "userCertificate;binary:: AAEC\n");
  ASSERT_EQ(entries.size(), 1u);
  ASSERT_EQ(entries[0].attributes.size(), 3u);
  EXPECT_EQ(entries[0].attributes[0].first, "cn;lang-de");
  EXPECT_EQ(entries[0].attributes[1].first, "cn");
  EXPECT_EQ(entries[0].attributes[2].first, "userCertificate;binary");
  EXPECT_EQ(entries[0].attributes[2].second.front(), std::string("\x00\x01\x02", 3));
}

TEST(ParseLdif, DecodesBase64ValuesAndDn) {
  // "uid=josé,dc=x" and "José Müller" in base64.
  auto entries = MustParse(
      "dn:: dWlkPWpvc8OpLGRjPXg=\n"
      "cn:: Sm9zw6kgTcO8bGxlcg==\n"
      "description::\n"
      "sn::U2hvcnQ\n");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].dn, "uid=josé,dc=x");
  EXPECT_EQ(entries[0].First("cn"), "José Müller");
  EXPECT_EQ(entries[0].First("description"), "");
  EXPECT_EQ(entries[0].First("sn"), "Short");  // padding left out
}

TEST(ParseLdif, UnfoldsContinuationLines) {
  auto entries = MustParse(
      "dn: cn=a very long name,ou=some uni\n"
      " t,dc=example\n"
      "description: first\n"
      "  second\n"
      "  third\n"
      "cn:: Sm9zw6kg\n"
      " TcO8bGxlcg==\n");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].dn, "cn=a very long name,ou=some unit,dc=example");
  EXPECT_EQ(entries[0].First("description"), "first second third");
  EXPECT_EQ(entries[0].First("cn"), "José Müller");
}

TEST(ParseLdif, SkipsCommentsIncludingFoldedOnes) {
  auto entries = MustParse(
      "# header comment\n"
      "#  folded comment\n"
      " dn: not a record\n"
      "dn: cn=a\n"
      "# comment inside a record\n"
      "cn: a\n"
      "#cn: not a value\n");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(Values(entries[0], "cn"), std::vector<std::string>{"a"});
}

TEST(ParseLdif, AcceptsCrLfLineEndings) {
  auto entries = MustParse(
      "version: 1\r\n"
      "\r\n"
      "dn: cn=a,dc=x\r\n"
      "cn: a\r\n"
      "description: folded\r\n"
      "  value\r\n"
      "\r\n"
      "dn: cn=b,dc=x\r\n"
      "cn: b\r\n");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].dn, "cn=a,dc=x");
  EXPECT_EQ(entries[0].First("cn"), "a");
  EXPECT_EQ(entries[0].First("description"), "folded value");
  EXPECT_EQ(entries[1].First("cn"), "b");
}

TEST(ParseLdif, KeepsNonAsciiValues) {
  auto entries = MustParse(
      "dn: cn=José Müller,dc=x\n"
      "cn: José Müller\n"
      "displayName: 王小明\n");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].dn, "cn=José Müller,dc=x");
  EXPECT_EQ(entries[0].First("cn"), "José Müller");
  EXPECT_EQ(entries[0].First("displayName"), "王小明");
}

TEST(ParseLdif, ReadsAddRecordsAsContent) {
  auto entries = MustParse(
      "dn: cn=a\n"
      "changetype: add\n"
      "cn: a\n");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].Get("changetype"), nullptr);
  EXPECT_EQ(entries[0].First("cn"), "a");
}

TEST(ParseLdif, ToleratesBomAndMissingFinalNewline) {
  auto entries = MustParse(
      "\xEF\xBB\xBF"
      "dn: cn=a\ncn: a");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].First("cn"), "a");
}

TEST(ParseLdif, ReadsTestdataFile) {
  std::ifstream in(IDSYNC_TESTDATA_DIR "/ldif/corp.ldif", std::ios::binary);
  ASSERT_TRUE(in);
  std::stringstream buffer;
  buffer << in.rdbuf();
  auto entries = MustParse(buffer.str());
  ASSERT_EQ(entries.size(), 11u);
  EXPECT_EQ(entries[0].dn, "dc=corp,dc=example");
  EXPECT_EQ(entries[3].dn, "uid=jose,ou=people,dc=corp,dc=example");
  EXPECT_EQ(entries[3].First("cn"), "José Müller");
  EXPECT_EQ(entries[4].First("cn"), "王小明");
  EXPECT_EQ(entries[4].First("description"),
            "a long description that an exporter folded because it is longer than "
            "seventy-six characters");
}

struct ErrorCase {
  std::string_view text;
  int line;
  std::string_view mentions;
};

TEST(ParseLdif, ErrorsNameTheLine) {
  const std::vector<ErrorCase> cases = {
      {"dn: cn=a\ncn:: not*base64\n", 2, "base64"},
      {"dn: cn=a\ncn:: QQ=\n", 2, "base64"},
      {"dn: cn=a\ncn:: Q\n", 2, "base64"},
      {"dn:: ???\n", 1, "base64"},
      {"dn: cn=a\njpegPhoto:< file:///tmp/photo.jpg\n", 2, "not supported"},
      {"dn: cn=a\ncn a\n", 2, "attribute: value"},
      {"dn: cn=a\n: a\n", 2, "attribute name"},
      {"dn: cn=a\nc n: a\n", 2, "attribute name"},
      {"cn: a\n", 1, "dn:"},
      {"# c\n\nobjectClass: top\ndn: cn=a\n", 3, "dn:"},
      {" continued\n", 1, "continuation"},
      {"dn: cn=a\n\n x\n", 3, "continuation"},
      {"version: 2\ndn: cn=a\n", 1, "version"},
      {"dn: cn=a\nchangetype: modify\nreplace: cn\ncn: b\n-\n", 2, "changetype"},
      {"dn: cn=a\nchangetype: delete\n", 2, "changetype"},
      {"dn: cn=a\nchangetype: modrdn\n", 2, "changetype"},
      {"dn: cn=a\ncn: a\n-\n", 3, "'-'"},
      {"dn: cn=a\ncontrol: 1.2.840.113556.1.4.805 true\nchangetype: delete\n", 2, "control"},
      {"dn: cn=a\ncn: a\ndn: cn=b\n", 3, "second 'dn:'"},
      {"dn: cn=a\r\ncn: a\r\n\r\nfoo\r\n", 4, "attribute: value"},
      {"dn: cn=a\ndescription: x\n y\ncn:: =\n", 4, "base64"},
  };
  for (const ErrorCase& c : cases) {
    Result<std::vector<filter::Entry>> r = ParseLdif(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.text;
    std::string want = "line " + std::to_string(c.line) + ": ";
    EXPECT_TRUE(r.status().message().starts_with(want))
        << c.text << " -> " << r.status().message() << " (want " << want << ")";
    EXPECT_NE(r.status().message().find(c.mentions), std::string::npos)
        << c.text << " -> " << r.status().message();
  }
}

}  // namespace
}  // namespace idsync::ldif
