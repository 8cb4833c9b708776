#include "idsync/fakes/memory_store.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <set>
#include <thread>
#include <tuple>
#include <utility>

#include "idsync/base/ascii.h"

namespace idsync::fakes {

using store::AuditEntry;
using store::OutboxEntry;
using store::OutboxState;

struct MemoryStore::State {
  mutable std::mutex mu;
  std::map<std::string, int> failures;  // operation -> calls left to fail

  std::map<std::int64_t, store::RunRecord> runs;
  std::map<std::int64_t, OutboxEntry> outbox;
  std::set<std::string> keys;                            // idempotency keys ever enqueued
  std::map<std::string, mapping::AccountRecord> mirror;  // by user id
  std::map<std::string, store::ManagedUser> managed;     // by user id
  std::vector<AuditEntry> audit;
  std::map<std::tuple<std::string, std::string, std::string>, store::ScimResourceRow> scim;
  std::vector<store::ScimChangeRow> scim_changes;  // seq = index + 1
  store::RunRequests run_requests;
  std::map<std::string, store::SourceRead> reads;
  std::map<std::string, store::SourceHealth> health;
  std::map<std::pair<std::string, std::string>, std::string> feed;
  std::optional<mapping::Catalog> catalog;
  std::optional<std::vector<mapping::Project>> projects;
  std::optional<store::LeaseState> lease;  // expires_in_ms counted from lease_at
  std::chrono::steady_clock::time_point lease_at;
  std::optional<store::Fence> fence;

  // mu held. The lease as it is now.
  std::optional<store::LeaseState> LeaseNow() const {
    if (!lease) return std::nullopt;
    store::LeaseState now = *lease;
    auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - lease_at)
                       .count();
    now.expires_in_ms = std::max<std::int64_t>(0, lease->expires_in_ms - elapsed);
    now.expired = now.expires_in_ms == 0;
    return now;
  }

  // mu held. The fence (as the real backends check it in every leader-only
  // write), then a failure injected by FailNext.
  Status Injected(const std::string& operation) {
    if (fence && (!lease || lease->holder != fence->holder || lease->epoch != fence->epoch)) {
      Status lost = FailedPreconditionError("not the leader any more: the write was refused");
      lost.SetPayload(store::kFenceKey, "lost");
      return lost;
    }
    auto it = failures.find(operation);
    if (it == failures.end() || it->second == 0) return Status::Ok();
    --it->second;
    return UnavailableError("injected failure of " + operation);
  }

  Result<std::string> AppendAudit(AuditEntry& entry) {
    entry.seq = static_cast<std::int64_t>(audit.size()) + 1;
    entry.prev_hash = audit.empty() ? std::string() : audit.back().hash;
    ASSIGN_OR_RETURN(entry.hash, store::AuditHash(entry));
    audit.push_back(entry);
    return entry.hash;
  }

  Result<OutboxEntry*> Unfinished(std::int64_t id, const char* action) {
    auto it = outbox.find(id);
    if (it == outbox.end()) return NotFoundError("no outbox entry " + std::to_string(id));
    if (it->second.state != OutboxState::kPlanned && it->second.state != OutboxState::kSent) {
      return FailedPreconditionError(std::string("cannot ") + action + " outbox entry " +
                                     std::to_string(id) + ": it is " +
                                     std::string(store::OutboxStateName(it->second.state)));
    }
    return &it->second;
  }
};

