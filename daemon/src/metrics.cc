// Metrics over prometheus-cpp. Families are registered once in the
// constructor; Family::Add is idempotent per label set and internally locked,
// counters and gauges are atomic, so the recorders need no lock of their own.

#include "idsync/daemon/metrics.h"

#include <exception>
#include <string>
#include <utility>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace idsync::daemon {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

// The scim_type label's values: RFC 7644's scimType keywords, and "none"
// for a refusal without one.
constexpr std::string_view kScimTypes[] = {
    "invalidFilter", "tooMany",      "uniqueness",  "mutability", "invalidSyntax", "invalidPath",
    "noTarget",      "invalidValue", "invalidVers", "sensitive",  "none"};

std::string_view ScimTypeLabel(std::string_view scim_type) {
  for (std::string_view t : kScimTypes) {
    if (t == scim_type) return t;
  }
  return "none";
}

// Label values known in advance: their series exist at 0 from the start, so
// that increase() sees the first event after a restart.
constexpr std::string_view kRunResults[] = {"ok", "failed", "blocked", "operations_failed",
                                            "source_failed"};
constexpr std::string_view kOperationKinds[] = {"invite", "update", "remove", "revoke"};
constexpr std::string_view kOperationResults[] = {"applied", "failed", "pending"};
constexpr std::string_view kSafetyLimits[] = {"max_removals", "max_changes", "last_admin"};
// SCIM methods and the statuses the endpoint answers; anything else (a
// method a client made up) is counted as "other", so the series stay bounded.
constexpr std::string_view kScimMethods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "other"};
constexpr std::string_view kScimStatuses[] = {"200", "201", "204", "400", "401", "404",
                                              "405", "408", "409", "412", "413", "414",
                                              "415", "417", "431", "500", "501", "503"};
// The HTTP listeners' own words (httpd::Observer).
constexpr std::string_view kListeners[] = {"scim", "admin", "other"};
constexpr std::string_view kRefusalReasons[] = {"max_connections", "max_connections_per_ip",
                                                "file_descriptors", "other"};
constexpr std::string_view kDeadlines[] = {"tls_handshake", "header", "body",
                                           "keep_alive",    "write",  "other"};
// Account statuses: the account is not ours, so unknown ones are "other" too.
constexpr std::string_view kAccountStatuses[] = {"200", "201", "204", "400", "401",
                                                 "403", "404", "409", "422", "429",
                                                 "500", "502", "503", "504", "error"};

template <std::size_t N>
std::string OneOf(std::string_view value, const std::string_view (&known)[N]) {
  for (std::string_view k : known) {
    if (k == value) return std::string(k);
  }
  return "other";
}

// Runs take from under a second (nothing changed) to many minutes (a first
// import at the account's rate limit).
const Histogram::BucketBoundaries& RunBuckets() {
  static const Histogram::BucketBoundaries kBuckets = {0.5, 1,   2.5, 5,   10,   30,
                                                       60,  120, 300, 600, 1800, 3600};
  return kBuckets;
}

// SCIM requests are answered from the store: milliseconds, with a tail.
const Histogram::BucketBoundaries& ScimBuckets() {
  static const Histogram::BucketBoundaries kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                       0.1,   0.25,   0.5,   1,    2.5,   5};
  return kBuckets;
}

}  // namespace

