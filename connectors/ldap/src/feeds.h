// Change following for the `ldap` source: one factory per method, and the
// entry cache every feed shares.
//
// A feed keeps an EntryCache: every user and group entry the full read
// would return, keyed by the entry's stable key (entryUUID text on OpenLDAP,
// objectGUID text on Active Directory), holding what a read needs: DN,
// e-mail, name, disabled, and the raw member values (DNs as the server wrote
// them, unresolved ones included, so that a group's membership resolves
// again when the missing entry appears). A feed applies what the server
// reports (add, modify, delete, rename) to the cache between Begin() and
// Commit(); Commit() returns the lower-cased e-mails the batch touched, and
// Snapshot() gives the SourceSnapshot exactly as a full read builds it
// (SnapshotBuilder), shared with whoever holds it and patched in place while
// nobody else does. The cache saves itself, with the feed's cookie, through
// mapping::FeedStateStore, so that a restart resumes from the cookie without
// a full refresh.
//
// Private to connectors/ldap. EntryCache is thread-compatible; the feeds are
// used from one thread, except ChangeFeed::Interrupt().
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/ldap/ldap_config.h"
#include "idsync/ldap/ldap_source.h"
#include "idsync/mapping/model.h"
#include "idsync/mapping/ports.h"

#include "connection.h"

namespace idsync::ldap::internal {

// Control OIDs the feeds look for in the root DSE's supportedControl.
inline constexpr std::string_view kSyncRequestOid = "1.3.6.1.4.1.4203.1.9.1.1";  // RFC 4533
inline constexpr std::string_view kDirSyncOid = "1.2.840.113556.1.4.841";        // AD DirSync
inline constexpr std::string_view kPagedResultsOid = "1.2.840.113556.1.4.319";   // RFC 2696

// One user or group entry as the cache keeps it.
struct CachedEntry {
  enum class Kind { kUser, kGroup };
  Kind kind = Kind::kUser;
  std::string key;    // stable key: entryUUID / objectGUID as text
  std::string id;     // DirectoryUser/Group::id as the full read computes it
  std::string dn;     // as the server wrote it
  std::string email;  // users: as read
  std::string name;
  bool disabled = false;             // users: matched by users.disabled_filter
  std::vector<std::string> members;  // groups: member values (DNs)
  // Filled by EntryCache::Put: the DN normalized, and `members` normalized
  // (values that are not DNs dropped). Feeds leave them empty / false.
  std::string normalized_dn;
  bool members_normalized = false;
};

// The entries of one source, kept between changes. See the file comment.
class EntryCache {
 public:
  // `source` gives the snapshot's name, nested and max_depth.
  explicit EntryCache(const LdapConfig& source);

  // Starts a batch of changes. Calls below record whom they touch.
  void Begin();
  // Adds the entry, or replaces the one with the same kind and key (a
  // modify or a rename). With `keep_disabled`, a replaced user keeps its
  // disabled flag (the feed asks the server again: RefreshDisabled).
  void Put(CachedEntry entry, bool keep_disabled = true);
  // Removes the entry of this kind and key; false when there was none.
  bool Remove(CachedEntry::Kind kind, const std::string& key);
  // Removes the entry with this key, user or group; false when none.
  bool RemoveAny(const std::string& key);
  // Sets a user's disabled flag; false when the key names no user.
  bool SetDisabled(const std::string& key, bool disabled);
  // Ends the batch: the lower-cased e-mails it touched, sorted and unique,
  // and true when anything changed. Whom the touched entries affect is
  // mapping::AffectedEmails between the cache as the batch found it and as
  // it left it: a user its address before and after; a group those who
  // joined or left it (nested ones included), or every member before and
  // after when its name, DN or id changed (rules match those).
  std::vector<std::string> Commit(bool* changed = nullptr);

  // Drops every entry (a full refresh follows). Inside a batch, whom the
  // dropped entries touched is recorded.
  void Clear();

  // The entry of this kind and key, or null.
  const CachedEntry* Find(CachedEntry::Kind kind, const std::string& key) const;
  // The key of the user whose normalized DN is `normalized_dn`, or null.
  const std::string* UserKeyByDn(const std::string& normalized_dn) const;
  // Every key of this kind.
  std::vector<std::string> Keys(CachedEntry::Kind kind) const;
  std::size_t users() const { return users_.size(); }
  std::size_t groups() const { return groups_.size(); }

  // The snapshot a full read would return for these entries. kInternal when
  // two entries share a DN (the server reported something inconsistent).
  // The cache keeps it, and brings it up to date in place for the next call
  // when it holds the only reference; a holder keeps an unchanging snapshot,
  // at the cost of one copy in the next call.
  Result<std::shared_ptr<const mapping::SourceSnapshot>> Snapshot() const;

