#include "idsync/daemon/cli.h"

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>

#include "idsync/config/config.h"
#include "idsync/daemon/account_state.h"
#include "idsync/daemon/connector_registry.h"
#include "idsync/daemon/render.h"
#include "idsync/mapping/catalog.h"
#include "idsync/mapping/glob.h"
#include "idsync/mapping/reconcile.h"
#include "idsync/mapping/rules.h"

namespace idsync::daemon {
namespace {

constexpr const char* kDefaultConfig = "/etc/idsync/idsync.yaml";

constexpr const char* kUsage = R"(usage: idsync [--config FILE] COMMAND [OPTIONS]

Keeps an account's users in step with the directory. Commands:
  validate                      check the configuration (offline) and exit
  explain EMAIL [--json]        show a person's groups, matching rules, role, levels and why
  explain --all [--json]        the same for every person with access
  plan --account-state FILE [--json] [--force]
                                show what would change in the account, changing nothing

Options:
  --config FILE   configuration file (default /etc/idsync/idsync.yaml)
  --json          machine-readable output
  -h, --help      this text
  --version       print the version

Exit status: 0 done; 1 something failed (a source unreadable, an unknown address);
2 bad configuration or usage; 3 a safety limit refused the plan.
)";

struct Args {
  std::string command;
  std::vector<std::string> positional;
  std::string config = kDefaultConfig;
  std::string account_state;
  bool json = false;
  bool all = false;
  bool force = false;
  bool help = false;
  bool version = false;
};

Result<Args> ParseArgs(const std::vector<std::string>& argv) {
  Args args;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    auto value = [&](const char* flag) -> Result<std::string> {
      std::string prefix = std::string(flag) + "=";
      if (a.rfind(prefix, 0) == 0) return a.substr(prefix.size());
      if (i + 1 >= argv.size()) return InvalidArgumentError(std::string(flag) + " needs a value");
      return argv[++i];
    };
    if (a == "--config" || a.rfind("--config=", 0) == 0) {
      ASSIGN_OR_RETURN(args.config, value("--config"));
    } else if (a == "--account-state" || a.rfind("--account-state=", 0) == 0) {
      ASSIGN_OR_RETURN(args.account_state, value("--account-state"));
    } else if (a == "--json") {
      args.json = true;
    } else if (a == "--all") {
      args.all = true;
    } else if (a == "--force") {
      args.force = true;
    } else if (a == "-h" || a == "--help") {
      args.help = true;
    } else if (a == "--version") {
      args.version = true;
    } else if (a.size() > 1 && a[0] == '-') {
      return InvalidArgumentError("unknown option " + a);
    } else if (args.command.empty()) {
      args.command = a;
    } else {
      args.positional.push_back(a);
    }
  }
  return args;
}

// Everything a command needs once the configuration and sources are read.
struct Loaded {
  config::Config config;
  mapping::Catalog catalog;
  std::unique_ptr<mapping::RuleSet> rules;
  std::vector<mapping::SourceSnapshot> snapshots;
  std::vector<std::string> failed_sources;
  bool hold_all = false;
};

// Loads the configuration against `catalog`, compiles presets and rules.
// Prints the problem and returns nullopt on failure.
std::optional<Loaded> LoadConfigAndRules(const std::string& path, const mapping::Catalog& catalog,
                                         std::ostream& err) {
  config::LoadOptions options;
  options.catalog = &catalog;
  Result<config::Config> cfg = config::LoadConfig(path, options);
  if (!cfg.ok()) {
    err << "idsync: " << cfg.status().message() << "\n";
    return std::nullopt;
  }
  Result<mapping::PresetBook> presets = mapping::PresetBook::Create(catalog, cfg->custom_presets);
  if (!presets.ok()) {
    err << "idsync: " << path << ": " << presets.status().message() << "\n";
    return std::nullopt;
  }
  std::vector<std::string> source_names;
  for (const auto& s : cfg->sources) source_names.push_back(s.name);
  Result<mapping::RuleSet> rules =
      mapping::RuleSet::Compile(cfg->rules, catalog, *presets, source_names);
  if (!rules.ok()) {
    err << "idsync: " << path << ": " << rules.status().message() << "\n";
    return std::nullopt;
  }
  Loaded loaded{std::move(cfg).value(), catalog, nullptr, {}, {}, false};
  loaded.rules = std::make_unique<mapping::RuleSet>(std::move(rules).value());
  return loaded;
}

