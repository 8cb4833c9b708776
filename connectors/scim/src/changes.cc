// Change detection for SCIM writes. A write changes one resource, so the
// source before and after it differ in that resource only: both views read
// the tables as they are and put the written resource's two versions in.
#include "changes.h"

#include <optional>
#include <string_view>

#include "idsync/mapping/affected.h"

namespace idsync::scim::internal {
namespace {

// A source as a write found it or left it, for mapping::AffectedEmails: the
// tables as they are, except that the written resource (`type`, `id`) is
// `entry`, or absent when that is null. Needs the source's writer mutex.
class WriteView final : public mapping::MembershipView {
 public:
  WriteView(const SourceState& s, ResourceType type, std::string_view id, const Entry* entry)
      : s_(s), type_(type), id_(id), entry_(entry) {}

  std::string_view Email(std::string_view user_key) const override {
    const Entry* u = Find(ResourceType::kUser, user_key);
    return u == nullptr ? std::string_view() : std::string_view(u->email);
  }

  std::optional<mapping::GroupIdentity> Group(std::string_view group_key) const override {
    const Entry* g = Find(ResourceType::kGroup, group_key);
    if (g == nullptr) return std::nullopt;
    return mapping::GroupIdentity{g->id, "", g->display_name};
  }

  // Members are ids of users or groups of the source (SCIM nests groups);
  // ids it does not know name nobody.
  void Members(std::string_view group_key, std::vector<std::string_view>* users,
               std::vector<std::string_view>* groups) const override {
    const Entry* g = Find(ResourceType::kGroup, group_key);
    if (g == nullptr) return;
    for (const std::string& id : g->member_ids) {
      if (Find(ResourceType::kUser, id) != nullptr) {
        users->push_back(id);
      } else if (Find(ResourceType::kGroup, id) != nullptr) {
        groups->push_back(id);
      }
    }
  }

 private:
  const Entry* Find(ResourceType type, std::string_view id) const {
    if (type == type_ && id == id_) return entry_;
    return s_.Of(type).Find(id);
  }

  const SourceState& s_;
  const ResourceType type_;
  const std::string_view id_;
  const Entry* const entry_;
};

}  // namespace

std::vector<std::string> ChangedEmails(const SourceState& s, ResourceType type, const Entry* before,
                                       const Entry* after) {
  const std::string& id = before != nullptr ? before->id : after->id;
  mapping::TouchedEntries touched;
  (type == ResourceType::kUser ? touched.users : touched.groups).push_back(id);
  return mapping::AffectedEmails(touched, WriteView(s, type, id, before),
                                 WriteView(s, type, id, after));
}

}  // namespace idsync::scim::internal
