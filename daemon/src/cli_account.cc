// The commands that talk to the account and the store: plan (live), apply,
// validate --online, status and audit.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <mutex>
#include <ostream>
#include <sstream>
#include <string_view>

#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include "idsync/account/account_client.h"
#include "idsync/base/ascii.h"
#include "idsync/daemon/account_state.h"
#include "idsync/daemon/cli.h"
#include "idsync/daemon/inputs.h"
#include "idsync/daemon/render.h"
#include "idsync/daemon/run_lock.h"
#include "idsync/daemon/source_check.h"
#include "idsync/daemon/status.h"
#include "idsync/daemon/sync.h"
#include "idsync/mapping/glob.h"
#include "idsync/scim/endpoint.h"

#include "cli_internal.h"
#include "generation.h"
#include "leadership.h"

namespace idsync::daemon::cli {
namespace {

using nlohmann::ordered_json;

// The configuration, store and account client the live commands share.
struct Live {
  Loaded loaded;
  std::unique_ptr<store::Store> store;
  // Where the client says what it retries (stderr); outlives the client.
  std::unique_ptr<Logger> log;
  std::unique_ptr<account::AccountClient> account;
};

// Loads everything, printing the problem; `exit` is set on failure.
std::optional<Live> OpenLive(const Args& args, std::ostream& err, int& exit) {
  std::optional<Loaded> loaded =
      LoadConfigAndRules(args, OfflineCatalog(args.config), config::SecretUse::kAll, err);
  if (!loaded) {
    exit = kExitUsage;
    return std::nullopt;
  }
  if (loaded->config.account.url.empty()) {
    err << "idsync: " << args.config << " has no `account:` section; use --account-state FILE "
        << "to plan offline\n";
    exit = kExitUsage;
    return std::nullopt;
  }
  exit = kExitFailed;
  std::unique_ptr<store::Store> store = OpenStore(loaded->config, err, &exit);
  if (!store) return std::nullopt;
  exit = kExitOk;
  auto log = std::make_unique<Logger>(LogFormat::kText, LogLevel::kInfo,
                                      [&err](std::string_view line) { err << line << std::flush; });
  Result<std::unique_ptr<account::AccountClient>> client =
      account::AccountClient::Create(loaded->config.account, RetryLoggingOptions(*log));
  if (!client.ok()) {
    err << "idsync: account: " << client.status().message() << "\n";
    exit = kExitUsage;
    return std::nullopt;
  }
  return Live{std::move(*loaded), std::move(store), std::move(log), std::move(client).value()};
}

// Shows progress on a terminal in place, else as a log line every few seconds.
ProgressFn ProgressPrinter(std::ostream& err) {
  bool tty = &err == &std::cerr && ::isatty(STDERR_FILENO);
  auto last_line = std::make_shared<double>(-10.0);
  return [&err, tty, last_line](const Progress& p) {
    double rate = p.elapsed_s > 0 ? p.done / p.elapsed_s : 0;
    double left = rate > 0 ? (p.total - p.done) / rate : 0;
    char line[160];
    std::snprintf(line, sizeof line, "apply: %lld/%lld done, %.1f/s, %.0f s left, %lld failed",
                  static_cast<long long>(p.done), static_cast<long long>(p.total), rate, left,
                  static_cast<long long>(p.failed));
    if (tty) {
      err << "\r" << line << "   " << (p.done == p.total ? "\n" : "") << std::flush;
    } else if (p.elapsed_s - *last_line >= 5 || p.done == p.total) {
      *last_line = p.elapsed_s;
      err << "idsync: " << line << "\n";
    }
  };
}

void PrintReport(const ApplyReport& r, std::ostream& out) {
  if (r.recovered > 0 || r.dropped > 0) {
    out << "Finished " << r.recovered << " operations an interrupted run had sent; " << r.dropped
        << " it had not sent were planned again.\n";
  }
  out << "Applied " << r.applied << " operations in " << std::fixed << std::setprecision(1)
      << r.elapsed_s << " s: " << r.failed << " failed, " << r.pending << " pending.\n";
  for (const auto& f : r.failures) out << "  failed: " << f << "\n";
  if (r.stopped) {
    out << "Stopped: the account refused idsync's credentials (401/403). The remaining "
           "operations stay pending for the next run.\n";
  }
  for (const auto& s : r.failed_sources) {
    out << "Source failed: " << s << " (nobody it granted lost access)\n";
  }
  if (!r.audit_head.empty()) out << "Audit head: " << r.audit_head << "\n";
  if (!r.timings.empty()) {
    out << "Timings:";
    for (std::size_t i = 0; i < r.timings.size(); ++i) {
      out << (i ? ", " : " ") << r.timings[i].first << " " << std::fixed << std::setprecision(2)
          << r.timings[i].second << " s";
    }
    out << "\n";
  }
}

}  // namespace

std::unique_ptr<store::Store> OpenStore(const config::Config& config, std::ostream& err,
                                        int* exit) {
  if (Status s = EnterStoreOwner(config.SqlitePath()); !s.ok()) {
    err << "idsync: " << s.message() << "\n";
    if (exit != nullptr) *exit = kExitUsage;
    return nullptr;
  }
  Result<std::unique_ptr<store::Store>> store =
      store::Store::Open(StoreOptionsFor(config, "idsync"));
  if (!store.ok()) {
    err << "idsync: store " << store::RedactedStoreUrl(config.store) << ": "
        << store.status().message() << "\n";
    if (exit != nullptr) {
      *exit = store.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailed;
    }
    return nullptr;
  }
  return std::move(store).value();
}

std::unique_ptr<store::Store> OpenExistingStore(const config::Config& config) {
  if (config.SqlitePath().empty()) {
    // A database server's store exists when it can be reached.
    Result<std::unique_ptr<store::Store>> store =
        store::Store::Open(StoreOptionsFor(config, "idsync"));
    return store.ok() ? std::move(store).value() : nullptr;
  }
  std::string path = config.SqlitePath();
  struct stat st {};
  if (path.empty() || path == ":memory:" || ::stat(path.c_str(), &st) != 0) return nullptr;
  if (!EnterStoreOwner(path).ok()) return nullptr;
  Result<std::unique_ptr<store::Store>> store =
      store::Store::Open(StoreOptionsFor(config, "idsync"));
  return store.ok() ? std::move(store).value() : nullptr;
}

int PlanLive(const Args& args, std::ostream& out, std::ostream& err) {
  int exit = kExitOk;
  std::optional<Live> live = OpenLive(args, err, exit);
  if (!live) return exit;
  Syncer syncer(live->loaded.config, *live->store, *live->account);
  Result<PlannedRun> run = syncer.Plan(args.force);
  if (!run.ok()) {
    err << "idsync: " << run.status().message() << "\n";
    return run.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailed;
  }
  for (const auto& s : run->failed_sources) err << "idsync: source " << s << "\n";
  if (args.json) {
    out << PlanJson(run->plan, run->catalog, run->projects) << "\n";
  } else {
    PlanText(out, run->plan, run->catalog, run->projects);
    // Where the time went, as apply reports it: a slow source or account
    // shows here first.
    out << "Timings:";
    for (std::size_t i = 0; i < run->timings.size(); ++i) {
      out << (i ? ", " : " ") << run->timings[i].first << " " << std::fixed << std::setprecision(2)
          << run->timings[i].second << " s";
    }
    out << "\n";
  }
  if (run->plan.blocked) return kExitBlocked;
  return run->failed_sources.empty() ? kExitOk : kExitFailed;
}

int Apply(const Args& args, std::ostream& out, std::ostream& err) {
  if (!args.positional.empty()) {
    err << "idsync: apply takes no arguments\n";
    return kExitUsage;
  }
  int exit = kExitOk;
  std::optional<Live> live = OpenLive(args, err, exit);
  if (!live) return exit;
  std::optional<RunLock> lock;
  if (std::string path = live->loaded.config.SqlitePath(); !path.empty() && path != ":memory:") {
    lock.emplace(path);
    if (Status s = lock->Acquire("apply"); !s.ok()) {
      err << "idsync: " << s.message() << "\n";
      if (lock->HeldByDaemon()) {
        // The daemon owns runs while it lives: ask it rather than race it.
        err << "idsync: idsyncd runs the syncs for this store; ask it for a full run with\n"
            << "  curl -X POST -H \"Authorization: Bearer $ADMIN_TOKEN\" "
            << "http://" << live->loaded.config.server.admin_listen.front() << "/v1/sync\n"
            << "or stop it (systemctl stop idsyncd) to apply by hand.\n";
      }
      return kExitFailed;
    }
  }
  // On a shared store the lease is the run lock: held for this run, and
  // every write of it fenced.
  Logger lease_log(LogFormat::kText, LogLevel::kWarning);
  std::unique_ptr<Leadership> leadership;
  if (live->loaded.config.SqlitePath().empty()) {
    leadership = std::make_unique<Leadership>(
        lease_log, *live->store, "apply",
        std::chrono::duration_cast<std::chrono::milliseconds>(live->loaded.config.ha.lease));
    if (Status led = leadership->Start(); !led.ok()) {
      err << "idsync: " << led.message() << "\n";
      if (led.code() == StatusCode::kFailedPrecondition) {
        const auto& admin = live->loaded.config.server.admin_listen;
        err << "idsync: an idsyncd runs the syncs for this store; ask it for a full run with\n"
            << "  curl -X POST -H \"Authorization: Bearer $ADMIN_TOKEN\" "
            << "http://" << (admin.empty() ? "ADMIN_LISTEN" : admin.front()) << "/v1/sync\n"
            << "or stop every idsyncd on this store to apply by hand.\n";
      }
      return kExitFailed;
    }
  }
  Syncer syncer(live->loaded.config, *live->store, *live->account);
  ApplyOptions options;
  options.force = args.force;
  options.progress = ProgressPrinter(err);
  Result<ApplyReport> report = syncer.Apply(options);
  if (!report.ok()) {
    err << "idsync: apply: " << report.status().message() << "\n";
    return report.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailed;
  }
  if (report->blocked) {
    mapping::Catalog catalog = OfflineCatalog(args.config);
    PlanText(out, report->plan, catalog, {});
    out << "\nNothing was sent.\n";
    return kExitBlocked;
  }
  const auto& s = report->plan.summary;
  out << "Plan: " << s.invite << " to invite, " << s.update << " to update, " << s.revoke
      << " to revoke, " << s.remove << " to remove, " << s.unchanged << " unchanged\n";
  PrintReport(*report, out);
  return ApplyExitCode(*report);
}

// One line per source for `validate --online`.
std::string SourceCheckLine(const SourceCheck& c) {
  std::ostringstream line;
  line << "source " << c.source << " (" << c.type << "): ";
  if (!c.ok) {
    line << "FAILED: " << c.error;
    return line.str();
  }
  line << "ok";
  if (c.type == "scim") {
    line << ", " << c.token_hashes << " token hash" << (c.token_hashes == 1 ? "" : "es") << "; "
         << c.users << " users (" << c.disabled << " disabled) and " << c.groups
         << " groups stored";
    return line.str();
  }
  line << ", " << c.users << " users (" << c.disabled << " disabled), " << c.groups << " groups";
  if (!c.follows.empty()) line << ", follows changes by " << c.follows;
  return line.str();
}

int ValidateOnline(const Args& args, std::ostream& out, std::ostream& err) {
  int exit = kExitOk;
  std::optional<Live> live = OpenLive(args, err, exit);
  if (!live) return exit;
  const config::Config& config = live->loaded.config;
  for (const std::string& w : config.warnings) err << "idsync: warning: " << w << "\n";
  int status = kExitOk;
  ordered_json report;
  report["sources"] = ordered_json::array();

  // Every source, as a run reads it.
  ConnectorContext context;
  context.store = live->store.get();
  for (const config::SourceConfig& source : config.sources) {
    const SourceCheck c = CheckSource(source, context, std::chrono::seconds(10));
    if (!c.ok) status = kExitFailed;
    if (!args.json) out << SourceCheckLine(c) << "\n" << std::flush;
    ordered_json j{{"name", c.source}, {"type", c.type}, {"ok", c.ok}};
    if (!c.ok) j["error"] = c.error;
    j["users"] = c.users;
    j["disabled"] = c.disabled;
    j["groups"] = c.groups;
    if (!c.follows.empty()) j["follows"] = c.follows;
    report["sources"].push_back(std::move(j));
  }

  // The account: its catalog, and every project a rule names.
  auto account_failed = [&](const std::string& what, const Status& problem) {
    if (!args.json) out << "account: FAILED: " << what << ": " << problem.message() << "\n";
    report["account"] = {{"ok", false}, {"error", what + ": " + problem.message()}};
    if (args.json) out << report.dump(2) << "\n";
    return kExitFailed;
  };
  mapping::Catalog catalog = mapping::Catalog::Builtin();
  if (config.catalog_source == config::CatalogSource::kAccount) {
    Result<mapping::Catalog> fetched = live->account->GetCatalog();
    if (!fetched.ok()) return account_failed("GET /catalog", fetched.status());
    catalog = std::move(fetched).value();
    live->store->account_cache().PutCatalog(catalog).IgnoreError();
  }
  // Every preset and permission key against the catalog in force.
  std::optional<Loaded> again = LoadConfigAndRules(args, catalog, config::SecretUse::kAll, err);
  if (!again) return kExitUsage;
  if (GivenTestsFail(*again, err) == kTestsFailed) return kExitUsage;
  Result<std::vector<mapping::Project>> projects = live->account->ListProjects();
  if (!projects.ok()) return account_failed("GET /projects", projects.status());
  ordered_json unknown = ordered_json::array();
  for (const auto& rule : config.rules) {
    for (const auto& name : rule.projects) {
      bool known = std::any_of(projects->begin(), projects->end(),
                               [&](const mapping::Project& p) { return p.name == name; });
      if (!known) {
        err << "idsync: rule " << rule.name << " names project '" << name
            << "', which the account does not have\n";
        unknown.push_back({{"rule", rule.name}, {"project", name}});
        status = kExitFailed;
      }
    }
  }
  report["account"] = {{"ok", unknown.empty()},
                       {"catalog_items", catalog.item_count()},
                       {"projects", projects->size()}};
  if (!unknown.empty()) report["account"]["unknown_projects"] = unknown;
  report["valid"] = status == kExitOk;
  if (args.json) {
    out << report.dump(2) << "\n";
    return status;
  }
  out << "account: " << (unknown.empty() ? "ok" : "FAILED") << ", catalog has "
      << catalog.item_count() << " items"
      << (config.catalog_source == config::CatalogSource::kAccount ? " (the account's)"
                                                                   : " (built in)")
      << ", " << projects->size() << " projects\n";
  if (status == kExitOk) {
    out << args.config << ": configuration is valid and matches the sources and the account\n";
  }
  return status;
}

int StatusCommand(const Args& args, std::ostream& out, std::ostream& err) {
  std::optional<Loaded> loaded =
      LoadConfigAndRules(args, OfflineCatalog(args.config), config::SecretUse::kStore, err);
  if (!loaded) return kExitUsage;
  int exit = kExitFailed;
  std::unique_ptr<store::Store> store = OpenStore(loaded->config, err, &exit);
  if (!store) return exit;
  if (args.json) {
    Result<std::string> text = StatusJson(loaded->config, *store);
    if (!text.ok()) {
      err << "idsync: store: " << text.status().message() << "\n";
      return kExitFailed;
    }
    out << *text << "\n";
    return kExitOk;
  }
  auto runs = store->runs().RecentRuns(10);
  auto pending = store->outbox().Unfinished();
  auto failed = store->outbox().Failed(20);
  auto check = store->audit().Verify(std::nullopt);
  for (const Status& s : {runs.status(), pending.status(), failed.status(), check.status()}) {
    if (!s.ok()) {
      err << "idsync: store: " << s.message() << "\n";
      return kExitFailed;
    }
  }
  const std::vector<SourceStatus> sources = LoadSourceStatuses(loaded->config, *store);
  out << "Runs (newest first):\n";
  if (runs->empty()) out << "  none yet\n";
  for (const auto& r : *runs) {
    out << "  #" << std::left << std::setw(5) << r.id << FormatTime(r.started_ms) << "  "
        << std::setw(8) << RunKindName(r.kind) << std::setw(18)
        << (r.result.empty() ? "running" : r.result);
    nlohmann::json sj =
        nlohmann::json::parse(r.summary_json.empty() ? "{}" : r.summary_json, nullptr, false);
    if (sj.is_object()) {
      out << "invite " << sj.value("invite", 0) << ", update " << sj.value("update", 0)
          << ", revoke " << sj.value("revoke", 0) << ", remove " << sj.value("remove", 0)
          << "; applied " << sj.value("applied", 0) << ", failed " << sj.value("failed", 0);
      if (sj.contains("failed_sources") && !sj["failed_sources"].empty()) {
        out << "; sources failed: " << sj["failed_sources"].size();
      }
    }
    if (!r.error.empty()) out << "  (" << r.error << ")";
    out << "\n";
  }
  out << "Sources:\n";
  for (const auto& st : sources) {
    out << "  " << std::left << std::setw(16) << st.name << std::setw(6) << st.type << std::setw(11)
        << SourceStateName(st) << "last success " << FormatTime(st.last_success_ms) << ", "
        << st.users << " users, " << st.groups << " groups";
    if (st.failing) {
      out << "; failing since " << FormatTime(st.last_error_ms) << ": " << st.last_error
          << (st.never_read ? " (never read: nobody loses access)"
                            : " (its last good read stands in)");
    }
    out << "\n";
  }
  out << "Pending operations: " << pending->size() << "\n";
  for (const auto& e : *pending) {
    out << "  " << mapping::OpKindName(e.kind) << " " << e.email << " ("
        << store::OutboxStateName(e.state) << ", " << e.attempts << " attempts"
        << (e.error.empty() ? "" : ": " + e.error) << ")\n";
  }
  out << "Failed operations (latest " << failed->size() << "):\n";
  for (const auto& e : *failed) {
    out << "  " << FormatTime(e.updated_ms) << "  " << mapping::OpKindName(e.kind) << " " << e.email
        << ": " << e.error << "\n";
  }
  out << "Audit log: " << check->entries << " entries, head "
      << (check->head.empty() ? "(empty)" : check->head)
      << (check->ok ? "" : "  BROKEN: run `idsync audit verify`") << "\n";
  return kExitOk;
}

int ScimToken(const Args& args, std::ostream& out, std::ostream& err) {
  if (args.positional.size() != 1 || args.positional[0] != "new") {
    err << "idsync: usage: idsync scim-token new\n";
    return kExitUsage;
  }
  scim::TokenPair pair = scim::NewTokenPair();
  out << "token: " << pair.token << "\n"
      << "hash:  " << pair.hash << "\n"
      << "Give the token to the identity provider (it is shown only this once) and add the\n"
      << "hash to the scim source's `tokens:` list in the configuration.\n";
  return kExitOk;
}

// The audit head a person typed (`idsync status` prints it): 64 hex digits,
// in either case, optionally after "sha256:"; nullopt when it is not one.
std::optional<std::string> ParseAuditHead(std::string_view text) {
  if (text.size() > 7 && base::AsciiLower(text.substr(0, 7)) == "sha256:") text.remove_prefix(7);
  if (text.size() != 64) return std::nullopt;
  std::string hex;
  for (char c : text) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
    hex += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return hex;
}

Result<std::int64_t> ParseSince(const std::string& text, std::int64_t now_ms) {
  if (text.empty()) return std::int64_t{0};
  std::tm tm{};
  for (const char* format : {"%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"}) {
    tm = {};
    const char* end = strptime(text.c_str(), format, &tm);
    if (end != nullptr && *end == '\0') return static_cast<std::int64_t>(timegm(&tm)) * 1000;
  }
  Result<config::Duration> ago = config::ParseDuration(text);
  if (ago.ok()) return now_ms - ago->count();
  return InvalidArgumentError(
      "--since takes a date (2026-11-28), a UTC time "
      "(2026-11-28T10:00:00Z) or a duration (24h), not '" +
      text + "'");
}

int Audit(const Args& args, std::ostream& out, std::ostream& err) {
  bool verify = !args.positional.empty() && args.positional[0] == "verify";
  if (args.positional.size() > (verify ? 1u : 0u)) {
    err << "idsync: audit takes `verify` or nothing\n";
    return kExitUsage;
  }
  std::optional<std::string> head;
  if (!args.head.empty()) {
    if (!verify) {
      err << "idsync: --head goes with `audit verify`\n";
      return kExitUsage;
    }
    head = ParseAuditHead(args.head);
    if (!head) {
      err << "idsync: --head takes the audit log's head as `idsync status` prints it (64 hex "
             "digits), got '"
          << args.head << "'\n";
      return kExitUsage;
    }
  }
  std::optional<Loaded> loaded =
      LoadConfigAndRules(args, OfflineCatalog(args.config), config::SecretUse::kStore, err);
  if (!loaded) return kExitUsage;
  int exit = kExitFailed;
  std::unique_ptr<store::Store> store = OpenStore(loaded->config, err, &exit);
  if (!store) return exit;
  if (verify) {
    Result<store::AuditCheck> check = store->audit().Verify(head);
    if (!check.ok()) {
      err << "idsync: store: " << check.status().message() << "\n";
      return kExitFailed;
    }
    if (!check->ok) {
      out << "audit log BROKEN";
      if (check->bad_seq > 0) out << " at entry " << check->bad_seq;
      out << ": " << check->problem << "\n";
      return kExitFailed;
    }
    out << "audit log intact: " << check->entries << " entries, head "
        << (check->head.empty() ? "(empty)" : check->head) << "\n";
    return kExitOk;
  }
  Result<std::int64_t> since = ParseSince(args.since, SystemNowMs());
  if (!since.ok()) {
    err << "idsync: " << since.status().message() << "\n";
    return kExitUsage;
  }
  Result<std::vector<store::AuditEntry>> entries = store->audit().Since(*since);
  if (!entries.ok()) {
    err << "idsync: store: " << entries.status().message() << "\n";
    return kExitFailed;
  }
  if (args.json) {
    ordered_json all = ordered_json::array();
    for (const auto& e : *entries) {
      ordered_json j{{"seq", e.seq},       {"at", FormatTime(e.at_ms)}, {"run", e.run_id},
                     {"action", e.action}, {"email", e.email},          {"user_id", e.user_id},
                     {"source", e.source}};
      j["detail"] =
          nlohmann::json::parse(e.detail_json.empty() ? "{}" : e.detail_json, nullptr, false);
      j["hash"] = e.hash;
      j["prev_hash"] = e.prev_hash;
      all.push_back(j);
    }
    out << all.dump(2) << "\n";
    return kExitOk;
  }
  for (const auto& e : *entries) {
    nlohmann::json d =
        nlohmann::json::parse(e.detail_json.empty() ? "{}" : e.detail_json, nullptr, false);
    std::string rules;
    if (d.is_object() && d.contains("rules") && d["rules"].is_array()) {
      for (const auto& r : d["rules"]) rules += (rules.empty() ? "" : ",") + r.get<std::string>();
    }
    // Columns padded to a width, and never closer than two spaces when a
    // value is longer than its column.
    auto column = [](const std::string& value, std::size_t width) {
      return value + std::string(value.size() + 2 > width ? 2 : width - value.size(), ' ');
    };
    out << column(std::to_string(e.seq), 7) << FormatTime(e.at_ms) << "  " << column(e.action, 8)
        << column(e.email, 32) << column(e.user_id, 12) << e.source;
    if (!rules.empty()) out << "  rules: " << rules;
    out << "\n";
  }
  if (entries->empty())
    out << "no audit entries" << (args.since.empty() ? "" : " since then") << "\n";
  return kExitOk;
}

}  // namespace idsync::daemon::cli
