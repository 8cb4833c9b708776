// Active Directory DirSync ("dirsync", control 1.2.840.113556.1.4.841):
// every watch_interval, the objects of the domain changed since the cookie,
// with the incremental-values flag, so that a membership change arrives as
// `member;range=1-1` (values added) and `member;range=0-0` (values removed)
// instead of the whole member list.
//
// What a returned object means for the cache:
// - a tombstone (isDeleted): the entry is removed, and a deleted user's DN is
//   taken out of every cached group (AD drops the links, but DirSync does not
//   report the groups that lost the member);
// - a cached group whose only changes are member values: the increments are
//   applied;
// - anything else under a configured base, or already cached: re-read whole
//   by objectGUID (DirSync returns only the changed attributes), which also
//   finds renames, moves out of a base and entries that stopped matching a
//   filter;
// - other objects of the domain are ignored.
//
// First start (no saved cookie): DirSync is drained from an empty cookie
// first and the users and groups are read in full after, so nothing changed
// in between is missed (it is replayed, harmlessly). The cookie is saved with
// the cache after every applied batch, once the consumer has it
// (PollingFeed). NewDirSyncFeed sends one DirSync
// request before returning, so that an account without the right to use
// DirSync (Replicating Directory Changes) gets kPermissionDenied at once and
// LdapSource::Follow falls back to uSNChanged polling.
#include <algorithm>
#include <chrono>
#include <set>
#include <utility>

#include "idsync/mapping/dn.h"

#include "feed_ad_common.h"
#include "feeds.h"
#include "ldap_util.h"

namespace idsync::ldap::internal {
namespace {

// LDAP_DIRSYNC_INCREMENTAL_VALUES.
constexpr ber_int_t kIncrementalValues = static_cast<ber_int_t>(0x80000000u);
// A filter no object matches, for the permission probe.
constexpr char kNothing[] = "(&(objectClass=user)(objectClass=group))";
// Attributes DirSync returns with every object; not changes by themselves.
constexpr const char* kBookkeeping[] = {"objectGUID", "instanceType", "parentGUID"};

bool HasText(const std::string& text) {
  return text.find_first_not_of(" \t\r\n") != std::string::npos;
}

std::string Hex(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 0xf];
  }
  return out;
}

bool Unhex(const std::string& text, std::string* out) {
  if (text.size() % 2 != 0) return false;
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  out->clear();
  for (std::size_t i = 0; i < text.size(); i += 2) {
    int high = digit(text[i]);
    int low = digit(text[i + 1]);
    if (high < 0 || low < 0) return false;
    out->push_back(static_cast<char>(high * 16 + low));
  }
  return true;
}

std::string Normalized(const std::string& dn) {
  Result<std::string> normalized = mapping::NormalizeDn(dn);
  return normalized.ok() ? *normalized : dn;
}

// One DirSync request and its answer: entries to `on_entry`, the new cookie
// and whether the server has more.
Status DirSyncOnce(Session& session, const std::string& base, const std::string& filter,
                   const std::string& cookie, const Session::EntryFn& on_entry,
                   std::string* next_cookie, bool* more) {
  std::unique_ptr<BerElement, BerDeleter> ber(ber_alloc_t(LBER_USE_DER));
  if (ber == nullptr) return session.Error(StatusCode::kInternal, "DirSync: out of memory");
  berval cookie_value{};
  cookie_value.bv_val = const_cast<char*>(cookie.data());
  cookie_value.bv_len = cookie.size();
  if (ber_printf(ber.get(), "{iiO}", kIncrementalValues, 0, &cookie_value) < 0) {
    return session.Error(StatusCode::kInternal, "DirSync: cannot encode the control");
  }
  berval value{};
  if (ber_flatten2(ber.get(), &value, 0) < 0) {
    return session.Error(StatusCode::kInternal, "DirSync: cannot encode the control");
  }
  LDAPControl control{};
  control.ldctl_oid = const_cast<char*>(kDirSyncOid.data());
  control.ldctl_value = value;
  control.ldctl_iscritical = 1;
  bool answered = false;
  RETURN_IF_ERROR(SearchWithControls(
      session, "DirSync under '" + base + "'", base, LDAP_SCOPE_SUBTREE, filter, {}, {&control},
      /*paged=*/false, on_entry, [&](LDAPControl** response) -> Status {
        LDAPControl* found = ldap_control_find(kDirSyncOid.data(), response, nullptr);
        if (found == nullptr) {
          return session.Error(StatusCode::kInternal,
                               "DirSync: the server answered without the DirSync control");
        }
        std::unique_ptr<BerElement, BerDeleter> reply(ber_init(&found->ldctl_value));
        if (reply == nullptr) return session.Error(StatusCode::kInternal, "DirSync: no memory");
        ber_int_t more_flag = 0;
        ber_int_t unused = 0;
        berval* returned = nullptr;
        if (ber_scanf(reply.get(), "{iiO}", &more_flag, &unused, &returned) == LBER_ERROR) {
          return session.Error(StatusCode::kInternal,
                               "DirSync: the server's control does not parse");
        }
        next_cookie->assign(returned != nullptr && returned->bv_val != nullptr
                                ? std::string(returned->bv_val, returned->bv_len)
                                : std::string());
        ber_bvfree(returned);
        *more = more_flag != 0;
        answered = true;
        return Status::Ok();
      }));
  if (!answered || next_cookie->empty()) {
    return session.Error(StatusCode::kInternal, "DirSync: the server returned no cookie");
  }
  return Status::Ok();
}

