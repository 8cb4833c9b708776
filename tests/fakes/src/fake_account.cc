#include "idsync/fakes/fake_account.h"

#include <algorithm>
#include <utility>

#include "idsync/base/ascii.h"

namespace idsync::fakes {

using mapping::AccountRecord;
using mapping::AccountWrite;

FakeAccount::FakeAccount() { projects_ = {{"p_support", "support-bot"}, {"p_sales", "sales-bot"}}; }

std::string FakeAccount::AddUser(AccountRecord record) {
  std::lock_guard l(mu_);
  if (record.id.empty()) record.id = "u" + std::to_string(next_id_++);
  users_[record.id] = record;
  return record.id;
}

void FakeAccount::SetProjects(std::vector<mapping::Project> projects) {
  std::lock_guard l(mu_);
  projects_ = std::move(projects);
}

void FakeAccount::AppearsBeforeNextWrite(AccountRecord record) {
  std::lock_guard l(mu_);
  appearing_.push_back(std::move(record));
}

void FakeAccount::FailWrites(const std::string& email, StatusCode code, int times) {
  std::lock_guard l(mu_);
  faults_.push_back({base::AsciiLower(email), code, times});
}

void FakeAccount::FailReads(StatusCode code) {
  std::lock_guard l(mu_);
  read_fault_ = code;
}

std::map<std::string, AccountRecord> FakeAccount::Users() const {
  std::lock_guard l(mu_);
  std::map<std::string, AccountRecord> out;
  for (const auto& [id, u] : users_) out[base::AsciiLower(u.email)] = u;
  return out;
}

std::vector<FakeAccount::LoggedWrite> FakeAccount::Writes() const {
  std::lock_guard l(mu_);
  return log_;
}

void FakeAccount::ClearWrites() {
  std::lock_guard l(mu_);
  log_.clear();
}

Result<mapping::Catalog> FakeAccount::GetCatalog() {
  std::lock_guard l(mu_);
  if (read_fault_ != StatusCode::kOk) return Status(read_fault_, "injected read failure");
  return mapping::Catalog::Builtin();
}

Result<std::vector<mapping::Project>> FakeAccount::ListProjects() {
  std::lock_guard l(mu_);
  if (read_fault_ != StatusCode::kOk) return Status(read_fault_, "injected read failure");
  return projects_;
}

Result<std::vector<AccountRecord>> FakeAccount::ListUsers() {
  std::lock_guard l(mu_);
  if (read_fault_ != StatusCode::kOk) return Status(read_fault_, "injected read failure");
  std::vector<AccountRecord> out;
  for (const auto& [id, u] : users_) out.push_back(u);
  return out;
}

Result<AccountRecord> FakeAccount::GetUser(const std::string& id) {
  std::lock_guard l(mu_);
  if (read_fault_ != StatusCode::kOk) return Status(read_fault_, "injected read failure");
  auto it = users_.find(id);
  if (it == users_.end()) return NotFoundError("no user " + id);
  return it->second;
}

Result<AccountRecord> FakeAccount::Write(const AccountWrite& write) {
  std::lock_guard l(mu_);
  for (AccountRecord& r : appearing_) {
    if (r.id.empty()) r.id = "u" + std::to_string(next_id_++);
    users_[r.id] = std::move(r);
  }
  appearing_.clear();
  LoggedWrite logged{write.kind, write.email, write.user_id, write.idempotency_key};
  if (logged.email.empty()) {
    auto it = users_.find(write.user_id);
    if (it != users_.end()) logged.email = it->second.email;
  }
  logged.email = base::AsciiLower(logged.email);

  if (auto replay = replies_.find(write.idempotency_key); replay != replies_.end()) {
    logged.answer = replay->second.status().code();
    log_.push_back(logged);
    return replay->second;
  }
  for (Fault& f : faults_) {
    if (f.times == 0 || (!f.email.empty() && f.email != logged.email)) continue;
    --f.times;
    logged.answer = f.code;
    log_.push_back(logged);
    return Status(f.code, "injected failure");
  }
  bool applied = false;
  Result<AccountRecord> reply = Apply(write, &logged.email, &applied);
  logged.applied = applied;
  logged.answer = reply.status().code();
  if (reply.ok()) logged.user_id = reply->id.empty() ? write.user_id : reply->id;
  log_.push_back(logged);
  if (!write.idempotency_key.empty()) replies_.emplace(write.idempotency_key, reply);
  return reply;
}

Result<AccountRecord> FakeAccount::Apply(const AccountWrite& write, std::string* email,
                                         bool* applied) {
  switch (write.kind) {
    case AccountWrite::Kind::kInvite: {
      const std::string address = base::AsciiLower(write.email);
      for (const auto& [id, u] : users_) {
        if (base::AsciiLower(u.email) == address) {
          Status conflict = AlreadyExistsError("the account already has " + write.email);
          conflict.SetPayload(mapping::kExistingUserIdKey, id);
          return conflict;
        }
      }
      AccountRecord r;
      r.id = "u" + std::to_string(next_id_++);
      r.email = write.email;
      r.name = write.name.value_or("");
      r.role = write.role.value_or(mapping::Role::kMember);
      r.status = mapping::AccountUser::Status::kInvited;
      r.permissions = write.permissions.value_or(mapping::PermissionSpec{});
      r.projects = write.projects.value_or(std::vector<std::string>{});
      users_[r.id] = r;
      *applied = true;
      return r;
    }
    case AccountWrite::Kind::kPatch: {
      auto it = users_.find(write.user_id);
      if (it == users_.end()) return NotFoundError("no user " + write.user_id);
      AccountRecord& r = it->second;
      *email = base::AsciiLower(r.email);
      const AccountRecord before = r;
      if (write.name) r.name = *write.name;
      if (write.role) r.role = *write.role;
      if (write.permissions) r.permissions = *write.permissions;
      if (write.projects) r.projects = *write.projects;
      *applied = r.name != before.name || r.role != before.role ||
                 r.permissions != before.permissions || r.projects != before.projects;
      return r;
    }
    case AccountWrite::Kind::kDelete: {
      auto it = users_.find(write.user_id);
      if (it == users_.end()) return AccountRecord{};  // already gone: success
      *email = base::AsciiLower(it->second.email);
      users_.erase(it);
      *applied = true;
      return AccountRecord{};
    }
  }
  return InternalError("unknown write kind");
}

}  // namespace idsync::fakes
