// The values that flow through the pure core: what a source read (a directory
// snapshot), what the account holds, and the access a person should have.
//
// Plain value types; no behaviour beyond small helpers. Thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "idsync/mapping/catalog.h"

namespace idsync::mapping {

// Account role. kAdmin has every permission; kMember has what its levels say.
enum class Role : std::uint8_t { kMember = 0, kAdmin = 1 };
std::string_view RoleName(Role role);  // "member" | "admin"

// One user entry as a source read it.
struct DirectoryUser {
  std::string id;     // stable id within the source: entryUUID, objectGUID, SCIM id, or DN
  std::string dn;     // LDAP DN as read; empty for SCIM
  std::string email;  // as read; may be empty (then the entry is not mapped)
  std::string name;   // display name
  bool disabled = false;
};

// One group as a source read it, with its direct members resolved to indices
// into the snapshot's `users` and `groups`. Members the source could not
// resolve (outside the search base, say) are left out by the adapter.
struct DirectoryGroup {
  std::string id;
  std::string dn;    // LDAP DN as read; empty for SCIM
  std::string name;  // LDAP name attribute, SCIM displayName
  std::vector<std::uint32_t> member_users;
  std::vector<std::uint32_t> member_groups;
};

// Everything one source knows, as of one read.
struct SourceSnapshot {
  std::string source;  // the source's configured name
  std::vector<DirectoryUser> users;
  std::vector<DirectoryGroup> groups;
  // Resolve nesting: members of a member group are members of this group.
  bool nested = true;
  // Nesting deeper than this (in groups below a group) fails the mapping of
  // this source, rather than being cut silently.
  int max_depth = 32;
  // True when this snapshot is the last good read of a source whose latest
  // read failed (or that never read successfully: then it is empty). While a
  // source is failing, nobody it granted anything loses access.
  bool failed = false;
  // True when the failed source has no good read at all. Then idsync cannot
  // tell whom it granted, and no managed user loses access in the run.
  bool never_read = false;
};

// A user of the account, as GET /users returns it, plus whether idsync manages it.
struct AccountUser {
  enum class Status : std::uint8_t { kInvited, kActive };
  std::string id;
  std::string email;  // as stored
  std::string name;
  Role role = Role::kMember;
  Status status = Status::kActive;
  ItemLevels levels;                  // one per catalog item (expanded from the stored map)
  std::vector<std::string> projects;  // project ids, sorted
  bool managed = false;
};

// A project of the account.
struct Project {
  std::string id;
  std::string name;
};

}  // namespace idsync::mapping
