// RFC 4533 change following ("syncrepl"): one sync search for the users and
// one for the groups, refreshAndPersist on one connection, each with its own
// cookie; refreshOnly polling every watch_interval ("syncrepl-poll") when
// asked to, or when the server ends or refuses the persist stage.
//
// Why our own protocol code rather than libldap's ldap_sync_*: every wait
// here must be bounded (timeout, the watchdog) and interruptible, and a
// batch must be applied whole or not at all.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <utility>

#include "feeds.h"
#include "ldap_util.h"

namespace idsync::ldap::internal {
namespace {

// How long one ldap_result call waits: Interrupt() is seen this often.
constexpr std::chrono::milliseconds kSlice(100);
// After a first change arrives, how long to wait for the ones that came
// with it (a group change that touched several entries).
constexpr std::chrono::milliseconds kGather(30);

struct BerFree {
  void operator()(BerElement* ber) const { ber_free(ber, 1); }
};
using Ber = std::unique_ptr<BerElement, BerFree>;

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
  }
  return out;
}

// A syncUUID (16 bytes) as entryUUID text.
std::string UuidText(std::string_view bytes) {
  std::string hex = Hex(bytes);
  if (bytes.size() != 16) return hex;
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

std::string BervalText(const berval& value) {
  return std::string(value.bv_val != nullptr ? value.bv_val : "", value.bv_len);
}

// The Sync Request control (RFC 4533 2.2), critical.
Result<std::unique_ptr<LDAPControl, ControlDeleter>> SyncRequest(int mode,
                                                                 const std::string& cookie) {
  Ber ber(ber_alloc_t(LBER_USE_DER));
  if (!ber) return InternalError("cannot allocate the sync request control");
  if (ber_printf(ber.get(), "{e", static_cast<ber_int_t>(mode)) == -1) {
    return InternalError("cannot encode the sync request control");
  }
  if (!cookie.empty()) {
    berval value{};
    value.bv_val = const_cast<char*>(cookie.data());
    value.bv_len = cookie.size();
    if (ber_printf(ber.get(), "O", &value) == -1) {
      return InternalError("cannot encode the sync request control");
    }
  }
  if (ber_printf(ber.get(), "N}") == -1) {
    return InternalError("cannot encode the sync request control");
  }
  berval encoded{};
  if (ber_flatten2(ber.get(), &encoded, 0) == -1) {
    return InternalError("cannot encode the sync request control");
  }
  LDAPControl* control = nullptr;
  if (ldap_control_create(LDAP_CONTROL_SYNC, 1, &encoded, 1, &control) != LDAP_SUCCESS) {
    return InternalError("cannot create the sync request control");
  }
  return std::unique_ptr<LDAPControl, ControlDeleter>(control);
}

// One sync search: the users' or the groups'.
struct SyncSearch {
  CachedEntry::Kind kind = CachedEntry::Kind::kUser;
  std::string what;
  std::string base;
  std::string filter;
  std::vector<std::string> attributes;
  std::string cookie;
  int message_id = -1;            // -1: not running
  bool refreshing = false;        // the refresh stage has not ended
  std::set<std::string> present;  // keys the server said are present
};

class SyncReplFeed : public mapping::ChangeFeed {
 public:
  SyncReplFeed(FeedContext context, bool poll_only)
      : context_(std::move(context)),
        source_(*context_.source),
        cache_(source_),
        poll_(poll_only),
        state_key_(context_.state_key + "/syncrepl") {
    users_.kind = CachedEntry::Kind::kUser;
    users_.what = "users sync search under '" + source_.users.base + "'";
    users_.base = source_.users.base;
    users_.filter = Parenthesize(source_.users.filter);
    users_.attributes = UserAttributes(source_);
    if (source_.groups.base.find_first_not_of(" \t\r\n") != std::string::npos) {
      has_groups_ = true;
      groups_.kind = CachedEntry::Kind::kGroup;
      groups_.what = "groups sync search under '" + source_.groups.base + "'";
      groups_.base = source_.groups.base;
      groups_.filter = Parenthesize(source_.groups.filter);
      groups_.attributes = GroupAttributes(source_);
    }
  }

  ~SyncReplFeed() override {
    // What was delivered last is saved now if the next Next() never came
    // (best effort: a feed that cannot save resumes from an older cookie).
    if (failure_.ok()) SaveDue().IgnoreError();
    SigpipeGuard guard;
    session_.reset();
    connection_.reset();
  }

  std::string_view method() const override { return poll_ ? "syncrepl-poll" : "syncrepl"; }

  void Interrupt() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      interrupted_ = true;
    }
    wake_.notify_all();
  }

  Result<std::optional<mapping::SourceChange>> Next(std::chrono::milliseconds wait) override {
    if (!failure_.ok()) return failure_;
    SigpipeGuard guard;
    Result<std::optional<mapping::SourceChange>> result = NextOnce(wait);
    if (!result.ok()) {
      // The cache may hold half a batch: this feed is done. The caller
      // starts a new one, which resumes from the last saved state.
      failure_ = result.status();
      session_.reset();
      connection_.reset();
    }
    return result;
  }

 private:
  std::vector<SyncSearch*> Searches() {
    std::vector<SyncSearch*> out{&users_};
    if (has_groups_) out.push_back(&groups_);
    return out;
  }

  bool TakeInterrupt() {
    std::lock_guard<std::mutex> lock(mutex_);
    bool was = interrupted_;
    interrupted_ = false;
    return was;
  }

  Status Connect() {
    ASSIGN_OR_RETURN(connection_, OpenConnection(source_));
    session_ = std::make_unique<Session>(source_, *connection_, nullptr);
    return Status::Ok();
  }

  Status Send(SyncSearch& search, int mode) {
    ASSIGN_OR_RETURN(auto control, SyncRequest(mode, search.cookie));
    LDAPControl* controls[] = {control.get(), nullptr};
    std::vector<char*> attrs;
    for (const std::string& a : search.attributes) attrs.push_back(const_cast<char*>(a.c_str()));
    attrs.push_back(nullptr);
    int message_id = 0;
    int rc = ldap_search_ext(session_->ld(), search.base.c_str(), LDAP_SCOPE_SUBTREE,
                             search.filter.c_str(), attrs.data(), 0, controls, nullptr, nullptr,
                             LDAP_NO_LIMIT, &message_id);
    if (rc != LDAP_SUCCESS) return session_->Ldap(rc, search.what, Diagnostic(session_->ld()));
    search.message_id = message_id;
    search.refreshing = true;
    search.present.clear();
    return Status::Ok();
  }

  void AbandonAll() {
    for (SyncSearch* search : Searches()) {
      if (search->message_id >= 0) {
        ldap_abandon_ext(session_->ld(), search->message_id, nullptr, nullptr);
      }
      search->message_id = -1;
      search->refreshing = false;
    }
  }

  // The end of a present phase: entries of this kind the server did not
  // name are gone.
  void EndPresentPhase(SyncSearch& search) {
    for (const std::string& key : cache_.Keys(search.kind)) {
      if (search.present.count(key) == 0) cache_.Remove(search.kind, key);
    }
    search.present.clear();
  }

  Status OnEntry(SyncSearch& search, LDAPMessage* message) {
    LDAPControl** raw = nullptr;
    int rc = ldap_get_entry_controls(session_->ld(), message, &raw);
    std::unique_ptr<LDAPControl*, ControlsDeleter> controls(raw);
    if (rc != LDAP_SUCCESS) {
      return session_->Ldap(rc, search.what + ": reading an entry's controls", "");
    }
    LDAPControl* state = ldap_control_find(LDAP_CONTROL_SYNC_STATE, controls.get(), nullptr);
    if (state == nullptr) {
      return session_->Error(StatusCode::kInternal,
                             search.what + ": an entry came without the sync state control");
    }
    Ber ber(ber_init(&state->ldctl_value));
    ber_int_t kind = 0;
    berval uuid{};
    if (!ber || ber_scanf(ber.get(), "{em", &kind, &uuid) == LBER_ERROR) {
      return session_->Error(StatusCode::kInternal,
                             search.what + ": a sync state control does not parse");
    }
    ber_len_t length = 0;
    if (ber_peek_tag(ber.get(), &length) == LDAP_TAG_SYNC_COOKIE) {
      berval cookie{};
      if (ber_scanf(ber.get(), "m", &cookie) != LBER_ERROR) search.cookie = BervalText(cookie);
    }
    std::string key = UuidText(BervalText(uuid));
    switch (kind) {
      case LDAP_SYNC_PRESENT:
        search.present.insert(std::move(key));
        return Status::Ok();
      case LDAP_SYNC_ADD:
      case LDAP_SYNC_MODIFY: {
        if (search.kind == CachedEntry::Kind::kUser) {
          ASSIGN_OR_RETURN(CachedEntry entry, UserEntry(*session_, message, key));
          changed_users_.push_back(key);
          cache_.Put(std::move(entry));
        } else {
          ASSIGN_OR_RETURN(CachedEntry entry, GroupEntry(*session_, message, key));
          cache_.Put(std::move(entry));
        }
        search.present.insert(std::move(key));
        ++applied_;
        return Status::Ok();
      }
      case LDAP_SYNC_DELETE:
        cache_.Remove(search.kind, key);
        ++applied_;
        return Status::Ok();
      default:
        return session_->Error(StatusCode::kInternal,
                               search.what + ": unknown sync state " + std::to_string(kind));
    }
  }

  Status OnIntermediate(SyncSearch& search, LDAPMessage* message) {
    char* raw_oid = nullptr;
    berval* raw_data = nullptr;
    int rc = ldap_parse_intermediate(session_->ld(), message, &raw_oid, &raw_data, nullptr, 0);
    LdapString oid(raw_oid);
    std::unique_ptr<berval, void (*)(berval*)> data(raw_data, ber_bvfree);
    if (rc != LDAP_SUCCESS) {
      return session_->Ldap(rc, search.what + ": reading a sync info message", "");
    }
    if (oid == nullptr || std::string_view(oid.get()) != LDAP_SYNC_INFO || data == nullptr) {
      return Status::Ok();  // some other intermediate response: not ours to read
    }
    Ber ber(ber_init(data.get()));
    if (!ber) return session_->Error(StatusCode::kInternal, search.what + ": bad sync info");
    auto bad = [&] {
      return session_->Error(StatusCode::kInternal,
                             search.what + ": a sync info message does not parse");
    };
    ber_len_t length = 0;
    ber_tag_t tag = ber_peek_tag(ber.get(), &length);
    berval cookie{};
    switch (tag) {
      case LDAP_TAG_SYNC_NEW_COOKIE:
        if (ber_scanf(ber.get(), "m", &cookie) == LBER_ERROR) return bad();
        search.cookie = BervalText(cookie);
        return Status::Ok();
      case LDAP_TAG_SYNC_REFRESH_DELETE:
      case LDAP_TAG_SYNC_REFRESH_PRESENT: {
        if (ber_scanf(ber.get(), "{") == LBER_ERROR) return bad();
        if (ber_peek_tag(ber.get(), &length) == LDAP_TAG_SYNC_COOKIE) {
          if (ber_scanf(ber.get(), "m", &cookie) == LBER_ERROR) return bad();
          search.cookie = BervalText(cookie);
        }
        ber_int_t done = 1;
        if (ber_peek_tag(ber.get(), &length) == LDAP_TAG_REFRESHDONE) {
          if (ber_scanf(ber.get(), "b", &done) == LBER_ERROR) return bad();
        }
        if (tag == LDAP_TAG_SYNC_REFRESH_PRESENT) EndPresentPhase(search);
        if (done != 0) search.refreshing = false;
        return Status::Ok();
      }
      case LDAP_TAG_SYNC_ID_SET: {
        if (ber_scanf(ber.get(), "{") == LBER_ERROR) return bad();
        if (ber_peek_tag(ber.get(), &length) == LDAP_TAG_SYNC_COOKIE) {
          if (ber_scanf(ber.get(), "m", &cookie) == LBER_ERROR) return bad();
          search.cookie = BervalText(cookie);
        }
        ber_int_t deletes = 0;
        if (ber_peek_tag(ber.get(), &length) == LDAP_TAG_REFRESHDELETES) {
          if (ber_scanf(ber.get(), "b", &deletes) == LBER_ERROR) return bad();
        }
        BerVarray uuids = nullptr;
        if (ber_scanf(ber.get(), "[W]", &uuids) == LBER_ERROR) return bad();
        for (BerVarray v = uuids; v != nullptr && v->bv_val != nullptr; ++v) {
          std::string key = UuidText(BervalText(*v));
          if (deletes != 0) {
            if (cache_.Remove(search.kind, key)) ++applied_;
          } else {
            search.present.insert(std::move(key));
          }
        }
        ber_bvarray_free(uuids);
        return Status::Ok();
      }
      default:
        return bad();
    }
  }

  // The search's final result. kOk when it ended as expected; the feed then
  // knows the refresh is over (refreshOnly) or that persist ended.
  Status OnResult(SyncSearch& search, LDAPMessage* message) {
    search.message_id = -1;
    int code = LDAP_SUCCESS;
    char* text = nullptr;
    LDAPControl** raw = nullptr;
    int rc = ldap_parse_result(session_->ld(), message, &code, nullptr, &text, nullptr, &raw, 0);
    LdapString text_owner(text);
    std::unique_ptr<LDAPControl*, ControlsDeleter> controls(raw);
    if (rc != LDAP_SUCCESS) return session_->Ldap(rc, search.what + ": reading the result", "");
    if (code == LDAP_SYNC_REFRESH_REQUIRED) {
      refresh_required_ = true;
      return Status::Ok();
    }
    if (code != LDAP_SUCCESS) {
      if (!poll_ && !search.refreshing) {
        // The server ended the persist stage with an error after a complete
        // refresh (an administrative limit, a restart of the overlay):
        // polling carries on from the cookie.
        persist_ended_ = true;
        return Status::Ok();
      }
      if (!poll_ && code != LDAP_SUCCESS && search.refreshing && search.present.empty() &&
          (code == LDAP_UNWILLING_TO_PERFORM || code == LDAP_ADMINLIMIT_EXCEEDED ||
           code == LDAP_UNAVAILABLE_CRITICAL_EXTENSION || code == LDAP_BUSY)) {
        persist_refused_ = true;
        return Status::Ok();
      }
      return session_->Ldap(code, search.what, text != nullptr ? text : "");
    }
    if (LDAPControl* done = ldap_control_find(LDAP_CONTROL_SYNC_DONE, controls.get(), nullptr)) {
      Ber ber(ber_init(&done->ldctl_value));
      ber_len_t length = 0;
      ber_int_t deletes = 0;
      if (ber && ber_scanf(ber.get(), "{") != LBER_ERROR) {
        if (ber_peek_tag(ber.get(), &length) == LDAP_TAG_SYNC_COOKIE) {
          berval cookie{};
          if (ber_scanf(ber.get(), "m", &cookie) != LBER_ERROR) search.cookie = BervalText(cookie);
        }
        if (ber_peek_tag(ber.get(), &length) == LDAP_TAG_REFRESHDELETES) {
          if (ber_scanf(ber.get(), "b", &deletes) == LBER_ERROR) deletes = 0;
        }
      }
      if (search.refreshing && deletes == 0) EndPresentPhase(search);
    } else if (search.refreshing) {
      return session_->Error(StatusCode::kInternal,
                             search.what + ": the search ended without the sync done control");
    }
    if (!poll_) persist_ended_ = true;
    search.refreshing = false;
    return Status::Ok();
  }

  // Handles one message; false in *had when none came within `wait`.
  Status Pump(std::chrono::milliseconds wait, bool* had) {
    *had = false;
    Armed armed(session_->watchdog(), SteadyClock::now() + wait + source_.timeout + kWatchdogGrace);
    timeval tv = ToTimeval(wait);
    LDAPMessage* raw = nullptr;
    int type = ldap_result(session_->ld(), LDAP_RES_ANY, LDAP_MSG_ONE, &tv, &raw);
    Message message(raw);
    if (type == 0) return Status::Ok();
    if (type < 0) {
      if (session_->watchdog().fired()) {
        return session_->Error(StatusCode::kDeadlineExceeded,
                               "change feed: the server stopped answering");
      }
      Status status =
          session_->Ldap(ResultCode(session_->ld()), "change feed", Diagnostic(session_->ld()));
      // A lost connection is worth a retry by the caller.
      return Status(StatusCode::kUnavailable, status.message());
    }
    *had = true;
    int id = ldap_msgid(message.get());
    SyncSearch* search = nullptr;
    for (SyncSearch* s : Searches()) {
      if (s->message_id == id) search = s;
    }
    if (search == nullptr) return Status::Ok();  // an abandoned search's leftovers
    switch (type) {
      case LDAP_RES_SEARCH_ENTRY:
        return OnEntry(*search, message.get());
      case LDAP_RES_INTERMEDIATE:
        return OnIntermediate(*search, message.get());
      case LDAP_RES_SEARCH_RESULT:
        return OnResult(*search, message.get());
      case LDAP_RES_SEARCH_REFERENCE:
        return session_->Error(StatusCode::kFailedPrecondition,
                               search->what +
                                   ": the server returned a continuation reference; "
                                   "referrals are not followed");
      default:
        return session_->Error(
            StatusCode::kInternal,
            search->what + ": unexpected LDAP message type " + std::to_string(type));
    }
  }

  bool Refreshing() {
    for (SyncSearch* search : Searches()) {
      if (search->refreshing) return true;
    }
    return false;
  }

  // Runs the searches' refresh stages to their end, each wait bounded by
  // `timeout`. Starts afresh (cache cleared, no cookies) when the server
  // says a cookie is too old.
  Status Refresh(int mode) {
    for (int attempt = 0;; ++attempt) {
      refresh_required_ = false;
      persist_refused_ = false;
      for (SyncSearch* search : Searches()) RETURN_IF_ERROR(Send(*search, mode));
      while (Refreshing() && !refresh_required_ && !persist_refused_) {
        bool had = false;
        RETURN_IF_ERROR(Pump(source_.timeout, &had));
        if (!had) {
          return session_->Error(
              StatusCode::kDeadlineExceeded,
              "change feed: no answer within " + std::to_string(source_.timeout.count()) + " ms");
        }
      }
      if (persist_refused_) {
        AbandonAll();
        poll_ = true;
        mode = LDAP_SYNC_REFRESH_ONLY;
        continue;
      }
      if (!refresh_required_) return Status::Ok();
      if (attempt > 0) {
        return session_->Error(StatusCode::kInternal,
                               "change feed: the server asked for a full refresh twice");
      }
      AbandonAll();
      cache_.Clear();
      for (SyncSearch* search : Searches()) search->cookie.clear();
      full_ = true;
    }
  }

  std::string Cookies() { return users_.cookie + "\n" + groups_.cookie; }

  Result<std::optional<mapping::SourceChange>> Finish() {
    std::vector<std::string> keys;
    if (full_) {
      keys = cache_.Keys(CachedEntry::Kind::kUser);
    } else {
      std::sort(changed_users_.begin(), changed_users_.end());
      changed_users_.erase(std::unique(changed_users_.begin(), changed_users_.end()),
                           changed_users_.end());
      keys = std::move(changed_users_);
    }
    changed_users_.clear();
    RETURN_IF_ERROR(RefreshDisabled(*session_, cache_, keys));
    bool changed = false;
    std::vector<std::string> emails = cache_.Commit(&changed);
    const bool full = full_;
    full_ = false;
    // The state is saved in the next Next(), once the server is idle (or
    // when the feed ends), not here: a save can take long (the whole directory now and
    // then) and the change is not to wait for it. Resuming from an older
    // saved state is always safe: the server sends the changes since again.
    if (changed || full || Cookies() != saved_cookies_) save_due_ = true;
    if (!changed && !full) return std::optional<mapping::SourceChange>();
    mapping::SourceChange change;
    ASSIGN_OR_RETURN(change.snapshot, cache_.Snapshot());
    change.emails = std::move(emails);
    change.full = full;
    return std::optional<mapping::SourceChange>(std::move(change));
  }

  // Saves the cache and the cookies when a delivered batch left them unsaved.
  Status SaveDue() {
    if (!save_due_) return Status::Ok();
    const std::string cookies = Cookies();
    RETURN_IF_ERROR(SaveFeedState(*context_.state, state_key_, cache_, cookies));
    saved_cookies_ = cookies;
    save_due_ = false;
    return Status::Ok();
  }

  Status Start() {
    ASSIGN_OR_RETURN(std::optional<std::string> cookies,
                     LoadFeedState(*context_.state, state_key_, cache_));
    if (cookies) {
      std::size_t newline = cookies->find('\n');
      users_.cookie = cookies->substr(0, newline);
      groups_.cookie = newline == std::string::npos ? "" : cookies->substr(newline + 1);
      saved_cookies_ = *cookies;
    } else {
      full_ = true;
    }
    RETURN_IF_ERROR(Connect());
    started_ = true;
    return Status::Ok();
  }

  // Sleeps until `until` or an Interrupt(); true when `until` was reached.
  bool SleepUntil(SteadyClock::time_point until) {
    std::unique_lock<std::mutex> lock(mutex_);
    wake_.wait_until(lock, until, [&] { return interrupted_; });
    bool interrupted = interrupted_;
    interrupted_ = false;
    return !interrupted && SteadyClock::now() >= until;
  }

  Result<std::optional<mapping::SourceChange>> NextOnce(std::chrono::milliseconds wait) {
    const SteadyClock::time_point deadline = SteadyClock::now() + wait;
    if (!started_) {
      RETURN_IF_ERROR(Start());
      cache_.Begin();
      RETURN_IF_ERROR(Refresh(poll_ ? LDAP_SYNC_REFRESH_ONLY : LDAP_SYNC_REFRESH_AND_PERSIST));
      next_poll_ = SteadyClock::now() + source_.watch_interval;
      return Finish();
    }
    if (!poll_) {
      cache_.Begin();
      applied_ = 0;
      // Wait for a first change, then gather what came with it. The last
      // batch's state is saved the first time the server has nothing for
      // us: a change already waiting goes first.
      while (applied_ == 0 && !persist_ended_) {
        if (TakeInterrupt()) return Finish();
        auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
        if (left.count() <= 0) break;
        bool had = false;
        RETURN_IF_ERROR(
            Pump(save_due_ ? std::chrono::milliseconds(0) : std::min(left, kSlice), &had));
        if (!had && applied_ == 0 && save_due_) RETURN_IF_ERROR(SaveDue());
      }
      while (applied_ > 0 && !persist_ended_) {
        bool had = false;
        RETURN_IF_ERROR(Pump(kGather, &had));
        if (!had) break;
      }
      if (refresh_required_) {
        // Only a refresh can follow; it rebuilds everything.
        AbandonAll();
        cache_.Clear();
        for (SyncSearch* search : Searches()) search->cookie.clear();
        full_ = true;
        RETURN_IF_ERROR(Refresh(LDAP_SYNC_REFRESH_AND_PERSIST));
        return Finish();
      }
      if (!persist_ended_) return Finish();
      // The server ended the persist stage: poll from here on, at once.
      AbandonAll();
      poll_ = true;
      next_poll_ = SteadyClock::now();
      Result<std::optional<mapping::SourceChange>> pending = Finish();
      if (!pending.ok() || pending->has_value()) return pending;
    }
    RETURN_IF_ERROR(SaveDue());
    if (SteadyClock::now() < next_poll_) {
      if (!SleepUntil(std::min(deadline, next_poll_)) || SteadyClock::now() < next_poll_) {
        return std::optional<mapping::SourceChange>();
      }
    }
    cache_.Begin();
    RETURN_IF_ERROR(Refresh(LDAP_SYNC_REFRESH_ONLY));
    next_poll_ = SteadyClock::now() + source_.watch_interval;
    return Finish();
  }

  FeedContext context_;
  const LdapConfig& source_;
  EntryCache cache_;
  bool poll_;
  std::string state_key_;
  SyncSearch users_;
  SyncSearch groups_;
  bool has_groups_ = false;
  std::unique_ptr<Connection> connection_;
  std::unique_ptr<Session> session_;
  bool started_ = false;
  bool full_ = false;
  bool refresh_required_ = false;
  bool persist_refused_ = false;
  bool persist_ended_ = false;
  std::size_t applied_ = 0;
  std::vector<std::string> changed_users_;
  std::string saved_cookies_;
  bool save_due_ = false;  // the last batch delivered is not saved yet
  SteadyClock::time_point next_poll_;
  Status failure_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool interrupted_ = false;
};

}  // namespace