  // Saves the entries and `cookie` under `key`: now and then a full copy,
  // in between only the entries changed since it (under key + "/journal"),
  // so that a small change does not rewrite the whole directory. Durable
  // when it returns (FeedStateStore::Save).
  Status Save(mapping::FeedStateStore& state, const std::string& key, const std::string& cookie);
  // Loads what Save wrote and returns the cookie; nullopt when nothing
  // usable was saved (the cache is then empty: refresh in full).
  Result<std::optional<std::string>> Load(mapping::FeedStateStore& state, const std::string& key);

  // The entries and `cookie` as one string, and back. Parse: kInternal for
  // text Serialize did not write (the feed then refreshes in full).
  std::string Serialize(const std::string& cookie) const;
  Status Parse(std::string_view text, std::string* cookie);

 private:
  using Map = std::map<std::string, CachedEntry, std::less<>>;
  // The cache as the batch found it (`before`) or as it is, for
  // mapping::AffectedEmails.
  class BatchView;
  Map& MapOf(CachedEntry::Kind kind) { return kind == CachedEntry::Kind::kUser ? users_ : groups_; }
  const Map& MapOf(CachedEntry::Kind kind) const {
    return kind == CachedEntry::Kind::kUser ? users_ : groups_;
  }
  // Records, once per batch and entry, the entry as the batch found it: a
  // user's address, a group's identity and member values (see Commit).
  void Touch(CachedEntry::Kind kind, const std::string& key);
  void IndexDns() const;
  // NormalizeDn(dn), "" when invalid, remembered for the batch.
  const std::string& NormalizeMemo(const std::string& dn);
  // Brings built_ up to date without a rebuild (see Snapshot).
  Status Patch() const;
  // Points member values naming `old_dn` at `new_dn` (both normalized).
  void Renamed(const std::string& old_dn, const std::string& new_dn);

  std::string source_;
  bool nested_ = true;
  int max_depth_ = 32;
  Map users_;
  Map groups_;
  bool in_batch_ = false;
  bool changed_ = false;
  std::set<std::pair<int, std::string>> touched_;
  bool cleared_ = false;  // Clear() in this batch
  // A touched user's address as the batch found it ("" when it had none or
  // did not exist).
  std::map<std::string, std::string, std::less<>> users_before_;
  // A touched group as the batch found it.
  struct GroupBefore {
    bool existed = false;
    std::string id, dn, name, normalized_dn;
    std::vector<std::string> members;  // normalized member values
  };
  std::map<std::string, GroupBefore, std::less<>> groups_before_;
  // Normalized DN -> key of the touched groups that existed, as they were.
  std::unordered_map<std::string, std::string> group_before_by_dn_;
  std::unordered_map<std::string, std::string> memo_;
  // Entries changed since the last full save (kind, key), for the journal.
  std::set<std::pair<int, std::string>> dirty_;
  bool full_saved_ = false;
  bool needs_full_ = false;
  // The last snapshot built, and what changed since: Snapshot() patches it
  // for modified entries and added or removed users, and rebuilds it for
  // anything else (groups added or removed, renames, a refresh).
  mutable std::shared_ptr<mapping::SourceSnapshot> built_;
  mutable bool structural_ = true;
  mutable std::set<std::pair<int, std::string>> patched_;
  mutable std::vector<std::string> added_users_;
  mutable std::vector<std::pair<std::string, std::string>> removed_users_;  // key, normalized DN
  mutable std::vector<std::string> user_keys_;                      // by index in built_->users
  mutable std::vector<std::string> user_ndns_;                      // normalized DNs, by index
  mutable std::unordered_map<std::string, std::uint32_t> user_at_;  // key -> index
  mutable std::unordered_map<std::string, std::uint32_t> group_at_;
  mutable std::unordered_map<std::string, std::uint32_t> user_at_dn_;  // normalized DN -> index
  mutable std::unordered_map<std::string, std::uint32_t> group_at_dn_;
  // Normalized DN -> key, rebuilt lazily after changes.
  mutable bool dn_index_valid_ = false;
  mutable std::unordered_map<std::string, std::string> user_by_dn_;
  mutable std::unordered_map<std::string, std::string> group_by_dn_;
};

// Everything a feed factory gets. `source` and `state` outlive the feed.
struct FeedContext {
  // A copy the feed shares, so that a feed outlives the LdapSource that
  // started it.
  std::shared_ptr<const LdapConfig> source;
  mapping::FeedStateStore* state = nullptr;
  // The root DSE's supportedControl, read when Follow() chose the method.
  std::vector<std::string> supported_controls;
  // Key prefix under which the feed keeps its state in `state`.
  std::string state_key;
};

// What the polling feeds (dirsync, usnchanged, modifytimestamp) share: the
// failure latch (after an error every Next() returns it: the cache may hold
// half a batch, and the caller starts a new feed), Interrupt(), the wait of
// watch_interval between polls, and the order of delivering and saving: a
// poll's state is saved in the next Next() or when the feed ends, once the
// consumer has the change, so that a crash in between delivers it again
// rather than losing it.
class PollingFeed : public mapping::ChangeFeed {
 public:
  ~PollingFeed() override;
  void Interrupt() final;
  Result<std::optional<mapping::SourceChange>> Next(std::chrono::milliseconds wait) final;

