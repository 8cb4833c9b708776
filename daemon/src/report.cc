// The access-review report as CSV and JSON, the per-rule summary, and the
// helpers the HTML form shares (report_internal.h).

#include "idsync/daemon/report.h"

#include <algorithm>
#include <ostream>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include "idsync/daemon/status.h"

#include "report_internal.h"

namespace idsync::daemon {

using mapping::Level;
using nlohmann::ordered_json;

namespace report_internal {

Level LevelOf(const mapping::PersonAccess& p, std::size_t item) {
  if (!p.has_access || item >= p.levels.size()) return Level::kNone;
  return p.role == mapping::Role::kAdmin ? Level::kEdit : p.levels[item];
}

const std::vector<mapping::GroupRef>* ViaOf(const mapping::PersonAccess& p, std::int32_t rule) {
  for (const mapping::RuleMatch& m : p.matches) {
    if (static_cast<std::int32_t>(m.rule) == rule) return &m.via;
  }
  return nullptr;
}

std::int32_t WhyOf(const mapping::PersonAccess& p, std::size_t item) {
  if (!p.has_access || item >= p.why.size()) return -1;
  return p.why[item];
}

std::string CsvField(std::string_view value) {
  std::string v(value);
  if (!v.empty() &&
      (v[0] == '=' || v[0] == '+' || v[0] == '-' || v[0] == '@' || v[0] == '\t' || v[0] == '\r')) {
    v.insert(v.begin(), '\'');
  }
  if (v.find_first_of(",\"\r\n") == std::string::npos) return v;
  std::string quoted = "\"";
  for (char c : v) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  quoted += '"';
  return quoted;
}

std::string JoinWith(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i) out += separator;
    out += parts[i];
  }
  return out;
}

}  // namespace report_internal

using namespace report_internal;

namespace {

ordered_json GroupsJson(const std::vector<mapping::GroupRef>* via) {
  ordered_json groups = ordered_json::array();
  if (via == nullptr) return groups;
  for (const mapping::GroupRef& g : *via) {
    groups.push_back({{"source", g.source}, {"name", g.name}, {"dn", g.dn}});
  }
  return groups;
}

}  // namespace

void WriteReportCsv(std::ostream& out, const mapping::RuleSet& rules, const ReportPeople& people) {
  const mapping::Catalog& catalog = rules.catalog();
  out << "email,name,role,projects";
  for (const std::string& key : catalog.item_keys()) out << ',' << CsvField(key);
  out << "\r\n";
  for (const mapping::PersonAccess* p : people) {
    out << CsvField(p->email) << ',' << CsvField(p->name) << ','
        << mapping::RoleName(p->has_access ? p->role : mapping::Role::kMember) << ','
        << CsvField(JoinWith(p->has_access ? p->projects : std::vector<std::string>{}, ";"));
    for (std::size_t i = 0; i < catalog.item_count(); ++i) {
      out << ',' << mapping::LevelName(LevelOf(*p, i));
    }
    out << "\r\n";
  }
}

void WriteReportCsvLong(std::ostream& out, const mapping::RuleSet& rules,
                        const ReportPeople& people) {
  const mapping::Catalog& catalog = rules.catalog();
  out << "email,key,level,rule,group,source\r\n";
  for (const mapping::PersonAccess* p : people) {
    const std::string email = CsvField(p->email);
    for (std::size_t i = 0; i < catalog.item_count(); ++i) {
      const Level level = LevelOf(*p, i);
      std::string rule, groups, sources;
      const std::int32_t why = level == Level::kNone ? -1 : WhyOf(*p, i);
      if (why >= 0) {
        rule = rules.rules()[why].name;
        std::vector<std::string> names, from;
        if (const auto* via = ViaOf(*p, why)) {
          for (const mapping::GroupRef& g : *via) {
            names.push_back(g.name.empty() ? g.dn : g.name);
            if (std::find(from.begin(), from.end(), g.source) == from.end()) {
              from.push_back(g.source);
            }
          }
        }
        groups = JoinWith(names, ";");
        sources = JoinWith(from, ";");
      }
      out << email << ',' << CsvField(catalog.item_keys()[i]) << ',' << mapping::LevelName(level)
          << ',' << CsvField(rule) << ',' << CsvField(groups) << ',' << CsvField(sources) << "\r\n";
    }
  }
}

