// What the store's parts need from a SQL database, so that one
// implementation of the parts (sql_parts.h) serves both backends: SQLite
// (sqlite_session.h) and PostgreSQL (pg_session.h).
//
// Statements are written once, in the SQL both databases accept: numbered
// parameters $1, $2, ...; INSERT ... ON CONFLICT ... DO UPDATE; RETURNING.
// Where the two must differ (locking a row or the audit chain for the
// length of a transaction), the Dialect says how. Internal to the store.
//
// Not thread-safe: a part holds the session's mutex for each call; writes
// that may share a commit go through Session::Write or Session::Stage.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/store/lease.h"
#include "idsync/store/scim_resources.h"

namespace idsync::store::internal {

// Bytes bound as a BLOB (SQLite) or bytea (PostgreSQL), not as text.
struct Bytes {
  std::string_view data;
};

// One parameter value; strings are text (valid UTF-8 is the caller's concern).
using Param = std::variant<std::nullptr_t, std::int64_t, std::string_view, Bytes>;

// The rows of one query, read front to back. Column accessors read the
// current row (after Next() returned true); NULL reads as 0 or "".
class Rows {
 public:
  virtual ~Rows() = default;
  virtual Result<bool> Next() = 0;
  virtual std::int64_t Int(int column) const = 0;
  virtual std::string Text(int column) const = 0;
  virtual std::string Blob(int column) const = 0;
  virtual bool IsNull(int column) const = 0;
};

// Where the two databases' SQL differs.
struct Dialect {
  // Appended to a SELECT inside a transaction that will change the rows it
  // read: " FOR UPDATE" where other writers run concurrently.
  std::string_view for_update;
  // Appended to a SELECT that claims the rows it reads for this transaction
  // without waiting: rows another transaction holds are left out.
  std::string_view claim;
  // A statement (or "") that serializes appends to the audit chain until the
  // transaction ends, so that two writers never link to the same head.
  std::string_view lock_audit_chain;
  // Appended to a SELECT inside a transaction whose outcome depends on the
  // rows it read staying as they are until it commits.
  std::string_view for_share;
  // An SQL expression for the database's clock, in milliseconds since the
  // Unix epoch.
  std::string_view now_ms;
  // After rows with explicit ids were inserted into the table named where
  // "{table}" stands: a statement that moves its id sequence past them (""
  // when the database does so itself).
  std::string_view resync_ids;
  // A statement (or "") that serializes appends to the SCIM change log
  // until the transaction ends, so that sequence numbers are taken in
  // commit order and a follower never skips one committed late.
  std::string_view lock_scim_changes;
  // A statement (or "") that signals the SCIM change log's watchers when the
  // transaction commits.
  std::string_view notify_scim;
  // A statement (or "") run outside any transaction after a large delete,
  // so that the space freed is not kept in a log file.
  std::string_view checkpoint;
  // An SQL expression for the mirror's `email` with ASCII letters alone
  // lower-cased (base::AsciiLower), whatever the database's locale.
  std::string_view ascii_lower_email;
};

class Session;

// The session's mutex. Taking it for a call first commits an open group of
// staged writes (Session::Stage), so that the call finds the connection
// outside any transaction: only the group's own writers share it.
class SessionMutex {
 public:
  explicit SessionMutex(Session& session) : session_(session) {}
  SessionMutex(const SessionMutex&) = delete;
  SessionMutex& operator=(const SessionMutex&) = delete;

  void lock();
  bool try_lock();
  void unlock() { m_.unlock(); }

 private:
  friend class Session;
  std::mutex m_;
  Session& session_;
};

// How a group of staged writes ended; shared by its writers. `status` is
// written before `done` is set, and read only after.
struct GroupOutcome {
  std::atomic<bool> done{false};
  Status status;  // the commit's
};

// A write run inside the open group's transaction and not yet committed.
// Session::Await says how its commit ended.
class StagedWrite {
 public:
  StagedWrite() = default;

 private:
  friend class Session;
  explicit StagedWrite(std::shared_ptr<GroupOutcome> outcome) : outcome_(std::move(outcome)) {}
  std::shared_ptr<GroupOutcome> outcome_;
};

class Session {
 public:
  Session() = default;
  virtual ~Session() = default;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  virtual const Dialect& dialect() const = 0;

  // Runs `sql` with `params` bound to $1, $2, ...; the rows stay readable
  // until the next call on the session. Errors map to Status as follows:
  // a unique or primary-key violation is kAlreadyExists; a lost connection,
  // a busy or locked database, a timeout or a full disk is kUnavailable; a
  // damaged database is kFailedPrecondition; anything else is kInternal.
  // Every error carries the payload kStageKey = kStageStore.
  virtual Result<std::unique_ptr<Rows>> Query(std::string_view sql,
                                              std::span<const Param> params) = 0;
  // Runs `sql` to its end; returns how many rows it changed.
  virtual Result<std::int64_t> Exec(std::string_view sql, std::span<const Param> params) = 0;

