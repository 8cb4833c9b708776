#include "console_backend.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include <nlohmann/json.hpp>

#include "idsync/base/ascii.h"
#include "idsync/daemon/report.h"
#include "idsync/daemon/status.h"
#include "idsync/mapping/rules.h"

namespace idsync::daemon {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

std::string FileSha256(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return Sha256Hex(bytes.str());
}

}  // namespace

DaemonConsole::DaemonConsole(DaemonAdmin& admin, Generations& generations, store::Store& store,
                             SnapshotCache& snapshots, NowFn now)
    : admin_(admin),
      generations_(generations),
      store_(store),
      snapshots_(snapshots),
      now_(std::move(now)) {}

Result<std::shared_ptr<const DaemonConsole::Index>> DaemonConsole::CurrentIndex() {
  std::shared_ptr<Generation> gen = generations_.Current();
  if (!gen) return UnavailableError("the configuration is not loaded yet");
  std::vector<SnapshotCache::Snapshot> held = snapshots_.Latest(gen->config);
  std::lock_guard lock(mu_);
  if (index_ && index_->generation == gen && index_->snapshots == held) return index_;
  ASSIGN_OR_RETURN(std::unique_ptr<mapping::RuleSet> rules, admin_.RulesInForce(gen->config));
  std::vector<const mapping::SourceSnapshot*> snapshots;
  for (const SnapshotCache::Snapshot& s : held) snapshots.push_back(s.get());
  ASSIGN_OR_RETURN(mapping::MappingResult mapped, mapping::Map(*rules, snapshots));
  auto index = std::make_shared<Index>();
  index->generation = gen;
  index->snapshots = std::move(held);
  index->people.reserve(mapped.people.size());
  for (mapping::PersonAccess& p : mapped.people) {
    Person person;
    person.search = base::AsciiLower(p.email + " " + p.name);
    person.email = std::move(p.email);
    person.name = std::move(p.name);
    person.access = p.has_access;
    person.admin = p.has_access && p.role == mapping::Role::kAdmin;
    if (p.has_access) person.projects = std::move(p.projects);
    index->people.push_back(std::move(person));
  }
  index_ = std::move(index);
  return index_;
}

Result<std::string> DaemonConsole::PeopleJson(const std::string& query, std::size_t offset,
                                              std::size_t limit) {
  ASSIGN_OR_RETURN(std::shared_ptr<const Index> index, CurrentIndex());
  const std::string needle = base::AsciiLower(query);
  std::size_t total = 0;
  ordered_json page = ordered_json::array();
  for (const Person& p : index->people) {
    if (!needle.empty() && p.search.find(needle) == std::string::npos) continue;
    if (total >= offset && page.size() < limit) {
      page.push_back({{"email", p.email},
                      {"name", p.name},
                      {"access", p.access},
                      {"role", p.access ? (p.admin ? "admin" : "member") : json(nullptr)},
                      {"projects", p.projects}});
    }
    ++total;
  }
  ordered_json out{{"total", total}, {"offset", offset}, {"people", std::move(page)}};
  return out.dump();
}

Result<std::string> DaemonConsole::AuditJson(const std::string& email, std::int64_t since_ms,
                                             std::int64_t until_ms, std::size_t offset,
                                             std::size_t limit) {
  ASSIGN_OR_RETURN(std::vector<store::AuditEntry> entries, store_.audit().Since(since_ms));
  ASSIGN_OR_RETURN(store::AuditCheck check, store_.audit().Verify(std::nullopt));
  const std::string who = base::AsciiLower(email);
  std::size_t total = 0;
  ordered_json page = ordered_json::array();
  for (auto it = entries.rbegin(); it != entries.rend(); ++it) {
    const store::AuditEntry& e = *it;
    if (!who.empty() && base::AsciiLower(e.email) != who) continue;
    if (until_ms > 0 && e.at_ms >= until_ms) continue;
    if (total >= offset && page.size() < limit) {
      const json detail = json::parse(e.detail_json.empty() ? "{}" : e.detail_json, nullptr, false);
      ordered_json rules = ordered_json::array();
      if (detail.is_object() && detail.contains("rules") && detail["rules"].is_array()) {
        for (const json& r : detail["rules"]) {
          if (r.is_string()) rules.push_back(r.get<std::string>());
        }
      }
      page.push_back({{"seq", e.seq},
                      {"at", FormatTime(e.at_ms)},
                      {"action", e.action},
                      {"email", e.email},
                      {"user_id", e.user_id},
                      {"source", e.source},
                      {"rules", std::move(rules)}});
    }
    ++total;
  }
  ordered_json out{{"total", total},
                   {"offset", offset},
                   {"entries", std::move(page)},
                   {"chain",
                    {{"ok", check.ok},
                     {"entries", check.entries},
                     {"head", check.head},
                     {"problem", check.problem}}}};
  return out.dump();
}

Result<std::string> DaemonConsole::ReportHtml() {
  std::shared_ptr<Generation> gen = generations_.Current();
  if (!gen) return UnavailableError("the configuration is not loaded yet");
  ASSIGN_OR_RETURN(std::unique_ptr<mapping::RuleSet> rules, admin_.RulesInForce(gen->config));
  const std::vector<SnapshotCache::Snapshot> held = snapshots_.Latest(gen->config);
  std::vector<const mapping::SourceSnapshot*> snapshots;
  for (const SnapshotCache::Snapshot& s : held) snapshots.push_back(s.get());
  mapping::MapOptions options;
  options.details = true;
  ASSIGN_OR_RETURN(mapping::MappingResult mapped, mapping::Map(*rules, snapshots, options));
  ReportPeople people;
  for (const mapping::PersonAccess& p : mapped.people) {
    if (p.has_access) people.push_back(&p);
  }
  ReportMeta meta;
  meta.config_path = gen->config.path;
  meta.config_sha256 = FileSha256(gen->config.path);
  meta.generated_ms = now_();
  if (Result<std::string> head = store_.audit().Head(); head.ok()) meta.audit_head = *head;
  std::ostringstream out;
  WriteReportHtml(out, *rules, people, meta);
  return out.str();
}

}  // namespace idsync::daemon