std::vector<RuleSummary> SummarizeRules(const mapping::RuleSet& rules, const ReportPeople& people) {
  std::vector<RuleSummary> summary(rules.rules().size());
  for (std::size_t r = 0; r < summary.size(); ++r) {
    summary[r].name = rules.rules()[r].name;
    summary[r].projects = rules.rules()[r].projects;
  }
  const std::size_t items = rules.catalog().item_count();
  std::vector<Level> highest(summary.size());
  for (const mapping::PersonAccess* p : people) {
    if (!p->has_access) continue;
    std::fill(highest.begin(), highest.end(), Level::kNone);
    for (std::size_t i = 0; i < items; ++i) {
      const std::int32_t why = WhyOf(*p, i);
      if (why >= 0) highest[why] = std::max(highest[why], LevelOf(*p, i));
    }
    for (const mapping::RuleMatch& m : p->matches) {
      RuleSummary& s = summary[m.rule];
      s.people++;
      if (p->role == mapping::Role::kAdmin && rules.rules()[m.rule].role == mapping::Role::kAdmin) {
        s.admins++;
      }
      if (highest[m.rule] == Level::kEdit) {
        s.edit++;
      } else if (highest[m.rule] == Level::kRead) {
        s.read++;
      }
    }
  }
  return summary;
}

void WriteReportJson(std::ostream& out, const mapping::RuleSet& rules, const ReportPeople& people,
                     const ReportMeta& meta) {
  const mapping::Catalog& catalog = rules.catalog();
  // Written piece by piece: one person's object at a time.
  out << "{\n  \"generated_at\": " << ordered_json(FormatTime(meta.generated_ms)).dump()
      << ",\n  \"config\": "
      << ordered_json({{"path", meta.config_path}, {"sha256", meta.config_sha256}}).dump()
      << ",\n  \"audit_head\": " << ordered_json(meta.audit_head).dump()
      << ",\n  \"catalog\": " << ordered_json(catalog.item_keys()).dump() << ",\n  \"people\": [";
  for (std::size_t n = 0; n < people.size(); ++n) {
    const mapping::PersonAccess& p = *people[n];
    ordered_json j;
    j["email"] = p.email;
    j["name"] = p.name;
    j["role"] = p.has_access ? std::string(mapping::RoleName(p.role)) : "member";
    j["projects"] = p.has_access ? p.projects : std::vector<std::string>{};
    ordered_json levels = ordered_json::object();
    ordered_json from = ordered_json::object();
    for (std::size_t i = 0; i < catalog.item_count(); ++i) {
      const std::string& key = catalog.item_keys()[i];
      const Level level = LevelOf(p, i);
      levels[key] = std::string(mapping::LevelName(level));
      const std::int32_t why = WhyOf(p, i);
      if (level != Level::kNone && why >= 0) {
        from[key] = {{"rule", rules.rules()[why].name}, {"groups", GroupsJson(ViaOf(p, why))}};
      }
    }
    j["permissions"] = std::move(levels);
    j["from"] = std::move(from);
    out << (n ? ",\n    " : "\n    ") << j.dump();
  }
  out << (people.empty() ? "]" : "\n  ]") << ",\n  \"rules\": [";
  const std::vector<RuleSummary> summary = SummarizeRules(rules, people);
  for (std::size_t r = 0; r < summary.size(); ++r) {
    const RuleSummary& s = summary[r];
    ordered_json j{{"name", s.name}, {"people", s.people}, {"admins", s.admins},
                   {"edit", s.edit}, {"read", s.read},     {"projects", s.projects}};
    out << (r ? ",\n    " : "\n    ") << j.dump();
  }
  out << (summary.empty() ? "]" : "\n  ]") << "\n}\n";
}

std::string Sha256Hex(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    return "";
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0xF];
  }
  return hex;
}

}  // namespace idsync::daemon
