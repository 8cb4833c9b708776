// The leader lease and the fence, over a Session. The lease is the one row
// of leader_lease; times are the database's clock in milliseconds.

#include <mutex>

#include "sql_parts.h"

namespace idsync::store::internal {
namespace {

// The lease row as seen by the database's clock now.
Result<std::optional<LeaseState>> ReadLease(Session& s) {
  ASSIGN_OR_RETURN(std::unique_ptr<Rows> rows,
                   s.Query(Concat({"SELECT holder, epoch, expires_ms - ", s.dialect().now_ms,
                                   " FROM leader_lease WHERE id = 1"}),
                           {}));
  ASSIGN_OR_RETURN(bool row, rows->Next());
  if (!row) return std::optional<LeaseState>();
  LeaseState state;
  state.holder = rows->Text(0);
  state.epoch = rows->Int(1);
  const std::int64_t left = rows->Int(2);
  state.expired = left <= 0;
  state.expires_in_ms = state.expired ? 0 : left;
  return std::optional<LeaseState>(std::move(state));
}

}  // namespace

Result<LeaseState> SqlLease::Acquire(const std::string& holder,
                                     std::chrono::milliseconds duration) {
  if (holder.empty()) return InvalidArgumentError("a lease needs a holder");
  std::lock_guard lock(s_.mu);
  // A lease another holds and has not let run out is only read: the write
  // below locks the row even when it changes nothing, and followers asking
  // every few seconds would make the leader's renewals and fenced writes
  // (FOR SHARE) queue behind them.
  ASSIGN_OR_RETURN(std::optional<LeaseState> seen, ReadLease(s_));
  if (seen && seen->holder != holder && !seen->expired) return *seen;
  ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(s_));
  // Taken when free or expired, with the epoch one more; renewed by its
  // holder with the same epoch. The epoch is kept even by a holder whose
  // lease ran out, since nobody held it in between.
  const std::string_view now = s_.dialect().now_ms;
  RETURN_IF_ERROR(
      s_.Exec(Concat({"INSERT INTO leader_lease (id, holder, epoch, expires_ms) VALUES (1, $1, 1, ",
                      now,
                      " + $2) ON CONFLICT (id) DO UPDATE SET "
                      "epoch = CASE WHEN leader_lease.holder = excluded.holder "
                      "THEN leader_lease.epoch ELSE leader_lease.epoch + 1 END, "
                      "holder = excluded.holder, expires_ms = excluded.expires_ms "
                      "WHERE leader_lease.holder = excluded.holder OR leader_lease.expires_ms <= ",
                      now}),
              {holder, static_cast<std::int64_t>(duration.count())})
          .status()
          .WithContext("take the leader lease"));
  ASSIGN_OR_RETURN(std::optional<LeaseState> state, ReadLease(s_));
  RETURN_IF_ERROR(tx.Commit().WithContext("take the leader lease"));
  if (!state) return InternalError("the leader lease row is missing after it was written");
  return *state;
}

Status SqlLease::Release(const std::string& holder) {
  std::lock_guard lock(s_.mu);
  // Expired now, holder and epoch kept: the next holder bumps the epoch.
  return s_
      .Exec(Concat({"UPDATE leader_lease SET expires_ms = ", s_.dialect().now_ms,
                    " WHERE id = 1 AND holder = $1"}),
            {holder})
      .status()
      .WithContext("release the leader lease");
}

Result<std::optional<LeaseState>> SqlLease::Current() {
  std::lock_guard lock(s_.mu);
  return ReadLease(s_);
}

Status CheckFence(Session& s) {
  if (!s.fence) return Status::Ok();
  ASSIGN_OR_RETURN(std::unique_ptr<Rows> rows,
                   s.Query(Concat({"SELECT holder, epoch FROM leader_lease WHERE id = 1",
                                   s.dialect().for_share}),
                           {}));
  ASSIGN_OR_RETURN(bool row, rows->Next());
  if (row && rows->Text(0) == s.fence->holder && rows->Int(1) == s.fence->epoch) {
    return Status::Ok();
  }
  std::string now =
      row ? "the lease is held by " + rows->Text(0) + " at epoch " + std::to_string(rows->Int(1))
          : "the lease is gone";
  Status lost = FailedPreconditionError("not the leader any more (was at epoch " +
                                        std::to_string(s.fence->epoch) + "; " + now +
                                        "): the write was refused");
  lost.SetPayload(kFenceKey, "lost");
  lost.SetPayload(kStageKey, std::string(kStageStore));
  return lost;
}

}  // namespace idsync::store::internal
