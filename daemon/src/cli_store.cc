// `idsync store copy --to URL`: the configured store copied whole into a
// new, empty one, while nothing else writes to it.

#include <chrono>
#include <memory>
#include <optional>
#include <ostream>

#include "idsync/daemon/cli.h"
#include "idsync/daemon/inputs.h"
#include "idsync/daemon/log.h"
#include "idsync/daemon/run_lock.h"
#include "idsync/store/copy.h"

#include "cli_internal.h"
#include "leadership.h"

namespace idsync::daemon::cli {

int StoreCommand(const Args& args, std::ostream& out, std::ostream& err) {
  if (args.positional.size() != 1 || args.positional[0] != "copy" || args.to.empty()) {
    err << "idsync: usage: idsync store copy --to URL\n";
    return kExitUsage;
  }
  std::optional<Loaded> loaded =
      LoadConfigAndRules(args, OfflineCatalog(args.config), config::SecretUse::kStore, err);
  if (!loaded) return kExitUsage;
  const config::Config& config = loaded->config;
  if (store::RedactedStoreUrl(args.to) == store::RedactedStoreUrl(config.store)) {
    err << "idsync: store copy: --to names the configured store itself\n";
    return kExitUsage;
  }

  // Nothing may write to the store while it is copied: the run lock beside
  // a SQLite file, the leader lease of a shared one.
  std::optional<RunLock> lock;
  if (std::string path = config.SqlitePath(); !path.empty() && path != ":memory:") {
    lock.emplace(path);
    if (Status s = lock->Acquire("store copy"); !s.ok()) {
      err << "idsync: " << s.message() << "\nidsync: stop idsyncd before copying its store\n";
      return kExitFailed;
    }
  }
  int exit = kExitOk;
  std::unique_ptr<store::Store> from = OpenStore(config, err, &exit);
  if (!from) return exit;
  Logger lease_log(LogFormat::kText, LogLevel::kWarning);
  std::unique_ptr<Leadership> leadership;
  if (config.SqlitePath().empty()) {
    leadership = std::make_unique<Leadership>(
        lease_log, *from, "store-copy",
        std::chrono::duration_cast<std::chrono::milliseconds>(config.ha.lease));
    if (Status led = leadership->Start(); !led.ok()) {
      err << "idsync: " << led.message() << "\nidsync: stop every idsyncd on this store first\n";
      return kExitFailed;
    }
  }

  store::StoreOptions target;
  target.url = args.to;
  target.application_name = "idsync store copy";
  const std::string shown = store::RedactedStoreUrl(args.to);
  Result<std::unique_ptr<store::Store>> to = store::Store::Open(target);
  if (!to.ok()) {
    err << "idsync: store copy: " << shown << ": " << to.status().message() << "\n";
    return to.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailed;
  }
  Result<store::CopyReport> report = store::CopyStore(*from, **to);
  if (!report.ok()) {
    err << "idsync: store copy to " << shown << ": " << report.status().message() << "\n";
    return kExitFailed;
  }
  out << "copied " << store::RedactedStoreUrl(config.store) << " to " << shown << ":\n";
  for (const auto& [table, rows] : report->tables) {
    out << "  " << table << ": " << rows << (rows == 1 ? " row" : " rows") << "\n";
  }
  out << "audit chain: " << report->audit_entries << " entries, verified at the destination"
      << (report->audit_head.empty() ? "" : ", head sha256:" + report->audit_head) << "\n"
      << "Point `store:` at the new store, then start idsyncd.\n";
  return kExitOk;
}

}  // namespace idsync::daemon::cli
