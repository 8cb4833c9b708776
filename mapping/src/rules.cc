// Rule compilation and the mapping of directory snapshots to access, in one
// file (~740 lines) because both work on the same private bit-matrix and
// pattern-index types (BitRows, PatternIndex, SourceState): compiled rules are
// laid out for the mapping's inner loop, which is the hot path at 100,000
// people (bench/README.md). Sections: compiling, per-source expansion of
// nested groups, matching, merging people across sources.

#include "idsync/mapping/rules.h"

#include <algorithm>
#include <limits>
#include <set>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "idsync/base/ascii.h"
#include "idsync/mapping/dn.h"
#include "idsync/mapping/glob.h"

namespace idsync::mapping {

// ---------------------------------------------------------------------------
// Compile

Result<RuleSet> RuleSet::Compile(const std::vector<Rule>& rules, const Catalog& catalog,
                                 const PresetBook& presets,
                                 const std::vector<std::string>& known_sources) {
  RuleSet set;
  set.catalog_ = catalog;
  set.rules_ = rules;
  set.levels_.reserve(rules.size());
  set.group_dns_.reserve(rules.size());
  std::set<std::string, std::less<>> names;
  for (std::size_t i = 0; i < rules.size(); ++i) {
    const Rule& rule = rules[i];
    if (rule.name.empty()) {
      return InvalidArgumentError("rule #" + std::to_string(i + 1) + " has an empty name");
    }
    const std::string where = "rule \"" + rule.name + "\"";
    if (!names.insert(rule.name).second) {
      return InvalidArgumentError(where + ": the name is used by an earlier rule");
    }
    if (rule.groups.empty() && rule.source.empty() && rule.email.empty()) {
      return InvalidArgumentError(where + ": match has no group, source or email condition");
    }
    if (!rule.source.empty() && !known_sources.empty() &&
        std::find(known_sources.begin(), known_sources.end(), rule.source) == known_sources.end()) {
      return InvalidArgumentError(where + ": match.source \"" + rule.source +
                                  "\" is not a configured source");
    }
    std::vector<std::string> dns;
    dns.reserve(rule.groups.size());
    for (const std::string& pattern : rule.groups) {
      if (pattern.empty()) return InvalidArgumentError(where + ": match.group has an empty value");
      if (!LooksLikeDn(pattern)) {
        dns.emplace_back();
        continue;
      }
      Result<std::string> dn = NormalizeDn(pattern);
      if (!dn.ok()) {
        return InvalidArgumentError(where + ": match.group: " + dn.status().message());
      }
      dns.push_back(std::move(dn).value());
    }
    // Presets combine by the highest level per item.
    ItemLevels levels = catalog.Uniform(Level::kNone);
    for (const std::string& preset : rule.presets) {
      const ItemLevels* preset_levels = presets.Find(preset);
      if (preset_levels == nullptr) {
        return InvalidArgumentError(where + ": unknown preset \"" + preset + "\"");
      }
      for (std::size_t item = 0; item < levels.size() && item < preset_levels->size(); ++item) {
        levels[item] = std::max(levels[item], (*preset_levels)[item]);
      }
    }
    // Then the rule's own keys set their items exactly: area keys first, item
    // keys after, so an item key wins over its area whatever the order.
    for (const auto& [key, level] : rule.permissions) {
      if (!catalog.Resolve(key)) {
        return InvalidArgumentError(where + ": unknown permission key \"" + key + "\"");
      }
    }
    for (int pass = 0; pass < 2; ++pass) {
      for (const auto& [key, level] : rule.permissions) {
        const bool is_area = key.find('.') == std::string::npos;
        if (is_area != (pass == 0)) continue;
        const Catalog::Range range = *catalog.Resolve(key);
        std::fill(levels.begin() + range.begin, levels.begin() + range.end, level);
      }
    }
    // Judged on the outcome, not on which keys are written: `role: member`
    // alone, or permissions that are all none, give a matched person nothing
    // (config.md: such a rule is a configuration error).
    const bool grants =
        rule.role == Role::kAdmin || !rule.projects.empty() ||
        std::any_of(levels.begin(), levels.end(), [](Level l) { return l != Level::kNone; });
    if (!grants) {
      return InvalidArgumentError(where +
                                  " grants nothing: give it a role admin, a preset, a permission "
                                  "above none, or a project");
    }
    set.levels_.push_back(std::move(levels));
    set.group_dns_.push_back(std::move(dns));
  }
  return set;
}

// ---------------------------------------------------------------------------
// Map

const PersonAccess* MappingResult::Find(std::string_view email) const {
  const std::string key = base::AsciiLower(email);
  auto it =
      std::lower_bound(people.begin(), people.end(), key,
                       [](const PersonAccess& p, const std::string& k) { return p.email < k; });
  if (it == people.end() || it->email != key) return nullptr;
  return &*it;
}

namespace {

constexpr std::uint32_t kNoIndex = std::numeric_limits<std::uint32_t>::max();

// Rule bitsets: one bit per rule, `words` 64-bit words per set, stored back
// to back in one vector so a source's groups or users cost one allocation.
class BitRows {
 public:
  BitRows() = default;
  BitRows(std::size_t rows, std::size_t words) : words_(words), bits_(rows * words, 0) {}

