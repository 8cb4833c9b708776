#include "idsync/filter/filter.h"

#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace idsync::filter {
namespace {

std::string ParseError(std::string_view text) {
  Result<Filter> f = Filter::Parse(text);
  if (f.ok()) return "parsed as " + f->ToString();
  if (f.status().code() != StatusCode::kInvalidArgument) return f.status().ToString();
  return f.status().message();
}

// ---------------------------------------------------------------------------
// Grammar

struct RoundTripCase {
  std::string_view input;
  std::string_view printed;  // ToString() of the parsed filter
};

TEST(FilterParse, ValidFiltersParseAndPrint) {
  const std::vector<RoundTripCase> cases = {
      {"(cn=John Smith)", "(cn=John Smith)"},
      {"(cn=)", "(cn=)"},
      {"(mail=*)", "(mail=*)"},
      {"(cn~=jon)", "(cn~=jon)"},
      {"(uidNumber>=1000)", "(uidNumber>=1000)"},
      {"(uidNumber<=1000)", "(uidNumber<=1000)"},
      {"(cn=Jo*)", "(cn=Jo*)"},
      {"(cn=*Smith)", "(cn=*Smith)"},
      {"(cn=*oh*)", "(cn=*oh*)"},
      {"(cn=J*o*n*S*h)", "(cn=J*o*n*S*h)"},
      {"(&(objectClass=user)(mail=*))", "(&(objectClass=user)(mail=*))"},
      {"(|(cn=a)(cn=b)(cn=c))", "(|(cn=a)(cn=b)(cn=c))"},
      {"(!(cn=a))", "(!(cn=a))"},
      {"(&(|(a=1)(!(b=2)))(c=*))", "(&(|(a=1)(!(b=2)))(c=*))"},
      {"(&(a=1))", "(&(a=1))"},
      // Extensible matches, every form RFC 4515 allows.
      {"(userAccountControl:1.2.840.113556.1.4.803:=2)",
       "(userAccountControl:1.2.840.113556.1.4.803:=2)"},
      {"(cn:dn:2.5.13.5:=John)", "(cn:dn:2.5.13.5:=John)"},
      {"(cn:caseExactMatch:=John)", "(cn:caseExactMatch:=John)"},
      {"(:1.2.840.113556.1.4.804:=3)", "(:1.2.840.113556.1.4.804:=3)"},
      {"(:dn:caseIgnoreMatch:=sales)", "(:dn:caseIgnoreMatch:=sales)"},
      {"(ou:dn:=Sales)", "(ou:dn:=Sales)"},
      {"(ou:DN:=Sales)", "(ou:dn:=Sales)"},
      {"(cn:=x)", "(cn:=x)"},
      {"(member:1.2.840.113556.1.4.1941:=cn=a,dc=b)",
       "(member:1.2.840.113556.1.4.1941:=cn=a,dc=b)"},
      // Attribute descriptions: options and OIDs.
      {"(member;range=0-1499=*)", "(member;range=0-1499=*)"},
      {"(userCertificate;binary=*)", "(userCertificate;binary=*)"},
      {"(cn;lang-en=x)", "(cn;lang-en=x)"},
      {"(2.5.4.3=John)", "(2.5.4.3=John)"},
      {"(msDS-Some_Attr=1)", "(msDS-Some_Attr=1)"},
      // Escapes decode and are re-escaped in lower-case hex.
      {"(cn=\\2a)", "(cn=\\2a)"},
      {"(cn=a\\28b\\29c)", "(cn=a\\28b\\29c)"},
      {"(cn=\\5C)", "(cn=\\5c)"},
      {"(cn=\\00)", "(cn=\\00)"},
      {"(cn=\\4a\\6fhn)", "(cn=John)"},
      {"(cn=Jos\\c3\\a9)", "(cn=José)"},
      {"(cn=\\ff)", "(cn=\\ff)"},
      {"(cn=José Müller)", "(cn=José Müller)"},
      {"(cn=王小明)", "(cn=王小明)"},
      // Whitespace: around the whole filter, between list members.
      {"  (cn=a)\n", "(cn=a)"},
      {"(& (a=1)\n     (b=2) )", "(&(a=1)(b=2))"},
      {"(! (a=1) )", "(!(a=1))"},
      // Inner spaces belong to the value.
      {"(cn= a b )", "(cn= a b )"},
      // Outer parentheses are optional for one item.
      {"mail=*", "(mail=*)"},
      {"  cn=John Smith  ", "(cn=John Smith)"},
      {"userAccountControl:1.2.840.113556.1.4.803:=2",
       "(userAccountControl:1.2.840.113556.1.4.803:=2)"},
  };
  for (const RoundTripCase& c : cases) {
    Result<Filter> f = Filter::Parse(c.input);
    ASSERT_TRUE(f.ok()) << c.input << ": " << f.status().ToString();
    EXPECT_EQ(f->ToString(), c.printed) << c.input;
    // Printing is a fixed point: what is printed parses to the same filter.
    Result<Filter> again = Filter::Parse(f->ToString());
    ASSERT_TRUE(again.ok()) << f->ToString() << ": " << again.status().ToString();
    EXPECT_EQ(again->ToString(), c.printed) << c.input;
  }
}

struct ErrorCase {
  std::string_view input;
  std::size_t offset;
};

TEST(FilterParse, InvalidFiltersNameTheOffset) {
  const std::vector<ErrorCase> cases = {
      {"", 0},
      {"   ", 3},
      {"(", 1},
      {"()", 1},
      {"(cn=a", 5},
      {"(cn=a))", 6},
      {"(cn=a)(cn=b)", 6},
      {"(=a)", 1},
      {"(cn a=b)", 3},
      {"(cn)", 3},
      {"(cn!=a)", 3},
      {"(cn~a)", 4},
      {"(cn>a)", 4},
      {"(&)", 2},
      {"(|cn=a)", 2},
      {"(!)", 2},
      {"(!(a=1)(b=2))", 7},
      {"(cn=a(b)", 5},
      {"(cn=\\2)", 4},
      {"(cn=\\zz)", 4},
      {"(cn=a\\", 5},
      {"(cn>=a*)", 6},
      {"(cn~=*)", 5},
      {"(cn=a**b)", 6},
      {"(:=x)", 1},
      {"(:dn:=x)", 1},
      {"(cn:dn)", 6},
      {"(cn:1.2.3:dn:=x)", 10},
      {"(cn:1.:=x)", 6},
      {"(cn:01.2:=x)", 4},
      {"(cn:1:=x)", 5},
      {"(cn:=x*)", 6},
      {"(1cn=x)", 2},
      {"(cn;=x)", 4},
      {"(cn=a)x", 6},
      {"cn=a)", 4},
      {std::string_view("(cn=a\0b)", 8), 5},
  };
  for (const ErrorCase& c : cases) {
    Result<Filter> f = Filter::Parse(c.input);
    ASSERT_FALSE(f.ok()) << "'" << c.input << "' parsed as " << f->ToString();
    EXPECT_EQ(f.status().code(), StatusCode::kInvalidArgument) << c.input;
    std::string want = "offset " + std::to_string(c.offset) + ":";
    EXPECT_NE(f.status().message().find(want), std::string::npos)
        << "'" << c.input << "': " << f.status().message() << " (want " << want << ")";
  }
}

TEST(FilterParse, DeepNestingIsRefusedNotCrashed) {
  std::string text;
  for (int i = 0; i < 10000; ++i) text += "(!";
  text += "(a=1)";
  for (int i = 0; i < 10000; ++i) text += ")";
  EXPECT_NE(ParseError(text).find("nested too deeply"), std::string::npos);
}

TEST(FilterParse, ModerateNestingIsFine) {
  std::string text;
  for (int i = 0; i < 50; ++i) text += "(&";
  text += "(a=1)";
  for (int i = 0; i < 50; ++i) text += ")";
  EXPECT_TRUE(Filter::Parse(text).ok());
}

// ---------------------------------------------------------------------------
// CheckEvaluable

TEST(FilterCheck, KnownRulesAreEvaluable) {
  for (std::string_view text :
       {"(cn=a)", "(uac:1.2.840.113556.1.4.803:=2)", "(uac:1.2.840.113556.1.4.804:=3)",
        "(cn:caseIgnoreMatch:=a)", "(cn:caseexactmatch:=a)", "(cn:2.5.13.2:=a)", "(cn:2.5.13.5:=a)",
        "(ou:dn:=Sales)", "(&(a=1)(!(cn:2.5.13.5:=a)))"}) {
    Result<Filter> f = Filter::Parse(text);
    ASSERT_TRUE(f.ok()) << text;
    EXPECT_TRUE(f->CheckEvaluable().ok()) << text << ": " << f->CheckEvaluable().ToString();
  }
}

TEST(FilterCheck, InChainRuleIsReported) {
  Result<Filter> f =
      Filter::Parse("(&(objectClass=user)(memberOf:1.2.840.113556.1.4.1941:=cn=g,dc=x))");
  ASSERT_TRUE(f.ok());
  Status s = f->CheckEvaluable();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("1.2.840.113556.1.4.1941"), std::string::npos) << s.message();
}