 protected:
  // The feed keeps its state under context.state_key + "/" + `method`.
  PollingFeed(FeedContext context, std::string_view method);
  // The first poll: from the saved state, or in full.
  virtual Result<std::optional<mapping::SourceChange>> Start() = 0;
  // A later poll, when watch_interval has passed.
  virtual Result<std::optional<mapping::SourceChange>> Poll() = 0;
  // Saves the cache with the mark of the last poll.
  virtual Status Save() = 0;
  // Called by a poll that moved the cache or its mark: Save() is due.
  void SaveDue() { save_due_ = true; }
  // Derived destructors call this first (the base's cannot reach Save()):
  // saves what is due, best effort, and closes the connection.
  void Close();
  // The change a poll delivers (nullopt when nothing changed and `full` is
  // false); the next poll is due in watch_interval.
  Result<std::optional<mapping::SourceChange>> Deliver(std::vector<std::string> emails,
                                                       bool changed, bool full);

  FeedContext context_;
  const LdapConfig& source_;
  EntryCache cache_;
  std::string state_key_;
  std::unique_ptr<Connection> connection_;
  std::unique_ptr<Session> session_;

 private:
  Result<std::optional<mapping::SourceChange>> NextOnce(std::chrono::milliseconds wait);

  bool started_ = false;
  bool save_due_ = false;  // the last poll delivered is not saved yet
  SteadyClock::time_point next_poll_;
  Status failure_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool interrupted_ = false;
};

// RFC 4533 refreshAndPersist over one connection ("syncrepl"); falls back
// by itself to refreshOnly polling every watch_interval ("syncrepl-poll")
// when the server refuses or drops persist mode. With `poll_only`, polls
// from the start.
Result<std::unique_ptr<mapping::ChangeFeed>> NewSyncReplFeed(FeedContext context,
                                                             bool poll_only = false);

// True when a refreshOnly sync search on users.base works over
// `connection` (slapd lists the sync control even for a database without a
// sync provider). Errors other than "unavailable" as Read() documents.
Result<bool> SyncReplUsable(Connection& connection, const LdapConfig& source);

// Polls `(&(filter)(modifyTimestamp>=T))` every watch_interval and sweeps
// the entries' keys to find deletions ("modifytimestamp").
Result<std::unique_ptr<mapping::ChangeFeed>> NewModifyTimestampFeed(FeedContext context);

// Active Directory DirSync (1.2.840.113556.1.4.841) ("dirsync"). H4's.
Result<std::unique_ptr<mapping::ChangeFeed>> NewDirSyncFeed(FeedContext context);

// Active Directory uSNChanged polling pinned to one domain controller
// ("usnchanged"). H4's.
Result<std::unique_ptr<mapping::ChangeFeed>> NewUsnChangedFeed(FeedContext context);

// The entry's stable key: the flavor's id attribute (entryUUID,
// objectGUID) as text. kInternal when the entry has none.
Result<std::string> EntryKey(const Session& session, LDAPMessage* entry, const std::string& dn);

// A user entry from a search that asked for UserAttributes(source), as the
// full read reads it (disabled left false: see RefreshDisabled).
Result<CachedEntry> UserEntry(const Session& session, LDAPMessage* entry, std::string key);

// A group entry from a search that asked for GroupAttributes(source), with
// its plain `member` values. Ranged values (Active Directory) are fetched to
// the end with base searches, as the full read does.
Result<CachedEntry> GroupEntry(Session& session, LDAPMessage* entry, std::string key);

// Sets the disabled flag of the cached users `keys` by asking the server
// which of them match (&(users.filter)(users.disabled_filter)): one base
// search per user when there are few, else one paged search over
// users.base. Does nothing when disabled_filter is blank. Inside a batch.
Status RefreshDisabled(Session& session, EntryCache& cache, const std::vector<std::string>& keys);

// Loads the state a feed saved under `key` (cache.Load): the cache and the
// cookie. nullopt when nothing usable was saved (a full refresh follows).
Result<std::optional<std::string>> LoadFeedState(mapping::FeedStateStore& state,
                                                 const std::string& key, EntryCache& cache);

// Saves the cache and the cookie under `key` (cache.Save). Call between
// batches, never inside one; the syncrepl feed saves a delivered batch in
// the next Next(), once the server has nothing waiting, so that no change
// waits for the write (resuming from an older saved state is safe: the server sends the
// later changes again).
Status SaveFeedState(mapping::FeedStateStore& state, const std::string& key, EntryCache& cache,
                     const std::string& cookie);

}  // namespace idsync::ldap::internal