struct Metrics::Impl {
  explicit Impl(std::string_view version)
      : registry(std::make_shared<prometheus::Registry>()),
        build_info(BuildGauge()
                       .Name("idsync_build_info")
                       .Help("Always 1; the version label says which idsync runs.")
                       .Register(*registry)),
        runs(BuildCounter()
                 .Name("idsync_runs_total")
                 .Help("Sync runs finished, by result (ok, failed, partial, blocked).")
                 .Register(*registry)),
        run_duration(BuildHistogram()
                         .Name("idsync_run_duration_seconds")
                         .Help("Wall time of sync runs, from reading the sources to the last "
                               "operation sent.")
                         .Register(*registry)),
        last_run(BuildGauge()
                     .Name("idsync_last_run_timestamp_seconds")
                     .Help("Unix time the last run with this result finished.")
                     .Register(*registry)),
        operations(BuildCounter()
                       .Name("idsync_operations_total")
                       .Help("Account operations finished, by kind and result.")
                       .Register(*registry)),
        outbox_depth(BuildGauge()
                         .Name("idsync_outbox_depth")
                         .Help("Operations waiting in the outbox.")
                         .Register(*registry)),
        leader(BuildGauge()
                   .Name("idsync_leader")
                   .Help("1 while this replica holds the leader lease (runs syncs and sends), "
                         "else 0.")
                   .Register(*registry)),
        leader_epoch(BuildGauge()
                         .Name("idsync_leader_epoch")
                         .Help("The lease epoch this replica leads (or last led) at.")
                         .Register(*registry)),
        scim_view_lag(BuildGauge()
                          .Name("idsync_scim_view_lag_seconds")
                          .Help("Age of the oldest SCIM change of another replica taken in at "
                                "the latest catch-up (0 when none).")
                          .Register(*registry)),
        scim_view_changes(BuildCounter()
                              .Name("idsync_scim_view_changes_total")
                              .Help("SCIM changes of other replicas taken into this one's view.")
                              .Register(*registry)),
        outbox_oldest(BuildGauge()
                          .Name("idsync_outbox_oldest_age_seconds")
                          .Help("Age of the oldest operation waiting in the outbox (0 when empty).")
                          .Register(*registry)),
        source_last_success(BuildGauge()
                                .Name("idsync_source_last_success_timestamp_seconds")
                                .Help("Unix time of the source's last successful read.")
                                .Register(*registry)),
        source_entries(BuildGauge()
                           .Name("idsync_source_entries")
                           .Help("Entries the source's last successful read returned.")
                           .Register(*registry)),
        source_failures(BuildCounter()
                            .Name("idsync_source_read_failures_total")
                            .Help("Failed reads of the source.")
                            .Register(*registry)),
        source_up(BuildGauge()
                      .Name("idsync_source_up")
                      .Help("1 when the source's last read succeeded, else 0.")
                      .Register(*registry)),
        scim_requests(BuildCounter()
                          .Name("idsync_scim_requests_total")
                          .Help("SCIM requests answered, by HTTP method and status.")
                          .Register(*registry)),
        scim_duration(BuildHistogram()
                          .Name("idsync_scim_request_duration_seconds")
                          .Help("Time to answer a SCIM request.")
                          .Register(*registry)),
        scim_patch_refused(
            BuildCounter()
                .Name("idsync_scim_patch_refused_total")
                .Help("SCIM PATCH requests refused (the identity provider retries them), by "
                      "source and scimType.")
                .Register(*registry)),
        safety_trips(BuildCounter()
                         .Name("idsync_safety_limit_trips_total")
                         .Help("Plans refused by a safety limit, by limit.")
                         .Register(*registry)),
        account_requests(BuildCounter()
                             .Name("idsync_account_requests_total")
                             .Help("Account API responses, by HTTP status (error: no answer).")
                             .Register(*registry)),
        config_reloads(BuildCounter()
                           .Name("idsync_config_reloads_total")
                           .Help("Configuration reloads, by result (ok, failed).")
                           .Register(*registry)),
        http_connections(BuildGauge()
                             .Name("idsync_http_connections")
                             .Help("Connections open on an HTTP listener (scim, admin).")
                             .Register(*registry)),
        http_refused(BuildCounter()
                         .Name("idsync_http_connections_refused_total")
                         .Help("Connections answered 503 and closed at once, by listener and "
                               "reason (a cap, or no file descriptor left).")
                         .Register(*registry)),
        http_deadlines(BuildCounter()
                           .Name("idsync_http_deadlines_total")
                           .Help("Connections closed because a deadline passed, by listener and "
                                 "deadline (server.*_timeout).")
                           .Register(*registry)),
        run_duration_all(run_duration.Add({}, RunBuckets())),
        scim_duration_all(scim_duration.Add({}, ScimBuckets())),
        outbox_depth_all(outbox_depth.Add({})),
        outbox_oldest_all(outbox_oldest.Add({})),
        leader_all(leader.Add({})),
        leader_epoch_all(leader_epoch.Add({})),
        scim_view_lag_all(scim_view_lag.Add({})),
        scim_view_changes_all(scim_view_changes.Add({})) {
    build_info.Add({{"version", std::string(version)}}).Set(1);
    for (std::string_view r : kRunResults) runs.Add({{"result", std::string(r)}});
    for (std::string_view k : kOperationKinds) {
      for (std::string_view r : kOperationResults) {
        operations.Add({{"kind", std::string(k)}, {"result", std::string(r)}});
      }
    }
    for (std::string_view l : kSafetyLimits) safety_trips.Add({{"limit", std::string(l)}});
    for (std::string_view r : {"ok", "failed"}) config_reloads.Add({{"result", std::string(r)}});
    for (std::string_view m : kScimMethods) {
      for (std::string_view st : kScimStatuses) {
        scim_requests.Add({{"method", std::string(m)}, {"status", std::string(st)}});
      }
    }
    for (std::string_view st : kAccountStatuses)
      account_requests.Add({{"status", std::string(st)}});
    for (std::string_view l : {"scim", "admin"}) {
      http_connections.Add({{"listener", std::string(l)}});
      for (std::string_view r : kRefusalReasons) {
        if (r != "other")
          http_refused.Add({{"listener", std::string(l)}, {"reason", std::string(r)}});
      }
      for (std::string_view d : kDeadlines) {
        if (d != "other") {
          http_deadlines.Add({{"listener", std::string(l)}, {"deadline", std::string(d)}});
        }
      }
    }
  }

