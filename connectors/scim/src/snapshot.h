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

}  // namespace idsync::scim::internal
