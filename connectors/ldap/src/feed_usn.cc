// Active Directory uSNChanged polling ("usnchanged"), for a bind account
// that may not use DirSync, plus the helpers both AD feeds share
// (feed_ad_common.h).
//
// Every watch_interval: the users and groups under their bases whose
// uSNChanged is above the mark, re-read whole; then deletions. USNs are per
// domain controller, so the feed stays on the DC it first read (the first
// URL that answered) and records its dsServiceName and invocationId; when a
// later connection lands on another DC, or the DC's invocationId changed
// (restored database), the mark means nothing there and the feed refreshes
// in full (SourceChange.full).
//
// Deletions: every poll compares the id sets, one paged search per kind
// under its base asking only objectGUID; a cached key the server no longer
// returns was deleted, moved out of the base or stopped matching the filter,
// and is removed (its DN also taken out of the cached groups). Searching the
// Deleted Objects container with the Show Deleted control would cost less,
// but this feed is what accounts without DirSync rights get, and such
// accounts may not read tombstones: Samba even shows them the container and
// silently hides its contents, so deletions would be missed without an error.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <set>
#include <utility>

#include "idsync/mapping/dn.h"

#include "feed_ad_common.h"
#include "feeds.h"
#include "ldap_util.h"

namespace idsync::ldap::internal {

namespace {

constexpr char kUsnChanged[] = "uSNChanged";

bool HasText(const std::string& text) {
  return text.find_first_not_of(" \t\r\n") != std::string::npos;
}

}  // namespace

Result<DcIdentity> ReadDcIdentity(Session& session) {
  DcIdentity id;
  std::string usn;
  RETURN_IF_ERROR(session.Search(
      "root DSE", "", LDAP_SCOPE_BASE, "(objectClass=*)",
      {"dsServiceName", "dnsHostName", "defaultNamingContext", "highestCommittedUSN"}, false,
      [&](LDAPMessage* entry) -> Status {
        id.ds_service_name = First(session.ld(), entry, "dsServiceName");
        id.dns_host_name = First(session.ld(), entry, "dnsHostName");
        id.default_naming_context = First(session.ld(), entry, "defaultNamingContext");
        usn = First(session.ld(), entry, "highestCommittedUSN");
        return Status::Ok();
      }));
  if (id.ds_service_name.empty() || id.default_naming_context.empty() || usn.empty()) {
    return session.Error(StatusCode::kInternal,
                         "the root DSE has no dsServiceName, defaultNamingContext or "
                         "highestCommittedUSN: not an Active Directory domain controller");
  }
  auto [end, error] = std::from_chars(usn.data(), usn.data() + usn.size(), id.highest_usn);
  if (error != std::errc() || end != usn.data() + usn.size()) {
    return session.Error(StatusCode::kInternal, "highestCommittedUSN '" + usn + "' is no number");
  }
  RETURN_IF_ERROR(session.Search(
      "invocationId of '" + id.ds_service_name + "'", id.ds_service_name, LDAP_SCOPE_BASE,
      "(objectClass=*)", {"invocationId"}, false, [&](LDAPMessage* entry) -> Status {
        std::vector<std::string> values = Values(session.ld(), entry, "invocationId");
        if (values.empty()) return Status::Ok();
        Result<std::string> text = FormatGuid(values[0]);
        if (!text.ok()) return session.Error(StatusCode::kInternal, text.status().message());
        id.invocation_id = *text;
        return Status::Ok();
      }));
  if (id.invocation_id.empty()) {
    return session.Error(StatusCode::kInternal, "'" + id.ds_service_name + "' has no invocationId");
  }
  return id;
}

Status SearchWithControls(Session& session, const std::string& what, const std::string& base,
                          int scope, const std::string& filter,
                          const std::vector<std::string>& attributes,
                          const std::vector<LDAPControl*>& controls, bool paged,
                          const Session::EntryFn& on_entry,
                          const std::function<Status(LDAPControl** response)>& on_result) {
  const LdapConfig& source = session.source();
  std::vector<char*> attrs;
  for (const std::string& a : attributes) attrs.push_back(const_cast<char*>(a.c_str()));
  attrs.push_back(nullptr);
  std::string cookie;
  while (true) {
    std::unique_ptr<LDAPControl, ControlDeleter> page_control;
    std::vector<LDAPControl*> sent = controls;
    if (paged) {
      berval cookie_value{};
      cookie_value.bv_val = cookie.data();
      cookie_value.bv_len = cookie.size();
      LDAPControl* control = nullptr;
      int rc = ldap_create_page_control(session.ld(), static_cast<ber_int_t>(source.page_size),
                                        &cookie_value, 1, &control);
      if (rc != LDAP_SUCCESS) return session.Ldap(rc, what + ": building the paging control", "");
      page_control.reset(control);
      sent.push_back(control);
    }
    sent.push_back(nullptr);
    Armed armed(session.watchdog(), SteadyClock::now() + source.timeout + kWatchdogGrace);
    timeval limit = ToTimeval(source.timeout);
    if (limit.tv_sec == 0) limit = timeval{1, 0};
    int message_id = 0;
    int rc = ldap_search_ext(session.ld(), base.c_str(), scope, filter.c_str(),
                             attributes.empty() ? nullptr : attrs.data(), 0, sent.data(), nullptr,
                             &limit, LDAP_NO_LIMIT, &message_id);
    if (rc != LDAP_SUCCESS) return session.Ldap(rc, what, Diagnostic(session.ld()));
    std::size_t entries = 0;
    Message done;
    RETURN_IF_ERROR(session.Collect(what, message_id, on_entry, &entries, &done));
    LDAPControl** response = nullptr;
    RETURN_IF_ERROR(session.CheckResult(what, base, done.get(), &response));
    std::unique_ptr<LDAPControl*, ControlsDeleter> response_owner(response);
    if (on_result) RETURN_IF_ERROR(on_result(response));
    if (!paged) return Status::Ok();
    LDAPControl* page = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, response, nullptr);
    if (page == nullptr) {
      return session.Error(StatusCode::kInternal,
                           what + ": the server answered a page without the paged-results control");
    }
    ber_int_t estimate = 0;
    berval next{};
    rc = ldap_parse_pageresponse_control(session.ld(), page, &estimate, &next);
    if (rc != LDAP_SUCCESS) {
      return session.Ldap(rc, what + ": reading the paged-results control",
                          Diagnostic(session.ld()));
    }
    cookie.assign(next.bv_val != nullptr ? next.bv_val : "", next.bv_len);
    ber_memfree(next.bv_val);
    if (cookie.empty()) return Status::Ok();
  }
}

