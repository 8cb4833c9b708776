// Finds the connector for a source's `type:` and builds it. Registration is
// explicit (RegisterBuiltinConnectors), not by static initializers.
//
// A registry is filled once at start and then only read: reads are
// thread-safe after that.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "idsync/config/config.h"
#include "idsync/mapping/ports.h"
#include "idsync/mapping/status.h"

namespace idsync::daemon {

class ConnectorRegistry {
 public:
  using Factory =
      std::function<Result<std::unique_ptr<mapping::IdentitySource>>(const config::SourceConfig&)>;

  // Adds or replaces the factory for `type` ("ldap", "ldif", "scim").
  void Register(std::string type, Factory factory);

  // Builds the source. kNotFound when no connector serves its type, else
  // whatever the factory returns.
  Result<std::unique_ptr<mapping::IdentitySource>> Create(const config::SourceConfig& source) const;

 private:
  std::map<std::string, Factory> factories_;
};

// The type name of a configured source ("ldap", "ldif", "scim").
std::string SourceTypeName(config::SourceType type);

// The registry with every connector this build has.
ConnectorRegistry& BuiltinConnectors();

}  // namespace idsync::daemon
