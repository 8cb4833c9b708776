// What the report's writers share (report.cc, report_html.cc); not installed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "idsync/mapping/catalog.h"
#include "idsync/mapping/rules.h"

namespace idsync::daemon::report_internal {

// The level a person has on catalog item `item`: none without access, edit
// everywhere for an admin.
mapping::Level LevelOf(const mapping::PersonAccess& p, std::size_t item);
// The rule that gave item `item` (-1: none).
std::int32_t WhyOf(const mapping::PersonAccess& p, std::size_t item);
// The groups through which rule `rule` matched the person (nullptr: it did not).
const std::vector<mapping::GroupRef>* ViaOf(const mapping::PersonAccess& p, std::int32_t rule);
// One CSV field (RFC 4180 quoting), with a leading apostrophe where a
// spreadsheet would take it for a formula.
std::string CsvField(std::string_view value);
std::string JoinWith(const std::vector<std::string>& parts, std::string_view separator);

}  // namespace idsync::daemon::report_internal
