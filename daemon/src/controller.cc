#include "idsync/daemon/controller.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <memory>
#include <ostream>
#include <string>

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include "idsync/config/config.h"
#include "idsync/daemon/cli.h"
#include "idsync/daemon/connector_registry.h"
#include "idsync/daemon/inputs.h"
#include "idsync/daemon/log.h"
#include "idsync/daemon/metrics.h"
#include "idsync/daemon/notify.h"
#include "idsync/daemon/policy_check.h"
#include "idsync/daemon/process.h"
#include "idsync/store/store.h"

namespace idsync::daemon {
namespace {

// Each listener may hold server.max_connections (4,096 by default) open, and
// the default soft limit on open files is 1,024: the soft limit is raised to
// the hard one (systemd's LimitNOFILE sets both).
void RaiseFileLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
}

constexpr const char* kUsage = R"(usage: idsyncd --config FILE [--check-config]

Keeps an account's users in step with the directory, as a service: serves SCIM on
server.listen, the admin API and metrics on server.admin_listen, follows watched sources,
and runs a full sync every `interval` (plus jitter). Runs in the foreground and logs to
stderr; tells systemd when it is ready (sd_notify) and pings its watchdog.

Options:
  --config FILE    configuration file (default /etc/idsync/idsync.yaml)
  --check-config   validate the configuration and exit (0 valid, 2 with FILE:LINE:COL: error);
                   secrets are checked for form, not read
  --version        print the version
  -h, --help       this text

Signals: SIGHUP reloads the configuration (a configuration that fails validation is refused
and the old one keeps running); SIGTERM or SIGINT stops cleanly (exit 0): the operation in
flight finishes or stays in the outbox, and nothing planned is lost.

While it runs, idsyncd holds the run lock beside the store: `idsync apply` refuses; ask for
a run with POST /v1/sync on the admin listener instead.
)";

struct Flags {
  std::string config = "/etc/idsync/idsync.yaml";
  bool check = false;
  bool help = false;
  bool version = false;
};

Result<Flags> ParseFlags(const std::vector<std::string>& argv) {
  Flags flags;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (a == "--config" || a == "-c") {
      if (i + 1 >= argv.size()) return InvalidArgumentError(a + " needs a value");
      flags.config = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      flags.config = a.substr(9);
    } else if (a == "--check-config" || a == "-t") {
      flags.check = true;
    } else if (a == "--version") {
      flags.version = true;
    } else if (a == "-h" || a == "--help") {
      flags.help = true;
    } else {
      return InvalidArgumentError("unknown argument " + a);
    }
  }
  return flags;
}

LogFormat FormatOf(const config::LoggingConfig& logging) {
  return logging.format == config::LoggingConfig::Format::kJson ? LogFormat::kJson
                                                                : LogFormat::kText;
}

LogLevel LevelOf(const config::LoggingConfig& logging) {
  switch (logging.level) {
    case config::LoggingConfig::Level::kDebug:
      return LogLevel::kDebug;
    case config::LoggingConfig::Level::kInfo:
      return LogLevel::kInfo;
    case config::LoggingConfig::Level::kWarning:
      return LogLevel::kWarning;
    case config::LoggingConfig::Level::kError:
      return LogLevel::kError;
  }
  return LogLevel::kInfo;
}

// Loads and fully checks the configuration (rules compiled against the
// catalog cached by the last run, else the built-in one; given: policy
// tests passing). `secrets`: what
// to read; --check-config reads none (it runs where the unit's credentials
// are not) and still checks every reference.
Result<config::Config> LoadChecked(const std::string& path,
                                   config::SecretUse secrets = config::SecretUse::kAll) {
  mapping::Catalog catalog = OfflineCatalog(path);
  config::LoadOptions options = BuiltinLoadOptions();
  options.catalog = &catalog;
  options.secrets = secrets;
  ASSIGN_OR_RETURN(config::Config loaded, config::LoadConfig(path, options));
  Result<std::unique_ptr<mapping::RuleSet>> rules = CompileRules(loaded, catalog);
  if (!rules.ok()) return InvalidArgumentError(path + ": " + rules.status().message());
  // A configuration whose given: policy tests fail is not one to run.
  RETURN_IF_ERROR(GivenTestsPass(loaded, **rules));
  if (loaded.account.url.empty()) {
    return InvalidArgumentError(path + ": idsyncd needs an `account:` section");
  }
  return loaded;
}

