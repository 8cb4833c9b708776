// The access-review report over the example company: every form says what
// `idsync explain --all --json` says, person by person and item by item;
// CSV fields are quoted and kept from being read as formulas; the HTML is
// one file with nothing fetched from elsewhere; and `report --changes`
// turns a scripted audit history into who gained or lost what.
#include "idsync/daemon/report.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "idsync/daemon/cli.h"
#include "idsync/daemon/render.h"
#include "idsync/daemon/sync.h"
#include "idsync/mapping/catalog.h"
#include "idsync/store/store.h"

namespace idsync::daemon {
namespace {

using nlohmann::json;

const std::string kExamples = std::string(IDSYNC_SOURCE_DIR) + "/examples";
const std::string kConfig = kExamples + "/idsync.yaml";

struct CliRun {
  int status;
  std::string out;
  std::string err;
};

CliRun Cli(std::vector<std::string> args) {
  std::ostringstream out, err;
  const int status = RunCli(args, out, err);
  return {status, out.str(), err.str()};
}

// explain --all --json, by e-mail.
std::map<std::string, json> Explained() {
  const CliRun run = Cli({"--config", kConfig, "explain", "--all", "--json"});
  EXPECT_EQ(run.status, kExitOk) << run.err;
  std::map<std::string, json> people;
  for (const json& p : json::parse(run.out)) people[p["email"]] = p;
  return people;
}

std::vector<std::vector<std::string>> ParseCsv(const std::string& text) {
  std::vector<std::vector<std::string>> rows(1);
  std::string field;
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      rows.back().push_back(field);
      field.clear();
    } else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      rows.back().push_back(field);
      field.clear();
      rows.emplace_back();
      ++i;
    } else {
      field += c;
    }
  }
  if (rows.back().empty()) rows.pop_back();
  return rows;
}

TEST(ReportTest, JsonSaysWhatExplainSays) {
  const std::map<std::string, json> explained = Explained();
  const CliRun run = Cli({"--config", kConfig, "report", "--format", "json"});
  ASSERT_EQ(run.status, kExitOk) << run.err;
  const json report = json::parse(run.out);
  std::ifstream file(kConfig, std::ios::binary);
  std::ostringstream bytes;
  bytes << file.rdbuf();
  EXPECT_EQ(report["config"]["sha256"], Sha256Hex(bytes.str()));
  EXPECT_EQ(report["catalog"], json(mapping::Catalog::Builtin().item_keys()));
  ASSERT_EQ(report["people"].size(), explained.size());
  for (const json& p : report["people"]) {
    SCOPED_TRACE(p["email"].get<std::string>());
    const json& e = explained.at(p["email"]);
    EXPECT_EQ(p["name"], e["name"]);
    EXPECT_EQ(p["role"], e["role"]);
    EXPECT_EQ(p["projects"], e["projects"]);
    EXPECT_EQ(p["permissions"], e["permissions"]);
    for (const auto& [key, level] : p["permissions"].items()) {
      if (level == "none") {
        EXPECT_FALSE(p["from"].contains(key)) << key;
        continue;
      }
      EXPECT_EQ(p["from"][key]["rule"], e["why"][key]) << key;
      // Each group named is one of the person's.
      for (const json& g : p["from"][key]["groups"]) {
        bool known = false;
        for (const json& mine : e["groups"]) known = known || mine == g;
        EXPECT_TRUE(known) << g.dump();
      }
    }
  }
  // The rule summary counts whom each rule matched.
  std::map<std::string, int> matched;
  for (const auto& [email, e] : explained) {
    for (const json& r : e["rules"]) matched[r]++;
  }
  for (const json& r : report["rules"]) EXPECT_EQ(r["people"], matched[r["name"]]) << r.dump();
}

