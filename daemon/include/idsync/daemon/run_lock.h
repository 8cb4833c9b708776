// The run lock: an exclusive flock(2) on "<store>.lock" held for the life of
// a run, so that two runs (the CLI's apply and the daemon, or two CLIs) never
// plan and send at once. idsyncd holds it for its whole life; `idsync apply`
// for one run. The holder writes what it is into the file ("idsyncd 1234",
// "apply 5678") so that a refused caller can say who is in the way.
// EnterStoreOwner, beside it, decides whom a process opening the store runs as.
//
// RunLock is not thread-safe (one object per holder). EnterStoreOwner changes
// the user of the whole process, every thread's: call it at start-up.
#pragma once

#include <string>

#include "idsync/base/status.h"

namespace idsync::daemon {

class RunLock {
 public:
  // `store_path`: the SQLite file; the lock is that path plus ".lock".
  explicit RunLock(std::string store_path);
  ~RunLock();  // releases the lock
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  // Takes the lock without waiting and records `holder` in it. OK;
  // kFailedPrecondition when someone else holds it (the message names the
  // holder: "idsyncd (pid 1234)"); kUnavailable when the file cannot be opened.
  Status Acquire(const std::string& holder);

  // What the current holder wrote ("idsyncd 1234"), or "" when unknown.
  std::string Holder() const;

  // True when the holder is an idsyncd (the message tells to use POST /v1/sync).
  bool HeldByDaemon() const;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

// Run as root, the store must not gain files its owner cannot write. When the
// `idsync` system user exists and owns the store file (or, before the first
// run, its directory), the process switches to it for good; when root owns
// them, nothing changes; otherwise kPermissionDenied saying whom to run as.
// A no-op for other users, for "" and ":memory:", and after a switch.
Status EnterStoreOwner(const std::string& sqlite_path);

}  // namespace idsync::daemon
