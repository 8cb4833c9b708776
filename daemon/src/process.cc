// Process: the wiring of the daemon's parts (see process.h). Start builds
// them in dependency order, Reload hands each its part of a new
// configuration, Stop takes them down in the order that loses nothing.
#include "idsync/daemon/process.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <tuple>
#include <utility>

#include "idsync/daemon/admin.h"
#include "idsync/daemon/console.h"
#include "idsync/daemon/inputs.h"
#include "idsync/daemon/run_lock.h"
#include "idsync/daemon/sync.h"
#include "idsync/engine/executor.h"
#include "idsync/httpd/server.h"
#include "idsync/scim/endpoint.h"

#include "admin_backend.h"
#include "console_backend.h"
#include "feed_supervisor.h"
#include "generation.h"
#include "join.h"
#include "leadership.h"
#include "listeners.h"
#include "run_reporter.h"
#include "scheduler.h"
#include "scim_follower.h"
#include "scim_front.h"
#include "snapshot_cache.h"

namespace idsync::daemon {
namespace {

// The per-source series exist at 0 for every configured source (at start
// and after a reload that adds one).
void DeclareSources(Metrics& metrics, const config::Config& config) {
  for (const config::SourceConfig& source : config.sources) {
    metrics.DeclareSource(source.name);
    if (source.pushed) metrics.ScimSource(source.name);
  }
}

int Concurrency(const config::Config& config) {
  return std::clamp(config.account.concurrency, 1, 64);
}

}  // namespace

// Declared in the order the parts depend on one another, so that they are
// destroyed in reverse: the listeners first, the store last.
struct Process::Impl {
  Impl(Logger& l, Metrics& m, Notifier& n, ProcessOptions o)
      : log(l), metrics(m), notifier(n), options(std::move(o)) {
    if (!options.now) options.now = SystemNowMs;
  }

  Logger& log;
  Metrics& metrics;
  Notifier& notifier;
  ProcessOptions options;

  std::unique_ptr<RunLock> lock;
  std::unique_ptr<store::Store> store;
  // On a shared store (PostgreSQL): this replica's hold on the leader lease.
  std::unique_ptr<Leadership> leadership;
  std::string replica_id;
  // Sends the writes of every run: partial runs' ahead of full runs'.
  std::unique_ptr<engine::Executor> executor;
  Generations generations;
  std::unique_ptr<RunReporter> reporter;
  std::unique_ptr<ScimFront> scim;
  // On a shared store: keeps the SCIM view following the other replicas.
  std::unique_ptr<ScimFollower> follower;
  std::unique_ptr<SnapshotCache> snapshots;
  std::unique_ptr<Scheduler> scheduler;
  std::unique_ptr<FeedSupervisor> feeds;
  std::unique_ptr<DaemonAdmin> backend;
  std::unique_ptr<DaemonConsole> console_backend;
  std::unique_ptr<Console> console;
  std::unique_ptr<AdminApi> admin;
  std::unique_ptr<httpd::Server> scim_server;
  std::unique_ptr<httpd::Server> admin_server;
  bool stopping = false;  // controller thread only

  // The leader's parts (the scheduler's threads and the change feeds) run
  // only while this replica leads: from Start alone on a SQLite store, from
  // the election on a shared one. leader_mu orders an election against
  // Reload and Stop.
  std::mutex leader_mu;
  std::atomic<bool> leading{false};
  bool leader_parts_refused = false;  // guarded by leader_mu: stopping

  // The leader starts the full runs other replicas were asked for
  // (POST /v1/sync on a follower).
  void TakeRunRequests() {
    if (!leading) return;
    Result<store::RunRequests> taken = store->runs().TakeRunRequests();
    if (!taken.ok() || taken->count == 0) return;
    log.Info("run.requested", "another replica passed on a request for a full run",
             {{"requests", static_cast<long long>(taken->count)},
              {"force", taken->force ? "true" : "false"}});
    scheduler->RequestFullRun(taken->force).IgnoreError();
  }

