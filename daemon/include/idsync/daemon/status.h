// What `idsync status` and the daemon's GET /v1/status show: the last runs,
// the pending and failed operations, the audit log's head and each source's
// state, all read from the store; the daemon adds its own state in place.
//
// Functions only; thread-safe as the store given to them is.
#pragma once

#include <cstdint>
#include <string>

#include "idsync/base/status.h"
#include "idsync/config/config.h"
#include "idsync/daemon/inputs.h"
#include "idsync/store/store.h"

namespace idsync::daemon {

// What only a running idsyncd knows, shown under "daemon" in /v1/status.
struct DaemonStatus {
  bool running = false;                       // a full or a partial run is under way
  std::int64_t next_full_run_in_seconds = 0;  // 0 when due
  std::int64_t people_waiting = 0;            // touched people not yet in a partial run
  std::string last_run;  // "last full run ok at 10:00:00Z: 3 applied, 0 failed"
  // This replica ("replica" in /v1/status): its id, whether it holds the
  // leader lease, and at which epoch (0 for a process alone on SQLite).
  std::string replica_id;
  bool leader = false;
  std::int64_t epoch = 0;
};

// `status --json`'s object, pretty-printed: runs (newest ten), pending,
// failed (latest twenty), audit, sources; and "daemon" and "replica" last
// when `daemon` is given. Errors are the store's.
Result<std::string> StatusJson(const config::Config& config, store::Store& store,
                               const DaemonStatus* daemon = nullptr);

// A time as status shows it: "2026-11-28T10:00:00Z" (UTC), "-" for none (<= 0).
std::string FormatTime(std::int64_t unix_ms);

// A source's state as status shows it: "ok", "failing", "never-read" or
// "not-read".
std::string SourceStateName(const SourceStatus& status);

// A run's kind as status shows it: "full" or "partial", the words the log
// uses. Older stores say "apply" for a full run.
std::string RunKindName(const std::string& stored);

}  // namespace idsync::daemon
