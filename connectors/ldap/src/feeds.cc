// What every LDAP change feed shares (~910 lines): the EntryCache (the
// feed's copy of the source: patching, snapshots, its own serialization for
// restarts) and the polling feed built on it, plus reading entries into the
// cache. The three feed kinds (feed_syncrepl.cc, feed_usn.cc,
// feed_dirsync.cc) are in their own files; these parts are used by all three.

#include "feeds.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <utility>

#include "idsync/mapping/affected.h"
#include "idsync/mapping/dn.h"

#include "ldap_util.h"
#include "snapshot_builder.h"

namespace idsync::ldap::internal {
namespace {

constexpr std::string_view kStateMagic = "idsync-ldap-feed 2\n";

void PutToken(std::string* out, std::string_view value) {
  // No temporary string for the length: a full save writes millions.
  char digits[24];
  auto [end, error] = std::to_chars(digits, digits + sizeof(digits), value.size());
  (void)error;  // 24 digits hold any size_t
  out->append(digits, end);
  out->push_back(':');
  out->append(value);
}

// What PutEntry writes, give or take the length prefixes.
std::size_t EntrySize(const CachedEntry& e) {
  std::size_t size = 64 + e.key.size() + e.id.size() + e.dn.size() + e.normalized_dn.size() +
                     e.email.size() + e.name.size();
  for (const std::string& member : e.members) size += member.size() + 8;
  return size;
}

// Reads one "<length>:<bytes>" token from the front of `*text`.
bool TakeToken(std::string_view* text, std::string* out) {
  std::size_t colon = text->find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::size_t length = 0;
  auto [end, error] = std::from_chars(text->data(), text->data() + colon, length);
  if (error != std::errc() || end != text->data() + colon) return false;
  if (text->size() - colon - 1 < length) return false;
  out->assign(text->substr(colon + 1, length));
  text->remove_prefix(colon + 1 + length);
  return true;
}

bool TakeNumber(std::string_view* text, std::size_t* out) {
  std::string token;
  if (!TakeToken(text, &token)) return false;
  auto [end, error] = std::from_chars(token.data(), token.data() + token.size(), *out);
  return error == std::errc() && end == token.data() + token.size();
}

std::string Normalized(std::string_view dn) {
  Result<std::string> normalized = mapping::NormalizeDn(dn);
  return normalized.ok() ? std::move(normalized).value() : std::string();
}

}  // namespace

EntryCache::EntryCache(const LdapConfig& source)
    : source_(source.name), nested_(source.groups.nested), max_depth_(source.groups.max_depth) {}

void EntryCache::Begin() {
  in_batch_ = true;
  changed_ = false;
  touched_.clear();
  users_before_.clear();
  groups_before_.clear();
  cleared_ = false;
}

void EntryCache::Touch(CachedEntry::Kind kind, const std::string& key) {
  dirty_.emplace(static_cast<int>(kind), key);
  if (!in_batch_) return;
  if (!touched_.emplace(static_cast<int>(kind), key).second) return;
  if (kind == CachedEntry::Kind::kUser) {
    auto it = users_.find(key);
    users_before_[key] = it != users_.end() ? it->second.email : std::string();
    return;
  }
  // Closures are compared in Commit, once: a group touched now may reach
  // groups touched later, whose old member values are kept then.
  GroupBefore& before = groups_before_[key];
  auto it = groups_.find(key);
  if (it == groups_.end()) return;
  before.existed = true;
  before.id = it->second.id;
  before.dn = it->second.dn;
  before.name = it->second.name;
  before.normalized_dn = it->second.normalized_dn;
  before.members = it->second.members;
}

const std::string& EntryCache::NormalizeMemo(const std::string& dn) {
  auto [it, inserted] = memo_.try_emplace(dn);
  if (inserted) it->second = Normalized(dn);
  return it->second;
}

void EntryCache::Put(CachedEntry entry, bool keep_disabled) {
  // Member values are kept normalized: resolving and comparing them later
  // parses nothing. Values that are not DNs name nobody (the full read
  // counts and drops them too).
  if (!entry.members_normalized) {
    std::vector<std::string> normalized;
    normalized.reserve(entry.members.size());
    for (const std::string& value : entry.members) {
      const std::string& n = NormalizeMemo(value);
      if (!n.empty()) normalized.push_back(n);
    }
    entry.members = std::move(normalized);
    entry.members_normalized = true;
  }
  if (entry.normalized_dn.empty()) entry.normalized_dn = Normalized(entry.dn);
  Map& map = MapOf(entry.kind);
  auto it = map.find(entry.key);
  if (it != map.end()) {
    const CachedEntry& old = it->second;
    if (keep_disabled) entry.disabled = old.disabled;
    if (old.id == entry.id && old.dn == entry.dn && old.email == entry.email &&
        old.name == entry.name && old.disabled == entry.disabled && old.members == entry.members) {
      return;  // the server sent it again unchanged: nobody is touched
    }
    Touch(entry.kind, entry.key);
    if (old.normalized_dn != entry.normalized_dn) {
      Renamed(old.normalized_dn, entry.normalized_dn);
      structural_ = true;
      dn_index_valid_ = false;
    } else {
      patched_.emplace(static_cast<int>(entry.kind), entry.key);
    }
    it->second = std::move(entry);
  } else {
    Touch(entry.kind, entry.key);
    if (entry.kind == CachedEntry::Kind::kUser) {
      added_users_.push_back(entry.key);
    } else {
      structural_ = true;
    }
    std::string key = entry.key;
    map.emplace(std::move(key), std::move(entry));
    dn_index_valid_ = false;
  }
  changed_ = true;
}

void EntryCache::Renamed(const std::string& old_dn, const std::string& new_dn) {
  // Directories keep member values pointing at a renamed entry (Active
  // Directory's linked attributes, OpenLDAP's refint or memberof overlays),
  // but OpenLDAP's overlays rewrite the groups without telling sync
  // clients. The cache does the same rewrite, so that a rename does not
  // look like the person leaving every group.
  if (old_dn.empty() || new_dn.empty()) return;
  for (auto& [key, group] : groups_) {
    bool hit = false;
    for (std::string& member : group.members) {
      if (member != old_dn) continue;
      if (!hit) {
        Touch(CachedEntry::Kind::kGroup, key);
        hit = true;
      }
      member = new_dn;
    }
  }
}

bool EntryCache::Remove(CachedEntry::Kind kind, const std::string& key) {
  Map& map = MapOf(kind);
  auto it = map.find(key);
  if (it == map.end()) return false;
  Touch(kind, key);
  if (kind == CachedEntry::Kind::kUser) {
    removed_users_.emplace_back(key, it->second.normalized_dn);
  } else {
    structural_ = true;
  }
  map.erase(it);
  changed_ = true;
  dn_index_valid_ = false;
  return true;
}

bool EntryCache::RemoveAny(const std::string& key) {
  bool user = Remove(CachedEntry::Kind::kUser, key);
  bool group = Remove(CachedEntry::Kind::kGroup, key);
  return user || group;
}

bool EntryCache::SetDisabled(const std::string& key, bool disabled) {
  auto it = users_.find(key);
  if (it == users_.end()) return false;
  if (it->second.disabled != disabled) {
    Touch(CachedEntry::Kind::kUser, key);
    it->second.disabled = disabled;
    patched_.emplace(static_cast<int>(CachedEntry::Kind::kUser), key);
    changed_ = true;
  }
  return true;
}

void EntryCache::Clear() {
  if (in_batch_) {
    for (const auto& [key, entry] : users_) Touch(CachedEntry::Kind::kUser, key);
    cleared_ = true;
  }
  if (!users_.empty() || !groups_.empty()) changed_ = true;
  users_.clear();
  groups_.clear();
  dn_index_valid_ = false;
  needs_full_ = true;
  structural_ = true;
}

// The cache for mapping::AffectedEmails: as the batch found it (`before`),
// or as it is. Member values name users as the cache is now, either way: a
// user the batch touched is affected itself, whichever way it counts here.
class EntryCache::BatchView final : public mapping::MembershipView {
 public:
  BatchView(const EntryCache& cache, bool before) : cache_(cache), before_(before) {}

