// The leader lease: which of several idsyncd processes sharing one store
// runs the syncs and sends the outbox. The lease is one row: a holder, an
// expiry in the database's own clock (so that no replica's clock matters),
// and an epoch that only grows, bumped each time the lease changes hands.
//
// The epoch is a fencing token. A leader tells the store its epoch
// (Store::SetFence); from then on every write only a leader makes (runs,
// the outbox, the mirror, the audit log, the account cache, source state)
// checks in its own transaction that the lease still has that holder and
// epoch, and once another has taken over fails with kFailedPrecondition
// carrying the payload kFenceKey, changing nothing. A leader that was
// paused past its lease and resumes is stopped there, whatever it believes.
//
// Thread-safe; blocks on I/O. On PostgreSQL the lease uses a connection of
// its own, so that renewals never queue behind the parts' work.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "idsync/base/status.h"

namespace idsync::store {

// Payload key of a write refused by the fence (value: "lost").
inline constexpr std::string_view kFenceKey = "idsync.fence";

// True for a write the fence refused.
inline bool FenceLost(const Status& status) { return status.GetPayload(kFenceKey).has_value(); }

struct LeaseState {
  std::string holder;              // who holds it (or held it last)
  std::int64_t epoch = 0;          // 1 for the first holder, then one more per change of hands
  bool expired = false;            // its expiry has passed: anyone may take it
  std::int64_t expires_in_ms = 0;  // until it expires (0 when expired)
};

class Lease {
 public:
  virtual ~Lease() = default;

  // Takes the lease for `holder` when it is free or expired (bumping the
  // epoch), or renews it when `holder` holds it (keeping the epoch); either
  // way it then lasts `duration` from now in the database's clock. Returns
  // the lease as it is after: held by `holder`, or by someone else whose
  // lease has not expired. kInvalidArgument for an empty holder.
  virtual Result<LeaseState> Acquire(const std::string& holder,
                                     std::chrono::milliseconds duration) = 0;
  // Gives the lease up at once when `holder` holds it (a clean shutdown, or
  // `idsync apply` done), so that another takes over without waiting for
  // the expiry. Not an error when `holder` does not hold it.
  virtual Status Release(const std::string& holder) = 0;
  // The lease as it is; nullopt when it was never taken.
  virtual Result<std::optional<LeaseState>> Current() = 0;
};

// What a leader's writes are checked against (Store::SetFence).
struct Fence {
  std::string holder;
  std::int64_t epoch = 0;
};

}  // namespace idsync::store
