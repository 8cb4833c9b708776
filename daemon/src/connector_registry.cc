#include "idsync/daemon/connector_registry.h"

#include "idsync/ldap/ldap_source.h"
#include "idsync/ldif/ldif_source.h"

namespace idsync::daemon {

void ConnectorRegistry::Register(std::string type, Factory factory) {
  factories_[std::move(type)] = std::move(factory);
}

Result<std::unique_ptr<mapping::IdentitySource>> ConnectorRegistry::Create(
    const config::SourceConfig& source) const {
  std::string type = SourceTypeName(source.type);
  auto it = factories_.find(type);
  if (it == factories_.end()) {
    return NotFoundError("source " + source.name + ": this build cannot read sources of type " +
                         type + " yet");
  }
  return it->second(source);
}

std::string SourceTypeName(config::SourceType type) {
  switch (type) {
    case config::SourceType::kLdap:
      return "ldap";
    case config::SourceType::kLdif:
      return "ldif";
    case config::SourceType::kScim:
      return "scim";
  }
  return "unknown";
}

ConnectorRegistry& BuiltinConnectors() {
  static ConnectorRegistry* registry = [] {
    auto* r = new ConnectorRegistry();
    r->Register(
        "ldif",
        [](const config::SourceConfig& source) -> Result<std::unique_ptr<mapping::IdentitySource>> {
          return std::unique_ptr<mapping::IdentitySource>(new ldif::LdifSource(source));
        });
    r->Register(
        "ldap",
        [](const config::SourceConfig& source) -> Result<std::unique_ptr<mapping::IdentitySource>> {
          ASSIGN_OR_RETURN(std::unique_ptr<ldap::LdapSource> created,
                           ldap::LdapSource::Create(source));
          return std::unique_ptr<mapping::IdentitySource>(std::move(created));
        });
    // TODO(#5): scim sources are read from the store the SCIM server writes.
    return r;
  }();
  return *registry;
}

}  // namespace idsync::daemon
