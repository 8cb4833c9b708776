#include "idsync/ldap/ldap_source.h"

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include <ldap.h>

#include "connection.h"
#include "feeds.h"
#include "in_chain.h"
#include "ldap_util.h"
#include "snapshot_builder.h"

namespace idsync::ldap {
namespace {

using internal::Connection;
using internal::Descriptions;
using internal::EntryDn;
using internal::First;
using internal::MemberDescription;
using internal::Session;
using internal::SigpipeGuard;
using internal::Values;
using SteadyClock = std::chrono::steady_clock;

// A group whose member values come in ranges, and the last range read.
struct RangedGroup {
  std::uint32_t index = 0;
  std::string dn;
  MemberDescription last;
};

}  // namespace

LdapSource::LdapSource(config::SourceConfig source, LdapSourceOptions options)
    : source_(std::move(source)), options_(std::move(options)) {}

LdapSource::~LdapSource() {
  // The unbind writes to the socket, which may be closed by now.
  SigpipeGuard guard;
  connection_.reset();
}

Result<std::unique_ptr<LdapSource>> LdapSource::Create(const config::SourceConfig& source) {
  return Create(source, LdapSourceOptions{});
}

Result<std::unique_ptr<LdapSource>> LdapSource::Create(const config::SourceConfig& source,
                                                       LdapSourceOptions options) {
  RETURN_IF_ERROR(internal::CheckSource(source));
  return std::unique_ptr<LdapSource>(new LdapSource(source, std::move(options)));
}

SteadyClock::time_point LdapSource::Now() const {
  return options_.now ? options_.now() : SteadyClock::now();
}

Status LdapSource::Connect() {
  connection_.reset();
  ASSIGN_OR_RETURN(connection_, internal::OpenConnection(source_));
  last_used_ = Now();
  return Status::Ok();
}

Result<mapping::SourceSnapshot> LdapSource::ReadOnce(LdapStats* stats) {
  if (connection_ == nullptr) RETURN_IF_ERROR(Connect());
  LDAP* ld = connection_->ld.get();
  stats->url = connection_->url;
  Session session(source_, *connection_, &stats->pages);
  internal::SnapshotBuilder builder(source_.name, source_.groups.nested, source_.groups.max_depth);

  // Users.
  const std::string flavor_id = internal::FlavorIdAttribute(source_.flavor);
  RETURN_IF_ERROR(session.Search(
      "users search under '" + source_.users.base + "'", source_.users.base, LDAP_SCOPE_SUBTREE,
      internal::Parenthesize(source_.users.filter), internal::UserAttributes(source_), true,
      [&](LDAPMessage* entry) -> Status {
        ASSIGN_OR_RETURN(std::string dn, EntryDn(session, entry));
        ASSIGN_OR_RETURN(std::string id, internal::UserId(session, entry, dn));
        return builder.AddUser(std::move(dn), std::move(id), First(ld, entry, source_.users.email),
                               First(ld, entry, source_.users.name));
      }));

  // Disabled users: the server evaluates disabled_filter (Active Directory's
  // bit-and rule, for one, is only known to it), and only the DNs come back.
  if (source_.users.disabled_filter.find_first_not_of(" \t\r\n") != std::string::npos) {
    RETURN_IF_ERROR(
        session.Search("disabled users search under '" + source_.users.base + "'",
                       source_.users.base, LDAP_SCOPE_SUBTREE,
                       internal::AndFilter(source_.users.filter, source_.users.disabled_filter),
                       {LDAP_NO_ATTRS}, true, [&](LDAPMessage* entry) -> Status {
                         ASSIGN_OR_RETURN(std::string dn, EntryDn(session, entry));
                         Result<bool> marked = builder.MarkDisabled(dn);
                         return marked.status();
                       }));
  }

  // Groups, and the member ranges still to fetch.
  std::vector<RangedGroup> ranged;
  const bool in_chain =
      source_.flavor == config::Flavor::kActiveDirectory && source_.groups.in_chain;
  std::vector<std::uint32_t> group_indices;  // in_chain: the groups read, in order
  std::vector<std::string> group_dns;
  if (source_.groups.base.find_first_not_of(" \t\r\n") != std::string::npos) {
    const std::string& member = source_.groups.member;
    RETURN_IF_ERROR(session.Search(
        "groups search under '" + source_.groups.base + "'", source_.groups.base,
        LDAP_SCOPE_SUBTREE, internal::Parenthesize(source_.groups.filter),
        internal::GroupAttributes(source_), true, [&](LDAPMessage* entry) -> Status {
          ASSIGN_OR_RETURN(std::string dn, EntryDn(session, entry));
          ASSIGN_OR_RETURN(std::string id, internal::EntryId(session, entry, flavor_id, dn));
          ASSIGN_OR_RETURN(
              std::uint32_t index,
              builder.AddGroup(dn, std::move(id), First(ld, entry, source_.groups.name)));
          if (in_chain) {
            group_indices.push_back(index);
            group_dns.push_back(dn);
          }
          ASSIGN_OR_RETURN(std::vector<std::string> descriptions, Descriptions(session, entry));
          for (const std::string& description : descriptions) {
            Result<MemberDescription> kind =
                internal::ClassifyMemberDescription(description, member);
            if (!kind.ok()) return session.Error(StatusCode::kInternal, kind.status().message());
            if (kind->kind == MemberDescription::Kind::kOther) continue;
            builder.AddMembers(index, Values(ld, entry, description));
            if (kind->kind == MemberDescription::Kind::kRanged && !kind->last) {
              ranged.push_back(RangedGroup{index, dn, *kind});
            }
          }
          return Status::Ok();
        }));
  }

  // Active Directory returns at most MaxValRange values of a large `member`
  // and names the range it sent; the rest is asked for range by range.
  for (RangedGroup& group : ranged) {
    while (!group.last.last) {
      const std::string wanted = internal::NextRangeDescription(source_.groups.member, group.last);
      const std::string what = "members of group '" + group.dn + "' (" + wanted + ")";
      bool got = false;
      MemberDescription next;
      RETURN_IF_ERROR(session.Search(
          what, group.dn, LDAP_SCOPE_BASE, "(objectClass=*)", {wanted}, false,
          [&](LDAPMessage* entry) -> Status {
            ASSIGN_OR_RETURN(std::vector<std::string> descriptions, Descriptions(session, entry));
            for (const std::string& description : descriptions) {
              Result<MemberDescription> kind =
                  internal::ClassifyMemberDescription(description, source_.groups.member);
              if (!kind.ok()) return session.Error(StatusCode::kInternal, kind.status().message());
              if (kind->kind == MemberDescription::Kind::kOther) continue;
              if (kind->kind == MemberDescription::Kind::kRanged &&
                  kind->low != group.last.high + 1) {
                return session.Error(StatusCode::kInternal,
                                     what + ": the server sent '" + description + "'");
              }
              builder.AddMembers(group.index, Values(ld, entry, description));
              got = true;
              next = *kind;
              // Plain values are the whole attribute: nothing follows.
              if (next.kind == MemberDescription::Kind::kPlain) next.last = true;
            }
            return Status::Ok();
          }));
      ++stats->ranged_fetches;
      if (!got) {
        return session.Error(StatusCode::kInternal,
                             what + ": the server returned no further member values");
      }
      group.last = next;
    }
  }

  // groups.in_chain: the server lists every user in each group, however
  // deep the nesting; they join the direct members (the closure over the
  // union is the same set, so nesting settings keep their meaning).
  if (in_chain && !group_dns.empty()) {
    ASSIGN_OR_RETURN(std::vector<std::vector<std::string>> chains,
                     internal::ResolveInChain(session, group_dns));
    if (chains.size() != group_dns.size()) {
      return session.Error(StatusCode::kInternal, "in-chain resolution lost groups");
    }
    for (std::size_t i = 0; i < chains.size(); ++i) {
      builder.AddMembers(group_indices[i], std::move(chains[i]));
    }
  }

  internal::BuildCounts counts;
  mapping::SourceSnapshot snapshot = builder.Finish(&counts);
  stats->users = snapshot.users.size();
  stats->groups = snapshot.groups.size();
  stats->disabled_users = counts.disabled_users;
  stats->unresolved_members = counts.unresolved_members;
  stats->invalid_member_dns = counts.invalid_member_dns;
  return snapshot;
}

Result<mapping::SourceSnapshot> LdapSource::Read() {
  SigpipeGuard guard;
  if (connection_ != nullptr && Now() - last_used_ >= source_.idle_timeout) {
    // Servers and firewalls drop idle connections quietly; starting afresh
    // is cheaper than finding out half-way through a read.
    connection_.reset();
  }
  const bool reused = connection_ != nullptr;
  LdapStats stats;
  Result<mapping::SourceSnapshot> result = ReadOnce(&stats);
  if (!result.ok()) {
    // A handle an error went through (abandoned operations, a half-read
    // message) is never used again.
    connection_.reset();
    // A kept connection the server closed since the last read fails at once;
    // that says nothing about the server, so one fresh attempt is made. The
    // failed attempt's entries are discarded with it.
    if (reused && result.status().code() == StatusCode::kUnavailable) {
      stats = LdapStats{};
      stats.reconnected = true;
      result = ReadOnce(&stats);
      if (!result.ok()) connection_.reset();
    }
  }
  if (!result.ok()) return result.status();
  last_used_ = Now();
  last_stats_ = stats;
  return result;
}

Result<std::unique_ptr<mapping::ChangeFeed>> LdapSource::Follow(mapping::FeedStateStore& state) {
  if (!source_.watch) {
    return FailedPreconditionError("source '" + source_.name +
                                   "': watch is off, so changes are not followed");
  }
  SigpipeGuard guard;
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> connection, internal::OpenConnection(source_));
  internal::FeedContext context;
  context.source = std::make_shared<const config::SourceConfig>(source_);
  context.state = &state;
  context.supported_controls = connection->supported_controls;
  context.state_key = "ldap/" + source_.name;
  bool syncrepl = false;
  if (source_.flavor != config::Flavor::kActiveDirectory &&
      connection->Supports(internal::kSyncRequestOid)) {
    ASSIGN_OR_RETURN(syncrepl, internal::SyncReplUsable(*connection, source_));
  }
  // The feed opens its own connection when it starts; this one only told
  // what the server supports.
  connection.reset();
  if (source_.flavor == config::Flavor::kActiveDirectory) {
    if (std::find(context.supported_controls.begin(), context.supported_controls.end(),
                  internal::kDirSyncOid) != context.supported_controls.end()) {
      Result<std::unique_ptr<mapping::ChangeFeed>> dirsync =
          internal::NewDirSyncFeed(std::move(context));
      // Not permitted for the bind account: uSNChanged polling instead.
      if (dirsync.ok() || dirsync.status().code() != StatusCode::kPermissionDenied) {
        return dirsync;
      }
      context = internal::FeedContext{};
      context.source = std::make_shared<const config::SourceConfig>(source_);
      context.state = &state;
      context.state_key = "ldap/" + source_.name;
    }
    return internal::NewUsnChangedFeed(std::move(context));
  }
  if (syncrepl) return internal::NewSyncReplFeed(std::move(context));
  return internal::NewModifyTimestampFeed(std::move(context));
}

}  // namespace idsync::ldap
