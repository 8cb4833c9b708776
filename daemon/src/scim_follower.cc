// ScimFollower (scim_follower.h): wait for a signal or the poll interval,
// then catch up; a failing store is reported once, and its return too.
#include "scim_follower.h"

#include <string>
#include <utility>

namespace idsync::daemon {

ScimFollower::ScimFollower(Logger& log, store::Store& store, ScimFront& front,
                           std::function<void()> after_each, std::chrono::milliseconds poll)
    : log_(log), store_(store), front_(front), after_each_(std::move(after_each)), poll_(poll) {}

ScimFollower::~ScimFollower() { Stop(); }

void ScimFollower::Start() {
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void ScimFollower::Stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void ScimFollower::Loop() {
  std::unique_ptr<store::ScimChangeSignal> signal;
  bool failing = false;
  while (!stopping_) {
    if (!signal) {
      Result<std::unique_ptr<store::ScimChangeSignal>> watch = store_.scim().Watch();
      if (watch.ok()) signal = std::move(watch).value();
    }
    if (signal) {
      signal->Wait(poll_);
    } else {
      std::this_thread::sleep_for(poll_);
    }
    if (stopping_) break;
    Status caught = front_.CatchUp();
    if (!caught.ok() && !failing) {
      log_.Warning("scim.follow_failed",
                   "this replica cannot read the other replicas' SCIM writes; it serves what it "
                   "has and tries again",
                   {{"error", caught.message()}});
    } else if (caught.ok() && failing) {
      log_.Info("scim.follow_resumed", "this replica follows the other replicas' SCIM writes again",
                {});
    }
    failing = !caught.ok();
    if (after_each_) after_each_();
  }
}

}  // namespace idsync::daemon
