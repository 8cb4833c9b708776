// How explain and plan are shown: JSON in the shapes DESIGN.md fixes, and
// aligned text for people reviewing a plan before they apply it.
//
// Pure formatting; thread-safe.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "idsync/mapping/catalog.h"
#include "idsync/mapping/model.h"
#include "idsync/mapping/reconcile.h"
#include "idsync/mapping/rules.h"

namespace idsync::daemon {

// One person's explain object: email, access, disabled, role, permissions
// (every item), why, projects, groups, rules, sources. Without access the role
// is null and every level none. Pretty-printed when `pretty`.
std::string ExplainJson(const mapping::RuleSet& rules, const mapping::PersonAccess& person,
                        bool pretty = true);

// A JSON array of explain objects, written one person at a time (the same
// text as the array dumped whole with an indent of 2).
void WriteExplainAllJson(std::ostream& out, const mapping::RuleSet& rules,
                         const std::vector<const mapping::PersonAccess*>& people);

// A readable account of one person's access and where each part came from.
void ExplainText(std::ostream& out, const mapping::RuleSet& rules,
                 const mapping::PersonAccess& person);

// The plan object: blocked, forced, reasons, operations (projects by name),
// summary, adopted, conflicts, held.
std::string PlanJson(const mapping::Plan& plan, const mapping::Catalog& catalog,
                     const std::vector<mapping::Project>& projects);

// One operation as the plan's JSON shows it (compact, one line): what the
// outbox and the audit log keep of it.
std::string OperationJson(const mapping::Operation& op, const mapping::Catalog& catalog,
                          const std::vector<mapping::Project>& projects);

// The plan as a reviewable diff: one block per operation with before and after.
void PlanText(std::ostream& out, const mapping::Plan& plan, const mapping::Catalog& catalog,
              const std::vector<mapping::Project>& projects);

}  // namespace idsync::daemon
