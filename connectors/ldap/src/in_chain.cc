// In-chain resolution of nested groups (see in_chain.h).
#include "in_chain.h"

#include <algorithm>
#include <utility>

namespace idsync::ldap::internal {

std::string EscapeFilterValue(std::string_view value) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '*' || c == '(' || c == ')' || c == '\\' || c == '\0') {
      unsigned char byte = static_cast<unsigned char>(c);
      out += '\\';
      out += kHex[byte >> 4];
      out += kHex[byte & 0xf];
    } else {
      out += c;
    }
  }
  return out;
}

std::string InChainFilter(std::string_view users_filter, std::string_view group_dn) {
  return AndFilter(users_filter,
                   std::string("memberOf:") + kInChainRule + ":=" + EscapeFilterValue(group_dn));
}

Result<std::vector<std::vector<std::string>>> ResolveInChain(
    Session& session, const std::vector<std::string>& group_dns, InChainStats* stats) {
  const LdapConfig& source = session.source();
  if (source.flavor != Flavor::kActiveDirectory) {
    return session.Error(StatusCode::kFailedPrecondition,
                         "groups.in_chain needs flavor active_directory");
  }
  std::vector<std::vector<std::string>> members;
  members.reserve(group_dns.size());
  // "1.1": no attributes, only the DNs (RFC 4511 4.5.1.8).
  const std::vector<std::string> no_attributes = {"1.1"};
  for (const std::string& group : group_dns) {
    std::vector<std::string> users;
    Status searched =
        session.Search("in-chain members of " + group, source.users.base, LDAP_SCOPE_SUBTREE,
                       InChainFilter(source.users.filter, group), no_attributes, /*paged=*/true,
                       [&](LDAPMessage* entry) -> Status {
                         ASSIGN_OR_RETURN(std::string dn, EntryDn(session, entry));
                         users.push_back(std::move(dn));
                         return Status::Ok();
                       });
    RETURN_IF_ERROR(searched);
    if (stats != nullptr) {
      ++stats->searches;
      stats->entries += users.size();
    }
    members.push_back(std::move(users));
  }
  return members;
}

std::vector<std::vector<std::uint32_t>> TransitiveUsers(const mapping::SourceSnapshot& snapshot) {
  const std::size_t n = snapshot.groups.size();
  std::vector<std::vector<std::uint32_t>> result(n);
  // A walk from each group; `seen` marks groups visited by this walk (the
  // stamp avoids clearing it between walks).
  std::vector<std::size_t> seen(n, 0);
  std::vector<std::uint32_t> stack;
  for (std::size_t root = 0; root < n; ++root) {
    const std::size_t stamp = root + 1;
    std::vector<std::uint32_t>& users = result[root];
    stack.assign(1, static_cast<std::uint32_t>(root));
    seen[root] = stamp;
    while (!stack.empty()) {
      const mapping::DirectoryGroup& group = snapshot.groups[stack.back()];
      stack.pop_back();
      users.insert(users.end(), group.member_users.begin(), group.member_users.end());
      for (std::uint32_t child : group.member_groups) {
        if (child < n && seen[child] != stamp) {
          seen[child] = stamp;
          stack.push_back(child);
        }
      }
    }
    std::sort(users.begin(), users.end());
    users.erase(std::unique(users.begin(), users.end()), users.end());
  }
  return result;
}

}  // namespace idsync::ldap::internal
