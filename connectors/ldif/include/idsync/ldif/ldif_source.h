// The `ldif` source: an LDIF export read as a directory, with the same users
// and groups settings as the `ldap` source (base, subtree scope, filter,
// disabled_filter, attribute names, nesting).
//
// An LdifSource is used from one thread at a time.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "idsync/ldif/ldif_config.h"
#include "idsync/mapping/ports.h"

namespace idsync::ldif {

// What a read left out, for logs and metrics.
struct LdifStats {
  std::size_t entries = 0;             // records in the file
  std::size_t unresolved_members = 0;  // member values naming no user or group of the snapshot
  std::size_t invalid_member_dns = 0;  // member values that are not valid DNs
};

// Builds a snapshot from LDIF text under `source`'s settings. Users: entries
// at or below users.base (compared as normalized DNs; an empty base is the
// whole file) that match users.filter; disabled when they match
// users.disabled_filter. A user's id is its users.id attribute, else its
// entryUUID, else its normalized DN. Groups likewise; `member` values that
// name a user or group of the snapshot (compared as DNs) become members,
// others are ignored and counted in `stats` (when not null).
// kInvalidArgument for malformed LDIF, a base that is not a DN, a filter that
// does not parse or cannot be evaluated in memory, an entry whose DN does not
// parse, or two users (or two groups) with the same DN.
Result<mapping::SourceSnapshot> SnapshotFromLdif(const LdifConfig& source, std::string_view text,
                                                 LdifStats* stats = nullptr);

// An IdentitySource that reads `source.path` on every Read().
class LdifSource : public mapping::IdentitySource {
 public:
  explicit LdifSource(LdifConfig source) : source_(std::move(source)) {}

  const std::string& name() const override { return source_.name; }

  // kNotFound when the file cannot be read; else as SnapshotFromLdif.
  Result<mapping::SourceSnapshot> Read() override;

  // The counts of the last successful Read().
  const LdifStats& last_stats() const { return last_stats_; }

 private:
  LdifConfig source_;
  LdifStats last_stats_;
};

}  // namespace idsync::ldif