namespace {

class Runs : public store::RunLog {
 public:
  explicit Runs(MemoryStore::State& s) : s_(s) {}
  Result<std::int64_t> BeginRun(const std::string& kind, std::int64_t at_ms) override {
    std::lock_guard l(s_.mu);
    RETURN_IF_ERROR(s_.Injected("BeginRun"));
    const std::int64_t id = s_.runs.empty() ? 1 : s_.runs.rbegin()->first + 1;
    store::RunRecord r;
    r.id = id;
    r.kind = kind;
    r.started_ms = at_ms;
    s_.runs[id] = r;
    return id;
  }
  Status FinishRun(const store::RunRecord& run) override {
    std::lock_guard l(s_.mu);
    RETURN_IF_ERROR(s_.Injected("FinishRun"));
    if (run.result.empty()) return InvalidArgumentError("a finished run needs a result");
    auto it = s_.runs.find(run.id);
    if (it == s_.runs.end()) return NotFoundError("no run " + std::to_string(run.id));
    store::RunRecord r = run;
    r.kind = it->second.kind;
    r.started_ms = it->second.started_ms;
    it->second = std::move(r);
    return Status::Ok();
  }
  Result<std::vector<store::RunRecord>> RecentRuns(int limit) override {
    std::lock_guard l(s_.mu);
    std::vector<store::RunRecord> out;
    for (auto it = s_.runs.rbegin(); it != s_.runs.rend(); ++it) {
      if (limit > 0 && static_cast<int>(out.size()) >= limit) break;
      out.push_back(it->second);
    }
    return out;
  }
  Status CloseInterruptedRuns(std::int64_t at_ms) override {
    std::lock_guard l(s_.mu);
    for (auto& [id, r] : s_.runs) {
      if (!r.result.empty()) continue;
      r.result = "stopped";
      r.finished_ms = at_ms;
    }
    return Status::Ok();
  }
  Status RequestRun(bool force, const std::string&, std::int64_t) override {
    std::lock_guard l(s_.mu);
    ++s_.run_requests.count;
    s_.run_requests.force = s_.run_requests.force || force;
    return Status::Ok();
  }
  Result<store::RunRequests> TakeRunRequests() override {
    std::lock_guard l(s_.mu);
    return std::exchange(s_.run_requests, {});
  }
  Result<store::HistoryPruned> PruneHistory(std::int64_t before_ms, int keep_runs) override {
    std::lock_guard l(s_.mu);
    store::HistoryPruned pruned;
    std::set<std::int64_t> referenced;
    for (auto it = s_.outbox.begin(); it != s_.outbox.end();) {
      const OutboxEntry& e = it->second;
      const bool finished = e.state == store::OutboxState::kDone ||
                            e.state == store::OutboxState::kFailed ||
                            e.state == store::OutboxState::kDropped;
      if (finished && e.updated_ms < before_ms) {
        it = s_.outbox.erase(it);
        ++pruned.entries;
      } else {
        if (e.run_id != 0) referenced.insert(e.run_id);
        ++it;
      }
    }
    std::set<std::int64_t> recent;
    for (auto it = s_.runs.rbegin();
         it != s_.runs.rend() && static_cast<int>(recent.size()) < keep_runs; ++it) {
      recent.insert(it->first);
    }
    for (auto it = s_.runs.begin(); it != s_.runs.end();) {
      const store::RunRecord& r = it->second;
      if (r.finished_ms > 0 && r.finished_ms < before_ms && !referenced.count(it->first) &&
          !recent.count(it->first)) {
        it = s_.runs.erase(it);
        ++pruned.runs;
      } else {
        ++it;
      }
    }
    return pruned;
  }

