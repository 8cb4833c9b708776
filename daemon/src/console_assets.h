// The console's pages, compiled in (console_assets.cc is made at build time
// from daemon/console/ by cmake/EmbedAssets.cmake). Not installed.
#pragma once

#include <string_view>

namespace idsync::daemon {

struct ConsoleAsset {
  std::string_view path;          // "/ui/app.js"
  std::string_view content_type;  // "text/javascript; charset=utf-8"
  std::string_view body;
};

// The asset served at `path`, or nullptr.
const ConsoleAsset* FindConsoleAsset(std::string_view path);

}  // namespace idsync::daemon
