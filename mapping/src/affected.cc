#include "idsync/mapping/affected.h"

#include <algorithm>
#include <iterator>
#include <set>
#include <unordered_set>

#include "idsync/base/ascii.h"

namespace idsync::mapping {
namespace {

// The keys of the users `group` reaches in `view`, sorted and unique; empty
// when the view has no such group.
std::vector<std::string_view> Reach(const MembershipView& view, std::string_view group) {
  std::vector<std::string_view> users;
  if (!view.Group(group)) return users;
  std::vector<std::string_view> subgroups;
  std::unordered_set<std::string_view> seen{group};
  std::vector<std::string_view> pending{group};
  while (!pending.empty()) {
    const std::string_view next = pending.back();
    pending.pop_back();
    subgroups.clear();
    view.Members(next, &users, &subgroups);
    for (std::string_view sub : subgroups) {
      if (seen.insert(sub).second) pending.push_back(sub);
    }
  }
  std::sort(users.begin(), users.end());
  users.erase(std::unique(users.begin(), users.end()), users.end());
  return users;
}

bool SameIdentity(const GroupIdentity& a, const GroupIdentity& b) {
  return a.id == b.id && a.dn == b.dn && a.name == b.name;
}

}  // namespace

std::vector<std::string> AffectedEmails(const TouchedEntries& touched, const MembershipView& before,
                                        const MembershipView& after) {
  std::set<std::string> out;
  auto add_user = [&](std::string_view key) {
    for (const MembershipView* view : {&before, &after}) {
      const std::string_view email = view->Email(key);
      if (!email.empty()) out.insert(base::AsciiLower(email));
    }
  };
  for (std::string_view key : touched.users) add_user(key);

  std::vector<std::string_view> affected;
  for (std::string_view key : touched.groups) {
    const std::optional<GroupIdentity> was_group = before.Group(key);
    const std::optional<GroupIdentity> is_group = after.Group(key);
    const std::vector<std::string_view> was = Reach(before, key);
    const std::vector<std::string_view> is = Reach(after, key);
    affected.clear();
    if (was_group && is_group && SameIdentity(*was_group, *is_group)) {
      // The same group to the rules: only who joined or left.
      std::set_symmetric_difference(was.begin(), was.end(), is.begin(), is.end(),
                                    std::back_inserter(affected));
    } else {
      // Created, removed, or another group to the rules: everyone in it.
      std::set_union(was.begin(), was.end(), is.begin(), is.end(), std::back_inserter(affected));
    }
    for (std::string_view user : affected) add_user(user);
  }
  return {out.begin(), out.end()};
}

}  // namespace idsync::mapping
