// The snapshot export. It holds the source's shared lock over every entry
// (a write waits for it to publish), so it allocates little per entry.
#include "snapshot.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace idsync::scim::internal {
namespace {

// A user entry as the mapping reads it.
mapping::DirectoryUser UserOf(const Entry& e) {
  mapping::DirectoryUser u;
  u.id = e.id;
  u.email = e.email;
  u.name = e.display_name;
  u.disabled = e.disabled;
  return u;
}

}  // namespace

mapping::SourceSnapshot ExportSnapshot(const SourceState& s) {
  mapping::SourceSnapshot snap;
  snap.source = s.name;
  snap.nested = true;
  std::shared_lock lock(s.mu);
  snap.users.reserve(s.users.order.size());
  for (const Entry* e : s.users.order) snap.users.push_back(UserOf(*e));
  if (s.groups.order.empty()) return snap;
  // id -> index, as one sorted array each (no allocation per entry: this
  // runs over every user of the source).
  using IdIndex = std::vector<std::pair<std::string_view, std::uint32_t>>;
  auto build = [](const std::vector<const Entry*>& order) {
    IdIndex index;
    index.reserve(order.size());
    for (const Entry* e : order) {
      index.emplace_back(e->id, static_cast<std::uint32_t>(index.size()));
    }
    std::sort(index.begin(), index.end());
    return index;
  };
  auto find = [](const IdIndex& index, std::string_view id) -> std::optional<std::uint32_t> {
    auto it = std::lower_bound(index.begin(), index.end(), id,
                               [](const auto& p, std::string_view v) { return p.first < v; });
    if (it == index.end() || it->first != id) return std::nullopt;
    return it->second;
  };
  const IdIndex user_index = build(s.users.order);
  const IdIndex group_index = build(s.groups.order);
  snap.groups.reserve(s.groups.order.size());
  for (const Entry* e : s.groups.order) {
    mapping::DirectoryGroup g;
    g.id = e->id;
    g.name = e->display_name;
    for (const std::string& m : e->member_ids) {
      if (std::optional<std::uint32_t> u = find(user_index, m)) {
        g.member_users.push_back(*u);
      } else if (std::optional<std::uint32_t> gi = find(group_index, m)) {
        g.member_groups.push_back(*gi);
      }
    }
    // A member listed twice counts once.
    for (std::vector<std::uint32_t>* v : {&g.member_users, &g.member_groups}) {
      std::vector<std::uint32_t> seen = *v;
      std::sort(seen.begin(), seen.end());
      if (std::adjacent_find(seen.begin(), seen.end()) == seen.end()) continue;
      std::vector<std::uint32_t> unique;
      for (std::uint32_t x : *v) {
        if (std::find(unique.begin(), unique.end(), x) == unique.end()) unique.push_back(x);
      }
      *v = std::move(unique);
    }
    snap.groups.push_back(std::move(g));
  }
  return snap;
}

mapping::SourceSnapshot ExportSnapshotOf(const SourceState& s,
                                         const std::vector<std::string>& emails) {
  mapping::SourceSnapshot snap;
  snap.source = s.name;
  snap.nested = true;
  std::shared_lock lock(s.mu);
  // The users with those addresses, in list order.
  std::vector<const Entry*> found;
  for (const std::string& email : emails) {
    auto [lo, hi] = s.users.by_email.equal_range(std::string_view(email));
    for (auto it = lo; it != hi; ++it) found.push_back(it->second);
  }
  std::sort(found.begin(), found.end(), OrderBefore);
  found.erase(std::unique(found.begin(), found.end()), found.end());
  // id -> index in snap.users.
  std::unordered_map<std::string_view, std::uint32_t> users;
  for (const Entry* e : found) {
    users.emplace(e->id, static_cast<std::uint32_t>(snap.users.size()));
    snap.users.push_back(UserOf(*e));
  }
  if (users.empty() || s.groups.order.empty()) return snap;

  // The groups holding a kept user, then level by level the groups holding
  // a group found on the level before.
  std::vector<bool> kept(s.groups.order.size(), false);
  std::unordered_set<std::string_view> level;
  for (std::size_t g = 0; g < s.groups.order.size(); ++g) {
    for (const std::string& m : s.groups.order[g]->member_ids) {
      if (users.count(m) != 0) {
        kept[g] = true;
        level.insert(s.groups.order[g]->id);
        break;
      }
    }
  }
  while (!level.empty()) {
    std::unordered_set<std::string_view> next;
    for (std::size_t g = 0; g < s.groups.order.size(); ++g) {
      if (kept[g]) continue;
      for (const std::string& m : s.groups.order[g]->member_ids) {
        if (level.count(m) != 0) {
          kept[g] = true;
          next.insert(s.groups.order[g]->id);
          break;
        }
      }
    }
    level = std::move(next);
  }

  std::unordered_map<std::string_view, std::uint32_t> groups;
  for (std::size_t g = 0; g < s.groups.order.size(); ++g) {
    if (kept[g]) groups.emplace(s.groups.order[g]->id, static_cast<std::uint32_t>(groups.size()));
  }
  for (std::size_t g = 0; g < s.groups.order.size(); ++g) {
    if (!kept[g]) continue;
    const Entry* e = s.groups.order[g];
    mapping::DirectoryGroup group;
    group.id = e->id;
    group.name = e->display_name;
    // A member listed twice counts once.
    for (const std::string& m : e->member_ids) {
      if (auto u = users.find(m); u != users.end()) {
        if (std::find(group.member_users.begin(), group.member_users.end(), u->second) ==
            group.member_users.end()) {
          group.member_users.push_back(u->second);
        }
      } else if (auto sub = groups.find(m); sub != groups.end()) {
        if (std::find(group.member_groups.begin(), group.member_groups.end(), sub->second) ==
            group.member_groups.end()) {
          group.member_groups.push_back(sub->second);
        }
      }
    }
    snap.groups.push_back(std::move(group));
  }
  return snap;
}

}  // namespace idsync::scim::internal
