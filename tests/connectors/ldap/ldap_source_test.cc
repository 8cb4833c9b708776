// LdapSource without a server: what Create refuses, and how a read fails
// when no URL can be reached (ldapi:// sockets that do not exist, so no
// network is involved).
#include "idsync/ldap/ldap_source.h"

#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <unistd.h>

namespace idsync::ldap {
namespace {

ldap::LdapConfig Source() {
  ldap::LdapConfig source;
  source.name = "corp";
  source.urls = {"ldaps://dc1.corp.example"};
  source.users.base = "ou=people,dc=corp,dc=example";
  source.groups.base = "ou=groups,dc=corp,dc=example";
  return source;
}

// A socket path under a fresh temporary directory, percent-encoded for an
// ldapi:// URL; nothing listens there.
class MissingSockets : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/idsync-ldap-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { rmdir(dir_.c_str()); }

  std::string Url(const std::string& name) const {
    std::string path = dir_ + "/" + name;
    std::string encoded;
    for (char c : path) {
      if (c == '/') {
        encoded += "%2F";
      } else {
        encoded += c;
      }
    }
    return "ldapi://" + encoded;
  }

  std::string dir_;
};

TEST(LdapSourceCreate, AcceptsAValidSource) {
  Result<std::unique_ptr<LdapSource>> source = LdapSource::Create(Source());
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  EXPECT_EQ((*source)->name(), "corp");
}

TEST(LdapSourceCreate, RefusesAPasswordBindOverPlainLdap) {
  ldap::LdapConfig config = Source();
  config.urls = {"ldap://dc1.corp.example"};
  config.bind.kind = ldap::BindConfig::Kind::kSimple;
  config.bind.dn = "cn=svc,dc=corp,dc=example";
  config.bind.password = "s3cret-value";
  Result<std::unique_ptr<LdapSource>> source = LdapSource::Create(config);
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(source.status().message().find("allow_insecure"), std::string::npos);
  EXPECT_EQ(source.status().message().find("s3cret"), std::string::npos);
}

TEST(LdapSourceCreate, AllowsAPasswordBindOverPlainLdapWhenInsecureIsAllowed) {
  ldap::LdapConfig config = Source();
  config.urls = {"ldap://dc1.corp.example"};
  config.allow_insecure = true;
  config.bind.kind = ldap::BindConfig::Kind::kSimple;
  config.bind.dn = "cn=svc,dc=corp,dc=example";
  config.bind.password = "s3cret-value";
  EXPECT_TRUE(LdapSource::Create(config).ok());
}

TEST(LdapSourceCreate, RefusesAnUnknownScheme) {
  ldap::LdapConfig config = Source();
  config.urls = {"https://dc1.corp.example"};
  EXPECT_EQ(LdapSource::Create(config).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(MissingSockets, ReadFailsUnavailableNamingEveryUrlTried) {
  ldap::LdapConfig config = Source();
  config.urls = {Url("first"), Url("second")};
  config.bind.kind = ldap::BindConfig::Kind::kSimple;
  config.bind.dn = "cn=svc,dc=corp,dc=example";
  config.bind.password = "s3cret-value";
  Result<std::unique_ptr<LdapSource>> source = LdapSource::Create(config);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  Result<mapping::SourceSnapshot> read = (*source)->Read();
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), StatusCode::kUnavailable);
  const std::string message = read.status().message();
  EXPECT_EQ(message.rfind("source 'corp': ", 0), 0u) << message;
  EXPECT_NE(message.find(Url("first")), std::string::npos) << message;
  EXPECT_NE(message.find(Url("second")), std::string::npos) << message;
  EXPECT_EQ(message.find("s3cret"), std::string::npos) << message;
}

TEST_F(MissingSockets, ReadFailsAgainWithoutAStaleConnection) {
  ldap::LdapConfig config = Source();
  config.urls = {Url("only")};
  Result<std::unique_ptr<LdapSource>> source = LdapSource::Create(config);
  ASSERT_TRUE(source.ok());
  EXPECT_EQ((*source)->Read().status().code(), StatusCode::kUnavailable);
  EXPECT_EQ((*source)->Read().status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace idsync::ldap
