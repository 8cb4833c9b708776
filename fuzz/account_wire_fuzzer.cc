// The account API's answers (connectors/account/src/wire.h): a user, a page
// of users (full and compact), the catalog, the projects and an error body.
// The account is a system idsync trusts only so far: whatever it answers
// gives values or an error, never a crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "idsync/mapping/catalog.h"

#include "wire.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  namespace wire = idsync::account::wire;
  (void)wire::ParseUser(body);
  (void)wire::ParseUserPage(body);
  (void)wire::ParseCompactUserPage(body, idsync::mapping::Catalog::Builtin());
  (void)wire::ParseCatalog(body);
  (void)wire::ParseProjects(body);
  (void)wire::ParseError(body);
  return 0;
}
