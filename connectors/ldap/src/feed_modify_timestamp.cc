// modifyTimestamp polling ("modifytimestamp"), for servers without RFC 4533
// or DirSync: every watch_interval, the users and groups whose
// modifyTimestamp is at or after the newest one seen, plus a sweep of every
// entry's key (deletions leave no timestamp behind). Renames change
// modifyTimestamp, so they arrive as modifies of the same key.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <utility>

#include "feeds.h"
#include "ldap_util.h"

namespace idsync::ldap::internal {
namespace {

constexpr char kTimestamp[] = "modifyTimestamp";

class ModifyTimestampFeed : public mapping::ChangeFeed {
 public:
  explicit ModifyTimestampFeed(FeedContext context)
      : context_(std::move(context)),
        source_(*context_.source),
        cache_(source_),
        state_key_(context_.state_key + "/modifytimestamp"),
        has_groups_(source_.groups.base.find_first_not_of(" \t\r\n") != std::string::npos) {}

  ~ModifyTimestampFeed() override {
    SigpipeGuard guard;
    session_.reset();
    connection_.reset();
  }

  std::string_view method() const override { return "modifytimestamp"; }

  void Interrupt() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      interrupted_ = true;
    }
    wake_.notify_all();
  }

  Result<std::optional<mapping::SourceChange>> Next(std::chrono::milliseconds wait) override {
    if (!failure_.ok()) return failure_;
    SigpipeGuard guard;
    Result<std::optional<mapping::SourceChange>> result = NextOnce(wait);
    if (!result.ok()) {
      failure_ = result.status();
      session_.reset();
      connection_.reset();
    }
    return result;
  }

 private:
  // The search for one kind, limited to entries changed since `since`
  // ("" = all of them).
  Status Sweep(CachedEntry::Kind kind, const std::string& since) {
    const bool user = kind == CachedEntry::Kind::kUser;
    const std::string& base = user ? source_.users.base : source_.groups.base;
    std::string filter = user ? source_.users.filter : source_.groups.filter;
    if (!since.empty()) filter = AndFilter(filter, std::string(kTimestamp) + ">=" + since);
    std::vector<std::string> attributes = user ? UserAttributes(source_) : GroupAttributes(source_);
    attributes.push_back(FlavorIdAttribute(source_.flavor));
    attributes.push_back(kTimestamp);
    const std::string what = std::string(user ? "users" : "groups") + " changed since '" +
                             (since.empty() ? "the start" : since) + "' under '" + base + "'";
    return session_->Search(
        what, base, LDAP_SCOPE_SUBTREE, Parenthesize(filter), attributes, true,
        [&](LDAPMessage* entry) -> Status {
          ASSIGN_OR_RETURN(std::string dn, EntryDn(*session_, entry));
          ASSIGN_OR_RETURN(std::string key, EntryKey(*session_, entry, dn));
          std::string stamp = First(session_->ld(), entry, kTimestamp);
          if (stamp > high_water_) next_high_water_ = std::max(next_high_water_, stamp);
          if (user) {
            ASSIGN_OR_RETURN(CachedEntry cached, UserEntry(*session_, entry, key));
            changed_users_.push_back(key);
            cache_.Put(std::move(cached));
          } else {
            ASSIGN_OR_RETURN(CachedEntry cached, GroupEntry(*session_, entry, key));
            cache_.Put(std::move(cached));
          }
          return Status::Ok();
        });
  }

  // Removes the cached entries of `kind` the server no longer returns.
  Status SweepDeletions(CachedEntry::Kind kind) {
    const bool user = kind == CachedEntry::Kind::kUser;
    const std::string& base = user ? source_.users.base : source_.groups.base;
    const std::string& filter = user ? source_.users.filter : source_.groups.filter;
    std::set<std::string> present;
    RETURN_IF_ERROR(session_->Search(
        std::string(user ? "users" : "groups") + " presence under '" + base + "'", base,
        LDAP_SCOPE_SUBTREE, Parenthesize(filter), {FlavorIdAttribute(source_.flavor)}, true,
        [&](LDAPMessage* entry) -> Status {
          ASSIGN_OR_RETURN(std::string dn, EntryDn(*session_, entry));
          ASSIGN_OR_RETURN(std::string key, EntryKey(*session_, entry, dn));
          present.insert(std::move(key));
          return Status::Ok();
        }));
    for (const std::string& key : cache_.Keys(kind)) {
      if (present.count(key) == 0) cache_.Remove(kind, key);
    }
    return Status::Ok();
  }

