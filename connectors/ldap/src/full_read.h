// The full read's searches on one session: the users (then the disabled
// users), the groups with their ranged members and in-chain users, and the
// merge of the groups into the snapshot builder. LdapSource::Read runs them
// on one or two connections; they are apart so that they can be driven over
// any connection, a scripted one included (fuzz/ldap_entry_fuzzer.cc).
// Private to connectors/ldap.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/ldap/ldap_config.h"

#include "connection.h"
#include "snapshot_builder.h"

namespace idsync::ldap::internal {

// The groups of one read, gathered apart from the SnapshotBuilder (which is
// single-threaded) so that they can be read on a second connection while
// the users are read on the first; merged into the builder afterwards.
struct GroupsRead {
  struct Group {
    std::string dn;
    std::string id;
    std::string name;
    std::vector<std::uint32_t> members;  // keys in `values`
  };
  TextIndex values;  // member values as the server wrote them, once
  std::vector<Group> groups;
  std::vector<std::vector<std::string>> chains;  // groups.in_chain: parallel to `groups`
  std::size_t pages = 0;
  std::size_t ranged_fetches = 0;
};

// Users, then disabled users, into the builder. `on_user` is told how many
// users were read so far, after each.
Status ReadUsers(const LdapConfig& source, Session& session, SnapshotBuilder& builder,
                 const std::function<void(std::size_t)>& on_user);

// Groups, their ranged members and (groups.in_chain) their users as the
// server resolves them. Stops with an error as soon as `stop` is set.
Status ReadGroups(const LdapConfig& source, Session& session, GroupsRead* out,
                  const std::atomic<bool>& stop);

// The groups into the builder, after the users (AddGroup's checks apply).
Status MergeGroups(GroupsRead& read, SnapshotBuilder& builder);

}  // namespace idsync::ldap::internal
