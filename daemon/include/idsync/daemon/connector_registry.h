// The types of source this build has: how each reads its section of the
// configuration (config::SourceType) and how its connector is built.
// Registration is explicit (BuiltinConnectors, one line per type), not by
// static initializers.
//
// A registry is filled once at start and then only read: reads are
// thread-safe after that.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "idsync/base/status.h"
#include "idsync/config/config.h"
#include "idsync/mapping/ports.h"
#include "idsync/store/store.h"

namespace idsync::daemon {

// What a connector may use besides its configuration.
struct ConnectorContext {
  // The store (SCIM sources read the resources the SCIM endpoint stored);
  // nullptr when the command has none. Must outlive the built source.
  store::Store* store = nullptr;
};

class ConnectorRegistry {
 public:
  using Factory = std::function<Result<std::unique_ptr<mapping::IdentitySource>>(
      const config::SourceConfig&, const ConnectorContext&)>;

  // Adds or replaces a type of source: its configuration and its factory.
  void Register(config::SourceType type, Factory factory);

  // Builds the source. kNotFound when no connector serves its type, else
  // whatever the factory returns.
  Result<std::unique_ptr<mapping::IdentitySource>> Create(
      const config::SourceConfig& source, const ConnectorContext& context = {}) const;

  // For config::LoadOptions::source_types.
  const config::SourceTypes& types() const { return types_; }

 private:
  config::SourceTypes types_;
  std::map<std::string, Factory> factories_;
};

// The registry with every connector this build has. The "scim" connector
// reads the source's resources from the context's store (what the daemon's
// SCIM endpoint wrote); without a store it fails with kFailedPrecondition.
ConnectorRegistry& BuiltinConnectors();

// Load options whose source types are BuiltinConnectors()'s, the rest
// default.
config::LoadOptions BuiltinLoadOptions();

}  // namespace idsync::daemon
