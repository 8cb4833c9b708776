// Nested group membership resolved by the directory server instead of by
// idsync: Active Directory's in-chain matching rule
// (LDAP_MATCHING_RULE_IN_CHAIN, 1.2.840.113556.1.4.1941) finds, in one
// search per group, every user that is a member of the group directly or
// through any depth of nested groups, cycles included (groups.in_chain: true
// under flavor active_directory).
//
// Also the client-side closure over a snapshot's direct members, which is
// what idsync computes without in_chain; tests and the AD nesting benchmark
// compare the two. Private to connectors/ldap (libldap types through
// connection.h). Functions taking a Session use it from the calling thread
// only; the pure ones are thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/mapping/model.h"

#include "connection.h"

namespace idsync::ldap::internal {

// The OID of the in-chain matching rule.
inline constexpr char kInChainRule[] = "1.2.840.113556.1.4.1941";

// `value` escaped for use as an assertion value in a string filter
// (RFC 4515: '*', '(', ')', '\' and NUL become \2a, \28, \29, \5c, \00).
std::string EscapeFilterValue(std::string_view value);

// "(&<users_filter>(memberOf:1.2.840.113556.1.4.1941:=<group_dn escaped>))".
std::string InChainFilter(std::string_view users_filter, std::string_view group_dn);

// What ResolveInChain did, for logs and the benchmark.
struct InChainStats {
  std::size_t searches = 0;  // one per group
  std::size_t entries = 0;   // user entries returned, all groups together
};

// For each of `group_dns` (in order), the DNs, as the server wrote them, of
// the entries under users.base matching users.filter that belong to the
// group directly or through nested groups. One paged search per group (page
// size and timeout of the source), asking for no attributes. Fails whole
// like every read (Session::Search errors, codes as LdapSource::Read
// documents); kFailedPrecondition when the source's flavor is not
// active_directory (only AD knows the rule). Blocks.
Result<std::vector<std::vector<std::string>>> ResolveInChain(
    Session& session, const std::vector<std::string>& group_dns, InChainStats* stats = nullptr);

// Client-side closure: for each group of `snapshot`, the sorted, distinct
// indices of the users reached through member_users and, transitively,
// member_groups. A cycle is walked once; depth is not limited here (the
// mapping enforces max_depth). Pure.
std::vector<std::vector<std::uint32_t>> TransitiveUsers(const mapping::SourceSnapshot& snapshot);

}  // namespace idsync::ldap::internal
