// One source checked for `idsync validate --online`: built from its
// configuration, read whole as a run would read it (an LDAP source binds over
// its configured TLS and searches its bases; an LDIF source reads and parses
// its file; a SCIM source reads what the endpoint stored), and, when it is
// watched, its change feed started once. Blocks on the network, bounded by
// the source's own timeouts. Nothing is written: a feed started here keeps
// its state in memory, never in the store.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "idsync/config/config.h"
#include "idsync/daemon/connector_registry.h"

namespace idsync::daemon {

struct SourceCheck {
  std::string source;
  std::string type;  // "ldap", "ldif", "scim"
  bool ok = false;
  std::string error;  // why it failed (!ok); never a secret
  std::size_t users = 0;
  std::size_t disabled = 0;
  std::size_t groups = 0;
  std::string follows;           // how changes are followed ("dirsync", ...); "" when not watched
  std::size_t token_hashes = 0;  // scim
};

// Checks `source`. A read that succeeds but finds no user under an LDAP or
// LDIF source's users.base and users.filter fails (so does a groups section
// that finds no group): a run would see an empty directory. A SCIM source
// with nothing pushed yet passes. `feed_wait` bounds the wait for the change
// feed's first answer after its start.
SourceCheck CheckSource(const config::SourceConfig& source, const ConnectorContext& context,
                        std::chrono::milliseconds feed_wait);

}  // namespace idsync::daemon
