#include "idsync/daemon/policy_check.h"

#include <nlohmann/json.hpp>

namespace idsync::daemon {
namespace {

using nlohmann::ordered_json;

std::vector<std::string> SourceNames(const config::Config& config) {
  std::vector<std::string> names;
  for (const config::SourceConfig& source : config.sources) names.push_back(source.name);
  return names;
}

}  // namespace

std::vector<PolicyOutcome> RunGivenTests(const config::Config& config,
                                         const mapping::RuleSet& rules) {
  const std::vector<std::string> sources = SourceNames(config);
  std::vector<PolicyOutcome> outcomes;
  for (const mapping::PolicyCase& test : config.tests) {
    if (!test.given()) continue;
    outcomes.push_back({&test, mapping::RunGiven(rules, test, sources)});
  }
  return outcomes;
}

std::size_t CountFailed(const std::vector<PolicyOutcome>& outcomes) {
  std::size_t failed = 0;
  for (const PolicyOutcome& o : outcomes) failed += o.result.passed ? 0 : 1;
  return failed;
}

std::string FailuresText(const std::vector<PolicyOutcome>& outcomes) {
  std::string text;
  for (const PolicyOutcome& o : outcomes) {
    if (!o.result.passed) text += mapping::DescribeFailure(*o.test, o.result);
  }
  return text;
}

std::string PolicyJson(const std::vector<PolicyOutcome>& outcomes) {
  ordered_json tests = ordered_json::array();
  for (const PolicyOutcome& o : outcomes) {
    ordered_json t;
    t["name"] = o.test->name;
    t["where"] = o.test->where;
    t["kind"] = o.test->given() ? "given" : "person";
    if (!o.test->given()) t["person"] = o.test->person;
    t["passed"] = o.result.passed;
    if (!o.result.problem.empty()) t["problem"] = o.result.problem;
    ordered_json mismatches = ordered_json::array();
    for (const mapping::PolicyMismatch& m : o.result.mismatches) {
      ordered_json causes = ordered_json::array();
      for (const mapping::PolicyCause& c : m.causes) {
        ordered_json via = ordered_json::array();
        for (const mapping::GroupRef& g : c.via) {
          via.push_back({{"source", g.source}, {"name", g.name}, {"dn", g.dn}});
        }
        causes.push_back({{"rule", c.rule}, {"via", std::move(via)}});
      }
      mismatches.push_back({{"key", m.key},
                            {"expected", m.expected},
                            {"got", m.got},
                            {"causes", std::move(causes)}});
    }
    t["mismatches"] = std::move(mismatches);
    if (!o.result.passed) {
      t["matched_rules"] = o.result.matched_rules;
      ordered_json groups = ordered_json::array();
      for (const mapping::GroupRef& g : o.result.groups) {
        groups.push_back({{"source", g.source}, {"name", g.name}, {"dn", g.dn}});
      }
      t["groups"] = std::move(groups);
    }
    tests.push_back(std::move(t));
  }
  const std::size_t failed = CountFailed(outcomes);
  ordered_json all;
  all["passed"] = outcomes.size() - failed;
  all["failed"] = failed;
  all["tests"] = std::move(tests);
  return all.dump(2);
}

Status GivenTestsPass(const config::Config& config, const mapping::RuleSet& rules) {
  const std::vector<PolicyOutcome> outcomes = RunGivenTests(config, rules);
  if (CountFailed(outcomes) == 0) return Status::Ok();
  std::string text = FailuresText(outcomes);
  if (!text.empty() && text.back() == '\n') text.pop_back();
  return InvalidArgumentError(text);
}

}  // namespace idsync::daemon