bool UnderBase(const std::string& dn, const std::string& base) {
  Result<std::string> entry = mapping::NormalizeDn(dn);
  Result<std::string> root = mapping::NormalizeDn(base);
  if (!entry.ok() || !root.ok()) return false;
  if (root->empty()) return true;
  if (*entry == *root) return true;
  return entry->size() > root->size() &&
         entry->compare(entry->size() - root->size(), root->size(), *root) == 0 &&
         (*entry)[entry->size() - root->size() - 1] == ',';
}

namespace {

// Users (or groups) under their base matching their filter and `extra`,
// put into the cache whole.
Status LoadKind(Session& session, EntryCache& cache, CachedEntry::Kind kind,
                const std::string& extra, std::vector<std::string>* user_keys,
                std::set<std::string>* seen) {
  const LdapConfig& source = session.source();
  const bool user = kind == CachedEntry::Kind::kUser;
  const std::string& base = user ? source.users.base : source.groups.base;
  std::string filter = user ? source.users.filter : source.groups.filter;
  if (!extra.empty()) filter = AndFilter(filter, extra);
  std::vector<std::string> attributes = user ? UserAttributes(source) : GroupAttributes(source);
  attributes.push_back(FlavorIdAttribute(source.flavor));
  const std::string what = std::string(user ? "users" : "groups") +
                           (extra.empty() ? "" : " with " + extra) + " under '" + base + "'";
  return session.Search(what, base, LDAP_SCOPE_SUBTREE, Parenthesize(filter), attributes, true,
                        [&](LDAPMessage* entry) -> Status {
                          ASSIGN_OR_RETURN(std::string dn, EntryDn(session, entry));
                          ASSIGN_OR_RETURN(std::string key, EntryKey(session, entry, dn));
                          if (seen != nullptr) seen->insert(key);
                          if (user) {
                            ASSIGN_OR_RETURN(CachedEntry cached, UserEntry(session, entry, key));
                            if (user_keys != nullptr) user_keys->push_back(key);
                            cache.Put(std::move(cached));
                          } else {
                            ASSIGN_OR_RETURN(CachedEntry cached, GroupEntry(session, entry, key));
                            cache.Put(std::move(cached));
                          }
                          return Status::Ok();
                        });
}

}  // namespace

Status LoadAll(Session& session, EntryCache& cache, std::vector<std::string>* user_keys) {
  cache.Clear();
  RETURN_IF_ERROR(LoadKind(session, cache, CachedEntry::Kind::kUser, "", user_keys, nullptr));
  if (HasText(session.source().groups.base)) {
    RETURN_IF_ERROR(LoadKind(session, cache, CachedEntry::Kind::kGroup, "", nullptr, nullptr));
  }
  return Status::Ok();
}

