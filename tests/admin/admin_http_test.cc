// The admin API over real loopback HTTP: httpd::Server on 127.0.0.1:0 with
// AdminApi's handler and a fake backend, driven by a Poco HTTP client.

#include <chrono>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "idsync/daemon/admin.h"
#include "idsync/daemon/metrics.h"
#include "idsync/httpd/server.h"

#include "fake_admin_backend.h"
#include "prom_parse.h"

namespace idsync::daemon {
namespace {

using nlohmann::json;
using testing::FakeAdminBackend;
using testing::kHashAbc;
using testing::kTokenAbc;

struct Reply {
  int status = 0;
  std::string content_type;
  std::string body;
  std::string www_authenticate;
  std::string allow;
};

class AdminHttpTest : public ::testing::Test {
 protected:
  void SetUp() override { Start({kHashAbc}); }
  void TearDown() override {
    if (server_) server_->Stop(std::chrono::milliseconds(500));
  }

  void Start(std::vector<std::string> hashes, std::uint64_t max_body = 1024 * 1024) {
    if (server_) server_->Stop(std::chrono::milliseconds(500));
    api_ = std::make_unique<AdminApi>(std::move(hashes), backend_, metrics_);
    httpd::Options o;
    o.listen = {"127.0.0.1:0"};
    o.threads = 4;
    o.max_body = max_body;
    o.render_error = AdminErrorResponse;
    auto started = httpd::Server::Start(o, api_->AsHandler());
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    server_ = std::move(started).value();
    port_ = server_->ports().at(0);
  }

  Reply Call(const std::string& method, const std::string& path, const std::string& token = "",
             const std::string& body = "") {
    Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port_));
    session.setTimeout(Poco::Timespan(10, 0));
    Poco::Net::HTTPRequest req(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
    if (!token.empty()) req.set("Authorization", "Bearer " + token);
    req.setContentLength(static_cast<std::streamsize>(body.size()));
    session.sendRequest(req) << body;
    Poco::Net::HTTPResponse resp;
    std::istream& in = session.receiveResponse(resp);
    Reply r;
    r.status = static_cast<int>(resp.getStatus());
    r.content_type = resp.getContentType();
    std::ostringstream out;
    Poco::StreamCopier::copyStream(in, out);
    r.body = out.str();
    r.www_authenticate = resp.get("WWW-Authenticate", "");
    r.allow = resp.get("Allow", "");
    return r;
  }

