// The `scim` source's own configuration (contracts/config.md, `type: scim`)
// and the parser of its section of the YAML file. The bearer tokens
// (`tokens`) are read by the loader, as for every pushed source.
#pragma once

#include "idsync/config/source.h"

namespace idsync::scim {

struct ScimConfig : config::SourceOptions {
  // RFC 7644 3.5.2.3 to the letter: a replace through a value filter that
  // matches nothing is refused (400 noTarget) instead of creating the value
  // (docs/scim-compatibility.md).
  bool strict_patch = false;
};

// The `scim` type: pushed, with `strict_patch`.
config::SourceType ScimSourceType();

}  // namespace idsync::scim
