// The executor: the long-lived pool that sends every run's account writes,
// in two lanes within one concurrency limit.
//
// A run hands it a batch (the outbox entries it planned, by index) and waits
// for the batch to finish. Workers take interactive work (partial runs after
// a SCIM write or a followed directory change) before bulk work (full runs,
// crash recovery), so a person pushed by an identity provider reaches the
// account while thousands of a full run's writes are still queued.
//
// The two lanes never write the same person at once, and the later plan for
// a person wins. A partial run first claims its people: their bulk writes
// still queued are superseded (never sent), and the claim returns once their
// writes already in flight have finished, so the run plans against an account
// mirror that includes them. A bulk write for someone claimed after its
// batch's planning began is superseded too; the full run's caller hands
// those people to a later partial run, which re-plans them against the
// mirror. Writes that must not be dropped (a crashed run's sent entries,
// finished with their idempotency keys) are moved to the interactive lane
// and waited for instead.
//
// Within a batch, grants go first: its reductions (removals, revokes) start
// only after every grant of the batch has finished, so a promotion lands
// before a removal that relies on it, and a stop part-way leaves the
// reductions unsent.
//
// Thread-safe. Pure scheduling: it knows entries by index and e-mail, and
// calls the batch's send function from its worker threads.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace idsync::engine {

enum class Lane : std::uint8_t {
  kInteractive,  // partial runs: sent first
  kBulk,         // full runs and recovery
};

// What a send asks of the rest of its batch.
enum class AfterSend : std::uint8_t {
  kContinue,
  kStopBatch,  // the account refused our credentials, or the store failed:
               // the batch's remaining entries stay unsent
};

// One write of a batch, as the executor sees it.
struct Task {
  std::string email;       // ASCII lower-cased: who the write is for
  bool reduction = false;  // a removal or revoke: waits for the batch's grants
  // May be superseded by a later plan for the same person. False for a
  // write already sent once (it must finish with its key).
  bool droppable = true;
};

// Where a bulk batch's planning began: claims made after it supersede the
// batch's writes for the people claimed.
using Mark = std::uint64_t;

struct Batch {
  Lane lane = Lane::kBulk;
  Mark planned_at = 0;  // bulk batches: from BulkPlanning::mark()
  std::vector<Task> tasks;
  // Sends tasks[index]; called from a worker thread, never twice for one index.
  std::function<AfterSend(std::size_t index)> send;
  // Checked before each send: true leaves the remaining tasks unsent.
  std::function<bool()> cancelled;
};

// How a batch ended. Every task is in exactly one of: sent (send was called),
// superseded, unsent.
struct BatchResult {
  std::vector<std::size_t> superseded;  // indices, ascending
  std::size_t sent = 0;
  std::size_t unsent = 0;  // the batch stopped or was cancelled first
};

class Executor {
 public:
  // `concurrency` workers (at least 1).
  explicit Executor(int concurrency);
  ~Executor();  // waits for the workers; call only when no batch is running
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Changes the number of workers; writes in flight finish.
  void SetConcurrency(int concurrency);

  // Sends a batch and returns when each task is sent, superseded or unsent.
  BatchResult Run(Batch batch);

  // Held while a partial run plans and sends for its people (see the file
  // comment); releasing it ends the claim.
  class Claim {
   public:
    Claim() = default;
    Claim(Claim&& other) noexcept;
    Claim& operator=(Claim&& other) noexcept;
    ~Claim();
    void Release();

   private:
    friend class Executor;
    Claim(Executor* executor, std::vector<std::string> emails);
    Executor* executor_ = nullptr;
    std::vector<std::string> emails_;
  };
  // Claims `emails` (ASCII lower-cased): supersedes their queued bulk writes,
  // moves their undroppable ones to the interactive lane, and blocks until
  // none of their writes is queued or in flight.
  Claim ClaimPeople(std::vector<std::string> emails);

  // Held by a full run from before it reads the account until its batch
  // has finished.
  class BulkPlanning {
   public:
    BulkPlanning() = default;
    BulkPlanning(BulkPlanning&& other) noexcept;
    BulkPlanning& operator=(BulkPlanning&& other) noexcept;
    ~BulkPlanning();
    Mark mark() const { return mark_; }

   private:
    friend class Executor;
    BulkPlanning(Executor* executor, Mark mark) : executor_(executor), mark_(mark) {}
    Executor* executor_ = nullptr;
    Mark mark_ = 0;
  };
  BulkPlanning BeginBulkPlanning();

  // The people claimed since `mark` (or claimed now), ascending: a full run
  // keeps their mirror rows rather than its older read of the account.
  std::vector<std::string> ClaimedSince(Mark mark) const;

  // Runs that send through this executor hold it shared from before they
  // begin until they end; recovering after a crash or a stop (closing runs
  // that never finished, finishing or dropping their writes) holds it
  // exclusively, so that it never takes a live run for a dead one.
  std::shared_mutex& runs_gate() { return runs_gate_; }

 private:
  struct RunningBatch;
  struct Queued {
    RunningBatch* batch;
    std::size_t index;
  };

  void Worker();
  // mu_ held: queue the batch's grants, or (once none is left) its reductions.
  void QueuePhase(RunningBatch& batch, bool reductions);
  // mu_ held: a task ends without being sent.
  void EndUnsent(RunningBatch& batch, std::size_t index, bool superseded);
  void EndTask(RunningBatch& batch);
  void Unbusy(const std::string& email);
  bool Superseded(const RunningBatch& batch, const std::string& email) const;
  void ReleaseClaim(const std::vector<std::string>& emails);
  void EndBulkPlanning();
  bool Busy(const std::vector<std::string>& emails) const;

  std::shared_mutex runs_gate_;
  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // workers: a task queued, or a resize
  std::condition_variable done_cv_;  // Run and ClaimPeople: a task ended
  std::deque<Queued> interactive_;
  std::deque<Queued> bulk_;
  std::size_t target_workers_ = 0;
  std::size_t running_workers_ = 0;
  std::vector<std::thread> workers_;  // joined at destruction (some may have ended)
  bool stopping_ = false;

  Mark clock_ = 0;
  // People under a claim now (count of claims), and when each was last
  // claimed or released.
  std::unordered_map<std::string, int> claimed_;
  std::unordered_map<std::string, Mark> touched_;
  int bulk_planning_ = 0;  // BulkPlanning objects alive
  // Writes in flight, and undroppable writes queued, per person.
  std::unordered_map<std::string, int> busy_;
};

}  // namespace idsync::engine
