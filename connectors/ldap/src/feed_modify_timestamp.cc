// modifyTimestamp polling ("modifytimestamp"), for servers without RFC 4533
// or DirSync: every watch_interval, the users and groups whose
// modifyTimestamp is at or after the newest one seen, plus a sweep of every
// entry's key (deletions leave no timestamp behind). Renames change
// modifyTimestamp, so they arrive as modifies of the same key.
#include <algorithm>
#include <chrono>
#include <set>
#include <utility>

#include "feeds.h"
#include "ldap_util.h"

namespace idsync::ldap::internal {
namespace {

constexpr char kTimestamp[] = "modifyTimestamp";

class ModifyTimestampFeed : public PollingFeed {
 public:
  explicit ModifyTimestampFeed(FeedContext context)
      : PollingFeed(std::move(context), "modifytimestamp"),
        has_groups_(source_.groups.base.find_first_not_of(" \t\r\n") != std::string::npos) {}

  ~ModifyTimestampFeed() override { Close(); }

  std::string_view method() const override { return "modifytimestamp"; }

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

  Result<std::optional<mapping::SourceChange>> Fetch(bool full) {
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
    if (changed || full || mark_moved) SaveDue();
    return Deliver(std::move(emails), changed, full);
  }

  Result<std::optional<mapping::SourceChange>> Start() override {
    ASSIGN_OR_RETURN(std::optional<std::string> mark,
                     LoadFeedState(*context_.state, state_key_, cache_));
    if (!mark || mark->empty()) return Fetch(true);
    high_water_ = *mark;
    return Fetch(false);
  }

  Result<std::optional<mapping::SourceChange>> Poll() override { return Fetch(false); }

  Status Save() override { return SaveFeedState(*context_.state, state_key_, cache_, high_water_); }

  bool has_groups_;
  std::string high_water_;
  std::string next_high_water_;
  std::vector<std::string> changed_users_;
};

}  // namespace

Result<std::unique_ptr<mapping::ChangeFeed>> NewModifyTimestampFeed(FeedContext context) {
  if (context.source == nullptr || context.state == nullptr) {
    return InternalError("change feed: no source or state store");
  }
  return std::unique_ptr<mapping::ChangeFeed>(new ModifyTimestampFeed(std::move(context)));
}

}  // namespace idsync::ldap::internal