// A shared (PostgreSQL) store that cannot be reached at start is waited
// for: idsyncd is not ready meanwhile (nothing listens, systemd has no
// READY=1), tries again with a growing pause (1 s to 30 s), and stops when
// asked. False when SIGTERM or SIGINT came first. A SQLite store, or any
// other failure, is left to Process::Start to report.
bool WaitForSharedStore(const config::Config& config, Logger& log, Notifier& notifier,
                        const sigset_t& signals) {
  if (!config.SqlitePath().empty()) return true;
  std::chrono::milliseconds pause(1000);
  for (int attempt = 1;; ++attempt) {
    Result<std::unique_ptr<store::Store>> opened =
        store::Store::Open(StoreOptionsFor(config, "idsyncd"));
    if (opened.ok() || opened.status().code() != StatusCode::kUnavailable) return true;
    log.Warning("store.waiting",
                "the store cannot be reached; idsyncd is not ready and tries again",
                {{"error", opened.status().message()},
                 {"attempt", static_cast<long long>(attempt)},
                 {"retry_in_ms", static_cast<long long>(pause.count())}});
    notifier.SetStatus("waiting for the store");
    const timespec wait{static_cast<time_t>(pause.count() / 1000),
                        static_cast<long>(pause.count() % 1000) * 1000000L};
    const int sig = sigtimedwait(&signals, nullptr, &wait);
    if (sig == SIGTERM || sig == SIGINT) return false;
    pause = std::min<std::chrono::milliseconds>(pause * 2, std::chrono::seconds(30));
  }
}

// The controller proper: the main thread waits for signals and acts on them.
class Controller {
 public:
  Controller(std::string path, std::ostream& err) : path_(std::move(path)), err_(err) {}

  int Run() {
    // Block the signals before any thread starts, so every thread inherits
    // the mask and only sigwait below ever sees them.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    RaiseFileLimit();

    Result<config::Config> loaded = LoadChecked(path_);
    if (!loaded.ok()) {
      err_ << "idsyncd: " << loaded.status().message() << "\n";
      return kExitUsage;
    }
    Logger log(FormatOf(loaded->logging), LevelOf(loaded->logging));
    Metrics metrics(IDSYNC_VERSION);
    Notifier notifier;
    if (!WaitForSharedStore(*loaded, log, notifier, set)) {
      log.Info("daemon.stopped", "idsyncd stopped before its store could be reached", {});
      return kExitOk;
    }
    Process process(log, metrics, notifier);
    Status started = process.Start(*loaded);
    if (!started.ok()) {
      log.Error("daemon.start_failed", "idsyncd could not start",
                {{"error", started.message()}, {"config", path_}});
      return started.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailed;
    }
    std::string listening;
    for (int port : process.scim_ports()) listening += ",scim:" + std::to_string(port);
    for (int port : process.admin_ports()) listening += ",admin:" + std::to_string(port);
    log.Info("daemon.started", "idsyncd is serving",
             {{"version", IDSYNC_VERSION},
              {"config", path_},
              {"sources", static_cast<long long>(loaded->sources.size())},
              {"ports", listening.empty() ? std::string("none") : listening.substr(1)}});
    notifier.Ready("serving; first full run in progress");
    notifier.StartWatchdog([&process] { return process.Alive(); });

    while (true) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (sig == SIGHUP) {
        notifier.Reloading();
        Result<config::Config> next = LoadChecked(path_);
        Status swapped = next.ok() ? process.Reload(*next) : next.status();
        metrics.ConfigReload(swapped.ok());
        if (swapped.ok()) {
          log.Configure(FormatOf(next->logging), LevelOf(next->logging));
          log.Info("config.reloaded", "the new configuration is in force", {{"config", path_}});
        } else {
          log.Error("config.refused",
                    "the new configuration was refused; the previous one keeps running",
                    {{"error", swapped.message()}, {"config", path_}});
        }
        notifier.Ready();
        continue;
      }
      log.Info("daemon.stopping",
               "stopping: no new work; the run in flight parks what it has "
               "not sent",
               {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
      notifier.Stopping();
      notifier.StopWatchdog();
      if (!process.Stop()) {
        // A write is still waiting on the account: it was marked sent, so
        // the next start finishes it with the same key. Leave now.
        log.Warning("daemon.stop_timeout",
                    "a write was still in flight; it will be finished after the restart", {});
        std::_Exit(kExitOk);
      }
      log.Info("daemon.stopped", "idsyncd stopped", {});
      return kExitOk;
    }
  }

 private:
  std::string path_;
  std::ostream& err_;
};

}  // namespace

int RunDaemon(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  Result<Flags> flags = ParseFlags(args);
  if (!flags.ok()) {
    err << "idsyncd: " << flags.status().message() << "\n" << kUsage;
    return kExitUsage;
  }
  if (flags->help) {
    out << kUsage;
    return kExitOk;
  }
  if (flags->version) {
    out << "idsyncd " << IDSYNC_VERSION << "\n";
    return kExitOk;
  }
  if (flags->check) {
    Result<config::Config> loaded = LoadChecked(flags->config, config::SecretUse::kNone);
    if (!loaded.ok()) {
      err << "idsyncd: " << loaded.status().message() << "\n";
      return kExitUsage;
    }
    for (const std::string& w : loaded->warnings) err << "idsyncd: warning: " << w << "\n";
    out << flags->config << ": configuration is valid\n";
    return kExitOk;
  }
  return Controller(flags->config, err).Run();
}

}  // namespace idsync::daemon
