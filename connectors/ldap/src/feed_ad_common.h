// Pieces the two Active Directory change feeds share (DirSync in
// feed_dirsync.cc, uSNChanged polling in feed_usn.cc, which defines these so
// that the library's source list needs no extra file): which domain
// controller answers, searches with extra controls, whether a DN lies under
// a configured base, a full load of the configured users and groups into an
// EntryCache, and re-reading one object by its objectGUID.
//
// Private to connectors/ldap. Used from the feed's thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "idsync/base/status.h"

#include "connection.h"
#include "feeds.h"

namespace idsync::ldap::internal {

// Which domain controller a connection talks to, from its root DSE and its
// NTDS Settings object.
struct DcIdentity {
  std::string ds_service_name;         // DN of the DC's NTDS Settings object
  std::string dns_host_name;           // for logs
  std::string invocation_id;           // GUID text; changes when the DC's database is restored
  std::string default_naming_context;  // the domain's DN
  std::uint64_t highest_usn = 0;       // highestCommittedUSN when read
};

// Reads the root DSE and the invocationId of its dsServiceName. kInternal
// when the server is not an Active Directory DC (no dsServiceName).
Result<DcIdentity> ReadDcIdentity(Session& session);

// A search like Session::Search that also sends `controls` (not owned; the
// paged-results control is added when `paged`). `on_result`, when set, gets
// the response controls of each final result (one per page).
Status SearchWithControls(Session& session, const std::string& what, const std::string& base,
                          int scope, const std::string& filter,
                          const std::vector<std::string>& attributes,
                          const std::vector<LDAPControl*>& controls, bool paged,
                          const Session::EntryFn& on_entry,
                          const std::function<Status(LDAPControl** response)>& on_result = {});

// True when `dn` is `base` or below it (DNs compared normalized). False for
// a DN that does not parse.
bool UnderBase(const std::string& dn, const std::string& base);

// Replaces the cache's entries with every user and group the full read
// would return (inside a batch); the user keys go to `user_keys` for
// RefreshDisabled.
Status LoadAll(Session& session, EntryCache& cache, std::vector<std::string>* user_keys);

// Removes the entry with this key, user or group, and takes its DN out of
// every cached group's members: Active Directory drops a deleted object's
// links without reporting the groups that lost it, and a later entry with
// the same DN must not inherit the old memberships. Inside a batch.
void RemoveDeleted(EntryCache& cache, const std::string& key);

// Re-reads the object with this key (objectGUID text) through a
// <GUID=...> base search and puts it into the cache as a user or group when
// it is under the configured base and matches the filter; otherwise removes
// it from the cache (deleted, moved out, no longer matching). A re-read user
// is appended to `changed_users`. Inside a batch.
Status Reload(Session& session, EntryCache& cache, const std::string& key,
              std::vector<std::string>* changed_users);

}  // namespace idsync::ldap::internal