void RemoveDeleted(EntryCache& cache, const std::string& key) {
  const CachedEntry* entry = cache.Find(CachedEntry::Kind::kUser, key);
  if (entry == nullptr) entry = cache.Find(CachedEntry::Kind::kGroup, key);
  if (entry == nullptr) return;
  Result<std::string> normalized = mapping::NormalizeDn(entry->dn);
  cache.RemoveAny(key);
  if (!normalized.ok()) return;
  for (const std::string& group_key : cache.Keys(CachedEntry::Kind::kGroup)) {
    const CachedEntry* group = cache.Find(CachedEntry::Kind::kGroup, group_key);
    if (group == nullptr) continue;
    CachedEntry copy = *group;
    auto end = std::remove_if(copy.members.begin(), copy.members.end(), [&](const std::string& m) {
      Result<std::string> member = mapping::NormalizeDn(m);
      return member.ok() && *member == *normalized;
    });
    if (end == copy.members.end()) continue;
    copy.members.erase(end, copy.members.end());
    copy.members_normalized = false;  // Put normalizes the list again
    cache.Put(std::move(copy));
  }
}

Status Reload(Session& session, EntryCache& cache, const std::string& key,
              std::vector<std::string>* changed_users) {
  const LdapConfig& source = session.source();
  const std::string base = "<GUID=" + key + ">";
  for (CachedEntry::Kind kind : {CachedEntry::Kind::kUser, CachedEntry::Kind::kGroup}) {
    const bool user = kind == CachedEntry::Kind::kUser;
    const std::string& scope_base = user ? source.users.base : source.groups.base;
    if (!user && !HasText(scope_base)) break;
    std::vector<std::string> attributes = user ? UserAttributes(source) : GroupAttributes(source);
    attributes.push_back(FlavorIdAttribute(source.flavor));
    std::optional<CachedEntry> found;
    Status searched = session.Search(
        std::string("re-read of ") + (user ? "user " : "group ") + key, base, LDAP_SCOPE_BASE,
        Parenthesize(user ? source.users.filter : source.groups.filter), attributes, false,
        [&](LDAPMessage* entry) -> Status {
          ASSIGN_OR_RETURN(std::string dn, EntryDn(session, entry));
          if (!UnderBase(dn, scope_base)) return Status::Ok();
          if (user) {
            ASSIGN_OR_RETURN(found, UserEntry(session, entry, key));
          } else {
            ASSIGN_OR_RETURN(found, GroupEntry(session, entry, key));
          }
          return Status::Ok();
        });
    // Gone (deleted between the change and the re-read): not there.
    if (searched.code() == StatusCode::kNotFound) {
      cache.RemoveAny(key);
      return Status::Ok();
    }
    RETURN_IF_ERROR(searched);
    if (found) {
      // The other kind cannot hold the same key any more.
      cache.Remove(user ? CachedEntry::Kind::kGroup : CachedEntry::Kind::kUser, key);
      if (user && changed_users != nullptr) changed_users->push_back(key);
      cache.Put(std::move(*found));
      return Status::Ok();
    }
    cache.Remove(kind, key);
  }
  return Status::Ok();
}

namespace {

class UsnChangedFeed : public PollingFeed {
 public:
  explicit UsnChangedFeed(FeedContext context)
      : PollingFeed(std::move(context), "usnchanged"), has_groups_(HasText(source_.groups.base)) {}

  ~UsnChangedFeed() override { Close(); }

  std::string_view method() const override { return "usnchanged"; }

 private:
  // The saved mark: "<dsServiceName>\n<invocationId>\n<USN>".
  static std::string Mark(const DcIdentity& dc, std::uint64_t usn) {
    return dc.ds_service_name + "\n" + dc.invocation_id + "\n" + std::to_string(usn);
  }
  static bool ParseMark(const std::string& text, std::string* dc, std::uint64_t* usn) {
    std::size_t first = text.find('\n');
    std::size_t second = first == std::string::npos ? first : text.find('\n', first + 1);
    if (second == std::string::npos) return false;
    *dc = text.substr(0, second);
    const char* begin = text.data() + second + 1;
    const char* end = text.data() + text.size();
    auto [stop, error] = std::from_chars(begin, end, *usn);
    return error == std::errc() && stop == end;
  }

