#include "idsync/daemon/connector_registry.h"

#include "idsync/ldap/ldap_source.h"
#include "idsync/ldif/ldif_source.h"
#include "idsync/scim/endpoint.h"
#include "idsync/scim/service.h"

namespace idsync::daemon {
namespace {

// A SCIM source read outside the daemon (the CLI): the resources the SCIM
// endpoint stored, turned into a snapshot by the same service code that
// answers the identity provider, so both see the same people.
class StoredScimSource : public mapping::IdentitySource {
 public:
  StoredScimSource(std::string name, store::Store& store) : name_(std::move(name)), store_(store) {}
  const std::string& name() const override { return name_; }
  Result<mapping::SourceSnapshot> Read() override {
    scim::StoreResourcePersistence persistence(store_);
    scim::ServiceOptions options;
    options.sources = {name_};
    ASSIGN_OR_RETURN(std::unique_ptr<scim::ScimService> service,
                     scim::ScimService::Create(options, persistence, nullptr));
    return service->Snapshot(name_);
  }

 private:
  std::string name_;
  store::Store& store_;
};

}  // namespace

void ConnectorRegistry::Register(std::string type, Factory factory) {
  factories_[std::move(type)] = std::move(factory);
}

Result<std::unique_ptr<mapping::IdentitySource>> ConnectorRegistry::Create(
    const config::SourceConfig& source, const ConnectorContext& context) const {
  std::string type = SourceTypeName(source.type);
  auto it = factories_.find(type);
  if (it == factories_.end()) {
    return NotFoundError("source " + source.name + ": this build cannot read sources of type " +
                         type + " yet");
  }
  return it->second(source, context);
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
  using Made = Result<std::unique_ptr<mapping::IdentitySource>>;
  static ConnectorRegistry* registry = [] {
    auto* r = new ConnectorRegistry();
    r->Register("ldif", [](const config::SourceConfig& source, const ConnectorContext&) -> Made {
      return std::unique_ptr<mapping::IdentitySource>(new ldif::LdifSource(source));
    });
    r->Register("ldap", [](const config::SourceConfig& source, const ConnectorContext&) -> Made {
      ASSIGN_OR_RETURN(std::unique_ptr<ldap::LdapSource> created, ldap::LdapSource::Create(source));
      return std::unique_ptr<mapping::IdentitySource>(std::move(created));
    });
    r->Register("scim",
                [](const config::SourceConfig& source, const ConnectorContext& context) -> Made {
                  if (context.store == nullptr) {
                    return FailedPreconditionError("source " + source.name +
                                                   ": SCIM resources live in the store, which "
                                                   "this command could not open");
                  }
                  return std::unique_ptr<mapping::IdentitySource>(
                      new StoredScimSource(source.name, *context.store));
                });
    return r;
  }();
  return *registry;
}

}  // namespace idsync::daemon
