// Change detection: whom a write to a SCIM source affects (ScimChange's
// emails), by the rule the LDAP change feeds follow too
// (mapping::AffectedEmails). Internal to connectors/scim.
#pragma once

#include <string>
#include <vector>

#include "idsync/scim/resource.h"

#include "resource_table.h"

namespace idsync::scim::internal {

// The lower-cased addresses (sorted, unique) a write of the resource of
// `type` affects, comparing `s` with the resource as `before` (null: it did
// not exist) and as `after` (null: deleted); the rest of `s` counts as it
// is. Either may be the entry `s` holds. The caller holds the source's
// writer mutex.
std::vector<std::string> ChangedEmails(const SourceState& s, ResourceType type, const Entry* before,
                                       const Entry* after);

}  // namespace idsync::scim::internal
