// Metrics: each recorder moves the right series, and the rendered page is
// valid Prometheus text as prometheus_client's parser reads it.

#include "idsync/daemon/metrics.h"

#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "prom_parse.h"

namespace idsync::daemon {
namespace {

using nlohmann::json;
using testing::ParsePrometheusText;
using testing::SampleValue;

json Parse(const Metrics& m) {
  json parsed = ParsePrometheusText(m.Render());
  EXPECT_EQ(parsed["ok"], true) << parsed.dump();
  return parsed;
}

TEST(Metrics, FreshPageParsesWithBuildInfoAndFamilyTypes) {
  Metrics m("1.2.3");
  json p = Parse(m);
  EXPECT_EQ(SampleValue(p, "idsync_build_info", {{"version", "1.2.3"}}), 1);
  EXPECT_EQ(SampleValue(p, "idsync_outbox_depth", json::object()), 0);
  EXPECT_EQ(SampleValue(p, "idsync_outbox_oldest_age_seconds", json::object()), 0);
  // The parser drops the _total suffix from a counter family's name.
  const json& fams = p["families"];
  EXPECT_EQ(fams["idsync_run_duration_seconds"]["type"], "histogram");
  EXPECT_EQ(fams["idsync_scim_request_duration_seconds"]["type"], "histogram");
  EXPECT_EQ(fams["idsync_outbox_depth"]["type"], "gauge");
}

// An alert on increase() needs the series before the first event: every
// label value known in advance is there at 0 on a fresh page.
TEST(Metrics, KnownSeriesExistAtZeroFromTheStart) {
  Metrics m("t");
  m.DeclareSource("corp-ad");
  m.ScimSource("okta");
  json p = Parse(m);
  for (const char* r : {"ok", "failed", "blocked", "operations_failed", "source_failed"}) {
    EXPECT_EQ(SampleValue(p, "idsync_runs_total", {{"result", r}}), 0) << r;
  }
  for (const char* l : {"max_removals", "max_changes", "last_admin"}) {
    EXPECT_EQ(SampleValue(p, "idsync_safety_limit_trips_total", {{"limit", l}}), 0) << l;
  }
  EXPECT_EQ(SampleValue(p, "idsync_config_reloads_total", {{"result", "ok"}}), 0);
  EXPECT_EQ(SampleValue(p, "idsync_config_reloads_total", {{"result", "failed"}}), 0);
  EXPECT_EQ(SampleValue(p, "idsync_scim_requests_total", {{"method", "POST"}, {"status", "401"}}),
            0);
  EXPECT_EQ(SampleValue(p, "idsync_operations_total", {{"kind", "remove"}, {"result", "failed"}}),
            0);
  EXPECT_EQ(SampleValue(p, "idsync_account_requests_total", {{"status", "401"}}), 0);
  EXPECT_EQ(SampleValue(p, "idsync_source_read_failures_total", {{"source", "corp-ad"}}), 0);
  EXPECT_EQ(SampleValue(p, "idsync_scim_patch_refused_total",
                        {{"source", "okta"}, {"scim_type", "noTarget"}}),
            0);
}

// A stranger picks the SCIM method; the account picks its statuses: neither
// may grow the number of series.
TEST(Metrics, UnknownMethodsAndStatusesAreOther) {
  Metrics m("t");
  const std::size_t before = m.Render().size();
  for (int i = 0; i < 500; ++i) {
    m.ScimRequest("M" + std::to_string(i), 400, 0.001);
    m.AccountRequest(600 + i);
  }
  m.ScimPatchRefused("okta", "made-up");
  json p = Parse(m);
  EXPECT_EQ(SampleValue(p, "idsync_scim_requests_total", {{"method", "other"}, {"status", "400"}}),
            500);
  EXPECT_EQ(SampleValue(p, "idsync_account_requests_total", {{"status", "other"}}), 500);
  EXPECT_EQ(SampleValue(p, "idsync_scim_patch_refused_total",
                        {{"source", "okta"}, {"scim_type", "none"}}),
            1);
  EXPECT_LT(m.Render().size(), before + 2000) << "a handful of new series at most";
}

TEST(Metrics, RunFinishedCountsByResultAndObservesDuration) {
  Metrics m("t");
  m.RunFinished("ok", 0.7, 1700000000);
  m.RunFinished("ok", 42, 1700000100);
  m.RunFinished("blocked", 3, 1700000200);
  json p = Parse(m);
  EXPECT_EQ(p["families"]["idsync_runs"]["type"], "counter");
  EXPECT_EQ(SampleValue(p, "idsync_runs_total", {{"result", "ok"}}), 2);
  EXPECT_EQ(SampleValue(p, "idsync_runs_total", {{"result", "blocked"}}), 1);
  EXPECT_EQ(SampleValue(p, "idsync_run_duration_seconds_count", json::object()), 3);
  EXPECT_DOUBLE_EQ(SampleValue(p, "idsync_run_duration_seconds_sum", json::object()), 45.7);
  EXPECT_EQ(SampleValue(p, "idsync_run_duration_seconds_bucket", {{"le", "1"}}), 1);
  EXPECT_EQ(SampleValue(p, "idsync_run_duration_seconds_bucket", {{"le", "5"}}), 2);
  EXPECT_EQ(SampleValue(p, "idsync_run_duration_seconds_bucket", {{"le", "+Inf"}}), 3);
  EXPECT_EQ(SampleValue(p, "idsync_last_run_timestamp_seconds", {{"result", "ok"}}), 1700000100);
}

TEST(Metrics, OperationsOutboxSafetyAndReloads) {
  Metrics m("t");
  m.Operation("invite", "applied");
  m.Operation("invite", "applied");
  m.Operation("remove", "rejected");
  m.OutboxDepth(7, 12.5);
  m.SafetyTrip("max_removals");
  m.ConfigReload(true);
  m.ConfigReload(false);
  m.ConfigReload(false);
  json p = Parse(m);
  EXPECT_EQ(SampleValue(p, "idsync_operations_total", {{"kind", "invite"}, {"result", "applied"}}),
            2);
  EXPECT_EQ(SampleValue(p, "idsync_operations_total", {{"kind", "remove"}, {"result", "rejected"}}),
            1);
  EXPECT_EQ(SampleValue(p, "idsync_outbox_depth", json::object()), 7);
  EXPECT_EQ(SampleValue(p, "idsync_outbox_oldest_age_seconds", json::object()), 12.5);
  EXPECT_EQ(SampleValue(p, "idsync_safety_limit_trips_total", {{"limit", "max_removals"}}), 1);
  EXPECT_EQ(SampleValue(p, "idsync_config_reloads_total", {{"result", "failed"}}), 2);
  EXPECT_EQ(SampleValue(p, "idsync_config_reloads_total", {{"result", "ok"}}), 1);
  // An empty outbox has no oldest operation, whatever age was passed.
  m.OutboxDepth(0, 99);
  p = Parse(m);
  EXPECT_EQ(SampleValue(p, "idsync_outbox_oldest_age_seconds", json::object()), 0);
}

TEST(Metrics, SourceReadsKeepTheLastSuccess) {
  Metrics m("t");
  m.SourceRead("corp-ldap", true, 1200, 1700000000);
  m.SourceRead("corp-ldap", false, 0, 1700000060);
  m.SourceRead("okta", false, 0, 1700000060);
  json p = Parse(m);
  const json ldap = {{"source", "corp-ldap"}};
  EXPECT_EQ(SampleValue(p, "idsync_source_last_success_timestamp_seconds", ldap), 1700000000);
  EXPECT_EQ(SampleValue(p, "idsync_source_entries", ldap), 1200);
  EXPECT_EQ(SampleValue(p, "idsync_source_read_failures_total", ldap), 1);
  EXPECT_EQ(SampleValue(p, "idsync_source_up", ldap), 0);
  EXPECT_EQ(SampleValue(p, "idsync_source_read_failures_total", {{"source", "okta"}}), 1);
  EXPECT_TRUE(std::isnan(
      SampleValue(p, "idsync_source_last_success_timestamp_seconds", {{"source", "okta"}})));
}

TEST(Metrics, ScimAndAccountRequests) {
  Metrics m("t");
  m.ScimRequest("PATCH", 200, 0.004);
  m.ScimRequest("PATCH", 200, 0.02);
  m.ScimRequest("POST", 401, 0.0005);
  m.AccountRequest(200);
  m.AccountRequest(429);
  m.AccountRequest(429);
  m.AccountRequest(0);
  json p = Parse(m);
  EXPECT_EQ(SampleValue(p, "idsync_scim_requests_total", {{"method", "PATCH"}, {"status", "200"}}),
            2);
  EXPECT_EQ(SampleValue(p, "idsync_scim_requests_total", {{"method", "POST"}, {"status", "401"}}),
            1);
  EXPECT_EQ(SampleValue(p, "idsync_scim_request_duration_seconds_count", json::object()), 3);
  EXPECT_EQ(SampleValue(p, "idsync_scim_request_duration_seconds_bucket", {{"le", "0.005"}}), 2);
  EXPECT_EQ(SampleValue(p, "idsync_account_requests_total", {{"status", "429"}}), 2);
  EXPECT_EQ(SampleValue(p, "idsync_account_requests_total", {{"status", "error"}}), 1);
}

TEST(Metrics, LabelValuesAreEscaped) {
  Metrics m("t");
  m.SourceRead("we\"ird\\name\nx", true, 1, 1);
  json p = Parse(m);
  EXPECT_EQ(SampleValue(p, "idsync_source_entries", {{"source", "we\"ird\\name\nx"}}), 1);
}

TEST(Metrics, ConcurrentRecordersLoseNothing) {
  Metrics m("t");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&m] {
      for (int i = 0; i < 2500; ++i) {
        m.Operation("update", "applied");
        m.ScimRequest("GET", 200, 0.001);
        if (i % 100 == 0) (void)m.Render();
      }
    });
  }
  for (auto& t : threads) t.join();
  json p = Parse(m);
  EXPECT_EQ(SampleValue(p, "idsync_operations_total", {{"kind", "update"}, {"result", "applied"}}),
            10000);
  EXPECT_EQ(SampleValue(p, "idsync_scim_request_duration_seconds_count", json::object()), 10000);
}

}  // namespace
}  // namespace idsync::daemon
