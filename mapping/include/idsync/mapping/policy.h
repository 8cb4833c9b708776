// Policy tests: cases written beside the rules that say what the rules must
// give a person (config.md, "tests"). A `given:` case describes a made-up
// person (their complete set of groups, an address, disabled or not) and is
// mapped here through the rules alone; a `person:` case names someone the
// sources know, whose access the caller maps from the real snapshots. Check
// compares what a person got with what the case expects and, for each
// difference, names the rules and groups that produced what was got.
//
// Pure: no I/O, clock or threads; reentrant.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/mapping/catalog.h"
#include "idsync/mapping/model.h"
#include "idsync/mapping/rules.h"

namespace idsync::mapping {

// A group of a made-up person: by name, by DN, or both (a rule that names
// groups by DN matches only a group given with its DN, and one that names
// them by name only a group given with its name).
struct PolicyGroup {
  std::string source;
  std::string name;
  std::string dn;
};

// What a case expects; a field left unset is not compared.
struct PolicyExpect {
  std::optional<bool> access;
  std::optional<Role> role;
  std::optional<std::vector<std::string>> projects;  // the exact set of names
  // Permission keys in the order written: an area key means every item of
  // the area at exactly that level, an "area.item" key that item.
  std::vector<std::pair<std::string, Level>> levels;
};

struct PolicyCase {
  std::string name;
  std::string where;   // "FILE:LINE:COL" of the case, for messages
  std::string person;  // a person: case's address (ASCII lower-cased); "" for given:
  // given: the made-up person. Their groups are all they are in: nesting is
  // not expanded.
  std::string email;  // may be empty: then no rule that matches on e-mail matches
  std::vector<PolicyGroup> groups;
  bool disabled = false;
  PolicyExpect expect;

  bool given() const { return person.empty(); }
};

// A matched rule behind a value that was got, and the groups it matched through.
struct PolicyCause {
  std::string rule;
  std::vector<GroupRef> via;  // empty for a rule without a group condition
};

struct PolicyMismatch {
  std::string key;                  // "access", "role", "projects", or the permission key
  std::string expected;             // "edit", "member", "support-bot, sales-bot", "true"
  std::string got;                  // for an area whose items differ: "read on a.x, none on a.y"
  std::vector<PolicyCause> causes;  // the rules that gave what was got (may be none)
};

struct PolicyResult {
  bool passed = false;
  // Why the case could not be compared at all ("no source knows x@y"); the
  // case has failed then.
  std::string problem;
  std::vector<PolicyMismatch> mismatches;
  // What the person got it from, for a difference no rule caused: every
  // rule that matched them, and every group they are in.
  std::vector<std::string> matched_rules;
  std::vector<GroupRef> groups;
};

// The made-up person of a given: case mapped through `rules`: one entry in a
// snapshot of each source its groups name, each group holding it directly;
// with no group, an entry in every source of `sources`. The address is the
// case's email, or "policy-test@policy-test.invalid" when it has none.
Result<PersonAccess> MapGiven(const RuleSet& rules, const PolicyCase& test,
                              const std::vector<std::string>& sources);

// Compares `got` (nullptr: nobody with the case's address) with the case's
// expectations. With `access: false` expected, nothing else is compared.
PolicyResult CheckPolicy(const RuleSet& rules, const PolicyCase& test, const PersonAccess* got);

// MapGiven then CheckPolicy; a mapping error is the result's problem.
PolicyResult RunGiven(const RuleSet& rules, const PolicyCase& test,
                      const std::vector<std::string>& sources);

// The result as text for people, several lines, each ending in '\n':
//   FILE:LINE:COL: policy test "NAME" failed
//     role: expected member, got admin
//       from rule "studio-admins" via contractors: Studio Admins
// and, under a difference no rule caused, the rules that matched the person
// and the groups they are in.
std::string DescribeFailure(const PolicyCase& test, const PolicyResult& result);

}  // namespace idsync::mapping
