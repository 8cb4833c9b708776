#include "idsync/mapping/policy.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace idsync::mapping {
namespace {

constexpr char kPlaceholderAddress[] = "policy-test@policy-test.invalid";

std::string JoinNames(const std::vector<std::string>& names) {
  if (names.empty()) return "none";
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

// The match of `rule` in `person`, as a cause; its name alone when the
// person has no such match (it cannot happen for a level a rule gave).
PolicyCause CauseOf(const RuleSet& rules, const PersonAccess& person, std::uint32_t rule) {
  PolicyCause cause;
  cause.rule = rules.rules()[rule].name;
  for (const RuleMatch& match : person.matches) {
    if (match.rule == rule) cause.via = match.via;
  }
  return cause;
}

// Every matched rule for which `pick` holds.
template <typename Pick>
std::vector<PolicyCause> MatchedWhere(const RuleSet& rules, const PersonAccess& person, Pick pick) {
  std::vector<PolicyCause> causes;
  for (const RuleMatch& match : person.matches) {
    if (pick(rules.rules()[match.rule])) causes.push_back(CauseOf(rules, person, match.rule));
  }
  return causes;
}

std::string GroupText(const GroupRef& g) {
  return g.source + ": " + (g.name.empty() ? g.dn : g.name);
}

}  // namespace

Result<PersonAccess> MapGiven(const RuleSet& rules, const PolicyCase& test,
                              const std::vector<std::string>& sources) {
  const std::string email = test.email.empty() ? kPlaceholderAddress : test.email;
  std::vector<std::string> involved;
  for (const PolicyGroup& group : test.groups) {
    if (std::find(involved.begin(), involved.end(), group.source) == involved.end()) {
      involved.push_back(group.source);
    }
  }
  if (involved.empty()) involved = sources;
  if (involved.empty()) {
    return InvalidArgumentError("policy test \"" + test.name +
                                "\": no source to place its person in");
  }
  std::vector<SourceSnapshot> snapshots;
  for (const std::string& source : involved) {
    SourceSnapshot snapshot;
    snapshot.source = source;
    snapshot.nested = false;
    snapshot.users.push_back(DirectoryUser{"policy-test", "", email, test.name, test.disabled});
    for (std::size_t i = 0; i < test.groups.size(); ++i) {
      const PolicyGroup& group = test.groups[i];
      if (group.source != source) continue;
      DirectoryGroup made;
      made.id = "policy-test-group-" + std::to_string(i);
      made.dn = group.dn;
      made.name = group.name;
      made.member_users.push_back(0);
      snapshot.groups.push_back(std::move(made));
    }
    snapshots.push_back(std::move(snapshot));
  }
  MapOptions options;
  options.details = true;
  ASSIGN_OR_RETURN(MappingResult mapped, Map(rules, snapshots, options));
  const PersonAccess* person = mapped.Find(email);
  if (person == nullptr) {
    return InvalidArgumentError("policy test \"" + test.name + "\": its address " + email +
                                " is not one the rules can map");
  }
  return *person;
}

PolicyResult CheckPolicy(const RuleSet& rules, const PolicyCase& test, const PersonAccess* got) {
  PolicyResult result;
  if (got == nullptr) {
    result.problem = "no source knows " + test.person;
    return result;
  }
  for (const RuleMatch& match : got->matches) {
    result.matched_rules.push_back(rules.rules()[match.rule].name);
  }
  result.groups = got->groups;
  const Catalog& catalog = rules.catalog();
  const PolicyExpect& expect = test.expect;
  const bool access = got->has_access;
  auto level_of = [&](std::size_t item) {
    return access && item < got->levels.size() ? got->levels[item] : Level::kNone;
  };

  if (expect.access && *expect.access != access) {
    PolicyMismatch m{"access", *expect.access ? "true" : "false", "true", {}};
    if (!access) {
      m.got = got->disabled ? "false (disabled in a source)" : "false (no rule matches)";
    }
    m.causes = MatchedWhere(rules, *got, [](const Rule&) { return true; });
    result.mismatches.push_back(std::move(m));
  }
  if (!expect.access || *expect.access) {
    if (expect.role) {
      const Role role = access ? got->role : Role::kMember;
      if (role != *expect.role) {
        PolicyMismatch m{
            "role", std::string(RoleName(*expect.role)), std::string(RoleName(role)), {}};
        if (role == Role::kAdmin) {
          m.causes =
              MatchedWhere(rules, *got, [](const Rule& rule) { return rule.role == Role::kAdmin; });
        }
        result.mismatches.push_back(std::move(m));
      }
    }
    if (expect.projects) {
      std::vector<std::string> want = *expect.projects;
      std::sort(want.begin(), want.end());
      want.erase(std::unique(want.begin(), want.end()), want.end());
      const std::vector<std::string> have = access ? got->projects : std::vector<std::string>{};
      if (want != have) {
        PolicyMismatch m{"projects", JoinNames(want), JoinNames(have), {}};
        m.causes =
            MatchedWhere(rules, *got, [](const Rule& rule) { return !rule.projects.empty(); });
        result.mismatches.push_back(std::move(m));
      }
    }
    for (const auto& [key, level] : expect.levels) {
      const std::optional<Catalog::Range> range = catalog.Resolve(key);
      if (!range) {
        result.mismatches.push_back(
            {key, std::string(LevelName(level)), "nothing: the key is not in the catalog", {}});
        continue;
      }
      std::vector<std::size_t> differing;
      bool uniform = true;
      for (std::size_t i = range->begin; i < range->end; ++i) {
        if (level_of(i) != level) differing.push_back(i);
        if (level_of(i) != level_of(range->begin)) uniform = false;
      }
      if (differing.empty()) continue;
      PolicyMismatch m{key, std::string(LevelName(level)), "", {}};
      if (uniform) {
        m.got = std::string(LevelName(level_of(range->begin)));
      } else {
        for (std::size_t i : differing) {
          m.got += (m.got.empty() ? "" : ", ") + std::string(LevelName(level_of(i))) + " on " +
                   catalog.item_keys()[i];
        }
      }
      std::vector<std::int32_t> seen;
      for (std::size_t i : differing) {
        const std::int32_t why = access && i < got->why.size() ? got->why[i] : -1;
        if (why < 0 || std::find(seen.begin(), seen.end(), why) != seen.end()) continue;
        seen.push_back(why);
        m.causes.push_back(CauseOf(rules, *got, static_cast<std::uint32_t>(why)));
      }
      result.mismatches.push_back(std::move(m));
    }
  }
  result.passed = result.problem.empty() && result.mismatches.empty();
  return result;
}

PolicyResult RunGiven(const RuleSet& rules, const PolicyCase& test,
                      const std::vector<std::string>& sources) {
  Result<PersonAccess> person = MapGiven(rules, test, sources);
  if (!person.ok()) {
    PolicyResult result;
    result.problem = person.status().message();
    return result;
  }
  return CheckPolicy(rules, test, &*person);
}

std::string DescribeFailure(const PolicyCase& test, const PolicyResult& result) {
  std::string out = test.where + ": policy test \"" + test.name + "\" failed\n";
  if (!result.problem.empty()) out += "  " + result.problem + "\n";
  for (const PolicyMismatch& m : result.mismatches) {
    out += "  " + m.key + ": expected " + m.expected + ", got " + m.got + "\n";
    for (const PolicyCause& cause : m.causes) {
      out += "    from rule \"" + cause.rule + "\"";
      if (cause.via.empty()) {
        out += " (no group condition)";
      } else {
        out += " via ";
        for (std::size_t i = 0; i < cause.via.size(); ++i) {
          out += (i ? ", " : "") + GroupText(cause.via[i]);
        }
      }
      out += "\n";
    }
    if (m.causes.empty()) {
      std::vector<std::string> groups;
      for (const GroupRef& g : result.groups) groups.push_back(GroupText(g));
      out += "    no rule gives it; rules matched: " + JoinNames(result.matched_rules) +
             "; groups: " + JoinNames(groups) + "\n";
    }
  }
  return out;
}

}  // namespace idsync::mapping