 private:
  MemoryStore::State& s_;
};

class Outbox : public store::Outbox {
 public:
  explicit Outbox(MemoryStore::State& s) : s_(s) {}
  Status Enqueue(std::vector<OutboxEntry>& entries) override {
    std::lock_guard l(s_.mu);
    RETURN_IF_ERROR(s_.Injected("Enqueue"));
    std::set<std::string> batch;
    for (const OutboxEntry& e : entries) {
      if (e.write.idempotency_key.empty()) return InvalidArgumentError("empty idempotency key");
      if (s_.keys.count(e.write.idempotency_key) > 0 ||
          !batch.insert(e.write.idempotency_key).second) {
        return AlreadyExistsError("idempotency key " + e.write.idempotency_key + " is stored");
      }
    }
    std::int64_t next = s_.outbox.empty() ? 1 : s_.outbox.rbegin()->first + 1;
    for (OutboxEntry& e : entries) {
      e.id = next++;
      e.state = OutboxState::kPlanned;
      e.attempts = 0;
      e.updated_ms = e.created_ms;
      s_.keys.insert(e.write.idempotency_key);
      s_.outbox[e.id] = e;
    }
    return Status::Ok();
  }
  Result<std::vector<OutboxEntry>> Unfinished() override {
    std::lock_guard l(s_.mu);
    std::vector<OutboxEntry> out;
    for (const auto& [id, e] : s_.outbox) {
      if (e.state == OutboxState::kPlanned || e.state == OutboxState::kSent) out.push_back(e);
    }
    std::stable_sort(out.begin(), out.end(), [](const OutboxEntry& a, const OutboxEntry& b) {
      return a.priority > b.priority;
    });
    return out;
  }
  Result<std::vector<OutboxEntry>> Failed(int limit) override {
    std::lock_guard l(s_.mu);
    std::vector<OutboxEntry> out;
    for (auto it = s_.outbox.rbegin(); it != s_.outbox.rend(); ++it) {
      if (it->second.state == OutboxState::kFailed) out.push_back(it->second);
    }
    std::stable_sort(out.begin(), out.end(), [](const OutboxEntry& a, const OutboxEntry& b) {
      return a.updated_ms > b.updated_ms;
    });
    if (limit > 0 && static_cast<int>(out.size()) > limit) out.resize(limit);
    return out;
  }
  Status MarkSent(std::int64_t id, std::int64_t at_ms) override {
    std::lock_guard l(s_.mu);
    RETURN_IF_ERROR(s_.Injected("MarkSent"));
    ASSIGN_OR_RETURN(OutboxEntry * e, s_.Unfinished(id, "mark sent"));
    e->state = OutboxState::kSent;
    e->attempts++;
    e->updated_ms = at_ms;
    return Status::Ok();
  }
  Status NoteError(std::int64_t id, const std::string& error, std::int64_t at_ms) override {
    std::lock_guard l(s_.mu);
    ASSIGN_OR_RETURN(OutboxEntry * e, s_.Unfinished(id, "note an error on"));
    e->error = error;
    e->updated_ms = at_ms;
    return Status::Ok();
  }
  Result<std::string> Complete(const store::Completion& c) override {
    if (c.user_id.empty()) return InvalidArgumentError("completion names no account user");
    if (c.action.empty()) return InvalidArgumentError("completion names no audit action");
    std::lock_guard l(s_.mu);
    RETURN_IF_ERROR(s_.Injected("Complete"));
    ASSIGN_OR_RETURN(OutboxEntry * e, s_.Unfinished(c.entry_id, "complete"));
    if (c.user) {
      mapping::AccountRecord user = *c.user;
      if (user.id.empty()) user.id = c.user_id;
      s_.mirror[user.id] = user;
    } else {
      s_.mirror.erase(c.user_id);
    }
    const std::string email = c.user ? c.user->email : e->email;
    using M = store::Completion::Management;
    auto manage = [&](const char* how) {
      auto it = s_.managed.find(c.user_id);
      if (it != s_.managed.end()) {
        it->second.email = email;  // how and since stay
      } else {
        s_.managed[c.user_id] = {c.user_id, email, how, c.at_ms};
      }
    };
    switch (c.management) {
      case M::kUnchanged:
        break;
      case M::kInvited:
        manage("invited");
        break;
      case M::kAdopted:
        manage("adopted");
        break;
      case M::kForget:
        s_.managed.erase(c.user_id);
        break;
    }
    AuditEntry audit;
    audit.at_ms = c.at_ms;
    audit.run_id = e->run_id;
    audit.action = c.action;
    audit.email = e->email;
    audit.user_id = c.user_id;
    audit.source = e->source;
    audit.detail_json = e->operation_json;
    ASSIGN_OR_RETURN(std::string head, s_.AppendAudit(audit));
    e->state = OutboxState::kDone;
    e->updated_ms = c.at_ms;
    return head;
  }
  Status Fail(std::int64_t id, const std::string& error, std::int64_t at_ms) override {
    std::lock_guard l(s_.mu);
    RETURN_IF_ERROR(s_.Injected("Fail"));
    ASSIGN_OR_RETURN(OutboxEntry * e, s_.Unfinished(id, "fail"));
    e->state = OutboxState::kFailed;
    e->error = error;
    e->updated_ms = at_ms;
    return Status::Ok();
  }
  Status Drop(std::int64_t id, std::int64_t at_ms) override {
    std::lock_guard l(s_.mu);
    RETURN_IF_ERROR(s_.Injected("Drop"));
    ASSIGN_OR_RETURN(OutboxEntry * e, s_.Unfinished(id, "drop"));
    if (e->state != OutboxState::kPlanned) {
      return FailedPreconditionError("cannot drop outbox entry " + std::to_string(id) +
                                     ": it is sent");
    }
    e->state = OutboxState::kDropped;
    e->updated_ms = at_ms;
    return Status::Ok();
  }
  Result<std::int64_t> DropPlanned(std::int64_t at_ms) override {
    std::lock_guard l(s_.mu);
    std::int64_t n = 0;
    for (auto& [id, e] : s_.outbox) {
      if (e.state != OutboxState::kPlanned) continue;
      e.state = OutboxState::kDropped;
      e.updated_ms = at_ms;
      ++n;
    }
    return n;
  }

