#include "leadership.h"

#include <random>
#include <utility>

#include <unistd.h>

namespace idsync::daemon {
namespace {

std::string HolderFor(const std::string& id) {
  std::random_device random;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string suffix;
  for (int i = 0; i < 8; ++i) suffix += kHex[random() % 16];
  return id + "/" + std::to_string(::getpid()) + "/" + suffix;
}

}  // namespace

std::string DefaultReplicaId() {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
    return "idsyncd-" + std::to_string(::getpid());
  }
  return std::string(host) + "-" + std::to_string(::getpid());
}

Leadership::Leadership(Logger& log, store::Store& store, std::string replica_id,
                       std::chrono::milliseconds lease, OnChange on_change)
    : log_(log),
      on_change_(std::move(on_change)),
      store_(store),
      id_(std::move(replica_id)),
      holder_(HolderFor(id_)),
      lease_(lease) {}

Leadership::~Leadership() { Stop(); }

Status Leadership::Start() {
  // A lease left by a process that died expires within one lease; one more
  // renewal period covers a clock that ticked just before it.
  const auto give_up = std::chrono::steady_clock::now() + lease_ + lease_ / 3;
  store::LeaseState state;
  while (true) {
    ASSIGN_OR_RETURN(state, store_.lease().Acquire(holder_, lease_));
    if (state.holder == holder_) break;
    if (std::chrono::steady_clock::now() >= give_up) {
      return FailedPreconditionError("the store's leader lease is held by " + state.holder +
                                     " (epoch " + std::to_string(state.epoch) +
                                     "), which keeps renewing it");
    }
    std::unique_lock lock(mu_);
    if (wake_.wait_for(lock, lease_ / 3, [this] { return stopping_; })) {
      return UnavailableError("stopped while waiting for the leader lease");
    }
  }
  Elected(state.epoch);
  renewer_ = std::thread([this] {
    if (std::optional<std::string> why = Renew()) Lost(*why);
  });
  return Status::Ok();
}

void Leadership::Elected(std::int64_t epoch) {
  store_.SetFence(store::Fence{holder_, epoch});
  {
    std::lock_guard lock(mu_);
    leader_ = true;
    epoch_ = epoch;
  }
  log_.Info("leader.elected", "this replica leads: it runs the syncs and sends the outbox",
            {{"replica", id_}, {"epoch", static_cast<long long>(epoch)}});
  if (on_change_) on_change_(true, epoch);
}

void Leadership::Campaign() {
  std::lock_guard lock(mu_);
  if (renewer_.joinable() || stopping_) return;
  renewer_ = std::thread([this] { Contend(); });
}

void Leadership::Contend() {
  std::string following;  // the leader this replica last logged it follows
  bool failing = false;
  std::unique_lock lock(mu_);
  while (!stopping_ && !retired_) {
    lock.unlock();
    Result<store::LeaseState> state = store_.lease().Acquire(holder_, lease_);
    lock.lock();
    if (state.ok() && state->holder == holder_) {
      if (stopping_ || retired_) {
        // Won while leaving: given back at once, never used.
        lock.unlock();
        store_.lease().Release(holder_).IgnoreError();
        return;
      }
      changing_ = true;
      lock.unlock();
      Elected(state->epoch);
      lock.lock();
      changing_ = false;
      wake_.notify_all();
      lock.unlock();
      std::optional<std::string> why = Renew();
      if (!why || !Lost(*why)) return;  // stopping, or the leader's work would not stop
      lock.lock();
      lost_ = false;
      following.clear();
      continue;  // contends again at once: the lease may be free
    }
    if (!state.ok()) {
      if (!failing) {
        log_.Warning("leader.campaign_failed",
                     "the leader lease cannot be read; this replica serves SCIM and tries again",
                     {{"replica", id_}, {"error", state.status().message()}});
      }
      failing = true;
    } else {
      failing = false;
      if (state->holder != following) {
        following = state->holder;
        log_.Info("leader.following", "another replica leads; this one serves SCIM and follows",
                  {{"replica", id_},
                   {"leader", following},
                   {"epoch", static_cast<long long>(state->epoch)}});
      }
    }
    wake_.wait_for(lock, lease_ / 3, [this] { return stopping_ || retired_; });
  }
}

void Leadership::Retire() {
  std::unique_lock lock(mu_);
  retired_ = true;
  wake_.notify_all();
  wake_.wait(lock, [this] { return !changing_; });
}

std::optional<std::string> Leadership::Renew() {
  const auto period = lease_ / 3;
  auto last_renewed = std::chrono::steady_clock::now();
  std::unique_lock lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, period, [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    const auto asked = std::chrono::steady_clock::now();
    Result<store::LeaseState> state = store_.lease().Acquire(holder_, lease_);
    lock.lock();
    if (stopping_) break;
    if (state.ok() && state->holder == holder_ && state->epoch == epoch_) {
      last_renewed = asked;
      continue;
    }
    if (state.ok()) {
      return state->holder == holder_ ? "the lease epoch moved"
                                      : "the lease passed to " + state->holder + " at epoch " +
                                            std::to_string(state->epoch);
    }
    // Not renewed: once the lease this process last renewed has run out
    // (measured from before that renewal was asked), another may hold it.
    if (std::chrono::steady_clock::now() - last_renewed >= lease_) {
      return "the lease could not be renewed in time: " + state.status().message();
    }
    log_.Warning("leader.renew_failed", "the leader lease could not be renewed; trying again",
                 {{"replica", id_}, {"error", state.status().message()}});
  }
  return std::nullopt;
}

bool Leadership::Lost(const std::string& why) {
  std::int64_t epoch;
  {
    std::lock_guard lock(mu_);
    leader_ = false;
    lost_ = true;
    changing_ = true;
    epoch = epoch_;
  }
  log_.Error("leader.lost",
             "this replica lost the leader lease: its writes are refused from now on; it stops "
             "its runs and follows",
             {{"replica", id_}, {"epoch", static_cast<long long>(epoch)}, {"reason", why}});
  const bool stopped = on_change_ ? on_change_(false, epoch) : true;
  if (!stopped) {
    log_.Error("leader.stuck",
               "the runs of the lost leadership did not stop in time; this replica reports "
               "itself unhealthy so that it is restarted",
               {{"replica", id_}, {"epoch", static_cast<long long>(epoch)}});
  }
  std::lock_guard lock(mu_);
  changing_ = false;
  wake_.notify_all();
  return stopped;
}

void Leadership::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (renewer_.joinable()) renewer_.join();
  bool was_leader = false;
  {
    std::lock_guard lock(mu_);
    was_leader = leader_;
    leader_ = false;
  }
  if (was_leader) {
    // Released so that another replica takes over without waiting out the
    // lease. The fence stays: nothing may write as leader after this.
    Status released = store_.lease().Release(holder_);
    if (!released.ok()) {
      log_.Warning("leader.release_failed",
                   "the leader lease could not be released; another replica takes over when it "
                   "expires",
                   {{"replica", id_}, {"error", released.message()}});
    }
    if (on_change_) on_change_(false, epoch_);
  }
}

ReplicaStatus Leadership::status() const {
  std::lock_guard lock(mu_);
  return ReplicaStatus{id_, leader_, epoch_};
}

bool Leadership::healthy() const {
  std::lock_guard lock(mu_);
  return !lost_;
}

}  // namespace idsync::daemon