class DirSyncFeed : public PollingFeed {
 public:
  DirSyncFeed(FeedContext context, std::unique_ptr<Connection> connection, DcIdentity dc)
      : PollingFeed(std::move(context), "dirsync"), dc_(std::move(dc)) {
    connection_ = std::move(connection);
    session_ = std::make_unique<Session>(source_, *connection_, nullptr);
    filter_ = "(|(objectClass=user)(objectClass=group)" + Parenthesize(source_.users.filter);
    if (HasText(source_.groups.base)) filter_ += Parenthesize(source_.groups.filter);
    filter_ += ")";
  }

  ~DirSyncFeed() override { Close(); }

  std::string_view method() const override { return "dirsync"; }

 private:
  // Every change since `cookie_`, to the end (moreResults), through
  // `on_entry`; cookie_ advances only when all pages arrived.
  Status Drain(const Session::EntryFn& on_entry) {
    std::string cookie = cookie_;
    bool more = true;
    while (more) {
      std::string next;
      RETURN_IF_ERROR(DirSyncOnce(*session_, dc_.default_naming_context, filter_, cookie, on_entry,
                                  &next, &more));
      cookie = std::move(next);
    }
    cookie_ = std::move(cookie);
    return Status::Ok();
  }

  // Applies one returned object (see the file comment).
  Status Apply(LDAPMessage* entry, std::vector<std::string>* changed_users) {
    ASSIGN_OR_RETURN(std::string dn, EntryDn(*session_, entry));
    ASSIGN_OR_RETURN(std::string key, EntryKey(*session_, entry, dn));
    const CachedEntry* user = cache_.Find(CachedEntry::Kind::kUser, key);
    const CachedEntry* group = cache_.Find(CachedEntry::Kind::kGroup, key);
    std::string deleted = First(session_->ld(), entry, "isDeleted");
    if (EqualsIgnoreCase(deleted, "TRUE")) {
      RemoveDeleted(cache_, key);
      return Status::Ok();
    }
    ASSIGN_OR_RETURN(std::vector<std::string> descriptions, Descriptions(*session_, entry));
    std::vector<std::string> added, removed;
    bool other_change = false;
    for (const std::string& description : descriptions) {
      bool bookkeeping = false;
      for (const char* name : kBookkeeping) bookkeeping |= EqualsIgnoreCase(description, name);
      if (bookkeeping) continue;
      Result<MemberDescription> kind =
          ClassifyMemberDescription(description, source_.groups.member);
      if (kind.ok() && kind->kind == MemberDescription::Kind::kRanged && kind->low == kind->high &&
          kind->low <= 1) {
        std::vector<std::string> values = Values(session_->ld(), entry, description);
        std::vector<std::string>& into = kind->low == 1 ? added : removed;
        into.insert(into.end(), values.begin(), values.end());
        continue;
      }
      other_change = true;
    }
    if (group != nullptr && !other_change) {
      CachedEntry copy = *group;
      std::set<std::string> gone;
      for (const std::string& value : removed) gone.insert(Normalized(value));
      copy.members.erase(
          std::remove_if(copy.members.begin(), copy.members.end(),
                         [&](const std::string& m) { return gone.count(Normalized(m)) > 0; }),
          copy.members.end());
      std::set<std::string> present;
      for (const std::string& member : copy.members) present.insert(Normalized(member));
      for (const std::string& value : added) {
        if (present.insert(Normalized(value)).second) copy.members.push_back(value);
      }
      // The cached values are normalized; Put normalizes the list again.
      copy.members_normalized = false;
      cache_.Put(std::move(copy));
      return Status::Ok();
    }
    const bool in_scope = UnderBase(dn, source_.users.base) ||
                          (HasText(source_.groups.base) && UnderBase(dn, source_.groups.base));
    if (user == nullptr && group == nullptr && !in_scope) return Status::Ok();
    return Reload(*session_, cache_, key, changed_users);
  }

