// Join: strings with a separator between them, for the daemon's messages and
// its rendered output (not installed). Pure; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace idsync::daemon {

// `parts` in order with `sep` between each two; "" when `parts` is empty.
inline std::string Join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

}  // namespace idsync::daemon
