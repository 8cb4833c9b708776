// The access-review report: everyone with access, their role, projects and
// level on every permission item, with where each level came from (the
// rule, the groups it matched through, their sources); and, from the audit
// log, who gained or lost what, when and through which rule.
//
// Pure formatting over what the caller mapped or read; each writer streams
// to `out` row by row. Thread-safe.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/mapping/catalog.h"
#include "idsync/mapping/rules.h"
#include "idsync/store/audit_log.h"

namespace idsync::daemon {

// What the report says about itself.
struct ReportMeta {
  std::string config_path;
  std::string config_sha256;  // hex SHA-256 of the configuration file's bytes
  std::string audit_head;     // "" for an empty log
  std::int64_t generated_ms = 0;
};

// The people the report lists: those with access, in e-mail order, mapped
// with MapOptions::details (for the groups behind each rule).
using ReportPeople = std::vector<const mapping::PersonAccess*>;

// `email,name,role,projects`, then one column per catalog item in catalog
// order, each holding the level; projects joined by ';'. A field that a
// spreadsheet would read as a formula (it starts with =, +, -, @, a tab or
// a carriage return) is written with a leading apostrophe.
void WriteReportCsv(std::ostream& out, const mapping::RuleSet& rules, const ReportPeople& people);

// One row per person and catalog item: `email,key,level,rule,group,source`;
// groups and sources joined by ';' (empty where no rule gives the item).
void WriteReportCsvLong(std::ostream& out, const mapping::RuleSet& rules,
                        const ReportPeople& people);

// {"generated_at", "config": {"path", "sha256"}, "audit_head", "catalog":
// [item keys], "people": [{"email", "name", "role", "projects",
// "permissions": {key: level}, "from": {key: {"rule", "groups": [{"source",
// "name", "dn"}]}}}], "rules": [RuleSummary as JSON]}.
void WriteReportJson(std::ostream& out, const mapping::RuleSet& rules, const ReportPeople& people,
                     const ReportMeta& meta);

// One self-contained HTML file (no external assets): the header (when,
// the configuration's SHA-256, the audit head), a people × areas matrix
// whose areas expand to items, each cell naming its rule and groups, a
// filter box, and the per-rule summary. Prints without its controls.
void WriteReportHtml(std::ostream& out, const mapping::RuleSet& rules, const ReportPeople& people,
                     const ReportMeta& meta);

// How many people one rule grants, and at which levels.
struct RuleSummary {
  std::string name;
  std::int64_t people = 0;  // people with access the rule matched
  std::int64_t admins = 0;  // of them, made admin by it
  std::int64_t edit = 0;    // people it gives at least one item at edit
  std::int64_t read = 0;    // people it gives at least one item at read (and none at edit)
  std::vector<std::string> projects;  // the projects it grants
};
std::vector<RuleSummary> SummarizeRules(const mapping::RuleSet& rules, const ReportPeople& people);

// One change to someone's access, from one audit entry.
struct AccessChange {
  std::int64_t at_ms = 0;
  std::int64_t seq = 0;  // the audit entry
  std::string email;
  std::string action;  // the audit action: invite, update, remove, revoke, adopt
  std::string what;    // "role", "project", or a permission item key; "access" for a removal
  std::string before;  // "none", "read", "edit", "member", "admin"; "" / "sales-bot" for projects
  std::string after;
  std::vector<std::string> rules;  // the rules behind the new access
  bool gained = false;             // more access than before (else less)
};

// The changes the audit entries record, in audit order. kDataLoss naming
// the entry when its details do not read as an operation.
Result<std::vector<AccessChange>> AccessChanges(const std::vector<store::AuditEntry>& entries);

// `at,seq,email,action,change,what,before,after,rules` (change: gained or
// lost; rules joined by ';').
void WriteChangesCsv(std::ostream& out, const std::vector<AccessChange>& changes);
// [{"at", "seq", "email", "action", "change", "what", "before", "after", "rules"}]
void WriteChangesJson(std::ostream& out, const std::vector<AccessChange>& changes);

// Hex SHA-256 of `bytes`.
std::string Sha256Hex(const std::string& bytes);

}  // namespace idsync::daemon
