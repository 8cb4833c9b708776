// The seams between the pure core and the outside: sources of identities and
// the account. Adapters in connectors/ implement them; tests substitute
// in-memory ones.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/mapping/catalog.h"
#include "idsync/mapping/model.h"

namespace idsync::mapping {

// Durable state of a change feed (a sync cookie, a high-water mark, the
// entries it follows), kept in the store under keys the feed chooses.
class FeedStateStore {
 public:
  virtual ~FeedStateStore() = default;
  virtual Result<std::optional<std::string>> Load(const std::string& key) = 0;
  // Durable when it returns.
  virtual Status Save(const std::string& key, const std::string& value) = 0;
};

// The source after some changes, and whom they touched.
struct SourceChange {
  // The whole source after the changes, never null. Shared with the feed,
  // which keeps it unchanged while anyone holds it: a consumer that lets go
  // of it before the next Next() saves the feed a copy of the whole source.
  std::shared_ptr<const SourceSnapshot> snapshot;
  // Lower-cased e-mail addresses whose access the changes may have changed:
  // those of changed entries, before and after (a renamed address appears
  // twice), and the users who joined or left a changed group, nested
  // membership included (every member, before and after, when the group's
  // name, DN or id changed).
  std::vector<std::string> emails;
  // Everything may have changed (a full refresh: first sync, cookie refused,
  // another domain controller): reconcile everyone.
  bool full = false;
};

// Follows one source's changes between full reads (`watch: true`).
// Used from one thread; Interrupt() may be called from any thread.
class ChangeFeed {
 public:
  virtual ~ChangeFeed() = default;
  // Waits up to `wait` for changes and returns them, or nullopt when there
  // were none. The first call may return a full refresh. An error means the
  // feed lost track (connection lost, cookie refused, server stopped
  // answering): the caller falls back to full reads and starts a new feed
  // later; the read is never partially trusted.
  virtual Result<std::optional<SourceChange>> Next(std::chrono::milliseconds wait) = 0;
  // Makes a blocked Next() return soon (with nullopt or an error).
  virtual void Interrupt() = 0;
  // How it follows: "syncrepl", "syncrepl-poll", "dirsync", "usnchanged",
  // "modifytimestamp".
  virtual std::string_view method() const = 0;
};

// A directory or identity provider, read whole. Implementations document
// their thread-safety; callers use one from one thread at a time.
class IdentitySource {
 public:
  virtual ~IdentitySource() = default;

  // The configured source name.
  virtual const std::string& name() const = 0;

  // One complete, consistent read. Any failure (unreachable, timed out,
  // truncated) is an error: a partial read is never returned.
  virtual Result<SourceSnapshot> Read() = 0;

  // Starts following changes, resuming from `state` when it holds a feed's
  // state. kFailedPrecondition when the source cannot be followed (no method
  // the server supports, or not configured to watch).
  virtual Result<std::unique_ptr<ChangeFeed>> Follow(FeedStateStore& state) {
    (void)state;
    return Status(StatusCode::kFailedPrecondition, "source " + name() + " cannot be followed");
  }
};

// One user as the account stores it (GET /users), before its permission map
// is expanded against a catalog.
struct AccountRecord {
  std::string id;
  std::string email;  // as stored
  std::string name;
  Role role = Role::kMember;
  AccountUser::Status status = AccountUser::Status::kInvited;
  PermissionSpec permissions;         // as stored (compact or not)
  std::vector<std::string> projects;  // project ids, as stored
  std::string created_at;             // RFC 3339, as the account gave it
  std::string updated_at;
};

// The compact form reconcile takes of a record: its permission map expanded
// through `catalog` (keys the catalog does not know are skipped: the account
// may store keys from before a catalog change), projects sorted and unique,
// `managed` false.
AccountUser CompactAccountUser(AccountRecord record, const Catalog& catalog);

// One write to the account, fully specified, so that it can be stored in the
// outbox and sent again unchanged after a crash.
struct AccountWrite {
  enum class Kind : std::uint8_t {
    kInvite,  // POST /users
    kPatch,   // PATCH /users/{user_id}
    kDelete,  // DELETE /users/{user_id}
  };
  Kind kind = Kind::kInvite;
  std::string user_id;  // kPatch, kDelete
  // kInvite: all four are sent (email too); kPatch: those that are set.
  std::string email;
  std::optional<std::string> name;
  std::optional<Role> role;
  std::optional<PermissionSpec> permissions;         // compact form
  std::optional<std::vector<std::string>> projects;  // ids
  // Sent as Idempotency-Key; the same for every retry of this write, also
  // across restarts.
  std::string idempotency_key;
};

// The account: read whole, written one user at a time. Implementations are
// thread-safe: several writes may be in flight at once.
class AccountDirectory {
 public:
  virtual ~AccountDirectory() = default;

  // GET /catalog. kUnavailable / kDeadlineExceeded when the account cannot
  // be reached in time; kUnauthenticated / kPermissionDenied on 401 / 403.
  virtual Result<Catalog> GetCatalog() = 0;

  // GET /projects.
  virtual Result<std::vector<Project>> ListProjects() = 0;

  // Every page of GET /users. Fails whole: a partial list is never returned.
  virtual Result<std::vector<AccountRecord>> ListUsers() = 0;

  // The users of ListUsers, handed to `on_page` a page at a time as they
  // arrive (it may move from them), so that a caller keeping a compact form
  // never holds every record at once. An error from `on_page` stops the
  // listing and is returned. Fails whole like ListUsers: after an error,
  // whatever the earlier pages gave is to be discarded. By default the whole
  // list is read first and handed over as one page.
  virtual Status ForEachUserPage(
      const std::function<Status(std::vector<AccountRecord>& page)>& on_page) {
    Result<std::vector<AccountRecord>> all = ListUsers();
    if (!all.ok()) return all.status();
    return on_page(*all);
  }

  // As ForEachUserPage, in the compact form (CompactAccountUser) a plan
  // needs, so that no permission map is built only to be expanded. By
  // default each page of ForEachUserPage is converted.
  virtual Status ForEachCompactUserPage(
      const Catalog& catalog, const std::function<Status(std::vector<AccountUser>& page)>& on_page);

  // GET /users/{id}. kNotFound when it does not exist.
  virtual Result<AccountRecord> GetUser(const std::string& id) = 0;

  // Sends one write, retrying transient failures (5xx, timeouts, dropped
  // connections, 429 after its Retry-After) with the same idempotency key
  // until the account answers for good or the retry deadline passes. Returns
  // the user after the write (kDelete: the record is empty). Errors:
  // kAlreadyExists on invite 409, with the existing user's id as the
  // kExistingUserIdKey payload;
  // kUnauthenticated / kPermissionDenied on 401 / 403 (stop the run);
  // kInvalidArgument (other 4xx) with the account's message; kNotFound on
  // PATCH of a user that is gone (DELETE of a gone user is success);
  // kDeadlineExceeded when the retry deadline ran out.
  virtual Result<AccountRecord> Write(const AccountWrite& write) = 0;
};

// Payload key of Write's kAlreadyExists: the id of the account user who
// holds the address an invite asked for.
inline constexpr std::string_view kExistingUserIdKey = "idsync.account.existing_user_id";

}  // namespace idsync::mapping
