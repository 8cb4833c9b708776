// The audit chain's hash: hex SHA-256 over a canonical serialization of one
// entry's fields and the hash of the entry before it.
#pragma once

#include <string>
#include <string_view>

#include "idsync/base/status.h"
#include "idsync/store/store.h"

namespace idsync::store {

// The bytes hashed for `entry`: a version tag, then seq, at_ms, run_id,
// action, email, user_id, source, detail_json and prev_hash, each written as
// "<decimal byte length>:<bytes>;" so that no two different entries give the
// same bytes (moving text from one field to the next changes a length).
// entry.hash is not part of it.
std::string AuditCanonical(const AuditEntry& entry);

// AuditHash (audit_log.h) is the lower-case hex SHA-256 of AuditCanonical.

// Lower-case hex SHA-256 of `data`. kInternal if OpenSSL fails.
Result<std::string> Sha256Hex(std::string_view data);

}  // namespace idsync::store
