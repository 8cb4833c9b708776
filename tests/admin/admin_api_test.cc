// AdminApi::Handle in memory: routing, tokens, status mapping, JSON bodies.
// The same endpoints over real loopback HTTP are in admin_http_test.cc.

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "idsync/daemon/admin.h"
#include "idsync/daemon/metrics.h"

#include "fake_admin_backend.h"

namespace idsync::daemon {
namespace {

using testing::FakeAdminBackend;
using testing::kHashAbc;
using testing::kHashHello;
using testing::kTokenAbc;
using testing::kTokenHello;

httpd::Request Req(std::string method, std::string path, std::string token = "") {
  httpd::Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  if (!token.empty()) r.headers.emplace_back("Authorization", "Bearer " + token);
  r.remote = "127.0.0.1:1";
  return r;
}

std::string HeaderOf(const httpd::Response& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

class AdminApiTest : public ::testing::Test {
 protected:
  FakeAdminBackend backend_;
  Metrics metrics_{"9.9.9-test"};
  AdminApi api_{{kHashAbc}, backend_, metrics_};
};

TEST_F(AdminApiTest, HealthzAnswersOkWithoutToken) {
  httpd::Response r = api_.Handle(Req("GET", "/healthz"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok\n");
  EXPECT_EQ(r.content_type.rfind("text/plain", 0), 0u);
}

TEST_F(AdminApiTest, WrongMethodIs405WithAllow) {
  for (const auto& [method, path, allow] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"POST", "/healthz", "GET"},
           {"DELETE", "/readyz", "GET"},
           {"POST", "/metrics", "GET"},
           {"GET", "/v1/sync", "POST"},
           {"POST", "/v1/status", "GET"},
           {"PUT", "/v1/plan", "GET"},
           {"POST", "/v1/explain/a@example.com", "GET"}}) {
    httpd::Response r = api_.Handle(Req(method, path, kTokenAbc));
    EXPECT_EQ(r.status, 405) << method << " " << path;
    EXPECT_EQ(HeaderOf(r, "Allow"), allow) << path;
    EXPECT_EQ(r.content_type, "application/json");
    EXPECT_TRUE(nlohmann::json::parse(r.body).contains("error"));
  }
  EXPECT_EQ(backend_.sync_requests(), 0);
  EXPECT_EQ(backend_.calls(), 0);
}

TEST_F(AdminApiTest, UnknownPathIs404) {
  for (const std::string path :
       {"/", "/metrics/x", "/v1", "/v1/", "/v1/syncx", "/v2/status", "/healthz/"}) {
    httpd::Response r = api_.Handle(Req("GET", path, kTokenAbc));
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_EQ(nlohmann::json::parse(r.body)["error"], "no such endpoint") << path;
  }
}

TEST_F(AdminApiTest, ReadyzIs200WhenTheBackendHasNoReasons) {
  httpd::Response r = api_.Handle(Req("GET", "/readyz"));
  EXPECT_EQ(r.status, 200);
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["ready"], true);
  EXPECT_TRUE(j["reasons"].empty());
}

TEST_F(AdminApiTest, ReadyzIs503WithEveryReason) {
  backend_.set_reasons(
      {{"configuration not loaded", ""}, {"store not writable", "/var/lib/idsync: EROFS"}});
  httpd::Response r = api_.Handle(Req("GET", "/readyz"));
  EXPECT_EQ(r.status, 503);
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["ready"], false);
  // Without a token: the reasons, never a path or an error's text.
  EXPECT_EQ(j["reasons"],
            nlohmann::json::array({"configuration not loaded", "store not writable"}));
  // A token holder gets the details.
  j = nlohmann::json::parse(api_.Handle(Req("GET", "/readyz", kTokenAbc)).body);
  EXPECT_EQ(j["reasons"], nlohmann::json::array({"configuration not loaded",
                                                 "store not writable: /var/lib/idsync: EROFS"}));
  backend_.set_reasons({});
  EXPECT_EQ(api_.Handle(Req("GET", "/readyz")).status, 200);
}

TEST_F(AdminApiTest, MetricsServesTheRegistryWithoutToken) {
  metrics_.RunFinished("ok", 1.5, 1700000000);
  httpd::Response r = api_.Handle(Req("GET", "/metrics"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(r.body.find("idsync_build_info{version=\"9.9.9-test\"} 1"), std::string::npos);
  EXPECT_NE(r.body.find("idsync_runs_total{result=\"ok\"} 1"), std::string::npos);
}

TEST_F(AdminApiTest, V1WithoutTokenIs401AndReachesNothing) {
  for (const auto& [method, path] :
       std::vector<std::pair<std::string, std::string>>{{"POST", "/v1/sync"},
                                                        {"GET", "/v1/status"},
                                                        {"GET", "/v1/plan"},
                                                        {"GET", "/v1/explain/a@example.com"}}) {
    httpd::Response r = api_.Handle(Req(method, path));
    EXPECT_EQ(r.status, 401) << path;
    EXPECT_EQ(HeaderOf(r, "WWW-Authenticate"), "Bearer realm=\"idsync-admin\"");
    auto j = nlohmann::json::parse(r.body);
    EXPECT_EQ(j["error"], "an admin token is required (Authorization: Bearer <token>)");
  }
  EXPECT_EQ(backend_.sync_requests(), 0);
  EXPECT_EQ(backend_.calls(), 0);
}

TEST_F(AdminApiTest, WrongTokenIs401) {
  for (const std::string header :
       {"Bearer hello", "Bearer abcd", "Bearer ab", "Basic YWJjOmFiYw==", "abc", "Bearer",
        "Bearer  ", "Bearerabc",
        // the configured hash itself is not a token
        "Bearer sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}) {
    httpd::Request req = Req("GET", "/v1/status");
    req.headers.emplace_back("Authorization", header);
    httpd::Response r = api_.Handle(req);
    EXPECT_EQ(r.status, 401) << header;
  }
  EXPECT_EQ(backend_.calls(), 0);
}

TEST_F(AdminApiTest, TokenSchemeAndHeaderNameAreCaseInsensitive) {
  httpd::Request req = Req("GET", "/v1/status");
  req.headers.emplace_back("authorization", "bEaReR   abc ");
  EXPECT_EQ(api_.Handle(req).status, 200);
}

TEST_F(AdminApiTest, NoTokenConfiguredRefusesV1With403) {
  AdminApi api({}, backend_, metrics_);
  httpd::Response r = api.Handle(Req("POST", "/v1/sync", kTokenAbc));
  EXPECT_EQ(r.status, 403);
  std::string msg = nlohmann::json::parse(r.body)["error"];
  EXPECT_NE(msg.find("set server.admin_tokens"), std::string::npos) << msg;
  EXPECT_EQ(backend_.sync_requests(), 0);
  // The unauthenticated endpoints still answer.
  EXPECT_EQ(api.Handle(Req("GET", "/healthz")).status, 200);
  EXPECT_EQ(api.Handle(Req("GET", "/metrics")).status, 200);
}

TEST_F(AdminApiTest, SyncWithTokenIsAcceptedAndReachesTheBackend) {
  httpd::Response r = api_.Handle(Req("POST", "/v1/sync", kTokenAbc));
  EXPECT_EQ(r.status, 202);
  EXPECT_EQ(nlohmann::json::parse(r.body)["accepted"], true);
  EXPECT_EQ(backend_.sync_requests(), 1);
}

TEST_F(AdminApiTest, SyncTakesForceInItsBodyAndNothingElse) {
  httpd::Request forced = Req("POST", "/v1/sync", kTokenAbc);
  forced.body = R"({"force": true})";
  EXPECT_EQ(api_.Handle(forced).status, 202);
  forced.body = R"({"force": false})";
  EXPECT_EQ(api_.Handle(forced).status, 202);
  forced.body = "{}";
  EXPECT_EQ(api_.Handle(forced).status, 202);
  EXPECT_EQ(backend_.sync_requests(), 3);
  EXPECT_EQ(backend_.forced_sync_requests(), 1);
  for (const char* body : {R"({"force": "yes"})", R"({"forse": true})", "[true]", "{", "true",
                           R"({"force": true, "more": 1})"}) {
    forced.body = body;
    httpd::Response r = api_.Handle(forced);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_NE(r.body.find("force"), std::string::npos) << r.body;
  }
  EXPECT_EQ(backend_.sync_requests(), 3);
}

TEST_F(AdminApiTest, SyncRefusedByTheBackendMapsItsCode) {
  backend_.set_sync_status(UnavailableError("idsyncd is stopping"));
  httpd::Response r = api_.Handle(Req("POST", "/v1/sync", kTokenAbc));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(nlohmann::json::parse(r.body)["error"], "idsyncd is stopping");
  backend_.set_sync_status(FailedPreconditionError("a run is already queued"));
  EXPECT_EQ(api_.Handle(Req("POST", "/v1/sync", kTokenAbc)).status, 409);
  EXPECT_EQ(backend_.sync_requests(), 0);
}

TEST_F(AdminApiTest, StatusAndPlanReturnTheBackendJson) {
  httpd::Response s = api_.Handle(Req("GET", "/v1/status", kTokenAbc));
  EXPECT_EQ(s.status, 200);
  EXPECT_EQ(s.content_type, "application/json");
  EXPECT_EQ(nlohmann::json::parse(s.body), nlohmann::json::parse(backend_.status_json_));
  EXPECT_EQ(HeaderOf(s, "Cache-Control"), "no-store");

  httpd::Response p = api_.Handle(Req("GET", "/v1/plan", kTokenAbc));
  EXPECT_EQ(p.status, 200);
  EXPECT_EQ(nlohmann::json::parse(p.body), nlohmann::json::parse(backend_.plan_json_));
}

TEST_F(AdminApiTest, PlanFailureMapsToHttp) {
  backend_.set_plan_status(UnavailableError("source corp-ldap unreachable"));
  httpd::Response p = api_.Handle(Req("GET", "/v1/plan", kTokenAbc));
  EXPECT_EQ(p.status, 503);
  EXPECT_EQ(nlohmann::json::parse(p.body)["error"], "source corp-ldap unreachable");
}

TEST_F(AdminApiTest, ExplainPassesTheAddressAndMapsNotFound) {
  backend_.add_person("ann@example.com", R"({"email": "ann@example.com", "role": "member"})");
  httpd::Response ok = api_.Handle(Req("GET", "/v1/explain/ann@example.com", kTokenAbc));
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(nlohmann::json::parse(ok.body)["role"], "member");

  httpd::Response missing = api_.Handle(Req("GET", "/v1/explain/bob@example.com", kTokenAbc));
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(nlohmann::json::parse(missing.body)["error"], "no source knows bob@example.com");
  EXPECT_EQ(backend_.explained(), (std::vector<std::string>{"ann@example.com", "bob@example.com"}));

  EXPECT_EQ(api_.Handle(Req("GET", "/v1/explain/", kTokenAbc)).status, 400);
  EXPECT_EQ(api_.Handle(Req("GET", "/v1/explain/a/b", kTokenAbc)).status, 400);
}

TEST_F(AdminApiTest, TokenRotationTakesEffect) {
  api_.SetTokenHashes({kHashHello});
  EXPECT_EQ(api_.Handle(Req("GET", "/v1/status", kTokenAbc)).status, 401);
  EXPECT_EQ(api_.Handle(Req("GET", "/v1/status", kTokenHello)).status, 200);
  // Several hashes: either token works.
  api_.SetTokenHashes({kHashHello, kHashAbc});
  EXPECT_EQ(api_.Handle(Req("GET", "/v1/status", kTokenAbc)).status, 200);
  EXPECT_EQ(api_.Handle(Req("GET", "/v1/status", kTokenHello)).status, 200);
}

TEST_F(AdminApiTest, UpperCaseHexInConfigIsAccepted) {
  std::string upper = kHashAbc;
  for (size_t i = 7; i < upper.size(); ++i) upper[i] = static_cast<char>(std::toupper(upper[i]));
  api_.SetTokenHashes({upper});
  EXPECT_EQ(api_.Handle(Req("GET", "/v1/status", kTokenAbc)).status, 200);
}

TEST(AdminStatusToHttp, MapsEveryCode) {
  EXPECT_EQ(StatusToHttp(StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(StatusToHttp(StatusCode::kNotFound), 404);
  EXPECT_EQ(StatusToHttp(StatusCode::kAlreadyExists), 409);
  EXPECT_EQ(StatusToHttp(StatusCode::kFailedPrecondition), 409);
  EXPECT_EQ(StatusToHttp(StatusCode::kPermissionDenied), 403);
  EXPECT_EQ(StatusToHttp(StatusCode::kUnauthenticated), 401);
  EXPECT_EQ(StatusToHttp(StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(StatusToHttp(StatusCode::kUnavailable), 503);
  EXPECT_EQ(StatusToHttp(StatusCode::kDeadlineExceeded), 504);
  EXPECT_EQ(StatusToHttp(StatusCode::kInternal), 500);
}

TEST(AdminErrorResponse, IsJsonWithTheStatus) {
  httpd::Response r = AdminErrorResponse(413, "body \"too\" large");
  EXPECT_EQ(r.status, 413);
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["error"], "body \"too\" large");
  EXPECT_EQ(j["status"], 413);
}

}  // namespace
}  // namespace idsync::daemon
