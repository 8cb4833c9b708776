// Maps and reconciles a synthetic company at the scale idsync is built for:
// 100,000 users, 10,000 groups, about 1,000,000 memberships (nested, with
// cycles, a few groups of 20k-50k members) under 50 rules, against an account
// that already holds most of them. See bench/README.md for measured numbers.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include "idsync/gen/directory_generator.h"
#include "idsync/mapping/catalog.h"
#include "idsync/mapping/reconcile.h"
#include "idsync/mapping/rules.h"

namespace idsync::mapping {
namespace {

std::vector<Rule> FiftyRules() {
  std::vector<Rule> rules;
  Rule admins;
  admins.name = "studio-admins";
  admins.groups = {"CN=Studio Admins,OU=Groups,DC=corp,DC=example"};
  admins.role = Role::kAdmin;
  rules.push_back(admins);

  // One broad rule per team, by name glob.
  const char* teams[] = {"engineering", "qa",        "voice",     "support",
                         "sales",       "knowledge", "analytics", "ops"};
  const char* presets[] = {"qa-analyst",   "qa-analyst",      "voice-specialist",
                           "support-lead", "content-editor",  "content-editor",
                           "qa-analyst",   "voice-specialist"};
  for (int t = 0; t < 8; ++t) {
    Rule r;
    r.name = std::string("team-") + teams[t];
    r.groups = {std::string(teams[t]) + "-*"};
    r.presets = {presets[t]};
    r.projects = {"project-" + std::to_string(t % 4)};
    if (t % 3 == 0) r.permissions = {{"configure.numbers", Level::kEdit}};
    rules.push_back(r);
  }
  // Narrow rules on single groups: by DN, by name, with e-mail and source
  // conditions, lowering presets, granting projects.
  for (int i = 0; i < 41; ++i) {
    Rule r;
    r.name = "group-rule-" + std::to_string(i);
    int g = 100 + i * 211;
    std::string team = teams[g % 8];
    char num[8];
    std::snprintf(num, sizeof num, "%05d", g);
    std::string name = team + "-" + num;
    if (i % 3 == 0) {
      r.groups = {"CN=" + name + ", OU=Groups, DC=corp, DC=example"};
    } else if (i % 3 == 1) {
      r.groups = {name, team + "-0" + std::to_string(i % 10) + "?1?"};
    } else {
      r.groups = {name};
      r.email = "user0*@corp.example";
    }
    if (i % 4 == 0) r.source = "directory";
    r.presets = {presets[i % 8]};
    if (i % 5 == 0) r.permissions = {{"build", Level::kEdit}, {"build.tools", Level::kNone}};
    if (i % 7 == 0) r.permissions = {{"deployments.environments", Level::kEdit}};
    r.projects = {"project-" + std::to_string(4 + i % 6)};
    rules.push_back(r);
  }
  return rules;
}

struct World {
  std::vector<SourceSnapshot> sources;
  std::unique_ptr<RuleSet> rules;
  std::vector<AccountUser> account;
  std::vector<Project> projects;
  std::uint64_t memberships = 0;
};

const World& TheWorld() {
  static World* world = [] {
    auto* w = new World();
    gen::DirectoryOptions options;
    options.users = 100000;
    options.groups = 10000;
    options.seed = 7;
    options.cycles = 5;
    w->sources.push_back(gen::GenerateDirectory(options, "directory"));
    w->memberships = gen::CountMemberships(w->sources[0]);
    const Catalog& catalog = Catalog::Builtin();
    auto book = PresetBook::Create(catalog, {{"support-lead",
                                              {{"analytics", Level::kEdit},
                                               {"build", Level::kRead},
                                               {"build.knowledge", Level::kEdit},
                                               {"channels", Level::kRead}}}});
    auto rules = RuleSet::Compile(FiftyRules(), catalog, *book, {"directory"});
    if (!rules.ok()) {
      std::fprintf(stderr, "rules: %s\n", rules.status().ToString().c_str());
      std::abort();
    }
    w->rules = std::make_unique<RuleSet>(std::move(rules).value());
    for (int p = 0; p < 10; ++p) {
      w->projects.push_back({"p_" + std::to_string(p), "project-" + std::to_string(p)});
    }
    // The account as a previous run left it: 90% of the people with access
    // are there with exactly their access, 3% of those drifted by hand; 2,000
    // managed users have left the directory; 500 users idsync does not manage.
    auto mapped = Map(*w->rules, w->sources);
    std::size_t n = 0;
    for (const auto& person : mapped->people) {
      if (!person.has_access || n++ % 10 == 9) continue;
      AccountUser u;
      u.id = "u_" + std::to_string(n);
      u.email = person.email;
      u.name = person.name;
      u.role = person.role;
      u.levels = person.levels;
      for (const auto& name : person.projects) {
        u.projects.push_back("p_" + name.substr(name.find('-') + 1));
      }
      std::sort(u.projects.begin(), u.projects.end());
      u.managed = true;
      if (n % 33 == 0) u.levels[3] = Level::kEdit;
      w->account.push_back(std::move(u));
    }
    for (int i = 0; i < 2500; ++i) {
      AccountUser u;
      u.id = "u_gone_" + std::to_string(i);
      u.email = "gone" + std::to_string(i) + "@corp.example";
      u.levels = catalog.Uniform(Level::kRead);
      u.managed = i < 2000;
      w->account.push_back(std::move(u));
    }
    return w;
  }();
  return *world;
}

void AddCounters(benchmark::State& state) {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  state.counters["peak_rss_MB"] = static_cast<double>(usage.ru_maxrss) / 1024.0;
}

void BM_Map(benchmark::State& state) {
  const World& w = TheWorld();
  std::size_t people = 0;
  for (auto _ : state) {
    auto mapped = Map(*w.rules, w.sources);
    people = mapped->people.size();
    benchmark::DoNotOptimize(mapped);
  }
  state.counters["people"] = static_cast<double>(people);
  state.counters["memberships"] = static_cast<double>(w.memberships);
  AddCounters(state);
}
BENCHMARK(BM_Map)->Unit(benchmark::kMillisecond)->MinTime(3);

void BM_MapAndReconcile(benchmark::State& state) {
  const World& w = TheWorld();
  ReconcilePolicy policy;  // unlimited: the benchmark measures the whole plan
  std::size_t ops = 0;
  for (auto _ : state) {
    auto mapped = Map(*w.rules, w.sources);
    ReconcileInput input;
    input.people = &mapped->people;
    input.account = &w.account;
    input.projects = &w.projects;
    auto plan = Reconcile(input, Catalog::Builtin(), policy);
    if (!plan.ok()) {
      state.SkipWithError(plan.status().ToString().c_str());
      return;
    }
    ops = plan->operations.size();
    benchmark::DoNotOptimize(plan);
  }
  state.counters["operations"] = static_cast<double>(ops);
  state.counters["account_users"] = static_cast<double>(w.account.size());
  AddCounters(state);
}
BENCHMARK(BM_MapAndReconcile)->Unit(benchmark::kMillisecond)->MinTime(3);

}  // namespace
}  // namespace idsync::mapping

BENCHMARK_MAIN();
