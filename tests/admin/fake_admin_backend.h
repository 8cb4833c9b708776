// A fake AdminBackend for the admin API tests: in-memory answers the test
// sets, and a record of what the api asked. Thread-safe.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "idsync/daemon/admin.h"

namespace idsync::daemon::testing {

class FakeAdminBackend : public AdminBackend {
 public:
  Status RequestSync(bool force) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!sync_status_.ok()) return sync_status_;
    ++sync_requests_;
    if (force) ++forced_sync_requests_;
    return Status::Ok();
  }
  Result<std::string> StatusJson() override {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_;
    return status_json_;
  }
  Result<std::string> PlanJson() override {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_;
    if (!plan_status_.ok()) return plan_status_;
    return plan_json_;
  }
  Result<std::string> ExplainJson(const std::string& email) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_;
    explained_.push_back(email);
    auto it = people_.find(email);
    if (it == people_.end()) return NotFoundError("no source knows " + email);
    return it->second;
  }
  std::vector<NotReady> NotReadyReasons() override {
    std::lock_guard<std::mutex> lock(mu_);
    return reasons_;
  }

  void set_reasons(std::vector<NotReady> r) {
    std::lock_guard<std::mutex> lock(mu_);
    reasons_ = std::move(r);
  }
  void set_sync_status(Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    sync_status_ = std::move(s);
  }
  void set_plan_status(Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    plan_status_ = std::move(s);
  }
  void add_person(const std::string& email, const std::string& json) {
    std::lock_guard<std::mutex> lock(mu_);
    people_[email] = json;
  }
  int sync_requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return sync_requests_;
  }
  int forced_sync_requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return forced_sync_requests_;
  }
  // Calls to StatusJson, PlanJson and ExplainJson.
  int calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  std::vector<std::string> explained() const {
    std::lock_guard<std::mutex> lock(mu_);
    return explained_;
  }

  std::string status_json_ =
      R"({"sources": [{"name": "corp-ldap", "state": "ok"}], "outbox": {"pending": 2}})";
  std::string plan_json_ =
      R"({"blocked": false, "reasons": [], "operations": [], "summary": {"invite": 0}})";

 private:
  mutable std::mutex mu_;
  std::vector<NotReady> reasons_;
  Status sync_status_;
  Status plan_status_;
  std::map<std::string, std::string> people_;
  std::vector<std::string> explained_;
  int sync_requests_ = 0;
  int forced_sync_requests_ = 0;
  int calls_ = 0;
};

// Tokens whose SHA-256 are published test vectors, so the tests also check
// that the api hashes with SHA-256.
inline constexpr char kTokenAbc[] = "abc";
inline constexpr char kHashAbc[] =
    "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
inline constexpr char kTokenHello[] = "hello";
inline constexpr char kHashHello[] =
    "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

}  // namespace idsync::daemon::testing
