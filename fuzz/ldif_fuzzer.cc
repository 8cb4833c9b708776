// The LDIF reader (connectors/ldif/include/idsync/ldif/ldif.h): any text
// gives entries or a "line N" error, never a crash or a hang.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "idsync/ldif/ldif.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto entries = idsync::ldif::ParseLdif(text);
  if (entries.ok()) {
    for (const auto& e : *entries) {
      for (const auto& [name, values] : e.attributes) (void)e.Get(name);
    }
  }
  return 0;
}
