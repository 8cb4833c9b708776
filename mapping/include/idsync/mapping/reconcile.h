// Reconcile: desired access versus the account's users gives a plan of
// invites, updates, removals and revokes, checked against the safety limits.
//
// Pure: no I/O, clock or threads; reentrant.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/mapping/catalog.h"
#include "idsync/mapping/model.h"
#include "idsync/mapping/rules.h"

namespace idsync::mapping {

// What happens to a managed user that should no longer have access.
enum class DeprovisionMode : std::uint8_t { kRemove, kRevoke };

// A safety limit: unlimited, a count, or a percentage of managed users.
struct Limit {
  enum class Kind : std::uint8_t { kUnlimited, kCount, kPercent };
  Kind kind = Kind::kUnlimited;
  double value = 0;  // count, or percent (0..100)

  // The most operations allowed when idsync manages `managed` users; a
  // percentage rounds down but is at least 1 when above 0%. INT64_MAX when
  // unlimited.
  std::int64_t Allowed(std::int64_t managed) const;
};

struct ReconcilePolicy {
  DeprovisionMode deprovision = DeprovisionMode::kRemove;
  bool adopt_existing = false;
  std::vector<std::string> protect;  // e-mail addresses, any case: never touched
  Limit max_removals;                // removals and revokes
  Limit max_changes;                 // every operation
  // Already done within the current safety window by earlier partial runs.
  std::int64_t window_removals = 0;
  std::int64_t window_changes = 0;
  bool force = false;  // pass the limits: the plan is not blocked
};

struct ReconcileInput {
  const std::vector<PersonAccess>* people = nullptr;  // Map()'s result
  const std::vector<AccountUser>* account = nullptr;  // the account's users
  const std::vector<Project>* projects = nullptr;     // to turn rule project names into ids
  // Sources whose latest read failed. Nobody they granted anything loses access.
  std::vector<std::string> failed_sources;
  // A failed source has no good read at all: no managed user loses access.
  bool hold_all_reductions = false;
};

enum class OpKind : std::uint8_t { kInvite, kUpdate, kRemove, kRevoke };
std::string_view OpKindName(OpKind kind);  // "invite" | "update" | "remove" | "revoke"

// The safety checks that can refuse a plan.
enum class SafetyLimit { kMaxRemovals, kMaxChanges, kLastAdmin };
// "max_removals" | "max_changes" | "last_admin" (the configuration's names).
std::string_view SafetyLimitName(SafetyLimit limit);

// The account-side values of a user: role, levels, projects, name.
struct AccessState {
  Role role = Role::kMember;
  ItemLevels levels;                  // every item
  std::vector<std::string> projects;  // project ids, sorted
  std::string name;
};

struct Operation {
  OpKind kind = OpKind::kInvite;
  std::string email;    // invite: lower-cased address; else as the account stores it
  std::string user_id;  // empty for invite
  AccessState after;    // invite, update: the values after; remove: empty; revoke: member, none, []
  AccessState before;   // update, remove, revoke: the values now
  std::vector<std::string> rules;  // names of the rules behind `after`
  bool adopt = false;              // this update also takes an unmanaged user under management
  // remove/revoke: why ("no source knows this person", "disabled in corp-ad",
  // "no rule matches", "invite never accepted"); update: which parts change.
  std::string reason;
};

struct Plan {
  bool blocked = false;               // a safety limit refused it (and force was not set)
  bool forced = false;                // a limit was exceeded but force passed it
  std::vector<std::string> reasons;   // why it is (or would have been) blocked, for people
  std::vector<SafetyLimit> tripped;   // which checks: one per reason, same order
  std::vector<Operation> operations;  // invites, updates, revokes, removes; by e-mail within each
  // Unmanaged account users adopted with nothing to change (lower-cased e-mails).
  std::vector<std::string> adopted;
  // People who should have access but whose account user idsync does not
  // manage (adopt_existing is false): reported, not changed.
  std::vector<std::string> conflicts;
  // Managed users whose reduction was held back because a source failed.
  std::vector<std::string> held;
  struct Summary {
    std::int64_t invite = 0, update = 0, remove = 0, revoke = 0, unchanged = 0;
  } summary;
  std::int64_t managed_before = 0;  // managed users before the plan (the base of percentages)
};

// Builds the plan. kNotFound naming the rule's project when a project name is
// not among input.projects; kInvalidArgument when input pointers are null.
Result<Plan> Reconcile(const ReconcileInput& input, const Catalog& catalog,
                       const ReconcilePolicy& policy);

}  // namespace idsync::mapping
