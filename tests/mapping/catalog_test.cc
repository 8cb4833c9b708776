#include "idsync/mapping/catalog.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "idsync/testing/status_matchers.h"

namespace idsync::mapping {
namespace {

constexpr Level N = Level::kNone;
constexpr Level R = Level::kRead;
constexpr Level E = Level::kEdit;

TEST(Level, NamesRoundTrip) {
  for (Level level : {N, R, E}) {
    std::optional<Level> parsed = ParseLevel(LevelName(level));
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(*parsed, level);
  }
  EXPECT_EQ(LevelName(N), "none");
  EXPECT_EQ(LevelName(R), "read");
  EXPECT_EQ(LevelName(E), "edit");
}

TEST(Level, ParseRejectsOtherText) {
  for (std::string_view text : {"", "Read", "EDIT", "write", " none", "admin"}) {
    EXPECT_FALSE(ParseLevel(text).has_value()) << text;
  }
}

TEST(Level, Ordered) {
  EXPECT_LT(N, R);
  EXPECT_LT(R, E);
}

TEST(Catalog, BuiltinHasDocumentedItemsInOrder) {
  const std::vector<std::string> expected = {
      "analytics.smart-analyst",
      "analytics.conversations",
      "analytics.agent-analysis",
      "build.agent",
      "build.knowledge",
      "build.flows",
      "build.tools",
      "build.variant-management",
      "build.call-handoffs",
      "build.sms",
      "build.real-time-configuration",
      "build.configuration-builder",
      "build.test-suite",
      "channels.voice",
      "channels.chat",
      "channels.widget",
      "configure.general",
      "configure.numbers",
      "configure.apis",
      "configure.integrations",
      "configure.metrics",
      "configure.dashboards",
      "configure.csat",
      "deployments.environments",
      "deployments.project-history",
  };
  EXPECT_EQ(Catalog::Builtin().item_keys(), expected);
  EXPECT_EQ(Catalog::Builtin().item_count(), 25u);
}

TEST(Catalog, BuiltinLabels) {
  const Catalog& catalog = Catalog::Builtin();
  std::vector<std::string> area_labels;
  for (const CatalogArea& area : catalog.areas()) area_labels.push_back(area.label);
  EXPECT_EQ(area_labels, (std::vector<std::string>{"Analytics", "Build", "Channels", "Configure",
                                                   "Deployments"}));
  EXPECT_EQ(catalog.areas()[0].items[0].label, "Smart analyst");
  EXPECT_EQ(catalog.areas()[1].items[7].label, "Real-time configuration");
  EXPECT_EQ(catalog.areas()[3].items[2].label, "APIs");
  EXPECT_EQ(catalog.areas()[3].items[6].label, "CSAT");
}

TEST(Catalog, ResolveAreaAndItem) {
  const Catalog& catalog = Catalog::Builtin();
  struct Case {
    std::string key;
    bool found;
    std::size_t begin, end;
  };
  const std::vector<Case> cases = {
      {"analytics", true, 0, 3},   {"build", true, 3, 13},        {"build.knowledge", true, 4, 5},
      {"channels", true, 13, 16},  {"deployments", true, 23, 25}, {"configure.csat", true, 22, 23},
      {"build.nope", false, 0, 0}, {"Build", false, 0, 0},        {"", false, 0, 0},
      {"build.", false, 0, 0},
  };
  for (const Case& c : cases) {
    std::optional<Catalog::Range> range = catalog.Resolve(c.key);
    ASSERT_EQ(range.has_value(), c.found) << c.key;
    if (!c.found) continue;
    EXPECT_EQ(range->begin, c.begin) << c.key;
    EXPECT_EQ(range->end, c.end) << c.key;
  }
}

TEST(Catalog, CreateRejectsBadKeys) {
  struct Case {
    std::string what;
    std::vector<CatalogArea> areas;
  };
  const std::vector<Case> cases = {
      {"empty area key", {{"", "X", {{"a", "A"}}}}},
      {"duplicate area", {{"a", "A", {{"x", "X"}}}, {"a", "A2", {{"y", "Y"}}}}},
      {"dot in area", {{"a.b", "A", {{"x", "X"}}}}},
      {"empty item key", {{"a", "A", {{"", "X"}}}}},
      {"duplicate item", {{"a", "A", {{"x", "X"}, {"x", "X2"}}}}},
      {"dot in item", {{"a", "A", {{"x.y", "X"}}}}},
  };
  for (const Case& c : cases) {
    Result<Catalog> catalog = Catalog::Create(c.areas);
    ASSERT_FALSE(catalog.ok()) << c.what;
    EXPECT_THAT(catalog, StatusIs(StatusCode::kInvalidArgument)) << c.what;
  }
}

TEST(Catalog, CreateAllowsSameItemKeyInTwoAreas) {
  Result<Catalog> catalog =
      Catalog::Create({{"a", "A", {{"x", "X"}}}, {"b", "B", {{"x", "X"}, {"y", "Y"}}}});
  ASSERT_TRUE(catalog.ok()) << catalog.status().ToString();
  EXPECT_EQ(catalog->item_keys(), (std::vector<std::string>{"a.x", "b.x", "b.y"}));
}

TEST(Catalog, ExpandItemKeyWinsOverAreaKey) {
  const Catalog& catalog = Catalog::Builtin();
  // std::map orders "build" before "build.tools" anyway; the check also holds
  // for "deployments.environments" whose area sorts first.
  Result<ItemLevels> levels = catalog.Expand(
      {{"build", E}, {"build.tools", N}, {"deployments.environments", R}, {"deployments", E}});
  ASSERT_TRUE(levels.ok()) << levels.status().ToString();
  ItemLevels expected = catalog.Uniform(N);
  for (std::size_t i = 3; i < 13; ++i) expected[i] = E;
  expected[6] = N;   // build.tools
  expected[23] = R;  // deployments.environments
  expected[24] = E;  // deployments.project-history
  EXPECT_EQ(*levels, expected);
}

TEST(Catalog, ExpandAbsentKeysAreNone) {
  Result<ItemLevels> levels = Catalog::Builtin().Expand({});
  ASSERT_TRUE(levels.ok());
  EXPECT_EQ(*levels, Catalog::Builtin().Uniform(N));
}

TEST(Catalog, ExpandRejectsUnknownKeyNamingIt) {
  Result<ItemLevels> levels = Catalog::Builtin().Expand({{"build", R}, {"build.nothing", E}});
  ASSERT_FALSE(levels.ok());
  EXPECT_THAT(levels, StatusIs(StatusCode::kInvalidArgument));
  EXPECT_NE(levels.status().message().find("build.nothing"), std::string::npos);
}

TEST(Catalog, ExpandLenientSkipsUnknownKeys) {
  ItemLevels levels = Catalog::Builtin().ExpandLenient({{"channels", R}, {"legacy.thing", E}});
  ItemLevels expected = Catalog::Builtin().Uniform(N);
  for (std::size_t i = 13; i < 16; ++i) expected[i] = R;
  EXPECT_EQ(levels, expected);
}

TEST(Catalog, CompactUsesAreaKeyWhenUniformAndDropsNone) {
  const Catalog& catalog = Catalog::Builtin();
  ItemLevels levels = catalog.Uniform(N);
  for (std::size_t i = 0; i < 3; ++i) levels[i] = R;    // analytics: all read
  levels[4] = E;                                        // build.knowledge
  levels[6] = R;                                        // build.tools
  for (std::size_t i = 16; i < 23; ++i) levels[i] = E;  // configure: all edit
  levels[23] = R;                                       // deployments.environments only
  const PermissionSpec expected = {{"analytics", R},
                                   {"build.knowledge", E},
                                   {"build.tools", R},
                                   {"configure", E},
                                   {"deployments.environments", R}};
  EXPECT_EQ(catalog.Compact(levels), expected);
}

TEST(Catalog, CompactRoundTrips) {
  const Catalog& catalog = Catalog::Builtin();
  std::vector<ItemLevels> cases;
  cases.push_back(catalog.Uniform(N));
  cases.push_back(catalog.Uniform(R));
  cases.push_back(catalog.Uniform(E));
  for (const Preset& preset : BuiltinPresets())
    cases.push_back(catalog.ExpandLenient(preset.permissions));
  // A pattern that mixes every level in every area.
  ItemLevels mixed = catalog.Uniform(N);
  for (std::size_t i = 0; i < mixed.size(); ++i) mixed[i] = static_cast<Level>(i % 3);
  cases.push_back(mixed);
  for (const ItemLevels& levels : cases) {
    PermissionSpec compact = catalog.Compact(levels);
    Result<ItemLevels> back = catalog.Expand(compact);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, levels);
    for (const auto& [key, level] : compact) EXPECT_NE(level, N) << key;
  }
  EXPECT_TRUE(catalog.Compact(catalog.Uniform(N)).empty());
  EXPECT_EQ(catalog.Compact(catalog.Uniform(E)).size(), 5u);
}

// Every item of every built-in preset, as the product documents them.
TEST(BuiltinPresets, ExpandItemByItem) {
  struct Row {
    std::string item;
    Level content_editor, qa_analyst, voice_specialist;
  };
  const std::vector<Row> table = {
      {"analytics.smart-analyst", R, E, R},
      {"analytics.conversations", R, E, R},
      {"analytics.agent-analysis", R, E, R},
      {"build.agent", N, R, R},
      {"build.knowledge", E, R, R},
      {"build.flows", N, R, R},
      {"build.tools", R, R, R},
      {"build.variant-management", N, R, R},
      {"build.call-handoffs", N, R, R},
      {"build.sms", N, R, R},
      {"build.real-time-configuration", N, R, R},
      {"build.configuration-builder", N, R, R},
      {"build.test-suite", N, R, R},
      {"channels.voice", R, R, E},
      {"channels.chat", R, R, N},
      {"channels.widget", R, R, N},
      {"configure.general", N, N, R},
      {"configure.numbers", N, N, R},
      {"configure.apis", N, N, R},
      {"configure.integrations", N, N, R},
      {"configure.metrics", N, N, R},
      {"configure.dashboards", N, E, R},
      {"configure.csat", N, N, R},
      {"deployments.environments", N, R, R},
      {"deployments.project-history", N, R, R},
  };
  const Catalog& catalog = Catalog::Builtin();
  ASSERT_EQ(table.size(), catalog.item_count());
  Result<PresetBook> book = PresetBook::Create(catalog, {});
  ASSERT_TRUE(book.ok()) << book.status().ToString();
  const ItemLevels* ce = book->Find("content-editor");
  const ItemLevels* qa = book->Find("qa-analyst");
  const ItemLevels* vs = book->Find("voice-specialist");
  ASSERT_NE(ce, nullptr);
  ASSERT_NE(qa, nullptr);
  ASSERT_NE(vs, nullptr);
  for (std::size_t i = 0; i < table.size(); ++i) {
    const Row& row = table[i];
    ASSERT_EQ(catalog.item_keys()[i], row.item);
    EXPECT_EQ((*ce)[i], row.content_editor) << "content-editor " << row.item;
    EXPECT_EQ((*qa)[i], row.qa_analyst) << "qa-analyst " << row.item;
    EXPECT_EQ((*vs)[i], row.voice_specialist) << "voice-specialist " << row.item;
  }
  // The built-in specs only use catalog keys.
  for (const Preset& preset : BuiltinPresets()) {
    EXPECT_TRUE(catalog.Expand(preset.permissions).ok()) << preset.name;
  }
}

TEST(PresetBook, CustomPresetsAreExpanded) {
  Result<PresetBook> book = PresetBook::Create(
      Catalog::Builtin(),
      {{"support-lead",
        {{"analytics", E}, {"build", R}, {"build.knowledge", E}, {"channels", R}}}});
  ASSERT_TRUE(book.ok()) << book.status().ToString();
  const ItemLevels* levels = book->Find("support-lead");
  ASSERT_NE(levels, nullptr);
  EXPECT_EQ(Catalog::Builtin().Compact(*levels),
            (PermissionSpec{{"analytics", E},
                            {"build.agent", R},
                            {"build.knowledge", E},
                            {"build.flows", R},
                            {"build.tools", R},
                            {"build.variant-management", R},
                            {"build.call-handoffs", R},
                            {"build.sms", R},
                            {"build.real-time-configuration", R},
                            {"build.configuration-builder", R},
                            {"build.test-suite", R},
                            {"channels", R}}));
  EXPECT_EQ(book->Names(), (std::vector<std::string>{"content-editor", "qa-analyst", "support-lead",
                                                     "voice-specialist"}));
  EXPECT_EQ(book->Find("nobody"), nullptr);
}

TEST(PresetBook, CreateErrors) {
  struct Case {
    std::string what;
    std::vector<Preset> custom;
    std::vector<std::string> message_mentions;
  };
  const std::vector<Case> cases = {
      {"built-in name", {{"qa-analyst", {{"build", R}}}}, {"qa-analyst"}},
      {"repeated name", {{"x", {{"build", R}}}, {"x", {{"build", E}}}}, {"\"x\""}},
      {"unknown key", {{"lead", {{"build.nothing", R}}}}, {"lead", "build.nothing"}},
      {"empty name", {{"", {{"build", R}}}}, {"empty name"}},
  };
  for (const Case& c : cases) {
    Result<PresetBook> book = PresetBook::Create(Catalog::Builtin(), c.custom);
    ASSERT_FALSE(book.ok()) << c.what;
    EXPECT_THAT(book, StatusIs(StatusCode::kInvalidArgument)) << c.what;
    for (const std::string& word : c.message_mentions) {
      EXPECT_NE(book.status().message().find(word), std::string::npos)
          << c.what << ": " << book.status().message();
    }
  }
}

}  // namespace
}  // namespace idsync::mapping
