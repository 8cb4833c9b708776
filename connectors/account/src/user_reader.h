// Reads the account's User objects (contracts/account-api.md) straight out
// of a JSON text, without building a document: a listing page of 1,000
// users is about half a megabyte, and a plan reads every page. Each user is
// checked as it ends (required fields, known role and status, levels), and
// the first problem ends the read. Private to connectors/account.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/mapping/catalog.h"
#include "idsync/mapping/model.h"
#include "idsync/mapping/ports.h"

namespace idsync::account::wire {

// Where the users go: as records, or in the compact form
// (mapping::CompactAccountUser) expanded through `catalog`.
struct UserSink {
  std::vector<mapping::AccountRecord>* records = nullptr;
  std::vector<mapping::AccountUser>* compact = nullptr;
  const mapping::Catalog* catalog = nullptr;  // required with `compact`
};

// A page of GET /users: {"users": [User...], "next_cursor": "…" or null}.
// Users are appended to the sink; `next_cursor` is nullopt on the last page.
// kInternal naming the problem (the sink then holds a partial page).
Status ReadUserPage(std::string_view body, const UserSink& sink,
                    std::optional<std::string>* next_cursor);

// One User object, the whole body.
Result<mapping::AccountRecord> ReadUser(std::string_view body);

}  // namespace idsync::account::wire
