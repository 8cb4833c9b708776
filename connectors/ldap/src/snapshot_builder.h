// Builds a SourceSnapshot from the entries the `ldap` source's searches
// return, in the same way the `ldif` source does: users and groups keyed by
// normalized DN, member values resolved to users or groups by normalized DN
// once every group is known, unresolvable and invalid member values counted
// and left out, duplicate members removed. Pure; thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "idsync/mapping/model.h"
#include "idsync/mapping/status.h"

namespace idsync::ldap::internal {

struct BuildCounts {
  std::size_t disabled_users = 0;
  std::size_t unresolved_members = 0;
  std::size_t invalid_member_dns = 0;
};

class SnapshotBuilder {
 public:
  SnapshotBuilder(std::string source, bool nested, int max_depth);

  // Adds a user; an empty `id` becomes the normalized DN. kInternal when the
  // DN does not parse or a user with the same DN was added already (a server
  // that returns an entry twice is not trusted).
  Status AddUser(std::string dn, std::string id, std::string email, std::string name);

  // Marks the user with this DN disabled. kInternal when the DN does not
  // parse; a DN naming no user is ignored (it may have appeared between the
  // two searches) and false is returned.
  Result<bool> MarkDisabled(std::string_view dn);

  // Adds a group and returns its index for AddMembers. Same errors as AddUser.
  Result<std::uint32_t> AddGroup(std::string dn, std::string id, std::string name);

  // Appends member values (DNs as the server wrote them) to a group.
  void AddMembers(std::uint32_t group, std::vector<std::string> values);

  // As AddUser, AddGroup and AddMembers for entries whose DN and member
  // values are normalized already (mapping::NormalizeDn), as the change
  // feeds' cache keeps them: nothing is parsed again. Members added this
  // way are resolved without normalizing; invalid ones were dropped before.
  Status AddNormalizedUser(std::string dn, std::string normalized_dn, std::string id,
                           std::string email, std::string name, bool disabled);
  Result<std::uint32_t> AddNormalizedGroup(std::string dn, std::string normalized_dn,
                                           std::string id, std::string name);
  void AddNormalizedMembers(std::uint32_t group, const std::vector<std::string>& normalized);

  // The snapshot, members resolved. The builder is spent afterwards.
  mapping::SourceSnapshot Finish(BuildCounts* counts);

 private:
  Result<std::string> Normalize(std::string_view kind, std::string_view dn) const;

  mapping::SourceSnapshot snapshot_;
  std::unordered_map<std::string, std::uint32_t> user_index_;
  std::unordered_map<std::string, std::uint32_t> group_index_;
  std::vector<std::vector<std::string>> members_;  // parallel to snapshot_.groups
  // Parallel to snapshot_.groups: members given normalized (not owned).
  std::vector<const std::vector<std::string>*> normalized_members_;
  std::size_t disabled_ = 0;
};

}  // namespace idsync::ldap::internal