  // The cached keys the server no longer returns (deleted, moved out of
  // the base, no longer matching the filter).
  Status SweepDeletions(CachedEntry::Kind kind, const std::set<std::string>& seen_now) {
    const bool user = kind == CachedEntry::Kind::kUser;
    const std::string& base = user ? source_.users.base : source_.groups.base;
    const std::string& filter = user ? source_.users.filter : source_.groups.filter;
    std::set<std::string> present = seen_now;
    RETURN_IF_ERROR(session_->Search(
        std::string(user ? "users" : "groups") + " presence under '" + base + "'", base,
        LDAP_SCOPE_SUBTREE, Parenthesize(filter), {FlavorIdAttribute(source_.flavor)}, true,
        [&](LDAPMessage* entry) -> Status {
          ASSIGN_OR_RETURN(std::string dn, EntryDn(*session_, entry));
          ASSIGN_OR_RETURN(std::string key, EntryKey(*session_, entry, dn));
          present.insert(std::move(key));
          return Status::Ok();
        }));
    for (const std::string& key : cache_.Keys(kind)) {
      if (present.count(key) == 0) RemoveDeleted(cache_, key);
    }
    return Status::Ok();
  }

  Result<std::optional<mapping::SourceChange>> Fetch(bool full) {
    if (connection_ == nullptr) {
      ASSIGN_OR_RETURN(connection_, OpenConnection(source_));
      session_ = std::make_unique<Session>(source_, *connection_, nullptr);
      ASSIGN_OR_RETURN(DcIdentity dc, ReadDcIdentity(*session_));
      // Another DC, or this one restored from a backup: its USNs are not
      // comparable with the mark.
      if (!pinned_dc_.empty() && pinned_dc_ != dc.ds_service_name + "\n" + dc.invocation_id) {
        full = true;
      }
      dc_ = dc;
      pinned_dc_ = dc.ds_service_name + "\n" + dc.invocation_id;
    } else {
      ASSIGN_OR_RETURN(DcIdentity dc, ReadDcIdentity(*session_));
      if (dc.ds_service_name + "\n" + dc.invocation_id != pinned_dc_) full = true;
      dc_ = dc;
      pinned_dc_ = dc.ds_service_name + "\n" + dc.invocation_id;
    }
    // Everything committed up to here is covered by the searches below;
    // changes racing with them have higher USNs and come again next time.
    const std::uint64_t next_mark = dc_.highest_usn;
    cache_.Begin();
    std::vector<std::string> changed_users;
    if (full) {
      RETURN_IF_ERROR(LoadAll(*session_, cache_, &changed_users));
    } else {
      const std::string above = std::string(kUsnChanged) + ">=" + std::to_string(usn_ + 1);
      std::set<std::string> seen;
      RETURN_IF_ERROR(
          LoadKind(*session_, cache_, CachedEntry::Kind::kUser, above, &changed_users, &seen));
      if (has_groups_) {
        RETURN_IF_ERROR(
            LoadKind(*session_, cache_, CachedEntry::Kind::kGroup, above, nullptr, &seen));
      }
      RETURN_IF_ERROR(SweepDeletions(CachedEntry::Kind::kUser, seen));
      if (has_groups_) RETURN_IF_ERROR(SweepDeletions(CachedEntry::Kind::kGroup, seen));
    }
    RETURN_IF_ERROR(RefreshDisabled(*session_, cache_, changed_users));
    bool changed = false;
    std::vector<std::string> emails = cache_.Commit(&changed);
    const bool moved = next_mark != usn_;
    usn_ = next_mark;
    // Saved in the next Next() (or when the feed ends), once the consumer
    // has the change: a crash before that delivers it again rather than
    // losing it.
    if (changed || full || moved) SaveDue();
    return Deliver(std::move(emails), changed, full);
  }

  Result<std::optional<mapping::SourceChange>> Start() override {
    ASSIGN_OR_RETURN(std::optional<std::string> mark,
                     LoadFeedState(*context_.state, state_key_, cache_));
    if (!mark || !ParseMark(*mark, &pinned_dc_, &usn_)) {
      pinned_dc_.clear();
      return Fetch(true);
    }
    return Fetch(false);
  }

  Result<std::optional<mapping::SourceChange>> Poll() override { return Fetch(false); }

  Status Save() override {
    return context_.state->Save(state_key_, cache_.Serialize(Mark(dc_, usn_)));
  }

  bool has_groups_;
  DcIdentity dc_;
  std::string pinned_dc_;  // "<dsServiceName>\n<invocationId>" the mark belongs to
  std::uint64_t usn_ = 0;
};

}  // namespace

Result<std::unique_ptr<mapping::ChangeFeed>> NewUsnChangedFeed(FeedContext context) {
  if (context.source == nullptr || context.state == nullptr) {
    return InternalError("change feed: no source or state store");
  }
  if (context.source->flavor != Flavor::kActiveDirectory) {
    return FailedPreconditionError("source '" + context.source->name +
                                   "': uSNChanged polling needs flavor active_directory");
  }
  return std::unique_ptr<mapping::ChangeFeed>(new UsnChangedFeed(std::move(context)));
}

}  // namespace idsync::ldap::internal
