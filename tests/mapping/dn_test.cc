#include "idsync/mapping/dn.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "idsync/testing/status_matchers.h"

namespace idsync::mapping {
namespace {

struct NormalCase {
  std::string dn;
  std::string normal;
};

TEST(NormalizeDn, NormalForms) {
  const std::vector<NormalCase> cases = {
      {"", ""},
      {"   ", ""},
      {"CN=Studio Admins,OU=Groups,DC=corp,DC=example",
       "cn=studio admins,ou=groups,dc=corp,dc=example"},
      // Spaces around separators are insignificant, inside values they are kept.
      {" CN = Studio Admins , OU=Groups ,DC=corp", "cn=studio admins,ou=groups,dc=corp"},
      {"cn=a  b,dc=x", "cn=a  b,dc=x"},
      // RFC 2253 ';' separator.
      {"cn=a;dc=x", "cn=a,dc=x"},
      // Escapes are undone, then only what needs it is escaped again.
      {"cn=Doe\\, John,dc=x", "cn=doe\\, john,dc=x"},
      {"cn=Doe\\2C John,dc=x", "cn=doe\\, john,dc=x"},
      {"cn=Doe\\2c John,dc=x", "cn=doe\\, john,dc=x"},
      {"cn=a\\+b", "cn=a\\+b"},
      {"cn=a\\2Bb", "cn=a\\+b"},
      {"cn=say \\\"hi\\\"", "cn=say \\\"hi\\\""},
      {"cn=back\\\\slash", "cn=back\\\\slash"},
      {"cn=\\<tag\\>", "cn=\\<tag\\>"},
      {"cn=semi\\;colon", "cn=semi\\;colon"},
      {"cn=a\\=b", "cn=a=b"},
      {"cn=a=b", "cn=a=b"},
      {"cn=\\#hash", "cn=\\#hash"},
      {"cn=mid#hash", "cn=mid#hash"},
      {"cn=Studio\\20Admins", "cn=studio admins"},
      // Leading and trailing escaped spaces are kept, unescaped ones are not.
      {"cn=\\ lead", "cn=\\ lead"},
      {"cn=trail\\ ", "cn=trail\\ "},
      {"cn=trail\\20", "cn=trail\\ "},
      {"cn=trail\\  ,dc=x", "cn=trail\\ ,dc=x"},
      {"cn=two\\ \\ ", "cn=two \\ "},
      // Hex pairs can spell UTF-8; non-ASCII letters are case-folded too.
      {"cn=\\C3\\A9t\\c3\\a9", "cn=\xc3\xa9t\xc3\xa9"},
      {"cn=\xc3\x89t\xc3\xa9", "cn=\xc3\xa9t\xc3\xa9"},
      {"CN=\\C3\\89quipe,DC=x", "cn=\xc3\xa9quipe,dc=x"},  // an escaped É
      {"cn=\xce\x9f\xce\x9c\xce\x86\xce\x94\xce\x91",
       "cn=\xce\xbf\xce\xbc\xce\xac\xce\xb4\xce\xb1"},  // ΟΜΆΔΑ
      {"cn=\xd0\x9e\xd0\xa2\xd0\x94\xd0\x81\xd0\x9b",
       "cn=\xd0\xbe\xd1\x82\xd0\xb4\xd1\x91\xd0\xbb"},  // ОТДЁЛ
      {"cn=Stra\xc3\x9f", "cn=stra\xc3\x9f"},           // ß stays ß
      {"cn=\\FFX\xc3", "cn=\xffx\xc3"},                 // bytes that are not UTF-8 stay
      {"cn=\xc3\x89\\2C", "cn=\xc3\xa9\\,"},            // folded, then re-escaped
      // '#' hex-string values are kept, lower-cased.
      {"cn=#04024869", "cn=#04024869"},
      {"CN=#04AbCd,dc=x", "cn=#04abcd,dc=x"},
      // Multi-valued RDNs: parts sorted.
      {"uid=jd+CN=John Doe,dc=x", "cn=john doe+uid=jd,dc=x"},
      {"CN=John Doe + uid=jd,dc=x", "cn=john doe+uid=jd,dc=x"},
      // OIDs as attribute types.
      {"2.5.4.3=Ana,0.9.2342.19200300.100.1.25=corp", "cn=ana,dc=corp"},
      {"OID.2.5.4.11=Groups", "ou=groups"},
      {"1.2.3.4=x", "1.2.3.4=x"},
      // Empty values are allowed.
      {"cn=,dc=x", "cn=,dc=x"},
      // RFC 2253 quoted values.
      {"cn=\"Doe, John \",dc=x", "cn=doe\\, john\\ ,dc=x"},
      {"x-Attr-2=V", "x-attr-2=v"},
  };
  for (const NormalCase& c : cases) {
    Result<std::string> normal = NormalizeDn(c.dn);
    ASSERT_TRUE(normal.ok()) << c.dn << ": " << normal.status().ToString();
    EXPECT_EQ(*normal, c.normal) << c.dn;
    // The normal form is a fixed point.
    Result<std::string> again = NormalizeDn(*normal);
    ASSERT_TRUE(again.ok()) << *normal;
    EXPECT_EQ(*again, *normal);
  }
}

TEST(DnEquals, VariantsOfOneName) {
  const std::vector<std::vector<std::string>> groups = {
      {"CN=Studio Admins, OU=Groups,DC=corp,DC=example",
       "cn=studio admins,ou=groups,dc=corp,dc=example",
       "CN=Studio\\20Admins,OU=Groups,DC=Corp,DC=Example",
       "cn = Studio Admins ; ou = Groups ; dc = corp ; dc = example",
       "2.5.4.3=STUDIO ADMINS,ou=GROUPS,dc=CORP,dc=EXAMPLE"},
      {"CN=Doe\\, John,OU=People,DC=corp", "CN=Doe\\2C John,OU=People,DC=corp",
       "cn=\"Doe, John\",ou=people,dc=corp"},
      {"cn=a+uid=b,dc=x", "UID=b + CN=a,DC=x"},
      {"cn=\xc3\x89quipe,dc=corp", "CN=\xc3\xa9quipe,DC=corp", "cn=\\C3\\89QUIPE,dc=corp",
       "cn=\xc3\xa9QUIPE,dc=corp"},                              // Équipe
      {"cn=\xd0\x90\xd0\xaf,dc=x", "cn=\xd0\xb0\xd1\x8f,dc=x"},  // АЯ, ая
  };
  for (const auto& group : groups) {
    for (const std::string& a : group) {
      for (const std::string& b : group) EXPECT_TRUE(DnEquals(a, b)) << a << " vs " << b;
    }
  }
  // Different entries stay different.
  EXPECT_FALSE(DnEquals("cn=a,dc=x", "cn=a,dc=y"));
  EXPECT_FALSE(DnEquals("cn=a,dc=x", "cn=a"));
  EXPECT_FALSE(DnEquals("cn=a\\ ", "cn=a"));
  EXPECT_FALSE(DnEquals("cn=#41", "cn=\\#41"));
  EXPECT_FALSE(DnEquals("cn=a+uid=b", "cn=a,uid=b"));
  EXPECT_FALSE(DnEquals("cn=stra\xc3\x9f", "cn=strass"));  // no full folding
  // Invalid DNs equal nothing, not even themselves.
  EXPECT_FALSE(DnEquals("CN", "CN"));
}

TEST(NormalizeDn, RejectsInvalid) {
  const std::vector<std::string> cases = {
      "CN",                       // no '='
      "=x",                       // no type
      "cn=a,",                    // empty last RDN
      ",cn=a",                    // empty first RDN
      "cn=a,,dc=x",               // empty RDN between
      "cn=a+",                    // empty AVA
      "cn=a\\",                   // unterminated escape
      "cn=a\\2",                  // half a hex pair
      "cn=a\\2G",                 // bad hex
      "cn=a\\x",                  // escape of a plain character
      "cn=#",                     // empty hex string
      "cn=#abc",                  // odd hex digits
      "cn=#zz",                   // not hex
      "cn=#41 x",                 // text after a hex string
      "cn=\"open",                // unterminated quote
      "cn=\"q\" x",               // text after a quoted value
      "1cn=x",                    // type neither descr nor OID
      "2.5..4=x",                 // bad OID
      "2.5.4.=x",                 // bad OID
      "c n=x",                    // space inside a type
      "cn=a\\00",                 // NUL
      std::string("cn=a\0b", 6),  // raw NUL
  };
  for (const std::string& dn : cases) {
    Result<std::string> normal = NormalizeDn(dn);
    ASSERT_FALSE(normal.ok()) << dn << " -> " << *normal;
    EXPECT_THAT(normal, StatusIs(StatusCode::kInvalidArgument)) << dn;
  }
}

TEST(LooksLikeDn, ContainsEquals) {
  EXPECT_TRUE(LooksLikeDn("CN=Studio Admins,DC=corp"));
  EXPECT_TRUE(LooksLikeDn("x=y"));
  EXPECT_FALSE(LooksLikeDn("Studio Admins"));
  EXPECT_FALSE(LooksLikeDn("qa-*"));
}

}  // namespace
}  // namespace idsync::mapping
