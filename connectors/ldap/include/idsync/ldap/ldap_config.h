// The `ldap` source's own configuration (contracts/config.md, `type: ldap`)
// and the parser of its section of the YAML file.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "idsync/config/source.h"

namespace idsync::ldap {

enum class Flavor { kOpenLdap, kActiveDirectory };

struct TlsConfig {
  std::string ca_file;
  bool start_tls = false;
  bool verify = true;
  std::string cert;  // client certificate (for SASL EXTERNAL over TLS)
  std::string key;
};

struct BindConfig {
  enum class Kind { kAnonymous, kSimple, kSaslExternal };
  Kind kind = Kind::kAnonymous;
  std::string dn;
  std::string password;  // resolved secret; never logged
};

// Everything an ldap source reads and follows by.
struct LdapConfig : config::DirectoryOptions {
  std::string name;               // the source's name, for messages
  std::vector<std::string> urls;  // tried in order
  TlsConfig tls;
  // Accepts the clear-text and unverified binds the parser otherwise refuses.
  bool allow_insecure = false;
  BindConfig bind;
  Flavor flavor = Flavor::kOpenLdap;
  int page_size = 1000;
  config::Duration connect_timeout = std::chrono::seconds(5);
  config::Duration timeout = std::chrono::seconds(30);
  config::Duration idle_timeout = std::chrono::minutes(5);
  bool watch = false;
  config::Duration watch_interval = std::chrono::seconds(30);
};

// The `ldap` type: its keys and its parser. Besides each value's form it
// refuses a password bind that a URL would send in clear (ldap:// without
// tls.start_tls), an anonymous bind over such a URL to a host outside
// loopback, and a password bind over TLS with tls.verify: false to such a
// host, each unless allow_insecure; SASL EXTERNAL over TCP without a client
// certificate, and groups.in_chain without flavor: active_directory.
config::SourceType LdapSourceType();

}  // namespace idsync::ldap
