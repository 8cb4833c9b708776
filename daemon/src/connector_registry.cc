#include "idsync/daemon/connector_registry.h"

#include "idsync/ldap/ldap_source.h"
#include "idsync/ldif/ldif_source.h"
#include "idsync/scim/endpoint.h"
#include "idsync/scim/scim_config.h"
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

void ConnectorRegistry::Register(config::SourceType type, Factory factory) {
  factories_[type.name] = std::move(factory);
  types_.Add(std::move(type));
}

Result<std::unique_ptr<mapping::IdentitySource>> ConnectorRegistry::Create(
    const config::SourceConfig& source, const ConnectorContext& context) const {
  auto it = factories_.find(source.type);
  if (it == factories_.end()) {
    return NotFoundError("source " + source.name + ": this build cannot read sources of type " +
                         source.type + " yet");
  }
  return it->second(source, context);
}

namespace {

using Made = Result<std::unique_ptr<mapping::IdentitySource>>;

// The connector's options, which the loader made with its parser.
template <typename T>
Result<const T*> OptionsOf(const config::SourceConfig& source) {
  const T* options = source.OptionsAs<T>();
  if (options == nullptr) {
    return InternalError("source " + source.name + ": its options are not those of type " +
                         source.type);
  }
  return options;
}

Made MakeLdap(const config::SourceConfig& source, const ConnectorContext&) {
  ASSIGN_OR_RETURN(const ldap::LdapConfig* options, OptionsOf<ldap::LdapConfig>(source));
  ASSIGN_OR_RETURN(std::unique_ptr<ldap::LdapSource> created, ldap::LdapSource::Create(*options));
  return std::unique_ptr<mapping::IdentitySource>(std::move(created));
}

Made MakeLdif(const config::SourceConfig& source, const ConnectorContext&) {
  ASSIGN_OR_RETURN(const ldif::LdifConfig* options, OptionsOf<ldif::LdifConfig>(source));
  return std::unique_ptr<mapping::IdentitySource>(new ldif::LdifSource(*options));
}

Made MakeScim(const config::SourceConfig& source, const ConnectorContext& context) {
  if (context.store == nullptr) {
    return FailedPreconditionError("source " + source.name +
                                   ": SCIM resources live in the store, which this command "
                                   "could not open");
  }
  return std::unique_ptr<mapping::IdentitySource>(
      new StoredScimSource(source.name, *context.store));
}

}  // namespace

ConnectorRegistry& BuiltinConnectors() {
  static ConnectorRegistry* registry = [] {
    auto* r = new ConnectorRegistry();
    r->Register(ldap::LdapSourceType(), MakeLdap);
    r->Register(ldif::LdifSourceType(), MakeLdif);
    r->Register(scim::ScimSourceType(), MakeScim);
    return r;
  }();
  return *registry;
}

config::LoadOptions BuiltinLoadOptions() {
  config::LoadOptions options;
  options.source_types = &BuiltinConnectors().types();
  return options;
}

}  // namespace idsync::daemon
