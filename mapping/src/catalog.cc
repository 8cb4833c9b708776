#include "idsync/mapping/catalog.h"

#include <algorithm>
#include <cassert>
#include <set>

namespace idsync::mapping {

std::string_view LevelName(Level level) {
  switch (level) {
    case Level::kNone:
      return "none";
    case Level::kRead:
      return "read";
    case Level::kEdit:
      return "edit";
  }
  return "none";
}

std::optional<Level> ParseLevel(std::string_view text) {
  if (text == "none") return Level::kNone;
  if (text == "read") return Level::kRead;
  if (text == "edit") return Level::kEdit;
  return std::nullopt;
}

const Catalog& Catalog::Builtin() {
  // Built once, on first use; the table is account-api.md's. A function-local
  // static keeps initialization order independent of other translation units.
  static const Catalog* const kBuiltin = [] {
    std::vector<CatalogArea> areas = {
        {"analytics",
         "Analytics",
         {{"smart-analyst", "Smart analyst"},
          {"conversations", "Conversations"},
          {"agent-analysis", "Agent analysis"}}},
        {"build",
         "Build",
         {{"agent", "Agent"},
          {"knowledge", "Knowledge"},
          {"flows", "Flows"},
          {"tools", "Tools"},
          {"variant-management", "Variant management"},
          {"call-handoffs", "Call handoffs"},
          {"sms", "SMS"},
          {"real-time-configuration", "Real-time configuration"},
          {"configuration-builder", "Configuration builder"},
          {"test-suite", "Test suite"}}},
        {"channels", "Channels", {{"voice", "Voice"}, {"chat", "Chat"}, {"widget", "Widget"}}},
        {"configure",
         "Configure",
         {{"general", "General"},
          {"numbers", "Numbers"},
          {"apis", "APIs"},
          {"integrations", "Integrations"},
          {"metrics", "Metrics"},
          {"dashboards", "Dashboards"},
          {"csat", "CSAT"}}},
        {"deployments",
         "Deployments",
         {{"environments", "Environments"}, {"project-history", "Project history"}}},
    };
    Result<Catalog> built = Catalog::Create(std::move(areas));
    assert(built.ok());
    return new Catalog(std::move(built).value());
  }();
  return *kBuiltin;
}

Result<Catalog> Catalog::Create(std::vector<CatalogArea> areas) {
  Catalog catalog;
  std::set<std::string, std::less<>> area_keys;
  for (const CatalogArea& area : areas) {
    if (area.key.empty()) return InvalidArgumentError("catalog: an area has an empty key");
    if (area.key.find('.') != std::string::npos) {
      return InvalidArgumentError("catalog: area key \"" + area.key + "\" contains '.'");
    }
    if (!area_keys.insert(area.key).second) {
      return InvalidArgumentError("catalog: area key \"" + area.key + "\" is repeated");
    }
    Range range;
    range.begin = catalog.item_keys_.size();
    std::set<std::string, std::less<>> item_keys;
    for (const CatalogItem& item : area.items) {
      if (item.key.empty()) {
        return InvalidArgumentError("catalog: an item of area \"" + area.key +
                                    "\" has an empty key");
      }
      if (item.key.find('.') != std::string::npos) {
        return InvalidArgumentError("catalog: item key \"" + area.key + "." + item.key +
                                    "\" contains '.'");
      }
      if (!item_keys.insert(item.key).second) {
        return InvalidArgumentError("catalog: item key \"" + area.key + "." + item.key +
                                    "\" is repeated");
      }
      std::string full = area.key + "." + item.key;
      catalog.ranges_.emplace(full,
                              Range{catalog.item_keys_.size(), catalog.item_keys_.size() + 1});
      catalog.item_keys_.push_back(std::move(full));
    }
    range.end = catalog.item_keys_.size();
    catalog.ranges_.emplace(area.key, range);
  }
  catalog.areas_ = std::move(areas);
  return catalog;
}

std::optional<Catalog::Range> Catalog::Resolve(std::string_view key) const {
  auto it = ranges_.find(key);
  if (it == ranges_.end()) return std::nullopt;
  return it->second;
}

namespace {

// An area key has no '.', an item key has one: that decides the pass in
// which a key is applied, so item keys override their area whatever the
// map's order.
bool IsAreaKey(std::string_view key) { return key.find('.') == std::string_view::npos; }

}  // namespace

Result<ItemLevels> Catalog::Expand(const PermissionSpec& spec) const {
  for (const auto& [key, level] : spec) {
    if (!Resolve(key)) return InvalidArgumentError("unknown permission key \"" + key + "\"");
  }
  return ExpandLenient(spec);
}

namespace {

template <typename Spec>
ItemLevels ExpandKnownKeys(const Catalog& catalog, const Spec& spec) {
  ItemLevels levels = catalog.Uniform(Level::kNone);
  for (int pass = 0; pass < 2; ++pass) {
    const bool want_area = pass == 0;
    for (const auto& [key, level] : spec) {
      if (IsAreaKey(key) != want_area) continue;
      std::optional<Catalog::Range> range = catalog.Resolve(key);
      if (!range) continue;
      std::fill(levels.begin() + range->begin, levels.begin() + range->end, level);
    }
  }
  return levels;
}

}  // namespace

ItemLevels Catalog::ExpandLenient(const PermissionSpec& spec) const {
  return ExpandKnownKeys(*this, spec);
}

ItemLevels Catalog::ExpandLenientKeys(
    const std::vector<std::pair<std::string_view, Level>>& spec) const {
  return ExpandKnownKeys(*this, spec);
}

PermissionSpec Catalog::Compact(const ItemLevels& levels) const {
  PermissionSpec out;
  std::size_t index = 0;
  for (const CatalogArea& area : areas_) {
    const std::size_t begin = index;
    const std::size_t end = begin + area.items.size();
    index = end;
    if (begin == end || end > levels.size()) continue;
    const Level first = levels[begin];
    const bool uniform = std::all_of(levels.begin() + begin, levels.begin() + end,
                                     [&](Level l) { return l == first; });
    if (uniform) {
      if (first != Level::kNone) out.emplace(area.key, first);
      continue;
    }
    for (std::size_t i = begin; i < end; ++i) {
      if (levels[i] != Level::kNone) out.emplace(item_keys_[i], levels[i]);
    }
  }
  return out;
}

const std::vector<Preset>& BuiltinPresets() {
  static const std::vector<Preset>* const kPresets = new std::vector<Preset>{
      {"content-editor",
       {{"analytics", Level::kRead},
        {"build.knowledge", Level::kEdit},
        {"build.tools", Level::kRead},
        {"channels", Level::kRead},
        {"configure", Level::kNone},
        {"deployments", Level::kNone}}},
      {"qa-analyst",
       {{"analytics", Level::kEdit},
        {"build", Level::kRead},
        {"channels", Level::kRead},
        {"configure.dashboards", Level::kEdit},
        {"deployments", Level::kRead}}},
      {"voice-specialist",
       {{"analytics", Level::kRead},
        {"build", Level::kRead},
        {"channels.voice", Level::kEdit},
        {"channels.chat", Level::kNone},
        {"configure", Level::kRead},
        {"deployments", Level::kRead}}},
  };
  return *kPresets;
}

Result<PresetBook> PresetBook::Create(const Catalog& catalog, const std::vector<Preset>& custom) {
  PresetBook book;
  // Built-in presets are expanded leniently: an account whose catalog dropped
  // or merged an item must not make every configuration invalid.
  for (const Preset& preset : BuiltinPresets()) {
    book.presets_.emplace(preset.name, catalog.ExpandLenient(preset.permissions));
  }
  std::set<std::string, std::less<>> builtin_names;
  for (const Preset& preset : BuiltinPresets()) builtin_names.insert(preset.name);
  std::set<std::string, std::less<>> custom_names;
  for (const Preset& preset : custom) {
    if (preset.name.empty()) return InvalidArgumentError("preset: a preset has an empty name");
    if (builtin_names.count(preset.name) != 0) {
      return InvalidArgumentError("preset \"" + preset.name + "\" reuses a built-in preset name");
    }
    if (!custom_names.insert(preset.name).second) {
      return InvalidArgumentError("preset \"" + preset.name + "\" is defined twice");
    }
    for (const auto& [key, level] : preset.permissions) {
      if (!catalog.Resolve(key)) {
        return InvalidArgumentError("preset \"" + preset.name + "\": unknown permission key \"" +
                                    key + "\"");
      }
    }
    book.presets_.emplace(preset.name, catalog.ExpandLenient(preset.permissions));
  }
  return book;
}

const ItemLevels* PresetBook::Find(std::string_view name) const {
  auto it = presets_.find(name);
  return it == presets_.end() ? nullptr : &it->second;
}

std::vector<std::string> PresetBook::Names() const {
  std::vector<std::string> names;
  names.reserve(presets_.size());
  for (const auto& [name, levels] : presets_) names.push_back(name);
  return names;
}

}  // namespace idsync::mapping
