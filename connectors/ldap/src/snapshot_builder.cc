#include "snapshot_builder.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <utility>

#include "idsync/mapping/dn.h"

namespace idsync::ldap::internal {

std::uint64_t TextIndex::Hash(std::string_view text) { return std::hash<std::string_view>{}(text); }

std::string_view TextIndex::TextAt(std::uint64_t offset) const {
  std::uint32_t length = 0;
  std::memcpy(&length, texts_.data() + offset, sizeof length);
  return std::string_view(texts_.data() + offset + sizeof length, length);
}

std::uint32_t TextIndex::Find(std::string_view text) const {
  if (slots_.empty()) return kNone;
  const std::uint64_t hash = Hash(text);
  const auto tag = static_cast<std::uint32_t>(hash >> 32);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& slot = slots_[i];
    if (slot.key == 0) return kNone;
    if (slot.tag == tag && TextAt(slot.offset) == text) return slot.key - 1;
  }
}

std::uint32_t TextIndex::Insert(std::string_view text, std::uint32_t value, bool* added) {
  Reserve(1);
  return InsertHashed(text, Hash(text), value, added);
}

std::uint32_t TextIndex::InsertHashed(std::string_view text, std::uint64_t hash,
                                      std::uint32_t value, bool* added) {
  const auto tag = static_cast<std::uint32_t>(hash >> 32);
  const std::size_t mask = slots_.size() - 1;
  std::size_t i = hash & mask;
  for (;; i = (i + 1) & mask) {
    const Slot& slot = slots_[i];
    if (slot.key == 0) break;
    if (slot.tag == tag && TextAt(slot.offset) == text) {
      *added = false;
      return slot.key - 1;
    }
  }
  const auto key = static_cast<std::uint32_t>(entries_.size());
  const std::uint64_t offset = texts_.size();
  const auto length = static_cast<std::uint32_t>(text.size());
  const char* length_bytes = reinterpret_cast<const char*>(&length);
  texts_.insert(texts_.end(), length_bytes, length_bytes + sizeof length);
  texts_.insert(texts_.end(), text.begin(), text.end());
  entries_.push_back(Entry{offset, value});
  slots_[i] = Slot{tag, key + 1, offset};
  *added = true;
  return key;
}

void TextIndex::InsertAll(const std::string_view* texts, std::size_t count, std::uint32_t* keys) {
  Reserve(count);
  // A lookup misses the cache twice in a large table, on its slot and on
  // the text the slot points at. Both are fetched ahead: the slot kAhead
  // texts before the lookup, the text half-way.
  constexpr std::size_t kAhead = 8;
  constexpr std::size_t kRing = 16;  // > kAhead, a power of two
  std::uint64_t hashes[kRing];
  const std::size_t mask = slots_.size() - 1;
  bool added = false;
  for (std::size_t i = 0; i < count + kAhead; ++i) {
    if (i < count) {
      hashes[i % kRing] = Hash(texts[i]);
      __builtin_prefetch(&slots_[hashes[i % kRing] & mask]);
    }
    if (i >= kAhead / 2 && i - kAhead / 2 < count) {
      const Slot& slot = slots_[hashes[(i - kAhead / 2) % kRing] & mask];
      if (slot.key != 0) __builtin_prefetch(texts_.data() + slot.offset);
    }
    if (i >= kAhead) {
      const std::size_t j = i - kAhead;
      keys[j] = InsertHashed(texts[j], hashes[j % kRing], 0, &added);
    }
  }
}

void TextIndex::Reserve(std::size_t more) {
  // Kept at most half full: probes stay short.
  std::size_t size = slots_.empty() ? 64 : slots_.size();
  while ((entries_.size() + more) * 2 > size) size *= 2;
  if (size == slots_.size()) return;
  std::vector<Slot> slots(size);
  const std::size_t mask = size - 1;
  for (std::uint32_t key = 0; key < entries_.size(); ++key) {
    const std::uint64_t offset = entries_[key].offset;
    const std::uint64_t hash = Hash(TextAt(offset));
    std::size_t i = hash & mask;
    while (slots[i].key != 0) i = (i + 1) & mask;
    slots[i] = Slot{static_cast<std::uint32_t>(hash >> 32), key + 1, offset};
  }
  slots_ = std::move(slots);
}

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

