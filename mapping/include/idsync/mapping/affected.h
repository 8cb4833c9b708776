// Whom a change to a source affects: the people whose access may differ after
// it, so that a partial run reconciles just them. One rule for every source
// that reports its changes as they happen (SCIM writes, LDAP change feeds):
//
// - a user added, modified or removed affects that user, by its address
//   before and after the change;
// - a group added or removed, or whose id, DN or name changed (rules match
//   groups by these, so to the rules it became another group), affects every
//   user it reaches, before and after;
// - any other change to a group (its membership) affects the users it
//   reaches before or after but not both: those who joined or left.
//
// A group reaches its member users and, through the member groups the view
// reports (a source that nests groups reports them), theirs; cycles end.
// Groups above a changed group are not looked at: they gain or lose a user
// only through it, and that user is counted with it.
//
// Pure: reads the two views and nothing else. Thread-safe as far as the
// views are.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace idsync::mapping {

// What rules match a group by. A group whose identity differs before and
// after a change is, to the rules, another group.
struct GroupIdentity {
  std::string_view id;
  std::string_view dn;  // "" where the source has none (SCIM)
  std::string_view name;
};

// A source as it was just before a change, or as it is just after it, as
// far as AffectedEmails reads it. Entries are named by keys that stay the
// same across the change (entryUUID or objectGUID on LDAP, the id on SCIM).
// The string_views a view returns stay valid while the view does.
class MembershipView {
 public:
  virtual ~MembershipView() = default;
  // The user's address as read; "" when it has none or there is no such user.
  virtual std::string_view Email(std::string_view user_key) const = 0;
  // The group's identity; nullopt when there is no such group.
  virtual std::optional<GroupIdentity> Group(std::string_view group_key) const = 0;
  // Appends the keys of the group's direct members that name an entry of
  // the view: users to `users`, groups to `groups` (none when the source
  // does not nest groups). Only called for a group Group() knows.
  virtual void Members(std::string_view group_key, std::vector<std::string_view>* users,
                       std::vector<std::string_view>* groups) const = 0;
};

// The keys of the entries a change wrote: added, modified, renamed or
// removed. A key listed twice counts once.
struct TouchedEntries {
  std::vector<std::string_view> users;
  std::vector<std::string_view> groups;
};

// The addresses of everyone `touched` affects (see the file comment),
// compared between `before` and `after`: lower-cased (ASCII), sorted,
// unique; users without an address are left out. An address is taken from
// both views, so a user whose address changed is named by both.
std::vector<std::string> AffectedEmails(const TouchedEntries& touched, const MembershipView& before,
                                        const MembershipView& after);

}  // namespace idsync::mapping
