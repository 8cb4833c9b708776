// Builds a SourceSnapshot from the entries the `ldap` source's searches
// return, in the same way the `ldif` source does: users and groups keyed by
// normalized DN, member values resolved to users or groups by normalized DN
// once every group is known, unresolvable and invalid member values counted
// and left out, duplicate members removed. Pure; thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
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

  // A member value as the server wrote it, kept once however many groups
  // name it; `normalized` is set when the value is the DN of an entry added
  // (it points at that entry's key in user_index_ or group_index_).
  struct Value {
    const std::string* normalized = nullptr;
  };

  // The id of a written member value (or entry DN), interned.
  std::uint32_t Intern(std::string_view written, const std::string* normalized);

  // Lets value_ids_ be searched by string_view, without a temporary string.
  struct TextHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const noexcept {
      return std::hash<std::string_view>{}(text);
    }
  };

  mapping::SourceSnapshot snapshot_;
  std::unordered_map<std::string, std::uint32_t> user_index_;
  std::unordered_map<std::string, std::uint32_t> group_index_;
  std::unordered_map<std::string, std::uint32_t, TextHash, std::equal_to<>>
      value_ids_;  // written form -> index in values_
  std::vector<Value> values_;
  std::vector<std::vector<std::uint32_t>> members_;  // parallel to snapshot_.groups: value ids
  // Parallel to snapshot_.groups: members given normalized (not owned).
  std::vector<const std::vector<std::string>*> normalized_members_;
  std::size_t disabled_ = 0;
};

}  // namespace idsync::ldap::internal
