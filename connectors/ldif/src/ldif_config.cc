#include "idsync/ldif/ldif_config.h"

#include <memory>
#include <utility>

namespace idsync::ldif {
namespace {

Result<std::shared_ptr<const config::SourceOptions>> Parse(const config::SourceSection& s) {
  auto out = std::make_shared<LdifConfig>();
  out->name = s.source_name();
  ASSIGN_OR_RETURN(out->path, s.Path("path"));
  ASSIGN_OR_RETURN(out->users, s.Users("users", /*in_memory=*/true));
  ASSIGN_OR_RETURN(out->groups, s.Groups("groups", /*in_memory=*/true));
  return std::shared_ptr<const config::SourceOptions>(std::move(out));
}

}  // namespace

config::SourceType LdifSourceType() {
  config::SourceType type;
  type.name = "ldif";
  type.keys = {"path", "users", "groups"};
  type.parse = Parse;
  return type;
}

}  // namespace idsync::ldif
