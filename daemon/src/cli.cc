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
#include "idsync/daemon/inputs.h"
#include "idsync/daemon/render.h"
#include "idsync/mapping/catalog.h"
#include "idsync/mapping/glob.h"
#include "idsync/mapping/reconcile.h"
#include "idsync/mapping/rules.h"

#include "cli_internal.h"

namespace idsync::daemon {
namespace cli {

std::optional<Loaded> LoadConfigAndRules(const Args& args, const mapping::Catalog& catalog,
                                         config::SecretUse secrets, std::ostream& err) {
  const std::string& path = args.config;
  config::LoadOptions options = BuiltinLoadOptions();
  options.catalog = &catalog;
  options.secrets = secrets;
  if (!args.credentials_dir.empty()) options.credentials_directory = args.credentials_dir;
  Result<config::Config> cfg = config::LoadConfig(path, options);
  if (!cfg.ok()) {
    err << "idsync: " << cfg.status().message() << "\n";
    return std::nullopt;
  }
  Result<std::unique_ptr<mapping::RuleSet>> rules = CompileRules(*cfg, catalog);
  if (!rules.ok()) {
    err << "idsync: " << path << ": " << rules.status().message() << "\n";
    return std::nullopt;
  }
  return Loaded{std::move(cfg).value(), catalog, std::move(rules).value()};
}

std::optional<MappedSources> ReadAndMap(const Loaded& loaded, const mapping::MapOptions& options,
                                        std::ostream& err) {
  // SCIM sources and the last good reads of failing sources live in the store.
  std::unique_ptr<store::Store> store = OpenExistingStore(loaded.config);
  ReadContext context;
  context.store = store.get();
  MappedSources read;
  read.reads = ReadAllSources(loaded.config, context);
  for (const std::string& e : read.reads.errors) err << "idsync: source " << e << "\n";
  Result<mapping::MappingResult> mapped =
      mapping::Map(*loaded.rules, read.reads.snapshots, options);
  if (!mapped.ok()) {
    err << "idsync: " << mapped.status().message() << "\n";
    return std::nullopt;
  }
  read.mapped = std::move(mapped).value();
  return read;
}

}  // namespace cli

namespace {

using cli::Args;
using cli::LoadConfigAndRules;
using cli::Loaded;

void PrintSourceErrors(const SourceReads& reads, std::ostream& err) {
  for (const auto& e : reads.errors) err << "idsync: source " << e << "\n";
}

constexpr const char* kUsage = R"(usage: idsync [--config FILE] COMMAND [OPTIONS]

Keeps an account's users in step with the directory. Commands:
  validate [--online] [--json]  check the configuration; --online also reads every source
                                and asks the account
  test [--json]                 run the configuration's policy tests (tests:), reading the
                                sources for the person: ones
  report [--format F] [--out FILE]
                                the access review: everyone with access, their role, projects
                                and level on every item, and where each came from
                                (F: csv, csv-long, json, html)
  report --changes [--since TIME] [--format csv|json]
                                who gained or lost what, when, through which rule (audit log)
  explain EMAIL [--json]        show a person's groups, matching rules, role, levels and why
  explain --all [--json]        the same for every person with access
  plan [--json] [--force]       show what would change in the account, changing nothing
  plan --account-state FILE     the same against an offline account state file
  apply [--force]               one full run: plan, check safety, send, record, audit
  status [--json]               last runs, pending and failed operations, the audit head
  audit [--since TIME] [--json] the changes idsync made (TIME: 2026-11-28, RFC 3339, or 24h ago as 24h)
  audit verify [--head HASH]    check the audit log's hash chain (and that it still ends at HASH)
  scim-token new                print a new SCIM bearer token (once) and the hash for the config
  store copy --to URL           copy the whole store into a new, empty one (e.g. SQLite to
                                postgresql://...; its password from PGPASSFILE or PGPASSWORD)

Options:
  --config FILE   configuration file (default /etc/idsync/idsync.yaml)
  --credentials-dir DIR
                  read ${file:NAME} secrets from DIR (default $CREDENTIALS_DIRECTORY,
                  which systemd sets for LoadCredential=); only plan, apply, explain
                  and validate --online read secrets
  --json          machine-readable output
  --force         pass the safety limits (after reviewing the plan)
  -h, --help      this text
  --version       print the version

While idsyncd runs it holds the run lock beside the store, so `apply` refuses and says so:
ask the daemon for a run with POST /v1/sync on its admin listener instead.

Run as root, idsync switches to the `idsync` system user when that user owns the store file
(or its directory) before it opens the store; when another user owns it, commands that use
the store refuse (exit 2) rather than leave files that user cannot write: run them as that
user (sudo -u idsync idsync ...).

Exit status: 0 done; 1 something failed (a source or the account unreachable, an operation
rejected, a broken audit chain, an unknown address); 2 bad configuration or usage;
3 a safety limit refused the plan.
)";

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
    } else if (a == "--since" || a.rfind("--since=", 0) == 0) {
      ASSIGN_OR_RETURN(args.since, value("--since"));
    } else if (a == "--head" || a.rfind("--head=", 0) == 0) {
      ASSIGN_OR_RETURN(args.head, value("--head"));
    } else if (a == "--to" || a.rfind("--to=", 0) == 0) {
      ASSIGN_OR_RETURN(args.to, value("--to"));
    } else if (a == "--format" || a.rfind("--format=", 0) == 0) {
      ASSIGN_OR_RETURN(args.format, value("--format"));
    } else if (a == "--out" || a.rfind("--out=", 0) == 0) {
      ASSIGN_OR_RETURN(args.out, value("--out"));
    } else if (a == "--changes") {
      args.changes = true;
    } else if (a == "--credentials-dir" || a.rfind("--credentials-dir=", 0) == 0) {
      ASSIGN_OR_RETURN(args.credentials_dir, value("--credentials-dir"));
    } else if (a == "--online") {
      args.online = true;
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
  if (args.online) return cli::ValidateOnline(args, out, err);
  mapping::Catalog catalog = OfflineCatalog(args.config);
  bool builtin = catalog.item_keys() == mapping::Catalog::Builtin().item_keys();
  // Offline validation reads no secret (it still checks the references):
  // `validate --online` reads them all.
  std::optional<Loaded> loaded = LoadConfigAndRules(args, catalog, config::SecretUse::kNone, err);
  if (!loaded) return kExitUsage;
  for (const std::string& w : loaded->config.warnings) err << "idsync: warning: " << w << "\n";
  // The given: policy tests are part of the configuration's validity.
  const std::size_t tests = cli::GivenTestsFail(*loaded, err);
  if (tests == cli::kTestsFailed) return kExitUsage;
  out << args.config << ": configuration is valid (" << loaded->config.sources.size()
      << " sources, " << loaded->config.rules.size() << " rules, " << tests
      << " policy tests (given:) passed, checked against the "
      << (builtin ? "built-in catalog" : "account's catalog cached by the last run") << ")\n";
  return kExitOk;
}

int Explain(const Args& args, std::ostream& out, std::ostream& err) {
  if (args.all == !args.positional.empty() || args.positional.size() > 1) {
    err << "idsync: explain takes one e-mail address or --all\n";
    return kExitUsage;
  }
  // The directories are read (their bind passwords), the account is not.
  std::optional<Loaded> loaded =
      LoadConfigAndRules(args, OfflineCatalog(args.config), config::SecretUse::kSources, err);
  if (!loaded) return kExitUsage;
  mapping::MapOptions options;
  options.details = true;
  std::optional<cli::MappedSources> read = cli::ReadAndMap(*loaded, options, err);
  if (!read) return kExitFailed;
  const SourceReads& reads = read->reads;
  const mapping::MappingResult* mapped = &read->mapped;
  PrintWarnings(*mapped, err);
  int status = reads.failed.empty() ? kExitOk : kExitFailed;
  if (args.all) {
    std::vector<const mapping::PersonAccess*> people;
    for (const auto& p : mapped->people) {
      if (p.has_access) people.push_back(&p);
    }
    if (args.json) {
      WriteExplainAllJson(out, *loaded->rules, people);
      out << "\n";
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
    if (!reads.failed.empty()) {
      err << " (not read: ";
      for (std::size_t i = 0; i < reads.failed.size(); ++i) {
        err << (i ? ", " : "") << reads.failed[i];
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
  if (args.account_state.empty()) return cli::PlanLive(args, out, err);
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
  std::optional<Loaded> loaded =
      LoadConfigAndRules(args, file_catalog, config::SecretUse::kSources, err);
  if (!loaded) return kExitUsage;
  if (loaded->config.catalog_source == config::CatalogSource::kBuiltin && state->catalog) {
    loaded =
        LoadConfigAndRules(args, mapping::Catalog::Builtin(), config::SecretUse::kSources, err);
    if (!loaded) return kExitUsage;
  }
  ExpandUserLevels(*state, loaded->catalog);
  // The stored maps have served: the plan compares expanded levels only.
  // Freed before the sources are read, when memory is at its peak.
  std::vector<mapping::PermissionSpec>().swap(state->permissions);
  std::unique_ptr<store::Store> store = cli::OpenExistingStore(loaded->config);
  ReadContext context;
  context.store = store.get();
  SourceReads reads = ReadAllSources(loaded->config, context);
  PrintSourceErrors(reads, err);
  Result<mapping::MappingResult> mapped = mapping::Map(*loaded->rules, reads.snapshots);
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
  input.failed_sources = reads.failed;
  input.hold_all_reductions = reads.hold_all;
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
  return reads.failed.empty() ? kExitOk : kExitFailed;
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
  if (args->command == "apply") return cli::Apply(*args, out, err);
  if (args->command == "status") return cli::StatusCommand(*args, out, err);
  if (args->command == "audit") return cli::Audit(*args, out, err);
  if (args->command == "scim-token") return cli::ScimToken(*args, out, err);
  if (args->command == "store") return cli::StoreCommand(*args, out, err);
  if (args->command == "test") return cli::PolicyTest(*args, out, err);
  if (args->command == "report") return cli::Report(*args, out, err);
  err << "idsync: unknown command " << args->command << "\n" << kUsage;
  return kExitUsage;
}

}  // namespace idsync::daemon