  std::shared_ptr<prometheus::Registry> registry;
  Family<Gauge>& build_info;
  Family<Counter>& runs;
  Family<Histogram>& run_duration;
  Family<Gauge>& last_run;
  Family<Counter>& operations;
  Family<Gauge>& outbox_depth;
  Family<Gauge>& leader;
  Family<Gauge>& leader_epoch;
  Family<Gauge>& scim_view_lag;
  Family<Counter>& scim_view_changes;
  Family<Gauge>& outbox_oldest;
  Family<Gauge>& source_last_success;
  Family<Gauge>& source_entries;
  Family<Counter>& source_failures;
  Family<Gauge>& source_up;
  Family<Counter>& scim_requests;
  Family<Histogram>& scim_duration;
  Family<Counter>& scim_patch_refused;
  Family<Counter>& safety_trips;
  Family<Counter>& account_requests;
  Family<Counter>& config_reloads;
  Family<Gauge>& http_connections;
  Family<Counter>& http_refused;
  Family<Counter>& http_deadlines;
  Histogram& run_duration_all;
  Histogram& scim_duration_all;
  Gauge& outbox_depth_all;
  Gauge& outbox_oldest_all;
  Gauge& leader_all;
  Gauge& leader_epoch_all;
  Gauge& scim_view_lag_all;
  Counter& scim_view_changes_all;
};

Metrics::Metrics(std::string_view version) : impl_(std::make_unique<Impl>(version)) {}

Metrics::~Metrics() = default;

void Metrics::RunFinished(std::string_view result, double seconds, double finished_at_unix) {
  const std::string r(result);
  impl_->runs.Add({{"result", r}}).Increment();
  impl_->run_duration_all.Observe(seconds);
  impl_->last_run.Add({{"result", r}}).Set(finished_at_unix);
}

void Metrics::Operation(std::string_view kind, std::string_view result) {
  impl_->operations.Add({{"kind", std::string(kind)}, {"result", std::string(result)}}).Increment();
}