 private:
  MemoryStore::State& s_;
};

class Mirror : public store::AccountMirror {
 public:
  explicit Mirror(MemoryStore::State& s) : s_(s) {}
  Status Replace(const std::vector<mapping::AccountRecord>& users, std::int64_t,
                 const std::vector<std::string>& keep) override {
    std::lock_guard l(s_.mu);
    RETURN_IF_ERROR(s_.Injected("Replace"));
    std::set<std::string> kept_emails;
    for (const std::string& e : keep) kept_emails.insert(base::AsciiLower(e));
    std::map<std::string, mapping::AccountRecord> next;
    for (const auto& [id, r] : s_.mirror) {
      if (kept_emails.count(base::AsciiLower(r.email)) > 0) next[id] = r;
    }
    std::set<std::string> seen;
    for (const mapping::AccountRecord& r : users) {
      if (!seen.insert(r.id).second) {
        return InvalidArgumentError("replace mirror: user id \"" + r.id + "\" appears twice");
      }
      if (kept_emails.count(base::AsciiLower(r.email)) > 0) continue;
      next[r.id] = r;
    }
    s_.mirror = std::move(next);
    return Status::Ok();
  }
  Result<std::vector<mapping::AccountRecord>> Users() override {
    std::lock_guard l(s_.mu);
    std::vector<mapping::AccountRecord> out;
    for (const auto& [id, r] : s_.mirror) out.push_back(r);
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      return std::tie(a.email, a.id) < std::tie(b.email, b.id);
    });
    return out;
  }
  Result<std::vector<store::ManagedUser>> Managed() override {
    std::lock_guard l(s_.mu);
    std::vector<store::ManagedUser> out;
    for (const auto& [id, m] : s_.managed) out.push_back(m);
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      return std::tie(a.email, a.user_id) < std::tie(b.email, b.user_id);
    });
    return out;
  }
  Status SetManaged(const store::ManagedUser& user) override {
    if (user.user_id.empty()) return InvalidArgumentError("managed user without an id");
    if (user.how != "invited" && user.how != "adopted") {
      return InvalidArgumentError("managed user " + user.user_id +
                                  ": how must be invited or adopted");
    }
    std::lock_guard l(s_.mu);
    s_.managed[user.user_id] = user;
    return Status::Ok();
  }
  Status ForgetManaged(const std::string& user_id) override {
    std::lock_guard l(s_.mu);
    s_.managed.erase(user_id);
    return Status::Ok();
  }

 private:
  MemoryStore::State& s_;
};

