// LDAP search filters (connectors/filter/include/idsync/filter/filter.h):
// parse, evaluate against a fixed entry, print. What parses prints as a
// filter that parses again, prints the same and matches the same.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "idsync/filter/filter.h"

namespace {

const idsync::filter::Entry& TheEntry() {
  static const idsync::filter::Entry* const kEntry =
      new idsync::filter::Entry{"CN=Ada Lovelace,OU=People,DC=corp,DC=example",
                                {{"objectClass", {"top", "person", "user"}},
                                 {"cn", {"Ada Lovelace"}},
                                 {"mail", {"ada@corp.example"}},
                                 {"userAccountControl", {"512"}},
                                 {"memberOf", {"CN=Staff,OU=Groups,DC=corp,DC=example"}},
                                 {"description", {"  spaced   value  ", "\xc3\x89quipe"}}}};
  return *kEntry;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  idsync::Result<idsync::filter::Filter> f = idsync::filter::Filter::Parse(text);
  if (!f.ok()) return 0;
  const bool evaluable = f->CheckEvaluable().ok();
  const bool matched = f->Matches(TheEntry());
  const std::string printed = f->ToString();
  idsync::Result<idsync::filter::Filter> again = idsync::filter::Filter::Parse(printed);
  if (!again.ok()) std::abort();  // printed a filter that does not parse
  if (again->ToString() != printed) std::abort();
  if (again->CheckEvaluable().ok() != evaluable) std::abort();
  if (again->Matches(TheEntry()) != matched) std::abort();
  return 0;
}
