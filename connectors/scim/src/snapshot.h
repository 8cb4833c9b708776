// Export: a SCIM source's resources as the directory snapshot the mapping
// reads (what ScimService::Snapshot() answers). Internal to connectors/scim.
#pragma once

#include "idsync/mapping/model.h"

#include "resource_table.h"

namespace idsync::scim::internal {

// The snapshot of `s`: its users and groups in list order, members resolved
// to indices (ids the source does not know left out, a member listed twice
// counted once), nested = true; see ScimService::Snapshot() for the fields.
// Takes the source's shared lock.
mapping::SourceSnapshot ExportSnapshot(const SourceState& s);

// The part of ExportSnapshot(s) the people with `emails` (ASCII lower-cased)
// need: their users, and the groups they are in directly or through nested
// groups, with members limited to those users and groups. Mapping these
// people from it (MapOptions::only_emails) gives what mapping them from the
// whole snapshot gives. Costs one pass over the users and one over the
// memberships per level of nesting found; allocates only for what it keeps.
mapping::SourceSnapshot ExportSnapshotOf(const SourceState& s,
                                         const std::vector<std::string>& emails);

}  // namespace idsync::scim::internal
