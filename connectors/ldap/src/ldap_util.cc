#include "ldap_util.h"

#include <charconv>
#include <utility>

#include "idsync/base/ascii.h"
#include "idsync/mapping/dn.h"

namespace idsync::ldap::internal {
namespace {

using base::StartsWithIgnoreCase;

std::string_view Trim(std::string_view text) {
  std::size_t start = text.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos) return {};
  std::size_t end = text.find_last_not_of(" \t\r\n");
  return text.substr(start, end - start + 1);
}

std::string Context(const LdapConfig& source) { return "source '" + source.name + "'"; }

// The host part of an ldap:// or ldaps:// URL, without port or path.
std::string_view UrlHost(std::string_view url) {
  std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return {};
  std::string_view rest = url.substr(scheme_end + 3);
  rest = rest.substr(0, rest.find('/'));
  if (!rest.empty() && rest.front() == '[') return rest.substr(0, rest.find(']') + 1);
  return rest.substr(0, rest.find(':'));
}

void AddOnce(std::vector<std::string>* list, const std::string& attribute) {
  if (attribute.empty()) return;
  for (const std::string& existing : *list) {
    if (EqualsIgnoreCase(existing, attribute)) return;
  }
  list->push_back(attribute);
}

Result<std::uint64_t> ParseNumber(std::string_view text) {
  std::uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc() || end != text.data() + text.size()) {
    return InternalError("not a number");
  }
  return value;
}

}  // namespace

std::string_view BaseAttribute(std::string_view description) {
  return description.substr(0, description.find(';'));
}

Result<Scheme> ParseScheme(std::string_view url) {
  if (StartsWithIgnoreCase(url, "ldap://")) return Scheme::kLdap;
  if (StartsWithIgnoreCase(url, "ldaps://")) return Scheme::kLdaps;
  if (StartsWithIgnoreCase(url, "ldapi://")) return Scheme::kLdapi;
  return InvalidArgumentError("'" + std::string(url) +
                              "' is not an ldap://, ldaps:// or ldapi:// URL");
}

bool IsLoopbackUrl(std::string_view url) {
  if (StartsWithIgnoreCase(url, "ldapi://")) return true;
  std::string_view host = UrlHost(url);
  if (host == "[::1]" || EqualsIgnoreCase(host, "localhost")) return true;
  // 127.0.0.0/8 written as four decimal parts; "127.0.0.1.example.com" is a
  // name like any other.
  if (!StartsWithIgnoreCase(host, "127.")) return false;
  int parts = 0;
  std::size_t start = 0;
  while (start <= host.size()) {
    std::size_t end = host.find('.', start);
    if (end == std::string_view::npos) end = host.size();
    Result<std::uint64_t> part = ParseNumber(host.substr(start, end - start));
    if (!part.ok() || *part > 255 || end - start > 3) return false;
    ++parts;
    start = end + 1;
  }
  return parts == 4;
}

