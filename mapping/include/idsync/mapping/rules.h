// Rules: from group membership to access. A RuleSet is compiled once from the
// configuration (presets expanded, DNs normalized, globs kept); Map() then
// joins the sources' snapshots by e-mail, resolves nested groups, and gives
// every person a role, a level per catalog item with the rule behind it, and
// projects.
//
// Pure: no I/O, clock or threads. A RuleSet is immutable and may be shared by
// threads; Map() is reentrant.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/mapping/catalog.h"
#include "idsync/mapping/model.h"

namespace idsync::mapping {

// A rule as configured (config.md, "rules").
struct Rule {
  std::string name;
  // match.group: any of these. A value containing '=' is a DN (compared as a
  // DN, values case-folded: dn.h), else a name glob ('*', '?') compared after
  // FoldCase (glob.h: Unicode simple case folding of Latin, Greek, Cyrillic
  // and Armenian). Empty: no group condition.
  std::vector<std::string> groups;
  std::string source;  // match.source; empty: any source
  std::string email;   // match.email glob (GlobMatch, FoldCase); empty: any address
  std::optional<Role> role;
  std::vector<std::string> presets;
  PermissionSpec permissions;         // the rule's own keys, applied after presets
  std::vector<std::string> projects;  // project names
};

// Rules compiled against a catalog and presets.
class RuleSet {
 public:
  // kInvalidArgument naming the rule when: a name is empty or repeated; match
  // has no condition; a preset is unknown; a permission key is not in the
  // catalog; a group DN is malformed; it grants nothing ("rule \"X\" grants
  // nothing: ..."): its role is not admin, every item of its levels (presets
  // then own keys) is none, and it has no project, so `role: member` alone
  // or `permissions: {build: none}` alone is an error. `known_sources`
  // non-empty: match.source must be one of them.
  static Result<RuleSet> Compile(const std::vector<Rule>& rules, const Catalog& catalog,
                                 const PresetBook& presets,
                                 const std::vector<std::string>& known_sources);

  const std::vector<Rule>& rules() const { return rules_; }
  const Catalog& catalog() const { return catalog_; }

  // The levels one rule gives a member, after its presets and own keys.
  const ItemLevels& RuleLevels(std::size_t rule) const { return levels_[rule]; }

  // The normalized DN patterns of a rule's match.group ("" for name globs),
  // parallel to rules()[rule].groups.
  const std::vector<std::string>& NormalizedGroupDns(std::size_t rule) const {
    return group_dns_[rule];
  }

 private:
  std::vector<Rule> rules_;
  Catalog catalog_;
  std::vector<ItemLevels> levels_;
  std::vector<std::vector<std::string>> group_dns_;
};

// A group a person belongs to, directly or through nesting.
struct GroupRef {
  std::string source;
  std::string name;
  std::string dn;  // empty for SCIM groups

  friend bool operator==(const GroupRef&, const GroupRef&) = default;
};

// One rule that matched a person, and the groups that made it match (empty
// for a rule without a group condition).
struct RuleMatch {
  std::uint32_t rule = 0;  // index into RuleSet::rules()
  std::vector<GroupRef> via;
};

// What one person should have. People are keyed by e-mail, ASCII
// lower-cased (non-ASCII letters are kept as they are).
struct PersonAccess {
  std::string email;  // ASCII lower-cased
  // From the first mapped entry (snapshot order) that has one.
  std::string name;
  // Sources that know this address, in snapshot order, including a source
  // whose entries share it (those entries are not mapped).
  std::vector<std::string> sources;
  // Disabled or inactive in at least one entry of any source, including an
  // entry not mapped because its address is shared.
  bool disabled = false;
  bool has_access = false;  // some rule matched (through mapped entries) and not disabled
  Role role = Role::kMember;
  ItemLevels levels;                  // every item; all kEdit for an admin
  std::vector<std::int32_t> why;      // per item: rule index that gave the level, -1 if none
  std::vector<std::string> projects;  // names, sorted, unique
  std::vector<RuleMatch> matches;     // matched rules in rule order (even when disabled)
  std::vector<std::string> rules;     // their names, parallel to `matches`
  // Sources whose entries made a matching rule match: the person's access
  // depends on them (used to hold back reductions while a source fails).
  std::vector<std::string> granting_sources;
  // Every group the person is in, direct or nested (only with MapOptions::details).
  std::vector<GroupRef> groups;
};

struct MapOptions {
  // Fill PersonAccess::groups and RuleMatch::via (explain). Costs time.
  bool details = false;
  // When set, map only the people with these addresses (ASCII lower-cased,
  // any order): MappingResult::people holds just those a source knows, each
  // exactly as a full Map() would give it. For partial runs, which reconcile
  // a few people between full runs. Warnings still cover every entry.
  const std::vector<std::string>* only_emails = nullptr;
};

struct MappingResult {
  // Every address some source knows, sorted by e-mail; also one known only
  // through entries that share it (has_access false then).
  std::vector<PersonAccess> people;
  // Entries left out, for people: "corp-ad: entry CN=x has no e-mail address".
  std::vector<std::string> warnings;
  std::size_t entries_without_email = 0;
  // Entries not mapped because another entry of their source has the same
  // address (every such entry counts). Their groups give nothing, but they
  // still count in PersonAccess::sources and ::disabled.
  std::size_t duplicate_emails = 0;

  // The person with this address (ASCII case ignored), or nullptr.
  const PersonAccess* Find(std::string_view email) const;
};

// Maps the snapshots through the rules, joining entries by ASCII-lower-cased
// e-mail. Entries of one source that share an address are not mapped (a
// warning each, counted in duplicate_emails) but still make the address known
// to that source and disable the person if any of them is disabled. A
// disabled person keeps `matches`, `rules` and `granting_sources` (for
// explain) but gets role member, no levels and no projects. kFailedPrecondition naming the source
// and group when nesting is deeper than the source's max_depth (the longest chain of groups below a
// group, a cycle counting as one level); kInvalidArgument when a group's member index is out of
// range.
Result<MappingResult> Map(const RuleSet& rules, const std::vector<SourceSnapshot>& sources,
                          const MapOptions& options = {});
// The same over snapshots held elsewhere (none null), which it only reads.
Result<MappingResult> Map(const RuleSet& rules, const std::vector<const SourceSnapshot*>& sources,
                          const MapOptions& options = {});

}  // namespace idsync::mapping
