#include "idsync/engine/executor.h"

#include <algorithm>
#include <utility>

namespace idsync::engine {

struct Executor::RunningBatch {
  Batch batch;
  std::size_t grants = 0;          // tasks before the first reduction, once ordered
  std::size_t grants_left = 0;     // grants not yet ended
  std::size_t left = 0;            // tasks not yet ended
  std::vector<std::size_t> order;  // grants, then reductions (stable)
  bool stopped = false;
  BatchResult result;
};

Executor::Executor(int concurrency) { SetConcurrency(concurrency); }

Executor::~Executor() {
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
    workers.swap(workers_);
  }
  work_cv_.notify_all();
  for (std::thread& t : workers) t.join();
}

void Executor::SetConcurrency(int concurrency) {
  std::lock_guard<std::mutex> l(mu_);
  target_workers_ = static_cast<std::size_t>(std::max(concurrency, 1));
  // Threads that ended after a shrink are joined here or at destruction.
  while (running_workers_ < target_workers_) {
    ++running_workers_;
    workers_.emplace_back([this] { Worker(); });
  }
  work_cv_.notify_all();  // extra workers notice they should end
}

void Executor::Worker() {
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    work_cv_.wait(l, [&] {
      return stopping_ || running_workers_ > target_workers_ || !interactive_.empty() ||
             !bulk_.empty();
    });
    if (stopping_ || running_workers_ > target_workers_) {
      --running_workers_;
      return;
    }
    std::deque<Queued>& queue = interactive_.empty() ? bulk_ : interactive_;
    const Queued next = queue.front();
    queue.pop_front();
    RunningBatch& rb = *next.batch;
    const Task& task = rb.batch.tasks[next.index];
    if (rb.stopped || (rb.batch.cancelled && rb.batch.cancelled())) {
      if (!task.droppable) Unbusy(task.email);
      rb.stopped = true;
      EndUnsent(rb, next.index, /*superseded=*/false);
      continue;
    }
    if (rb.batch.lane == Lane::kBulk && task.droppable && Superseded(rb, task.email)) {
      EndUnsent(rb, next.index, /*superseded=*/true);
      continue;
    }
    if (task.droppable) ++busy_[task.email];  // undroppable ones count from queueing
    l.unlock();
    const AfterSend after = rb.batch.send(next.index);
    l.lock();
    Unbusy(task.email);
    ++rb.result.sent;
    if (after == AfterSend::kStopBatch) rb.stopped = true;
    EndTask(rb);  // rb may be gone once mu_ is released
  }
}

bool Executor::Superseded(const RunningBatch& rb, const std::string& email) const {
  if (claimed_.count(email) > 0) return true;
  auto it = touched_.find(email);
  return it != touched_.end() && it->second > rb.batch.planned_at;
}

void Executor::Unbusy(const std::string& email) {
  auto it = busy_.find(email);
  if (it != busy_.end() && --it->second == 0) busy_.erase(it);
}

void Executor::EndUnsent(RunningBatch& rb, std::size_t index, bool superseded) {
  if (superseded) {
    rb.result.superseded.push_back(index);
  } else {
    ++rb.result.unsent;
  }
  EndTask(rb);
}

void Executor::EndTask(RunningBatch& rb) {
  --rb.left;
  if (rb.grants_left > 0 && --rb.grants_left == 0 && rb.grants < rb.order.size()) {
    QueuePhase(rb, /*reductions=*/true);
  }
  done_cv_.notify_all();
}

void Executor::QueuePhase(RunningBatch& rb, bool reductions) {
  const std::size_t begin = reductions ? rb.grants : 0;
  const std::size_t end = reductions ? rb.order.size() : rb.grants;
  std::deque<Queued>& queue = rb.batch.lane == Lane::kInteractive ? interactive_ : bulk_;
  for (std::size_t k = begin; k < end; ++k) {
    const std::size_t index = rb.order[k];
    const Task& task = rb.batch.tasks[index];
    if (!task.droppable) ++busy_[task.email];
    queue.push_back({&rb, index});
  }
  work_cv_.notify_all();
}

BatchResult Executor::Run(Batch batch) {
  RunningBatch rb;
  rb.batch = std::move(batch);
  const std::vector<Task>& tasks = rb.batch.tasks;
  rb.order.reserve(tasks.size());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    if (!tasks[i].reduction) rb.order.push_back(i);
  }
  rb.grants = rb.order.size();
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    if (tasks[i].reduction) rb.order.push_back(i);
  }
  rb.grants_left = rb.grants;
  rb.left = tasks.size();
  std::unique_lock<std::mutex> l(mu_);
  QueuePhase(rb, /*reductions=*/rb.grants == 0);
  done_cv_.wait(l, [&] { return rb.left == 0; });
  std::sort(rb.result.superseded.begin(), rb.result.superseded.end());
  return std::move(rb.result);
}

