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

#include "idsync/base/status.h"
#include "idsync/mapping/model.h"

namespace idsync::ldap::internal {

struct BuildCounts {
  std::size_t disabled_users = 0;
  std::size_t unresolved_members = 0;
  std::size_t invalid_member_dns = 0;
};

// A set of texts, each with a number: an open-addressing table over one
// buffer holding the texts, so that a lookup costs no allocation and
// inserting costs none beyond growth. Keys are numbered 0, 1, ... in the
// order they were added. Thread-compatible.
class TextIndex {
 public:
  static constexpr std::uint32_t kNone = 0xffffffffu;

  // The key of `text`, or kNone.
  std::uint32_t Find(std::string_view text) const;
  // The key of `text`, added with `value` when absent; `*added` tells which.
  std::uint32_t Insert(std::string_view text, std::uint32_t value, bool* added);
  // As Insert (value 0) for each of `texts`, keys into `keys` (as many).
  // Faster for many: the memory each lookup needs is fetched ahead.
  void InsertAll(const std::string_view* texts, std::size_t count, std::uint32_t* keys);

  std::string_view Text(std::uint32_t key) const { return TextAt(entries_[key].offset); }
  std::uint32_t Value(std::uint32_t key) const { return entries_[key].value; }
  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::uint64_t offset;  // in texts_
    std::uint32_t value;
  };
  // A slot holds what a lookup needs, so that it reads the slot and then
  // the text, nothing in between: most mismatches are told by `tag` (the
  // hash's top bits) without reading the text.
  struct Slot {
    std::uint32_t tag = 0;
    std::uint32_t key = 0;  // key + 1; 0: empty
    std::uint64_t offset = 0;
  };
  static std::uint64_t Hash(std::string_view text);
  // Each text is kept after its length (4 bytes), in one cache line with
  // its start.
  std::string_view TextAt(std::uint64_t offset) const;
  std::uint32_t InsertHashed(std::string_view text, std::uint64_t hash, std::uint32_t value,
                             bool* added);
  // Room for `more` texts at most half the slots full.
  void Reserve(std::size_t more);

  std::vector<Slot> slots_;
  std::vector<Entry> entries_;
  std::vector<char> texts_;
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
  // A member value interned once, for AddMemberIds: values gathered apart
  // (on another thread, say) join the builder without a lookup per member.
  std::uint32_t InternMember(std::string_view value) { return Intern(value, nullptr, 0); }
  // Appends members given as InternMember ids.
  void AddMemberIds(std::uint32_t group, std::vector<std::uint32_t> ids);
  // Room for `more` members of a group, ahead of AddMember calls.
  void ReserveMembers(std::uint32_t group, std::size_t more) {
    members_[group].reserve(members_[group].size() + more);
  }
  // Appends one member value; nothing of `value` is kept but its text, once.
  void AddMember(std::uint32_t group, std::string_view value) {
    members_[group].push_back(Intern(value, nullptr, 0));
  }

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
  // (the entry's key in user_index_ or group_index_).
  struct Value {
    const TextIndex* index = nullptr;  // null: not known yet
    std::uint32_t key = 0;
  };

  // The id of a written member value (or entry DN), interned.
  std::uint32_t Intern(std::string_view written, const TextIndex* index, std::uint32_t key);

  mapping::SourceSnapshot snapshot_;
  TextIndex user_index_;   // normalized DN -> index in snapshot_.users
  TextIndex group_index_;  // normalized DN -> index in snapshot_.groups
  TextIndex value_ids_;    // written form -> key == index in values_
  std::vector<Value> values_;
  std::vector<std::vector<std::uint32_t>> members_;  // parallel to snapshot_.groups: value ids
  // Parallel to snapshot_.groups: members given normalized (not owned).
  std::vector<const std::vector<std::string>*> normalized_members_;
  std::size_t disabled_ = 0;
};

}  // namespace idsync::ldap::internal
