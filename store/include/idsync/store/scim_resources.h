// The resources SCIM identity providers pushed, kept so that a restart
// serves the same Users and Groups and maps the same people.
// Thread-safe; blocks on I/O.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "idsync/base/status.h"

namespace idsync::store {

// One SCIM resource as the SCIM endpoint stored it.
struct ScimResourceRow {
  std::string source;  // the scim source
  std::string type;    // "User" | "Group"
  std::string id;
  std::string json;
  std::int64_t version = 0;
  std::int64_t updated_ms = 0;
};

class ScimResources {
 public:
  virtual ~ScimResources() = default;

  // Inserts or replaces (source, type, id). kInvalidArgument without a
  // source or an id, or for a type other than User or Group.
  virtual Status Put(const ScimResourceRow& row) = 0;
  // Removing an absent resource is not an error.
  virtual Status Delete(const std::string& source, const std::string& type,
                        const std::string& id) = 0;
  // Every resource of `source`, ordered by type then id.
  virtual Result<std::vector<ScimResourceRow>> List(const std::string& source) = 0;
};

}  // namespace idsync::store
