// An in-memory mapping::AccountDirectory for tests: the account's users,
// projects and catalog, the account contract's answers (409 with the holder's
// id on an invite of an address already there, 404 on a PATCH of a user
// that is gone, DELETE of a gone user is success, an idempotency key replays
// its first answer), and a log of every write in the order received.
//
// Faults are injected per write, like a fault-injecting Env: the next writes
// for an address (or any) answer with a chosen status instead of being
// applied, or a write is applied and its answer lost (the caller sees an
// error; a retry with the same key replays it).
//
// Thread-safe: several writes may be in flight at once.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/mapping/ports.h"

namespace idsync::fakes {

class FakeAccount : public mapping::AccountDirectory {
 public:
  struct LoggedWrite {
    mapping::AccountWrite::Kind kind;
    std::string email;    // the invite's address, or the addressed user's
    std::string user_id;  // the user written (created, patched, deleted)
    std::string idempotency_key;
    bool applied = false;  // the account changed
    StatusCode answer = StatusCode::kOk;
  };

  FakeAccount();

  // Adds a user as if it were already in the account; returns its id.
  std::string AddUser(mapping::AccountRecord record);
  void SetProjects(std::vector<mapping::Project> projects);
  // `record` is added (as if by hand) just before the next write is handled.
  void AppearsBeforeNextWrite(mapping::AccountRecord record);

  // The next `times` writes for `email` ("" = any address) fail with `code`
  // and change nothing. kUnauthenticated stands for a 401, kUnavailable for
  // 5xx after the client's retries, kInvalidArgument for a 400.
  void FailWrites(const std::string& email, StatusCode code, int times = 1);
  // Reads (catalog, projects, users) fail with `code` until cleared (kOk).
  void FailReads(StatusCode code);

  // The users now, by lower-case address.
  std::map<std::string, mapping::AccountRecord> Users() const;
  std::vector<LoggedWrite> Writes() const;
  void ClearWrites();

  Result<mapping::Catalog> GetCatalog() override;
  Result<std::vector<mapping::Project>> ListProjects() override;
  Result<std::vector<mapping::AccountRecord>> ListUsers() override;
  Result<mapping::AccountRecord> GetUser(const std::string& id) override;
  Result<mapping::AccountRecord> Write(const mapping::AccountWrite& write) override;

 private:
  struct Fault {
    std::string email;
    StatusCode code;
    int times;
  };
  Result<mapping::AccountRecord> Apply(const mapping::AccountWrite& write, std::string* email,
                                       bool* applied);

  mutable std::mutex mu_;
  std::map<std::string, mapping::AccountRecord> users_;  // by id
  std::vector<mapping::Project> projects_;
  std::vector<Fault> faults_;
  std::vector<mapping::AccountRecord> appearing_;
  StatusCode read_fault_ = StatusCode::kOk;
  std::map<std::string, Result<mapping::AccountRecord>> replies_;  // by idempotency key
  std::vector<LoggedWrite> log_;
  std::int64_t next_id_ = 1;
};

}  // namespace idsync::fakes