TEST(ReportTest, CsvHasOneColumnPerItemAndSaysWhatExplainSays) {
  const std::map<std::string, json> explained = Explained();
  const CliRun run = Cli({"--config", kConfig, "report"});
  ASSERT_EQ(run.status, kExitOk) << run.err;
  const auto rows = ParseCsv(run.out);
  const auto& keys = mapping::Catalog::Builtin().item_keys();
  ASSERT_EQ(rows.size(), explained.size() + 1);
  std::vector<std::string> header = {"email", "name", "role", "projects"};
  header.insert(header.end(), keys.begin(), keys.end());
  EXPECT_EQ(rows[0], header);
  for (std::size_t r = 1; r < rows.size(); ++r) {
    const json& e = explained.at(rows[r][0]);
    EXPECT_EQ(rows[r][1], e["name"]);
    EXPECT_EQ(rows[r][2], e["role"]);
    std::string projects;
    for (const json& p : e["projects"]) {
      projects += (projects.empty() ? "" : ";") + p.get<std::string>();
    }
    EXPECT_EQ(rows[r][3], projects);
    for (std::size_t i = 0; i < keys.size(); ++i) {
      EXPECT_EQ(rows[r][4 + i], e["permissions"][keys[i]]) << rows[r][0] << " " << keys[i];
    }
  }
}

TEST(ReportTest, CsvLongHasARowPerPersonAndItemWithItsRuleAndGroup) {
  const std::map<std::string, json> explained = Explained();
  const CliRun run = Cli({"--config", kConfig, "report", "--format", "csv-long"});
  ASSERT_EQ(run.status, kExitOk) << run.err;
  const auto rows = ParseCsv(run.out);
  const auto& keys = mapping::Catalog::Builtin().item_keys();
  ASSERT_EQ(rows.size(), explained.size() * keys.size() + 1);
  EXPECT_EQ(rows[0],
            (std::vector<std::string>{"email", "key", "level", "rule", "group", "source"}));
  for (std::size_t r = 1; r < rows.size(); ++r) {
    const json& e = explained.at(rows[r][0]);
    const std::string& key = rows[r][1];
    EXPECT_EQ(rows[r][2], e["permissions"][key]);
    EXPECT_EQ(rows[r][3], e["why"].value(key, "")) << rows[r][0] << " " << key;
  }
  // Bruno's dashboards come from the qa rule through hr's qa-emea.
  bool seen = false;
  for (const auto& row : rows) {
    if (row[0] == "bruno@corp.example" && row[1] == "configure.dashboards") {
      EXPECT_EQ(row, (std::vector<std::string>{"bruno@corp.example", "configure.dashboards", "edit",
                                               "qa", "qa-emea", "hr"}));
      seen = true;
    }
  }
  EXPECT_TRUE(seen);
}

TEST(ReportTest, CsvFieldsAreQuotedAndNeverFormulas) {
  mapping::PersonAccess p;
  p.email = "x@corp.example";
  p.name = "=HYPERLINK(\"http://evil.example\",\"Smith, J\")";
  p.has_access = true;
  p.levels = mapping::Catalog::Builtin().Uniform(mapping::Level::kRead);
  p.why.assign(p.levels.size(), -1);
  p.projects = {"-bot", "a,b"};
  const mapping::PresetBook presets =
      mapping::PresetBook::Create(mapping::Catalog::Builtin(), {}).value();
  mapping::Rule rule;
  rule.name = "r";
  rule.groups = {"g"};
  rule.role = mapping::Role::kAdmin;
  const mapping::RuleSet rules =
      mapping::RuleSet::Compile({rule}, mapping::Catalog::Builtin(), presets, {}).value();
  std::ostringstream out;
  WriteReportCsv(out, rules, {&p});
  const auto rows = ParseCsv(out.str());
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1][1], "'=HYPERLINK(\"http://evil.example\",\"Smith, J\")");
  EXPECT_EQ(rows[1][3], "'-bot;a,b");
  EXPECT_NE(out.str().find("\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"Smith, J\"\")\""),
            std::string::npos)
      << out.str();
}