  std::uint64_t* Row(std::size_t row) { return bits_.data() + row * words_; }
  const std::uint64_t* Row(std::size_t row) const { return bits_.data() + row * words_; }

  void Set(std::size_t row, std::size_t bit) {
    Row(row)[bit / 64] |= std::uint64_t{1} << (bit % 64);
  }
  bool Test(std::size_t row, std::size_t bit) const {
    return (Row(row)[bit / 64] >> (bit % 64)) & 1U;
  }
  void OrInto(std::size_t dst_row, const std::uint64_t* src) {
    std::uint64_t* dst = Row(dst_row);
    for (std::size_t w = 0; w < words_; ++w) dst[w] |= src[w];
  }
  bool Empty(std::size_t row) const {
    const std::uint64_t* r = Row(row);
    for (std::size_t w = 0; w < words_; ++w) {
      if (r[w] != 0) return false;
    }
    return true;
  }

 private:
  std::size_t words_ = 0;
  std::vector<std::uint64_t> bits_;
};

inline bool TestBit(const std::uint64_t* row, std::size_t bit) {
  return (row[bit / 64] >> (bit % 64)) & 1U;
}

// What Map() derives from one snapshot.
struct SourceState {
  BitRows direct;  // per group: rules whose patterns the group itself matches
  BitRows users;   // per user: rules matched through the user's groups, nested
  // Only with details: the groups each user is a direct member of, and the
  // groups each group is a direct member of (CSR).
  std::vector<std::uint32_t> user_group_start, user_group_list;
  std::vector<std::uint32_t> parent_start, parent_list;
};

// The group patterns of the rules that apply to one source, indexed so each
// group is looked up rather than compared with every pattern.
struct PatternIndex {
  std::unordered_map<std::string, std::vector<std::uint32_t>> by_name;  // FoldCase'd names
  std::unordered_map<std::string, std::vector<std::uint32_t>> by_dn;    // normalized DNs
  std::vector<std::pair<std::string_view, std::uint32_t>> globs;        // pattern, rule
};

PatternIndex BuildPatternIndex(const RuleSet& rule_set, const std::string& source) {
  PatternIndex index;
  const std::vector<Rule>& rules = rule_set.rules();
  for (std::uint32_t r = 0; r < rules.size(); ++r) {
    const Rule& rule = rules[r];
    if (!rule.source.empty() && rule.source != source) continue;
    const std::vector<std::string>& dns = rule_set.NormalizedGroupDns(r);
    for (std::size_t p = 0; p < rule.groups.size(); ++p) {
      if (!dns[p].empty()) {
        index.by_dn[dns[p]].push_back(r);
      } else if (HasGlob(rule.groups[p])) {
        index.globs.emplace_back(rule.groups[p], r);
      } else {
        index.by_name[FoldCase(rule.groups[p])].push_back(r);
      }
    }
  }
  return index;
}

std::string EntryLabel(const DirectoryUser& user) { return user.dn.empty() ? user.id : user.dn; }
std::string GroupLabel(const DirectoryGroup& group) {
  if (!group.dn.empty()) return group.dn;
  return group.name.empty() ? group.id : group.name;
}

// Computes the per-group and per-user rule bitsets of one snapshot. Each
// group's patterns are evaluated once; nesting is resolved on the graph of
// strongly connected components so cycles cost nothing extra and every
// group of a cycle gets the same rules.
Status ResolveGroups(const RuleSet& rule_set, const SourceSnapshot& snap, std::size_t words,
                     bool details, SourceState& state) {
  const std::size_t n_groups = snap.groups.size();
  const std::size_t n_users = snap.users.size();
  for (const DirectoryGroup& g : snap.groups) {
    for (std::uint32_t u : g.member_users) {
      if (u >= n_users) {
        return InvalidArgumentError(snap.source + ": group \"" + GroupLabel(g) +
                                    "\" has a member user index out of range");
      }
    }
    for (std::uint32_t c : g.member_groups) {
      if (c >= n_groups) {
        return InvalidArgumentError(snap.source + ": group \"" + GroupLabel(g) +
                                    "\" has a member group index out of range");
      }
    }
  }

  // Direct matches.
  state.direct = BitRows(n_groups, words);
  const PatternIndex index = BuildPatternIndex(rule_set, snap.source);
  const bool any_patterns = !index.by_name.empty() || !index.by_dn.empty() || !index.globs.empty();
  if (any_patterns) {
    std::string folded;  // reused: folding a name allocates only when it outgrows the buffer
    for (std::size_t g = 0; g < n_groups; ++g) {
      const DirectoryGroup& group = snap.groups[g];
      if (!index.by_name.empty() || !index.globs.empty()) {
        folded.clear();
        AppendFoldCase(group.name, &folded);
        if (!index.by_name.empty()) {
          auto it = index.by_name.find(folded);
          if (it != index.by_name.end()) {
            for (std::uint32_t r : it->second) state.direct.Set(g, r);
          }
        }
        for (const auto& [pattern, r] : index.globs) {
          if (!state.direct.Test(g, r) && GlobMatch(pattern, folded)) state.direct.Set(g, r);
        }
      }
      if (!index.by_dn.empty() && !group.dn.empty()) {
        // A group whose DN does not parse simply matches no DN pattern.
        Result<std::string> dn = NormalizeDn(group.dn);
        if (dn.ok()) {
          auto it = index.by_dn.find(*dn);
          if (it != index.by_dn.end()) {
            for (std::uint32_t r : it->second) state.direct.Set(g, r);
          }
        }
      }
    }
  }

  // Effective rules per group: its own plus, with nesting, those of every
  // group above it.
  std::vector<std::uint32_t> comp;  // group -> component (nested), else identity
  BitRows effective;
  if (snap.nested && n_groups > 0) {
    // Tarjan's algorithm with an explicit stack (nesting can be deep).
    // Components come out children first: an edge parent -> child across
    // components always goes to a lower component number.
    std::vector<std::int32_t> order(n_groups, -1);
    std::vector<std::int32_t> low(n_groups, 0);
    std::vector<std::uint8_t> on_stack(n_groups, 0);
    std::vector<std::uint32_t> stack;
    struct Frame {
      std::uint32_t node;
      std::uint32_t edge;
    };
    std::vector<Frame> calls;
    comp.assign(n_groups, kNoIndex);
    std::int32_t counter = 0;
    std::uint32_t n_comps = 0;
    for (std::uint32_t root = 0; root < n_groups; ++root) {
      if (order[root] != -1) continue;
      order[root] = low[root] = counter++;
      stack.push_back(root);
      on_stack[root] = 1;
      calls.push_back({root, 0});
      while (!calls.empty()) {
        const std::uint32_t g = calls.back().node;
        const std::vector<std::uint32_t>& children = snap.groups[g].member_groups;
        if (calls.back().edge < children.size()) {
          const std::uint32_t c = children[calls.back().edge++];
          if (order[c] == -1) {
            order[c] = low[c] = counter++;
            stack.push_back(c);
            on_stack[c] = 1;
            calls.push_back({c, 0});
          } else if (on_stack[c]) {
            low[g] = std::min(low[g], order[c]);
          }
          continue;
        }
        if (low[g] == order[g]) {
          while (true) {
            const std::uint32_t m = stack.back();
            stack.pop_back();
            on_stack[m] = 0;
            comp[m] = n_comps;
            if (m == g) break;
          }
          ++n_comps;
        }
        calls.pop_back();
        if (!calls.empty()) {
          const std::uint32_t parent = calls.back().node;
          low[parent] = std::min(low[parent], low[g]);
        }
      }
    }

    // Members of each component (CSR).
    std::vector<std::uint32_t> comp_start(n_comps + 1, 0);
    for (std::uint32_t g = 0; g < n_groups; ++g) ++comp_start[comp[g] + 1];
    for (std::uint32_t c = 0; c < n_comps; ++c) comp_start[c + 1] += comp_start[c];
    std::vector<std::uint32_t> comp_members(n_groups);
    {
      std::vector<std::uint32_t> fill(comp_start.begin(), comp_start.end() - 1);
      for (std::uint32_t g = 0; g < n_groups; ++g) comp_members[fill[comp[g]]++] = g;
    }

    // Depth: the longest chain of components below each one, children first.
    std::vector<std::int32_t> depth(n_comps, 0);
    std::int32_t deepest = -1;
    std::uint32_t deepest_comp = 0;
    for (std::uint32_t c = 0; c < n_comps; ++c) {
      for (std::uint32_t i = comp_start[c]; i < comp_start[c + 1]; ++i) {
        for (std::uint32_t child : snap.groups[comp_members[i]].member_groups) {
          const std::uint32_t cc = comp[child];
          if (cc != c) depth[c] = std::max(depth[c], depth[cc] + 1);
        }
      }
      if (depth[c] > deepest) {
        deepest = depth[c];
        deepest_comp = c;
      }
    }
    if (deepest > snap.max_depth) {
      const DirectoryGroup& top = snap.groups[comp_members[comp_start[deepest_comp]]];
      return FailedPreconditionError(snap.source + ": group \"" + GroupLabel(top) +
                                     "\" has groups nested " + std::to_string(deepest) +
                                     " levels deep, more than max_depth " +
                                     std::to_string(snap.max_depth));
    }

    // Push rules down from parents to children, parents first.
    effective = BitRows(n_comps, words);
    for (std::uint32_t g = 0; g < n_groups; ++g) effective.OrInto(comp[g], state.direct.Row(g));
    for (std::uint32_t c = n_comps; c-- > 0;) {
      if (effective.Empty(c)) continue;
      for (std::uint32_t i = comp_start[c]; i < comp_start[c + 1]; ++i) {
        for (std::uint32_t child : snap.groups[comp_members[i]].member_groups) {
          const std::uint32_t cc = comp[child];
          if (cc != c) effective.OrInto(cc, effective.Row(c));
        }
      }
    }
  }
  const auto group_rules = [&](std::uint32_t g) -> const std::uint64_t* {
    return comp.empty() ? state.direct.Row(g) : effective.Row(comp[g]);
  };

  // Per user: the union over their direct groups.
  state.users = BitRows(n_users, words);
  for (std::uint32_t g = 0; g < n_groups; ++g) {
    const std::uint64_t* bits = group_rules(g);
    bool empty = true;
    for (std::size_t w = 0; w < words && empty; ++w) empty = bits[w] == 0;
    if (empty) continue;
    for (std::uint32_t u : snap.groups[g].member_users) state.users.OrInto(u, bits);
  }

  if (details) {
    state.user_group_start.assign(n_users + 1, 0);
    for (const DirectoryGroup& g : snap.groups) {
      for (std::uint32_t u : g.member_users) ++state.user_group_start[u + 1];
    }
    for (std::size_t u = 0; u < n_users; ++u) {
      state.user_group_start[u + 1] += state.user_group_start[u];
    }
    state.user_group_list.resize(state.user_group_start[n_users]);
    std::vector<std::uint32_t> fill(state.user_group_start.begin(),
                                    state.user_group_start.end() - 1);
    for (std::uint32_t g = 0; g < n_groups; ++g) {
      for (std::uint32_t u : snap.groups[g].member_users) state.user_group_list[fill[u]++] = g;
    }
    if (snap.nested) {
      state.parent_start.assign(n_groups + 1, 0);
      for (const DirectoryGroup& g : snap.groups) {
        for (std::uint32_t c : g.member_groups) ++state.parent_start[c + 1];
      }
      for (std::size_t g = 0; g < n_groups; ++g) state.parent_start[g + 1] += state.parent_start[g];
      state.parent_list.resize(state.parent_start[n_groups]);
      std::vector<std::uint32_t> pfill(state.parent_start.begin(), state.parent_start.end() - 1);
      for (std::uint32_t g = 0; g < n_groups; ++g) {
        for (std::uint32_t c : snap.groups[g].member_groups) state.parent_list[pfill[c]++] = g;
      }
    }
  }
  return Status::Ok();
}

// One entry of a person: a user of one snapshot. Entries of a person are
// chained through `next` in snapshot order.
struct Entry {
  std::uint32_t source;
  std::uint32_t user;
  std::uint32_t next;
  // The address is shared within the source: the entry is not mapped (its
  // groups and name count for nothing), yet it still makes the person known
  // to the source and, when disabled, disabled.
  bool dropped;
};

struct PersonBuild {
  std::string email;
  std::uint32_t first = kNoIndex;
  std::uint32_t last = kNoIndex;
};

}  // namespace

namespace {

// The snapshots Map() reads, by reference: callers that share theirs
// (change feeds) need not copy them.
class SourceList {
 public:
  explicit SourceList(const std::vector<const SourceSnapshot*>& list) : list_(list) {}
  std::size_t size() const { return list_.size(); }
  const SourceSnapshot& operator[](std::size_t i) const { return *list_[i]; }

