// Running a configuration's policy tests (`tests:`, mapping/policy.h) and
// showing their results: `given:` cases in `idsync validate`, `idsyncd
// --check-config`, at start and on reload; every case in `idsync test`.
//
// Pure apart from what the caller hands in; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/config/config.h"
#include "idsync/mapping/policy.h"
#include "idsync/mapping/rules.h"

namespace idsync::daemon {

struct PolicyOutcome {
  const mapping::PolicyCase* test = nullptr;  // points into the Config
  mapping::PolicyResult result;
};

// Every given: case of `config`, in file order.
std::vector<PolicyOutcome> RunGivenTests(const config::Config& config,
                                         const mapping::RuleSet& rules);

std::size_t CountFailed(const std::vector<PolicyOutcome>& outcomes);

// DescribeFailure of every failed case, in order ("" when none failed).
std::string FailuresText(const std::vector<PolicyOutcome>& outcomes);

// {"passed": N, "failed": M, "tests": [{"name", "where", "kind" ("given" or
// "person"), "person" (person: cases), "passed", "problem", "mismatches":
// [{"key", "expected", "got", "causes": [{"rule", "via": [{"source",
// "name", "dn"}]}]}], and for a failed case "matched_rules" and "groups"}]}
std::string PolicyJson(const std::vector<PolicyOutcome>& outcomes);

// Ok when every given: case passes; otherwise kInvalidArgument whose
// message is FailuresText (the first line starts "FILE:LINE:COL: ").
Status GivenTestsPass(const config::Config& config, const mapping::RuleSet& rules);

}  // namespace idsync::daemon
