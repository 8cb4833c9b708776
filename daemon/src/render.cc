#include "idsync/daemon/render.h"

#include <algorithm>
#include <map>
#include <ostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "join.h"

namespace idsync::daemon {
namespace {

using mapping::Level;
using mapping::LevelName;
using mapping::Role;
using nlohmann::ordered_json;

std::string ProjectName(const std::vector<mapping::Project>& projects, const std::string& id) {
  for (const auto& p : projects) {
    if (p.id == id) return p.name;
  }
  return id;
}

std::vector<std::string> ProjectNames(const std::vector<mapping::Project>& projects,
                                      const std::vector<std::string>& ids) {
  std::vector<std::string> names;
  names.reserve(ids.size());
  for (const auto& id : ids) names.push_back(ProjectName(projects, id));
  return names;
}

ordered_json LevelsJson(const mapping::Catalog& catalog, const mapping::ItemLevels& levels) {
  ordered_json out = ordered_json::object();
  for (std::size_t i = 0; i < catalog.item_count(); ++i) {
    Level l = i < levels.size() ? levels[i] : Level::kNone;
    out[catalog.item_keys()[i]] = std::string(LevelName(l));
  }
  return out;
}

// An admin shows edit on every item, whatever its stored map says.
mapping::ItemLevels Effective(const mapping::Catalog& catalog, const mapping::AccessState& s) {
  if (s.role == Role::kAdmin) return catalog.Uniform(Level::kEdit);
  if (s.levels.size() != catalog.item_count()) return catalog.Uniform(Level::kNone);
  return s.levels;
}

// A short reading of the levels, area by area: the area's most common level,
// then the items that differ, e.g. "analytics edit, build read (knowledge
// edit), channels.voice edit, deployments read"; "nothing" when all are none.
std::string CompactText(const mapping::Catalog& catalog, const mapping::ItemLevels& levels) {
  std::vector<std::string> parts;
  for (const auto& area : catalog.areas()) {
    auto range = catalog.Resolve(area.key);
    if (!range || range->begin == range->end) continue;
    int counts[3] = {0, 0, 0};
    for (std::size_t i = range->begin; i < range->end; ++i) counts[static_cast<int>(levels[i])]++;
    Level base = Level::kNone;
    for (int l = 1; l < 3; ++l) {
      if (counts[l] > counts[static_cast<int>(base)]) base = static_cast<Level>(l);
    }
    std::vector<std::string> exceptions;
    for (std::size_t i = range->begin; i < range->end; ++i) {
      if (levels[i] == base) continue;
      const std::string& item = area.items[i - range->begin].key;
      if (base == Level::kNone) {
        parts.push_back(area.key + "." + item + " " + std::string(LevelName(levels[i])));
      } else {
        exceptions.push_back(item + " " + std::string(LevelName(levels[i])));
      }
    }
    if (base == Level::kNone) continue;
    std::string part = area.key + " " + std::string(LevelName(base));
    if (!exceptions.empty()) part += " (" + Join(exceptions, ", ") + ")";
    parts.push_back(std::move(part));
  }
  if (parts.empty()) return "nothing";
  return Join(parts, ", ");
}

std::string AccessText(const mapping::Catalog& catalog, const mapping::AccessState& s) {
  if (s.role == Role::kAdmin) return "everything (admin)";
  return CompactText(catalog, s.levels);
}

std::string ProjectsText(const std::vector<mapping::Project>& projects,
                         const std::vector<std::string>& ids) {
  if (ids.empty()) return "none";
  return Join(ProjectNames(projects, ids), ", ");
}

ordered_json StateJson(const mapping::Catalog& catalog, const mapping::AccessState& s,
                       const std::vector<mapping::Project>& projects) {
  ordered_json j;
  j["role"] = std::string(mapping::RoleName(s.role));
  j["permissions"] = LevelsJson(catalog, Effective(catalog, s));
  j["projects"] = ProjectNames(projects, s.projects);
  if (!s.name.empty()) j["name"] = s.name;
  return j;
}

ordered_json ExplainObject(const mapping::RuleSet& rules, const mapping::PersonAccess& p) {
  const mapping::Catalog& catalog = rules.catalog();
  ordered_json j;
  j["email"] = p.email;
  j["name"] = p.name;
  j["access"] = p.has_access;
  j["disabled"] = p.disabled;
  if (p.has_access) {
    j["role"] = std::string(mapping::RoleName(p.role));
  } else {
    j["role"] = nullptr;
  }
  mapping::ItemLevels levels = p.has_access ? p.levels : catalog.Uniform(Level::kNone);
  if (p.has_access && p.role == Role::kAdmin) levels = catalog.Uniform(Level::kEdit);
  j["permissions"] = LevelsJson(catalog, levels);
  ordered_json why = ordered_json::object();
  if (p.has_access) {
    for (std::size_t i = 0; i < catalog.item_count() && i < p.why.size(); ++i) {
      if (p.why[i] >= 0) why[catalog.item_keys()[i]] = rules.rules()[p.why[i]].name;
    }
  }
  j["why"] = why;
  j["projects"] = p.has_access ? p.projects : std::vector<std::string>{};
  ordered_json groups = ordered_json::array();
  for (const auto& g : p.groups) {
    groups.push_back(ordered_json{{"source", g.source}, {"name", g.name}, {"dn", g.dn}});
  }
  j["groups"] = groups;
  j["rules"] = p.rules;
  j["sources"] = p.sources;
  return j;
}

// Column alignment: pads `text` to `width` code points (so non-ASCII names
// line up), always leaving at least one space after it.
std::string Pad(std::string_view text, std::size_t width) {
  std::string out(text);
  std::size_t cps = 0;
  for (unsigned char c : text) cps += (c & 0xC0) != 0x80;
  out.append(cps < width ? width - cps : 1, ' ');
  return out;
}

ordered_json OperationObject(const mapping::Operation& op, const mapping::Catalog& catalog,
                             const std::vector<mapping::Project>& projects) {
  ordered_json o;
  o["op"] = std::string(mapping::OpKindName(op.kind));
  o["email"] = op.email;
  if (op.kind != mapping::OpKind::kInvite) o["user_id"] = op.user_id;
  if (op.kind != mapping::OpKind::kRemove) {
    ordered_json after = StateJson(catalog, op.after, projects);
    for (auto& [k, v] : after.items()) o[k] = v;
  } else {
    // After a removal the person has no role, nothing and no project.
    o["role"] = nullptr;
    o["permissions"] = LevelsJson(catalog, catalog.Uniform(Level::kNone));
    o["projects"] = ordered_json::array();
  }
  o["rules"] = op.rules;
  if (op.adopt) o["adopt"] = true;
  if (!op.reason.empty()) o["reason"] = op.reason;
  if (op.kind != mapping::OpKind::kInvite) o["before"] = StateJson(catalog, op.before, projects);
  return o;
}

}  // namespace

std::string OperationJson(const mapping::Operation& op, const mapping::Catalog& catalog,
                          const std::vector<mapping::Project>& projects) {
  return OperationObject(op, catalog, projects).dump();
}

std::string ExplainJson(const mapping::RuleSet& rules, const mapping::PersonAccess& person,
                        bool pretty) {
  return ExplainObject(rules, person).dump(pretty ? 2 : -1);
}

namespace {

// `text` as a JSON string, as nlohmann's dump writes it. Text with a byte
// past ASCII goes through nlohmann itself (which checks the UTF-8).
void QuotedTo(std::string& out, std::string_view text) {
  if (std::any_of(text.begin(), text.end(), [](char c) { return (c & 0x80) != 0; })) {
    out += ordered_json(std::string(text)).dump();
    return;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += "\\u00";
          out += kHex[(c >> 4) & 0xF];
          out += kHex[c & 0xF];
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

// The explain object of one person, as ExplainObject(...).dump(2) would be
// inside an array dumped with an indent of 2: every line two spaces in.
// Written directly: building a document per person costs more than the
// mapping itself at 100,000 people.
void ExplainObjectTo(std::string& o, const mapping::RuleSet& rules,
                     const mapping::PersonAccess& p) {
  const mapping::Catalog& catalog = rules.catalog();
  auto key = [&](std::string_view k) {
    o += "    ";
    QuotedTo(o, k);
    o += ": ";
  };
  auto strings = [&](const std::vector<std::string>& list) {
    if (list.empty()) {
      o += "[]";
      return;
    }
    o += "[\n";
    for (std::size_t i = 0; i < list.size(); ++i) {
      o += "      ";
      QuotedTo(o, list[i]);
      o += i + 1 < list.size() ? ",\n" : "\n";
    }
    o += "    ]";
  };
  o += "  {\n";
  key("email");
  QuotedTo(o, p.email);
  o += ",\n";
  key("name");
  QuotedTo(o, p.name);
  o += ",\n";
  key("access");
  o += p.has_access ? "true" : "false";
  o += ",\n";
  key("disabled");
  o += p.disabled ? "true" : "false";
  o += ",\n";
  key("role");
  if (p.has_access) {
    QuotedTo(o, mapping::RoleName(p.role));
  } else {
    o += "null";
  }
  o += ",\n";
  const bool admin = p.has_access && p.role == Role::kAdmin;
  key("permissions");
  o += "{\n";
  for (std::size_t i = 0; i < catalog.item_count(); ++i) {
    const Level l = !p.has_access         ? Level::kNone
                    : admin               ? Level::kEdit
                    : i < p.levels.size() ? p.levels[i]
                                          : Level::kNone;
    o += "      ";
    QuotedTo(o, catalog.item_keys()[i]);
    o += ": ";
    QuotedTo(o, LevelName(l));
    o += i + 1 < catalog.item_count() ? ",\n" : "\n";
  }
  o += "    },\n";
  key("why");
  std::vector<std::size_t> why;
  if (p.has_access) {
    for (std::size_t i = 0; i < catalog.item_count() && i < p.why.size(); ++i) {
      if (p.why[i] >= 0) why.push_back(i);
    }
  }
  if (why.empty()) {
    o += "{}";
  } else {
    o += "{\n";
    for (std::size_t n = 0; n < why.size(); ++n) {
      o += "      ";
      QuotedTo(o, catalog.item_keys()[why[n]]);
      o += ": ";
      QuotedTo(o, rules.rules()[p.why[why[n]]].name);
      o += n + 1 < why.size() ? ",\n" : "\n";
    }
    o += "    }";
  }
  o += ",\n";
  key("projects");
  strings(p.has_access ? p.projects : std::vector<std::string>{});
  o += ",\n";
  key("groups");
  if (p.groups.empty()) {
    o += "[]";
  } else {
    o += "[\n";
    for (std::size_t i = 0; i < p.groups.size(); ++i) {
      const mapping::GroupRef& g = p.groups[i];
      o += "      {\n        \"source\": ";
      QuotedTo(o, g.source);
      o += ",\n        \"name\": ";
      QuotedTo(o, g.name);
      o += ",\n        \"dn\": ";
      QuotedTo(o, g.dn);
      o += i + 1 < p.groups.size() ? "\n      },\n" : "\n      }\n";
    }
    o += "    ]";
  }
  o += ",\n";
  key("rules");
  strings(p.rules);
  o += ",\n";
  key("sources");
  strings(p.sources);
  o += "\n  }";
}

}  // namespace

void WriteExplainAllJson(std::ostream& out, const mapping::RuleSet& rules,
                         const std::vector<const mapping::PersonAccess*>& people) {
  if (people.empty()) {
    out << "[]";
    return;
  }
  out << "[\n";
  std::string object;
  for (std::size_t i = 0; i < people.size(); ++i) {
    object.clear();
    ExplainObjectTo(object, rules, *people[i]);
    out << object << (i + 1 < people.size() ? ",\n" : "\n");
  }
  out << "]";
}

void ExplainText(std::ostream& out, const mapping::RuleSet& rules, const mapping::PersonAccess& p) {
  const mapping::Catalog& catalog = rules.catalog();
  out << p.email;
  if (!p.name.empty()) out << "  (" << p.name << ")";
  out << "\n";
  out << "  sources      " << (p.sources.empty() ? "none" : Join(p.sources, ", ")) << "\n";
  if (p.disabled) {
    out << "  access       none: disabled in a source\n";
  } else if (!p.has_access) {
    out << "  access       none: no rule matches\n";
  } else {
    out << "  role         " << mapping::RoleName(p.role) << "\n";
    out << "  projects     " << (p.projects.empty() ? "none" : Join(p.projects, ", ")) << "\n";
  }
  if (!p.matches.empty()) {
    std::size_t width = 0;
    for (const auto& m : p.matches) width = std::max(width, rules.rules()[m.rule].name.size());
    const char* label = "  rules        ";
    for (const auto& m : p.matches) {
      out << label << Pad(rules.rules()[m.rule].name, width + 2);
      if (m.via.empty()) {
        out << "matched without a group";
      } else {
        std::vector<std::string> via;
        for (const auto& g : m.via) via.push_back(g.source + ": " + g.name);
        out << "via " << Join(via, ", ");
      }
      out << "\n";
      label = "               ";
    }
  }
  if (!p.groups.empty()) {
    std::size_t sw = 0, nw = 0;
    for (const auto& g : p.groups) {
      sw = std::max(sw, g.source.size());
      nw = std::max(nw, g.name.size());
    }
    const char* label = "  groups       ";
    for (const auto& g : p.groups) {
      out << label << Pad(g.source, sw + 2) << Pad(g.name, nw + 2) << g.dn << "\n";
      label = "               ";
    }
  }
  if (!p.has_access) return;
  if (p.role == Role::kAdmin) {
    std::string rule = p.why.empty() || p.why[0] < 0 ? "" : rules.rules()[p.why[0]].name;
    out << "  permissions  edit on everything (admin, from " << rule << ")\n";
    return;
  }
  out << "  permissions\n";
  // Per area: the most common (level, rule) pair on the area line, the items
  // that differ from it below. Reads like the product's menu.
  for (const auto& area : catalog.areas()) {
    auto range = catalog.Resolve(area.key);
    if (!range || range->begin == range->end) continue;
    std::map<std::pair<Level, std::int32_t>, int> counts;
    for (std::size_t i = range->begin; i < range->end; ++i) counts[{p.levels[i], p.why[i]}]++;
    auto base = std::max_element(counts.begin(), counts.end(), [](const auto& a, const auto& b) {
                  return a.second < b.second;
                })->first;
    auto line = [&](std::string_view label, Level level, std::int32_t why) {
      out << "    " << Pad(label, 24);
      if (why >= 0) {
        out << Pad(LevelName(level), 6) << rules.rules()[why].name;
      } else {
        out << LevelName(level);
      }
      out << "\n";
    };
    line(area.key, base.first, base.second);
    for (std::size_t i = range->begin; i < range->end; ++i) {
      if (std::make_pair(p.levels[i], p.why[i]) == base) continue;
      line("  ." + area.items[i - range->begin].key, p.levels[i], p.why[i]);
    }
  }
}

std::string PlanJson(const mapping::Plan& plan, const mapping::Catalog& catalog,
                     const std::vector<mapping::Project>& projects) {
  ordered_json j;
  j["blocked"] = plan.blocked;
  j["forced"] = plan.forced;
  j["reasons"] = plan.reasons;
  ordered_json ops = ordered_json::array();
  for (const auto& op : plan.operations) ops.push_back(OperationObject(op, catalog, projects));
  j["operations"] = ops;
  j["summary"] = {{"invite", plan.summary.invite},
                  {"update", plan.summary.update},
                  {"remove", plan.summary.remove},
                  {"revoke", plan.summary.revoke},
                  {"unchanged", plan.summary.unchanged}};
  j["managed_before"] = plan.managed_before;
  j["adopted"] = plan.adopted;
  j["conflicts"] = plan.conflicts;
  j["held"] = plan.held;
  return j.dump(2);
}

void PlanText(std::ostream& out, const mapping::Plan& plan, const mapping::Catalog& catalog,
              const std::vector<mapping::Project>& projects) {
  const auto& s = plan.summary;
  out << "Plan: " << s.invite << " to invite, " << s.update << " to update, " << s.revoke
      << " to revoke, " << s.remove << " to remove, " << s.unchanged << " unchanged"
      << " (idsync manages " << plan.managed_before << " account users)\n";
  if (plan.blocked) {
    out << "\nBLOCKED by the safety limits; nothing will be applied:\n";
    for (const auto& r : plan.reasons) out << "  - " << r << "\n";
    out << "  Review the plan, then run `idsync apply --force`, or change `safety:`.\n";
  } else if (plan.forced) {
    out << "\nSafety limits exceeded but passed with --force:\n";
    for (const auto& r : plan.reasons) out << "  - " << r << "\n";
  }
  if (plan.operations.empty()) out << "\nNothing to change.\n";

  std::size_t width = 0;
  for (const auto& op : plan.operations) width = std::max(width, op.email.size());

  for (const auto& op : plan.operations) {
    out << "\n";
    const char* mark = "+";
    switch (op.kind) {
      case mapping::OpKind::kInvite:
        mark = "+";
        break;
      case mapping::OpKind::kUpdate:
        mark = "~";
        break;
      case mapping::OpKind::kRevoke:
        mark = "!";
        break;
      case mapping::OpKind::kRemove:
        mark = "-";
        break;
    }
    out << mark << " " << Pad(mapping::OpKindName(op.kind), 7);
    if (op.user_id.empty()) {
      out << op.email;
    } else {
      out << Pad(op.email, width + 2) << "(" << op.user_id << ")";
    }
    if (op.adopt) out << "  adopted: not managed by idsync until now";
    out << "\n";
    auto row = [&](std::string_view label, const std::string& value) {
      out << "    " << Pad(label, 12) << value << "\n";
    };
    switch (op.kind) {
      case mapping::OpKind::kInvite:
        if (!op.after.name.empty()) row("name", op.after.name);
        row("role", std::string(mapping::RoleName(op.after.role)));
        row("access", AccessText(catalog, op.after));
        row("projects", ProjectsText(projects, op.after.projects));
        break;
      case mapping::OpKind::kUpdate: {
        if (!op.after.name.empty() && op.after.name != op.before.name) {
          row("name", op.before.name + " -> " + op.after.name);
        }
        if (op.after.role != op.before.role) {
          row("role", std::string(mapping::RoleName(op.before.role)) + " -> " +
                          std::string(mapping::RoleName(op.after.role)));
        }
        mapping::ItemLevels before = Effective(catalog, op.before);
        mapping::ItemLevels after = Effective(catalog, op.after);
        if (before != after && op.after.role == op.before.role) {
          // Changed items, folded to the area when the whole area moves alike.
          for (const auto& area : catalog.areas()) {
            auto range = catalog.Resolve(area.key);
            if (!range) continue;
            bool all_same = true;
            bool any = false;
            for (std::size_t i = range->begin; i < range->end; ++i) {
              any |= before[i] != after[i];
              all_same &= before[i] == before[range->begin] && after[i] == after[range->begin];
            }
            if (!any) continue;
            if (all_same) {
              row(area.key, std::string(LevelName(before[range->begin])) + " -> " +
                                std::string(LevelName(after[range->begin])));
              continue;
            }
            for (std::size_t i = range->begin; i < range->end; ++i) {
              if (before[i] == after[i]) continue;
              row(catalog.item_keys()[i],
                  std::string(LevelName(before[i])) + " -> " + std::string(LevelName(after[i])));
            }
          }
        } else if (op.after.role != op.before.role) {
          row("access", AccessText(catalog, op.before) + " -> " + AccessText(catalog, op.after));
        }
        if (op.after.projects != op.before.projects) {
          row("projects", ProjectsText(projects, op.before.projects) + " -> " +
                              ProjectsText(projects, op.after.projects));
        }
        break;
      }
      case mapping::OpKind::kRevoke:
        row("why", op.reason);
        row("role", std::string(mapping::RoleName(op.before.role)) + " -> member");
        row("access", AccessText(catalog, op.before) + " -> nothing");
        row("projects", ProjectsText(projects, op.before.projects) + " -> none");
        break;
      case mapping::OpKind::kRemove:
        row("why", op.reason);
        row("had", std::string(mapping::RoleName(op.before.role)) + "; " +
                       AccessText(catalog, op.before) + "; projects " +
                       ProjectsText(projects, op.before.projects));
        break;
    }
    if (!op.rules.empty()) row("rules", Join(op.rules, ", "));
  }
  if (!plan.adopted.empty()) {
    out << "\nAdopted without change: " << Join(plan.adopted, ", ") << "\n";
  }
  if (!plan.conflicts.empty()) {
    out << "\nIn the account but not managed by idsync (adopt_existing is false), left alone: "
        << Join(plan.conflicts, ", ") << "\n";
  }
  if (!plan.held.empty()) {
    out << "\nReductions held back while a source fails: " << Join(plan.held, ", ") << "\n";
  }
}

}  // namespace idsync::daemon
