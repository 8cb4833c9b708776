#include "idsync/daemon/inputs.h"

#include "idsync/daemon/connector_registry.h"

namespace idsync::daemon {

Result<std::unique_ptr<mapping::RuleSet>> CompileRules(const config::Config& config,
                                                       const mapping::Catalog& catalog) {
  ASSIGN_OR_RETURN(mapping::PresetBook presets,
                   mapping::PresetBook::Create(catalog, config.custom_presets));
  std::vector<std::string> source_names;
  for (const auto& s : config.sources) source_names.push_back(s.name);
  ASSIGN_OR_RETURN(mapping::RuleSet rules,
                   mapping::RuleSet::Compile(config.rules, catalog, presets, source_names));
  return std::make_unique<mapping::RuleSet>(std::move(rules));
}

SourceReads ReadAllSources(const config::Config& config) {
  SourceReads reads;
  for (const auto& source : config.sources) {
    Result<mapping::SourceSnapshot> snapshot = [&]() -> Result<mapping::SourceSnapshot> {
      ASSIGN_OR_RETURN(auto reader, BuiltinConnectors().Create(source));
      return reader->Read();
    }();
    if (snapshot.ok()) {
      reads.snapshots.push_back(std::move(snapshot).value());
      continue;
    }
    mapping::SourceSnapshot failed;
    failed.source = source.name;
    failed.failed = true;
    failed.never_read = true;
    reads.snapshots.push_back(std::move(failed));
    reads.failed.push_back(source.name);
    reads.errors.push_back(source.name + ": " + snapshot.status().message());
    reads.hold_all = true;
  }
  return reads;
}

}  // namespace idsync::daemon
