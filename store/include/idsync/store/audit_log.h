// The audit log: a hash chain of every change idsync made to the account.
// Each entry's hash covers its fields and the hash before it, so an edited,
// removed or reordered entry breaks the chain; `audit verify --head` also
// catches a cut-off end. Appends happen inside Outbox::Complete (a landed
// write) or through Append (a change with no write, e.g. an adoption).
// VerifyAuditChain is the check itself, over rows a backend reads for it. Thread-safe; blocks on
// I/O.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "idsync/base/status.h"

namespace idsync::store {

// One audit log entry: a change idsync made to the account.
struct AuditEntry {
  std::int64_t seq = 0;  // 1, 2, 3, ... in the order written
  std::int64_t at_ms = 0;
  std::int64_t run_id = 0;
  std::string action;  // "invite" | "update" | "remove" | "revoke" | "adopt"
  std::string email;
  std::string user_id;
  std::string source;
  std::string detail_json;  // the plan's operation: rules, before, after, reason
  std::string prev_hash;    // hex SHA-256 of the entry before ("" for the first)
  std::string hash;         // hex SHA-256 over this entry's fields and prev_hash
};

// What `audit verify` found.
struct AuditCheck {
  bool ok = true;
  std::int64_t entries = 0;
  std::string head;  // hash of the last entry ("" when empty)
  // When !ok: the first entry found wrong (0 when the problem is the end)
  // and what is wrong with it: edited, removed, reordered, or cut off.
  std::int64_t bad_seq = 0;
  std::string problem;
  std::string message;  // for people: names the first bad entry and what is wrong
};

// The reads a verification needs: the walk over every entry, and two
// lookups to tell a reordering from a removal. A backend provides them; the
// checking is VerifyAuditChain's.
class AuditChainReader {
 public:
  virtual ~AuditChainReader() = default;
  // Calls on_row for every entry in seq order, from one consistent snapshot;
  // stops at on_row's first error and returns it.
  virtual Status ForEach(const std::function<Status(const AuditEntry&)>& on_row) = 0;
  virtual Result<std::optional<AuditEntry>> Row(std::int64_t seq) = 0;
  virtual Result<bool> HashStored(const std::string& hash) = 0;
};

// The hash every backend stores with `entry` (entry.hash itself not
// included): lower-case hex SHA-256 over a canonical form of its fields and
// prev_hash (store/src/audit_hash.h). kInternal if hashing fails.
Result<std::string> AuditHash(const AuditEntry& entry);

// Walks the chain and reports the first problem: a gap in seq, an entry
// whose hash does not match its fields (edited, or moved: an entry's hash
// covers its seq), a link to the wrong previous hash, or (with
// `expected_head`) a chain that no longer contains that head. Errors are the
// reader's. Holds no state of its own; thread-safe.
Result<AuditCheck> VerifyAuditChain(AuditChainReader& reader,
                                    const std::optional<std::string>& expected_head);

class AuditLog {
 public:
  virtual ~AuditLog() = default;

  // Appends an entry outside Outbox::Complete (e.g. an adoption with no
  // write). Fills seq, prev_hash and hash. Returns the new head.
  virtual Result<std::string> Append(AuditEntry& entry) = 0;
  // Entries with at_ms >= since_ms, in order.
  virtual Result<std::vector<AuditEntry>> Since(std::int64_t since_ms) = 0;
  // VerifyAuditChain over every stored entry.
  virtual Result<AuditCheck> Verify(const std::optional<std::string>& expected_head) = 0;
  virtual Result<std::string> Head() = 0;
};

}  // namespace idsync::store