 private:
  const std::vector<const SourceSnapshot*>& list_;
};

}  // namespace

Result<MappingResult> Map(const RuleSet& rule_set, const std::vector<SourceSnapshot>& sources,
                          const MapOptions& options) {
  std::vector<const SourceSnapshot*> list;
  list.reserve(sources.size());
  for (const SourceSnapshot& snap : sources) list.push_back(&snap);
  return Map(rule_set, list, options);
}

Result<MappingResult> Map(const RuleSet& rule_set, const std::vector<const SourceSnapshot*>& list,
                          const MapOptions& options) {
  const SourceList sources(list);
  const std::vector<Rule>& rules = rule_set.rules();
  const std::size_t n_rules = rules.size();
  const std::size_t words = std::max<std::size_t>(1, (n_rules + 63) / 64);
  const std::size_t n_items = rule_set.catalog().item_count();

  MappingResult result;
  std::vector<SourceState> states(sources.size());

  std::size_t total_users = 0;
  for (std::size_t s = 0; s < sources.size(); ++s) total_users += sources[s].users.size();

  // A partial mapping joins only the entries of the people asked for; the
  // rule bits of every group are still resolved whole (nesting needs them).
  std::unordered_set<std::string_view> wanted;
  if (options.only_emails != nullptr) {
    wanted.reserve(options.only_emails->size());
    for (const std::string& email : *options.only_emails) wanted.insert(email);
  }
  // At most one person per address asked for; a partial mapping of a few
  // people does not reserve room for the whole directory.
  const std::size_t most_people = options.only_emails != nullptr ? wanted.size() : total_users;
  std::vector<PersonBuild> people;
  people.reserve(most_people);
  std::vector<Entry> entries;
  entries.reserve(most_people);
  // Keys view people[p].email: `people` is reserved for every person up
  // front, so it never reallocates while the map lives.
  std::unordered_map<std::string_view, std::uint32_t> by_email;
  by_email.reserve(most_people);
  std::string key;

  for (std::uint32_t s = 0; s < sources.size(); ++s) {
    const SourceSnapshot& snap = sources[s];
    RETURN_IF_ERROR(ResolveGroups(rule_set, snap, words, options.details, states[s]));

    // Join by lower-cased address. A person's entries are chained in
    // snapshot order, so a second entry of one source finds the first at
    // the tail of the chain: then every entry of that address in this source
    // is marked dropped.
    std::vector<std::uint32_t> shared;  // people whose address two entries here share
    for (std::uint32_t u = 0; u < snap.users.size(); ++u) {
      const DirectoryUser& user = snap.users[u];
      if (user.email.empty()) {
        result.warnings.push_back(snap.source + ": entry " + EntryLabel(user) +
                                  " has no e-mail address");
        ++result.entries_without_email;
        continue;
      }
      key.assign(user.email);
      for (char& c : key) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      }
      if (options.only_emails != nullptr && wanted.count(key) == 0) continue;
      std::uint32_t p;
      auto it = by_email.find(key);
      if (it == by_email.end()) {
        p = static_cast<std::uint32_t>(people.size());
        people.push_back(PersonBuild{key, kNoIndex, kNoIndex});
        by_email.emplace(people.back().email, p);
      } else {
        p = it->second;
      }
      PersonBuild& build = people[p];
      bool dropped = false;
      if (build.last != kNoIndex && entries[build.last].source == s) {
        dropped = true;
        if (!entries[build.last].dropped) {
          entries[build.last].dropped = true;
          ++result.duplicate_emails;
          shared.push_back(p);
        }
        ++result.duplicate_emails;
      }
      const std::uint32_t e = static_cast<std::uint32_t>(entries.size());
      entries.push_back(Entry{s, u, kNoIndex, dropped});
      if (build.first == kNoIndex) {
        build.first = e;
      } else {
        entries[build.last].next = e;
      }
      build.last = e;
    }
    for (std::uint32_t p : shared) {
      std::string labels;
      std::size_t count = 0;
      for (std::uint32_t e = people[p].first; e != kNoIndex; e = entries[e].next) {
        if (entries[e].source != s) continue;
        if (count++ > 0) labels += ", ";
        labels += EntryLabel(snap.users[entries[e].user]);
      }
      result.warnings.push_back(snap.source + ": e-mail address " + people[p].email +
                                " is shared by " + std::to_string(count) + " entries (" + labels +
                                "); none of them is mapped");
    }
  }
  by_email = {};  // frees the map before the results are built