  std::string_view Email(std::string_view user_key) const override {
    if (before_) {
      if (auto b = cache_.users_before_.find(user_key); b != cache_.users_before_.end()) {
        return b->second;
      }
    }
    auto u = cache_.users_.find(user_key);
    return u == cache_.users_.end() ? std::string_view() : std::string_view(u->second.email);
  }

  std::optional<mapping::GroupIdentity> Group(std::string_view group_key) const override {
    if (before_) {
      if (auto b = cache_.groups_before_.find(group_key); b != cache_.groups_before_.end()) {
        if (!b->second.existed) return std::nullopt;
        return mapping::GroupIdentity{b->second.id, b->second.dn, b->second.name};
      }
    }
    auto g = cache_.groups_.find(group_key);
    if (g == cache_.groups_.end()) return std::nullopt;
    return mapping::GroupIdentity{g->second.id, g->second.dn, g->second.name};
  }

  void Members(std::string_view group_key, std::vector<std::string_view>* users,
               std::vector<std::string_view>* groups) const override {
    const std::vector<std::string>* values = ValuesOf(group_key);
    if (values == nullptr) return;
    for (const std::string& normalized : *values) {
      if (auto u = cache_.user_by_dn_.find(normalized); u != cache_.user_by_dn_.end()) {
        users->push_back(u->second);
      }
      if (!cache_.nested_) continue;
      if (const std::string* sub = GroupAt(normalized)) groups->push_back(*sub);
    }
  }

