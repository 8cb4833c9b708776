// Pure decisions of the `ldap` source, kept apart from the libldap calls so
// that tests can check them without a server: how to connect to one URL
// (scheme, TLS settings, whether a password bind may go out), which
// attributes to ask for, how to combine filters, Active Directory GUID text
// and ranged attribute descriptions, and which Status an LDAP result code
// becomes. No libldap type appears here; result codes are plain ints with
// the values RFC 4511 and libldap give them. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "idsync/base/ascii.h"
#include "idsync/base/status.h"
#include "idsync/ldap/ldap_config.h"

namespace idsync::ldap::internal {

enum class Scheme { kLdap, kLdaps, kLdapi };

// How the server certificate is checked (LDAP_OPT_X_TLS_REQUIRE_CERT).
enum class CertCheck {
  kDemand,  // chain and host name verified; failure ends the connection
  kNever,   // tls.verify: false; nothing is checked
};

// Everything needed to open and bind one connection to one URL.
struct ConnectPlan {
  std::string url;
  Scheme scheme = Scheme::kLdap;
  bool start_tls = false;  // ldap:// with tls.start_tls
  bool tls = false;        // the session is encrypted (ldaps:// or StartTLS)
  CertCheck cert_check = CertCheck::kDemand;
  std::string ca_file;  // empty: the system's trust store
  std::string cert;     // client certificate and key, or empty
  std::string key;
  config::Duration connect_timeout{0};
  config::Duration timeout{0};
  BindConfig::Kind bind = BindConfig::Kind::kAnonymous;
  // The URL names "localhost": libldap checks the certificate against this
  // machine's host name instead, which error messages mention.
  bool localhost = false;
};

// The scheme of `url` (case-insensitive). kInvalidArgument for any other.
Result<Scheme> ParseScheme(std::string_view url);

// True when `url` cannot leave this machine: ldapi://, or a host of
// 127.0.0.0/8 (a dotted quad), [::1] or localhost (any case).
bool IsLoopbackUrl(std::string_view url);

// The plan for `url` under `source`. kInvalidArgument (naming the source and
// the URL) when the URL's scheme is unknown; when a password bind would go
// out unencrypted (ldap:// without tls.start_tls, unless allow_insecure);
// when the password is empty; when SASL EXTERNAL is asked over TCP without a
// client certificate or without TLS.
Result<ConnectPlan> PlanConnection(const LdapConfig& source, std::string_view url);

// Checks the whole source as LdapSource::Create documents.
Status CheckSource(const LdapConfig& source);

// The stable-id attribute a flavor uses when users.id is not set.
std::string FlavorIdAttribute(Flavor flavor);

// True when values of `attribute` are binary GUIDs to be rendered as text:
// objectGUID under the Active Directory flavor.
bool IsGuidAttribute(Flavor flavor, std::string_view attribute);

// The attributes a users search asks for: email, name, the configured id
// attribute and the flavor's id attribute, each once (case-insensitively).
std::vector<std::string> UserAttributes(const LdapConfig& source);

// The attributes a groups search asks for: name, member, the flavor's id.
std::vector<std::string> GroupAttributes(const LdapConfig& source);

// `filter` with outer parentheses ("mail=*" becomes "(mail=*)"); a blank
// filter is "(objectClass=*)".
std::string Parenthesize(std::string_view filter);

// The conjunction "(&A B)" of two filters, each parenthesized first.
std::string AndFilter(std::string_view a, std::string_view b);

// A 16-byte objectGUID as Active Directory writes it: the first three fields
// are little-endian on the wire and printed byte-swapped, the rest as is,
// lower-case hex "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx". kInternal for any
// other length.
Result<std::string> FormatGuid(std::string_view bytes);

// How an attribute description returned in a group entry relates to the
// configured member attribute.
struct MemberDescription {
  enum class Kind {
    kOther,   // some other attribute
    kPlain,   // the member attribute, all values present
    kRanged,  // "member;range=LOW-HIGH" or "member;range=LOW-*"
  };
  Kind kind = Kind::kOther;
  std::uint64_t low = 0;
  std::uint64_t high = 0;  // meaningful when !last
  bool last = false;       // HIGH was "*": no values follow
};

// Classifies `description` (e.g. "member;range=0-1499") against `member`
// (compared case-insensitively, options of `member` itself ignored).
// kInternal for a range option that does not parse or whose HIGH < LOW.
Result<MemberDescription> ClassifyMemberDescription(std::string_view description,
                                                    std::string_view member);

// The description asking for the values after `previous`: "member;range=H+1-*".
std::string NextRangeDescription(std::string_view member, const MemberDescription& previous);

// The Status an LDAP result code (RFC 4511, or a negative libldap API code)
// becomes; `message` is used as it is. kOk for 0.
StatusCode CodeForLdapResult(int result_code);

// The attribute name before any option: "member;range=0-5" -> "member".
std::string_view BaseAttribute(std::string_view description);

// ASCII case-insensitive equality.
using base::EqualsIgnoreCase;

}  // namespace idsync::ldap::internal
