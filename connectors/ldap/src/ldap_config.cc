#include "idsync/ldap/ldap_config.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "idsync/base/ascii.h"

#include "ldap_util.h"

namespace idsync::ldap {
namespace {

using base::StartsWithIgnoreCase;

// A value as written, for messages: quoted, cut when long.
std::string Quote(std::string_view text) {
  constexpr std::size_t kMax = 60;
  if (text.size() > kMax) return "'" + std::string(text.substr(0, kMax)) + "...'";
  return "'" + std::string(text) + "'";
}

// `url:` holds one URL, several separated by spaces, or a list of either.
Status ReadUrls(const config::SourceSection& s, std::vector<std::string>* out) {
  if (!s.Has("url")) return s.Missing("url");
  ASSIGN_OR_RETURN(std::vector<config::SourceSection::Text> items, s.Strings("url"));
  for (const config::SourceSection::Text& item : items) {
    const std::string& text = item.value;
    std::size_t pos = 0;
    while (pos < text.size()) {
      std::size_t start = text.find_first_not_of(" \t", pos);
      if (start == std::string::npos) break;
      std::size_t end = text.find_first_of(" \t", start);
      if (end == std::string::npos) end = text.size();
      std::string one = text.substr(start, end - start);
      bool ldapi = StartsWithIgnoreCase(one, "ldapi://");
      std::size_t scheme = StartsWithIgnoreCase(one, "ldap://")    ? 7
                           : StartsWithIgnoreCase(one, "ldaps://") ? 8
                                                                   : 0;
      if (!ldapi && (scheme == 0 || one.size() == scheme || one[scheme] == '/')) {
        return s.ErrorAt(item, "bad LDAP URL in " + item.path + ": " + Quote(one) +
                                   " (use ldap://HOST, ldaps://HOST or ldapi://)");
      }
      out->push_back(std::move(one));
      pos = end;
    }
  }
  if (out->empty()) return s.ErrorAt("url", "url must give at least one LDAP URL");
  return Status::Ok();
}

Status ReadTls(const config::SourceSection& parent, TlsConfig* out) {
  ASSIGN_OR_RETURN(config::SourceSection s,
                   parent.Open("tls", {"ca_file", "start_tls", "verify", "cert", "key"}));
  if (s.Has("ca_file")) {
    ASSIGN_OR_RETURN(out->ca_file, s.Path("ca_file"));
  }
  ASSIGN_OR_RETURN(out->start_tls, s.Flag("start_tls", out->start_tls));
  ASSIGN_OR_RETURN(out->verify, s.Flag("verify", out->verify));
  if (s.Has("cert")) {
    ASSIGN_OR_RETURN(out->cert, s.Path("cert"));
  }
  if (s.Has("key")) {
    ASSIGN_OR_RETURN(out->key, s.Path("key"));
  }
  if (out->cert.empty() != out->key.empty()) return s.Missing(out->cert.empty() ? "cert" : "key");
  return Status::Ok();
}

Status ReadBind(const config::SourceSection& parent, BindConfig* out) {
  ASSIGN_OR_RETURN(config::SourceSection s, parent.Open("bind", {"dn", "password", "sasl"}));
  if (s.Has("sasl")) {
    if (s.Has("dn") || s.Has("password")) {
      return s.ErrorAtKey("sasl", "bind.sasl cannot be combined with bind.dn or bind.password");
    }
    ASSIGN_OR_RETURN(out->kind,
                     s.Choice<BindConfig::Kind>(
                         "sasl", {{"external", BindConfig::Kind::kSaslExternal}}, out->kind));
    return Status::Ok();
  }
  if (!s.Has("dn") && !s.Has("password")) return Status::Ok();
  // A DN without a password is an "unauthenticated bind" that many servers
  // accept as anonymous: never what is meant.
  if (!s.Has("dn")) return s.Missing("dn");
  if (!s.Has("password")) return s.Missing("password");
  ASSIGN_OR_RETURN(out->dn, s.Dn("dn"));
  ASSIGN_OR_RETURN(out->password, s.Secret("password"));
  out->kind = BindConfig::Kind::kSimple;
  return Status::Ok();
}

Result<std::shared_ptr<const config::SourceOptions>> Parse(const config::SourceSection& s) {
  auto out = std::make_shared<LdapConfig>();
  out->name = s.source_name();
  RETURN_IF_ERROR(ReadUrls(s, &out->urls));
  ASSIGN_OR_RETURN(out->users, s.Users("users", /*in_memory=*/false));
  ASSIGN_OR_RETURN(out->groups, s.Groups("groups", /*in_memory=*/false));
  RETURN_IF_ERROR(ReadTls(s, &out->tls));
  ASSIGN_OR_RETURN(out->allow_insecure, s.Flag("allow_insecure", out->allow_insecure));
  RETURN_IF_ERROR(ReadBind(s, &out->bind));
  ASSIGN_OR_RETURN(out->flavor, s.Choice<Flavor>("flavor",
                                                 {{"openldap", Flavor::kOpenLdap},
                                                  {"active_directory", Flavor::kActiveDirectory}},
                                                 out->flavor));
  ASSIGN_OR_RETURN(std::int64_t page_size, s.Int("page_size", 1, 1'000'000, out->page_size));
  out->page_size = static_cast<int>(page_size);
  ASSIGN_OR_RETURN(out->connect_timeout, s.Dur("connect_timeout", out->connect_timeout));
  ASSIGN_OR_RETURN(out->timeout, s.Dur("timeout", out->timeout));
  ASSIGN_OR_RETURN(out->idle_timeout, s.Dur("idle_timeout", out->idle_timeout));
  // `watch` and `watch_interval` are keys the engine reads too.
  ASSIGN_OR_RETURN(out->watch, s.Flag("watch", out->watch));
  ASSIGN_OR_RETURN(out->watch_interval, s.Dur("watch_interval", out->watch_interval));

  // Cross-key checks, reported where the fix belongs.
  if (out->groups.in_chain && out->flavor != Flavor::kActiveDirectory) {
    return s.ErrorAt("groups.in_chain", "groups.in_chain needs flavor: active_directory");
  }
  if (out->bind.kind == BindConfig::Kind::kSimple && !out->tls.start_tls && !out->allow_insecure) {
    for (const std::string& u : out->urls) {
      if (StartsWithIgnoreCase(u, "ldap://")) {
        return s.ErrorAt("url", "a password bind over " + Quote(u) +
                                    " would send the password in clear: use ldaps://, set "
                                    "tls.start_tls: true, or set allow_insecure: true");
      }
    }
  }
  // Users and groups decide who gets access. Read in clear text from
  // another host, anyone on the way can change them; loopback and ldapi://
  // never leave the machine.
  if (out->bind.kind == BindConfig::Kind::kAnonymous && !out->tls.start_tls &&
      !out->allow_insecure) {
    for (const std::string& u : out->urls) {
      if (StartsWithIgnoreCase(u, "ldap://") && !internal::IsLoopbackUrl(u)) {
        return s.ErrorAt("url", "an anonymous bind over " + Quote(u) +
                                    " would read users and groups in clear from another host, "
                                    "where anyone on the way can change who gets access: use "
                                    "ldaps://, set tls.start_tls: true, or set allow_insecure: "
                                    "true");
      }
    }
  }
  // Without a checked certificate, whoever answers for the host gets the
  // password.
  if (out->bind.kind == BindConfig::Kind::kSimple && !out->tls.verify && !out->allow_insecure) {
    for (const std::string& u : out->urls) {
      const bool tls = StartsWithIgnoreCase(u, "ldaps://") ||
                       (StartsWithIgnoreCase(u, "ldap://") && out->tls.start_tls);
      if (tls && !internal::IsLoopbackUrl(u)) {
        return s.ErrorAt("tls.verify",
                         "a password bind with tls.verify: false would give the password to "
                         "any server answering for " +
                             Quote(u) +
                             ", its certificate unchecked: set tls.verify: true (with "
                             "tls.ca_file for a private CA), or set allow_insecure: true");
      }
    }
  }
  if (out->bind.kind == BindConfig::Kind::kSaslExternal && out->tls.cert.empty()) {
    for (const std::string& u : out->urls) {
      if (!StartsWithIgnoreCase(u, "ldapi://")) {
        return s.ErrorAt("bind",
                         "bind.sasl: external needs ldapi:// URLs or a client certificate "
                         "(tls.cert and tls.key)");
      }
    }
  }
  return std::shared_ptr<const config::SourceOptions>(std::move(out));
}

}  // namespace

config::SourceType LdapSourceType() {
  config::SourceType type;
  type.name = "ldap";
  type.watchable = true;
  type.keys = {"url",         "tls",    "allow_insecure", "bind",    "flavor",
               "users",       "groups", "page_size",      "timeout", "connect_timeout",
               "idle_timeout"};
  type.secret_keys = {"bind.password"};
  type.parse = Parse;
  return type;
}

}  // namespace idsync::ldap