 private:
  // A group's member values (normalized); null when there is no such group.
  const std::vector<std::string>* ValuesOf(std::string_view key) const {
    if (before_) {
      if (auto b = cache_.groups_before_.find(key); b != cache_.groups_before_.end()) {
        return b->second.existed ? &b->second.members : nullptr;
      }
    }
    auto g = cache_.groups_.find(key);
    return g == cache_.groups_.end() ? nullptr : &g->second.members;
  }

  // The key of the group a member value names.
  const std::string* GroupAt(const std::string& normalized) const {
    if (before_) {
      if (auto b = cache_.group_before_by_dn_.find(normalized);
          b != cache_.group_before_by_dn_.end()) {
        return &b->second;
      }
    }
    auto g = cache_.group_by_dn_.find(normalized);
    if (g == cache_.group_by_dn_.end()) return nullptr;
    // A touched group named so now had another DN, or none, before.
    if (before_ && cache_.groups_before_.count(g->second) != 0) return nullptr;
    return &g->second;
  }

  const EntryCache& cache_;
  const bool before_;
};

std::vector<std::string> EntryCache::Commit(bool* changed) {
  group_before_by_dn_.clear();
  for (const auto& [key, before] : groups_before_) {
    if (before.existed) group_before_by_dn_.emplace(before.normalized_dn, key);
  }
  IndexDns();
  mapping::TouchedEntries touched;
  for (const auto& [kind, key] : touched_) {
    if (kind == static_cast<int>(CachedEntry::Kind::kUser)) {
      touched.users.push_back(key);
    } else if (!cleared_) {
      // After a Clear() every user before and after is touched itself: the
      // groups add nobody.
      touched.groups.push_back(key);
    }
  }
  std::vector<std::string> out =
      mapping::AffectedEmails(touched, BatchView(*this, true), BatchView(*this, false));
  if (changed != nullptr) *changed = changed_;
  in_batch_ = false;
  touched_.clear();
  users_before_.clear();
  groups_before_.clear();
  group_before_by_dn_.clear();
  cleared_ = false;
  memo_.clear();
  return out;
}

void EntryCache::IndexDns() const {
  if (dn_index_valid_) return;
  user_by_dn_.clear();
  group_by_dn_.clear();
  user_by_dn_.reserve(users_.size());
  group_by_dn_.reserve(groups_.size());
  for (const auto& [key, entry] : users_) user_by_dn_.emplace(entry.normalized_dn, key);
  for (const auto& [key, entry] : groups_) group_by_dn_.emplace(entry.normalized_dn, key);
  dn_index_valid_ = true;
}

const CachedEntry* EntryCache::Find(CachedEntry::Kind kind, const std::string& key) const {
  const Map& map = MapOf(kind);
  auto it = map.find(key);
  return it == map.end() ? nullptr : &it->second;
}

const std::string* EntryCache::UserKeyByDn(const std::string& normalized_dn) const {
  IndexDns();
  auto it = user_by_dn_.find(normalized_dn);
  return it == user_by_dn_.end() ? nullptr : &it->second;
}

std::vector<std::string> EntryCache::Keys(CachedEntry::Kind kind) const {
  std::vector<std::string> out;
  const Map& map = MapOf(kind);
  out.reserve(map.size());
  for (const auto& [key, entry] : map) out.push_back(key);
  return out;
}

Result<std::shared_ptr<const mapping::SourceSnapshot>> EntryCache::Snapshot() const {
  if (built_ && !structural_) {
    if (built_.use_count() > 1) {
      // Someone still holds the last one: it stays as it was.
      built_ = std::make_shared<mapping::SourceSnapshot>(*built_);
    } else {
      // The holders are gone: what they read of it happened before they let
      // go (their release of the count), and is ordered before the patch.
      std::atomic_thread_fence(std::memory_order_acquire);
    }
    Status patched = Patch();
    if (!patched.ok()) {
      // Half patched: the next call rebuilds it.
      built_.reset();
      structural_ = true;
      return patched;
    }
    return std::shared_ptr<const mapping::SourceSnapshot>(built_);
  }
  SnapshotBuilder builder(source_, nested_, max_depth_);
  for (const auto& [key, user] : users_) {
    RETURN_IF_ERROR(builder.AddNormalizedUser(user.dn, user.normalized_dn, user.id, user.email,
                                              user.name, user.disabled));
  }
  for (const auto& [key, group] : groups_) {
    ASSIGN_OR_RETURN(std::uint32_t index, builder.AddNormalizedGroup(group.dn, group.normalized_dn,
                                                                     group.id, group.name));
    builder.AddNormalizedMembers(index, group.members);
  }
  built_ = std::make_shared<mapping::SourceSnapshot>(builder.Finish(nullptr));
  // Where each entry sits in it, for patching the next snapshots.
  user_keys_.clear();
  user_ndns_.clear();
  user_at_.clear();
  group_at_.clear();
  user_at_dn_.clear();
  group_at_dn_.clear();
  user_keys_.reserve(users_.size());
  std::uint32_t i = 0;
  for (const auto& [key, user] : users_) {
    user_keys_.push_back(key);
    user_ndns_.push_back(user.normalized_dn);
    user_at_.emplace(key, i);
    user_at_dn_.emplace(user.normalized_dn, i);
    ++i;
  }
  i = 0;
  for (const auto& [key, group] : groups_) {
    group_at_.emplace(key, i);
    group_at_dn_.emplace(group.normalized_dn, i);
    ++i;
  }
  structural_ = false;
  patched_.clear();
  added_users_.clear();
  removed_users_.clear();
  return std::shared_ptr<const mapping::SourceSnapshot>(built_);
}

// Brings built_ up to date with modified entries, added users and removed
// users without rebuilding it: a change of a few entries costs a pass over
// the groups' member indices, not a resolution of every member value.
Status EntryCache::Patch() const {
  mapping::SourceSnapshot& snap = *built_;
  auto fail = [&] {
    return InternalError("source '" + source_ + "': the change-feed cache lost an entry");
  };
  std::set<std::uint32_t> regroup;  // groups whose member lists changed
  // Removed users: the last user moves into the hole.
  for (const auto& [key, normalized_dn] : removed_users_) {
    auto at = user_at_.find(key);
    if (at == user_at_.end()) continue;  // added and removed in between
    const std::uint32_t hole = at->second;
    const auto last = static_cast<std::uint32_t>(snap.users.size() - 1);
    for (std::uint32_t g = 0; g < snap.groups.size(); ++g) {
      std::vector<std::uint32_t>& members = snap.groups[g].member_users;
      bool touched = false;
      for (std::size_t m = 0; m < members.size();) {
        if (members[m] == hole) {
          members[m] = members.back();
          members.pop_back();
          touched = true;
          continue;
        }
        if (members[m] == last) {
          members[m] = hole;
          touched = true;
        }
        ++m;
      }
      if (touched) regroup.insert(g);
    }
    if (auto by_dn = user_at_dn_.find(normalized_dn);
        by_dn != user_at_dn_.end() && by_dn->second == hole) {
      user_at_dn_.erase(by_dn);
    }
    if (hole != last) {
      snap.users[hole] = std::move(snap.users[last]);
      user_keys_[hole] = std::move(user_keys_[last]);
      user_ndns_[hole] = std::move(user_ndns_[last]);
      user_at_[user_keys_[hole]] = hole;
      if (auto by_dn = user_at_dn_.find(user_ndns_[hole]);
          by_dn != user_at_dn_.end() && by_dn->second == last) {
        by_dn->second = hole;
      }
    }
    snap.users.pop_back();
    user_keys_.pop_back();
    user_ndns_.pop_back();
    user_at_.erase(key);
  }
  // Added users: appended, and picked up by the groups that named them.
  for (const std::string& key : added_users_) {
    auto it = users_.find(key);
    if (it == users_.end() || user_at_.count(key) != 0) continue;
    const CachedEntry& e = it->second;
    if (user_at_dn_.count(e.normalized_dn) != 0) {
      return InternalError("source '" + source_ + "': two users have the DN '" + e.dn + "'");
    }
    const auto index = static_cast<std::uint32_t>(snap.users.size());
    mapping::DirectoryUser user;
    snap.users.push_back(std::move(user));
    user_keys_.push_back(key);
    user_ndns_.push_back(e.normalized_dn);
    user_at_.emplace(key, index);
    user_at_dn_.emplace(e.normalized_dn, index);
    patched_.emplace(static_cast<int>(CachedEntry::Kind::kUser), key);
    std::uint32_t g = 0;
    for (const auto& [group_key, group] : groups_) {
      for (const std::string& member : group.members) {
        if (member == e.normalized_dn) {
          snap.groups[g].member_users.push_back(index);
          regroup.insert(g);
          break;
        }
      }
      ++g;
    }
  }
  // Modified entries: fields copied, a group's members resolved again.
  for (const auto& [kind, key] : patched_) {
    if (kind == static_cast<int>(CachedEntry::Kind::kUser)) {
      auto it = users_.find(key);
      auto at = user_at_.find(key);
      if (it == users_.end()) continue;  // removed since
      if (at == user_at_.end()) return fail();
      const CachedEntry& e = it->second;
      mapping::DirectoryUser& user = snap.users[at->second];
      user.id = e.id.empty() ? e.normalized_dn : e.id;
      user.dn = e.dn;
      user.email = e.email;
      user.name = e.name;
      user.disabled = e.disabled;
      continue;
    }
    auto it = groups_.find(key);
    auto at = group_at_.find(key);
    if (it == groups_.end()) continue;
    if (at == group_at_.end()) return fail();
    const CachedEntry& e = it->second;
    mapping::DirectoryGroup& group = snap.groups[at->second];
    group.id = e.id.empty() ? e.normalized_dn : e.id;
    group.dn = e.dn;
    group.name = e.name;
    group.member_users.clear();
    group.member_groups.clear();
    for (const std::string& member : e.members) {
      if (auto u = user_at_dn_.find(member); u != user_at_dn_.end()) {
        group.member_users.push_back(u->second);
      }
      if (auto h = group_at_dn_.find(member); h != group_at_dn_.end()) {
        group.member_groups.push_back(h->second);
      }
    }
    regroup.insert(at->second);
  }
  for (std::uint32_t g : regroup) {
    for (std::vector<std::uint32_t>* list :
         {&snap.groups[g].member_users, &snap.groups[g].member_groups}) {
      std::sort(list->begin(), list->end());
      list->erase(std::unique(list->begin(), list->end()), list->end());
    }
  }
  patched_.clear();
  added_users_.clear();
  removed_users_.clear();
  return Status::Ok();
}

namespace {

void PutEntry(std::string* out, const CachedEntry& e) {
  PutToken(out, e.kind == CachedEntry::Kind::kUser ? "u" : "g");
  PutToken(out, e.key);
  PutToken(out, e.id);
  PutToken(out, e.dn);
  PutToken(out, e.normalized_dn);
  PutToken(out, e.email);
  PutToken(out, e.name);
  PutToken(out, e.disabled ? "1" : "0");
  PutToken(out, std::to_string(e.members.size()));
  for (const std::string& member : e.members) PutToken(out, member);
}

bool TakeEntry(std::string_view* text, CachedEntry* e) {
  std::string kind;
  std::string disabled;
  std::size_t members = 0;
  if (!TakeToken(text, &kind) || !TakeToken(text, &e->key) || !TakeToken(text, &e->id) ||
      !TakeToken(text, &e->dn) || !TakeToken(text, &e->normalized_dn) ||
      !TakeToken(text, &e->email) || !TakeToken(text, &e->name) || !TakeToken(text, &disabled) ||
      !TakeNumber(text, &members) || members > text->size() || (kind != "u" && kind != "g")) {
    return false;
  }
  e->kind = kind == "u" ? CachedEntry::Kind::kUser : CachedEntry::Kind::kGroup;
  e->disabled = disabled == "1";
  e->members_normalized = true;
  e->members.resize(members);
  for (std::string& member : e->members) {
    if (!TakeToken(text, &member)) return false;
  }
  return true;
}

constexpr std::string_view kJournalMagic = "idsync-ldap-journal 1\n";

}  // namespace

std::string EntryCache::Serialize(const std::string& cookie) const {
  std::string out(kStateMagic);
  // One allocation for the whole directory rather than a doubling series.
  std::size_t size = out.size() + cookie.size() + 64;
  for (const Map* map : {&users_, &groups_}) {
    for (const auto& [key, e] : *map) size += EntrySize(e);
  }
  out.reserve(size);
  PutToken(&out, cookie);
  PutToken(&out, std::to_string(users_.size() + groups_.size()));
  for (const Map* map : {&users_, &groups_}) {
    for (const auto& [key, e] : *map) PutEntry(&out, e);
  }
  return out;
}

Status EntryCache::Parse(std::string_view text, std::string* cookie) {
  auto bad = [&] {
    return InternalError("source '" + source_ + "': the saved change-feed state is damaged");
  };
  if (text.substr(0, kStateMagic.size()) != kStateMagic) return bad();
  text.remove_prefix(kStateMagic.size());
  Map users;
  Map groups;
  std::size_t count = 0;
  if (!TakeToken(&text, cookie) || !TakeNumber(&text, &count)) return bad();
  for (std::size_t i = 0; i < count; ++i) {
    CachedEntry e;
    if (!TakeEntry(&text, &e)) return bad();
    std::string key = e.key;
    (e.kind == CachedEntry::Kind::kUser ? users : groups).emplace(std::move(key), std::move(e));
  }
  if (!text.empty()) return bad();
  users_ = std::move(users);
  groups_ = std::move(groups);
  dn_index_valid_ = false;
  structural_ = true;
  dirty_.clear();
  return Status::Ok();
}

Status EntryCache::Save(mapping::FeedStateStore& state, const std::string& key,
                        const std::string& cookie) {
  const std::string journal_key = key + "/journal";
  const std::size_t total = users_.size() + groups_.size();
  if (!full_saved_ || needs_full_ || dirty_.size() > std::max<std::size_t>(1000, total / 20)) {
    // The journal is emptied first: a crash between the two writes leaves
    // the older full copy with its own cookie, which is consistent.
    RETURN_IF_ERROR(state.Save(journal_key, ""));
    RETURN_IF_ERROR(state.Save(key, Serialize(cookie)));
    full_saved_ = true;
    needs_full_ = false;
    dirty_.clear();
    return Status::Ok();
  }
  // In between, only what changed since the full copy, and the cookie.
  std::string out(kJournalMagic);
  PutToken(&out, cookie);
  PutToken(&out, std::to_string(dirty_.size()));
  for (const auto& [kind, entry_key] : dirty_) {
    const CachedEntry* e = Find(static_cast<CachedEntry::Kind>(kind), entry_key);
    if (e != nullptr) {
      PutToken(&out, "+");
      PutEntry(&out, *e);
    } else {
      PutToken(&out, "-");
      PutToken(&out, kind == static_cast<int>(CachedEntry::Kind::kUser) ? "u" : "g");
      PutToken(&out, entry_key);
    }
  }
  return state.Save(journal_key, out);
}

Result<std::optional<std::string>> EntryCache::Load(mapping::FeedStateStore& state,
                                                    const std::string& key) {
  ASSIGN_OR_RETURN(std::optional<std::string> saved, state.Load(key));
  if (!saved) return std::optional<std::string>();
  std::string cookie;
  if (!Parse(*saved, &cookie).ok()) return std::optional<std::string>();
  ASSIGN_OR_RETURN(std::optional<std::string> journal, state.Load(key + "/journal"));
  full_saved_ = true;
  if (journal && !journal->empty()) {
    std::string_view text = *journal;
    auto bad = [&] {
      users_.clear();
      groups_.clear();
      dn_index_valid_ = false;
      full_saved_ = false;
      return std::optional<std::string>();
    };
    if (text.substr(0, kJournalMagic.size()) != kJournalMagic) return bad();
    text.remove_prefix(kJournalMagic.size());
    std::size_t count = 0;
    if (!TakeToken(&text, &cookie) || !TakeNumber(&text, &count)) return bad();
    for (std::size_t i = 0; i < count; ++i) {
      std::string op;
      if (!TakeToken(&text, &op)) return bad();
      if (op == "+") {
        CachedEntry e;
        if (!TakeEntry(&text, &e)) return bad();
        dirty_.emplace(static_cast<int>(e.kind), e.key);
        std::string entry_key = e.key;
        MapOf(e.kind).insert_or_assign(std::move(entry_key), std::move(e));
      } else if (op == "-") {
        std::string kind;
        std::string entry_key;
        if (!TakeToken(&text, &kind) || !TakeToken(&text, &entry_key)) return bad();
        CachedEntry::Kind k = kind == "u" ? CachedEntry::Kind::kUser : CachedEntry::Kind::kGroup;
        MapOf(k).erase(entry_key);
        dirty_.emplace(static_cast<int>(k), std::move(entry_key));
      } else {
        return bad();
      }
    }
    if (!text.empty()) return bad();
    dn_index_valid_ = false;
    structural_ = true;
  }
  return std::optional<std::string>(std::move(cookie));
}

PollingFeed::PollingFeed(FeedContext context, std::string_view method)
    : context_(std::move(context)),
      source_(*context_.source),
      cache_(source_),
      state_key_(context_.state_key + "/" + std::string(method)) {}

PollingFeed::~PollingFeed() {
  SigpipeGuard guard;
  session_.reset();
  connection_.reset();
}

void PollingFeed::Close() {
  if (failure_.ok() && save_due_) {
    if (Save().ok()) save_due_ = false;
  }
  SigpipeGuard guard;
  session_.reset();
  connection_.reset();
}

void PollingFeed::Interrupt() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    interrupted_ = true;
  }
  wake_.notify_all();
}

