// An in-memory store::Store for tests: every part (run log, outbox, mirror,
// audit log, SCIM resources, source state, account cache) kept in maps under
// one mutex, with the same contracts as the SQLite backend (states, errors,
// the managed set, the audit chain). Nothing survives the object.
//
// A test can make the next calls of one operation fail (FailNext), as a
// full disk would, to see that a run stops without half-applying. The lease
// runs on this process's steady clock.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/store/store.h"

namespace idsync::fakes {

class MemoryStore : public store::Store {
 public:
  MemoryStore();
  ~MemoryStore() override;

  store::RunLog& runs() override;
  store::Outbox& outbox() override;
  store::AccountMirror& mirror() override;
  store::AuditLog& audit() override;
  store::ScimResources& scim() override;
  store::SourceState& sources() override;
  store::AccountCache& account_cache() override;
  store::Lease& lease() override;
  store::ConsoleSessions& console_sessions() override;
  // Checked by the writes FailNext can fail (the same list), which is where
  // the real backends check it too.
  void SetFence(std::optional<store::Fence> fence) override;

  // The next `times` calls of `operation` ("Enqueue", "MarkSent", "Complete",
  // "Fail", "Drop", "BeginRun", "FinishRun", "Replace", "Append") fail with
  // kUnavailable and change nothing.
  void FailNext(const std::string& operation, int times = 1);

  // Every outbox entry, by id (tests look at states and order).
  std::vector<store::OutboxEntry> AllEntries() const;

  struct State;  // defined in memory_store.cc
  struct Parts;

 private:
  std::unique_ptr<State> state_;
  std::unique_ptr<Parts> parts_;
};

}  // namespace idsync::fakes
