// The outbox: every planned account write, durable before it is sent, so a
// crash loses none and repeats none. An entry is planned, then sent (the
// idempotency key makes a resend after a crash safe), then done or failed.
// Complete records a landed write and everything it changes (the mirror,
// the managed set, the audit chain) in one transaction; what those changes
// are is the caller's decision, spelled out in the Completion.
// Thread-safe; blocks on I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/mapping/ports.h"
#include "idsync/mapping/reconcile.h"

namespace idsync::store {

// Where an outbox entry is in its life.
enum class OutboxState : std::uint8_t {
  kPlanned,  // written, never sent: dropped (and planned afresh) after a crash
  kSent,     // sent at least once: finished with the same key after a crash
  kDone,     // the account accepted it
  kFailed,   // rejected for good, or its retry deadline ran out
  kDropped,  // never sent and abandoned (crash recovery, run stopped)
};
std::string_view OutboxStateName(OutboxState state);  // "planned", "sent", ...

// One planned write to the account.
struct OutboxEntry {
  std::int64_t id = 0;                              // assigned by Enqueue
  std::int64_t run_id = 0;                          // the run that planned it
  mapping::OpKind kind = mapping::OpKind::kInvite;  // the plan's operation
  // The operation also takes an account user idsync did not manage under
  // management (adopt_existing).
  bool adopt = false;
  std::string email;            // the person's address
  mapping::AccountWrite write;  // exactly what is sent; write.idempotency_key is unique
  // The plan's operation as JSON (before, after, rules, reason): copied into
  // the audit entry when the write lands. Never read back for decisions.
  std::string operation_json;
  std::string source;  // what drove it: "full-run", "scim:okta", ...
  int priority = 0;    // higher runs first (SCIM-driven before bulk work)
  OutboxState state = OutboxState::kPlanned;
  int attempts = 0;
  std::string error;  // the last failure, for status
  // The lease epoch of the leader that last claimed it (MarkSent); 0 when
  // it was never sent, or sent with no lease held (one process on SQLite).
  std::int64_t claimed_epoch = 0;
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
};

// What a landed write changes in the store, all in one transaction.
struct Completion {
  std::int64_t entry_id = 0;
  std::int64_t at_ms = 0;
  // The user after the write (invite, patch), or nullopt after a delete.
  std::optional<mapping::AccountRecord> user;
  std::string user_id;  // the account user the write touched; required
  std::string action;   // the audit entry's action: "invite", "update", ..., "adopt"
  // What the write does to the managed set.
  enum class Management {
    kUnchanged,  // an update or revoke of a user already managed
    kInvited,    // the user becomes managed, as invited (kept if already managed)
    kAdopted,    // the user becomes managed, as adopted (kept if already managed)
    kForget,     // the user is gone from the account: no longer managed
  };
  Management management = Management::kUnchanged;
};

class Outbox {
 public:
  virtual ~Outbox() = default;

  // Writes every entry in one transaction, assigning ids (in order); each is
  // stored kPlanned with no attempts, created_ms as given and updated_ms =
  // created_ms. kAlreadyExists if an idempotency key is already stored (or
  // repeated in the batch); kInvalidArgument for an empty key. On error nothing
  // of the batch is stored and the ids stay 0.
  virtual Status Enqueue(std::vector<OutboxEntry>& entries) = 0;
  // Entries in kPlanned or kSent, highest priority first, then by id.
  virtual Result<std::vector<OutboxEntry>> Unfinished() = 0;
  // Entries that failed, newest first (for status). limit <= 0: all.
  virtual Result<std::vector<OutboxEntry>> Failed(int limit) = 0;
  // Before a send, the claim: kPlanned/kSent -> kSent, attempts+1, and
  // claimed_epoch = the fence's epoch (0 with no fence). Durable when it
  // returns. Where several processes share the store, the row is claimed
  // without waiting (PostgreSQL: FOR UPDATE SKIP LOCKED): a row another
  // transaction holds is kAborted at once, and the caller leaves the entry
  // unsent for a later run.
  virtual Status MarkSent(std::int64_t entry_id, std::int64_t at_ms) = 0;
  // A send failed transiently and will be retried later: records the error.
  virtual Status NoteError(std::int64_t entry_id, const std::string& error, std::int64_t at_ms) = 0;
  // The write landed: entry -> kDone, the mirror row written (or deleted
  // when completion.user is empty), the managed set changed as
  // completion.management says, an audit entry appended, all in one
  // transaction. Returns the new audit head. With a fence set, an entry in
  // kSent must have been claimed at the fence's epoch: one a former leader
  // sent is kAborted, since only sending it again with its key (after a
  // MarkSent here) tells what the account holds.
  // MarkSent, NoteError, Fail, Complete, Drop: kNotFound for an unknown entry,
  // kFailedPrecondition when it is no longer kPlanned or kSent; on any error
  // nothing changed.
  virtual Result<std::string> Complete(const Completion& completion) = 0;
  // Rejected for good: entry -> kFailed with the error (not audited: nothing changed).
  virtual Status Fail(std::int64_t entry_id, const std::string& error, std::int64_t at_ms) = 0;
  // Never sent and no longer wanted (a later plan for the person superseded
  // it, or its run stopped first): kPlanned -> kDropped.
  virtual Status Drop(std::int64_t entry_id, std::int64_t at_ms) = 0;
  // Crash recovery: every kPlanned entry -> kDropped. Returns how many.
  virtual Result<std::int64_t> DropPlanned(std::int64_t at_ms) = 0;
};

}  // namespace idsync::store