  // This replica now leads (or, on a shared store, stopped leading). After
  // a loss: true once nothing runs as leader any more (Leadership::OnChange).
  bool OnLeadership(bool leader, std::int64_t epoch) {
    metrics.Leadership(leader, epoch);
    if (!leader) return StepDown();
    std::lock_guard lock(leader_mu);
    if (leader_parts_refused) return true;
    std::shared_ptr<Generation> gen = generations.Current();
    leading = true;
    scheduler->Start();
    if (gen) feeds->Start(gen->config);
    return true;
  }

  // Lost or given up: nothing more is sent from here. The fence refuses
  // what is under way and the account calls waiting are interrupted; the
  // leader's parts are stopped and joined, and a fresh generation (whose
  // account client was never interrupted) is installed for a later term.
  bool StepDown() {
    leading = false;
    generations.InterruptAll();
    std::lock_guard lock(leader_mu);
    if (feeds) feeds->Stop();
    if (!scheduler) return true;
    scheduler->RequestStop();
    if (!scheduler->Join(options.stop_grace)) return false;
    if (reporter) reporter->LeadershipEnded();
    std::shared_ptr<Generation> was = generations.Current();
    if (!was || leader_parts_refused) return true;
    Result<std::shared_ptr<Generation>> fresh =
        MakeGeneration(was->config, options.make_account, &log);
    if (!fresh.ok()) {
      log.Error("leader.generation_failed",
                "the configuration could not be set up again after the lease was lost",
                {{"error", fresh.status().message()}});
      return false;
    }
    generations.Install(*fresh);
    return true;
  }
};

Process::Process(Logger& logger, Metrics& metrics, Notifier& notifier, ProcessOptions options)
    : impl_(std::make_unique<Impl>(logger, metrics, notifier, std::move(options))) {}

Process::~Process() { Stop(); }

Status Process::Start(const config::Config& config) {
  Impl& p = *impl_;
  const std::string path = config.SqlitePath();
  if (!path.empty() && path != ":memory:") {
    RETURN_IF_ERROR(EnterStoreOwner(path));
    p.lock = std::make_unique<RunLock>(path);
    Status locked = p.lock->Acquire("idsyncd");
    if (!locked.ok()) {
      p.lock.reset();
      return locked;
    }
  }
  ASSIGN_OR_RETURN(p.store, p.options.open_store
                                ? p.options.open_store(config)
                                : store::Store::Open(StoreOptionsFor(config, "idsyncd")));
  p.replica_id = config.server.replica_id.empty() ? DefaultReplicaId() : config.server.replica_id;
  p.executor = std::make_unique<engine::Executor>(Concurrency(config));
  ASSIGN_OR_RETURN(std::shared_ptr<Generation> gen,
                   MakeGeneration(config, p.options.make_account, &p.log));

  const NowFn& now = p.options.now;
  p.reporter = std::make_unique<RunReporter>(p.log, p.metrics, p.notifier, *p.store, now);
  // A store other processes may share: the file lock above cannot reach
  // them, the leader lease does.
  const bool shared = path.empty();
  // Only the leader reconciles; a follower's SCIM writes reach the leader
  // through the store's change log, and it enqueues them then.
  p.scim = std::make_unique<ScimFront>(
      p.log, p.metrics, *p.store, now,
      [&p](const std::vector<std::string>& emails) {
        if (p.leading) p.scheduler->Enqueue(emails);
      },
      shared);
  p.snapshots = std::make_unique<SnapshotCache>(*p.scim);
  p.scheduler = std::make_unique<Scheduler>(p.options, now, p.log, p.generations, *p.store,
                                            *p.executor, *p.snapshots, *p.reporter);
  p.feeds =
      std::make_unique<FeedSupervisor>(p.log, p.metrics, *p.store, now, *p.snapshots, *p.scheduler);
  p.backend = std::make_unique<DaemonAdmin>(
      p.generations, *p.store, *p.snapshots, *p.scheduler, *p.reporter, now, [&p] {
        return p.leadership ? p.leadership->status() : ReplicaStatus{p.replica_id, true, 0};
      });

  DeclareSources(p.metrics, config);
  RETURN_IF_ERROR(p.scim->Start(config));
  p.generations.Install(gen);
  if (shared) {
    p.follower =
        std::make_unique<ScimFollower>(p.log, *p.store, *p.scim, [&p] { p.TakeRunRequests(); });
    p.follower->Start();
  }

  if (!config.server.listen.empty()) {
    httpd::Options o = ListenerOptions(config.server, p.metrics, "scim");
    o.listen = config.server.listen;
    o.tls_cert = config.server.tls_cert;
    o.tls_key = config.server.tls_key;
    o.max_body = config.server.max_body;
    // Workers run handlers only (a waiting connection holds none), and a
    // handler works or waits on the store's shared commit (listeners.h).
    o.threads = WaitingWorkers();
    o.running = SchedulableWorkers();
    o.render_error = scim::ScimErrorResponse;
    o.screen = [&p](httpd::Request* head) { return p.scim->Screen(head); };
    Result<std::unique_ptr<httpd::Server>> server =
        httpd::Server::Start(o, [&p](const httpd::Request& r) { return p.scim->Handle(r); });
    if (!server.ok()) return server.status().WithContext("SCIM listener");
    p.scim_server = std::move(server).value();
  }
  p.console_backend =
      std::make_unique<DaemonConsole>(*p.backend, p.generations, *p.store, *p.snapshots, now);
  p.console = std::make_unique<Console>(
      *p.console_backend, p.store->console_sessions(), p.log, now,
      std::chrono::duration_cast<std::chrono::milliseconds>(config.server.console_session));
  p.admin = std::make_unique<AdminApi>(config.server.admin_tokens, *p.backend, p.metrics,
                                       p.console.get());
  if (!config.server.admin_listen.empty()) {
    httpd::Options o = ListenerOptions(config.server, p.metrics, "admin");
    o.listen = config.server.admin_listen;
    o.tls_cert = config.server.admin_tls_cert;
    o.tls_key = config.server.admin_tls_key;
    o.threads = 4;
    o.render_error = AdminErrorResponse;
    Result<std::unique_ptr<httpd::Server>> server = httpd::Server::Start(o, p.admin->AsHandler());
    if (!server.ok()) {
      if (p.scim_server) p.scim_server->Stop(std::chrono::milliseconds(100));
      p.scim_server.reset();
      return server.status().WithContext("admin listener");
    }
    p.admin_server = std::move(server).value();
  }
  if (shared) {
    p.leadership = std::make_unique<Leadership>(
        p.log, *p.store, p.replica_id,
        std::chrono::duration_cast<std::chrono::milliseconds>(config.ha.lease),
        [&p](bool leader, std::int64_t epoch) { return p.OnLeadership(leader, epoch); });
    p.metrics.Leadership(false, 0);
    p.leadership->Campaign();
  } else {
    p.OnLeadership(true, 0);
  }
  return Status::Ok();
}

Status Process::Reload(const config::Config& config) {
  Impl& p = *impl_;
  std::shared_ptr<Generation> old = p.generations.Current();
  if (!old) return FailedPreconditionError("not started");
  const config::Config& was = old->config;
  std::vector<std::string> restart;
  if (config.store != was.store || config.store_password != was.store_password) {
    restart.push_back("store");
  }
  if (config.server.replica_id != was.server.replica_id) restart.push_back("server.replica_id");
  if (config.ha.lease != was.ha.lease) restart.push_back("ha.lease");
  if (config.server.listen != was.server.listen) restart.push_back("server.listen");
  if (config.server.admin_listen != was.server.admin_listen) {
    restart.push_back("server.admin_listen");
  }
  if (config.server.tls_cert != was.server.tls_cert ||
      config.server.tls_key != was.server.tls_key) {
    restart.push_back("server.tls");
  }
  if (config.server.admin_tls_cert != was.server.admin_tls_cert ||
      config.server.admin_tls_key != was.server.admin_tls_key) {
    restart.push_back("server.admin_tls");
  }
  const auto listener_settings = [](const config::ServerConfig& s) {
    return std::make_tuple(s.header_timeout, s.body_timeout, s.tls_handshake_timeout,
                           s.keep_alive_timeout, s.write_timeout, s.max_connections,
                           s.max_connections_per_ip, s.max_body);
  };
  if (listener_settings(config.server) != listener_settings(was.server)) {
    restart.push_back("the listeners' deadlines, caps or max_body");
  }
  if (!restart.empty()) {
    return FailedPreconditionError("changing " + Join(restart, ", ") + " needs a restart");
  }
  ASSIGN_OR_RETURN(std::shared_ptr<Generation> gen,
                   MakeGeneration(config, p.options.make_account, &p.log));
  // The same certificate paths, perhaps renewed files (an ACME client
  // replaces them in place): read again for new connections.
  if (p.scim_server) RETURN_IF_ERROR(p.scim_server->ReloadTls().WithContext("server.tls"));
  if (p.admin_server) {
    RETURN_IF_ERROR(p.admin_server->ReloadTls().WithContext("server.admin_tls"));
  }
  DeclareSources(p.metrics, config);
  RETURN_IF_ERROR(p.scim->Reload(config));
  p.admin->SetTokenHashes(config.server.admin_tokens);
  p.console->SetSessionLifetime(
      std::chrono::duration_cast<std::chrono::milliseconds>(config.server.console_session));
  p.executor->SetConcurrency(Concurrency(config));
  std::lock_guard lock(p.leader_mu);
  const bool leading = p.leading;
  if (leading) p.feeds->Stop();
  p.generations.Install(gen);
  // Drop snapshots of sources that are gone; new rules apply in a full run now.
  p.snapshots->Retain(config);
  if (leading) {
    p.scheduler->RequestFullRun().IgnoreError();  // refused only while stopping
    p.feeds->Start(config);
  }
  return Status::Ok();
}

bool Process::Stop() {
  Impl& p = *impl_;
  if (p.stopping && (p.scheduler == nullptr || !p.scheduler->joinable())) return true;
  p.stopping = true;
  {
    // No election from here on starts the leader's parts.
    std::lock_guard lock(p.leader_mu);
    p.leader_parts_refused = true;
  }
  if (p.leadership) p.leadership->Retire();
  if (p.scheduler) p.scheduler->RequestStop();
  // A write waiting to retry gives up now rather than at the forced exit;
  // it stays sent, and the next start finishes it with the same key.
  p.generations.InterruptAll();
  // Stop accepting SCIM first: what was accepted is already in the store.
  if (p.scim_server) p.scim_server->Stop(std::chrono::seconds(5));
  if (p.follower) p.follower->Stop();
  if (p.feeds) p.feeds->Stop();
  if (p.scheduler && !p.scheduler->Join(p.options.stop_grace)) {
    return false;  // the caller exits; sent writes are finished after restart
  }
  if (p.admin_server) p.admin_server->Stop(std::chrono::seconds(2));
  p.admin_server.reset();
  p.scim_server.reset();
  // Last: the runs have parked what they had, as leader.
  if (p.leadership) p.leadership->Stop();
  p.lock.reset();
  return true;
}

bool Process::Alive() const {
  const Impl& p = *impl_;
  if (p.generations.Current() == nullptr || p.scheduler == nullptr) return false;
  if (p.leadership && !p.leadership->healthy()) return false;
  // A follower runs no scheduler; a leader's must be running.
  return !p.leading || p.scheduler->Alive();
}

std::vector<int> Process::scim_ports() const {
  return impl_->scim_server ? impl_->scim_server->ports() : std::vector<int>{};
}

std::vector<int> Process::admin_ports() const {
  return impl_->admin_server ? impl_->admin_server->ports() : std::vector<int>{};
}

}  // namespace idsync::daemon