Result<std::optional<mapping::SourceChange>> PollingFeed::Next(std::chrono::milliseconds wait) {
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

Result<std::optional<mapping::SourceChange>> PollingFeed::NextOnce(std::chrono::milliseconds wait) {
  // The consumer has what the last poll delivered.
  if (save_due_) {
    RETURN_IF_ERROR(Save());
    save_due_ = false;
  }
  if (!started_) {
    started_ = true;
    return Start();
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
  return Poll();
}

Result<std::optional<mapping::SourceChange>> PollingFeed::Deliver(std::vector<std::string> emails,
                                                                  bool changed, bool full) {
  next_poll_ = SteadyClock::now() + source_.watch_interval;
  if (!changed && !full) return std::optional<mapping::SourceChange>();
  mapping::SourceChange change;
  ASSIGN_OR_RETURN(change.snapshot, cache_.Snapshot());
  change.emails = std::move(emails);
  change.full = full;
  return std::optional<mapping::SourceChange>(std::move(change));
}

Result<std::string> EntryKey(const Session& session, LDAPMessage* entry, const std::string& dn) {
  ASSIGN_OR_RETURN(std::string key,
                   EntryId(session, entry, FlavorIdAttribute(session.source().flavor), dn));
  if (key.empty()) {
    return session.Error(StatusCode::kInternal, "entry '" + dn + "' has no " +
                                                    FlavorIdAttribute(session.source().flavor) +
                                                    " to follow it by");
  }
  return key;
}

Result<CachedEntry> UserEntry(const Session& session, LDAPMessage* entry, std::string key) {
  const LdapConfig& source = session.source();
  CachedEntry out;
  out.kind = CachedEntry::Kind::kUser;
  out.key = std::move(key);
  ASSIGN_OR_RETURN(out.dn, EntryDn(session, entry));
  ASSIGN_OR_RETURN(out.id, UserId(session, entry, out.dn));
  out.email = First(session.ld(), entry, source.users.email);
  out.name = First(session.ld(), entry, source.users.name);
  return out;
}

Result<CachedEntry> GroupEntry(Session& session, LDAPMessage* entry, std::string key) {
  const LdapConfig& source = session.source();
  CachedEntry out;
  out.kind = CachedEntry::Kind::kGroup;
  out.key = std::move(key);
  ASSIGN_OR_RETURN(out.dn, EntryDn(session, entry));
  ASSIGN_OR_RETURN(out.id, EntryId(session, entry, FlavorIdAttribute(source.flavor), out.dn));
  out.name = First(session.ld(), entry, source.groups.name);
  ASSIGN_OR_RETURN(std::vector<std::string> descriptions, Descriptions(session, entry));
  MemberDescription last;
  bool ranged = false;
  for (const std::string& description : descriptions) {
    Result<MemberDescription> kind = ClassifyMemberDescription(description, source.groups.member);
    if (!kind.ok()) return session.Error(StatusCode::kInternal, kind.status().message());
    if (kind->kind == MemberDescription::Kind::kOther) continue;
    std::vector<std::string> values = Values(session.ld(), entry, description);
    out.members.insert(out.members.end(), std::make_move_iterator(values.begin()),
                       std::make_move_iterator(values.end()));
    if (kind->kind == MemberDescription::Kind::kRanged && !kind->last) {
      ranged = true;
      last = *kind;
    }
  }
  // Active Directory's ranged values, fetched to the end as the read does.
  while (ranged && !last.last) {
    const std::string wanted = NextRangeDescription(source.groups.member, last);
    const std::string what = "members of group '" + out.dn + "' (" + wanted + ")";
    bool got = false;
    MemberDescription next;
    RETURN_IF_ERROR(session.Search(
        what, out.dn, LDAP_SCOPE_BASE, "(objectClass=*)", {wanted}, false,
        [&](LDAPMessage* ranged_entry) -> Status {
          ASSIGN_OR_RETURN(std::vector<std::string> names, Descriptions(session, ranged_entry));
          for (const std::string& description : names) {
            Result<MemberDescription> kind =
                ClassifyMemberDescription(description, source.groups.member);
            if (!kind.ok()) return session.Error(StatusCode::kInternal, kind.status().message());
            if (kind->kind == MemberDescription::Kind::kOther) continue;
            if (kind->kind == MemberDescription::Kind::kRanged && kind->low != last.high + 1) {
              return session.Error(StatusCode::kInternal,
                                   what + ": the server sent '" + description + "'");
            }
            std::vector<std::string> values = Values(session.ld(), ranged_entry, description);
            out.members.insert(out.members.end(), std::make_move_iterator(values.begin()),
                               std::make_move_iterator(values.end()));
            got = true;
            next = *kind;
            if (next.kind == MemberDescription::Kind::kPlain) next.last = true;
          }
          return Status::Ok();
        }));
    if (!got) {
      return session.Error(StatusCode::kInternal,
                           what + ": the server returned no further member values");
    }
    last = next;
  }
  return out;
}

Status RefreshDisabled(Session& session, EntryCache& cache, const std::vector<std::string>& keys) {
  const LdapConfig& source = session.source();
  if (source.users.disabled_filter.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Status::Ok();
  }
  if (keys.empty()) return Status::Ok();
  const std::string filter = AndFilter(source.users.filter, source.users.disabled_filter);
  // Few changed users: ask about each; many: one sweep over users.base.
  constexpr std::size_t kPerEntryLimit = 64;
  if (keys.size() <= kPerEntryLimit) {
    for (const std::string& key : keys) {
      const CachedEntry* user = cache.Find(CachedEntry::Kind::kUser, key);
      if (user == nullptr) continue;
      bool matched = false;
      const std::string dn = user->dn;
      RETURN_IF_ERROR(session.Search("disabled check of '" + dn + "'", dn, LDAP_SCOPE_BASE, filter,
                                     {LDAP_NO_ATTRS}, false, [&](LDAPMessage*) {
                                       matched = true;
                                       return Status::Ok();
                                     }));
      cache.SetDisabled(key, matched);
    }
    return Status::Ok();
  }
  std::set<std::string> disabled;
  RETURN_IF_ERROR(session.Search("disabled users search under '" + source.users.base + "'",
                                 source.users.base, LDAP_SCOPE_SUBTREE, filter, {LDAP_NO_ATTRS},
                                 true, [&](LDAPMessage* entry) -> Status {
                                   ASSIGN_OR_RETURN(std::string dn, EntryDn(session, entry));
                                   const std::string* key = cache.UserKeyByDn(Normalized(dn));
                                   if (key != nullptr) disabled.insert(*key);
                                   return Status::Ok();
                                 }));
  for (const std::string& key : keys) cache.SetDisabled(key, disabled.count(key) > 0);
  return Status::Ok();
}

Result<std::optional<std::string>> LoadFeedState(mapping::FeedStateStore& state,
                                                 const std::string& key, EntryCache& cache) {
  return cache.Load(state, key);
}

Status SaveFeedState(mapping::FeedStateStore& state, const std::string& key, EntryCache& cache,
                     const std::string& cookie) {
  return cache.Save(state, key, cookie);
}

}  // namespace idsync::ldap::internal
