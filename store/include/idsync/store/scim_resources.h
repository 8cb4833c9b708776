// The resources SCIM identity providers pushed, kept so that a restart
// serves the same Users and Groups and maps the same people, and so that
// several replicas on one store serve the same view.
//
// Every write also appends to a change log in the same transaction: the
// source, type and id of the resource written, under a sequence number that
// grows in commit order. A replica that serves SCIM from memory follows the
// log (ChangesSince) to take in what other replicas wrote, woken by Watch()
// where the database can signal (PostgreSQL's LISTEN/NOTIFY) and polling
// anyway, since a signal can be lost while a connection is down. The log
// keeps the latest kKeptScimChanges changes; a follower that fell further
// behind is told so (ScimChangePage::gap) and loads everything again.
//
// Thread-safe; blocks on I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "idsync/base/status.h"

namespace idsync::store {

// One SCIM resource as the SCIM endpoint stored it.
struct ScimResourceRow {
  std::string source;  // the scim source
  std::string type;    // "User" | "Group"
  std::string id;
  std::string json;
  std::int64_t version = 0;
  std::int64_t updated_ms = 0;
};

// One entry of the change log: the resource (source, type, id) was written
// or deleted.
struct ScimChangeRow {
  std::int64_t seq = 0;
  std::string source;
  std::string type;
  std::string id;
  std::int64_t at_ms = 0;  // when it was committed, in the database's clock
  // The resource as the store held it when the page was read (a later
  // version than this change wrote, if it changed again); nullopt when it
  // is deleted.
  std::optional<ScimResourceRow> now;
};

struct ScimChangePage {
  // Changes with seq past the one asked after, in commit order.
  std::vector<ScimChangeRow> changes;
  // Changes past the one asked after were pruned: the follower must load
  // every resource again.
  bool gap = false;
  // The database's clock at the read (for how far behind a follower is).
  std::int64_t now_ms = 0;
};

// The change log keeps at least this many of the latest changes.
inline constexpr std::int64_t kKeptScimChanges = 100000;

// Wakes a follower of the change log.
class ScimChangeSignal {
 public:
  virtual ~ScimChangeSignal() = default;
  // Waits up to `timeout` for a write to be signalled. True when one was,
  // or when the signal could not be watched for a while (after a lost
  // connection): signals may have been missed, so look at the log now.
  virtual bool Wait(std::chrono::milliseconds timeout) = 0;
};

// A write the store has run but not yet made durable: it shares one commit
// (one fsync) with the writes that arrived with it. Wait returns once that
// commit has ended: OK when the write landed, else why it did not.
class PendingWrite {
 public:
  virtual ~PendingWrite() = default;
  virtual Status Wait() = 0;
};

class ScimResources {
 public:
  virtual ~ScimResources() = default;

  // Inserts or replaces (source, type, id), whatever version is stored.
  // kInvalidArgument without a source or an id, or for a type other than
  // User or Group.
  virtual Status Put(const ScimResourceRow& row) = 0;
  // Writes `row` only when the store holds version `stored_version` of it
  // (0: when it holds none); kAborted, changing nothing, when another
  // writer got there first. Otherwise as Put.
  virtual Status PutIf(const ScimResourceRow& row, std::int64_t stored_version) = 0;
  // Removing an absent resource is not an error.
  virtual Status Delete(const std::string& source, const std::string& type,
                        const std::string& id) = 0;
  // Every resource of `source`, ordered by type then id.
  virtual Result<std::vector<ScimResourceRow>> List(const std::string& source) = 0;
  // PutIf and Delete in two steps: the write runs now (its own error, such
  // as kAborted, is returned at once) and becomes durable with the writes
  // that arrive while it waits. The caller may let go of its own locks
  // before it calls Wait, so that the next write can join the same commit.
  // By default, PutIf or Delete, already durable when they return.
  virtual Result<std::unique_ptr<PendingWrite>> StagePutIf(const ScimResourceRow& row,
                                                           std::int64_t stored_version);
  virtual Result<std::unique_ptr<PendingWrite>> StageDelete(const std::string& source,
                                                            const std::string& type,
                                                            const std::string& id);
  // One resource; nullopt when the store holds none.
  virtual Result<std::optional<ScimResourceRow>> Get(const std::string& source,
                                                     const std::string& type,
                                                     const std::string& id) = 0;

  // The sequence number of the latest change (0 when none): read it before
  // List, then follow from it.
  virtual Result<std::int64_t> LastChange() = 0;
  // At most `limit` changes after `after`, in commit order, each with the
  // resource as it is now (one read for the page).
  virtual Result<ScimChangePage> ChangesSince(std::int64_t after, int limit) = 0;
  // A signal of writes, on a connection of its own where the database has
  // one; where it has none (SQLite, one process), Wait only waits.
  virtual Result<std::unique_ptr<ScimChangeSignal>> Watch() = 0;
};

}  // namespace idsync::store
