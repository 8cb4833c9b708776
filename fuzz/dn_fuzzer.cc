// Distinguished names and globs (mapping/include/idsync/mapping/dn.h,
// glob.h). A normal form is a fixed point (normalizing it again changes
// nothing) and equals the DN it came from; the first half of the input is
// also a glob pattern matched against the second.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "idsync/mapping/dn.h"
#include "idsync/mapping/glob.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)idsync::mapping::LooksLikeDn(text);
  idsync::Result<std::string> normal = idsync::mapping::NormalizeDn(text);
  if (normal.ok()) {
    idsync::Result<std::string> again = idsync::mapping::NormalizeDn(*normal);
    if (!again.ok() || *again != *normal) std::abort();
    if (!idsync::mapping::DnEquals(text, *normal)) std::abort();
  }
  const std::string_view pattern = text.substr(0, size / 2);
  const std::string_view subject = text.substr(size / 2);
  (void)idsync::mapping::HasGlob(pattern);
  (void)idsync::mapping::GlobMatch(pattern, subject);
  // A pattern without wildcards matches itself.
  if (!idsync::mapping::HasGlob(subject) && !idsync::mapping::GlobMatch(subject, subject)) {
    std::abort();
  }
  return 0;
}