class Audit : public store::AuditLog, private store::AuditChainReader {
 public:
  explicit Audit(MemoryStore::State& s) : s_(s) {}
  Result<std::string> Append(AuditEntry& entry) override {
    std::lock_guard l(s_.mu);
    RETURN_IF_ERROR(s_.Injected("Append"));
    AuditEntry appended = entry;
    ASSIGN_OR_RETURN(std::string head, s_.AppendAudit(appended));
    entry = appended;
    return head;
  }
  Result<std::vector<AuditEntry>> Since(std::int64_t since_ms) override {
    std::lock_guard l(s_.mu);
    std::vector<AuditEntry> out;
    for (const AuditEntry& e : s_.audit) {
      if (e.at_ms >= since_ms) out.push_back(e);
    }
    return out;
  }
  Result<store::AuditCheck> Verify(const std::optional<std::string>& expected_head) override {
    return store::VerifyAuditChain(*this, expected_head);
  }
  Result<std::string> Head() override {
    std::lock_guard l(s_.mu);
    return s_.audit.empty() ? std::string() : s_.audit.back().hash;
  }

 private:
  Status ForEach(const std::function<Status(const AuditEntry&)>& on_row) override {
    std::vector<AuditEntry> rows;
    {
      std::lock_guard l(s_.mu);
      rows = s_.audit;
    }
    for (const AuditEntry& e : rows) RETURN_IF_ERROR(on_row(e));
    return Status::Ok();
  }
  Result<std::optional<AuditEntry>> Row(std::int64_t seq) override {
    std::lock_guard l(s_.mu);
    if (seq < 1 || seq > static_cast<std::int64_t>(s_.audit.size())) {
      return std::optional<AuditEntry>();
    }
    return std::optional<AuditEntry>(s_.audit[seq - 1]);
  }
  Result<bool> HashStored(const std::string& hash) override {
    std::lock_guard l(s_.mu);
    return std::any_of(s_.audit.begin(), s_.audit.end(),
                       [&](const AuditEntry& e) { return e.hash == hash; });
  }

  MemoryStore::State& s_;
};

class QuietSignal : public store::ScimChangeSignal {
 public:
  bool Wait(std::chrono::milliseconds timeout) override {
    std::this_thread::sleep_for(timeout);
    return false;
  }
};

class Scim : public store::ScimResources {
 public:
  explicit Scim(MemoryStore::State& s) : s_(s) {}
  Status Put(const store::ScimResourceRow& row) override {
    if (row.source.empty() || row.id.empty()) return InvalidArgumentError("no source or id");
    if (row.type != "User" && row.type != "Group") return InvalidArgumentError("bad type");
    std::lock_guard l(s_.mu);
    s_.scim[{row.source, row.type, row.id}] = row;
    Record(row.source, row.type, row.id);
    return Status::Ok();
  }
  Status PutIf(const store::ScimResourceRow& row, std::int64_t stored_version) override {
    {
      std::lock_guard l(s_.mu);
      auto it = s_.scim.find({row.source, row.type, row.id});
      const std::int64_t held = it == s_.scim.end() ? 0 : it->second.version;
      if (held != stored_version) return AbortedError("another writer changed it first");
    }
    return Put(row);
  }
  Status Delete(const std::string& source, const std::string& type,
                const std::string& id) override {
    std::lock_guard l(s_.mu);
    if (s_.scim.erase({source, type, id}) > 0) Record(source, type, id);
    return Status::Ok();
  }
  Result<std::vector<store::ScimResourceRow>> List(const std::string& source) override {
    std::lock_guard l(s_.mu);
    std::vector<store::ScimResourceRow> out;
    for (const auto& [key, row] : s_.scim) {
      if (std::get<0>(key) == source) out.push_back(row);
    }
    return out;
  }
  Result<std::optional<store::ScimResourceRow>> Get(const std::string& source,
                                                    const std::string& type,
                                                    const std::string& id) override {
    std::lock_guard l(s_.mu);
    auto it = s_.scim.find({source, type, id});
    if (it == s_.scim.end()) return std::optional<store::ScimResourceRow>();
    return std::optional<store::ScimResourceRow>(it->second);
  }
  Result<std::int64_t> LastChange() override {
    std::lock_guard l(s_.mu);
    return static_cast<std::int64_t>(s_.scim_changes.size());
  }
  Result<store::ScimChangePage> ChangesSince(std::int64_t after, int limit) override {
    std::lock_guard l(s_.mu);
    store::ScimChangePage page;
    for (std::size_t i = static_cast<std::size_t>(std::max<std::int64_t>(after, 0));
         i < s_.scim_changes.size() && static_cast<int>(page.changes.size()) < limit; ++i) {
      store::ScimChangeRow change = s_.scim_changes[i];
      auto it = s_.scim.find({change.source, change.type, change.id});
      if (it != s_.scim.end()) change.now = it->second;
      page.changes.push_back(std::move(change));
    }
    return page;
  }
  Result<std::unique_ptr<store::ScimChangeSignal>> Watch() override {
    return std::unique_ptr<store::ScimChangeSignal>(std::make_unique<QuietSignal>());
  }

