// Copying a whole store into an empty one, from any backend to any other:
// how a SQLite store moves to PostgreSQL (`idsync store copy --to URL`).
// Every row keeps its ids, states and times; the audit chain is copied as
// it is and verified where it lands, against the source's head, before the
// copy commits. Not thread-safe with writers of `from`: stop idsyncd first.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/store/store.h"

namespace idsync::store {

struct CopyReport {
  // Rows copied per table, in the order copied.
  std::vector<std::pair<std::string, std::int64_t>> tables;
  std::string audit_head;  // the same at both ends
  std::int64_t audit_entries = 0;
};

// Copies every row of `from` into `to` in one transaction on `to`.
// kFailedPrecondition when `to` already holds something (a copy never
// merges) or when the chain that landed does not verify; kInvalidArgument
// when the two are one store; the stores' errors as they are. On error
// `to` is left as it was.
Result<CopyReport> CopyStore(Store& from, Store& to);

}  // namespace idsync::store