// Reads every source. A source that fails is reported and kept as a failed
// snapshot: this command keeps no earlier read, so nobody may lose access.
void ReadSources(Loaded& loaded, std::ostream& err) {
  for (const auto& source : loaded.config.sources) {
    Result<mapping::SourceSnapshot> snapshot = [&]() -> Result<mapping::SourceSnapshot> {
      ASSIGN_OR_RETURN(auto reader, BuiltinConnectors().Create(source));
      return reader->Read();
    }();
    if (snapshot.ok()) {
      loaded.snapshots.push_back(std::move(snapshot).value());
      continue;
    }
    err << "idsync: source " << source.name << " failed: " << snapshot.status().message() << "\n";
    mapping::SourceSnapshot failed;
    failed.source = source.name;
    failed.failed = true;
    failed.never_read = true;
    loaded.snapshots.push_back(std::move(failed));
    loaded.failed_sources.push_back(source.name);
    loaded.hold_all = true;
  }
}

void PrintWarnings(const mapping::MappingResult& result, std::ostream& err) {
  constexpr std::size_t kShown = 20;
  for (std::size_t i = 0; i < result.warnings.size() && i < kShown; ++i) {
    err << "idsync: warning: " << result.warnings[i] << "\n";
  }
  if (result.warnings.size() > kShown) {
    err << "idsync: warning: ... and " << result.warnings.size() - kShown << " more\n";
  }
}

int Validate(const Args& args, std::ostream& out, std::ostream& err) {
  std::optional<Loaded> loaded = LoadConfigAndRules(args.config, mapping::Catalog::Builtin(), err);
  if (!loaded) return kExitUsage;
  out << args.config << ": configuration is valid (" << loaded->config.sources.size()
      << " sources, " << loaded->config.rules.size() << " rules, checked against the built-in "
      << "catalog)\n";
  return kExitOk;
}

int Explain(const Args& args, std::ostream& out, std::ostream& err) {
  if (args.all == !args.positional.empty() || args.positional.size() > 1) {
    err << "idsync: explain takes one e-mail address or --all\n";
    return kExitUsage;
  }
  std::optional<Loaded> loaded = LoadConfigAndRules(args.config, mapping::Catalog::Builtin(), err);
  if (!loaded) return kExitUsage;
  ReadSources(*loaded, err);
  mapping::MapOptions options;
  options.details = true;
  Result<mapping::MappingResult> mapped = mapping::Map(*loaded->rules, loaded->snapshots, options);
  if (!mapped.ok()) {
    err << "idsync: " << mapped.status().message() << "\n";
    return kExitFailed;
  }
  PrintWarnings(*mapped, err);
  int status = loaded->failed_sources.empty() ? kExitOk : kExitFailed;
  if (args.all) {
    std::vector<const mapping::PersonAccess*> people;
    for (const auto& p : mapped->people) {
      if (p.has_access) people.push_back(&p);
    }
    if (args.json) {
      out << ExplainAllJson(*loaded->rules, people) << "\n";
    } else {
      for (std::size_t i = 0; i < people.size(); ++i) {
        if (i) out << "\n";
        ExplainText(out, *loaded->rules, *people[i]);
      }
      out << "\n"
          << people.size() << " people with access, " << mapped->people.size()
          << " known to the sources\n";
    }
    return status;
  }
  const mapping::PersonAccess* person = mapped->Find(args.positional[0]);
  if (person == nullptr) {
    err << "idsync: no source knows " << args.positional[0];
    if (!loaded->failed_sources.empty()) {
      err << " (not read: ";
      for (std::size_t i = 0; i < loaded->failed_sources.size(); ++i) {
        err << (i ? ", " : "") << loaded->failed_sources[i];
      }
      err << ")";
    }
    err << "\n";
    return kExitFailed;
  }
  if (args.json) {
    out << ExplainJson(*loaded->rules, *person) << "\n";
  } else {
    ExplainText(out, *loaded->rules, *person);
  }
  return status;
}

