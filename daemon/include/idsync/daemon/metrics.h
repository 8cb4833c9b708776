// Metrics: idsync's Prometheus metrics, one object per daemon process.
//
// Each method records one event under a fixed metric name (idsync_ prefix,
// units in the name, _total for counters); Render() returns the page that
// GET /metrics serves, in the Prometheus text format 0.0.4. The library behind
// it never shows here. Thread-safe: every method may be called from any thread.
//
// Labels are free text from idsync's own vocabulary (a run result, an
// operation kind, a configured source name); never a person, a token or an
// e-mail address, so the number of series stays bounded.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace idsync::daemon {

class Metrics {
 public:
  // Registers every metric family and sets idsync_build_info{version} to 1.
  explicit Metrics(std::string_view version);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Series of known label values exist at 0 from construction (every run
  // result, operation kind and result, safety limit, reload result, SCIM
  // method and status, account status), so that increase() and rate() see
  // the first event after a start.
  //
  // A full or partial run ended. `result` (RunResultOf, sync.h, as the
  // store's run log records it): "ok", "failed" (the run stopped:
  // a read, the plan or the account's credentials failed), "blocked" (a
  // safety limit refused the plan), "operations_failed" (operations were
  // rejected or left pending), "source_failed" (a source could not be read:
  // people it granted keep their access until it reads again).
  // idsync_runs_total{result}, idsync_run_duration_seconds (histogram),
  // idsync_last_run_timestamp_seconds{result} = `finished_at_unix`.
  void RunFinished(std::string_view result, double seconds, double finished_at_unix);

  // One outbox operation finished. `kind`: invite|update|remove|revoke|delete;
  // `result`: "applied", "rejected", "expired", ...
  // idsync_operations_total{kind,result}.
  void Operation(std::string_view kind, std::string_view result);

  // The outbox now: idsync_outbox_depth (pending operations) and
  // idsync_outbox_oldest_age_seconds (0 when empty).
  void OutboxDepth(std::int64_t depth, double oldest_age_seconds);

  // A source was read. ok: idsync_source_last_success_timestamp_seconds{source}
  // = `at_unix`, idsync_source_entries{source} = `entries`, and
  // idsync_source_up{source} = 1; failed: idsync_source_read_failures_total
  // {source} + 1 and idsync_source_up{source} = 0 (entries is ignored).
  void SourceRead(std::string_view source, bool ok, std::int64_t entries, double at_unix);

  // One SCIM request answered (fits scim::RequestObserver):
  // idsync_scim_requests_total{method,status} (a method or status outside
  // the known sets is counted as "other"),
  // idsync_scim_request_duration_seconds (histogram).
  void ScimRequest(std::string_view method, int status, double seconds);

  // `source` is configured: idsync_source_read_failures_total{source} exists
  // (at 0) from now on.
  void DeclareSource(std::string_view source);

  // `source` is a configured scim source: its
  // idsync_scim_patch_refused_total series exist (at 0) from now on, so that
  // increase() sees the first refusal.
  void ScimSource(std::string_view source);

  // The SCIM service refused a PATCH to `source` (scim::PatchRefusal).
  // idsync_scim_patch_refused_total{source,scim_type}; a `scim_type` that is
  // not an RFC 7644 keyword is counted as "none".
  void ScimPatchRefused(std::string_view source, std::string_view scim_type);

  // A safety limit refused a plan. `limit`: "max_removals", "max_changes",
  // "last_admin". idsync_safety_limit_trips_total{limit}.
  void SafetyTrip(std::string_view limit);

  // One Account API response. `status` the HTTP status, or 0 when no answer
  // came (connection refused, timeout, TLS): label status="error".
  // idsync_account_requests_total{status}.
  void AccountRequest(int status);

  // The HTTP listeners (`listener`: "scim" or "admin"; httpd::Observer):
  // idsync_http_connections{listener} open now;
  // idsync_http_connections_refused_total{listener,reason} answered 503 and
  // closed at once (reason: max_connections, max_connections_per_ip,
  // file_descriptors); idsync_http_deadlines_total{listener,deadline} that
  // passed (tls_handshake, header, body, keep_alive, write). Other label
  // values are counted as "other".
  void HttpConnectionOpened(std::string_view listener);
  void HttpConnectionClosed(std::string_view listener);
  void HttpConnectionRefused(std::string_view listener, std::string_view reason);
  void HttpDeadline(std::string_view listener, std::string_view deadline);

  // A SIGHUP reload ended: idsync_config_reloads_total{result="ok"|"failed"}.
  void ConfigReload(bool ok);

  // This replica's part in the leader lease: idsync_leader (1 while it
  // leads, else 0) and idsync_leader_epoch (the epoch it leads at, or last
  // led at; 0 before it ever led). A process alone on a SQLite store leads
  // at epoch 0.
  void Leadership(bool leader, std::int64_t epoch);

  // How far this replica's SCIM view is behind the store:
  // idsync_scim_view_lag_seconds, the age of the oldest change of another
  // replica it took in at its latest catch-up (0 when it had none), and
  // idsync_scim_view_changes_total, the changes taken in.
  void ScimViewLag(double seconds, std::int64_t changes);

  // The whole page, text format 0.0.4 (serve as "text/plain; version=0.0.4").
  std::string Render() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace idsync::daemon
