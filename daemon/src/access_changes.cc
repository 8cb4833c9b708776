// Who gained or lost what, from the audit log: each entry's details are the
// plan's operation (render.cc, OperationJson), with the access after it,
// the access before it (all but invites) and the rules behind it.

#include <algorithm>
#include <ostream>
#include <set>

#include <nlohmann/json.hpp>

#include "idsync/daemon/report.h"
#include "idsync/daemon/status.h"

#include "report_internal.h"

namespace idsync::daemon {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

int Rank(const std::string& level) {
  if (level == "edit") return 2;
  if (level == "read") return 1;
  return 0;
}

// One side of an operation: the role ("none" without access), each item's
// level, the projects.
struct Side {
  std::string role = "none";
  std::map<std::string, std::string> levels;
  std::set<std::string> projects;
};

bool ReadSide(const json& j, Side* side) {
  if (!j.is_object()) return false;
  if (j.contains("role") && j["role"].is_string()) side->role = j["role"].get<std::string>();
  if (j.contains("permissions")) {
    if (!j["permissions"].is_object()) return false;
    for (const auto& [key, level] : j["permissions"].items()) {
      if (!level.is_string()) return false;
      side->levels[key] = level.get<std::string>();
    }
  }
  if (j.contains("projects")) {
    if (!j["projects"].is_array()) return false;
    for (const json& p : j["projects"]) {
      if (!p.is_string()) return false;
      side->projects.insert(p.get<std::string>());
    }
  }
  return true;
}

}  // namespace

Result<std::vector<AccessChange>> AccessChanges(const std::vector<store::AuditEntry>& entries) {
  std::vector<AccessChange> changes;
  for (const store::AuditEntry& e : entries) {
    const json d = json::parse(e.detail_json.empty() ? "{}" : e.detail_json, nullptr, false);
    if (!d.is_object() || !d.contains("op") || !d["op"].is_string()) {
      return DataLossError("audit entry " + std::to_string(e.seq) +
                           ": its details are not an operation");
    }
    const std::string op = d["op"].get<std::string>();
    Side before, after;
    bool ok = ReadSide(d, &after);
    if (d.contains("before")) ok = ok && ReadSide(d["before"], &before);
    if (!ok) {
      return DataLossError("audit entry " + std::to_string(e.seq) +
                           ": its details do not read as access before and after");
    }
    if (op == "remove") after.role = "none";
    std::vector<std::string> rules;
    if (d.contains("rules") && d["rules"].is_array()) {
      for (const json& r : d["rules"]) {
        if (r.is_string()) rules.push_back(r.get<std::string>());
      }
    }
    auto add = [&](std::string what, std::string was, std::string now, bool gained) {
      changes.push_back(AccessChange{e.at_ms, e.seq, e.email, e.action, std::move(what),
                                     std::move(was), std::move(now), rules, gained});
    };
    const bool had = before.role != "none";
    const bool has = after.role != "none";
    if (had != has) {
      add("access", had ? before.role : "none", has ? after.role : "none", has);
    } else if (before.role != after.role) {
      add("role", before.role, after.role, after.role == "admin");
    }
    std::set<std::string> keys;
    for (const auto& [key, level] : before.levels) keys.insert(key);
    for (const auto& [key, level] : after.levels) keys.insert(key);
    for (const std::string& key : keys) {
      const std::string was = before.levels.count(key) ? before.levels[key] : "none";
      const std::string now = after.levels.count(key) ? after.levels[key] : "none";
      if (Rank(was) != Rank(now)) add(key, was, now, Rank(now) > Rank(was));
    }
    for (const std::string& p : after.projects) {
      if (!before.projects.count(p)) add("project", "", p, true);
    }
    for (const std::string& p : before.projects) {
      if (!after.projects.count(p)) add("project", p, "", false);
    }
  }
  return changes;
}

void WriteChangesCsv(std::ostream& out, const std::vector<AccessChange>& changes) {
  using report_internal::CsvField;
  out << "at,seq,email,action,change,what,before,after,rules\r\n";
  for (const AccessChange& c : changes) {
    out << FormatTime(c.at_ms) << ',' << c.seq << ',' << CsvField(c.email) << ','
        << CsvField(c.action) << ',' << (c.gained ? "gained" : "lost") << ',' << CsvField(c.what)
        << ',' << CsvField(c.before) << ',' << CsvField(c.after) << ','
        << CsvField(report_internal::JoinWith(c.rules, ";")) << "\r\n";
  }
}

void WriteChangesJson(std::ostream& out, const std::vector<AccessChange>& changes) {
  out << "[";
  for (std::size_t i = 0; i < changes.size(); ++i) {
    const AccessChange& c = changes[i];
    const ordered_json j{{"at", FormatTime(c.at_ms)},
                         {"seq", c.seq},
                         {"email", c.email},
                         {"action", c.action},
                         {"change", c.gained ? "gained" : "lost"},
                         {"what", c.what},
                         {"before", c.before},
                         {"after", c.after},
                         {"rules", c.rules}};
    out << (i ? ",\n  " : "\n  ") << j.dump();
  }
  out << (changes.empty() ? "]\n" : "\n]\n");
}

}  // namespace idsync::daemon
