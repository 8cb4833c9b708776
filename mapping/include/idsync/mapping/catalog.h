// The permission model: levels, the catalog of areas and items, permission
// specs as users write them (area or item keys), their expansion to one level
// per catalog item, the compact form sent to the account, and presets.
//
// All types are immutable values after construction and safe to share between
// threads for reading.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "idsync/base/status.h"

namespace idsync::mapping {

// Permission levels, ordered: kNone < kRead < kEdit.
enum class Level : std::uint8_t { kNone = 0, kRead = 1, kEdit = 2 };

// "none", "read" or "edit".
std::string_view LevelName(Level level);
// Parses "none" | "read" | "edit" (exact, lower case); nullopt otherwise.
std::optional<Level> ParseLevel(std::string_view text);

struct CatalogItem {
  std::string key;    // "knowledge"
  std::string label;  // "Knowledge"
};

struct CatalogArea {
  std::string key;    // "build"
  std::string label;  // "Build"
  std::vector<CatalogItem> items;
};

// One level per catalog item, indexed like Catalog::item_keys().
using ItemLevels = std::vector<Level>;

// A permission map as written in YAML or stored by the account: keys are an
// area ("build") or an item ("build.knowledge"). Order is not significant: an
// item key always wins over its area key.
using PermissionSpec = std::map<std::string, Level>;

// The areas and items of an account. Items of one area are contiguous, in
// catalog order.
class Catalog {
 public:
  // The catalog the product documents today (account-api.md).
  static const Catalog& Builtin();

  // Builds a catalog. kInvalidArgument on an empty or duplicate area or item
  // key, or a key containing '.'.
  static Result<Catalog> Create(std::vector<CatalogArea> areas);

  const std::vector<CatalogArea>& areas() const { return areas_; }

  // "area.item" for every item, in catalog order.
  const std::vector<std::string>& item_keys() const { return item_keys_; }
  std::size_t item_count() const { return item_keys_.size(); }

  // The half-open range of item indices a key covers: one item for
  // "area.item", all of the area's items for "area". nullopt when the key is
  // not in the catalog.
  struct Range {
    std::size_t begin = 0;
    std::size_t end = 0;
  };
  std::optional<Range> Resolve(std::string_view key) const;

  // Expands a spec to one level per item: area keys first, then item keys.
  // kInvalidArgument naming the first key not in the catalog.
  Result<ItemLevels> Expand(const PermissionSpec& spec) const;

  // Like Expand, but keys not in the catalog are skipped (used for what the
  // account stores, which may predate a catalog change).
  ItemLevels ExpandLenient(const PermissionSpec& spec) const;
  // The same for keys held elsewhere (a parser's buffers); a key given twice
  // takes the last level.
  ItemLevels ExpandLenientKeys(const std::vector<std::pair<std::string_view, Level>>& spec) const;

  // The compact form sent to the account: an area key where all its items
  // share one level, else item keys; levels of kNone are left out.
  PermissionSpec Compact(const ItemLevels& levels) const;

  // Every item at `level`.
  ItemLevels Uniform(Level level) const { return ItemLevels(item_count(), level); }

 private:
  std::vector<CatalogArea> areas_;
  std::vector<std::string> item_keys_;
  // Searched by string_view, without a temporary string.
  struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view key) const noexcept {
      return std::hash<std::string_view>{}(key);
    }
  };
  std::unordered_map<std::string, Range, KeyHash, std::equal_to<>> ranges_;
};

// A named permission spec.
struct Preset {
  std::string name;
  PermissionSpec permissions;
};

// The three presets the product documents, in catalog terms:
// content-editor, qa-analyst, voice-specialist.
const std::vector<Preset>& BuiltinPresets();

// The presets a configuration can name: the built-in ones plus custom ones,
// each expanded against one catalog.
class PresetBook {
 public:
  // kInvalidArgument when a custom preset reuses a built-in name, repeats a
  // name, or names a key not in `catalog`.
  static Result<PresetBook> Create(const Catalog& catalog, const std::vector<Preset>& custom);

  // The expanded levels of a preset, or nullptr when no preset has that name.
  const ItemLevels* Find(std::string_view name) const;

  // Every preset name, sorted.
  std::vector<std::string> Names() const;

 private:
  std::map<std::string, ItemLevels, std::less<>> presets_;
};

}  // namespace idsync::mapping
