// One configuration's objects (a Generation), and the set of them a process
// has made (Generations): the one in force, and every one a run or an admin
// request may still hold after a reload replaced it.
//
// A Generation's config and account client never change once made (the
// client is thread-safe); `reported` is guarded by `counters_mu`; `rules` is
// thread-safe. Generations is thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "idsync/account/account_client.h"
#include "idsync/base/status.h"
#include "idsync/config/config.h"
#include "idsync/daemon/log.h"
#include "idsync/daemon/process.h"
#include "idsync/daemon/sync.h"

namespace idsync::daemon {

// Shared (shared_ptr) because a run, an admin request and a reload may hold
// different generations at once; each keeps its own alive until it is done.
struct Generation {
  config::Config config;
  std::unique_ptr<account::AccountClient> account;
  // The catalog and compiled rules runs of this configuration reuse.
  RulesCache rules;
  std::mutex counters_mu;
  account::ClientCounters reported;  // counters already given to the metrics
};

// Account client options that log, on `log`, each retry the client is about
// to wait for (event account.retrying: the request, the error, the delay and
// the time left), so that a wait on the account never looks like a hang:
// a read's as a warning, a write's at debug level.
// `log` must outlive the client.
account::ClientOptions RetryLoggingOptions(Logger& log);

// A generation for `config`, its account client made by `make_account`
// (unset: account::AccountClient::Create, logging retries on `log` when
// given). kInvalidArgument when the configuration has no `account:` section
// or the client refuses its settings.
Result<std::shared_ptr<Generation>> MakeGeneration(const config::Config& config,
                                                   const AccountFactory& make_account,
                                                   Logger* log = nullptr);

class Generations {
 public:
  // The generation in force; nullptr before the first Install.
  std::shared_ptr<Generation> Current() const;

  // Puts `generation` in force; runs under way keep the one they hold.
  void Install(std::shared_ptr<Generation> generation);

  // For shutdown: interrupts the account client of every generation still
  // held, so that a write waiting to retry gives up now.
  void InterruptAll();

 private:
  mutable std::mutex mu_;
  std::shared_ptr<Generation> current_;          // guarded by mu_
  std::vector<std::weak_ptr<Generation>> made_;  // guarded by mu_
};

}  // namespace idsync::daemon
