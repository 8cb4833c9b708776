// The seams between the pure core and the outside: sources of identities.
// Adapters in connectors/ implement them; tests substitute in-memory ones.
#pragma once

#include <string>

#include "idsync/mapping/model.h"
#include "idsync/mapping/status.h"

namespace idsync::mapping {

// A directory or identity provider, read whole. Implementations document
// their thread-safety; callers use one from one thread at a time.
class IdentitySource {
 public:
  virtual ~IdentitySource() = default;

  // The configured source name.
  virtual const std::string& name() const = 0;

  // One complete, consistent read. Any failure (unreachable, timed out,
  // truncated) is an error: a partial read is never returned.
  virtual Result<SourceSnapshot> Read() = 0;
};

}  // namespace idsync::mapping