int Plan(const Args& args, std::ostream& out, std::ostream& err) {
  if (!args.positional.empty()) {
    err << "idsync: plan takes no arguments\n";
    return kExitUsage;
  }
  if (args.account_state.empty()) {
    // TODO(#3): read the live account through the account client.
    err << "idsync: plan needs --account-state FILE in this version (reading the live account "
           "is not available yet)\n";
    return kExitUsage;
  }
  Result<AccountState> state = LoadAccountState(args.account_state, mapping::Catalog::Builtin());
  if (!state.ok()) {
    err << "idsync: " << state.status().message() << "\n";
    return kExitUsage;
  }
  // The plan compares rules and account users item by item, so both must be
  // read in one catalog: the account's (from the file) when the
  // configuration says `catalog: account` and the file has one, else the
  // built-in one.
  const mapping::Catalog& file_catalog =
      state->catalog ? *state->catalog : mapping::Catalog::Builtin();
  std::optional<Loaded> loaded = LoadConfigAndRules(args.config, file_catalog, err);
  if (!loaded) return kExitUsage;
  if (loaded->config.catalog_source == config::CatalogSource::kBuiltin && state->catalog) {
    loaded = LoadConfigAndRules(args.config, mapping::Catalog::Builtin(), err);
    if (!loaded) return kExitUsage;
  }
  ExpandUserLevels(*state, loaded->catalog);
  ReadSources(*loaded, err);
  Result<mapping::MappingResult> mapped = mapping::Map(*loaded->rules, loaded->snapshots);
  if (!mapped.ok()) {
    err << "idsync: " << mapped.status().message() << "\n";
    return kExitFailed;
  }
  PrintWarnings(*mapped, err);

  std::vector<mapping::Project> projects = state->projects;
  if (!state->has_projects) {
    // account-api.md: without a project list, project names are taken as ids.
    std::set<std::string> names;
    for (const auto& r : loaded->config.rules) names.insert(r.projects.begin(), r.projects.end());
    for (const auto& n : names) projects.push_back({n, n});
  }
  mapping::ReconcileInput input;
  input.people = &mapped->people;
  input.account = &state->users;
  input.projects = &projects;
  input.failed_sources = loaded->failed_sources;
  input.hold_all_reductions = loaded->hold_all;
  mapping::ReconcilePolicy policy = loaded->config.Policy();
  policy.force = args.force;
  Result<mapping::Plan> plan = mapping::Reconcile(input, loaded->catalog, policy);
  if (!plan.ok()) {
    err << "idsync: " << plan.status().message() << "\n";
    return kExitFailed;
  }
  if (args.json) {
    out << PlanJson(*plan, loaded->catalog, projects) << "\n";
  } else {
    PlanText(out, *plan, loaded->catalog, projects);
  }
  if (plan->blocked) return kExitBlocked;
  return loaded->failed_sources.empty() ? kExitOk : kExitFailed;
}

}  // namespace

int RunCli(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  Result<Args> args = ParseArgs(argv);
  if (!args.ok()) {
    err << "idsync: " << args.status().message() << "\n" << kUsage;
    return kExitUsage;
  }
  if (args->version) {
    out << "idsync " << IDSYNC_VERSION << "\n";
    return kExitOk;
  }
  if (args->help || args->command.empty() || args->command == "help") {
    (args->command.empty() && !args->help ? err : out) << kUsage;
    return args->command.empty() && !args->help ? kExitUsage : kExitOk;
  }
  if (args->command == "validate") return Validate(*args, out, err);
  if (args->command == "explain") return Explain(*args, out, err);
  if (args->command == "plan") return Plan(*args, out, err);
  static const std::set<std::string> kLater = {"apply", "status", "audit", "scim-token"};
  if (kLater.count(args->command)) {
    err << "idsync: " << args->command << " is not available in this version yet\n";
    return kExitUsage;
  }
  err << "idsync: unknown command " << args->command << "\n" << kUsage;
  return kExitUsage;
}

}  // namespace idsync::daemon
