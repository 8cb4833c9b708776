// `idsync test`: every policy test of the configuration, given: cases
// through the rules alone, person: cases through the sources as they are.

#include <ostream>
#include <string>
#include <vector>

#include "idsync/daemon/cli.h"
#include "idsync/daemon/inputs.h"
#include "idsync/daemon/policy_check.h"
#include "idsync/mapping/policy.h"

#include "cli_internal.h"

namespace idsync::daemon::cli {

std::size_t GivenTestsFail(const Loaded& loaded, std::ostream& err) {
  const std::vector<PolicyOutcome> tests = RunGivenTests(loaded.config, *loaded.rules);
  const std::size_t failed = CountFailed(tests);
  if (failed == 0) return tests.size();
  err << FailuresText(tests) << "idsync: " << failed << " of " << tests.size()
      << " policy tests failed; the configuration is not valid\n";
  return kTestsFailed;
}

int PolicyTest(const Args& args, std::ostream& out, std::ostream& err) {
  if (!args.positional.empty()) {
    err << "idsync: test takes no arguments\n";
    return kExitUsage;
  }
  std::optional<Loaded> loaded =
      LoadConfigAndRules(args, OfflineCatalog(args.config), config::SecretUse::kSources, err);
  if (!loaded) return kExitUsage;
  const config::Config& config = loaded->config;
  std::vector<std::string> sources;
  std::vector<std::string> people;
  for (const config::SourceConfig& source : config.sources) sources.push_back(source.name);
  for (const mapping::PolicyCase& test : config.tests) {
    if (!test.given()) people.push_back(test.person);
  }

  // The people of person: cases, from the sources as a run reads them.
  MappedSources read;
  if (!people.empty()) {
    mapping::MapOptions options;
    options.details = true;
    options.only_emails = &people;
    std::optional<MappedSources> done = ReadAndMap(*loaded, options, err);
    if (!done) return kExitFailed;
    read = std::move(*done);
  }
  const SourceReads& reads = read.reads;
  const mapping::MappingResult& mapped = read.mapped;

  std::vector<PolicyOutcome> outcomes;
  for (const mapping::PolicyCase& test : config.tests) {
    PolicyOutcome outcome{&test, {}};
    if (test.given()) {
      outcome.result = mapping::RunGiven(*loaded->rules, test, sources);
    } else {
      outcome.result = mapping::CheckPolicy(*loaded->rules, test, mapped.Find(test.person));
      if (!outcome.result.problem.empty() && !reads.failed.empty()) {
        std::string failed;
        for (const std::string& name : reads.failed) failed += (failed.empty() ? "" : ", ") + name;
        outcome.result.problem += " (not read: " + failed + ")";
      }
    }
    outcomes.push_back(std::move(outcome));
  }

  const std::size_t failed = CountFailed(outcomes);
  if (args.json) {
    out << PolicyJson(outcomes) << "\n";
  } else {
    for (const PolicyOutcome& o : outcomes) {
      if (o.result.passed) {
        out << "ok      " << o.test->name << "\n";
      } else {
        out << "FAILED  " << o.test->name << "\n" << mapping::DescribeFailure(*o.test, o.result);
      }
    }
    if (outcomes.empty()) {
      out << args.config << " has no policy tests (tests:)\n";
    } else {
      out << outcomes.size() - failed << " passed, " << failed << " failed\n";
    }
  }
  return failed > 0 || !reads.failed.empty() ? kExitFailed : kExitOk;
}

}  // namespace idsync::daemon::cli
