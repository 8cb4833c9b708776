// The server section's listener keys: deadlines, caps, per-request limits,
// and the admin listener off loopback.
#include <string>

#include <gtest/gtest.h>

#include "idsync/config/config.h"
#include "idsync/ldif/ldif_config.h"

namespace idsync::config {
namespace {

using namespace std::chrono_literals;

Result<Config> Parse(const std::string& server) {
  static const SourceTypes* const kTypes = [] {
    auto* types = new SourceTypes();
    types->Add(ldif::LdifSourceType());
    return types;
  }();
  LoadOptions options;
  options.source_types = kTypes;
  const std::string text =
      "sources:\n"
      "  - name: dir\n"
      "    type: ldif\n"
      "    path: dir.ldif\n"
      "    users: {base: \"dc=example,dc=com\"}\n"
      "rules:\n"
      "  - name: staff\n"
      "    match: {group: staff}\n"
      "    preset: qa-analyst\n"
      "server:\n" +
      server;
  return ParseConfig(text, "/etc/idsync/t.yaml", options);
}

TEST(ServerConfig, DefaultsMatchTheDocumentedLimits) {
  Result<Config> c = Parse("  scim_path: /scim/v2\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const ServerConfig& s = c->server;
  EXPECT_EQ(s.header_timeout, 10s);
  EXPECT_EQ(s.body_timeout, 30s);
  EXPECT_EQ(s.tls_handshake_timeout, 10s);
  EXPECT_EQ(s.keep_alive_timeout, 60s);
  EXPECT_EQ(s.write_timeout, 30s);
  EXPECT_EQ(s.max_connections, 4096);
  EXPECT_EQ(s.max_connections_per_ip, 256);
  EXPECT_EQ(s.max_patch_values, 10000u);
  EXPECT_EQ(s.max_response, 8u * 1024 * 1024);
  EXPECT_FALSE(s.admin_allow_insecure);
  EXPECT_TRUE(s.admin_tls_cert.empty());
}

TEST(ServerConfig, ReadsEveryListenerKey) {
  Result<Config> c = Parse(
      "  header_timeout: 5s\n  body_timeout: 1m\n  tls_handshake_timeout: 3s\n"
      "  keep_alive_timeout: 2m\n  write_timeout: 45s\n  max_connections: 100\n"
      "  max_connections_per_ip: 10\n  max_patch_values: 500\n  max_response: 2MiB\n"
      "  admin_tls: {cert: /etc/idsync/admin.crt, key: /etc/idsync/admin.key}\n");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const ServerConfig& s = c->server;
  EXPECT_EQ(s.header_timeout, 5s);
  EXPECT_EQ(s.body_timeout, 60s);
  EXPECT_EQ(s.tls_handshake_timeout, 3s);
  EXPECT_EQ(s.keep_alive_timeout, 120s);
  EXPECT_EQ(s.write_timeout, 45s);
  EXPECT_EQ(s.max_connections, 100);
  EXPECT_EQ(s.max_connections_per_ip, 10);
  EXPECT_EQ(s.max_patch_values, 500u);
  EXPECT_EQ(s.max_response, 2u * 1024 * 1024);
  EXPECT_EQ(s.admin_tls_cert, "/etc/idsync/admin.crt");
  EXPECT_EQ(s.admin_tls_key, "/etc/idsync/admin.key");
}

TEST(ServerConfig, RefusesBadValuesWithTheirPlace) {
  struct Case {
    std::string server;
    std::string error;
  };
  for (const Case& k : {
           Case{"  header_timeout: 0s\n",
                "t.yaml:11:19: server.header_timeout must be longer than 0"},
           Case{"  max_connections: 0\n", "t.yaml:11:20:"},
           Case{"  max_connections_per_ip: lots\n", "t.yaml:11:27:"},
           Case{"  max_response: 0\n", "t.yaml:11:17: server.max_response must be more than 0"},
           Case{"  admin_tls: {cert: /a.crt}\n",
                "t.yaml:11:3: missing required key 'key' in server.admin_tls"},
           Case{"  write_timout: 5s\n", "t.yaml:11:3:"},
       }) {
    Result<Config> c = Parse(k.server);
    ASSERT_FALSE(c.ok()) << k.server;
    EXPECT_NE(c.status().message().find(k.error), std::string::npos)
        << k.server << " -> " << c.status().message();
  }
}

TEST(ServerConfig, AdminListenerOffLoopbackNeedsTlsOrAnExplicitYes) {
  for (const std::string address : {"0.0.0.0:9107", "[::]:9107", "10.0.0.5:9107"}) {
    Result<Config> c = Parse("  admin_listen: [\"" + address + "\"]\n");
    ASSERT_FALSE(c.ok()) << address;
    EXPECT_NE(c.status().message().find("is reachable from other hosts but server.admin_tls is "
                                        "not set"),
              std::string::npos)
        << c.status().message();
    EXPECT_NE(c.status().message().find("t.yaml:11:"), std::string::npos);
    EXPECT_TRUE(
        Parse("  admin_listen: [\"" + address + "\"]\n  admin_allow_insecure: true\n").ok());
    EXPECT_TRUE(
        Parse("  admin_listen: [\"" + address + "\"]\n  admin_tls: {cert: /a.crt, key: /a.key}\n")
            .ok());
  }
  for (const std::string address :
       {"127.0.0.1:9107", "127.1.2.3:0", "[::1]:9107", "localhost:9107"}) {
    Result<Config> c = Parse("  admin_listen: [\"" + address + "\"]\n");
    EXPECT_TRUE(c.ok()) << address << ": " << c.status().ToString();
  }
}

}  // namespace
}  // namespace idsync::config
