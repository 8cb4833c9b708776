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
#include "full_read.h"
#include "ldap_util.h"
#include "snapshot_builder.h"

namespace idsync::ldap {
namespace {

using internal::Connection;
using internal::GroupsRead;
using internal::MergeGroups;
using internal::ReadGroups;
using internal::ReadUsers;
using internal::Session;
using internal::SigpipeGuard;
using SteadyClock = std::chrono::steady_clock;

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