TEST(ReportTest, HtmlIsOneFileWithTheSamePeopleAndNothingFetched) {
  const std::map<std::string, json> explained = Explained();
  const CliRun run = Cli({"--config", kConfig, "report", "--format", "html"});
  ASSERT_EQ(run.status, kExitOk) << run.err;
  const std::string& html = run.out;
  EXPECT_EQ(html.rfind("<!doctype html>", 0), 0u);
  // Nothing loaded from elsewhere: no src or href attribute, no url().
  EXPECT_EQ(html.find(" src="), std::string::npos);
  EXPECT_EQ(html.find(" href="), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  const std::string open = "<script type=\"application/json\" id=\"report-data\">";
  const std::size_t begin = html.find(open);
  ASSERT_NE(begin, std::string::npos);
  const std::size_t end = html.find("</script>", begin);
  const json data = json::parse(html.substr(begin + open.size(), end - begin - open.size()));
  ASSERT_EQ(data["people"].size(), explained.size());
  const auto& keys = mapping::Catalog::Builtin().item_keys();
  for (const json& row : data["people"]) {
    const json& e = explained.at(row[0]);
    const std::string levels = row[3];
    ASSERT_EQ(levels.size(), keys.size());
    for (std::size_t i = 0; i < keys.size(); ++i) {
      EXPECT_EQ(std::string(mapping::LevelName(static_cast<mapping::Level>(levels[i] - '0'))),
                e["permissions"][keys[i]]);
    }
    EXPECT_EQ(row[2] == 1 ? "admin" : "member", e["role"]);
  }
  // The header names the configuration's hash; the rules have a summary row.
  std::ifstream file(kConfig, std::ios::binary);
  std::ostringstream bytes;
  bytes << file.rdbuf();
  EXPECT_NE(html.find(Sha256Hex(bytes.str())), std::string::npos);
  EXPECT_NE(html.find("<th scope=\"row\">support-leads</th>"), std::string::npos);
}

TEST(ReportTest, DirectoryTextCannotCloseTheDataScript) {
  mapping::PersonAccess p;
  p.email = "x@corp.example";
  p.name = "</script><script>alert(1)</script>";
  p.has_access = true;
  p.levels = mapping::Catalog::Builtin().Uniform(mapping::Level::kNone);
  p.why.assign(p.levels.size(), -1);
  mapping::Rule rule;
  rule.name = "<b>rule</b>";
  rule.groups = {"g"};
  rule.role = mapping::Role::kAdmin;
  const mapping::PresetBook presets =
      mapping::PresetBook::Create(mapping::Catalog::Builtin(), {}).value();
  const mapping::RuleSet rules =
      mapping::RuleSet::Compile({rule}, mapping::Catalog::Builtin(), presets, {}).value();
  std::ostringstream out;
  WriteReportHtml(out, rules, {&p}, ReportMeta{"<cfg>", "abc", "", 0});
  const std::string html = out.str();
  EXPECT_EQ(html.find("alert(1)</script>"), std::string::npos);
  EXPECT_EQ(html.find("<b>rule"), std::string::npos);
  EXPECT_NE(html.find("&lt;b&gt;rule&lt;/b&gt;"), std::string::npos);
  EXPECT_NE(html.find("&lt;cfg&gt;"), std::string::npos);
}

TEST(ExplainAllJsonTest, IsTheTextOfTheWholeArrayDumpedAtOnce) {
  // Written directly, person by person: the same bytes as the array of
  // explain objects dumped with an indent of 2, for names that need escapes.
  const mapping::PresetBook presets =
      mapping::PresetBook::Create(mapping::Catalog::Builtin(), {}).value();
  mapping::Rule rule;
  rule.name = "r \"quoted\"";
  rule.groups = {"g"};
  rule.presets = {"qa-analyst"};
  const mapping::RuleSet rules =
      mapping::RuleSet::Compile({rule}, mapping::Catalog::Builtin(), presets, {}).value();
  std::vector<mapping::PersonAccess> people(3);
  people[0].email = "a@corp.example";
  people[0].name = "Tab\there \"q\" back\\slash \x01 new\nline";
  people[0].has_access = true;
  people[0].levels = rules.RuleLevels(0);
  people[0].why.assign(people[0].levels.size(), 0);
  people[0].projects = {"p1", "p2"};
  people[0].groups = {{"hr", "g", "cn=g,dc=x"}};
  people[0].rules = {rule.name};
  people[0].sources = {"hr"};
  people[1].email = "b@corp.example";
  people[1].name = "Jos\xc3\xa9 M\xc3\xbcller";
  people[1].disabled = true;
  people[2].email = "c@corp.example";
  people[2].has_access = true;
  people[2].role = mapping::Role::kAdmin;
  people[2].levels = mapping::Catalog::Builtin().Uniform(mapping::Level::kNone);
  people[2].why.assign(people[2].levels.size(), -1);
  std::vector<const mapping::PersonAccess*> all;
  nlohmann::ordered_json expected = nlohmann::ordered_json::array();
  for (const auto& p : people) {
    all.push_back(&p);
    expected.push_back(nlohmann::ordered_json::parse(ExplainJson(rules, p, false)));
  }
  std::ostringstream out;
  WriteExplainAllJson(out, rules, all);
  EXPECT_EQ(out.str(), expected.dump(2));
  std::ostringstream none;
  WriteExplainAllJson(none, rules, {});
  EXPECT_EQ(none.str(), "[]");
}

// --- report --changes ---

store::AuditEntry Entry(std::int64_t seq, std::int64_t at_ms, std::string action, std::string email,
                        json detail) {
  store::AuditEntry e;
  e.seq = seq;
  e.at_ms = at_ms;
  e.action = std::move(action);
  e.email = std::move(email);
  e.user_id = "u-" + std::to_string(seq);
  e.source = "full-run";
  e.detail_json = detail.dump();
  return e;
}

// A history: Bruno invited as QA, then made a voice specialist too (a
// project and more), then admin; Eve revoked; Ana removed.
std::vector<store::AuditEntry> History() {
  const json none = {{"build.knowledge", "none"}, {"channels.voice", "none"}};
  return {
      Entry(1, 1000, "invite", "bruno@corp.example",
            {{"op", "invite"},
             {"email", "bruno@corp.example"},
             {"role", "member"},
             {"permissions", {{"build.knowledge", "read"}, {"channels.voice", "none"}}},
             {"projects", {"support-bot"}},
             {"rules", {"qa"}}}),
      Entry(2, 2000, "update", "bruno@corp.example",
            {{"op", "update"},
             {"email", "bruno@corp.example"},
             {"role", "member"},
             {"permissions", {{"build.knowledge", "read"}, {"channels.voice", "edit"}}},
             {"projects", {"sales-bot", "support-bot"}},
             {"rules", {"qa", "voice"}},
             {"before",
              {{"role", "member"},
               {"permissions", {{"build.knowledge", "read"}, {"channels.voice", "none"}}},
               {"projects", {"support-bot"}}}}}),
      Entry(3, 3000, "update", "bruno@corp.example",
            {{"op", "update"},
             {"email", "bruno@corp.example"},
             {"role", "admin"},
             {"permissions", {{"build.knowledge", "edit"}, {"channels.voice", "edit"}}},
             {"projects", {"sales-bot", "support-bot"}},
             {"rules", {"studio-admins"}},
             {"before",
              {{"role", "member"},
               {"permissions", {{"build.knowledge", "read"}, {"channels.voice", "edit"}}},
               {"projects", {"sales-bot", "support-bot"}}}}}),
      Entry(4, 4000, "revoke", "eve@corp.example",
            {{"op", "revoke"},
             {"email", "eve@corp.example"},
             {"role", "member"},
             {"permissions", none},
             {"projects", json::array()},
             {"rules", json::array()},
             {"reason", "no rule matches"},
             {"before",
              {{"role", "member"},
               {"permissions", {{"build.knowledge", "none"}, {"channels.voice", "edit"}}},
               {"projects", {"sales-bot"}}}}}),
      Entry(5, 5000, "remove", "ana@corp.example",
            {{"op", "remove"},
             {"email", "ana@corp.example"},
             {"role", nullptr},
             {"permissions", none},
             {"projects", json::array()},
             {"rules", json::array()},
             {"before",
              {{"role", "admin"},
               {"permissions", {{"build.knowledge", "edit"}, {"channels.voice", "edit"}}},
               {"projects", json::array()}}}}),
  };
}

std::vector<std::string> Lines(const std::vector<AccessChange>& changes) {
  std::vector<std::string> lines;
  for (const AccessChange& c : changes) {
    std::string rules;
    for (const std::string& r : c.rules) rules += (rules.empty() ? "" : ";") + r;
    lines.push_back(std::to_string(c.seq) + " " + c.email + " " + (c.gained ? "+" : "-") + c.what +
                    " " + c.before + ">" + c.after + " [" + rules + "]");
  }
  return lines;
}

TEST(ReportChangesTest, EachEntryBecomesWhatWasGainedOrLost) {
  Result<std::vector<AccessChange>> changes = AccessChanges(History());
  ASSERT_TRUE(changes.ok()) << changes.status().ToString();
  EXPECT_EQ(Lines(*changes), (std::vector<std::string>{
                                 "1 bruno@corp.example +access none>member [qa]",
                                 "1 bruno@corp.example +build.knowledge none>read [qa]",
                                 "1 bruno@corp.example +project >support-bot [qa]",
                                 "2 bruno@corp.example +channels.voice none>edit [qa;voice]",
                                 "2 bruno@corp.example +project >sales-bot [qa;voice]",
                                 "3 bruno@corp.example +role member>admin [studio-admins]",
                                 "3 bruno@corp.example +build.knowledge read>edit [studio-admins]",
                                 "4 eve@corp.example -channels.voice edit>none []",
                                 "4 eve@corp.example -project sales-bot> []",
                                 "5 ana@corp.example -access admin>none []",
                                 "5 ana@corp.example -build.knowledge edit>none []",
                                 "5 ana@corp.example -channels.voice edit>none []",
                             }));
}

TEST(ReportChangesTest, DetailsThatAreNotAnOperationAreDataLoss) {
  std::vector<store::AuditEntry> entries = History();
  entries[2].detail_json = "[1,2]";
  EXPECT_EQ(AccessChanges(entries).status().code(), StatusCode::kDataLoss);
  entries[2].detail_json = R"({"op":"update","permissions":["edit"]})";
  EXPECT_EQ(AccessChanges(entries).status().code(), StatusCode::kDataLoss);
}

TEST(ReportChangesTest, TheCommandReadsTheStoresAuditLogSinceAGivenTime) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("idsync-report-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string db = (dir / "state.db").string();
  {
    Result<std::unique_ptr<store::Store>> store = store::Store::Open("sqlite://" + db);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    for (store::AuditEntry e : History()) {
      // Entries 1-3 long ago; 4 and 5 within the last hour.
      e.at_ms = e.seq <= 3 ? 1'000'000 + e.seq : SystemNowMs() - 60'000;
      ASSERT_TRUE((*store)->audit().Append(e).ok());
    }
  }
  std::ifstream in(kConfig);
  std::ostringstream text;
  text << in.rdbuf();
  std::string config = text.str();
  for (const std::string name : {"directory.ldif", "contractors.ldif"}) {
    config.replace(config.find("path: " + name), 6 + name.size(),
                   "path: " + kExamples + "/" + name);
  }
  const std::string path = (dir / "idsync.yaml").string();
  std::ofstream(path) << "store: sqlite://" << db << "\n" << config;

  CliRun run = Cli({"--config", path, "report", "--changes", "--since", "1h"});
  ASSERT_EQ(run.status, kExitOk) << run.err;
  const auto rows = ParseCsv(run.out);
  ASSERT_EQ(rows.size(), 6u) << run.out;
  EXPECT_EQ(rows[0], (std::vector<std::string>{"at", "seq", "email", "action", "change", "what",
                                               "before", "after", "rules"}));
  EXPECT_EQ(rows[1][1], "4");
  EXPECT_EQ(rows[1][4], "lost");
  EXPECT_EQ(rows[5][2], "ana@corp.example");

  run = Cli({"--config", path, "report", "--changes", "--format", "json"});
  ASSERT_EQ(run.status, kExitOk) << run.err;
  const json all = json::parse(run.out);
  ASSERT_EQ(all.size(), 12u);
  EXPECT_EQ(all[5]["what"], "role");
  EXPECT_EQ(all[5]["rules"], json::array({"studio-admins"}));
  EXPECT_EQ(Cli({"--config", path, "report", "--changes", "--format", "html"}).status, kExitUsage);
  EXPECT_EQ(Cli({"--config", path, "report", "--since", "1h"}).status, kExitUsage);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace idsync::daemon
