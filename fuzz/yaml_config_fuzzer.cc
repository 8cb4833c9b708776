// The YAML configuration loader (config/include/idsync/config/config.h):
// any text gives a Config or an error that names the file, with a line and
// column when the text is the reason, and never a crash, a hang or an
// exception. Secrets are not read (SecretUse::kNone), so no input reaches
// the file system through a ${file:...} reference; the environment is empty.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include "idsync/config/config.h"
#include "idsync/ldap/ldap_config.h"
#include "idsync/ldif/ldif_config.h"
#include "idsync/scim/scim_config.h"

namespace {

const idsync::config::SourceTypes& Types() {
  static const idsync::config::SourceTypes* const kTypes = [] {
    auto* types = new idsync::config::SourceTypes();
    types->Add(idsync::ldap::LdapSourceType());
    types->Add(idsync::ldif::LdifSourceType());
    types->Add(idsync::scim::ScimSourceType());
    return types;
  }();
  return *kTypes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::string file = "/nonexistent/idsync.yaml";
  idsync::config::LoadOptions options;
  options.secrets = idsync::config::SecretUse::kNone;
  options.source_types = &Types();
  options.getenv = [](const std::string&) { return std::optional<std::string>(); };
  options.credentials_directory = "/nonexistent/credentials";
  idsync::Result<idsync::config::Config> config = idsync::config::ParseConfig(text, file, options);
  if (config.ok()) return 0;
  // kInternal is only reachable when an exception escaped the traversal.
  if (config.status().code() == idsync::StatusCode::kInternal) std::abort();
  if (config.status().message().rfind(file + ":", 0) != 0) std::abort();
  return 0;
}