  // Per rule and snapshot: does the rule's match.source name this snapshot?
  std::vector<std::uint8_t> rule_names_source(n_rules * sources.size(), 0);
  for (std::size_t r = 0; r < n_rules; ++r) {
    for (std::size_t s = 0; s < sources.size(); ++s) {
      rule_names_source[r * sources.size() + s] =
          rules[r].source.empty() || rules[r].source == sources[s].source;
    }
  }

  // Every person, by address: one known only through dropped entries is
  // still known (adoption, explain), just without access.
  std::vector<std::pair<std::string_view, std::uint32_t>> sorted;
  sorted.reserve(people.size());
  for (std::uint32_t p = 0; p < people.size(); ++p) sorted.emplace_back(people[p].email, p);
  std::sort(sorted.begin(), sorted.end());

  result.people.resize(sorted.size());
  std::vector<std::uint64_t> acc(words);
  std::vector<std::uint32_t> live;  // the person's mapped entries
  std::vector<std::uint32_t> matched;
  matched.reserve(n_rules);
  std::vector<std::uint8_t> grants(sources.size());
  std::vector<std::uint32_t> queue;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> eff_groups;  // details: (source, group)
  std::vector<std::vector<std::uint32_t>> stamps(options.details ? sources.size() : 0);
  for (std::size_t s = 0; s < stamps.size(); ++s) stamps[s].assign(sources[s].groups.size(), 0);
  std::uint32_t stamp = 0;