TEST(FilterCheck, BitRuleWithNonIntegerValueIsReported) {
  Result<Filter> f = Filter::Parse("(uac:1.2.840.113556.1.4.803:=two)");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->CheckEvaluable().code(), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------
// Entry

TEST(FilterEntry, GetIgnoresCaseAndOptions) {
  Entry e{"cn=a", {{"CN", {"A"}}, {"userCertificate;binary", {"xyz"}}, {"empty", {}}}};
  ASSERT_NE(e.Get("cn"), nullptr);
  EXPECT_EQ(e.Get("cn")->front(), "A");
  ASSERT_NE(e.Get("USERCERTIFICATE"), nullptr);
  EXPECT_EQ(e.First("usercertificate"), "xyz");
  EXPECT_EQ(e.First("userCertificate;binary"), "xyz");
  EXPECT_EQ(e.Get("mail"), nullptr);
  EXPECT_EQ(e.First("mail"), "");
  EXPECT_EQ(e.First("empty"), "");
}

// ---------------------------------------------------------------------------
// Evaluation

Entry Alice() {
  return Entry{"CN=Alice  Example,OU=Sales\\, EMEA,DC=corp,DC=example",
               {{"objectClass", {"top", "person", "User"}},
                {"cn", {"Alice  Example"}},
                {"sn", {"Example"}},
                {"givenName", {"Alice"}},
                {"mail", {"Alice@Corp.Example"}},
                {"uidNumber", {"1500"}},
                {"employeeNumber", {"0042"}},
                {"title", {"b"}},
                {"userAccountControl", {"512"}},
                {"description", {"a*b (c) \\ d"}},
                {"displayName", {"José Müller"}},
                {"otherName", {"王小明"}},
                {"member;range=0-1499", {"cn=x,dc=corp"}},
                {"groupType", {"-2147483646"}}}};
}

Entry DisabledBob() {
  return Entry{"cn=Bob,ou=people,dc=corp,dc=example",
               {{"objectClass", {"user"}},
                {"cn", {"Bob"}},
                {"userAccountControl", {"514"}},
                {"uidNumber", {"999"}}}};
}

Entry Bare() { return Entry{"cn=bare", {}}; }

struct EvalCase {
  std::string_view filter;
  Entry (*entry)();
  bool matches;
};

TEST(FilterMatches, Table) {
  const std::vector<EvalCase> cases = {
      // Equality: case and insignificant spaces do not matter.
      {"(cn=Alice Example)", Alice, true},
      {"(CN=  alice   EXAMPLE )", Alice, true},
      {"(cn=AliceExample)", Alice, false},
      {"(cn=Alice)", Alice, false},
      {"(mail=alice@corp.example)", Alice, true},
      {"(objectClass=user)", Alice, true},
      {"(OBJECTCLASS=PERSON)", Alice, true},
      {"(objectClass=group)", Alice, false},
      {"(cn~=alice example)", Alice, true},
      {"(cn:=alice example)", Alice, true},
      // Integers compare as integers when both sides are integers.
      {"(employeeNumber=42)", Alice, true},
      {"(employeeNumber=+42)", Alice, true},
      {"(employeeNumber=43)", Alice, false},
      // Absent attributes.
      {"(nosuch=x)", Alice, false},
      {"(nosuch=*)", Alice, false},
      {"(!(nosuch=*))", Alice, true},
      // Presence.
      {"(mail=*)", Alice, true},
      {"(MAIL=*)", Alice, true},
      {"(mail=*)", Bare, false},
      {"(objectClass=*)", Bare, true},
      // Options in the filter or the entry do not change the attribute.
      {"(member=cn=X,dc=corp)", Alice, true},
      {"(member;range=0-1499=*)", Alice, true},
      {"(cn;lang-en=alice example)", Alice, true},
      // Substrings, several parts, case-insensitive.
      {"(cn=ali*)", Alice, true},
      {"(cn=*EXAMPLE)", Alice, true},
      {"(cn=*ce ex*)", Alice, true},
      {"(cn=a*i*e*x*e)", Alice, true},
      {"(cn=a*x*i)", Alice, false},
      {"(cn=Alice *)", Alice, true},
      {"(cn=Alic *)", Alice, false},
      {"(cn=*ample*ample)", Alice, false},
      {"(cn=Alice Example*Example)", Alice, false},
      {"(mail=*@corp.example)", Alice, true},
      {"(mail=*@other.example)", Alice, false},
      // Ordering: numeric when both sides are integers, else strings.
      {"(uidNumber>=1000)", Alice, true},
      {"(uidNumber>=1500)", Alice, true},
      {"(uidNumber>=1501)", Alice, false},
      {"(uidNumber<=1500)", Alice, true},
      {"(uidNumber<=999)", Alice, false},
      {"(uidNumber>=1000)", DisabledBob, false},
      {"(uidNumber<=1000)", DisabledBob, true},
      {"(title>=A)", Alice, true},
      {"(title>=C)", Alice, false},
      {"(title<=B)", Alice, true},
      {"(sn<=f)", Alice, true},
      {"(sn>=F)", Alice, false},
      // Boolean nesting.
      {"(&(objectClass=user)(mail=*))", Alice, true},
      {"(&(objectClass=user)(mail=*))", DisabledBob, false},
      {"(|(cn=nobody)(cn=bob))", DisabledBob, true},
      {"(|(cn=nobody)(cn=other))", DisabledBob, false},
      {"(!(cn=bob))", DisabledBob, false},
      {"(&(|(cn=x)(sn=example))(!(mail=*@other.example)))", Alice, true},
      {"(&(|(cn=x)(sn=y))(!(mail=*@other.example)))", Alice, false},
      // Active Directory bit rules on userAccountControl.
      {"(userAccountControl:1.2.840.113556.1.4.803:=2)", DisabledBob, true},
      {"(userAccountControl:1.2.840.113556.1.4.803:=2)", Alice, false},
      {"(!(userAccountControl:1.2.840.113556.1.4.803:=2))", Alice, true},
      {"(userAccountControl:1.2.840.113556.1.4.803:=514)", DisabledBob, true},
      {"(userAccountControl:1.2.840.113556.1.4.803:=515)", DisabledBob, false},
      {"(userAccountControl:1.2.840.113556.1.4.804:=3)", DisabledBob, true},
      {"(userAccountControl:1.2.840.113556.1.4.804:=3)", Alice, false},
      {"(userAccountControl:1.2.840.113556.1.4.804:=513)", Alice, true},
      // Negative (signed 32-bit) values, either spelling of the bits.
      {"(groupType:1.2.840.113556.1.4.803:=2147483648)", Alice, true},
      {"(groupType:1.2.840.113556.1.4.803:=-2147483648)", Alice, true},
      {"(groupType:1.2.840.113556.1.4.803:=2)", Alice, true},
      {"(groupType:1.2.840.113556.1.4.803:=4)", Alice, false},
      {"(groupType:1.2.840.113556.1.4.804:=-2147483648)", Alice, true},
      // A bit rule on a non-integer attribute never matches.
      {"(cn:1.2.840.113556.1.4.803:=2)", Alice, false},
      // A bit rule without an attribute looks at every integer attribute.
      {"(:1.2.840.113556.1.4.803:=2)", DisabledBob, true},
      // Named and numbered string rules.
      {"(cn:caseIgnoreMatch:=ALICE EXAMPLE)", Alice, true},
      {"(cn:2.5.13.2:=alice example)", Alice, true},
      {"(cn:caseExactMatch:=Alice Example)", Alice, true},
      {"(cn:caseExactMatch:=alice example)", Alice, false},
      {"(cn:2.5.13.5:= Alice   Example)", Alice, true},
      // :dn: also looks at the RDNs of the entry's DN.
      {"(ou:dn:=sales, emea)", Alice, true},
      {"(ou=sales, emea)", Alice, false},
      {"(dc:dn:=corp)", Alice, true},
      {"(dc:dn:caseExactMatch:=corp)", Alice, true},
      {"(dc:dn:caseExactMatch:=CORP)", Alice, false},
      {"(:dn:caseIgnoreMatch:=Sales\\2c EMEA)", Alice, true},
      {"(:caseIgnoreMatch:=Sales\\2c EMEA)", Alice, false},
      {"(:caseIgnoreMatch:=example)", Alice, true},
      // Unknown rules are Undefined: false, and so is their negation.
      {"(memberOf:1.2.840.113556.1.4.1941:=cn=g,dc=x)", Alice, false},
      {"(!(memberOf:1.2.840.113556.1.4.1941:=cn=g,dc=x))", Alice, false},
      {"(|(memberOf:1.2.840.113556.1.4.1941:=cn=g)(cn=alice example))", Alice, true},
      {"(&(memberOf:1.2.840.113556.1.4.1941:=cn=g)(cn=alice example))", Alice, false},
      {"(!(&(memberOf:1.2.840.113556.1.4.1941:=cn=g)(cn=nobody)))", Alice, true},
      {"(!(uac:1.2.840.113556.1.4.803:=two))", Alice, false},
      // Escaped values match the decoded bytes.
      {"(description=a\\2ab \\28c\\29 \\5c d)", Alice, true},
      {"(description=a*\\28c\\29*)", Alice, true},
      {"(description=\\2a*)", Alice, false},
      {"(description=*\\2a*)", Alice, true},
      {"(displayName=Jos\\c3\\a9 M\\c3\\bcller)", Alice, true},
      // Non-ASCII values compare byte for byte (after ASCII folding).
      {"(displayName=josé müller)", Alice, true},
      {"(displayName=JOSÉ MÜLLER)", Alice, false},
      {"(otherName=王小明)", Alice, true},
      {"(otherName=*小*)", Alice, true},
      {"(otherName=王小)", Alice, false},
      // Bare items.
      {"mail=*", Alice, true},
      {"cn=bob", DisabledBob, true},
  };
  for (const EvalCase& c : cases) {
    Result<Filter> f = Filter::Parse(c.filter);
    ASSERT_TRUE(f.ok()) << c.filter << ": " << f.status().ToString();
    Entry entry = c.entry();
    EXPECT_EQ(f->Matches(entry), c.matches) << c.filter << " on " << entry.dn;
  }
}

TEST(FilterMatches, ValueOnlyOfOtherAttributeDoesNotMatch) {
  Result<Filter> f = Filter::Parse("(sn=Alice)");
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->Matches(Alice()));
}

TEST(FilterMatches, MultiValuedAttributeMatchesAnyValue) {
  Entry e{"cn=g", {{"member", {"cn=a", "cn=b", "cn=c"}}}};
  Result<Filter> f = Filter::Parse("(member=CN=B)");
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->Matches(e));
}

TEST(FilterMatches, MovedFilterStillWorks) {
  Result<Filter> parsed = Filter::Parse("(cn=bob)");
  ASSERT_TRUE(parsed.ok());
  Filter f = std::move(parsed).value();
  Filter g = std::move(f);
  EXPECT_TRUE(g.Matches(DisabledBob()));
}

}  // namespace
}  // namespace idsync::filter
