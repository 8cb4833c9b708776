// Generation and Generations (generation.h): one configuration's objects, and
// the ones still in use. Thread-safety as the header says.
#include "generation.h"

#include <string>
#include <utility>

namespace idsync::daemon {
namespace {

// "2.5s".
std::string Seconds(std::chrono::milliseconds d) {
  return std::to_string(d.count() / 1000) + "." + std::to_string(d.count() % 1000 / 100) + "s";
}

}  // namespace

account::ClientOptions RetryLoggingOptions(Logger& log) {
  account::ClientOptions options;
  options.on_retry = [&log](const account::RetryNotice& n) {
    // Someone waits on a read; a write's retries, up to a day of them per
    // operation in an outage, are counted in the metrics and shown at debug.
    log.Log(n.write ? LogLevel::kDebug : LogLevel::kWarning, "account.retrying",
            n.request + " failed; retrying in " + Seconds(n.delay) + ", giving up in " +
                Seconds(n.left) + " (" +
                (n.write ? "account.retry_for" : "account.read_retry_for") + ")",
            {{"error", n.error}, {"attempts", n.attempts}});
  };
  return options;
}

Result<std::shared_ptr<Generation>> MakeGeneration(const config::Config& config,
                                                   const AccountFactory& make_account,
                                                   Logger* log) {
  auto generation = std::make_shared<Generation>();
  generation->config = config;
  if (config.account.url.empty()) {
    return InvalidArgumentError(config.path + ": idsyncd needs an `account:` section");
  }
  ASSIGN_OR_RETURN(generation->account,
                   make_account ? make_account(config.account)
                                : account::AccountClient::Create(
                                      config.account, log != nullptr ? RetryLoggingOptions(*log)
                                                                     : account::ClientOptions{}));
  return generation;
}

std::shared_ptr<Generation> Generations::Current() const {
  std::lock_guard<std::mutex> l(mu_);
  return current_;
}

void Generations::Install(std::shared_ptr<Generation> generation) {
  std::lock_guard<std::mutex> l(mu_);
  std::erase_if(made_, [](const auto& weak) { return weak.expired(); });
  made_.push_back(generation);
  current_ = std::move(generation);
}

void Generations::InterruptAll() {
  std::lock_guard<std::mutex> l(mu_);
  for (const std::weak_ptr<Generation>& weak : made_) {
    if (std::shared_ptr<Generation> generation = weak.lock()) generation->account->Interrupt();
  }
}

}  // namespace idsync::daemon