  for (std::size_t out_index = 0; out_index < sorted.size(); ++out_index) {
    PersonBuild& build = people[sorted[out_index].second];
    PersonAccess& person = result.people[out_index];
    // The map and the sort that viewed this address are done with it.
    person.email = std::move(build.email);
    live.clear();
    std::fill(acc.begin(), acc.end(), 0);
    for (std::uint32_t e = build.first; e != kNoIndex; e = entries[e].next) {
      const Entry& entry = entries[e];
      const SourceSnapshot& snap = sources[entry.source];
      const DirectoryUser& user = snap.users[entry.user];
      if (std::find(person.sources.begin(), person.sources.end(), snap.source) ==
          person.sources.end()) {
        person.sources.push_back(snap.source);
      }
      // "Disabled in any source means no access" holds even for an entry
      // that cannot be mapped: which of the entries sharing the address is
      // the person is unknown, so any of them being disabled counts.
      if (user.disabled) person.disabled = true;
      if (entry.dropped) continue;
      live.push_back(e);
      if (person.name.empty() && !user.name.empty()) person.name = user.name;
      const std::uint64_t* bits = states[entry.source].users.Row(entry.user);
      for (std::size_t w = 0; w < words; ++w) acc[w] |= bits[w];
    }

    // Which rules match: group bits already respect match.source; the other
    // conditions are checked here.
    matched.clear();
    for (std::uint32_t r = 0; r < n_rules; ++r) {
      const Rule& rule = rules[r];
      if (!rule.groups.empty() && !TestBit(acc.data(), r)) continue;
      if (!rule.source.empty()) {
        bool known = false;
        for (std::uint32_t e : live)
          known = known || sources[entries[e].source].source == rule.source;
        if (!known) continue;
      }
      if (!rule.email.empty() && !GlobMatch(rule.email, person.email)) continue;
      matched.push_back(r);
    }

    person.has_access = !matched.empty() && !person.disabled;
    person.levels.assign(n_items, Level::kNone);
    person.why.assign(n_items, -1);
    person.matches.resize(matched.size());
    person.rules.reserve(matched.size());
    for (std::size_t i = 0; i < matched.size(); ++i) {
      person.matches[i].rule = matched[i];
      person.rules.push_back(rules[matched[i]].name);
    }

    // Sources whose data made a matched rule match.
    if (!matched.empty()) {
      std::fill(grants.begin(), grants.end(), 0);
      for (std::uint32_t e : live) {
        const Entry& entry = entries[e];
        const std::uint64_t* bits = states[entry.source].users.Row(entry.user);
        for (std::uint32_t r : matched) {
          const bool by_group = !rules[r].groups.empty() && TestBit(bits, r);
          const bool by_presence =
              rules[r].groups.empty() && rule_names_source[r * sources.size() + entry.source];
          if (by_group || by_presence) {
            grants[entry.source] = 1;
            break;
          }
        }
      }
      for (std::size_t s = 0; s < sources.size(); ++s) {
        if (grants[s] && std::find(person.granting_sources.begin(), person.granting_sources.end(),
                                   sources[s].source) == person.granting_sources.end()) {
          person.granting_sources.push_back(sources[s].source);
        }
      }
    }

    if (person.has_access) {
      std::int32_t first_admin = -1;
      for (std::uint32_t r : matched) {
        if (rules[r].role == Role::kAdmin) {
          first_admin = static_cast<std::int32_t>(r);
          break;
        }
      }
      if (first_admin >= 0) {
        person.role = Role::kAdmin;
        std::fill(person.levels.begin(), person.levels.end(), Level::kEdit);
        std::fill(person.why.begin(), person.why.end(), first_admin);
      } else {
        // Rules are visited in order and only a strictly higher level
        // replaces, so `why` names the first rule giving the maximum.
        for (std::uint32_t r : matched) {
          const ItemLevels& levels = rule_set.RuleLevels(r);
          for (std::size_t item = 0; item < n_items; ++item) {
            if (levels[item] > person.levels[item]) {
              person.levels[item] = levels[item];
              person.why[item] = static_cast<std::int32_t>(r);
            }
          }
        }
      }
      for (std::uint32_t r : matched) {
        for (const std::string& project : rules[r].projects) person.projects.push_back(project);
      }
      std::sort(person.projects.begin(), person.projects.end());
      person.projects.erase(std::unique(person.projects.begin(), person.projects.end()),
                            person.projects.end());
    }

    if (options.details) {
      // Every group of the person: direct ones, then (nested) those above.
      ++stamp;
      eff_groups.clear();
      for (std::uint32_t e : live) {
        const Entry& entry = entries[e];
        const SourceState& state = states[entry.source];
        std::vector<std::uint32_t>& marks = stamps[entry.source];
        queue.clear();
        for (std::uint32_t i = state.user_group_start[entry.user];
             i < state.user_group_start[entry.user + 1]; ++i) {
          const std::uint32_t g = state.user_group_list[i];
          if (marks[g] == stamp) continue;
          marks[g] = stamp;
          queue.push_back(g);
        }
        for (std::size_t head = 0; head < queue.size() && !state.parent_start.empty(); ++head) {
          const std::uint32_t g = queue[head];
          for (std::uint32_t i = state.parent_start[g]; i < state.parent_start[g + 1]; ++i) {
            const std::uint32_t parent = state.parent_list[i];
            if (marks[parent] == stamp) continue;
            marks[parent] = stamp;
            queue.push_back(parent);
          }
        }
        for (std::uint32_t g : queue) eff_groups.emplace_back(entry.source, g);
      }
      std::vector<std::pair<GroupRef, std::pair<std::uint32_t, std::uint32_t>>> refs;
      refs.reserve(eff_groups.size());
      for (const auto& [s, g] : eff_groups) {
        const DirectoryGroup& group = sources[s].groups[g];
        refs.push_back({GroupRef{sources[s].source, group.name, group.dn}, {s, g}});
      }
      std::sort(refs.begin(), refs.end(), [](const auto& a, const auto& b) {
        return std::tie(a.first.source, a.first.name, a.first.dn, a.second) <
               std::tie(b.first.source, b.first.name, b.first.dn, b.second);
      });
      person.groups.reserve(refs.size());
      for (const auto& ref : refs) person.groups.push_back(ref.first);
      for (RuleMatch& match : person.matches) {
        if (rules[match.rule].groups.empty()) continue;
        for (const auto& [ref, at] : refs) {
          if (states[at.first].direct.Test(at.second, match.rule)) match.via.push_back(ref);
        }
      }
    }
  }
  return result;
}

}  // namespace idsync::mapping