Result<ConnectPlan> PlanConnection(const LdapConfig& source, std::string_view url) {
  const std::string context = Context(source) + ": URL '" + std::string(url) + "'";
  Result<Scheme> scheme = ParseScheme(url);
  if (!scheme.ok()) return scheme.status().WithContext(Context(source));

  ConnectPlan plan;
  plan.url = std::string(url);
  plan.scheme = *scheme;
  // StartTLS upgrades a plain TCP session; ldaps:// is encrypted already and
  // ldapi:// never leaves the machine.
  plan.start_tls = plan.scheme == Scheme::kLdap && source.tls.start_tls;
  plan.tls = plan.scheme == Scheme::kLdaps || plan.start_tls;
  plan.cert_check = source.tls.verify ? CertCheck::kDemand : CertCheck::kNever;
  plan.ca_file = source.tls.ca_file;
  plan.cert = source.tls.cert;
  plan.key = source.tls.key;
  plan.connect_timeout = source.connect_timeout;
  plan.timeout = source.timeout;
  plan.bind = source.bind.kind;
  plan.localhost = plan.scheme != Scheme::kLdapi && EqualsIgnoreCase(UrlHost(url), "localhost");

  switch (plan.bind) {
    case BindConfig::Kind::kAnonymous:
      break;
    case BindConfig::Kind::kSimple:
      // An empty password makes an "unauthenticated bind" (RFC 4513 5.1.2),
      // which many servers treat as anonymous: never what was meant.
      if (source.bind.password.empty()) {
        return InvalidArgumentError(context + ": bind.password is empty");
      }
      if (plan.scheme == Scheme::kLdap && !plan.start_tls && !source.allow_insecure) {
        return InvalidArgumentError(
            context +
            ": a password bind over ldap:// without StartTLS would send the password in "
            "clear; use ldaps://, set tls.start_tls: true, or set allow_insecure: true");
      }
      break;
    case BindConfig::Kind::kSaslExternal:
      // EXTERNAL names the identity the transport proved: the peer's uid
      // over ldapi://, or a client certificate over TLS.
      if (plan.scheme != Scheme::kLdapi && (plan.cert.empty() || !plan.tls)) {
        return InvalidArgumentError(
            context +
            ": bind.sasl: external needs an ldapi:// URL, or TLS (ldaps:// or "
            "tls.start_tls) with a client certificate (tls.cert and tls.key)");
      }
      break;
  }
  if (plan.cert.empty() != plan.key.empty()) {
    return InvalidArgumentError(Context(source) + ": tls.cert and tls.key go together");
  }
  return plan;
}

Status CheckSource(const LdapConfig& source) {
  const std::string context = Context(source);
  if (source.urls.empty()) return InvalidArgumentError(context + ": no URL is configured");
  for (const std::string& url : source.urls) {
    Result<ConnectPlan> plan = PlanConnection(source, url);
    if (!plan.ok()) return plan.status();
  }
  if (Trim(source.users.base).empty()) {
    return InvalidArgumentError(context + ": users.base is empty");
  }
  for (const auto& [key, base] :
       {std::pair<const char*, const std::string&>{"users.base", source.users.base},
        {"groups.base", source.groups.base}}) {
    if (Trim(base).empty()) continue;
    Result<std::string> normalized = mapping::NormalizeDn(base);
    if (!normalized.ok()) {
      return InvalidArgumentError(context + ": " + key + " '" + base +
                                  "' is not a DN: " + normalized.status().message());
    }
  }
  if (source.page_size < 1) {
    return InvalidArgumentError(context + ": page_size must be at least 1");
  }
  if (source.timeout.count() <= 0 || source.connect_timeout.count() <= 0) {
    return InvalidArgumentError(context + ": timeout and connect_timeout must be positive");
  }
  if (Trim(source.users.email).empty()) {
    return InvalidArgumentError(context + ": users.email names no attribute");
  }
  if (!Trim(source.groups.base).empty() && Trim(source.groups.member).empty()) {
    return InvalidArgumentError(context + ": groups.member names no attribute");
  }
  return Status::Ok();
}

std::string FlavorIdAttribute(Flavor flavor) {
  return flavor == Flavor::kActiveDirectory ? "objectGUID" : "entryUUID";
}

bool IsGuidAttribute(Flavor flavor, std::string_view attribute) {
  return flavor == Flavor::kActiveDirectory && EqualsIgnoreCase(attribute, "objectGUID");
}

std::vector<std::string> UserAttributes(const LdapConfig& source) {
  std::vector<std::string> attributes;
  AddOnce(&attributes, source.users.email);
  AddOnce(&attributes, source.users.name);
  AddOnce(&attributes, source.users.id);
  AddOnce(&attributes, FlavorIdAttribute(source.flavor));
  return attributes;
}

std::vector<std::string> GroupAttributes(const LdapConfig& source) {
  std::vector<std::string> attributes;
  AddOnce(&attributes, source.groups.name);
  AddOnce(&attributes, std::string(BaseAttribute(source.groups.member)));
  AddOnce(&attributes, FlavorIdAttribute(source.flavor));
  return attributes;
}

std::string Parenthesize(std::string_view filter) {
  std::string_view trimmed = Trim(filter);
  if (trimmed.empty()) return "(objectClass=*)";
  if (trimmed.front() == '(') return std::string(trimmed);
  return "(" + std::string(trimmed) + ")";
}

