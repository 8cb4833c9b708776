// What every run and every command reads first: the rules compiled against a
// catalog, and a snapshot of each source.
//
// Thread-compatible: functions keep no state.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "idsync/config/config.h"
#include "idsync/mapping/catalog.h"
#include "idsync/mapping/model.h"
#include "idsync/mapping/rules.h"
#include "idsync/mapping/status.h"

namespace idsync::daemon {

// Compiles the configuration's presets and rules against `catalog`.
// kInvalidArgument naming the rule or preset (the loader has already checked
// them against the catalog it was given; this catches a catalog change).
Result<std::unique_ptr<mapping::RuleSet>> CompileRules(const config::Config& config,
                                                       const mapping::Catalog& catalog);

struct SourceReads {
  std::vector<mapping::SourceSnapshot> snapshots;  // one per source, config order
  std::vector<std::string> failed;                 // names of the sources that failed
  std::vector<std::string> errors;                 // "NAME: message", parallel to failed
  // A failed source has no earlier good read to stand in for it, so nobody
  // may lose access in this run.
  bool hold_all = false;
};

// Reads every source through the built-in connectors. A source that fails is
// kept as an empty failed snapshot and listed; the others are still read.
// TODO(#4): stand in the store's last good read for a failed source.
SourceReads ReadAllSources(const config::Config& config);

}  // namespace idsync::daemon
