#include "idsync/daemon/source_check.h"

#include <map>
#include <memory>
#include <optional>
#include <utility>

namespace idsync::daemon {
namespace {

// A feed's state kept for the check only.
class MemoryFeedState : public mapping::FeedStateStore {
 public:
  Result<std::optional<std::string>> Load(const std::string& key) override {
    auto it = values_.find(key);
    if (it == values_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  Status Save(const std::string& key, const std::string& value) override {
    values_[key] = value;
    return Status::Ok();
  }

 private:
  std::map<std::string, std::string> values_;
};

}  // namespace

SourceCheck CheckSource(const config::SourceConfig& source, const ConnectorContext& context,
                        std::chrono::milliseconds feed_wait) {
  SourceCheck check;
  check.source = source.name;
  check.type = source.type;
  check.token_hashes = source.token_hashes.size();
  Result<std::unique_ptr<mapping::IdentitySource>> built =
      BuiltinConnectors().Create(source, context);
  if (!built.ok()) {
    check.error = built.status().message();
    return check;
  }
  Result<mapping::SourceSnapshot> read = (*built)->Read();
  if (!read.ok()) {
    check.error = read.status().message();
    return check;
  }
  check.users = read->users.size();
  for (const mapping::DirectoryUser& u : read->users) check.disabled += u.disabled ? 1 : 0;
  check.groups = read->groups.size();
  if (const auto* directory = source.OptionsAs<config::DirectoryOptions>()) {
    if (check.users == 0) {
      check.error = "users.filter finds no user under users.base '" + directory->users.base + "'";
      return check;
    }
    if (!directory->groups.base.empty() && check.groups == 0) {
      check.error =
          "groups.filter finds no group under groups.base '" + directory->groups.base + "'";
      return check;
    }
  }
  if (source.watch) {
    MemoryFeedState state;
    Result<std::unique_ptr<mapping::ChangeFeed>> feed = (*built)->Follow(state);
    if (!feed.ok()) {
      check.error = "change following: " + feed.status().message();
      return check;
    }
    check.follows = std::string((*feed)->method());
    // The first answer is where a server refuses the method (DirSync needs
    // the "Replicating Directory Changes" right; syncrepl the syncprov overlay).
    Result<std::optional<mapping::SourceChange>> first = (*feed)->Next(feed_wait);
    if (!first.ok()) {
      check.error = "change following (" + check.follows + "): " + first.status().message();
      return check;
    }
  }
  check.ok = true;
  return check;
}

}  // namespace idsync::daemon