  // The same, with the parameters written in place.
  Result<std::unique_ptr<Rows>> Query(std::string_view sql, std::initializer_list<Param> params) {
    return Query(sql, std::span<const Param>(params.begin(), params.size()));
  }
  Result<std::int64_t> Exec(std::string_view sql, std::initializer_list<Param> params) {
    return Exec(sql, std::span<const Param>(params.begin(), params.size()));
  }

  // A write transaction. Begin waits for the write lock where the database
  // has one; Rollback never fails in a way the caller can act on.
  virtual Status Begin() = 0;
  virtual Status Commit() = 0;
  virtual void Rollback() = 0;

  // A signal of `channel`'s notifications (the dialect's notify_*
  // statements) on a connection of its own; where the database has none,
  // one that only waits.
  virtual Result<std::unique_ptr<ScimChangeSignal>> Listen(std::string_view channel) = 0;

  // --- group commit ---
  //
  // Writes that arrive together share one transaction and one commit (one
  // fsync), and each writer learns its outcome only after that commit. A
  // writer's statements run at once, in the group's open transaction, inside
  // a savepoint of their own when the group already has members, so that a
  // write that fails undoes only itself. The group commits when one of its
  // writers waits (Await) and no other writer is on its way in, or when it
  // is full or has been open for kGroupMaxOpen; or earlier, when any other
  // call takes `mu`.

  // Runs `write` (the session held, no other lock taken by it) in the open
  // group's transaction, opening one if none is open. Returns `write`'s
  // error at once, its changes undone; otherwise the staged write, which
  // the caller must Await. Takes the session itself: the caller must not
  // hold `mu`.
  Result<StagedWrite> Stage(const std::function<Status()>& write);
  // Returns once the transaction holding `staged` has ended: OK when it
  // committed, else the reason (the write did not land).
  Status Await(const StagedWrite& staged);
  // Stage, then Await; but a writer arriving while others write waits in a
  // queue, and the first in it stages every queued write and commits them
  // together, telling each its outcome (one hand-off of the session per
  // group, not per write).
  Status Write(const std::function<Status()>& write);

  // Called from inside a write (the session held): runs `finish` once, just
  // before the open group commits, with the session held. Its error fails
  // the whole group, as a failed commit does. A second call with the same
  // `key` in one group is ignored; returns true for the first (the group's
  // first write that asks), so the caller can start afresh what `finish`
  // will read. For what the writes of a group do once together (the SCIM
  // change log's rows, under its lock, at the end).
  bool BeforeCommit(std::string_view key, std::function<Status()> finish);

  static constexpr int kGroupMaxWrites = 256;
  static constexpr std::chrono::microseconds kGroupMaxOpen{3000};
  // How long a group waits for one more writer after seeing that writers
  // arrive together (the last commit found one waiting).
  static constexpr std::chrono::microseconds kGroupLinger{200};

  // Held by a part for the length of each call.
  SessionMutex mu{*this};
  // What leader-only writes are checked against (lease.h); guarded by mu.
  std::optional<Fence> fence;

 private:
  friend class SessionMutex;
  // Stage with mu.m_ held.
  Result<StagedWrite> StageLocked(const std::function<Status()>& write);
  // With mu.m_ held: commits the open group, if any, and tells its writers.
  void CommitGroup();
  // With mu.m_ held: undoes the open group, its writers told `why`.
  void AbandonGroup(const Status& why);

  std::shared_ptr<GroupOutcome> group_;  // the open group; null when none
  // BeforeCommit's, in the order given; cleared when the group ends.
  std::vector<std::pair<std::string, std::function<Status()>>> before_commit_;
  int group_writes_ = 0;
  std::chrono::steady_clock::time_point group_opened_;
  std::chrono::steady_clock::time_point group_last_write_;
  std::atomic<int> arriving_{0};  // writers in Stage, waiting for the session
  bool together_ = false;         // writers were seen arriving together
  // The group one of its writers is about to commit; its other writers
  // wait on its `done` alone.
  const GroupOutcome* committing_ = nullptr;
  std::condition_variable linger_cv_;  // for the committing writer: a write staged

  // Writers in Write, in arrival order; guarded by queue_mu_.
  struct QueuedWrite {
    const std::function<Status()>* write;
    Status status;
    bool done = false;
    std::condition_variable cv;
  };
  std::mutex queue_mu_;
  std::deque<QueuedWrite*> queue_;
  // With mu.m_ held: ends the open group with `status` and tells its writers.
  void EndGroup(Status status);
};

// Begin ... Commit on a session; rolled back on destruction unless committed.
class Transaction {
 public:
  static Result<Transaction> Begin(Session& session);
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  Status Commit();

 private:
  explicit Transaction(Session* session) : session_(session) {}
  Session* session_ = nullptr;  // null once committed, rolled back or moved from
};

// The first column of the first row as an integer, or `otherwise` when the
// query returns no row.
Result<std::int64_t> QueryInt(Session& s, std::string_view sql, std::initializer_list<Param> params,
                              std::int64_t otherwise);

}  // namespace idsync::store::internal
