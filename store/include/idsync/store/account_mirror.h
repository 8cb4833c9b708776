// The account as idsync last saw it (the mirror, refreshed by every full run
// and by every landed write) and which of its users idsync manages. Partial
// runs plan against the mirror instead of reading the account.
// Thread-safe; blocks on I/O.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/mapping/ports.h"

namespace idsync::store {

// A managed account user.
struct ManagedUser {
  std::string user_id;
  std::string email;
  std::string how;  // "invited" | "adopted"
  std::int64_t since_ms = 0;
};

class AccountMirror {
 public:
  virtual ~AccountMirror() = default;

  // Replaces the whole mirror in one transaction. kInvalidArgument when a
  // user id appears twice.
  Status Replace(const std::vector<mapping::AccountRecord>& users, std::int64_t at_ms) {
    return Replace(users, at_ms, {});
  }
  // As above, except that the rows of the people in `keep` (ASCII lower-cased
  // e-mails) stay as they are and `users` is not read for them: a full run's
  // read of the account is older than a partial run's writes for them.
  virtual Status Replace(const std::vector<mapping::AccountRecord>& users, std::int64_t at_ms,
                         const std::vector<std::string>& keep) = 0;
  virtual Result<std::vector<mapping::AccountRecord>> Users() = 0;
  virtual Result<std::vector<ManagedUser>> Managed() = 0;

  // What a partial run reads, without reading everyone: the users whose
  // address (any case) is one of `emails` (ASCII lower-cased) and every
  // active admin, each once, ordered by address then id; how many users idsync
  // manages; and which of `user_ids` it manages. By default, from Users()
  // and Managed().
  virtual Result<std::vector<mapping::AccountRecord>> UsersFor(
      const std::vector<std::string>& emails);
  virtual Result<std::int64_t> ManagedCount();
  virtual Result<std::vector<ManagedUser>> ManagedAmong(const std::vector<std::string>& user_ids);
  // Records management outside a write (adoption with nothing to change).
  virtual Status SetManaged(const ManagedUser& user) = 0;
  virtual Status ForgetManaged(const std::string& user_id) = 0;
};

}  // namespace idsync::store
