// The daemon's answers to the web console (ConsoleBackend): the overview,
// plan, explanation and sync of the admin API (DaemonAdmin), and what only
// the console asks: people search over an index kept for the latest
// snapshots, the audit log by person and date with the chain's check, and
// the access-review report.
//
// Thread-safe: the people index is rebuilt under a lock when the
// configuration or a snapshot changed.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "idsync/daemon/console.h"
#include "idsync/store/store.h"

#include "admin_backend.h"
#include "generation.h"
#include "snapshot_cache.h"

namespace idsync::daemon {

class DaemonConsole : public ConsoleBackend {
 public:
  // Every reference must outlive the backend.
  DaemonConsole(DaemonAdmin& admin, Generations& generations, store::Store& store,
                SnapshotCache& snapshots, NowFn now);

  Result<std::string> OverviewJson() override { return admin_.StatusJson(); }
  Result<std::string> PlanJson() override { return admin_.PlanJson(); }
  Result<std::string> PeopleJson(const std::string& query, std::size_t offset,
                                 std::size_t limit) override;
  Result<std::string> ExplainJson(const std::string& email) override {
    return admin_.ExplainJson(email);
  }
  Result<std::string> AuditJson(const std::string& email, std::int64_t since_ms,
                                std::int64_t until_ms, std::size_t offset,
                                std::size_t limit) override;
  Result<std::string> ReportHtml() override;
  Status RequestSync(bool force) override { return admin_.RequestSync(force); }

 private:
  struct Person {
    std::string email;
    std::string name;
    std::string search;  // e-mail and name, lower-cased
    bool access = false;
    bool admin = false;
    std::vector<std::string> projects;
  };
  // Everyone the sources know, as of `snapshots` under `generation`.
  struct Index {
    std::shared_ptr<Generation> generation;
    std::vector<SnapshotCache::Snapshot> snapshots;
    std::vector<Person> people;  // by e-mail
  };
  Result<std::shared_ptr<const Index>> CurrentIndex();

  DaemonAdmin& admin_;
  Generations& generations_;
  store::Store& store_;
  SnapshotCache& snapshots_;
  NowFn now_;
  std::mutex mu_;
  std::shared_ptr<const Index> index_;  // guarded by mu_
};

}  // namespace idsync::daemon