Result<bool> SyncReplUsable(Connection& connection, const LdapConfig& source) {
  Session session(source, connection, nullptr);
  ASSIGN_OR_RETURN(auto control, SyncRequest(LDAP_SYNC_REFRESH_ONLY, ""));
  LDAPControl* controls[] = {control.get(), nullptr};
  const char* attributes[] = {LDAP_NO_ATTRS, nullptr};
  const std::string what = "sync probe of '" + source.users.base + "'";
  Armed armed(session.watchdog(), SteadyClock::now() + source.timeout + kWatchdogGrace);
  int message_id = 0;
  int rc = ldap_search_ext(session.ld(), source.users.base.c_str(), LDAP_SCOPE_BASE,
                           "(objectClass=*)", const_cast<char**>(attributes), 0, controls, nullptr,
                           nullptr, LDAP_NO_LIMIT, &message_id);
  if (rc != LDAP_SUCCESS) return session.Ldap(rc, what, Diagnostic(session.ld()));
  std::size_t entries = 0;
  Message done;
  RETURN_IF_ERROR(session.Collect(
      what, message_id, [](LDAPMessage*) { return Status::Ok(); }, &entries, &done));
  int code = LDAP_SUCCESS;
  rc = ldap_parse_result(session.ld(), done.get(), &code, nullptr, nullptr, nullptr, nullptr, 0);
  if (rc != LDAP_SUCCESS) return session.Ldap(rc, what + ": reading the result", "");
  // The control is listed server-wide, but the database holding the users
  // may have no sync provider.
  if (code == LDAP_UNAVAILABLE_CRITICAL_EXTENSION || code == LDAP_UNWILLING_TO_PERFORM) {
    return false;
  }
  RETURN_IF_ERROR(session.CheckResult(what, source.users.base, done.get(), nullptr));
  return true;
}

Result<std::unique_ptr<mapping::ChangeFeed>> NewSyncReplFeed(FeedContext context, bool poll_only) {
  if (context.source == nullptr || context.state == nullptr) {
    return InternalError("change feed: no source or state store");
  }
  return std::unique_ptr<mapping::ChangeFeed>(new SyncReplFeed(std::move(context), poll_only));
}

}  // namespace idsync::ldap::internal
