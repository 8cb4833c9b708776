#include "idsync/mapping/reconcile.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "idsync/base/ascii.h"

namespace idsync::mapping {

std::int64_t Limit::Allowed(std::int64_t managed) const {
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  double allowed = 0;
  switch (kind) {
    case Kind::kUnlimited:
      return kMax;
    case Kind::kCount:
      allowed = value;
      break;
    case Kind::kPercent:
      // Multiply first so that whole percentages of whole counts stay exact;
      // the small epsilon keeps 2.9999999 (binary rounding) from becoming 2.
      allowed = static_cast<double>(std::max<std::int64_t>(managed, 0)) * value / 100.0 + 1e-9;
      break;
  }
  if (kind == Kind::kPercent && value > 0) {
    // A percentage rounds down but always lets one through: with 5% of 10
    // managed users, one person leaving is not a mass deprovisioning.
    allowed = std::max(allowed, 1.0);
  }
  if (!(allowed > 0)) return 0;  // also NaN
  if (allowed >= 9.2e18) return kMax;
  return static_cast<std::int64_t>(std::floor(allowed));
}

std::string_view SafetyLimitName(SafetyLimit limit) {
  switch (limit) {
    case SafetyLimit::kMaxRemovals:
      return "max_removals";
    case SafetyLimit::kMaxChanges:
      return "max_changes";
    case SafetyLimit::kLastAdmin:
      return "last_admin";
  }
  return "last_admin";
}

std::string_view OpKindName(OpKind kind) {
  switch (kind) {
    case OpKind::kInvite:
      return "invite";
    case OpKind::kUpdate:
      return "update";
    case OpKind::kRemove:
      return "remove";
    case OpKind::kRevoke:
      return "revoke";
  }
  return "invite";
}

namespace {

using base::AsciiLower;

// Levels from outside (a stored map expanded against an older catalog, a
// person built by hand) may not have one entry per item; missing items are
// none, extra ones are dropped, so comparisons are per item of this catalog.
ItemLevels Normalize(ItemLevels levels, std::size_t items) {
  levels.resize(items, Level::kNone);
  return levels;
}

std::vector<std::string> SortedUnique(std::vector<std::string> values) {
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  return values;
}

AccessState CurrentState(const AccountUser& user, std::size_t items) {
  AccessState state;
  state.role = user.role;
  state.levels = Normalize(user.levels, items);
  state.projects = SortedUnique(user.projects);
  state.name = user.name;
  return state;
}

// An admin's permissions are ignored by the account, so they are never
// compared; the plan shows an admin with edit on every item.
bool SameAccess(const AccessState& a, const AccessState& b) {
  if (a.role != b.role) return false;
  if (a.role == Role::kMember && a.levels != b.levels) return false;
  return a.projects == b.projects && a.name == b.name;
}

// Which parts an update changes, for Operation::reason.
std::string ChangedParts(const AccessState& before, const AccessState& after) {
  std::vector<std::string_view> parts;
  if (before.role != after.role) parts.push_back("role");
  if (after.role == Role::kMember && before.levels != after.levels) parts.push_back("permissions");
  if (before.projects != after.projects) parts.push_back("projects");
  if (before.name != after.name) parts.push_back("name");
  std::string out;
  for (std::string_view part : parts) {
    if (!out.empty()) out += ", ";
    out += part;
  }
  return out;
}

// True when going from `current` to `desired` takes some access away: a
// lower role, a lower level on some item (members only), a lost project.
bool Reduces(const AccessState& current, const AccessState& desired) {
  if (current.role == Role::kAdmin && desired.role == Role::kMember) return true;
  if (desired.role == Role::kMember) {
    for (std::size_t i = 0; i < desired.levels.size(); ++i) {
      if (current.levels[i] > desired.levels[i]) return true;
    }
  }
  return !std::includes(desired.projects.begin(), desired.projects.end(), current.projects.begin(),
                        current.projects.end());
}

// The access a held person keeps: everything they have now plus whatever the
// rules add. The name is not access, so the desired one applies.
AccessState Union(const AccessState& desired, const AccessState& current, const Catalog& catalog) {
  AccessState out = desired;
  if (current.role == Role::kAdmin) out.role = Role::kAdmin;
  if (out.role == Role::kAdmin) {
    out.levels = catalog.Uniform(Level::kEdit);
  } else {
    for (std::size_t i = 0; i < out.levels.size(); ++i) {
      out.levels[i] = std::max(out.levels[i], current.levels[i]);
    }
  }
  std::vector<std::string> projects;
  std::set_union(desired.projects.begin(), desired.projects.end(), current.projects.begin(),
                 current.projects.end(), std::back_inserter(projects));
  out.projects = std::move(projects);
  return out;
}

bool IsRevoked(const AccessState& state) {
  return state.role == Role::kMember && state.projects.empty() &&
         std::all_of(state.levels.begin(), state.levels.end(),
                     [](Level l) { return l == Level::kNone; });
}

std::string Join(const std::vector<std::string>& values) {
  std::string out;
  for (const std::string& v : values) {
    if (!out.empty()) out += ", ";
    out += v;
  }
  return out;
}

std::string NoAccessReason(const PersonAccess* person) {
  if (person == nullptr) return "no source knows this person";
  if (person->disabled) {
    // Which of several sources disabled the person is not carried here.
    if (person->sources.empty()) return "disabled in a source";
    if (person->sources.size() == 1) return "disabled in " + person->sources.front();
    return "disabled in one of " + Join(person->sources);
  }
  return "no rule matches";
}

std::string Counted(std::int64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

std::string DescribeLimit(const Limit& limit, std::int64_t allowed) {
  std::ostringstream out;
  if (limit.kind == Limit::Kind::kPercent) {
    out << limit.value << "% = " << allowed;
  } else {
    out << allowed;
  }
  return out.str();
}

// The reason a limit refuses the plan, or nullopt when it holds. A plan that
// adds nothing to the count is never refused: earlier runs in the window are
// already done and refusing this one would not undo them.
std::optional<std::string> CheckLimit(std::string_view setting, std::string_view one,
                                      std::string_view many, const Limit& limit,
                                      std::int64_t in_plan, std::int64_t in_window,
                                      std::int64_t managed) {
  if (in_plan <= 0) return std::nullopt;
  const std::int64_t allowed = limit.Allowed(managed);
  const std::int64_t total = in_plan + std::max<std::int64_t>(in_window, 0);
  if (total <= allowed) return std::nullopt;
  std::string reason = Counted(total, one, many);
  if (in_window > 0) {
    reason += " (" + std::to_string(in_plan) + " in this plan, " + std::to_string(in_window) +
              " earlier in the window)";
  }
  reason += " exceed" + std::string(total == 1 ? "s " : " ") + std::string(setting) + " " +
            DescribeLimit(limit, allowed) + " (of " +
            Counted(managed, "managed user", "managed users") + ")";
  return reason;
}

int KindRank(OpKind kind) {
  switch (kind) {
    case OpKind::kInvite:
      return 0;
    case OpKind::kUpdate:
      return 1;
    case OpKind::kRevoke:
      return 2;
    case OpKind::kRemove:
      return 3;
  }
  return 4;
}

// The state of one plan under construction.
class Planner {
 public:
  Planner(const ReconcileInput& input, const Catalog& catalog, const ReconcilePolicy& policy)
      : input_(input), catalog_(catalog), policy_(policy), items_(catalog.item_count()) {}

  Result<Plan> Run();

 private:
  Status ResolveProjects();
  bool Held(const PersonAccess* person) const;
  AccessState Desired(std::size_t person, const AccessState& current) const;
  void WithAccess(const AccountUser& user, std::size_t person);
  void WithoutAccess(const AccountUser& user, const PersonAccess* person);
  void Deprovision(const AccountUser& user, const PersonAccess* person, const AccessState& current);
  void Emit(Operation op, const AccountUser* user);
  void Invite(std::size_t person);
  void CheckSafety();

  const ReconcileInput& input_;
  const Catalog& catalog_;
  const ReconcilePolicy& policy_;
  const std::size_t items_;
  std::vector<std::vector<std::string>> project_ids_;  // per person, sorted
  std::unordered_set<std::string> protected_;
  std::unordered_set<std::string> failed_;
  // Role of each active account user once the plan is applied; nullopt when
  // removed. Only for the last-admin check.
  std::unordered_map<const AccountUser*, std::optional<Role>> role_after_;
  bool had_active_admin_ = false;
  Plan plan_;
};

Status Planner::ResolveProjects() {
  std::unordered_map<std::string, const std::string*> ids;
  for (const Project& project : *input_.projects) {
    ids.try_emplace(project.name, &project.id);  // a repeated name keeps the first
  }
  // Check people in e-mail order so the same input always reports the same
  // first unknown name.
  const std::vector<PersonAccess>& people = *input_.people;
  std::vector<std::size_t> order(people.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return people[a].email < people[b].email; });
  project_ids_.assign(people.size(), {});
  for (std::size_t i : order) {
    for (const std::string& name : people[i].projects) {
      auto it = ids.find(name);
      if (it == ids.end()) {
        std::string message = "project \"" + name + "\"";
        if (!people[i].rules.empty()) message += " (rule " + Join(people[i].rules) + ")";
        message += " is not a project of the account";
        return NotFoundError(std::move(message));
      }
      project_ids_[i].push_back(*it->second);
    }
    project_ids_[i] = SortedUnique(std::move(project_ids_[i]));
  }
  return Status::Ok();
}

// A person loses nothing while a source that granted them something is
// failing; with no good read of some source at all, nobody does.
bool Planner::Held(const PersonAccess* person) const {
  if (input_.hold_all_reductions) return true;
  if (person == nullptr) return false;
  return std::any_of(person->granting_sources.begin(), person->granting_sources.end(),
                     [&](const std::string& s) { return failed_.count(s) > 0; });
}

AccessState Planner::Desired(std::size_t person, const AccessState& current) const {
  const PersonAccess& p = (*input_.people)[person];
  AccessState desired;
  desired.role = p.role;
  desired.levels =
      p.role == Role::kAdmin ? catalog_.Uniform(Level::kEdit) : Normalize(p.levels, items_);
  desired.projects = project_ids_[person];
  // A person with no name in any source keeps the account's name.
  desired.name = p.name.empty() ? current.name : p.name;
  return desired;
}

void Planner::Emit(Operation op, const AccountUser* user) {
  if (user != nullptr) {
    auto it = role_after_.find(user);
    if (it != role_after_.end()) {
      switch (op.kind) {
        case OpKind::kRemove:
          it->second = std::nullopt;
          break;
        case OpKind::kRevoke:
          it->second = Role::kMember;
          break;
        case OpKind::kUpdate:
          it->second = op.after.role;
          break;
        case OpKind::kInvite:
          break;
      }
    }
  }
  plan_.operations.push_back(std::move(op));
}

void Planner::WithAccess(const AccountUser& user, std::size_t person) {
  const PersonAccess& p = (*input_.people)[person];
  if (!user.managed && !policy_.adopt_existing) {
    plan_.conflicts.push_back(AsciiLower(user.email));
    return;
  }
  const AccessState current = CurrentState(user, items_);
  AccessState after = Desired(person, current);
  if (Held(&p) && Reduces(current, after)) {
    after = Union(after, current, catalog_);
    plan_.held.push_back(AsciiLower(user.email));
  }
  if (SameAccess(current, after)) {
    if (!user.managed) plan_.adopted.push_back(AsciiLower(user.email));
    ++plan_.summary.unchanged;
    return;
  }
  Operation op;
  op.kind = OpKind::kUpdate;
  op.email = user.email;
  op.user_id = user.id;
  op.reason = ChangedParts(current, after);
  op.after = std::move(after);
  op.before = current;
  op.rules = p.rules;
  op.adopt = !user.managed;
  Emit(std::move(op), &user);
}

void Planner::WithoutAccess(const AccountUser& user, const PersonAccess* person) {
  // Unmanaged users are taken over only when a source knows the address
  // (enabled or not) and the configuration asks for it.
  if (!user.managed && !(policy_.adopt_existing && person != nullptr)) return;
  const AccessState current = CurrentState(user, items_);
  Deprovision(user, person, current);
}

void Planner::Deprovision(const AccountUser& user, const PersonAccess* person,
                          const AccessState& current) {
  Operation op;
  op.email = user.email;
  op.user_id = user.id;
  op.before = current;
  op.adopt = !user.managed;
  op.reason = NoAccessReason(person);
  // An invite that was never accepted has nothing worth keeping: revoking it
  // would still let the person join, so it is deleted.
  const bool invited = user.status == AccountUser::Status::kInvited;
  if (policy_.deprovision == DeprovisionMode::kRevoke && !invited) {
    op.kind = OpKind::kRevoke;
    op.after.role = Role::kMember;
    op.after.levels = catalog_.Uniform(Level::kNone);
    op.after.name = current.name;
  } else {
    op.kind = OpKind::kRemove;
    if (policy_.deprovision == DeprovisionMode::kRevoke) op.reason = "invite never accepted";
  }
  const bool nothing_to_do = op.kind == OpKind::kRevoke && IsRevoked(current);
  if (!nothing_to_do && Held(person)) {
    plan_.held.push_back(AsciiLower(user.email));
  } else if (!nothing_to_do) {
    Emit(std::move(op), &user);
    return;
  }
  if (!user.managed) plan_.adopted.push_back(AsciiLower(user.email));
  ++plan_.summary.unchanged;
}

void Planner::Invite(std::size_t person) {
  const PersonAccess& p = (*input_.people)[person];
  Operation op;
  op.kind = OpKind::kInvite;
  op.email = AsciiLower(p.email);
  op.after = Desired(person, AccessState{});
  op.rules = p.rules;
  Emit(std::move(op), nullptr);
}

void Planner::CheckSafety() {
  const std::int64_t removals = plan_.summary.remove + plan_.summary.revoke;
  const std::int64_t changes = static_cast<std::int64_t>(plan_.operations.size());
  if (auto r = CheckLimit("max_removals", "removal", "removals", policy_.max_removals, removals,
                          policy_.window_removals, plan_.managed_before)) {
    plan_.reasons.push_back(std::move(*r));
    plan_.tripped.push_back(SafetyLimit::kMaxRemovals);
  }
  if (auto r = CheckLimit("max_changes", "change", "changes", policy_.max_changes, changes,
                          policy_.window_changes, plan_.managed_before)) {
    plan_.reasons.push_back(std::move(*r));
    plan_.tripped.push_back(SafetyLimit::kMaxChanges);
  }
  // Only a plan that takes the last active admin away is refused; an account
  // that has none already is not made worse by it.
  if (had_active_admin_) {
    const bool admin_left =
        std::any_of(role_after_.begin(), role_after_.end(),
                    [](const auto& entry) { return entry.second == Role::kAdmin; });
    if (!admin_left) {
      plan_.reasons.push_back("the plan would leave the account without an active admin");
      plan_.tripped.push_back(SafetyLimit::kLastAdmin);
    }
  }
  if (!plan_.reasons.empty()) {
    plan_.blocked = !policy_.force;
    plan_.forced = policy_.force;
  }
}

Result<Plan> Planner::Run() {
  RETURN_IF_ERROR(ResolveProjects());
  for (const std::string& email : policy_.protect) protected_.insert(AsciiLower(email));
  for (const std::string& source : input_.failed_sources) failed_.insert(source);

  const std::vector<PersonAccess>& people = *input_.people;
  std::unordered_map<std::string, std::size_t> by_email;
  for (std::size_t i = 0; i < people.size(); ++i) {
    by_email.try_emplace(AsciiLower(people[i].email), i);  // Map() gives one entry per address
  }

  for (const AccountUser& user : *input_.account) {
    if (user.managed) ++plan_.managed_before;
    if (user.status == AccountUser::Status::kActive) {
      role_after_[&user] = user.role;
      if (user.role == Role::kAdmin) had_active_admin_ = true;
    }
  }

  std::vector<bool> has_user(people.size(), false);
  for (const AccountUser& user : *input_.account) {
    const std::string email = AsciiLower(user.email);
    auto it = by_email.find(email);
    const PersonAccess* person = it == by_email.end() ? nullptr : &people[it->second];
    if (person != nullptr) has_user[it->second] = true;
    if (protected_.count(email) > 0) {
      if (user.managed) ++plan_.summary.unchanged;
      continue;
    }
    if (person != nullptr && person->has_access) {
      WithAccess(user, it->second);
    } else {
      WithoutAccess(user, person);
    }
  }
  for (std::size_t i = 0; i < people.size(); ++i) {
    if (people[i].has_access && !has_user[i] &&
        protected_.count(AsciiLower(people[i].email)) == 0) {
      Invite(i);
    }
  }

  // Sort on precomputed keys: a plan can hold many thousands of operations.
  struct Key {
    int rank;
    std::string email;
    std::string user_id;
    std::size_t index;
  };
  std::vector<Key> keys;
  keys.reserve(plan_.operations.size());
  for (std::size_t i = 0; i < plan_.operations.size(); ++i) {
    const Operation& op = plan_.operations[i];
    keys.push_back({KindRank(op.kind), AsciiLower(op.email), op.user_id, i});
  }
  std::sort(keys.begin(), keys.end(), [](const Key& a, const Key& b) {
    return std::tie(a.rank, a.email, a.user_id, a.index) <
           std::tie(b.rank, b.email, b.user_id, b.index);
  });
  std::vector<Operation> sorted;
  sorted.reserve(keys.size());
  for (const Key& key : keys) sorted.push_back(std::move(plan_.operations[key.index]));
  plan_.operations = std::move(sorted);
  for (const Operation& op : plan_.operations) {
    switch (op.kind) {
      case OpKind::kInvite:
        ++plan_.summary.invite;
        break;
      case OpKind::kUpdate:
        ++plan_.summary.update;
        break;
      case OpKind::kRemove:
        ++plan_.summary.remove;
        break;
      case OpKind::kRevoke:
        ++plan_.summary.revoke;
        break;
    }
  }
  plan_.adopted = SortedUnique(std::move(plan_.adopted));
  plan_.conflicts = SortedUnique(std::move(plan_.conflicts));
  plan_.held = SortedUnique(std::move(plan_.held));
  CheckSafety();
  return std::move(plan_);
}

}  // namespace

Result<Plan> Reconcile(const ReconcileInput& input, const Catalog& catalog,
                       const ReconcilePolicy& policy) {
  if (input.people == nullptr) return InvalidArgumentError("reconcile: no people given");
  if (input.account == nullptr) return InvalidArgumentError("reconcile: no account users given");
  if (input.projects == nullptr) return InvalidArgumentError("reconcile: no projects given");
  Planner planner(input, catalog, policy);
  return planner.Run();
}

}  // namespace idsync::mapping
