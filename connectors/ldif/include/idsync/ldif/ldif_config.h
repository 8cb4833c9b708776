// The `ldif` source's own configuration (contracts/config.md, `type: ldif`)
// and the parser of its section of the YAML file.
#pragma once

#include <string>

#include "idsync/config/source.h"

namespace idsync::ldif {

struct LdifConfig : config::DirectoryOptions {
  std::string name;  // the source's name, for messages
  std::string path;  // the export, absolute
};

// The `ldif` type: `path`, `users` and `groups`, whose filters must be ones
// idsync can evaluate itself.
config::SourceType LdifSourceType();

}  // namespace idsync::ldif
