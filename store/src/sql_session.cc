#include "sql_session.h"

#include <algorithm>
#include <utility>

namespace idsync::store::internal {

Result<Transaction> Transaction::Begin(Session& session) {
  RETURN_IF_ERROR(session.Begin());
  return Transaction(&session);
}

Transaction::Transaction(Transaction&& other) noexcept
    : session_(std::exchange(other.session_, nullptr)) {}

Transaction::~Transaction() {
  if (session_ != nullptr) session_->Rollback();
}

Status Transaction::Commit() {
  Session* session = std::exchange(session_, nullptr);
  Status status = session->Commit();
  // A failed COMMIT may leave the transaction open; nothing of it may land.
  if (!status.ok()) session->Rollback();
  return status;
}

void SessionMutex::lock() {
  m_.lock();
  session_.CommitGroup();
}

bool SessionMutex::try_lock() {
  if (!m_.try_lock()) return false;
  session_.CommitGroup();
  return true;
}

Result<StagedWrite> Session::Stage(const std::function<Status()>& write) {
  arriving_.fetch_add(1);
  std::unique_lock lock(mu.m_);
  arriving_.fetch_sub(1);
  // Whatever happens, a writer about to commit looks again.
  struct Wake {
    Session& s;
    ~Wake() {
      if (s.committing_ != nullptr) s.linger_cv_.notify_one();
    }
  } wake{*this};
  return StageLocked(write);
}

Result<StagedWrite> Session::StageLocked(const std::function<Status()>& write) {
  if (!group_) {
    RETURN_IF_ERROR(Begin());
    group_ = std::make_shared<GroupOutcome>();
    group_writes_ = 0;
    group_opened_ = std::chrono::steady_clock::now();
  }
  // The first write of a group needs no savepoint: when it fails, the whole
  // transaction is its own to undo.
  const bool shared = group_writes_ > 0;
  if (shared) {
    Status saved = Exec("SAVEPOINT idsync_write", {}).status();
    if (!saved.ok()) {
      AbandonGroup(saved);
      return saved;
    }
  }
  Status written = write();
  if (!written.ok()) {
    if (!shared) {
      Rollback();
      group_.reset();
      before_commit_.clear();
      return written;
    }
    Status undone = Exec("ROLLBACK TO SAVEPOINT idsync_write", {}).status();
    if (undone.ok()) undone = Exec("RELEASE SAVEPOINT idsync_write", {}).status();
    // The database undid more than the savepoint (SQLite does on a full
    // disk or an I/O error): the group's other writes are gone too.
    if (!undone.ok()) AbandonGroup(undone);
    return written;
  }
  if (shared) {
    Status released = Exec("RELEASE SAVEPOINT idsync_write", {}).status();
    if (!released.ok()) {
      AbandonGroup(released);
      return released;
    }
  }
  ++group_writes_;
  group_last_write_ = std::chrono::steady_clock::now();
  StagedWrite staged(group_);
  if (group_writes_ >= kGroupMaxWrites) CommitGroup();
  return staged;
}

Status Session::Await(const StagedWrite& staged) {
  const std::shared_ptr<GroupOutcome>& mine = staged.outcome_;
  if (!mine) return InternalError("awaiting a write that was not staged");
  std::unique_lock lock(mu.m_);
  if (!mine->done.load(std::memory_order_acquire) && committing_ == mine.get()) {
    // A fellow writer commits this group.
    lock.unlock();
    mine->done.wait(false, std::memory_order_acquire);
    return mine->status;
  }
  // This writer commits the open group, which holds its write (every
  // earlier group has ended): once no other writer is on its way in.
  committing_ = mine.get();
  while (!mine->done.load(std::memory_order_acquire)) {
    const auto now = std::chrono::steady_clock::now();
    const auto full_by = group_opened_ + kGroupMaxOpen;
    if (now < full_by && group_writes_ < kGroupMaxWrites) {
      if (arriving_.load() > 0) {
        linger_cv_.wait_until(lock, full_by);
        continue;
      }
      const auto linger_until = std::min(group_last_write_ + kGroupLinger, full_by);
      if (together_ && now < linger_until) {
        linger_cv_.wait_until(lock, linger_until);
        continue;
      }
    }
    CommitGroup();
  }
  if (committing_ == mine.get()) committing_ = nullptr;
  return mine->status;
}

Status Session::Write(const std::function<Status()>& write) {
  QueuedWrite mine;
  mine.write = &write;
  std::unique_lock queue(queue_mu_);
  queue_.push_back(&mine);
  arriving_.fetch_add(1);
  while (!mine.done && queue_.front() != &mine) mine.cv.wait(queue);
  if (mine.done) return mine.status;

  // The first in the queue runs every write queued behind it and commits
  // them: the session changes hands once per group, not once per write.
  std::vector<QueuedWrite*> batch(queue_.begin(), queue_.end());
  if (batch.size() > static_cast<std::size_t>(kGroupMaxWrites)) batch.resize(kGroupMaxWrites);
  queue.unlock();
  std::vector<std::shared_ptr<GroupOutcome>> outcomes(batch.size());
  {
    std::unique_lock session(mu.m_);
    arriving_.fetch_sub(static_cast<int>(batch.size()));
    for (std::size_t i = 0; i < batch.size(); ++i) {
      Result<StagedWrite> staged = StageLocked(*batch[i]->write);
      if (staged.ok()) {
        outcomes[i] = staged->outcome_;
      } else {
        batch[i]->status = staged.status();
      }
    }
    // A group some of these joined may hold writes staged by others
    // (Stage); it commits now, for all of them.
    CommitGroup();
  }
  queue.lock();
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (outcomes[i]) batch[i]->status = outcomes[i]->status;
    batch[i]->done = true;
    queue_.pop_front();
    if (batch[i] != &mine) batch[i]->cv.notify_one();
  }
  if (!queue_.empty()) queue_.front()->cv.notify_one();
  return mine.status;
}

