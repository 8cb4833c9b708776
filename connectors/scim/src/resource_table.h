// The resources of each SCIM source in memory. An Entry is one version of a
// resource with the fields the service derives from its body; a Table holds
// the entries of one type in list order, with the indexes the filters
// identity providers send are answered from; a SourceState is one source's
// two tables, its PATCH dialect and its locks.
//
// Locking: each source has a writer mutex, held by a write from the moment it
// looks at the state it changes until it has published (so writes to one
// source are serialized and commit against a stable state); parsing and
// checking a body come before it, and a PATCH is applied to a copy of the
// version it read (under the shared lock) before taking it, then checks
// that the version is still the latest. A shared_mutex guards the tables:
// readers hold it shared and a writer holds it exclusively only for the
// moment it publishes an already persisted change. Entries are
// never modified in place: a write builds a new Entry and swaps it in, so a
// reader holding the shared lock sees either the old or the new state.
//
// Internal to connectors/scim.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/scim/filter.h"
#include "idsync/scim/json.h"
#include "idsync/scim/patch.h"
#include "idsync/scim/resource.h"
#include "idsync/scim/service.h"

namespace idsync::scim::internal {

struct Entry {
  std::string id;
  std::int64_t created_ms = 0;
  std::int64_t version = 0;
  Json body;                 // the whole resource as answered, meta included
  std::string key_lower;     // users: lower-cased userName; groups: lower-cased displayName
  std::string external_id;   // "" when none
  std::string email;         // users: the address the mapping uses, as stored ("" if none)
  std::string display_name;  // users: the name the mapping uses; groups: displayName
  bool disabled = false;     // users: active is false
  std::vector<std::string> member_ids;  // groups: members[].value
};

// The list order: by creation time, then id.
bool OrderBefore(const Entry* a, const Entry* b);

// Fills the derived fields of `e` (all but id, created_ms, version) from its
// body.
void Derive(Entry& e, ResourceType type);

using Index = std::unordered_multimap<std::string, const Entry*>;

// Hashes std::string keys so that a std::string_view finds them too.
struct KeyHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view key) const { return std::hash<std::string_view>()(key); }
};

// Hashes and compares text with ASCII letters folded to lower case.
struct AsciiFoldHash {
  std::size_t operator()(std::string_view text) const;
};
struct AsciiFoldEqual {
  bool operator()(std::string_view a, std::string_view b) const;
};
// Users by the address the mapping uses, any case; keys view the entry's
// own `email`, which lives as long as the entry is indexed.
using EmailIndex =
    std::unordered_multimap<std::string_view, const Entry*, AsciiFoldHash, AsciiFoldEqual>;

// The resources of one type in one source.
struct Table {
  std::unordered_map<std::string, std::unique_ptr<Entry>, KeyHash, std::equal_to<>> by_id;
  std::vector<const Entry*> order;  // by (created_ms, id): the list order
  Index by_key;                     // lower-cased userName / displayName
  Index by_external_id;
  EmailIndex by_email;  // users with an address

  // The entry with `id`, or null.
  const Entry* Find(std::string_view id) const {
    auto it = by_id.find(id);
    return it == by_id.end() ? nullptr : it->second.get();
  }

  // Adds `e` (whose id the table does not hold) to the map, the list order
  // and the indexes.
  void Insert(std::unique_ptr<Entry> e);

  // Removes and returns the entry with `id` (which must exist).
  std::unique_ptr<Entry> Remove(const std::string& id);
};

struct SourceState {
  std::string name;
  PatchOptions patch;            // the source's PATCH dialect
  std::mutex write_mu;           // serializes writers
  mutable std::shared_mutex mu;  // guards the tables (exclusive only to publish)
  Table users;
  Table groups;
  // Resources whose write was published but did not land (its commit
  // failed) and that could not yet be read back from the persistence;
  // guarded by write_mu. The next write puts them back as stored first.
  std::set<std::pair<ResourceType, std::string>> unsettled;

  Table& Of(ResourceType t) { return t == ResourceType::kUser ? users : groups; }
  const Table& Of(ResourceType t) const { return t == ResourceType::kUser ? users : groups; }
};

// The candidates in `t` an indexed equality filter (id, externalId, a
// User's userName, a Group's displayName) names, in list order, still to be
// matched against the filter; nullopt when the filter has no index here.
std::optional<std::vector<const Entry*>> IndexLookup(const Table& t, ResourceType type,
                                                     const Filter& filter);

// Adds a resource the persistence port kept to `s` (at start-up, before
// anyone else sees `s`). kDataLoss naming the resource when it cannot be
// read back: an unknown type, not a JSON object (nested at most
// `max_json_depth`), no id or another one, no userName/displayName, an id
// the source already holds, or a userName another user has.
Status LoadStored(SourceState& s, const StoredResource& r, int max_json_depth);

// The entry a stored resource of source `source` reads back as, and its
// type; kDataLoss as for LoadStored, but for the checks against the other
// resources of the source.
Result<std::unique_ptr<Entry>> ReadStored(const std::string& source, const StoredResource& r,
                                          int max_json_depth, ResourceType* type);

}  // namespace idsync::scim::internal
