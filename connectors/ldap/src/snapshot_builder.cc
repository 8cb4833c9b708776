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

std::uint32_t SnapshotBuilder::Intern(std::string_view written, const std::string* normalized) {
  if (auto it = value_ids_.find(written); it != value_ids_.end()) {
    if (values_[it->second].normalized == nullptr) values_[it->second].normalized = normalized;
    return it->second;
  }
  const auto id = static_cast<std::uint32_t>(values_.size());
  value_ids_.emplace(std::string(written), id);
  values_.push_back(Value{normalized});
  return id;
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
  // Member values name users the way the server wrote their DNs, mostly:
  // knowing the normalized form of that spelling saves parsing it again.
  Intern(dn, &it->first);
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
  Intern(dn, &it->first);
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
  // Only an id per value is kept: a large directory names the same few
  // hundred thousand DNs a million times over.
  std::vector<std::uint32_t>& list = members_[group];
  list.reserve(list.size() + values.size());
  for (const std::string& value : values) list.push_back(Intern(value, nullptr));
}

mapping::SourceSnapshot SnapshotBuilder::Finish(BuildCounts* counts) {
  // Where a member value points; -1: nothing of that kind.
  struct Target {
    std::int64_t user = -1;
    std::int64_t group = -1;
    bool invalid = false;
    bool known = false;  // resolved already
  };
  BuildCounts tally;
  tally.disabled_users = disabled_;
  // Each written value is resolved once, the first time a group names it.
  std::vector<Target> targets(values_.size());
  std::vector<std::string_view> written;  // by value id, for the values needing a parse
  bool have_written = false;
  const auto resolve = [&](std::uint32_t id) -> const Target& {
    Target& target = targets[id];
    if (target.known) return target;
    target.known = true;
    const std::string* normalized = values_[id].normalized;
    Result<std::string> parsed{std::string()};
    if (normalized == nullptr) {
      if (!have_written) {
        written.resize(values_.size());
        for (const auto& [text, at] : value_ids_) written[at] = text;
        have_written = true;
      }
      parsed = mapping::NormalizeDn(written[id]);
      if (!parsed.ok()) {
        target.invalid = true;
        return target;
      }
      normalized = &*parsed;
    }
    if (auto u = user_index_.find(*normalized); u != user_index_.end()) target.user = u->second;
    if (auto h = group_index_.find(*normalized); h != group_index_.end()) target.group = h->second;
    return target;
  };
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
    group.member_users.reserve(group.member_users.size() + members_[g].size());
    for (std::uint32_t id : members_[g]) {
      const Target& target = resolve(id);
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
    std::vector<std::uint32_t>().swap(members_[g]);
    // One member written twice (or in two spellings) is one member.
    for (std::vector<std::uint32_t>* list : {&group.member_users, &group.member_groups}) {
      std::sort(list->begin(), list->end());
      list->erase(std::unique(list->begin(), list->end()), list->end());
      list->shrink_to_fit();
    }
  }
  members_ = {};
  normalized_members_ = {};
  written = {};
  value_ids_ = {};
  values_ = {};
  user_index_ = {};
  group_index_ = {};
  if (counts != nullptr) *counts = tally;
  return std::move(snapshot_);
}

}  // namespace idsync::ldap::internal
