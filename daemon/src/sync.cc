// One sync run, full or partial (sync.h): planning, recovery, the outbox and
// sending through the executor, and what a landed write changes. It stays one
// file (~730 lines) because full and partial runs share the commit, send and
// completion path, which is where the outbox promises (durable before sent,
// finished with the same key, recorded in one transaction) are kept; the
// reading of sources and the scheduling live elsewhere (inputs.cc,
// engine/executor.cc).
#include "idsync/daemon/sync.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iterator>
#include <mutex>
#include <random>
#include <set>
#include <shared_mutex>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "idsync/base/ascii.h"
#include "idsync/daemon/account_state.h"
#include "idsync/daemon/inputs.h"
#include "idsync/daemon/render.h"
#include "idsync/mapping/glob.h"

namespace idsync::daemon {
namespace {

using mapping::AccountWrite;
using mapping::OpKind;

// Keys must stay unique across processes and restarts: 128 random bits.
std::string NewIdempotencyKey() {
  static std::mutex mu;
  static std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mu);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return buf;
}

mapping::AccountUser ToAccountUser(mapping::AccountRecord r, const mapping::Catalog& catalog,
                                   bool managed) {
  mapping::AccountUser u = mapping::CompactAccountUser(std::move(r), catalog);
  u.managed = managed;
  return u;
}

// The body DESIGN.md's "Writes to the account" gives each kind of operation.
AccountWrite WriteFor(const mapping::Operation& op, const mapping::Catalog& catalog) {
  AccountWrite w;
  w.idempotency_key = NewIdempotencyKey();
  w.email = op.email;
  w.user_id = op.user_id;
  auto permissions = [&](const mapping::AccessState& s) {
    // An admin has everything; its map is sent empty and never diffed.
    return s.role == mapping::Role::kAdmin ? mapping::PermissionSpec{} : catalog.Compact(s.levels);
  };
  switch (op.kind) {
    case OpKind::kInvite:
      w.kind = AccountWrite::Kind::kInvite;
      w.name = op.after.name;
      w.role = op.after.role;
      w.permissions = permissions(op.after);
      w.projects = op.after.projects;
      break;
    case OpKind::kUpdate:
      w.kind = AccountWrite::Kind::kPatch;
      // Role, permissions and projects are sent whole: PATCH replaces them,
      // so the write means the same thing however often it lands.
      w.role = op.after.role;
      w.permissions = permissions(op.after);
      w.projects = op.after.projects;
      if (!op.after.name.empty() && op.after.name != op.before.name) w.name = op.after.name;
      break;
    case OpKind::kRevoke:
      w.kind = AccountWrite::Kind::kPatch;
      w.role = mapping::Role::kMember;
      w.permissions = mapping::PermissionSpec{};
      w.projects = std::vector<std::string>{};
      break;
    case OpKind::kRemove:
      w.kind = AccountWrite::Kind::kDelete;
      break;
  }
  return w;
}

bool IsReduction(const store::OutboxEntry& e) {
  return e.kind == OpKind::kRemove || e.kind == OpKind::kRevoke;
}

// Who is managed after a landed write: the policy the store records.
// Invited and adopted users become managed (a user already managed keeps
// how and since when); a deleted one is forgotten; updates and revokes of
// managed users change nothing.
store::Completion::Management ManagementAfter(const store::OutboxEntry& e, bool adopted) {
  using M = store::Completion::Management;
  if (e.write.kind == AccountWrite::Kind::kDelete) return M::kForget;
  if (adopted) return M::kAdopted;
  if (e.write.kind == AccountWrite::Kind::kInvite) return M::kInvited;
  return M::kUnchanged;
}

std::string SummaryJson(const ApplyReport& r) {
  nlohmann::ordered_json j;
  j["invite"] = r.plan.summary.invite;
  j["update"] = r.plan.summary.update;
  j["remove"] = r.plan.summary.remove;
  j["revoke"] = r.plan.summary.revoke;
  j["unchanged"] = r.plan.summary.unchanged;
  j["applied"] = r.applied;
  j["failed"] = r.failed;
  j["pending"] = r.pending;
  j["recovered"] = r.recovered;
  j["dropped"] = r.dropped;
  j["superseded"] = r.superseded.size();
  j["failed_sources"] = r.failed_sources;
  j["blocked"] = r.blocked;
  j["reasons"] = r.plan.reasons;
  return j.dump();
}

}  // namespace

