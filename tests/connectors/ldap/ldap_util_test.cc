#include "ldap_util.h"

#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <ldap.h>

namespace idsync::ldap::internal {
namespace {

using Kind = ldap::BindConfig::Kind;

ldap::LdapConfig Source() {
  ldap::LdapConfig source;
  source.name = "corp";
  source.urls = {"ldaps://dc1.corp.example"};
  source.users.base = "ou=people,dc=corp,dc=example";
  source.groups.base = "ou=groups,dc=corp,dc=example";
  return source;
}

ldap::LdapConfig WithPassword(ldap::LdapConfig source) {
  source.bind.kind = Kind::kSimple;
  source.bind.dn = "cn=svc,dc=corp,dc=example";
  source.bind.password = "hunter2-secret";
  return source;
}

TEST(ParseScheme, KnowsTheThreeSchemesInAnyCase) {
  struct Case {
    std::string url;
    Scheme scheme;
  };
  for (const Case& c : std::vector<Case>{{"ldap://h", Scheme::kLdap},
                                         {"LDAP://h:389", Scheme::kLdap},
                                         {"ldaps://h", Scheme::kLdaps},
                                         {"LdApS://h:636/", Scheme::kLdaps},
                                         {"ldapi://%2Frun%2Fslapd%2Fldapi", Scheme::kLdapi},
                                         {"ldapi://", Scheme::kLdapi}}) {
    Result<Scheme> scheme = ParseScheme(c.url);
    ASSERT_TRUE(scheme.ok()) << c.url;
    EXPECT_EQ(*scheme, c.scheme) << c.url;
  }
}

TEST(ParseScheme, RejectsOtherSchemes) {
  for (std::string url : {"http://h", "ldap:/h", "cldap://h", "", "h:389"}) {
    EXPECT_EQ(ParseScheme(url).status().code(), StatusCode::kInvalidArgument) << url;
  }
}

// What stays on this machine: ldapi:// and 127.0.0.0/8, [::1], localhost
// as hosts; a name that starts like a loopback address is another host.
TEST(IsLoopbackUrl, LdapiAndLoopbackHostsOnly) {
  for (std::string url : {"ldapi://", "LDAPI://%2Frun%2Fldapi", "ldap://127.0.0.1",
                          "ldap://127.255.0.9:389/", "ldaps://[::1]:636", "ldap://LOCALHOST"}) {
    EXPECT_TRUE(IsLoopbackUrl(url)) << url;
  }
  for (std::string url :
       {"ldap://dc1", "ldap://10.0.0.1", "ldap://127.0.0.1.evil.example", "ldap://127.0.0",
        "ldap://127.0.0.256", "ldap://127.0.0.0001", "ldap://[::2]", "ldap://localhost.example",
        "ldap://128.0.0.1", "ldap://127..0.1"}) {
    EXPECT_FALSE(IsLoopbackUrl(url)) << url;
  }
}

// The insecure-bind decision: which (scheme, StartTLS, allow_insecure, bind)
// combinations may connect.
TEST(PlanConnection, RefusesAPasswordInClearUnlessAllowed) {
  struct Case {
    std::string url;
    bool start_tls;
    bool allow_insecure;
    Kind bind;
    bool allowed;
  };
  const std::vector<Case> cases = {
      {"ldap://h", false, false, Kind::kSimple, false},
      {"LDAP://h", false, false, Kind::kSimple, false},
      {"ldap://h", false, true, Kind::kSimple, true},
      {"ldap://h", true, false, Kind::kSimple, true},
      {"ldaps://h", false, false, Kind::kSimple, true},
      {"ldapi://", false, false, Kind::kSimple, true},
      {"ldap://h", false, false, Kind::kAnonymous, true},
      {"ldaps://h", false, false, Kind::kAnonymous, true},
  };
  for (const Case& c : cases) {
    ldap::LdapConfig source = c.bind == Kind::kSimple ? WithPassword(Source()) : Source();
    source.urls = {c.url};
    source.tls.start_tls = c.start_tls;
    source.allow_insecure = c.allow_insecure;
    Result<ConnectPlan> plan = PlanConnection(source, c.url);
    std::string label = c.url + " start_tls=" + std::to_string(c.start_tls) +
                        " allow_insecure=" + std::to_string(c.allow_insecure);
    if (c.allowed) {
      EXPECT_TRUE(plan.ok()) << label << ": " << plan.status().ToString();
    } else {
      EXPECT_EQ(plan.status().code(), StatusCode::kInvalidArgument) << label;
      EXPECT_NE(plan.status().message().find("in clear"), std::string::npos) << label;
      EXPECT_NE(plan.status().message().find("source 'corp'"), std::string::npos) << label;
    }
  }
}

TEST(PlanConnection, RefusalNeverShowsThePassword) {
  ldap::LdapConfig source = WithPassword(Source());
  Result<ConnectPlan> plan = PlanConnection(source, "ldap://h");
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().message().find("hunter2"), std::string::npos);
}

TEST(PlanConnection, RefusesAnEmptyPassword) {
  ldap::LdapConfig source = WithPassword(Source());
  source.bind.password.clear();
  EXPECT_EQ(PlanConnection(source, "ldaps://h").status().code(), StatusCode::kInvalidArgument);
}

TEST(PlanConnection, SaslExternalNeedsLdapiOrAClientCertificateOverTls) {
  struct Case {
    std::string url;
    bool start_tls;
    bool cert;
    bool allowed;
  };
  const std::vector<Case> cases = {
      {"ldapi://", false, false, true}, {"ldaps://h", false, false, false},
      {"ldaps://h", false, true, true}, {"ldap://h", true, true, true},
      {"ldap://h", false, true, false}, {"ldap://h", false, false, false},
  };
  for (const Case& c : cases) {
    ldap::LdapConfig source = Source();
    source.bind.kind = Kind::kSaslExternal;
    source.tls.start_tls = c.start_tls;
    if (c.cert) {
      source.tls.cert = "/etc/idsync/client.crt";
      source.tls.key = "/etc/idsync/client.key";
    }
    Result<ConnectPlan> plan = PlanConnection(source, c.url);
    EXPECT_EQ(plan.ok(), c.allowed) << c.url << " " << plan.status().ToString();
    if (!c.allowed) {
      EXPECT_EQ(plan.status().code(), StatusCode::kInvalidArgument) << c.url;
    }
  }
}

TEST(PlanConnection, TlsSettingsFollowSchemeAndConfig) {
  struct Case {
    std::string url;
    bool start_tls_config;
    bool verify;
    bool start_tls;
    bool tls;
    CertCheck check;
  };
  const std::vector<Case> cases = {
      {"ldap://h", false, true, false, false, CertCheck::kDemand},
      {"ldap://h", true, true, true, true, CertCheck::kDemand},
      {"ldaps://h", false, true, false, true, CertCheck::kDemand},
      // StartTLS is for plain TCP only: ldaps:// is encrypted already and
      // ldapi:// stays on the machine.
      {"ldaps://h", true, true, false, true, CertCheck::kDemand},
      {"ldapi://", true, true, false, false, CertCheck::kDemand},
      {"ldaps://h", false, false, false, true, CertCheck::kNever},
      {"ldap://h", true, false, true, true, CertCheck::kNever},
  };
  for (const Case& c : cases) {
    ldap::LdapConfig source = Source();
    source.tls.start_tls = c.start_tls_config;
    source.tls.verify = c.verify;
    source.tls.ca_file = "/etc/idsync/ca.pem";
    source.connect_timeout = std::chrono::seconds(3);
    source.timeout = std::chrono::seconds(7);
    Result<ConnectPlan> plan = PlanConnection(source, c.url);
    ASSERT_TRUE(plan.ok()) << c.url << " " << plan.status().ToString();
    EXPECT_EQ(plan->start_tls, c.start_tls) << c.url;
    EXPECT_EQ(plan->tls, c.tls) << c.url;
    EXPECT_EQ(plan->cert_check, c.check) << c.url;
    EXPECT_EQ(plan->ca_file, "/etc/idsync/ca.pem");
    EXPECT_EQ(plan->connect_timeout, std::chrono::seconds(3));
    EXPECT_EQ(plan->timeout, std::chrono::seconds(7));
  }
}

TEST(PlanConnection, NotesLocalhostUrls) {
  ldap::LdapConfig source = Source();
  EXPECT_TRUE(PlanConnection(source, "ldaps://localhost:636")->localhost);
  EXPECT_TRUE(PlanConnection(source, "ldaps://LOCALHOST")->localhost);
  EXPECT_FALSE(PlanConnection(source, "ldaps://127.0.0.1:636")->localhost);
  EXPECT_FALSE(PlanConnection(source, "ldaps://localhost.corp.example")->localhost);
  EXPECT_FALSE(PlanConnection(source, "ldapi://")->localhost);
}

TEST(CheckSource, AcceptsAPlainSource) { EXPECT_TRUE(CheckSource(Source()).ok()); }

TEST(CheckSource, RejectsBadSettings) {
  struct Case {
    std::string label;
    void (*edit)(ldap::LdapConfig*);
  };
  const std::vector<Case> cases = {
      {"no url", [](ldap::LdapConfig* s) { s->urls.clear(); }},
      {"bad scheme",
       [](ldap::LdapConfig* s) {
         s->urls = {"ldaps://a", "http://b"};
       }},
      {"clear password on the second url",
       [](ldap::LdapConfig* s) {
         *s = WithPassword(*s);
         s->urls = {"ldaps://a", "ldap://b"};
       }},
      {"empty users.base", [](ldap::LdapConfig* s) { s->users.base = " "; }},
      {"users.base not a DN", [](ldap::LdapConfig* s) { s->users.base = "people"; }},
      {"groups.base not a DN", [](ldap::LdapConfig* s) { s->groups.base = "groups"; }},
      {"page size", [](ldap::LdapConfig* s) { s->page_size = 0; }},
      {"timeout", [](ldap::LdapConfig* s) { s->timeout = config::Duration(0); }},
      {"connect timeout", [](ldap::LdapConfig* s) { s->connect_timeout = config::Duration(0); }},
      {"no email attribute", [](ldap::LdapConfig* s) { s->users.email = ""; }},
      {"no member attribute", [](ldap::LdapConfig* s) { s->groups.member = ""; }},
  };
  for (const Case& c : cases) {
    ldap::LdapConfig source = Source();
    c.edit(&source);
    EXPECT_EQ(CheckSource(source).code(), StatusCode::kInvalidArgument) << c.label;
  }
}

TEST(CheckSource, GroupsAreOptional) {
  ldap::LdapConfig source = Source();
  source.groups.base.clear();
  source.groups.member.clear();
  EXPECT_TRUE(CheckSource(source).ok());
}

TEST(Attributes, UsersAskForWhatTheSnapshotNeedsOnce) {
  ldap::LdapConfig source = Source();
  source.users.email = "mail";
  source.users.name = "displayName";
  EXPECT_EQ(UserAttributes(source), (std::vector<std::string>{"mail", "displayName", "entryUUID"}));
  source.users.id = "employeeNumber";
  EXPECT_EQ(UserAttributes(source),
            (std::vector<std::string>{"mail", "displayName", "employeeNumber", "entryUUID"}));
  source.users.id = "EntryUUID";
  source.users.name = "MAIL";
  EXPECT_EQ(UserAttributes(source), (std::vector<std::string>{"mail", "EntryUUID"}));
  source.flavor = ldap::Flavor::kActiveDirectory;
  source.users.id.clear();
  EXPECT_EQ(UserAttributes(source), (std::vector<std::string>{"mail", "objectGUID"}));
}

TEST(Attributes, GroupsAskForNameMemberAndId) {
  ldap::LdapConfig source = Source();
  source.groups.name = "cn";
  source.groups.member = "uniqueMember";
  EXPECT_EQ(GroupAttributes(source), (std::vector<std::string>{"cn", "uniqueMember", "entryUUID"}));
  source.flavor = ldap::Flavor::kActiveDirectory;
  source.groups.member = "member;binary";
  EXPECT_EQ(GroupAttributes(source), (std::vector<std::string>{"cn", "member", "objectGUID"}));
}

TEST(Filters, ParenthesizeAndCombine) {
  struct Case {
    std::string in;
    std::string out;
  };
  for (const Case& c : std::vector<Case>{{"", "(objectClass=*)"},
                                         {"  ", "(objectClass=*)"},
                                         {"mail=*", "(mail=*)"},
                                         {" (mail=*) ", "(mail=*)"},
                                         {"(&(a=1)(b=2))", "(&(a=1)(b=2))"}}) {
    EXPECT_EQ(Parenthesize(c.in), c.out) << c.in;
  }
  EXPECT_EQ(AndFilter("(objectClass=user)", "userAccountControl:1.2.840.113556.1.4.803:=2"),
            "(&(objectClass=user)(userAccountControl:1.2.840.113556.1.4.803:=2))");
  EXPECT_EQ(AndFilter("", "(x=1)"), "(&(objectClass=*)(x=1))");
}

TEST(FormatGuid, SwapsTheFirstThreeFieldsAndPrintsLowerCase) {
  struct Case {
    std::string bytes;
    std::string text;
  };
  const std::vector<Case> cases = {
      {std::string("\x78\x56\x34\x12\x34\x12\x78\x56\x12\x34\x56\x78\x9a\xbc\xde\xf0", 16),
       "12345678-1234-5678-1234-56789abcdef0"},
      {std::string("\xAB\xCD\xEF\x01\x23\x45\x67\x89\xFE\xDC\xBA\x98\x76\x54\x32\x10", 16),
       "01efcdab-4523-8967-fedc-ba9876543210"},
      {std::string(16, '\0'), "00000000-0000-0000-0000-000000000000"},
      {std::string(16, '\xff'), "ffffffff-ffff-ffff-ffff-ffffffffffff"},
  };
  for (const Case& c : cases) {
    Result<std::string> text = FormatGuid(c.bytes);
    ASSERT_TRUE(text.ok());
    EXPECT_EQ(*text, c.text);
  }
}

TEST(FormatGuid, RejectsOtherLengths) {
  for (std::size_t n : {0u, 15u, 17u, 36u}) {
    EXPECT_EQ(FormatGuid(std::string(n, 'a')).status().code(), StatusCode::kInternal) << n;
  }
}

TEST(IsGuidAttribute, OnlyObjectGuidUnderActiveDirectory) {
  EXPECT_TRUE(IsGuidAttribute(ldap::Flavor::kActiveDirectory, "objectGUID"));
  EXPECT_TRUE(IsGuidAttribute(ldap::Flavor::kActiveDirectory, "objectguid"));
  EXPECT_FALSE(IsGuidAttribute(ldap::Flavor::kOpenLdap, "objectGUID"));
  EXPECT_FALSE(IsGuidAttribute(ldap::Flavor::kActiveDirectory, "entryUUID"));
}

TEST(ClassifyMemberDescription, TellsPlainRangedAndOther) {
  using K = MemberDescription::Kind;
  struct Case {
    std::string description;
    K kind;
    std::uint64_t low;
    std::uint64_t high;
    bool last;
  };
  const std::vector<Case> cases = {
      {"member", K::kPlain, 0, 0, false},
      {"Member", K::kPlain, 0, 0, false},
      {"member;binary", K::kPlain, 0, 0, false},
      {"memberOf", K::kOther, 0, 0, false},
      {"cn", K::kOther, 0, 0, false},
      {"member;range=0-1499", K::kRanged, 0, 1499, false},
      {"MEMBER;Range=1500-2999", K::kRanged, 1500, 2999, false},
      {"member;range=3000-*", K::kRanged, 3000, 0, true},
      {"member;range=0-*", K::kRanged, 0, 0, true},
  };
  for (const Case& c : cases) {
    Result<MemberDescription> d = ClassifyMemberDescription(c.description, "member");
    ASSERT_TRUE(d.ok()) << c.description;
    EXPECT_EQ(d->kind, c.kind) << c.description;
    if (c.kind != K::kRanged) continue;
    EXPECT_EQ(d->low, c.low) << c.description;
    EXPECT_EQ(d->last, c.last) << c.description;
    if (!c.last) {
      EXPECT_EQ(d->high, c.high) << c.description;
    }
  }
}

TEST(ClassifyMemberDescription, RejectsMalformedRanges) {
  for (std::string bad :
       {"member;range=", "member;range=5", "member;range=a-5", "member;range=10-5",
        "member;range=-5", "member;range=1-", "member;range=1-x"}) {
    EXPECT_EQ(ClassifyMemberDescription(bad, "member").status().code(), StatusCode::kInternal)
        << bad;
  }
}

TEST(NextRangeDescription, AsksFromTheValueAfterTheLastOne) {
  MemberDescription last;
  last.kind = MemberDescription::Kind::kRanged;
  last.low = 0;
  last.high = 1499;
  EXPECT_EQ(NextRangeDescription("member", last), "member;range=1500-*");
  EXPECT_EQ(NextRangeDescription("member;binary", last), "member;range=1500-*");
}

TEST(CodeForLdapResult, MapsEachClassOfFailure) {
  struct Case {
    int code;
    StatusCode status;
  };
  const std::vector<Case> cases = {
      {LDAP_SUCCESS, StatusCode::kOk},
      {LDAP_SERVER_DOWN, StatusCode::kUnavailable},
      {LDAP_CONNECT_ERROR, StatusCode::kUnavailable},
      {LDAP_BUSY, StatusCode::kUnavailable},
      {LDAP_UNAVAILABLE, StatusCode::kUnavailable},
      {LDAP_TIMEOUT, StatusCode::kDeadlineExceeded},
      {LDAP_TIMELIMIT_EXCEEDED, StatusCode::kDeadlineExceeded},
      {LDAP_SIZELIMIT_EXCEEDED, StatusCode::kResourceExhausted},
      {LDAP_ADMINLIMIT_EXCEEDED, StatusCode::kResourceExhausted},
      {LDAP_INVALID_CREDENTIALS, StatusCode::kUnauthenticated},
      {LDAP_INAPPROPRIATE_AUTH, StatusCode::kUnauthenticated},
      {LDAP_AUTH_METHOD_NOT_SUPPORTED, StatusCode::kUnauthenticated},
      {LDAP_INSUFFICIENT_ACCESS, StatusCode::kPermissionDenied},
      {LDAP_STRONG_AUTH_REQUIRED, StatusCode::kPermissionDenied},
      {LDAP_CONFIDENTIALITY_REQUIRED, StatusCode::kPermissionDenied},
      {LDAP_UNWILLING_TO_PERFORM, StatusCode::kPermissionDenied},
      {LDAP_REFERRAL, StatusCode::kFailedPrecondition},
      {LDAP_UNAVAILABLE_CRITICAL_EXTENSION, StatusCode::kFailedPrecondition},
      {LDAP_NO_SUCH_OBJECT, StatusCode::kNotFound},
      {LDAP_FILTER_ERROR, StatusCode::kInvalidArgument},
      {LDAP_INVALID_DN_SYNTAX, StatusCode::kInvalidArgument},
      {LDAP_UNDEFINED_TYPE, StatusCode::kInvalidArgument},
      {LDAP_PROTOCOL_ERROR, StatusCode::kInternal},
      {LDAP_DECODING_ERROR, StatusCode::kInternal},
      {LDAP_OTHER, StatusCode::kInternal},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(CodeForLdapResult(c.code), c.status) << c.code << " " << ldap_err2string(c.code);
  }
}

}  // namespace
}  // namespace idsync::ldap::internal
