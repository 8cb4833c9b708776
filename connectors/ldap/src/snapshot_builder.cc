#include "snapshot_builder.h"

#include <algorithm>
#include <utility>

#include "idsync/mapping/dn.h"

namespace idsync::ldap::internal {

SnapshotBuilder::SnapshotBuilder(std::string source, bool nested, int max_depth) {
  snapshot_.source = std::move(source);
  snapshot_.nested = nested;
  snapshot_.max_depth = max_depth;
}

Result<std::string> SnapshotBuilder::Normalize(std::string_view kind, std::string_view dn) const {
  Result<std::string> normalized = mapping::NormalizeDn(dn);
  if (!normalized.ok()) {
    // Dropping the entry could deprovision a person, so the read fails.
    return InternalError("source '" + snapshot_.source + "': the server returned a " +
                         std::string(kind) + " entry whose DN '" + std::string(dn) +
                         "' does not parse: " + normalized.status().message());
  }
  return normalized;
}

Status SnapshotBuilder::AddUser(std::string dn, std::string id, std::string email,
                                std::string name) {
  ASSIGN_OR_RETURN(std::string normalized, Normalize("user", dn));
  auto [it, inserted] =
      user_index_.emplace(normalized, static_cast<std::uint32_t>(snapshot_.users.size()));
  if (!inserted) {
    return InternalError("source '" + snapshot_.source + "': the server returned the user '" + dn +
                         "' twice");
  }
  mapping::DirectoryUser user;
  user.id = id.empty() ? std::move(normalized) : std::move(id);
  user.dn = std::move(dn);
  user.email = std::move(email);
  user.name = std::move(name);
  snapshot_.users.push_back(std::move(user));
  return Status::Ok();
}

Result<bool> SnapshotBuilder::MarkDisabled(std::string_view dn) {
  ASSIGN_OR_RETURN(std::string normalized, Normalize("disabled user", dn));
  auto it = user_index_.find(normalized);
  if (it == user_index_.end()) return false;
  mapping::DirectoryUser& user = snapshot_.users[it->second];
  if (!user.disabled) ++disabled_;
  user.disabled = true;
  return true;
}

Result<std::uint32_t> SnapshotBuilder::AddGroup(std::string dn, std::string id, std::string name) {
  ASSIGN_OR_RETURN(std::string normalized, Normalize("group", dn));
  auto index = static_cast<std::uint32_t>(snapshot_.groups.size());
  auto [it, inserted] = group_index_.emplace(normalized, index);
  if (!inserted) {
    return InternalError("source '" + snapshot_.source + "': the server returned the group '" + dn +
                         "' twice");
  }
  mapping::DirectoryGroup group;
  group.id = id.empty() ? std::move(normalized) : std::move(id);
  group.dn = std::move(dn);
  group.name = std::move(name);
  snapshot_.groups.push_back(std::move(group));
  members_.emplace_back();
  normalized_members_.push_back(nullptr);
  return index;
}

Status SnapshotBuilder::AddNormalizedUser(std::string dn, std::string normalized_dn, std::string id,
                                          std::string email, std::string name, bool disabled) {
  auto [it, inserted] =
      user_index_.emplace(normalized_dn, static_cast<std::uint32_t>(snapshot_.users.size()));
  if (!inserted) {
    return InternalError("source '" + snapshot_.source + "': two users have the DN '" + dn + "'");
  }
  mapping::DirectoryUser user;
  user.id = id.empty() ? std::move(normalized_dn) : std::move(id);
  user.dn = std::move(dn);
  user.email = std::move(email);
  user.name = std::move(name);
  user.disabled = disabled;
  if (disabled) ++disabled_;
  snapshot_.users.push_back(std::move(user));
  return Status::Ok();
}

Result<std::uint32_t> SnapshotBuilder::AddNormalizedGroup(std::string dn, std::string normalized_dn,
                                                          std::string id, std::string name) {
  auto index = static_cast<std::uint32_t>(snapshot_.groups.size());
  auto [it, inserted] = group_index_.emplace(normalized_dn, index);
  if (!inserted) {
    return InternalError("source '" + snapshot_.source + "': two groups have the DN '" + dn + "'");
  }
  mapping::DirectoryGroup group;
  group.id = id.empty() ? std::move(normalized_dn) : std::move(id);
  group.dn = std::move(dn);
  group.name = std::move(name);
  snapshot_.groups.push_back(std::move(group));
  members_.emplace_back();
  normalized_members_.push_back(nullptr);
  return index;
}

void SnapshotBuilder::AddNormalizedMembers(std::uint32_t group,
                                           const std::vector<std::string>& normalized) {
  normalized_members_[group] = &normalized;
}

void SnapshotBuilder::AddMembers(std::uint32_t group, std::vector<std::string> values) {
  std::vector<std::string>& list = members_[group];
  if (list.empty()) {
    list = std::move(values);
  } else {
    list.insert(list.end(), std::make_move_iterator(values.begin()),
                std::make_move_iterator(values.end()));
  }
}

mapping::SourceSnapshot SnapshotBuilder::Finish(BuildCounts* counts) {
  // Where a member value points; -1: nothing of that kind.
  struct Target {
    std::int64_t user = -1;
    std::int64_t group = -1;
    bool invalid = false;
  };
  BuildCounts tally;
  tally.disabled_users = disabled_;
  // The same member DN usually appears in many groups, written the same
  // way; remembering each written form saves normalizing it again.
  std::unordered_map<std::string_view, Target> resolved;
  resolved.reserve(user_index_.size() + group_index_.size());
  for (std::size_t g = 0; g < snapshot_.groups.size(); ++g) {
    mapping::DirectoryGroup& group = snapshot_.groups[g];
    if (const std::vector<std::string>* normalized = normalized_members_[g]) {
      for (const std::string& value : *normalized) {
        auto u = user_index_.find(value);
        auto h = group_index_.find(value);
        if (u == user_index_.end() && h == group_index_.end()) ++tally.unresolved_members;
        if (u != user_index_.end()) group.member_users.push_back(u->second);
        if (h != group_index_.end()) group.member_groups.push_back(h->second);
      }
    }
    for (const std::string& value : members_[g]) {
      auto [it, inserted] = resolved.try_emplace(value);
      Target& target = it->second;
      if (inserted) {
        Result<std::string> normalized = mapping::NormalizeDn(value);
        if (!normalized.ok()) {
          target.invalid = true;
        } else {
          if (auto u = user_index_.find(*normalized); u != user_index_.end()) {
            target.user = u->second;
          }
          if (auto h = group_index_.find(*normalized); h != group_index_.end()) {
            target.group = h->second;
          }
        }
      }
      if (target.invalid) {
        ++tally.invalid_member_dns;
        continue;
      }
      if (target.user < 0 && target.group < 0) ++tally.unresolved_members;
      if (target.user >= 0) group.member_users.push_back(static_cast<std::uint32_t>(target.user));
      if (target.group >= 0) {
        group.member_groups.push_back(static_cast<std::uint32_t>(target.group));
      }
    }
    // One member written twice (or in two spellings) is one member.
    for (std::vector<std::uint32_t>* list : {&group.member_users, &group.member_groups}) {
      std::sort(list->begin(), list->end());
      list->erase(std::unique(list->begin(), list->end()), list->end());
    }
  }
  resolved.clear();
  members_.clear();
  normalized_members_.clear();
  if (counts != nullptr) *counts = tally;
  return std::move(snapshot_);
}

}  // namespace idsync::ldap::internal