std::string AndFilter(std::string_view a, std::string_view b) {
  return "(&" + Parenthesize(a) + Parenthesize(b) + ")";
}

Result<std::string> FormatGuid(std::string_view bytes) {
  if (bytes.size() != 16) {
    return InternalError("an objectGUID value has " + std::to_string(bytes.size()) +
                         " bytes, not 16");
  }
  // Data1 (4 bytes), Data2 and Data3 (2 each) are little-endian integers;
  // Data4 (8 bytes) is a byte array printed in order.
  static constexpr int kOrder[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text;
  text.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) text.push_back('-');
    auto byte = static_cast<unsigned char>(bytes[static_cast<std::size_t>(kOrder[i])]);
    text.push_back(kHex[byte >> 4]);
    text.push_back(kHex[byte & 0xf]);
  }
  return text;
}

Result<MemberDescription> ClassifyMemberDescription(std::string_view description,
                                                    std::string_view member) {
  MemberDescription result;
  if (!EqualsIgnoreCase(BaseAttribute(description), BaseAttribute(member))) return result;
  result.kind = MemberDescription::Kind::kPlain;
  std::string_view options = description.substr(BaseAttribute(description).size());
  while (!options.empty()) {
    options.remove_prefix(1);  // the ';'
    std::string_view option = options.substr(0, options.find(';'));
    options.remove_prefix(option.size());
    if (!StartsWithIgnoreCase(option, "range=")) continue;
    std::string_view range = option.substr(6);
    std::size_t dash = range.find('-');
    auto bad = [&] {
      return InternalError("the server returned a malformed ranged attribute '" +
                           std::string(description) + "'");
    };
    if (dash == std::string_view::npos) return bad();
    Result<std::uint64_t> low = ParseNumber(range.substr(0, dash));
    if (!low.ok()) return bad();
    result.kind = MemberDescription::Kind::kRanged;
    result.low = *low;
    std::string_view high = range.substr(dash + 1);
    if (high == "*") {
      result.last = true;
    } else {
      Result<std::uint64_t> number = ParseNumber(high);
      if (!number.ok() || *number < *low) return bad();
      result.high = *number;
    }
  }
  return result;
}

std::string NextRangeDescription(std::string_view member, const MemberDescription& previous) {
  return std::string(BaseAttribute(member)) + ";range=" + std::to_string(previous.high + 1) + "-*";
}

StatusCode CodeForLdapResult(int result_code) {
  switch (result_code) {
    case 0:
      return StatusCode::kOk;
    case 3:   // timeLimitExceeded
    case -5:  // LDAP_TIMEOUT
      return StatusCode::kDeadlineExceeded;
    case 4:   // sizeLimitExceeded
    case 11:  // adminLimitExceeded
      return StatusCode::kResourceExhausted;
    case 7:   // authMethodNotSupported
    case 48:  // inappropriateAuthentication
    case 49:  // invalidCredentials
    case -6:  // LDAP_AUTH_UNKNOWN
      return StatusCode::kUnauthenticated;
    case 8:   // strongerAuthRequired
    case 13:  // confidentialityRequired
    case 50:  // insufficientAccessRights
    case 53:  // unwillingToPerform
      return StatusCode::kPermissionDenied;
    case 10:   // referral
    case 12:   // unavailableCriticalExtension
    case -12:  // LDAP_NOT_SUPPORTED
    case -17:  // LDAP_REFERRAL_LIMIT_EXCEEDED
      return StatusCode::kFailedPrecondition;
    case 17:  // undefinedAttributeType
    case 18:  // inappropriateMatching
    case 34:  // invalidDNSyntax
    case -7:  // LDAP_FILTER_ERROR
    case -9:  // LDAP_PARAM_ERROR
      return StatusCode::kInvalidArgument;
    case 32:  // noSuchObject
      return StatusCode::kNotFound;
    case 51:   // busy
    case 52:   // unavailable
    case -1:   // LDAP_SERVER_DOWN
    case -11:  // LDAP_CONNECT_ERROR
      return StatusCode::kUnavailable;
    default:
      return StatusCode::kInternal;
  }
}

}  // namespace idsync::ldap::internal
