#include "idsync/scim/scim_config.h"

#include <memory>
#include <utility>

namespace idsync::scim {
namespace {

Result<std::shared_ptr<const config::SourceOptions>> Parse(const config::SourceSection& s) {
  auto out = std::make_shared<ScimConfig>();
  ASSIGN_OR_RETURN(out->strict_patch, s.Flag("strict_patch", out->strict_patch));
  return std::shared_ptr<const config::SourceOptions>(std::move(out));
}

}  // namespace

config::SourceType ScimSourceType() {
  config::SourceType type;
  type.name = "scim";
  type.pushed = true;
  type.keys = {"strict_patch"};
  type.parse = Parse;
  return type;
}

}  // namespace idsync::scim
