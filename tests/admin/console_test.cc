// The console's sessions and guards, without HTTP: a session expires with
// its lifetime and ends with its token; the cookie is Secure over TLS;
// changes need the CSRF token and this origin; failed sign-ins are cut off
// per address for a minute and no longer; every answer carries the
// Content-Security-Policy; and no token ever reaches the log.
#include "idsync/daemon/console.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "idsync/daemon/log.h"
#include "idsync/daemon/report.h"
#include "idsync/fakes/memory_store.h"

namespace idsync::daemon {
namespace {

using nlohmann::json;

class FakeConsoleBackend : public ConsoleBackend {
 public:
  Result<std::string> OverviewJson() override { return std::string(R"({"sources": []})"); }
  Result<std::string> PlanJson() override { return std::string("{}"); }
  Result<std::string> PeopleJson(const std::string& query, std::size_t offset,
                                 std::size_t limit) override {
    return json({{"query", query}, {"offset", offset}, {"limit", limit}}).dump();
  }
  Result<std::string> ExplainJson(const std::string& email) override {
    if (email != "bruno@corp.example") return NotFoundError("no source knows " + email);
    return std::string(R"({"email": "bruno@corp.example"})");
  }
  Result<std::string> AuditJson(const std::string&, std::int64_t, std::int64_t, std::size_t,
                                std::size_t) override {
    return std::string("{}");
  }
  Result<std::string> ReportHtml() override { return std::string("<!doctype html>"); }
  Status RequestSync(bool) override {
    ++syncs;
    return Status::Ok();
  }
  int syncs = 0;
};

constexpr char kToken[] = "the-admin-token";

class ConsoleTest : public ::testing::Test {
 protected:
  ConsoleTest()
      : log_(LogFormat::kText, LogLevel::kDebug,
             [this](std::string_view line) { log_lines_ += line; }),
        console_(
            backend_, store_.console_sessions(), log_, [this] { return now_; },
            std::chrono::hours(8)) {}

  httpd::Response Call(const std::string& method, const std::string& path,
                       std::vector<std::pair<std::string, std::string>> headers = {},
                       const std::string& body = "", const std::string& remote = "10.0.0.1:5000",
                       bool tls = false) {
    httpd::Request r;
    r.method = method;
    const std::size_t q = path.find('?');
    r.path = path.substr(0, q);
    if (q != std::string::npos) {
      const std::string query = path.substr(q + 1);
      const std::size_t eq = query.find('=');
      r.query.emplace_back(query.substr(0, eq), query.substr(eq + 1));
    }
    for (auto& h : headers) r.headers.emplace_back(h.first, h.second);
    r.body = body;
    r.remote = remote;
    r.tls = tls;
    return console_.Handle(r, hashes_);
  }

  static std::string HeaderOf(const httpd::Response& r, const std::string& name) {
    for (const auto& [key, value] : r.headers) {
      if (key == name) return value;
    }
    return "";
  }

  // Signs in; the cookie ("idsync_session=...") and the CSRF token.
  std::pair<std::string, std::string> SignIn(bool tls = false) {
    const httpd::Response r =
        Call("POST", "/ui/api/session", {}, json({{"token", kToken}}).dump(), "10.0.0.9:1", tls);
    EXPECT_EQ(r.status, 200) << r.body;
    const std::string cookie = HeaderOf(r, "Set-Cookie");
    return {cookie.substr(0, cookie.find(';')), json::parse(r.body)["csrf"]};
  }

