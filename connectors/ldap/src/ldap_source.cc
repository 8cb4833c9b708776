#include "idsync/ldap/ldap_source.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
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
using internal::EntryReader;
using internal::MemberDescription;
using internal::Session;
using internal::SigpipeGuard;
using SteadyClock = std::chrono::steady_clock;

// The groups of one read, gathered apart from the SnapshotBuilder (which is
// single-threaded) so that they can be read on a second connection while
// the users are read on the first; merged into the builder afterwards.
struct GroupsRead {
  struct Group {
    std::string dn;
    std::string id;
    std::string name;
    std::vector<std::uint32_t> members;  // keys in `values`
  };
  internal::TextIndex values;  // member values as the server wrote them, once
  std::vector<Group> groups;
  std::vector<std::vector<std::string>> chains;  // groups.in_chain: parallel to `groups`
  std::size_t pages = 0;
  std::size_t ranged_fetches = 0;
};

void AddValues(GroupsRead* out, std::uint32_t group, const EntryReader::Attribute& attribute,
               std::vector<std::string_view>* scratch) {
  scratch->clear();
  for (std::size_t i = 0; i < attribute.count; ++i) {
    const berval& value = attribute.values[i];
    scratch->emplace_back(value.bv_val, value.bv_len);
  }
  std::vector<std::uint32_t>& members = out->groups[group].members;
  const std::size_t at = members.size();
  members.resize(at + scratch->size());
  out->values.InsertAll(scratch->data(), scratch->size(), members.data() + at);
}

// Users, then disabled users, into the builder. `on_user` is told how many
// users were read so far, after each.
Status ReadUsers(const LdapConfig& source, Session& session, internal::SnapshotBuilder& builder,
                 const std::function<void(std::size_t)>& on_user) {
  // Entries are read in place (EntryReader): only the strings the snapshot
  // keeps are made.
  EntryReader reader;
  std::size_t users = 0;
  RETURN_IF_ERROR(session.Search(
      "users search under '" + source.users.base + "'", source.users.base, LDAP_SCOPE_SUBTREE,
      internal::Parenthesize(source.users.filter), internal::UserAttributes(source), true,
      [&](LDAPMessage* entry) -> Status {
        RETURN_IF_ERROR(reader.Read(session, entry));
        ASSIGN_OR_RETURN(std::string id, internal::UserId(session, reader, reader.dn()));
        RETURN_IF_ERROR(builder.AddUser(std::string(reader.dn()), std::move(id),
                                        std::string(reader.First(source.users.email)),
                                        std::string(reader.First(source.users.name))));
        on_user(++users);
        return Status::Ok();
      }));

  // Disabled users: the server evaluates disabled_filter (Active Directory's
  // bit-and rule, for one, is only known to it), and only the DNs come back.
  if (source.users.disabled_filter.find_first_not_of(" \t\r\n") != std::string::npos) {
    RETURN_IF_ERROR(session.Search(
        "disabled users search under '" + source.users.base + "'", source.users.base,
        LDAP_SCOPE_SUBTREE, internal::AndFilter(source.users.filter, source.users.disabled_filter),
        {LDAP_NO_ATTRS}, true, [&](LDAPMessage* entry) -> Status {
          RETURN_IF_ERROR(reader.Read(session, entry));
          return builder.MarkDisabled(reader.dn()).status();
        }));
  }
  return Status::Ok();
}

// A group whose member values come in ranges, and the last range read.
struct RangedGroup {
  std::uint32_t index = 0;
  MemberDescription last;
};