bool Session::BeforeCommit(std::string_view key, std::function<Status()> finish) {
  for (const auto& [known, fn] : before_commit_) {
    if (known == key) return false;
  }
  before_commit_.emplace_back(std::string(key), std::move(finish));
  return true;
}

void Session::CommitGroup() {
  if (!group_) return;
  for (const auto& [key, finish] : before_commit_) {
    if (Status finished = finish(); !finished.ok()) {
      Rollback();
      together_ = false;
      EndGroup(finished.WithContext("finishing " + std::to_string(group_writes_) +
                                    " write(s) together (" + key + ")"));
      return;
    }
  }
  Status committed = Commit();
  // A failed COMMIT may leave the transaction open; nothing of it may land.
  if (!committed.ok()) {
    Rollback();
    committed =
        committed.WithContext("committing " + std::to_string(group_writes_) + " write(s) together");
  }
  // Writers that came while this group committed, or more than one in it:
  // the next group waits a little for company.
  together_ = group_writes_ > 1 || arriving_.load() > 0;
  EndGroup(std::move(committed));
}

void Session::AbandonGroup(const Status& why) {
  Rollback();
  EndGroup(why.WithContext("the " + std::to_string(group_writes_) +
                           " write(s) staged with it were undone"));
}

void Session::EndGroup(Status status) {
  std::shared_ptr<GroupOutcome> outcome = std::exchange(group_, nullptr);
  group_writes_ = 0;
  before_commit_.clear();
  outcome->status = std::move(status);
  outcome->done.store(true, std::memory_order_release);
  outcome->done.notify_all();
  linger_cv_.notify_all();
}

Result<std::int64_t> QueryInt(Session& s, std::string_view sql, std::initializer_list<Param> params,
                              std::int64_t otherwise) {
  ASSIGN_OR_RETURN(std::unique_ptr<Rows> rows, s.Query(sql, params));
  ASSIGN_OR_RETURN(bool row, rows->Next());
  return row ? rows->Int(0) : otherwise;
}

}  // namespace idsync::store::internal