  Result<std::optional<mapping::SourceChange>> Fetch(bool full) {
    cache_.Begin();
    std::vector<std::string> changed_users;
    if (full) {
      cookie_.clear();
      RETURN_IF_ERROR(Drain([](LDAPMessage*) { return Status::Ok(); }));
      RETURN_IF_ERROR(LoadAll(*session_, cache_, &changed_users));
    } else {
      RETURN_IF_ERROR(Drain([&](LDAPMessage* entry) { return Apply(entry, &changed_users); }));
    }
    RETURN_IF_ERROR(RefreshDisabled(*session_, cache_, changed_users));
    bool changed = false;
    std::vector<std::string> emails = cache_.Commit(&changed);
    // The cookie moves on every poll, so it is saved after every one: a
    // restart then replays nothing already delivered.
    SaveDue();
    return Deliver(std::move(emails), changed, full);
  }

  Result<std::optional<mapping::SourceChange>> Start() override {
    ASSIGN_OR_RETURN(std::optional<std::string> saved,
                     LoadFeedState(*context_.state, state_key_, cache_));
    if (!saved || saved->empty() || !Unhex(*saved, &cookie_)) return Fetch(true);
    Result<std::optional<mapping::SourceChange>> resumed = Fetch(false);
    // A cookie the server refuses (another domain, a restored DC, a
    // damaged store) would fail every new feed the same way: start over
    // with a full refresh instead. Lost connections and refused binds are
    // not the cookie's fault and stay errors.
    const StatusCode code = resumed.status().code();
    if (!resumed.ok() && code != StatusCode::kUnavailable &&
        code != StatusCode::kDeadlineExceeded && code != StatusCode::kUnauthenticated &&
        code != StatusCode::kPermissionDenied) {
      return Fetch(true);
    }
    return resumed;
  }

  Result<std::optional<mapping::SourceChange>> Poll() override { return Fetch(false); }

  Status Save() override {
    return context_.state->Save(state_key_, cache_.Serialize(Hex(cookie_)));
  }

  DcIdentity dc_;
  std::string filter_;
  std::string cookie_;  // raw bytes
};

}  // namespace

Result<std::unique_ptr<mapping::ChangeFeed>> NewDirSyncFeed(FeedContext context) {
  if (context.source == nullptr || context.state == nullptr) {
    return InternalError("change feed: no source or state store");
  }
  const LdapConfig& source = *context.source;
  if (source.flavor != Flavor::kActiveDirectory) {
    return FailedPreconditionError("source '" + source.name +
                                   "': DirSync needs flavor "
                                   "active_directory");
  }
  SigpipeGuard guard;
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> connection, OpenConnection(source));
  if (!connection->Supports(kDirSyncOid)) {
    return FailedPreconditionError("source '" + source.name + "': " + connection->url +
                                   " does not offer DirSync");
  }
  DcIdentity dc;
  {
    Session session(source, *connection, nullptr);
    ASSIGN_OR_RETURN(dc, ReadDcIdentity(session));
    // The permission probe: a DirSync request that matches nothing.
    std::string cookie;
    bool more = false;
    RETURN_IF_ERROR(DirSyncOnce(
        session, dc.default_naming_context, kNothing, "", [](LDAPMessage*) { return Status::Ok(); },
        &cookie, &more));
  }
  return std::unique_ptr<mapping::ChangeFeed>(
      new DirSyncFeed(std::move(context), std::move(connection), std::move(dc)));
}

}  // namespace idsync::ldap::internal