// Groups, their ranged members and (groups.in_chain) their users as the
// server resolves them. Stops with an error as soon as `stop` is set.
Status ReadGroups(const LdapConfig& source, Session& session, GroupsRead* out,
                  const std::atomic<bool>& stop) {
  const auto stopped = [&] {
    // Never the read's error: the side that set `stop` failed first.
    return session.Error(StatusCode::kInternal, "groups read stopped: the users read failed");
  };
  EntryReader reader;
  std::vector<std::string_view> scratch;  // one attribute's values
  std::vector<RangedGroup> ranged;
  const std::string flavor_id = internal::FlavorIdAttribute(source.flavor);
  const std::string& member = source.groups.member;
  RETURN_IF_ERROR(session.Search(
      "groups search under '" + source.groups.base + "'", source.groups.base, LDAP_SCOPE_SUBTREE,
      internal::Parenthesize(source.groups.filter), internal::GroupAttributes(source), true,
      [&](LDAPMessage* entry) -> Status {
        if (stop.load(std::memory_order_relaxed)) return stopped();
        RETURN_IF_ERROR(reader.Read(session, entry));
        const auto index = static_cast<std::uint32_t>(out->groups.size());
        GroupsRead::Group& group = out->groups.emplace_back();
        group.dn = std::string(reader.dn());
        ASSIGN_OR_RETURN(group.id, internal::EntryId(session, reader, flavor_id, group.dn));
        group.name = std::string(reader.First(source.groups.name));
        for (const EntryReader::Attribute& attribute : reader.attributes()) {
          Result<MemberDescription> kind =
              internal::ClassifyMemberDescription(attribute.description, member);
          if (!kind.ok()) return session.Error(StatusCode::kInternal, kind.status().message());
          if (kind->kind == MemberDescription::Kind::kOther) continue;
          AddValues(out, index, attribute, &scratch);
          if (kind->kind == MemberDescription::Kind::kRanged && !kind->last) {
            ranged.push_back(RangedGroup{index, *kind});
          }
        }
        return Status::Ok();
      }));

  // Active Directory returns at most MaxValRange values of a large `member`
  // and names the range it sent; the rest is asked for range by range.
  for (RangedGroup& group : ranged) {
    const std::string& dn = out->groups[group.index].dn;
    while (!group.last.last) {
      if (stop.load(std::memory_order_relaxed)) return stopped();
      const std::string wanted = internal::NextRangeDescription(member, group.last);
      const std::string what = "members of group '" + dn + "' (" + wanted + ")";
      bool got = false;
      MemberDescription next;
      RETURN_IF_ERROR(session.Search(
          what, dn, LDAP_SCOPE_BASE, "(objectClass=*)", {wanted}, false,
          [&](LDAPMessage* entry) -> Status {
            RETURN_IF_ERROR(reader.Read(session, entry));
            for (const EntryReader::Attribute& attribute : reader.attributes()) {
              const std::string_view description = attribute.description;
              Result<MemberDescription> kind =
                  internal::ClassifyMemberDescription(description, member);
              if (!kind.ok()) return session.Error(StatusCode::kInternal, kind.status().message());
              if (kind->kind == MemberDescription::Kind::kOther) continue;
              if (kind->kind == MemberDescription::Kind::kRanged &&
                  kind->low != group.last.high + 1) {
                return session.Error(StatusCode::kInternal,
                                     what + ": the server sent '" + std::string(description) + "'");
              }
              AddValues(out, group.index, attribute, &scratch);
              got = true;
              next = *kind;
              // Plain values are the whole attribute: nothing follows.
              if (next.kind == MemberDescription::Kind::kPlain) next.last = true;
            }
            return Status::Ok();
          }));
      ++out->ranged_fetches;
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
  if (source.flavor == Flavor::kActiveDirectory && source.groups.in_chain && !out->groups.empty()) {
    if (stop.load(std::memory_order_relaxed)) return stopped();
    std::vector<std::string> dns;
    dns.reserve(out->groups.size());
    for (const GroupsRead::Group& group : out->groups) dns.push_back(group.dn);
    ASSIGN_OR_RETURN(out->chains, internal::ResolveInChain(session, dns));
    if (out->chains.size() != dns.size()) {
      return session.Error(StatusCode::kInternal, "in-chain resolution lost groups");
    }
  }
  return Status::Ok();
}

// The groups into the builder, after the users (AddGroup's checks apply).
Status MergeGroups(GroupsRead& read, internal::SnapshotBuilder& builder) {
  std::vector<std::uint32_t> ids(read.values.size());
  for (std::uint32_t key = 0; key < ids.size(); ++key) {
    ids[key] = builder.InternMember(read.values.Text(key));
  }
  read.values = {};
  for (std::size_t g = 0; g < read.groups.size(); ++g) {
    GroupsRead::Group& group = read.groups[g];
    ASSIGN_OR_RETURN(std::uint32_t index, builder.AddGroup(std::move(group.dn), std::move(group.id),
                                                           std::move(group.name)));
    for (std::uint32_t& member : group.members) member = ids[member];
    builder.AddMemberIds(index, std::move(group.members));
    if (!read.chains.empty()) builder.AddMembers(index, std::move(read.chains[g]));
  }
  return Status::Ok();
}

// The groups read on a second connection to the same server while the
// calling thread reads the users: the users search keeps the server busy
// on its own, and the groups search would otherwise wait for it. Both sides
// must succeed; the first failure on either is the read's, and it stops
// the other side at once (its socket is shut down, so even a wait inside
// libldap ends; a groups side still connecting is left to finish alone).
class ParallelGroups {
 public:
  ParallelGroups(const LdapConfig& source, Connection& users_connection)
      : state_(std::make_shared<State>(source, users_connection)) {}
  ~ParallelGroups() {
    if (thread_.joinable()) (void)Fail(InternalError("read abandoned"));
  }
  ParallelGroups(const ParallelGroups&) = delete;
  ParallelGroups& operator=(const ParallelGroups&) = delete;

  void Start() {
    if (!thread_.joinable()) thread_ = std::thread([state = state_] { Run(*state); });
  }
  bool started() const { return thread_.joinable(); }

  // The users side failed: stops the groups side and returns the read's
  // error (the groups side's, when it failed first and caused this one).
  Status Fail(Status status) {
    State& state = *state_;
    bool connecting = false;
    {
      std::lock_guard<std::mutex> lock(state.mutex);
      state.users_connection = nullptr;
      if (!state.failed) {
        state.failed = true;
        state.first = std::move(status);
      }
      state.stop = true;
      if (state.groups_connection != nullptr) state.groups_connection->watchdog->FireNow();
      connecting = state.connecting;
      status = state.first;
    }
    // A connect or bind cannot be interrupted from here; the thread owns
    // what it uses and ends on its own within connect_timeout + timeout.
    if (connecting) {
      thread_.detach();
    } else if (thread_.joinable()) {
      thread_.join();
    }
    return status;
  }

  // The users side is done: waits for the groups side. Its error, or OK
  // with `*fell_back` set when no second connection could be opened (the
  // caller reads the groups itself).
  Status Wait(bool* fell_back) {
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->users_connection = nullptr;
    }
    if (thread_.joinable()) thread_.join();
    *fell_back = state_->fell_back;
    return state_->failed ? state_->first : Status::Ok();
  }

  // After Wait.
  GroupsRead& result() { return state_->result; }

 private:
  // Shared with the thread, which may outlive this object (see Fail).
  struct State {
    State(const LdapConfig& config, Connection& users)
        : source(config), url(users.url), users_connection(&users) {}
    const LdapConfig source;
    const std::string url;
    GroupsRead result;       // the thread's until joined
    bool fell_back = false;  // likewise
    std::atomic<bool> stop{false};
    std::mutex mutex;  // guards what follows
    bool failed = false;
    Status first;
    Connection* users_connection;             // null once the users side is done
    Connection* groups_connection = nullptr;  // while the thread searches on it
    bool connecting = true;
  };

  static void Run(State& state) {
    // The signal mask is per thread.
    SigpipeGuard guard;
    Result<std::unique_ptr<Connection>> opened =
        internal::OpenConnectionTo(state.source, state.url);
    std::unique_ptr<Connection> connection;
    if (opened.ok()) connection = std::move(*opened);
    {
      std::lock_guard<std::mutex> lock(state.mutex);
      state.connecting = false;
      if (state.stop) return;
      // The server may limit connections per client; the groups are then
      // read after the users, on the first connection, whose errors count.
      if (connection == nullptr) {
        state.fell_back = true;
        return;
      }
      state.groups_connection = connection.get();
    }
    Session session(state.source, *connection, &state.result.pages);
    Status status = ReadGroups(state.source, session, &state.result, state.stop);
    std::lock_guard<std::mutex> lock(state.mutex);
    state.groups_connection = nullptr;
    if (!status.ok() && !state.failed) {
      state.failed = true;
      state.first = std::move(status);
      state.stop = true;
      if (state.users_connection != nullptr) state.users_connection->watchdog->FireNow();
    }
  }

  std::shared_ptr<State> state_;
  std::thread thread_;
};

}  // namespace