 private:
  // mu held.
  void Record(const std::string& source, const std::string& type, const std::string& id) {
    store::ScimChangeRow change;
    change.seq = static_cast<std::int64_t>(s_.scim_changes.size()) + 1;
    change.source = source;
    change.type = type;
    change.id = id;
    s_.scim_changes.push_back(std::move(change));
  }

  MemoryStore::State& s_;
};

class Sources : public store::SourceState {
 public:
  explicit Sources(MemoryStore::State& s) : s_(s) {}
  Status PutRead(const store::SourceRead& read) override {
    std::lock_guard l(s_.mu);
    store::SourceRead kept = read;
    kept.snapshot.failed = false;
    kept.snapshot.never_read = false;
    s_.reads[read.snapshot.source] = std::move(kept);
    return Status::Ok();
  }
  Result<std::optional<store::SourceRead>> GetRead(const std::string& source) override {
    std::lock_guard l(s_.mu);
    auto it = s_.reads.find(source);
    if (it == s_.reads.end()) return std::optional<store::SourceRead>();
    return std::optional<store::SourceRead>(it->second);
  }
  Status PutHealth(const store::SourceHealth& health) override {
    std::lock_guard l(s_.mu);
    s_.health[health.name] = health;
    return Status::Ok();
  }
  Result<std::optional<store::SourceHealth>> GetHealth(const std::string& source) override {
    std::lock_guard l(s_.mu);
    auto it = s_.health.find(source);
    if (it == s_.health.end()) return std::optional<store::SourceHealth>();
    return std::optional<store::SourceHealth>(it->second);
  }
  Status PutFeedState(const std::string& source, const std::string& key,
                      const std::string& value) override {
    std::lock_guard l(s_.mu);
    s_.feed[{source, key}] = value;
    return Status::Ok();
  }
  Result<std::optional<std::string>> GetFeedState(const std::string& source,
                                                  const std::string& key) override {
    std::lock_guard l(s_.mu);
    auto it = s_.feed.find({source, key});
    if (it == s_.feed.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }

 private:
  MemoryStore::State& s_;
};

class Cache : public store::AccountCache {
 public:
  explicit Cache(MemoryStore::State& s) : s_(s) {}
  Status PutCatalog(const mapping::Catalog& catalog) override {
    std::lock_guard l(s_.mu);
    s_.catalog = catalog;
    return Status::Ok();
  }
  Result<std::optional<mapping::Catalog>> GetCatalog() override {
    std::lock_guard l(s_.mu);
    return s_.catalog;
  }
  Status PutProjects(const std::vector<mapping::Project>& projects) override {
    std::lock_guard l(s_.mu);
    s_.projects = projects;
    return Status::Ok();
  }
  Result<std::optional<std::vector<mapping::Project>>> GetProjects() override {
    std::lock_guard l(s_.mu);
    return s_.projects;
  }

