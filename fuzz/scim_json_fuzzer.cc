// The JSON reader behind every SCIM body (connectors/scim/include/idsync/
// scim/json.h): its depth guard runs before the JSON library sees the text.
// Whatever parses prints as JSON that parses again to the same value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "idsync/scim/json.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  idsync::Result<idsync::scim::Json> json = idsync::scim::Json::Parse(text);
  if (!json.ok()) return 0;
  const std::string printed = json->Dump();
  idsync::Result<idsync::scim::Json> again = idsync::scim::Json::Parse(printed);
  if (!again.ok() || again->Dump() != printed) std::abort();
  return 0;
}