  FakeConsoleBackend backend_;
  fakes::MemoryStore store_;
  std::string log_lines_;
  Logger log_;
  std::int64_t now_ = 1'000'000;
  std::vector<std::string> hashes_ = {"sha256:" + Sha256Hex(kToken)};
  Console console_;
};

TEST_F(ConsoleTest, ASessionLastsItsLifetimeAndEndsWithItsToken) {
  auto [cookie, csrf] = SignIn();
  EXPECT_EQ(Call("GET", "/ui/api/overview", {{"Cookie", "a=b; " + cookie}}).status, 200);
  now_ += 8 * 3600 * 1000 - 1;
  EXPECT_EQ(Call("GET", "/ui/api/overview", {{"Cookie", cookie}}).status, 200);
  now_ += 1;
  const httpd::Response expired = Call("GET", "/ui/api/overview", {{"Cookie", cookie}});
  EXPECT_EQ(expired.status, 401);
  EXPECT_NE(HeaderOf(expired, "Set-Cookie").find("Max-Age=0"), std::string::npos);

  auto [again, unused] = SignIn();
  hashes_ = {"sha256:" + Sha256Hex("another-token")};
  EXPECT_EQ(Call("GET", "/ui/api/overview", {{"Cookie", again}}).status, 401);
  hashes_ = {"sha256:" + Sha256Hex(kToken)};
  EXPECT_EQ(Call("GET", "/ui/api/overview", {{"Cookie", again}}).status, 401)
      << "a session ended with its token stays ended";
  EXPECT_EQ(log_lines_.find(kToken), std::string::npos);
}

TEST_F(ConsoleTest, TheCookieIsSecureOverTlsAndNeverReadableByScript) {
  const httpd::Response plain =
      Call("POST", "/ui/api/session", {}, json({{"token", kToken}}).dump());
  EXPECT_EQ(HeaderOf(plain, "Set-Cookie").find("Secure"), std::string::npos);
  const httpd::Response tls =
      Call("POST", "/ui/api/session", {}, json({{"token", kToken}}).dump(), "10.0.0.1:1", true);
  const std::string cookie = HeaderOf(tls, "Set-Cookie");
  EXPECT_NE(cookie.find("; Secure"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("; HttpOnly"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("; SameSite=Strict"), std::string::npos) << cookie;
}

TEST_F(ConsoleTest, AChangeNeedsTheCsrfTokenAndThisOrigin) {
  auto [cookie, csrf] = SignIn();
  const std::vector<std::pair<std::string, std::string>> ok = {
      {"Cookie", cookie}, {"X-CSRF-Token", csrf}, {"Host", "127.0.0.1:9107"}};
  EXPECT_EQ(Call("POST", "/ui/api/sync", {{"Cookie", cookie}}).status, 403);
  EXPECT_EQ(Call("POST", "/ui/api/sync", {{"Cookie", cookie}, {"X-CSRF-Token", csrf + "0"}}).status,
            403);
  auto cross = ok;
  cross.emplace_back("Origin", "http://127.0.0.1:9108");
  EXPECT_EQ(Call("POST", "/ui/api/sync", cross).status, 403);
  auto same = ok;
  same.emplace_back("Origin", "http://127.0.0.1:9107");
  EXPECT_EQ(Call("POST", "/ui/api/sync", same).status, 202);
  EXPECT_EQ(backend_.syncs, 1);
  // Signing out needs them too, and ends the session.
  EXPECT_EQ(Call("DELETE", "/ui/api/session", {{"Cookie", cookie}}).status, 403);
  EXPECT_EQ(Call("DELETE", "/ui/api/session", ok).status, 204);
  EXPECT_EQ(Call("GET", "/ui/api/session", {{"Cookie", cookie}}).status, 401);
}

TEST_F(ConsoleTest, FailedSignInsAreCutOffPerAddressForAMinute) {
  for (int i = 0; i < Console::kSignInFailuresPerMinute; ++i) {
    EXPECT_EQ(Call("POST", "/ui/api/session", {}, R"({"token": "guess"})").status, 401);
  }
  EXPECT_EQ(Call("POST", "/ui/api/session", {}, json({{"token", kToken}}).dump()).status, 429);
  // Another address is not held up.
  EXPECT_EQ(
      Call("POST", "/ui/api/session", {}, json({{"token", kToken}}).dump(), "10.0.0.2:1").status,
      200);
  now_ += 60'000;
  EXPECT_EQ(Call("POST", "/ui/api/session", {}, json({{"token", kToken}}).dump()).status, 200);
  EXPECT_EQ(log_lines_.find("guess"), std::string::npos);
  EXPECT_NE(log_lines_.find("console.signin_refused"), std::string::npos);
}

TEST_F(ConsoleTest, RoutesAnswersAndHeaders) {
  auto [cookie, csrf] = SignIn();
  const std::vector<std::pair<std::string, std::string>> s = {{"Cookie", cookie}};
  const httpd::Response page = Call("GET", "/ui/");
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  EXPECT_NE(HeaderOf(page, "Content-Security-Policy").find("default-src 'none'"),
            std::string::npos);
  EXPECT_EQ(Call("GET", "/ui").status, 308);
  EXPECT_EQ(Call("POST", "/ui/app.js").status, 405);
  EXPECT_EQ(Call("GET", "/ui/api/nothing", s).status, 404);
  EXPECT_EQ(Call("GET", "/ui/api/people/nobody@corp.example", s).status, 404);
  EXPECT_EQ(Call("GET", "/ui/api/people/bruno@corp.example", s).status, 200);
  const json people = json::parse(Call("GET", "/ui/api/people?limit=100000", s).body);
  EXPECT_EQ(people["limit"], 200) << "a page is capped";
  const httpd::Response report = Call("GET", "/ui/api/report.html", s);
  EXPECT_EQ(HeaderOf(report, "Content-Disposition"),
            "attachment; filename=\"idsync-access-review.html\"");
  EXPECT_EQ(HeaderOf(report, "Cache-Control"), "no-store");
  EXPECT_EQ(Call("POST", "/ui/api/session", {}, "not json").status, 400);
}

}  // namespace
}  // namespace idsync::daemon