 private:
  MemoryStore::State& s_;
};

class Lease : public store::Lease {
 public:
  explicit Lease(MemoryStore::State& s) : s_(s) {}
  Result<store::LeaseState> Acquire(const std::string& holder,
                                    std::chrono::milliseconds duration) override {
    if (holder.empty()) return InvalidArgumentError("a lease needs a holder");
    std::lock_guard l(s_.mu);
    std::optional<store::LeaseState> now = s_.LeaseNow();
    if (now && now->holder != holder && !now->expired) return *now;
    store::LeaseState taken;
    taken.holder = holder;
    taken.epoch = !now ? 1 : now->holder == holder ? now->epoch : now->epoch + 1;
    taken.expires_in_ms = duration.count();
    taken.expired = duration.count() <= 0;
    s_.lease = taken;
    s_.lease_at = std::chrono::steady_clock::now();
    return taken;
  }
  Status Release(const std::string& holder) override {
    std::lock_guard l(s_.mu);
    if (s_.lease && s_.lease->holder == holder) {
      s_.lease->expires_in_ms = 0;
      s_.lease->expired = true;
    }
    return Status::Ok();
  }
  Result<std::optional<store::LeaseState>> Current() override {
    std::lock_guard l(s_.mu);
    return s_.LeaseNow();
  }

 private:
  MemoryStore::State& s_;
};

// Sessions in a map of their own (no other part reads them).
class Console : public store::ConsoleSessions {
 public:
  Status Create(const store::ConsoleSession& session) override {
    if (session.id_hash.empty()) return InvalidArgumentError("a console session needs an id");
    std::lock_guard l(mu_);
    if (!sessions_.emplace(session.id_hash, session).second) {
      return AlreadyExistsError("that console session id is taken");
    }
    return Status::Ok();
  }
  Result<std::optional<store::ConsoleSession>> Get(const std::string& id_hash,
                                                   std::int64_t now_ms) override {
    std::lock_guard l(mu_);
    auto it = sessions_.find(id_hash);
    if (it == sessions_.end() || it->second.expires_ms <= now_ms) {
      return std::optional<store::ConsoleSession>();
    }
    return std::optional<store::ConsoleSession>(it->second);
  }
  Status End(const std::string& id_hash) override {
    std::lock_guard l(mu_);
    sessions_.erase(id_hash);
    return Status::Ok();
  }
  Result<std::int64_t> Prune(std::int64_t now_ms) override {
    std::lock_guard l(mu_);
    std::int64_t gone = 0;
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (it->second.expires_ms <= now_ms) {
        it = sessions_.erase(it);
        ++gone;
      } else {
        ++it;
      }
    }
    return gone;
  }

 private:
  std::mutex mu_;
  std::map<std::string, store::ConsoleSession> sessions_;
};

}  // namespace

struct MemoryStore::Parts {
  explicit Parts(State& s)
      : runs(s), outbox(s), mirror(s), audit(s), scim(s), sources(s), cache(s), lease(s) {}
  Runs runs;
  Outbox outbox;
  Mirror mirror;
  Audit audit;
  Scim scim;
  Sources sources;
  Cache cache;
  Lease lease;
  Console console;
};

MemoryStore::MemoryStore()
    : state_(std::make_unique<State>()), parts_(std::make_unique<Parts>(*state_)) {}
MemoryStore::~MemoryStore() = default;

store::RunLog& MemoryStore::runs() { return parts_->runs; }
store::Outbox& MemoryStore::outbox() { return parts_->outbox; }
store::AccountMirror& MemoryStore::mirror() { return parts_->mirror; }
store::AuditLog& MemoryStore::audit() { return parts_->audit; }
store::ScimResources& MemoryStore::scim() { return parts_->scim; }
store::SourceState& MemoryStore::sources() { return parts_->sources; }
store::AccountCache& MemoryStore::account_cache() { return parts_->cache; }
store::Lease& MemoryStore::lease() { return parts_->lease; }
store::ConsoleSessions& MemoryStore::console_sessions() { return parts_->console; }
void MemoryStore::SetFence(std::optional<store::Fence> fence) {
  std::lock_guard l(state_->mu);
  state_->fence = std::move(fence);
}

void MemoryStore::FailNext(const std::string& operation, int times) {
  std::lock_guard l(state_->mu);
  state_->failures[operation] = times;
}

std::vector<store::OutboxEntry> MemoryStore::AllEntries() const {
  std::lock_guard l(state_->mu);
  std::vector<store::OutboxEntry> out;
  for (const auto& [id, e] : state_->outbox) out.push_back(e);
  return out;
}

}  // namespace idsync::fakes