  FakeAdminBackend backend_;
  Metrics metrics_{"0.1.0-test"};
  std::unique_ptr<AdminApi> api_;
  std::unique_ptr<httpd::Server> server_;
  int port_ = 0;
};

TEST_F(AdminHttpTest, HealthzReadyzMetricsNeedNoToken) {
  Reply h = Call("GET", "/healthz");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body, "ok\n");
  Reply r = Call("GET", "/readyz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body)["ready"], true);
  Reply m = Call("GET", "/metrics");
  EXPECT_EQ(m.status, 200);
  EXPECT_EQ(m.content_type, "text/plain; version=0.0.4; charset=utf-8");
}

TEST_F(AdminHttpTest, ReadyzGives503WithReasons) {
  backend_.set_reasons({{"store not writable", "/var/lib/idsync/state.db"}});
  Reply r = Call("GET", "/readyz");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(json::parse(r.body)["reasons"], json::array({"store not writable"}));
}

TEST_F(AdminHttpTest, ServedMetricsPageParsesAsPrometheusText) {
  metrics_.RunFinished("ok", 2.5, 1700000000);
  metrics_.Operation("invite", "applied");
  metrics_.SourceRead("corp-ldap", true, 321, 1700000000);
  metrics_.ScimRequest("PATCH", 200, 0.003);
  metrics_.AccountRequest(429);
  metrics_.SafetyTrip("max_removals");
  metrics_.OutboxDepth(3, 4.5);
  Reply m = Call("GET", "/metrics");
  ASSERT_EQ(m.status, 200);
  json p = testing::ParsePrometheusText(m.body);
  ASSERT_EQ(p["ok"], true) << p.dump();
  using testing::SampleValue;
  EXPECT_EQ(SampleValue(p, "idsync_build_info", {{"version", "0.1.0-test"}}), 1);
  EXPECT_EQ(SampleValue(p, "idsync_runs_total", {{"result", "ok"}}), 1);
  EXPECT_EQ(SampleValue(p, "idsync_run_duration_seconds_count", json::object()), 1);
  EXPECT_EQ(SampleValue(p, "idsync_operations_total", {{"kind", "invite"}, {"result", "applied"}}),
            1);
  EXPECT_EQ(SampleValue(p, "idsync_source_entries", {{"source", "corp-ldap"}}), 321);
  EXPECT_EQ(SampleValue(p, "idsync_scim_requests_total", {{"method", "PATCH"}, {"status", "200"}}),
            1);
  EXPECT_EQ(SampleValue(p, "idsync_account_requests_total", {{"status", "429"}}), 1);
  EXPECT_EQ(SampleValue(p, "idsync_safety_limit_trips_total", {{"limit", "max_removals"}}), 1);
  EXPECT_EQ(SampleValue(p, "idsync_outbox_depth", json::object()), 3);
  EXPECT_EQ(SampleValue(p, "idsync_outbox_oldest_age_seconds", json::object()), 4.5);
}

TEST_F(AdminHttpTest, EveryV1EndpointWithoutWithWrongAndRightToken) {
  backend_.add_person("ann@example.com", R"({"email": "ann@example.com", "role": "admin"})");
  struct Case {
    std::string method, path;
    int ok_status;
  };
  for (const Case& c : std::vector<Case>{{"POST", "/v1/sync", 202},
                                         {"GET", "/v1/status", 200},
                                         {"GET", "/v1/plan", 200},
                                         {"GET", "/v1/explain/ann@example.com", 200}}) {
    Reply none = Call(c.method, c.path);
    EXPECT_EQ(none.status, 401) << c.path;
    EXPECT_EQ(none.www_authenticate, "Bearer realm=\"idsync-admin\"");
    EXPECT_TRUE(json::parse(none.body).contains("error"));
    Reply wrong = Call(c.method, c.path, "not-the-token");
    EXPECT_EQ(wrong.status, 401) << c.path;
    EXPECT_EQ(json::parse(wrong.body)["error"], "the admin token is not accepted");
    Reply right = Call(c.method, c.path, kTokenAbc);
    EXPECT_EQ(right.status, c.ok_status) << c.path << ": " << right.body;
    EXPECT_EQ(right.content_type, "application/json");
    EXPECT_TRUE(json::accept(right.body)) << right.body;
  }
  EXPECT_EQ(backend_.sync_requests(), 1);
  EXPECT_EQ(json::parse(Call("GET", "/v1/status", kTokenAbc).body),
            json::parse(backend_.status_json_));
  EXPECT_EQ(json::parse(Call("GET", "/v1/plan", kTokenAbc).body), json::parse(backend_.plan_json_));
  EXPECT_EQ(json::parse(Call("GET", "/v1/explain/ann@example.com", kTokenAbc).body)["role"],
            "admin");
  EXPECT_EQ(Call("GET", "/v1/explain/zed@example.com", kTokenAbc).status, 404);
}

TEST_F(AdminHttpTest, WrongMethodAndUnknownPath) {
  Reply r = Call("GET", "/v1/sync", kTokenAbc);
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.allow, "POST");
  Reply h = Call("POST", "/healthz");
  EXPECT_EQ(h.status, 405);
  EXPECT_EQ(h.allow, "GET");
  EXPECT_EQ(Call("DELETE", "/v1/status", kTokenAbc).status, 405);
  Reply n = Call("GET", "/nope");
  EXPECT_EQ(n.status, 404);
  EXPECT_EQ(json::parse(n.body)["error"], "no such endpoint");
  EXPECT_EQ(Call("GET", "/v1/nope", kTokenAbc).status, 404);
  EXPECT_EQ(backend_.sync_requests(), 0);
}

TEST_F(AdminHttpTest, NoTokensConfiguredRefusesV1) {
  Start({});
  Reply r = Call("POST", "/v1/sync", kTokenAbc);
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(json::parse(r.body)["error"].get<std::string>().find("server.admin_tokens"),
            std::string::npos);
  EXPECT_EQ(Call("GET", "/healthz").status, 200);
  EXPECT_EQ(backend_.sync_requests(), 0);
}

TEST_F(AdminHttpTest, ServerRefusalsUseTheAdminErrorBody) {
  Start({kHashAbc}, /*max_body=*/16);
  Reply r = Call("POST", "/v1/sync", kTokenAbc, std::string(1000, 'x'));
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(json::parse(r.body)["status"], 413);
  EXPECT_EQ(backend_.sync_requests(), 0);
}

}  // namespace
}  // namespace idsync::daemon
