// The `ldif` source: an LDIF export read as a directory, with the same users
// and groups settings as the `ldap` source (base, subtree scope, filter,
// disabled_filter, attribute names, nesting).
//
// An LdifSource is used from one thread at a time.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "idsync/config/config.h"
#include "idsync/mapping/ports.h"

namespace idsync::ldif {

// Builds a snapshot from LDIF text under `source`'s settings. Users: entries
// at or below users.base that match users.filter; disabled when they match
// users.disabled_filter. Groups likewise; `member` values that name a user or
// group of the snapshot (compared as DNs) become members, others are ignored.
// kInvalidArgument for malformed LDIF or filters.
Result<mapping::SourceSnapshot> SnapshotFromLdif(const config::SourceConfig& source,
                                                 std::string_view text);

// An IdentitySource that reads `source.path` on every Read().
class LdifSource : public mapping::IdentitySource {
 public:
  explicit LdifSource(config::SourceConfig source) : source_(std::move(source)) {}

  const std::string& name() const override { return source_.name; }

  // kNotFound when the file cannot be read; else as SnapshotFromLdif.
  Result<mapping::SourceSnapshot> Read() override;

 private:
  config::SourceConfig source_;
};

}  // namespace idsync::ldif
