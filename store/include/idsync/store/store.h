// The store: idsync's single source of durable state. It keeps the runs, the
// outbox of planned account writes, the mirror of the account's users, which
// of them idsync manages, the hash-chained audit log, and cached account
// metadata (catalog, projects).
//
// SQLite is the embedded implementation (one file, WAL, versioned schema
// migrations); the interface is written so a PostgreSQL backend can implement
// it later. All methods are thread-safe (calls are serialized inside) and
// block on disk I/O. Times are milliseconds since the Unix epoch, given by the
// caller, so that tests control them.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/mapping/ports.h"

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
  std::int64_t id = 0;          // assigned by Enqueue
  std::int64_t run_id = 0;      // the run that planned it
  std::string op;               // the plan's kind: "invite" | "update" | "remove" | "revoke"
  std::string email;            // the person's address
  mapping::AccountWrite write;  // exactly what is sent; write.idempotency_key is unique
  // The plan's operation as JSON (before, after, rules, reason): copied into
  // the audit entry when the write lands.
  std::string operation_json;
  std::string source;  // what drove it: "full-run", "scim:okta", ...
  int priority = 0;    // higher runs first (SCIM-driven before bulk work)
  OutboxState state = OutboxState::kPlanned;
  int attempts = 0;
  std::string error;  // the last failure, for status
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
};

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

// One run (apply, or a partial run).
struct RunRecord {
  std::int64_t id = 0;
  std::string kind;  // "apply" | "partial"
  std::int64_t started_ms = 0;
  std::int64_t finished_ms = 0;  // 0 while running (or interrupted)
  std::string result;            // "" while running; "ok" | "failed" | "blocked" | "stopped"
  std::string summary_json;      // counts: invite/update/remove/revoke/unchanged, failed, ...
  std::string audit_head;        // the audit head when the run finished
  std::string error;
};

// A managed account user.
struct ManagedUser {
  std::string user_id;
  std::string email;
  std::string how;  // "invited" | "adopted"
  std::int64_t since_ms = 0;
};

// What a landed write changes in the store, all in one transaction.
struct Completion {
  std::int64_t entry_id = 0;
  std::int64_t at_ms = 0;
  // The user after the write (invite, patch), or nullopt after a delete.
  std::optional<mapping::AccountRecord> user;
  std::string user_id;  // the account user the write touched (set for every kind)
  // Audit action; "" uses the entry's op.
  std::string action;
  // Management after the write: invited or adopted users become managed;
  // deleted users are forgotten.
  bool adopted = false;
};

// One SCIM resource as the SCIM endpoint stored it.
struct ScimResourceRow {
  std::string source;  // the scim source
  std::string type;    // "User" | "Group"
  std::string id;
  std::string json;
  std::int64_t version = 0;
  std::int64_t updated_ms = 0;
};

// A source's last good read.
struct SourceRead {
  mapping::SourceSnapshot snapshot;
  std::int64_t read_ms = 0;  // when it was read
};

class Store {
 public:
  virtual ~Store() = default;

  // Opens (creating if needed) the store at `url`: "sqlite:///var/lib/idsync/state.db"
  // or "sqlite://relative/path.db"; runs pending schema migrations.
  // kInvalidArgument for another scheme (postgresql:// is not supported yet);
  // kUnavailable when the file cannot be opened or written; kFailedPrecondition
  // when its schema is newer than this build knows (or the file is not an
  // SQLite database). A new file is created with mode 0600; its directory
  // must exist.
  static Result<std::unique_ptr<Store>> Open(const std::string& url);

  // --- runs ---
  virtual Result<std::int64_t> BeginRun(const std::string& kind, std::int64_t at_ms) = 0;
  // Records the end of run.id (finished_ms, result, summary, audit head,
  // error). kNotFound for an unknown id; kInvalidArgument for an empty result
  // ("" means still running).
  virtual Status FinishRun(const RunRecord& run) = 0;
  // Newest first; limit <= 0: all.
  virtual Result<std::vector<RunRecord>> RecentRuns(int limit) = 0;
  // Runs begun and never finished (the process died): marked "stopped".
  virtual Status CloseInterruptedRuns(std::int64_t at_ms) = 0;

  // --- outbox ---
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
  // Before a send: kPlanned/kSent -> kSent, attempts+1. Durable when it returns.
  virtual Status MarkSent(std::int64_t entry_id, std::int64_t at_ms) = 0;
  // A send failed transiently and will be retried later: records the error.
  virtual Status NoteError(std::int64_t entry_id, const std::string& error, std::int64_t at_ms) = 0;
  // The write landed: entry -> kDone, mirror and managed set updated, audit
  // entry appended, all in one transaction. Returns the new audit head.
  // MarkSent, NoteError, Fail, Complete: kNotFound for an unknown entry,
  // kFailedPrecondition when it is no longer kPlanned or kSent; on any error
  // nothing changed.
  virtual Result<std::string> Complete(const Completion& completion) = 0;
  // Rejected for good: entry -> kFailed with the error (not audited: nothing changed).
  virtual Status Fail(std::int64_t entry_id, const std::string& error, std::int64_t at_ms) = 0;
  // Crash recovery: every kPlanned entry -> kDropped. Returns how many.
  virtual Result<std::int64_t> DropPlanned(std::int64_t at_ms) = 0;

  // --- the account as idsync last saw it ---
  virtual Status ReplaceMirror(const std::vector<mapping::AccountRecord>& users,
                               std::int64_t at_ms) = 0;
  virtual Result<std::vector<mapping::AccountRecord>> Mirror() = 0;
  virtual Result<std::vector<ManagedUser>> ManagedUsers() = 0;
  // Records management outside a write (adoption with nothing to change).
  virtual Status SetManaged(const ManagedUser& user) = 0;
  virtual Status ForgetManaged(const std::string& user_id) = 0;

  // --- audit log ---
  // Appends an entry outside Complete (e.g. an adoption with no write).
  // Fills seq, prev_hash and hash. Returns the new head.
  virtual Result<std::string> AppendAudit(AuditEntry& entry) = 0;
  // Entries with at_ms >= since_ms, in order.
  virtual Result<std::vector<AuditEntry>> Audit(std::int64_t since_ms) = 0;
  // Walks the chain. With `expected_head`, also checks the chain still ends
  // there (nothing cut off, nothing swapped at the end).
  virtual Result<AuditCheck> VerifyAudit(const std::optional<std::string>& expected_head) = 0;
  virtual Result<std::string> AuditHead() = 0;

  // --- SCIM resources ---
  // Inserts or replaces (source, type, id).
  virtual Status PutScimResource(const ScimResourceRow& row) = 0;
  // Removing an absent resource is not an error.
  virtual Status DeleteScimResource(const std::string& source, const std::string& type,
                                    const std::string& id) = 0;
  // Every resource of `source`, ordered by type then id.
  virtual Result<std::vector<ScimResourceRow>> ScimResources(const std::string& source) = 0;

  // --- each source's last good read ---
  // Replaces the source's stored read (snapshot.source names it). The
  // snapshot's failed/never_read flags are not stored.
  virtual Status PutSourceRead(const SourceRead& read) = 0;
  // nullopt when the source never read successfully.
  virtual Result<std::optional<SourceRead>> GetSourceRead(const std::string& source) = 0;

  // --- cached metadata: account catalog and projects (JSON as the account
  // returned it), change-feed state, source states; values may be any bytes ---
  virtual Status PutMeta(const std::string& key, const std::string& value) = 0;
  virtual Result<std::optional<std::string>> GetMeta(const std::string& key) = 0;
};

}  // namespace idsync::store
