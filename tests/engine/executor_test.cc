#include "idsync/engine/executor.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace idsync::engine {
namespace {

using namespace std::chrono_literals;

// Holds sends until opened; records what was sent, in order.
class Account {
 public:
  AfterSend Send(const std::string& what) {
    std::unique_lock<std::mutex> l(mu_);
    ++in_flight_;
    max_in_flight_ = std::max(max_in_flight_, in_flight_);
    started_.push_back(what);
    cv_.notify_all();
    cv_.wait(l, [&] { return open_; });
    --in_flight_;
    sent_.push_back(what);
    cv_.notify_all();
    return stop_on_ == what ? AfterSend::kStopBatch : AfterSend::kContinue;
  }
  void Open() {
    std::lock_guard<std::mutex> l(mu_);
    open_ = true;
    cv_.notify_all();
  }
  // Waits until `n` sends have started.
  void WaitStarted(std::size_t n) {
    std::unique_lock<std::mutex> l(mu_);
    ASSERT_TRUE(cv_.wait_for(l, 30s, [&] { return started_.size() >= n; }));
  }
  std::vector<std::string> sent() {
    std::lock_guard<std::mutex> l(mu_);
    return sent_;
  }
  int max_in_flight() {
    std::lock_guard<std::mutex> l(mu_);
    return max_in_flight_;
  }
  void StopOn(std::string what) { stop_on_ = std::move(what); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int in_flight_ = 0;
  int max_in_flight_ = 0;
  std::vector<std::string> started_;
  std::vector<std::string> sent_;
  std::string stop_on_;
};

// A batch whose task i is for emails[i]; a name starting with "-" is a reduction.
Batch MakeBatch(Lane lane, const std::vector<std::string>& names, Account& account,
                Mark planned_at = 0) {
  Batch b;
  b.lane = lane;
  b.planned_at = planned_at;
  for (const std::string& n : names) {
    Task t;
    t.reduction = !n.empty() && n[0] == '-';
    t.email = t.reduction ? n.substr(1) : n;
    b.tasks.push_back(t);
  }
  b.send = [&account, names](std::size_t i) { return account.Send(names[i]); };
  return b;
}

std::vector<std::string> Names(const std::string& prefix, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

TEST(Executor, SendsEveryTaskOnceWithinTheConcurrency) {
  Executor executor(3);
  Account account;
  account.Open();
  BatchResult r = executor.Run(MakeBatch(Lane::kBulk, Names("u", 200), account));
  EXPECT_EQ(r.sent, 200u);
  EXPECT_EQ(r.unsent, 0u);
  EXPECT_TRUE(r.superseded.empty());
  std::vector<std::string> sent = account.sent();
  std::sort(sent.begin(), sent.end());
  std::vector<std::string> want = Names("u", 200);
  std::sort(want.begin(), want.end());
  EXPECT_EQ(sent, want);
  EXPECT_LE(account.max_in_flight(), 3);
  EXPECT_GE(account.max_in_flight(), 1);
}

TEST(Executor, ReductionsStartAfterEveryGrantHasEnded) {
  Executor executor(4);
  Account account;
  account.Open();
  std::vector<std::string> names = {"-r1", "g1", "-r2", "g2", "g3", "-r3", "g4"};
  BatchResult r = executor.Run(MakeBatch(Lane::kBulk, names, account));
  EXPECT_EQ(r.sent, names.size());
  std::vector<std::string> sent = account.sent();
  ASSERT_EQ(sent.size(), names.size());
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(sent[i][0], 'g') << i;
  for (std::size_t i = 4; i < sent.size(); ++i) EXPECT_EQ(sent[i][0], '-') << i;
}

TEST(Executor, InteractiveWorkGoesAheadOfQueuedBulkWork) {
  Executor executor(1);
  Account account;
  auto bulk = std::async(std::launch::async, [&] {
    return executor.Run(MakeBatch(Lane::kBulk, Names("bulk", 50), account));
  });
  account.WaitStarted(1);  // bulk0 in flight, 49 queued
  auto push = std::async(std::launch::async, [&] {
    return executor.Run(MakeBatch(Lane::kInteractive, {"pushed-a", "-pushed-b"}, account));
  });
  // Give the interactive batch time to queue behind the one write in flight.
  std::this_thread::sleep_for(50ms);
  account.Open();
  EXPECT_EQ(push.get().sent, 2u);
  EXPECT_EQ(bulk.get().sent, 50u);
  std::vector<std::string> sent = account.sent();
  ASSERT_EQ(sent.size(), 52u);
  EXPECT_EQ(sent[0], "bulk0");
  EXPECT_EQ(sent[1], "pushed-a");
  EXPECT_EQ(sent[2], "-pushed-b");
}

TEST(Executor, AClaimSupersedesQueuedBulkWritesAndWaitsForOnesInFlight) {
  Executor executor(1);
  Account account;
  Executor::BulkPlanning planning = executor.BeginBulkPlanning();
  std::vector<std::string> names = {"a", "b", "c", "d"};
  auto bulk = std::async(std::launch::async, [&] {
    return executor.Run(MakeBatch(Lane::kBulk, names, account, planning.mark()));
  });
  account.WaitStarted(1);  // "a" in flight
  std::atomic<bool> claimed{false};
  auto claim = std::async(std::launch::async, [&] {
    Executor::Claim c = executor.ClaimPeople({"a", "c"});
    claimed = true;
    return c;
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(claimed.load()) << "the claim returned while a's write was in flight";
  account.Open();
  Executor::Claim held = claim.get();
  BatchResult r = bulk.get();
  // "a" was in flight and finished; "c" was queued and is superseded.
  EXPECT_EQ(r.superseded, std::vector<std::size_t>{2});
  EXPECT_EQ(r.sent, 3u);
  EXPECT_EQ(account.sent(), (std::vector<std::string>{"a", "b", "d"}));
  EXPECT_EQ(executor.ClaimedSince(planning.mark()), (std::vector<std::string>{"a", "c"}));
}

TEST(Executor, BulkWritesForPeopleClaimedAfterPlanningBeganAreSuperseded) {
  Executor executor(2);
  Account account;
  account.Open();
  Executor::BulkPlanning planning = executor.BeginBulkPlanning();
  executor.ClaimPeople({"b"}).Release();  // a partial run came and went
  Executor::BulkPlanning later = executor.BeginBulkPlanning();
  BatchResult old_plan =
      executor.Run(MakeBatch(Lane::kBulk, {"a", "b", "-b"}, account, planning.mark()));
  EXPECT_EQ(old_plan.superseded, (std::vector<std::size_t>{1, 2}));
  EXPECT_EQ(old_plan.sent, 1u);
  // A plan begun after the claim ended saw its writes: nothing superseded.
  BatchResult new_plan = executor.Run(MakeBatch(Lane::kBulk, {"a", "b"}, account, later.mark()));
  EXPECT_TRUE(new_plan.superseded.empty());
  EXPECT_EQ(new_plan.sent, 2u);
  EXPECT_EQ(executor.ClaimedSince(later.mark()), std::vector<std::string>{});
  EXPECT_EQ(executor.ClaimedSince(planning.mark()), std::vector<std::string>{"b"});
}

TEST(Executor, WhileAClaimIsHeldBulkWritesForItsPeopleAreSuperseded) {
  Executor executor(2);
  Account account;
  account.Open();
  Executor::Claim claim = executor.ClaimPeople({"x"});
  Executor::BulkPlanning planning = executor.BeginBulkPlanning();
  BatchResult r = executor.Run(MakeBatch(Lane::kBulk, {"x", "y"}, account, planning.mark()));
  EXPECT_EQ(r.superseded, std::vector<std::size_t>{0});
  // The claimer's own interactive writes go through.
  BatchResult mine = executor.Run(MakeBatch(Lane::kInteractive, {"x"}, account));
  EXPECT_EQ(mine.sent, 1u);
  EXPECT_TRUE(mine.superseded.empty());
}

TEST(Executor, UndroppableWritesAreMovedAheadAndWaitedForNeverSuperseded) {
  Executor executor(1);
  Account account;
  Batch recovery = MakeBatch(Lane::kBulk, {"first", "r1", "r2", "r3"}, account);
  for (Task& t : recovery.tasks) t.droppable = false;
  auto bulk = std::async(std::launch::async, [&] { return executor.Run(std::move(recovery)); });
  account.WaitStarted(1);
  auto claim = std::async(std::launch::async, [&] { return executor.ClaimPeople({"r3"}); });
  std::this_thread::sleep_for(50ms);
  account.Open();
  Executor::Claim held = claim.get();
  BatchResult r = bulk.get();
  EXPECT_TRUE(r.superseded.empty());
  EXPECT_EQ(r.sent, 4u);
  std::vector<std::string> sent = account.sent();
  ASSERT_EQ(sent.size(), 4u);
  EXPECT_EQ(sent[1], "r3") << "the claimed person's write was not moved ahead";
}

TEST(Executor, AStopLeavesTheBatchsRemainingTasksUnsent) {
  Executor executor(1);
  Account account;
  account.Open();
  account.StopOn("g2");
  BatchResult r = executor.Run(MakeBatch(Lane::kBulk, {"g1", "g2", "g3", "-r1"}, account));
  EXPECT_EQ(r.sent, 2u);
  EXPECT_EQ(r.unsent, 2u);
  EXPECT_EQ(account.sent(), (std::vector<std::string>{"g1", "g2"}));
  // Another batch is not stopped by it.
  EXPECT_EQ(executor.Run(MakeBatch(Lane::kBulk, {"g4"}, account)).sent, 1u);
}

TEST(Executor, ACancelledBatchSendsNothingMore) {
  Executor executor(2);
  Account account;
  account.Open();
  std::atomic<int> sends{0};
  Batch b = MakeBatch(Lane::kBulk, Names("u", 20), account);
  auto send = b.send;
  b.send = [&, send](std::size_t i) {
    ++sends;
    return send(i);
  };
  b.cancelled = [&] { return sends.load() >= 5; };
  BatchResult r = executor.Run(std::move(b));
  EXPECT_GE(r.sent, 5u);
  EXPECT_LE(r.sent, 6u);  // one may have passed the check with the fifth in flight
  EXPECT_EQ(r.sent + r.unsent, 20u);
}

TEST(Executor, ConcurrencyCanGrowAndShrink) {
  Executor executor(1);
  Account account;
  account.Open();
  executor.SetConcurrency(4);
  EXPECT_EQ(executor.Run(MakeBatch(Lane::kBulk, Names("a", 100), account)).sent, 100u);
  executor.SetConcurrency(1);
  executor.SetConcurrency(2);
  EXPECT_EQ(executor.Run(MakeBatch(Lane::kBulk, Names("b", 100), account)).sent, 100u);
  EXPECT_LE(account.max_in_flight(), 4);
}

TEST(Executor, AnEmptyBatchReturnsAtOnce) {
  Executor executor(1);
  BatchResult r = executor.Run(Batch{});
  EXPECT_EQ(r.sent, 0u);
  EXPECT_EQ(r.unsent, 0u);
}

}  // namespace
}  // namespace idsync::engine