std::int64_t SystemNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int ApplyExitCode(const ApplyReport& r) {
  if (r.blocked) return 3;
  if (r.failed > 0 || r.pending > 0 || r.stopped || !r.failed_sources.empty()) return 1;
  return 0;
}

std::string_view RunResultOf(const ApplyReport& r, const Status& error) {
  if (!error.ok() || r.stopped) return "failed";
  if (r.blocked) return "blocked";
  if (!r.failed_sources.empty()) return "source_failed";
  if (r.failed > 0 || r.pending > 0) return "operations_failed";
  return "ok";
}

std::string_view RunResultOf(const Result<ApplyReport>& outcome) {
  if (!outcome.ok()) return "failed";
  return RunResultOf(*outcome);
}

std::shared_ptr<const CompiledRules> RulesCache::Get() const {
  std::lock_guard<std::mutex> l(mu_);
  return compiled_;
}

void RulesCache::Put(std::shared_ptr<const CompiledRules> compiled) {
  std::lock_guard<std::mutex> l(mu_);
  compiled_ = std::move(compiled);
}

Syncer::Syncer(const config::Config& config, store::Store& store,
               mapping::AccountDirectory& account, NowFn now, ReadContext reads,
               engine::Executor* executor)
    : config_(config),
      store_(store),
      account_(account),
      now_(std::move(now)),
      reads_(std::move(reads)),
      executor_(executor) {
  if (reads_.store == nullptr) reads_.store = &store_;
  if (!reads_.now) reads_.now = now_;
  if (executor_ == nullptr) {
    own_executor_ =
        std::make_unique<engine::Executor>(std::clamp(config_.account.concurrency, 1, 64));
    executor_ = own_executor_.get();
  }
}

Syncer::~Syncer() = default;

namespace {

// Times the phases of a run for the operator (and for benchmarks).
class PhaseTimer {
 public:
  explicit PhaseTimer(std::vector<std::pair<std::string, double>>& out) : out_(out) {}
  void Done(const char* phase) {
    auto now = std::chrono::steady_clock::now();
    out_.emplace_back(phase, std::chrono::duration<double>(now - last_).count());
    last_ = now;
  }
  // The next phase starts now (the time since was reported otherwise).
  void Restart() { last_ = std::chrono::steady_clock::now(); }