std::uint32_t SnapshotBuilder::Intern(std::string_view written, const TextIndex* index,
                                      std::uint32_t key) {
  bool added = false;
  const std::uint32_t id = value_ids_.Insert(written, 0, &added);
  if (added) {
    values_.push_back(Value{index, key});
  } else if (values_[id].index == nullptr) {
    values_[id] = Value{index, key};
  }
  return id;
}

Status SnapshotBuilder::AddUser(std::string dn, std::string id, std::string email,
                                std::string name) {
  ASSIGN_OR_RETURN(std::string normalized, Normalize("user", dn));
  bool inserted = false;
  const std::uint32_t key =
      user_index_.Insert(normalized, static_cast<std::uint32_t>(snapshot_.users.size()), &inserted);
  if (!inserted) {
    return InternalError("source '" + snapshot_.source + "': the server returned the user '" + dn +
                         "' twice");
  }
  // Member values name users the way the server wrote their DNs, mostly:
  // knowing the normalized form of that spelling saves parsing it again.
  Intern(dn, &user_index_, key);
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
  const std::uint32_t key = user_index_.Find(normalized);
  if (key == TextIndex::kNone) return false;
  mapping::DirectoryUser& user = snapshot_.users[user_index_.Value(key)];
  if (!user.disabled) ++disabled_;
  user.disabled = true;
  return true;
}

Result<std::uint32_t> SnapshotBuilder::AddGroup(std::string dn, std::string id, std::string name) {
  ASSIGN_OR_RETURN(std::string normalized, Normalize("group", dn));
  auto index = static_cast<std::uint32_t>(snapshot_.groups.size());
  bool inserted = false;
  const std::uint32_t key = group_index_.Insert(normalized, index, &inserted);
  if (!inserted) {
    return InternalError("source '" + snapshot_.source + "': the server returned the group '" + dn +
                         "' twice");
  }
  Intern(dn, &group_index_, key);
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
  bool inserted = false;
  user_index_.Insert(normalized_dn, static_cast<std::uint32_t>(snapshot_.users.size()), &inserted);
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
  bool inserted = false;
  group_index_.Insert(normalized_dn, index, &inserted);
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
  for (const std::string& value : values) list.push_back(Intern(value, nullptr, 0));
}

void SnapshotBuilder::AddMemberIds(std::uint32_t group, std::vector<std::uint32_t> ids) {
  std::vector<std::uint32_t>& list = members_[group];
  if (list.empty()) {
    list = std::move(ids);
  } else {
    list.insert(list.end(), ids.begin(), ids.end());
  }
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
  const auto lookup = [&](std::string_view normalized, Target& target) {
    if (std::uint32_t u = user_index_.Find(normalized); u != TextIndex::kNone) {
      target.user = user_index_.Value(u);
    }
    if (std::uint32_t h = group_index_.Find(normalized); h != TextIndex::kNone) {
      target.group = group_index_.Value(h);
    }
  };
  const auto resolve = [&](std::uint32_t id) -> const Target& {
    Target& target = targets[id];
    if (target.known) return target;
    target.known = true;
    const Value& value = values_[id];
    if (value.index != nullptr) {
      lookup(value.index->Text(value.key), target);
      return target;
    }
    Result<std::string> parsed = mapping::NormalizeDn(value_ids_.Text(id));
    if (!parsed.ok()) {
      target.invalid = true;
      return target;
    }
    lookup(*parsed, target);
    return target;
  };
  for (std::size_t g = 0; g < snapshot_.groups.size(); ++g) {
    mapping::DirectoryGroup& group = snapshot_.groups[g];
    if (const std::vector<std::string>* normalized = normalized_members_[g]) {
      for (const std::string& value : *normalized) {
        const std::uint32_t u = user_index_.Find(value);
        const std::uint32_t h = group_index_.Find(value);
        if (u == TextIndex::kNone && h == TextIndex::kNone) ++tally.unresolved_members;
        if (u != TextIndex::kNone) group.member_users.push_back(user_index_.Value(u));
        if (h != TextIndex::kNone) group.member_groups.push_back(group_index_.Value(h));
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
  value_ids_ = {};
  values_ = {};
  user_index_ = {};
  group_index_ = {};
  if (counts != nullptr) *counts = tally;
  return std::move(snapshot_);
}

}  // namespace idsync::ldap::internal