bool Executor::Busy(const std::vector<std::string>& emails) const {
  for (const std::string& e : emails) {
    if (busy_.count(e) > 0) return true;
  }
  return false;
}

Executor::Claim Executor::ClaimPeople(std::vector<std::string> emails) {
  std::sort(emails.begin(), emails.end());
  emails.erase(std::unique(emails.begin(), emails.end()), emails.end());
  std::unique_lock<std::mutex> l(mu_);
  ++clock_;
  const std::unordered_set<std::string> wanted(emails.begin(), emails.end());
  for (const std::string& e : emails) {
    ++claimed_[e];
    touched_[e] = clock_;
  }
  // Queued bulk writes for these people: superseded, or (undroppable) sent
  // next, ahead of everything else.
  std::vector<Queued> promoted;
  std::vector<Queued> superseded;
  std::deque<Queued> kept;
  for (const Queued& q : bulk_) {
    const Task& task = q.batch->batch.tasks[q.index];
    if (wanted.count(task.email) == 0) {
      kept.push_back(q);
    } else if (task.droppable) {
      superseded.push_back(q);
    } else {
      promoted.push_back(q);
    }
  }
  bulk_.swap(kept);
  // Ending a batch's last grant may queue its reductions: after the swap.
  for (const Queued& q : superseded) EndUnsent(*q.batch, q.index, /*superseded=*/true);
  for (auto it = promoted.rbegin(); it != promoted.rend(); ++it) interactive_.push_front(*it);
  if (!promoted.empty()) work_cv_.notify_all();
  done_cv_.wait(l, [&] { return !Busy(emails); });
  return Claim(this, std::move(emails));
}

void Executor::ReleaseClaim(const std::vector<std::string>& emails) {
  std::lock_guard<std::mutex> l(mu_);
  ++clock_;
  for (const std::string& e : emails) {
    auto it = claimed_.find(e);
    if (it != claimed_.end() && --it->second == 0) claimed_.erase(it);
    touched_[e] = clock_;
  }
  if (bulk_planning_ == 0 && claimed_.empty()) touched_.clear();
}

Executor::BulkPlanning Executor::BeginBulkPlanning() {
  std::lock_guard<std::mutex> l(mu_);
  ++bulk_planning_;
  return BulkPlanning(this, clock_);
}

void Executor::EndBulkPlanning() {
  std::lock_guard<std::mutex> l(mu_);
  if (--bulk_planning_ == 0 && claimed_.empty()) touched_.clear();
}

std::vector<std::string> Executor::ClaimedSince(Mark mark) const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<std::string> out;
  for (const auto& [email, count] : claimed_) out.push_back(email);
  for (const auto& [email, at] : touched_) {
    if (at > mark && claimed_.count(email) == 0) out.push_back(email);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// --- handles ---

Executor::Claim::Claim(Executor* executor, std::vector<std::string> emails)
    : executor_(executor), emails_(std::move(emails)) {}

Executor::Claim::Claim(Claim&& other) noexcept
    : executor_(std::exchange(other.executor_, nullptr)), emails_(std::move(other.emails_)) {}

Executor::Claim& Executor::Claim::operator=(Claim&& other) noexcept {
  if (this != &other) {
    Release();
    executor_ = std::exchange(other.executor_, nullptr);
    emails_ = std::move(other.emails_);
  }
  return *this;
}

Executor::Claim::~Claim() { Release(); }

void Executor::Claim::Release() {
  if (executor_ == nullptr) return;
  std::exchange(executor_, nullptr)->ReleaseClaim(emails_);
}

Executor::BulkPlanning::BulkPlanning(BulkPlanning&& other) noexcept
    : executor_(std::exchange(other.executor_, nullptr)), mark_(other.mark_) {}

Executor::BulkPlanning& Executor::BulkPlanning::operator=(BulkPlanning&& other) noexcept {
  if (this != &other) {
    if (executor_ != nullptr) executor_->EndBulkPlanning();
    executor_ = std::exchange(other.executor_, nullptr);
    mark_ = other.mark_;
  }
  return *this;
}

Executor::BulkPlanning::~BulkPlanning() {
  if (executor_ != nullptr) std::exchange(executor_, nullptr)->EndBulkPlanning();
}

}  // namespace idsync::engine