LdapSource::LdapSource(LdapConfig source, LdapSourceOptions options)
    : source_(std::move(source)), options_(std::move(options)) {}

LdapSource::~LdapSource() {
  // The unbind writes to the socket, which may be closed by now.
  SigpipeGuard guard;
  connection_.reset();
}

Result<std::unique_ptr<LdapSource>> LdapSource::Create(const LdapConfig& source) {
  return Create(source, LdapSourceOptions{});
}

Result<std::unique_ptr<LdapSource>> LdapSource::Create(const LdapConfig& source,
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
  stats->url = connection_->url;
  Session session(source_, *connection_, &stats->pages);
  internal::SnapshotBuilder builder(source_.name, source_.groups.nested, source_.groups.max_depth);
  const bool have_groups = source_.groups.base.find_first_not_of(" \t\r\n") != std::string::npos;

  // A directory with more users than parallel_groups_after gets its groups
  // read at the same time, on a second connection; a small one is not worth
  // the extra connection.
  ParallelGroups parallel(source_, *connection_);
  Status users = ReadUsers(source_, session, builder, [&](std::size_t read) {
    if (have_groups && read > options_.parallel_groups_after) parallel.Start();
  });
  if (!users.ok()) return parallel.started() ? parallel.Fail(std::move(users)) : users;

  GroupsRead local;
  GroupsRead* groups = &local;
  if (parallel.started()) {
    bool fell_back = false;
    RETURN_IF_ERROR(parallel.Wait(&fell_back));
    if (!fell_back) {
      groups = &parallel.result();
      stats->parallel_groups = true;
    }
  }
  if (have_groups && groups == &local) {
    const std::atomic<bool> never{false};
    Session groups_session(source_, *connection_, &local.pages);
    RETURN_IF_ERROR(ReadGroups(source_, groups_session, &local, never));
  }
  stats->pages += groups->pages;
  stats->ranged_fetches = groups->ranged_fetches;
  RETURN_IF_ERROR(MergeGroups(*groups, builder));

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
  context.source = std::make_shared<const LdapConfig>(source_);
  context.state = &state;
  context.supported_controls = connection->supported_controls;
  context.state_key = "ldap/" + source_.name;
  bool syncrepl = false;
  if (source_.flavor != Flavor::kActiveDirectory &&
      connection->Supports(internal::kSyncRequestOid)) {
    ASSIGN_OR_RETURN(syncrepl, internal::SyncReplUsable(*connection, source_));
  }
  // The feed opens its own connection when it starts; this one only told
  // what the server supports.
  connection.reset();
  if (source_.flavor == Flavor::kActiveDirectory) {
    if (std::find(context.supported_controls.begin(), context.supported_controls.end(),
                  internal::kDirSyncOid) != context.supported_controls.end()) {
      Result<std::unique_ptr<mapping::ChangeFeed>> dirsync =
          internal::NewDirSyncFeed(std::move(context));
      // Not permitted for the bind account: uSNChanged polling instead.
      if (dirsync.ok() || dirsync.status().code() != StatusCode::kPermissionDenied) {
        return dirsync;
      }
      context = internal::FeedContext{};
      context.source = std::make_shared<const LdapConfig>(source_);
      context.state = &state;
      context.state_key = "ldap/" + source_.name;
    }
    return internal::NewUsnChangedFeed(std::move(context));
  }
  if (syncrepl) return internal::NewSyncReplFeed(std::move(context));
  return internal::NewModifyTimestampFeed(std::move(context));
}

}  // namespace idsync::ldap