  Result<std::optional<mapping::SourceChange>> Poll(bool full) {
    if (connection_ == nullptr) {
      ASSIGN_OR_RETURN(connection_, OpenConnection(source_));
      session_ = std::make_unique<Session>(source_, *connection_, nullptr);
    }
    cache_.Begin();
    changed_users_.clear();
    next_high_water_ = high_water_;
    const std::string since = full ? std::string() : high_water_;
    if (full) cache_.Clear();
    RETURN_IF_ERROR(Sweep(CachedEntry::Kind::kUser, since));
    if (has_groups_) RETURN_IF_ERROR(Sweep(CachedEntry::Kind::kGroup, since));
    if (!full) {
      RETURN_IF_ERROR(SweepDeletions(CachedEntry::Kind::kUser));
      if (has_groups_) RETURN_IF_ERROR(SweepDeletions(CachedEntry::Kind::kGroup));
    }
    std::vector<std::string> keys =
        full ? cache_.Keys(CachedEntry::Kind::kUser) : std::move(changed_users_);
    changed_users_.clear();
    RETURN_IF_ERROR(RefreshDisabled(*session_, cache_, keys));
    bool changed = false;
    std::vector<std::string> emails = cache_.Commit(&changed);
    const bool mark_moved = next_high_water_ != high_water_;
    high_water_ = next_high_water_;
    if (changed || full || mark_moved) {
      RETURN_IF_ERROR(SaveFeedState(*context_.state, state_key_, cache_, high_water_));
    }
    next_poll_ = SteadyClock::now() + source_.watch_interval;
    if (!changed && !full) return std::optional<mapping::SourceChange>();
    mapping::SourceChange change;
    ASSIGN_OR_RETURN(change.snapshot, cache_.Snapshot());
    change.emails = std::move(emails);
    change.full = full;
    return std::optional<mapping::SourceChange>(std::move(change));
  }

  Result<std::optional<mapping::SourceChange>> NextOnce(std::chrono::milliseconds wait) {
    if (!started_) {
      ASSIGN_OR_RETURN(std::optional<std::string> mark,
                       LoadFeedState(*context_.state, state_key_, cache_));
      started_ = true;
      if (!mark || mark->empty()) return Poll(true);
      high_water_ = *mark;
      return Poll(false);
    }
    const SteadyClock::time_point deadline = SteadyClock::now() + wait;
    if (SteadyClock::now() < next_poll_) {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait_until(lock, std::min(deadline, next_poll_), [&] { return interrupted_; });
      bool interrupted = interrupted_;
      interrupted_ = false;
      if (interrupted || SteadyClock::now() < next_poll_) {
        return std::optional<mapping::SourceChange>();
      }
    }
    return Poll(false);
  }

  FeedContext context_;
  const config::SourceConfig& source_;
  EntryCache cache_;
  std::string state_key_;
  bool has_groups_;
  std::unique_ptr<Connection> connection_;
  std::unique_ptr<Session> session_;
  bool started_ = false;
  std::string high_water_;
  std::string next_high_water_;
  std::vector<std::string> changed_users_;
  SteadyClock::time_point next_poll_;
  Status failure_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool interrupted_ = false;
};

}  // namespace

Result<std::unique_ptr<mapping::ChangeFeed>> NewModifyTimestampFeed(FeedContext context) {
  if (context.source == nullptr || context.state == nullptr) {
    return InternalError("change feed: no source or state store");
  }
  return std::unique_ptr<mapping::ChangeFeed>(new ModifyTimestampFeed(std::move(context)));
}

}  // namespace idsync::ldap::internal
