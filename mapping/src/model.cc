#include "idsync/mapping/model.h"

namespace idsync::mapping {

std::string_view RoleName(Role role) { return role == Role::kAdmin ? "admin" : "member"; }

}  // namespace idsync::mapping