 private:
  std::vector<std::pair<std::string, double>>& out_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// Lists the account's users: as records when `records` is set (apply keeps
// them for the mirror), else in the compact form a plan takes, page by
// page, so that 100,000 records with their permission maps are never held.
Status ListAccount(mapping::AccountDirectory& account, const mapping::Catalog& catalog,
                   std::vector<mapping::AccountRecord>* records,
                   std::vector<mapping::AccountUser>* compact) {
  if (records != nullptr) {
    Result<std::vector<mapping::AccountRecord>> users = account.ListUsers();
    if (!users.ok()) return users.status();
    *records = std::move(users).value();
    return Status::Ok();
  }
  return account.ForEachCompactUserPage(
      catalog, [&](std::vector<mapping::AccountUser>& page) -> Status {
        if (compact->capacity() < compact->size() + page.size()) {
          compact->reserve(std::max(compact->size() * 2, compact->size() + page.size()));
        }
        std::move(page.begin(), page.end(), std::back_inserter(*compact));
        return Status::Ok();
      });
}

}  // namespace

Result<PlannedRun> Syncer::Plan(bool force) { return PlanWith(force, /*record=*/false); }

Result<PlannedRun> Syncer::PlanWith(bool force, bool record) {
  PlannedRun run{mapping::Catalog::Builtin(), nullptr, {}, {}, {}, {}, {}, {}, {}, {}};
  PhaseTimer timer(run.timings);
  if (config_.catalog_source == config::CatalogSource::kAccount) {
    Result<mapping::Catalog> catalog = account_.GetCatalog();
    if (!catalog.ok()) return catalog.status().WithContext("reading the account's catalog");
    run.catalog = std::move(catalog).value();
  }
  ASSIGN_OR_RETURN(run.rules, CompileRules(config_, run.catalog));
  Result<std::vector<mapping::Project>> projects = account_.ListProjects();
  if (!projects.ok()) return projects.status().WithContext("reading the account's projects");
  run.projects = std::move(projects).value();
  timer.Done("read catalog and projects");

  // The account is listed on a second thread while the sources are read:
  // both mostly wait for a server.
  std::vector<mapping::AccountUser> listed;
  Status listing;
  ReadContext context = reads_;
  context.record = record;
  SourceReads reads;
  double account_seconds = 0;
  double sources_seconds = 0;
  {
    std::jthread lister([&] {
      const auto started = std::chrono::steady_clock::now();
      listing = ListAccount(account_, run.catalog, record ? &run.account : nullptr, &listed);
      account_seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    });
    const auto started = std::chrono::steady_clock::now();
    reads = ReadAllSources(config_, context);
    sources_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  }
  if (!listing.ok()) return listing.WithContext("reading the account's users");
  // The two overlap; each is reported whole.
  run.timings.emplace_back("read sources", sources_seconds);
  run.timings.emplace_back("read account (at the same time)", account_seconds);
  timer.Restart();
  run.failed_sources = reads.errors;
  run.source_states = reads.states;
  Result<mapping::MappingResult> mapped = mapping::Map(*run.rules, reads.snapshots);
  if (!mapped.ok()) return mapped.status();
  run.mapped = std::move(mapped).value();
  timer.Done("map");

  ASSIGN_OR_RETURN(std::vector<store::ManagedUser> managed, store_.mirror().Managed());
  std::unordered_set<std::string_view> managed_ids;
  managed_ids.reserve(managed.size());
  for (const auto& m : managed) managed_ids.insert(m.user_id);
  std::vector<mapping::AccountUser> actual;
  if (record) {
    actual.reserve(run.account.size());
    for (const auto& r : run.account) {
      actual.push_back(ToAccountUser(r, run.catalog, managed_ids.count(r.id) > 0));
    }
  } else {
    actual = std::move(listed);
    for (mapping::AccountUser& u : actual) u.managed = managed_ids.count(u.id) > 0;
  }

  mapping::ReconcileInput input;
  input.people = &run.mapped.people;
  input.account = &actual;
  input.projects = &run.projects;
  input.failed_sources = reads.failed;
  input.hold_all_reductions = reads.hold_all;
  mapping::ReconcilePolicy policy = config_.Policy();
  policy.force = force;
  ASSIGN_OR_RETURN(run.plan, mapping::Reconcile(input, run.catalog, policy));
  timer.Done("reconcile");
  run.snapshots = std::move(reads.snapshots);
  return run;
}

Status Syncer::FinishRun(const char* kind, std::chrono::steady_clock::time_point started,
                         const Status& error, ApplyReport& report) {
  report.elapsed_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  Result<std::string> head = store_.audit().Head();
  if (head.ok()) report.audit_head = *head;
  store::RunRecord run;
  run.id = report.run_id;
  run.kind = kind;
  run.finished_ms = now_();
  run.result = std::string(RunResultOf(report, error));
  run.error = error.message();
  run.summary_json = SummaryJson(report);
  run.audit_head = report.audit_head;
  return store_.runs().FinishRun(run);
}

Result<ApplyReport> Syncer::Apply(const ApplyOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  ApplyReport report;
  // Exclusive while recovering: no other run is live, so every unfinished
  // run and outbox entry is one that ended without finishing.
  std::unique_lock<std::shared_mutex> recovering(executor_->runs_gate());
  RETURN_IF_ERROR(store_.runs().CloseInterruptedRuns(now_()));
  ASSIGN_OR_RETURN(report.run_id, store_.runs().BeginRun("full", now_()));

  auto finish = [&](const Status& error) -> Status {
    return FinishRun("full", started, error, report);
  };

  // An interrupted run first: what it sent is finished with the same keys
  // before anything new is planned.
  Status recovered = Recover(report, options);
  if (!recovered.ok() || report.stopped) {
    RETURN_IF_ERROR(finish(recovered));
    if (!recovered.ok()) return recovered;
    return report;
  }
  recovering.unlock();
  std::shared_lock<std::shared_mutex> live(executor_->runs_gate());

  // Partial runs that claim people from here on supersede this plan's
  // writes for them.
  engine::Executor::BulkPlanning planning = executor_->BeginBulkPlanning();
  Result<PlannedRun> planned = PlanWith(options.force, /*record=*/true);
  if (!planned.ok()) {
    RETURN_IF_ERROR(finish(planned.status()));
    return planned.status();
  }
  report.plan = planned->plan;
  report.failed_sources = planned->failed_sources;
  report.source_states = planned->source_states;
  report.timings = planned->timings;
  PhaseTimer timer(report.timings);
  // The mirror follows the account as read, drift included; each landed
  // write then updates it. People partial runs planned since the account
  // was read keep their rows: those are newer.
  RETURN_IF_ERROR(
      store_.mirror().Replace(planned->account, now_(), executor_->ClaimedSince(planning.mark())));
  timer.Done("mirror");
  if (config_.catalog_source == config::CatalogSource::kAccount) {
    // Offline commands (validate, explain) check against the account's catalog.
    store_.account_cache().PutCatalog(planned->catalog).IgnoreError();
  }
  // Partial runs between full runs use these without asking the account.
  store_.account_cache().PutProjects(planned->projects).IgnoreError();
  if (options.rules != nullptr) {
    // The rules are not needed past planning: the cache takes them.
    auto compiled = std::make_shared<CompiledRules>();
    compiled->catalog = planned->catalog;
    compiled->rules = std::move(planned->rules);
    options.rules->Put(std::move(compiled));
  }
  if (options.sources_read) options.sources_read(planned->snapshots, planned->source_states);
  if (report.plan.blocked) {
    report.blocked = true;
    RETURN_IF_ERROR(finish(Status::Ok()));
    return report;
  }
  Status executed = Commit(report.plan, planned->catalog, planned->projects, planned->account,
                           report, options, engine::Lane::kBulk, planning.mark());
  timer.Done("send");
  RETURN_IF_ERROR(finish(executed));
  RETURN_IF_ERROR(executed);
  return report;
}

Status Syncer::Commit(const mapping::Plan& plan, const mapping::Catalog& catalog,
                      const std::vector<mapping::Project>& projects,
                      const std::vector<mapping::AccountRecord>& account, ApplyReport& report,
                      const ApplyOptions& options, engine::Lane lane, engine::Mark planned_at) {
  // Adoptions with nothing to change are recorded without a write.
  std::unordered_map<std::string, const mapping::AccountRecord*> by_email;
  for (const auto& r : account) by_email[base::AsciiLower(r.email)] = &r;
  for (const auto& email : plan.adopted) {
    auto it = by_email.find(email);
    if (it == by_email.end()) continue;
    RETURN_IF_ERROR(
        store_.mirror().SetManaged({it->second->id, it->second->email, "adopted", now_()}));
    store::AuditEntry audit;
    audit.at_ms = now_();
    audit.run_id = report.run_id;
    audit.action = "adopt";
    audit.email = it->second->email;
    audit.user_id = it->second->id;
    audit.source = options.source;
    audit.detail_json =
        R"({"reason":"adopt_existing: the address belongs to a person a source knows"})";
    RETURN_IF_ERROR(store_.audit().Append(audit).status());
  }

  std::vector<store::OutboxEntry> entries;
  entries.reserve(plan.operations.size());
  for (const auto& op : plan.operations) {
    store::OutboxEntry e;
    e.run_id = report.run_id;
    e.kind = op.kind;
    e.adopt = op.adopt;
    e.email = op.email;
    e.write = WriteFor(op, catalog);
    e.operation_json = OperationJson(op, catalog, projects);
    e.source = options.source;
    e.priority = options.priority;
    e.created_ms = now_();
    entries.push_back(std::move(e));
  }
  // Every operation is durable before the first one is sent.
  RETURN_IF_ERROR(store_.outbox().Enqueue(entries));
  return Execute(std::move(entries), report, options, lane, planned_at, /*droppable=*/true);
}

Result<std::shared_ptr<const CompiledRules>> Syncer::Compiled(RulesCache* cache) {
  if (cache != nullptr) {
    if (std::shared_ptr<const CompiledRules> kept = cache->Get()) return kept;
  }
  auto compiled = std::make_shared<CompiledRules>();
  ASSIGN_OR_RETURN(compiled->catalog, CachedCatalog());
  ASSIGN_OR_RETURN(compiled->rules, CompileRules(config_, compiled->catalog));
  if (cache != nullptr) cache->Put(compiled);
  return std::shared_ptr<const CompiledRules>(std::move(compiled));
}

Result<mapping::Catalog> Syncer::CachedCatalog() {
  if (config_.catalog_source != config::CatalogSource::kAccount) {
    return mapping::Catalog::Builtin();
  }
  if (std::optional<mapping::Catalog> cached = CachedAccountCatalog(store_)) {
    return std::move(*cached);
  }
  Result<mapping::Catalog> catalog = account_.GetCatalog();
  if (!catalog.ok()) return catalog.status().WithContext("reading the account's catalog");
  store_.account_cache().PutCatalog(*catalog).IgnoreError();
  return catalog;
}

Result<std::vector<mapping::Project>> Syncer::CachedProjects() {
  Result<std::optional<std::vector<mapping::Project>>> cached =
      store_.account_cache().GetProjects();
  if (cached.ok() && cached->has_value()) return std::move(**cached);
  Result<std::vector<mapping::Project>> projects = account_.ListProjects();
  if (!projects.ok()) return projects.status().WithContext("reading the account's projects");
  store_.account_cache().PutProjects(*projects).IgnoreError();
  return projects;
}

std::optional<RunWindowCounts::Counts> RunWindowCounts::Find(std::int64_t run_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = counts_.find(run_id);
  if (it == counts_.end()) return std::nullopt;
  return it->second;
}

void RunWindowCounts::Put(std::int64_t run_id, Counts counts) {
  std::lock_guard<std::mutex> lock(mu_);
  if (counts_.size() >= kMaxRuns) counts_.clear();
  counts_[run_id] = counts;
}

Result<ApplyReport> Syncer::ApplyPartial(const PartialRequest& request,
                                         const ApplyOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  if (request.snapshots.empty() || std::find(request.snapshots.begin(), request.snapshots.end(),
                                             nullptr) != request.snapshots.end()) {
    return InvalidArgumentError("partial run without snapshots");
  }
  ApplyReport report;
  report.failed_sources = request.failed_sources;
  std::vector<std::string> emails;
  for (const auto& e : request.emails) emails.push_back(base::AsciiLower(e));
  std::sort(emails.begin(), emails.end());
  emails.erase(std::unique(emails.begin(), emails.end()), emails.end());
  std::shared_lock<std::shared_mutex> live(executor_->runs_gate());
  // These people are ours until the run ends: a full run's writes for them
  // still queued are superseded, and the ones in flight land first, so the
  // mirror planned against below includes them.
  engine::Executor::Claim claim = executor_->ClaimPeople(emails);
  ASSIGN_OR_RETURN(report.run_id, store_.runs().BeginRun("partial", now_()));
  auto finish = [&](const Status& error) -> Status {
    return FinishRun("partial", started, error, report);
  };
  PhaseTimer timer(report.timings);

  auto planned = [&]()
      -> Result<std::tuple<std::shared_ptr<const CompiledRules>, std::vector<mapping::Project>,
                           std::vector<mapping::AccountRecord>>> {
    ASSIGN_OR_RETURN(std::shared_ptr<const CompiledRules> compiled, Compiled(options.rules));
    const mapping::Catalog& catalog = compiled->catalog;
    ASSIGN_OR_RETURN(std::vector<mapping::Project> projects, CachedProjects());
    mapping::MapOptions map_options;
    map_options.only_emails = &emails;
    ASSIGN_OR_RETURN(mapping::MappingResult mapped,
                     mapping::Map(*compiled->rules, request.snapshots, map_options));
    timer.Done("map");

    // Only the people in scope and the active admins are read of the
    // mirror, not the whole account.
    ASSIGN_OR_RETURN(std::vector<mapping::AccountRecord> mirror, store_.mirror().UsersFor(emails));
    std::vector<std::string> mirror_ids;
    for (const auto& r : mirror) mirror_ids.push_back(r.id);
    ASSIGN_OR_RETURN(std::vector<store::ManagedUser> managed,
                     store_.mirror().ManagedAmong(mirror_ids));
    ASSIGN_OR_RETURN(const std::int64_t managed_total, store_.mirror().ManagedCount());
    std::set<std::string> managed_ids;
    for (const auto& m : managed) managed_ids.insert(m.user_id);
    const std::set<std::string> scope(emails.begin(), emails.end());
    // Only the people in scope are planned. Other active admins are shown to
    // reconcile as unmanaged users (left alone) so that the last-admin check
    // still sees the whole account.
    std::vector<mapping::AccountRecord> in_scope;
    std::vector<mapping::AccountUser> actual;
    for (auto& r : mirror) {
      const bool is_managed = managed_ids.count(r.id) > 0;
      if (scope.count(base::AsciiLower(r.email)) > 0) {
        // The mirror says what the account held at the last full run and
        // after idsync's own writes; whether an invite was accepted since is
        // only known to the account. It matters: a revoke of an accepted
        // invite keeps the user, of an unaccepted one deletes it. Ask.
        if (r.status == mapping::AccountUser::Status::kInvited) {
          Result<mapping::AccountRecord> fresh = account_.GetUser(r.id);
          if (fresh.status().code() == StatusCode::kNotFound) continue;  // gone from the account
          if (!fresh.ok()) {
            return fresh.status().WithContext("read account user " + r.id +
                                              " before a partial run");
          }
          r = std::move(fresh).value();
        }
        actual.push_back(ToAccountUser(r, catalog, is_managed));
        in_scope.push_back(r);
      } else if (r.role == mapping::Role::kAdmin &&
                 r.status == mapping::AccountUser::Status::kActive) {
        actual.push_back(ToAccountUser(r, catalog, false));
      }
    }

    mapping::ReconcileInput input;
    input.people = &mapped.people;
    input.account = &actual;
    input.projects = &projects;
    input.failed_sources = request.failed_sources;
    input.hold_all_reductions = request.hold_all;
    mapping::ReconcilePolicy policy = config_.Policy();
    policy.force = options.force;
    // Percentages are of every managed user, not of the few in scope.
    auto as_count = [&](const mapping::Limit& limit) {
      if (limit.kind != mapping::Limit::Kind::kPercent) return limit;
      return mapping::Limit{mapping::Limit::Kind::kCount,
                            static_cast<double>(limit.Allowed(managed_total))};
    };
    policy.max_removals = as_count(policy.max_removals);
    policy.max_changes = as_count(policy.max_changes);
    ASSIGN_OR_RETURN(std::vector<store::RunRecord> runs, store_.runs().RecentRuns(1000));
    const std::int64_t window_start = now_() - config_.safety.window.count();
    for (const auto& r : runs) {
      if (r.id == report.run_id || r.kind != "partial" || r.started_ms < window_start) continue;
      if (r.result == "blocked" || r.summary_json.empty()) continue;
      std::optional<RunWindowCounts::Counts> counts;
      if (options.window_counts != nullptr) counts = options.window_counts->Find(r.id);
      if (!counts) {
        nlohmann::json j = nlohmann::json::parse(r.summary_json, nullptr, false);
        if (!j.is_object()) continue;
        RunWindowCounts::Counts read;
        read.removals = j.value("remove", std::int64_t{0}) + j.value("revoke", std::int64_t{0});
        read.changes =
            read.removals + j.value("invite", std::int64_t{0}) + j.value("update", std::int64_t{0});
        counts = read;
        if (options.window_counts != nullptr) options.window_counts->Put(r.id, read);
      }
      policy.window_removals += counts->removals;
      policy.window_changes += counts->changes;
    }
    ASSIGN_OR_RETURN(report.plan, mapping::Reconcile(input, catalog, policy));
    timer.Done("reconcile");
    return std::make_tuple(std::move(compiled), std::move(projects), std::move(in_scope));
  }();
  if (!planned.ok()) {
    RETURN_IF_ERROR(finish(planned.status()));
    return planned.status();
  }
  auto& [compiled, projects, account] = *planned;
  const mapping::Catalog& catalog = compiled->catalog;
  if (report.plan.blocked) {
    report.blocked = true;
    RETURN_IF_ERROR(finish(Status::Ok()));
    return report;
  }
  Status executed = Commit(report.plan, catalog, projects, account, report, options,
                           engine::Lane::kInteractive, 0);
  timer.Done("send");
  RETURN_IF_ERROR(finish(executed));
  RETURN_IF_ERROR(executed);
  return report;
}

Status Syncer::Recover(ApplyReport& report, const ApplyOptions& options) {
  ASSIGN_OR_RETURN(report.dropped, store_.outbox().DropPlanned(now_()));
  ASSIGN_OR_RETURN(std::vector<store::OutboxEntry> sent, store_.outbox().Unfinished());
  report.recovered = static_cast<std::int64_t>(sent.size());
  if (sent.empty()) return Status::Ok();
  return Execute(std::move(sent), report, options, engine::Lane::kBulk, 0, /*droppable=*/false);
}

Status Syncer::Execute(std::vector<store::OutboxEntry> entries, ApplyReport& report,
                       const ApplyOptions& options, engine::Lane lane, engine::Mark planned_at,
                       bool droppable) {
  const auto started = std::chrono::steady_clock::now();
  std::mutex mu;  // guards report, progress and first_error
  Status first_error;
  Progress progress;
  progress.total = static_cast<std::int64_t>(entries.size());

  engine::Batch batch;
  batch.lane = lane;
  batch.planned_at = planned_at;
  batch.tasks.reserve(entries.size());
  for (const store::OutboxEntry& e : entries) {
    batch.tasks.push_back({base::AsciiLower(e.email), IsReduction(e), droppable});
  }
  batch.cancelled = options.cancelled;
  batch.send = [&](std::size_t i) {
    bool stop_now = false;
    ApplyReport local;
    Status s = SendOne(entries[i], options, local, stop_now);
    std::lock_guard<std::mutex> lock(mu);
    report.applied += local.applied;
    report.failed += local.failed;
    report.failures.insert(report.failures.end(), local.failures.begin(), local.failures.end());
    if (!s.ok() && first_error.ok()) first_error = s;
    report.stopped = report.stopped || stop_now;
    if (options.operation_done) {
      options.operation_done(std::string(mapping::OpKindName(entries[i].kind)),
                             local.applied > 0  ? "applied"
                             : local.failed > 0 ? "failed"
                                                : "pending");
    }
    progress.done += local.applied + local.failed;
    progress.failed = report.failed;
    progress.elapsed_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (options.progress) options.progress(progress);
    return stop_now || !s.ok() ? engine::AfterSend::kStopBatch : engine::AfterSend::kContinue;
  };
  const engine::BatchResult result = executor_->Run(std::move(batch));

  // A later plan for these people won: their writes are never sent, and the
  // run's caller has them planned again against the mirror.
  for (std::size_t i : result.superseded) {
    Status dropped = store_.outbox().Drop(entries[i].id, now_());
    if (!dropped.ok() && first_error.ok()) first_error = dropped;
    report.superseded.push_back(base::AsciiLower(entries[i].email));
    if (options.operation_done) {
      options.operation_done(std::string(mapping::OpKindName(entries[i].kind)), "superseded");
    }
  }
  std::sort(report.superseded.begin(), report.superseded.end());
  report.superseded.erase(std::unique(report.superseded.begin(), report.superseded.end()),
                          report.superseded.end());
  report.pending +=
      progress.total - progress.done - static_cast<std::int64_t>(result.superseded.size());
  return first_error;
}

Status Syncer::SendOne(const store::OutboxEntry& entry, const ApplyOptions& options,
                       ApplyReport& report, bool& stop) {
  RETURN_IF_ERROR(store_.outbox().MarkSent(entry.id, now_()));
  Result<mapping::AccountRecord> written = account_.Write(entry.write);
  store::Completion done;
  done.entry_id = entry.id;
  bool adopted = entry.adopt;
  done.action = std::string(mapping::OpKindName(entry.kind));

  if (!written.ok() && written.status().code() == StatusCode::kAlreadyExists &&
      entry.write.kind == AccountWrite::Kind::kInvite) {
    // The person is already in the account (invited by hand, or by a run
    // whose answer was lost and whose key has expired).
    const std::string existing_id(
        written.status().GetPayload(mapping::kExistingUserIdKey).value_or(""));
    const std::string email = base::AsciiLower(entry.email);
    bool is_protected =
        std::find(config_.protect.begin(), config_.protect.end(), email) != config_.protect.end();
    if (!config_.adopt_existing || is_protected) {
      RETURN_IF_ERROR(store_.outbox().Fail(entry.id,
                                           "conflict: the account already has " + entry.email +
                                               " (" + existing_id + ") and adopt_existing is false",
                                           now_()));
      report.failed++;
      report.failures.push_back(entry.email + ": already in the account, not adopted");
      return Status::Ok();
    }
    AccountWrite adopt = entry.write;
    adopt.kind = AccountWrite::Kind::kPatch;
    adopt.user_id = existing_id;
    adopt.email.clear();
    // Derived from the invite's key, so a retry after a crash replays it.
    adopt.idempotency_key = entry.write.idempotency_key + "-adopt";
    written = account_.Write(adopt);
    adopted = true;
    done.action = "adopt";
  }

  if (written.ok()) {
    done.at_ms = now_();
    done.management = ManagementAfter(entry, adopted);
    if (entry.write.kind == AccountWrite::Kind::kDelete) {
      done.user_id = entry.write.user_id;
    } else {
      done.user_id = written->id.empty() ? entry.write.user_id : written->id;
      done.user = *written;
    }
    RETURN_IF_ERROR(store_.outbox().Complete(done).status());
    report.applied++;
    return Status::Ok();
  }
  const Status& s = written.status();
  if (s.code() == StatusCode::kUnauthenticated || s.code() == StatusCode::kPermissionDenied) {
    // The account refuses our credentials: stop, keep everything pending.
    RETURN_IF_ERROR(store_.outbox().NoteError(entry.id, s.ToString(), now_()));
    stop = true;
    return Status::Ok();
  }
  if (options.cancelled && options.cancelled()) {
    // Stopping (the client gave up its retries for it): the write stays
    // sent, and the next run finishes it with the same key.
    RETURN_IF_ERROR(store_.outbox().NoteError(entry.id, s.ToString(), now_()));
    return Status::Ok();
  }
  RETURN_IF_ERROR(store_.outbox().Fail(entry.id, s.ToString(), now_()));
  report.failed++;
  report.failures.push_back(entry.email + ": " + s.message());
  return Status::Ok();
}

}  // namespace idsync::daemon