void Metrics::OutboxDepth(std::int64_t depth, double oldest_age_seconds) {
  impl_->outbox_depth_all.Set(static_cast<double>(depth));
  impl_->outbox_oldest_all.Set(depth > 0 ? oldest_age_seconds : 0.0);
}

void Metrics::SourceRead(std::string_view source, bool ok, std::int64_t entries, double at_unix) {
  const prometheus::Labels labels = {{"source", std::string(source)}};
  if (ok) {
    impl_->source_last_success.Add(labels).Set(at_unix);
    impl_->source_entries.Add(labels).Set(static_cast<double>(entries));
    impl_->source_up.Add(labels).Set(1);
    // Make the failure series exist at 0 so rate() sees the first failure.
    impl_->source_failures.Add(labels);
  } else {
    impl_->source_failures.Add(labels).Increment();
    impl_->source_up.Add(labels).Set(0);
  }
}

void Metrics::ScimRequest(std::string_view method, int status, double seconds) {
  impl_->scim_requests
      .Add({{"method", OneOf(method, kScimMethods)},
            {"status", OneOf(std::to_string(status), kScimStatuses)}})
      .Increment();
  impl_->scim_duration_all.Observe(seconds);
}

void Metrics::HttpConnectionOpened(std::string_view listener) {
  impl_->http_connections.Add({{"listener", OneOf(listener, kListeners)}}).Increment();
}

void Metrics::HttpConnectionClosed(std::string_view listener) {
  impl_->http_connections.Add({{"listener", OneOf(listener, kListeners)}}).Decrement();
}

void Metrics::HttpConnectionRefused(std::string_view listener, std::string_view reason) {
  impl_->http_refused
      .Add({{"listener", OneOf(listener, kListeners)}, {"reason", OneOf(reason, kRefusalReasons)}})
      .Increment();
}

void Metrics::HttpDeadline(std::string_view listener, std::string_view deadline) {
  impl_->http_deadlines
      .Add({{"listener", OneOf(listener, kListeners)}, {"deadline", OneOf(deadline, kDeadlines)}})
      .Increment();
}

void Metrics::DeclareSource(std::string_view source) {
  impl_->source_failures.Add({{"source", std::string(source)}});
}

void Metrics::ScimSource(std::string_view source) {
  for (std::string_view t : kScimTypes) {
    impl_->scim_patch_refused.Add({{"source", std::string(source)}, {"scim_type", std::string(t)}});
  }
}

void Metrics::ScimPatchRefused(std::string_view source, std::string_view scim_type) {
  impl_->scim_patch_refused
      .Add({{"source", std::string(source)}, {"scim_type", std::string(ScimTypeLabel(scim_type))}})
      .Increment();
}

void Metrics::SafetyTrip(std::string_view limit) {
  impl_->safety_trips.Add({{"limit", std::string(limit)}}).Increment();
}

void Metrics::AccountRequest(int status) {
  impl_->account_requests
      .Add({{"status", status > 0 ? OneOf(std::to_string(status), kAccountStatuses) : "error"}})
      .Increment();
}

void Metrics::ConfigReload(bool ok) {
  impl_->config_reloads.Add({{"result", ok ? "ok" : "failed"}}).Increment();
}

void Metrics::Leadership(bool leader, std::int64_t epoch) {
  impl_->leader_all.Set(leader ? 1.0 : 0.0);
  impl_->leader_epoch_all.Set(static_cast<double>(epoch));
}

void Metrics::ScimViewLag(double seconds, std::int64_t changes) {
  impl_->scim_view_lag_all.Set(seconds);
  if (changes > 0) impl_->scim_view_changes_all.Increment(static_cast<double>(changes));
}

std::string Metrics::Render() const {
  try {
    return prometheus::TextSerializer().Serialize(impl_->registry->Collect());
  } catch (const std::exception&) {
    // Serializing only formats numbers and strings; a failure here is a bug,
    // but a scrape must not take the daemon down.
    return "# idsync: metrics could not be rendered\n";
  }
}

}  // namespace idsync::daemon
