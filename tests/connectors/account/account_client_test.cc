// Tests of the Account API client against a loopback fake account: a Poco

#include "idsync/testing/status_matchers.h"
// HTTP(S) server on 127.0.0.1, port 0, that answers from a script and records
// what the client sent. Time and sleep are injected wherever the test looks
// at delays, so no test waits for backoff.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/NetSSL.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>
#include <Poco/ThreadPool.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include "idsync/account/account_client.h"

#include "gtest/gtest.h"
#include "wait_until.h"

namespace idsync::account {
namespace {

using namespace std::chrono_literals;
using mapping::AccountRecord;
using mapping::AccountWrite;
using mapping::Level;
using mapping::Role;
using nlohmann::json;
using std::chrono::milliseconds;

constexpr char kToken[] = "s3cret-T0ken";

// ---------------------------------------------------------------------------
// The fake account

struct Reply {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  milliseconds delay{0};    // real time, before answering
  bool drop = false;        // close the connection instead of answering
  milliseconds trickle{0};  // real time between the body's bytes
  bool chunked = false;     // no Content-Length
};

Reply Json(int status, const std::string& body) { return Reply{status, body, {}, 0ms, false}; }
Reply Drop() { return Reply{0, "", {}, 0ms, true}; }

struct Seen {
  std::string method;
  std::string uri;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "<absent>" : it->second;
  }
};

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class FakeAccount {
 public:
  using Handler = std::function<Reply(const Seen&)>;

  // `tls` null: plain HTTP.
  explicit FakeAccount(Poco::Net::Context::Ptr tls = nullptr) : https_(!tls.isNull()) {
    Poco::Net::SocketAddress address("127.0.0.1", 0);
    std::unique_ptr<Poco::Net::ServerSocket> socket;
    if (https_) {
      socket = std::make_unique<Poco::Net::SecureServerSocket>(address, 64, tls);
    } else {
      socket = std::make_unique<Poco::Net::ServerSocket>(address, 64);
    }
    port_ = socket->address().port();
    auto* params = new Poco::Net::HTTPServerParams;
    params->setKeepAlive(true);
    params->setMaxKeepAliveRequests(1000);
    params->setKeepAliveTimeout(Poco::Timespan(10, 0));
    params->setMaxThreads(32);
    params->setMaxQueued(128);
    server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(*this), pool_, *socket, params);
    server_->start();
  }

  ~FakeAccount() { server_->stopAll(true); }

  std::string url(const std::string& path = "/api/v1") const {
    return std::string(https_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + path;
  }

  // Answers in this order; a request past the end gets a 500.
  void Script(std::vector<Reply> replies) {
    std::lock_guard<std::mutex> lock(mu_);
    script_.assign(replies.begin(), replies.end());
  }
  void SetHandler(Handler handler) {
    std::lock_guard<std::mutex> lock(mu_);
    handler_ = std::move(handler);
  }
  std::vector<Seen> seen() const {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }
  int max_in_flight() const { return max_in_flight_.load(); }

 private:
  class Handle : public Poco::Net::HTTPRequestHandler {
   public:
    explicit Handle(FakeAccount& owner) : owner_(owner) {}
    void handleRequest(Poco::Net::HTTPServerRequest& request,
                       Poco::Net::HTTPServerResponse& response) override {
      owner_.Serve(request, response);
    }

   private:
    FakeAccount& owner_;
  };

  class Factory : public Poco::Net::HTTPRequestHandlerFactory {
   public:
    explicit Factory(FakeAccount& owner) : owner_(owner) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(
        const Poco::Net::HTTPServerRequest&) override {
      return new Handle(owner_);
    }

   private:
    FakeAccount& owner_;
  };

  void Serve(Poco::Net::HTTPServerRequest& request, Poco::Net::HTTPServerResponse& response) {
    int now = ++in_flight_;
    int max = max_in_flight_.load();
    while (now > max && !max_in_flight_.compare_exchange_weak(max, now)) {
    }
    Seen s;
    s.method = request.getMethod();
    s.uri = request.getURI();
    for (const auto& [name, value] : request) s.headers[Lower(name)] = value;
    Poco::StreamCopier::copyToString(request.stream(), s.body);
    Reply reply;
    {
      std::lock_guard<std::mutex> lock(mu_);
      seen_.push_back(s);
      if (handler_) {
        reply = handler_(s);
      } else if (!script_.empty()) {
        reply = script_.front();
        script_.pop_front();
      } else {
        reply = Json(500, R"({"error":{"code":"unscripted","message":"no reply scripted"}})");
      }
    }
    if (reply.delay > 0ms) std::this_thread::sleep_for(reply.delay);
    --in_flight_;
    if (reply.drop) {
      static_cast<Poco::Net::HTTPServerRequestImpl&>(request).socket().shutdown();
      return;
    }
    response.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(reply.status));
    for (const auto& [name, value] : reply.headers) response.set(name, value);
    if (!reply.body.empty()) response.setContentType("application/json");
    if (reply.chunked) {
      response.setChunkedTransferEncoding(true);
    } else {
      response.setContentLength(static_cast<std::streamsize>(reply.body.size()));
    }
    std::ostream& os = response.send();
    if (reply.trickle == 0ms) {
      os << reply.body;
      return;
    }
    for (char c : reply.body) {
      if (!(os << c << std::flush)) break;
      std::this_thread::sleep_for(reply.trickle);
    }
  }

  const bool https_;
  Poco::UInt16 port_ = 0;
  Poco::ThreadPool pool_{2, 32};
  std::unique_ptr<Poco::Net::HTTPServer> server_;
  mutable std::mutex mu_;
  std::deque<Reply> script_;
  Handler handler_;
  std::vector<Seen> seen_;
  std::atomic<int> in_flight_{0};
  std::atomic<int> max_in_flight_{0};
};

// ---------------------------------------------------------------------------
// Test helpers

// A clock that moves only when the client sleeps.
class FakeTime {
 public:
  ClientOptions Options() {
    ClientOptions o;
    o.now = [this] {
      std::lock_guard<std::mutex> lock(mu_);
      return now_;
    };
    o.sleep = [this](milliseconds d) {
      std::lock_guard<std::mutex> lock(mu_);
      sleeps_.push_back(d);
      now_ += d;
    };
    o.initial_backoff = 100ms;
    o.max_backoff = 1s;
    o.jitter_seed = 42;
    return o;
  }
  std::vector<milliseconds> sleeps() const {
    std::lock_guard<std::mutex> lock(mu_);
    return sleeps_;
  }

 private:
  mutable std::mutex mu_;
  std::chrono::steady_clock::time_point now_ = std::chrono::steady_clock::time_point() + 1h;
  std::vector<milliseconds> sleeps_;
};

config::AccountConfig Config(const std::string& url) {
  config::AccountConfig c;
  c.url = url;
  c.token = kToken;
  c.concurrency = 4;
  // High enough that the limiter never sleeps in tests not about it.
  c.max_requests_per_second = 1e6;
  c.timeout = 2s;
  c.retry_for = 60s;
  return c;
}

std::unique_ptr<AccountClient> MakeClient(const config::AccountConfig& c, ClientOptions o) {
  Result<std::unique_ptr<AccountClient>> client = AccountClient::Create(c, std::move(o));
  EXPECT_TRUE(client.ok()) << client.status().ToString();
  return client.ok() ? std::move(client).value() : nullptr;
}

std::string UserJson(const std::string& id, const std::string& email) {
  return json{{"id", id},
              {"email", email},
              {"name", "N " + id},
              {"role", "member"},
              {"status", "active"},
              {"permissions", {{"analytics", "read"}, {"build.knowledge", "edit"}}},
              {"projects", {"p_support"}},
              {"created_at", "2026-11-27T10:00:00Z"},
              {"updated_at", "2026-11-28T10:00:00Z"}}
      .dump();
}

std::string ErrorJson(const std::string& code, const std::string& message) {
  return json{{"error", {{"code", code}, {"message", message}}}}.dump();
}

AccountWrite Invite() {
  AccountWrite w;
  w.kind = AccountWrite::Kind::kInvite;
  w.email = "Ana@Corp.example";
  w.name = "";
  w.role = Role::kMember;
  w.permissions =
      mapping::PermissionSpec{{"build", Level::kEdit}, {"channels.voice", Level::kRead}};
  w.projects = std::vector<std::string>{"p_support", "p_sales"};
  w.idempotency_key = "op-17-3f9a";
  return w;
}

AccountWrite Patch() {
  AccountWrite w;
  w.kind = AccountWrite::Kind::kPatch;
  w.user_id = "u_8f3a";
  w.role = Role::kAdmin;
  w.permissions = mapping::PermissionSpec{};
  w.idempotency_key = "op-18-77aa";
  return w;
}

AccountWrite Delete() {
  AccountWrite w;
  w.kind = AccountWrite::Kind::kDelete;
  w.user_id = "u_8f3a";
  w.idempotency_key = "op-19-0b1c";
  return w;
}

// ---------------------------------------------------------------------------
// Wire format

TEST(AccountClient, GetCatalogSendsBearerTokenAndParsesAreas) {
  FakeAccount fake;
  fake.Script({Json(200, R"({"levels":["none","read","edit"],"areas":[
      {"key":"build","label":"Build","items":[{"key":"agent","label":"Agent"},
                                              {"key":"knowledge","label":"Knowledge"}]},
      {"key":"channels","label":"Channels","items":[{"key":"voice","label":"Voice"}]}]})")});
  FakeTime time;
  auto client = MakeClient(Config(fake.url()), time.Options());
  Result<mapping::Catalog> catalog = client->GetCatalog();
  ASSERT_TRUE(catalog.ok()) << catalog.status().ToString();
  EXPECT_EQ(catalog->item_keys(),
            (std::vector<std::string>{"build.agent", "build.knowledge", "channels.voice"}));
  std::vector<Seen> seen = fake.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "GET");
  EXPECT_EQ(seen[0].uri, "/api/v1/catalog");
  EXPECT_EQ(seen[0].Header("authorization"), std::string("Bearer ") + kToken);
  EXPECT_EQ(seen[0].Header("accept"), "application/json");
  EXPECT_EQ(seen[0].Header("idempotency-key"), "<absent>");
  EXPECT_EQ(seen[0].body, "");
}

TEST(AccountClient, ListProjectsParsesIdsAndNames) {
  FakeAccount fake;
  fake.Script(
      {Json(200, R"({"projects":[{"id":"p_1","name":"Support"},{"id":"p_2","name":"Sales"}]})")});
  FakeTime time;
  auto client = MakeClient(Config(fake.url()), time.Options());
  Result<std::vector<mapping::Project>> projects = client->ListProjects();
  ASSERT_TRUE(projects.ok()) << projects.status().ToString();
  ASSERT_EQ(projects->size(), 2u);
  EXPECT_EQ((*projects)[1].id, "p_2");
  EXPECT_EQ((*projects)[1].name, "Sales");
  EXPECT_EQ(fake.seen()[0].uri, "/api/v1/projects");
}

TEST(AccountClient, BaseUrlTrailingSlashKeepsPrefixOnce) {
  FakeAccount fake;
  fake.Script({Json(200, R"({"projects":[]})")});
  FakeTime time;
  auto client = MakeClient(Config(fake.url("/tenant/api/v1/")), time.Options());
  ASSERT_TRUE(client->ListProjects().ok());
  EXPECT_EQ(fake.seen()[0].uri, "/tenant/api/v1/projects");
}

TEST(AccountClient, ListUsersFollowsCursorsUntilNull) {
  FakeAccount fake;
  fake.SetHandler([](const Seen& s) {
    if (s.uri == "/api/v1/users?limit=2") {
      return Json(200, "{\"users\":[" + UserJson("u_1", "a@x.example") + "," +
                           UserJson("u_2", "b@x.example") + "],\"next_cursor\":\"c 2/+x\"}");
    }
    if (s.uri == "/api/v1/users?limit=2&cursor=c%202%2F%2Bx") {
      return Json(200,
                  "{\"users\":[" + UserJson("u_3", "c@x.example") + "],\"next_cursor\":\"c3\"}");
    }
    if (s.uri == "/api/v1/users?limit=2&cursor=c3") {
      return Json(200, R"({"users":[],"next_cursor":null})");
    }
    return Json(400, ErrorJson("invalid_request", "unexpected " + s.uri));
  });
  FakeTime time;
  ClientOptions options = time.Options();
  options.page_size = 2;
  auto client = MakeClient(Config(fake.url()), options);
  Result<std::vector<AccountRecord>> users = client->ListUsers();
  ASSERT_TRUE(users.ok()) << users.status().ToString();
  ASSERT_EQ(users->size(), 3u);
  EXPECT_EQ(fake.seen().size(), 3u);
  const AccountRecord& u = (*users)[2];
  EXPECT_EQ(u.id, "u_3");
  EXPECT_EQ(u.email, "c@x.example");
  EXPECT_EQ(u.name, "N u_3");
  EXPECT_EQ(u.role, Role::kMember);
  EXPECT_EQ(u.status, mapping::AccountUser::Status::kActive);
  EXPECT_EQ(u.permissions, (mapping::PermissionSpec{{"analytics", Level::kRead},
                                                    {"build.knowledge", Level::kEdit}}));
  EXPECT_EQ(u.projects, std::vector<std::string>{"p_support"});
  EXPECT_EQ(u.created_at, "2026-11-27T10:00:00Z");
  EXPECT_EQ(u.updated_at, "2026-11-28T10:00:00Z");
}

TEST(AccountClient, ListUsersFailsWholeWhenALaterPageFails) {
  FakeAccount fake;
  fake.Script(
      {Json(200, "{\"users\":[" + UserJson("u_1", "a@x.example") + "],\"next_cursor\":\"c2\"}"),
       Json(403, ErrorJson("forbidden", "token lacks users:read"))});
  FakeTime time;
  auto client = MakeClient(Config(fake.url()), time.Options());
  Result<std::vector<AccountRecord>> users = client->ListUsers();
  ASSERT_FALSE(users.ok());
  EXPECT_THAT(users, StatusIs(StatusCode::kPermissionDenied));
  EXPECT_EQ(fake.seen().size(), 2u);
}

TEST(AccountClient, GetUserEncodesIdAndParsesUser) {
  FakeAccount fake;
  fake.Script({Json(200, UserJson("u/1", "a@x.example"))});
  FakeTime time;
  auto client = MakeClient(Config(fake.url()), time.Options());
  Result<AccountRecord> user = client->GetUser("u/1");
  ASSERT_TRUE(user.ok()) << user.status().ToString();
  EXPECT_EQ(user->id, "u/1");
  EXPECT_EQ(fake.seen()[0].uri, "/api/v1/users/u%2F1");
}

TEST(AccountClient, GetUserMissingIsNotFound) {
  FakeAccount fake;
  fake.Script({Json(404, ErrorJson("not_found", "no such user"))});
  FakeTime time;
  auto client = MakeClient(Config(fake.url()), time.Options());
  Result<AccountRecord> user = client->GetUser("u_gone");
  EXPECT_THAT(user, StatusIs(StatusCode::kNotFound));
  EXPECT_EQ(fake.seen().size(), 1u);
}

TEST(AccountClient, InviteSendsEveryFieldAndTheIdempotencyKey) {
  FakeAccount fake;
  fake.Script({Json(201, UserJson("u_new", "Ana@Corp.example"))});
  FakeTime time;
  auto client = MakeClient(Config(fake.url()), time.Options());
  Result<AccountRecord> user = client->Write(Invite());
  ASSERT_TRUE(user.ok()) << user.status().ToString();
  EXPECT_EQ(user->id, "u_new");
  std::vector<Seen> seen = fake.seen();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].uri, "/api/v1/users");
  EXPECT_EQ(seen[0].Header("authorization"), std::string("Bearer ") + kToken);
  EXPECT_EQ(seen[0].Header("content-type"), "application/json");
  EXPECT_EQ(seen[0].Header("idempotency-key"), "op-17-3f9a");
  EXPECT_EQ(json::parse(seen[0].body), json::parse(R"({"email":"Ana@Corp.example","name":"",
      "role":"member","permissions":{"build":"edit","channels.voice":"read"},
      "projects":["p_support","p_sales"]})"));
}

TEST(AccountClient, PatchSendsOnlyTheFieldsThatAreSet) {
  FakeAccount fake;
  fake.Script({Json(200, UserJson("u_8f3a", "a@x.example"))});
  FakeTime time;
  auto client = MakeClient(Config(fake.url()), time.Options());
  ASSERT_TRUE(client->Write(Patch()).ok());
  Seen s = fake.seen().at(0);
  EXPECT_EQ(s.method, "PATCH");
  EXPECT_EQ(s.uri, "/api/v1/users/u_8f3a");
  EXPECT_EQ(s.Header("idempotency-key"), "op-18-77aa");
  EXPECT_EQ(s.Header("content-type"), "application/json");
  EXPECT_EQ(json::parse(s.body), json::parse(R"({"role":"admin","permissions":{}})"));
}

TEST(AccountClient, PatchOfAGoneUserIsNotFound) {
  FakeAccount fake;
  fake.Script({Json(404, ErrorJson("not_found", "no such user"))});
  FakeTime time;
  auto client = MakeClient(Config(fake.url()), time.Options());
  EXPECT_THAT(client->Write(Patch()), StatusIs(StatusCode::kNotFound));
  EXPECT_EQ(fake.seen().size(), 1u);
}

TEST(AccountClient, DeleteSucceedsOn204And404) {
  for (int status : {204, 404}) {
    SCOPED_TRACE(status);
    FakeAccount fake;
    fake.Script({Json(status, status == 404 ? ErrorJson("not_found", "gone") : "")});
    FakeTime time;
    auto client = MakeClient(Config(fake.url()), time.Options());
    Result<AccountRecord> user = client->Write(Delete());
    ASSERT_TRUE(user.ok()) << user.status().ToString();
    EXPECT_EQ(user->id, "");
    Seen s = fake.seen().at(0);
    EXPECT_EQ(s.method, "DELETE");
    EXPECT_EQ(s.uri, "/api/v1/users/u_8f3a");
    EXPECT_EQ(s.Header("idempotency-key"), "op-19-0b1c");
    EXPECT_EQ(s.body, "");
  }
}

// ---------------------------------------------------------------------------
// Errors

TEST(AccountClient, InviteConflictIsAlreadyExistsWithTheExistingId) {
  FakeAccount fake;
  fake.Script(
      {Json(409, R"({"error":{"code":"user_exists","message":"exists","user_id":"u_9"}})")});
  FakeTime time;
  auto client = MakeClient(Config(fake.url()), time.Options());
  Result<AccountRecord> user = client->Write(Invite());
  EXPECT_THAT(user, StatusIs(StatusCode::kAlreadyExists));
  EXPECT_EQ(user.status().GetPayload(mapping::kExistingUserIdKey), "u_9");
  EXPECT_NE(user.status().message().find("u_9"), std::string::npos) << user.status().message();
  EXPECT_EQ(fake.seen().size(), 1u);
}

TEST(AccountClient, InviteConflictWithoutIdFindsTheUserByEmail) {
  FakeAccount fake;
  fake.SetHandler([](const Seen& s) {
    if (s.method == "POST") return Json(409, ErrorJson("user_exists", "exists"));
    if (s.uri == "/api/v1/users?limit=1000") {
      return Json(
          200, "{\"users\":[" + UserJson("u_1", "bob@corp.example") + "],\"next_cursor\":\"n\"}");
    }
    return Json(200,
                "{\"users\":[" + UserJson("u_7", "ana@CORP.example") + "],\"next_cursor\":null}");
  });
  FakeTime time;
  auto client = MakeClient(Config(fake.url()), time.Options());
  Result<AccountRecord> user = client->Write(Invite());
  EXPECT_THAT(user, StatusIs(StatusCode::kAlreadyExists));
  EXPECT_EQ(user.status().GetPayload(mapping::kExistingUserIdKey), "u_7");
  EXPECT_EQ(fake.seen().size(), 3u);
}

struct PermanentCase {
  int status;
  std::string body;
  StatusCode code;
};

TEST(AccountClient, PermanentErrorsAreNotRetried) {
  const PermanentCase cases[] = {
      {401, ErrorJson("unauthenticated", "bad token"), StatusCode::kUnauthenticated},
      {403, ErrorJson("forbidden", "not an admin"), StatusCode::kPermissionDenied},
      {400, ErrorJson("invalid_request", "unknown permission key build.nope"),
       StatusCode::kInvalidArgument},
      {422, "not json at all", StatusCode::kInvalidArgument},
  };
  for (const PermanentCase& c : cases) {
    SCOPED_TRACE(c.status);
    FakeAccount fake;
    fake.Script({Json(c.status, c.body), Json(201, UserJson("u_1", "a@x.example"))});
    FakeTime time;
    auto client = MakeClient(Config(fake.url()), time.Options());
    Result<AccountRecord> user = client->Write(Invite());
    EXPECT_EQ(user.status().code(), c.code);
    EXPECT_EQ(fake.seen().size(), 1u);
    EXPECT_TRUE(time.sleeps().empty());
    EXPECT_EQ(client->counters().retries, 0);
  }
}

TEST(AccountClient, InvalidRequestCarriesTheAccountsMessage) {
  FakeAccount fake;
  fake.Script({Json(400, ErrorJson("invalid_request", "unknown permission key build.nope"))});
  FakeTime time;
  auto client = MakeClient(Config(fake.url()), time.Options());
  Status s = client->Write(Invite()).status();
  EXPECT_THAT(s, StatusIs(StatusCode::kInvalidArgument));
  EXPECT_EQ(s.message(),
            "account: POST /api/v1/users: HTTP 400 invalid_request: unknown permission key "
            "build.nope");
}

TEST(AccountClient, TokenEchoedByTheAccountIsRedacted) {
  FakeAccount fake;
  fake.Script({Json(401, ErrorJson("unauthenticated", std::string("bad token ") + kToken))});
  FakeTime time;
  auto client = MakeClient(Config(fake.url()), time.Options());
  Status s = client->GetCatalog().status();
  EXPECT_THAT(s, StatusIs(StatusCode::kUnauthenticated));
  EXPECT_EQ(s.message().find(kToken), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("[redacted]"), std::string::npos) << s.message();
}

// ---------------------------------------------------------------------------
// Retries

TEST(AccountClient, ServerErrorsAreRetriedWithTheSameKeyAndBody) {
  FakeAccount fake;
  fake.Script({Json(503, ErrorJson("unavailable", "busy")), Json(500, "oops"),
               Json(201, UserJson("u_new", "Ana@Corp.example"))});
  FakeTime time;
  auto client = MakeClient(Config(fake.url()), time.Options());
  Result<AccountRecord> user = client->Write(Invite());
  ASSERT_TRUE(user.ok()) << user.status().ToString();
  std::vector<Seen> seen = fake.seen();
  ASSERT_EQ(seen.size(), 3u);
  for (const Seen& s : seen) {
    EXPECT_EQ(s.Header("idempotency-key"), "op-17-3f9a");
    EXPECT_EQ(s.body, seen[0].body);
  }
  // Full jitter under a doubling cap: the n-th delay is at most 100ms * 2^n.
  std::vector<milliseconds> sleeps = time.sleeps();
  ASSERT_EQ(sleeps.size(), 2u);
  EXPECT_LE(sleeps[0], 100ms);
  EXPECT_LE(sleeps[1], 200ms);
  ClientCounters c = client->counters();
  EXPECT_EQ(c.requests, 3);
  EXPECT_EQ(c.retries, 2);
  EXPECT_EQ(c.status_5xx, 2);
  EXPECT_EQ(c.status_2xx, 1);
  EXPECT_EQ(c.transport, 0);
}

TEST(AccountClient, TooManyRequestsWaitsRetryAfter) {
  FakeAccount fake;
  Reply limited = Json(429, ErrorJson("rate_limited", "slow down"));
  limited.headers = {{"Retry-After", "7"}};
  fake.Script({limited, Json(200, R"({"projects":[]})")});
  FakeTime time;
  auto client = MakeClient(Config(fake.url()), time.Options());
  ASSERT_TRUE(client->ListProjects().ok());
  EXPECT_EQ(time.sleeps(), std::vector<milliseconds>{7000ms});
  EXPECT_EQ(client->counters().status_429, 1);
}

TEST(AccountClient, TooManyRequestsWithoutRetryAfterBacksOff) {
  FakeAccount fake;
  fake.Script({Json(429, ErrorJson("rate_limited", "slow down")), Json(200, R"({"projects":[]})")});
  FakeTime time;
  auto client = MakeClient(Config(fake.url()), time.Options());
  ASSERT_TRUE(client->ListProjects().ok());
  std::vector<milliseconds> sleeps = time.sleeps();
  ASSERT_EQ(sleeps.size(), 1u);
  EXPECT_LE(sleeps[0], 100ms);
}

TEST(AccountClient, MalformedAnswerIsRetried) {
  FakeAccount fake;
  fake.Script({Json(200, R"({"projects":[{"id":)"), Json(200, R"({"projects":[]})")});
  FakeTime time;
  auto client = MakeClient(Config(fake.url()), time.Options());
  ASSERT_TRUE(client->ListProjects().ok());
  EXPECT_EQ(fake.seen().size(), 2u);
}

TEST(AccountClient, DroppedConnectionIsRetried) {
  FakeAccount fake;
  fake.Script({Drop(), Json(201, UserJson("u_new", "Ana@Corp.example"))});
  FakeTime time;
  auto client = MakeClient(Config(fake.url()), time.Options());
  Result<AccountRecord> user = client->Write(Invite());
  ASSERT_TRUE(user.ok()) << user.status().ToString();
  std::vector<Seen> seen = fake.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].Header("idempotency-key"), "op-17-3f9a");
  EXPECT_EQ(client->counters().transport, 1);
  EXPECT_EQ(time.sleeps().size(), 1u);
}

TEST(AccountClient, EveryAttemptIsReportedWithItsStatus) {
  FakeAccount fake;
  fake.Script({Drop(), Json(503, ErrorJson("unavailable", "busy")),
               Json(429, ErrorJson("rate_limited", "slow down")),
               Json(201, UserJson("u_new", "Ana@Corp.example"))});
  FakeTime time;
  ClientOptions options = time.Options();
  std::mutex mu;
  std::vector<int> statuses;
  options.on_response = [&](int status) {
    std::lock_guard lock(mu);
    statuses.push_back(status);
  };
  auto client = MakeClient(Config(fake.url()), options);
  ASSERT_TRUE(client->Write(Invite()).ok());
  EXPECT_EQ(statuses, (std::vector<int>{0, 503, 429, 201}));
}

TEST(AccountClient, ReusedConnectionDroppedByServerRecoversAtOnce) {
  FakeAccount fake;
  fake.Script({Json(200, R"({"projects":[]})"), Drop(), Json(200, R"({"projects":[]})")});
  FakeTime time;
  auto client = MakeClient(Config(fake.url()), time.Options());
  ASSERT_TRUE(client->ListProjects().ok());
  // The second call starts on the pooled connection, which the server closes.
  ASSERT_TRUE(client->ListProjects().ok());
  EXPECT_EQ(fake.seen().size(), 3u);
  EXPECT_TRUE(time.sleeps().empty());
}

TEST(AccountClient, SlowAnswerTimesOutAndIsRetried) {
  FakeAccount fake;
  Reply slow = Json(200, R"({"projects":[]})");
  slow.delay = 700ms;
  fake.Script({slow, Json(200, R"({"projects":[{"id":"p_1","name":"Support"}]})")});
  FakeTime time;
  config::AccountConfig c = Config(fake.url());
  c.timeout = 200ms;
  auto client = MakeClient(c, time.Options());
  Result<std::vector<mapping::Project>> projects = client->ListProjects();
  ASSERT_TRUE(projects.ok()) << projects.status().ToString();
  EXPECT_EQ(projects->size(), 1u);
  EXPECT_EQ(client->counters().transport, 1);
}

TEST(AccountClient, RetryDeadlineEndsInDeadlineExceeded) {
  FakeAccount fake;
  fake.SetHandler([](const Seen&) { return Json(503, ErrorJson("unavailable", "down")); });
  FakeTime time;
  ClientOptions options = time.Options();
  options.initial_backoff = 1s;
  options.max_backoff = 2s;
  config::AccountConfig c = Config(fake.url());
  c.retry_for = 10s;
  auto client = MakeClient(c, options);
  Status s = client->Write(Patch()).status();
  EXPECT_THAT(s, StatusIs(StatusCode::kDeadlineExceeded));
  EXPECT_NE(s.message().find("; last error: HTTP 503 unavailable: down"), std::string::npos)
      << s.message();
  std::vector<milliseconds> sleeps = time.sleeps();
  milliseconds total{0};
  for (milliseconds d : sleeps) total += d;
  EXPECT_LT(total, 10s);
  EXPECT_GE(sleeps.size(), 5u);  // each delay is at most 2s
  EXPECT_EQ(fake.seen().size(), sleeps.size() + 1);
  for (const Seen& seen : fake.seen()) EXPECT_EQ(seen.Header("idempotency-key"), "op-18-77aa");
}

// Shutdown: a write waiting to retry (real time, a 30 s backoff) gives up
// as soon as the client is interrupted, and later calls do not try at all.
TEST(AccountClient, InterruptEndsARetryWaitAtOnce) {
  FakeAccount fake;
  fake.SetHandler([](const Seen&) { return Json(503, ErrorJson("unavailable", "down")); });
  ClientOptions options;
  options.initial_backoff = 30s;
  options.max_backoff = 30s;
  options.jitter_seed = 7;
  config::AccountConfig c = Config(fake.url());
  c.retry_for = 10min;
  auto client = MakeClient(c, options);
  // Once the first attempt's 503 is counted the writer is at (or going to)
  // its retry wait, up to 30 s of jittered backoff: interrupt it there.
  std::atomic<bool> done{false};
  Status s;
  std::thread writer([&] {
    s = client->Write(Patch()).status();
    done = true;
  });
  ASSERT_TRUE(::idsync::testing::WaitUntil([&] { return client->counters().status_5xx >= 1; }, 10s))
      << "the first attempt was never answered";
  ASSERT_FALSE(fake.seen().empty());
  const std::size_t attempts = fake.seen().size();
  const auto interrupted = std::chrono::steady_clock::now();
  client->Interrupt();
  writer.join();
  const auto waited = std::chrono::steady_clock::now() - interrupted;
  EXPECT_TRUE(done);
  EXPECT_LT(waited, 2s);
  EXPECT_THAT(s, StatusIs(StatusCode::kUnavailable));
  EXPECT_NE(s.message().find("idsync is stopping"), std::string::npos) << s.message();
  EXPECT_EQ(fake.seen().size(), attempts);
  Status later = client->GetCatalog().status();
  EXPECT_THAT(later, StatusIs(StatusCode::kUnavailable));
  EXPECT_EQ(fake.seen().size(), attempts);
}

TEST(AccountClient, RefusedConnectionIsRetriedUntilTheDeadline) {
  std::string url;
  {
    FakeAccount gone;  // takes a free port, then gives it back
    url = gone.url();
  }
  FakeTime time;
  config::AccountConfig c = Config(url);
  c.read_retry_for = 5s;
  auto client = MakeClient(c, time.Options());
  Status s = client->GetCatalog().status();
  EXPECT_THAT(s, StatusIs(StatusCode::kDeadlineExceeded));
  EXPECT_NE(s.message().find("refused"), std::string::npos) << s.message();
  ClientCounters counters = client->counters();
  EXPECT_GT(counters.transport, 1);
  EXPECT_EQ(counters.transport, counters.requests);
}

// Reads, which a person or a run waits for, give up after
// account.read_retry_for, naming the URL and the last error, and say what
// they retry while they wait; retry_for (24 h) does not apply to them.
TEST(AccountClient, ReadsGiveUpAfterReadRetryForNamingTheUrl) {
  std::string url;
  {
    FakeAccount gone;  // takes a free port, then gives it back
    url = gone.url();
  }
  FakeTime time;
  ClientOptions options = time.Options();
  std::vector<RetryNotice> notices;
  options.on_retry = [&](const RetryNotice& n) { notices.push_back(n); };
  config::AccountConfig c = Config(url);
  c.retry_for = 24h;
  c.read_retry_for = 5s;
  auto client = MakeClient(c, options);
  Status s = client->ListProjects().status();
  EXPECT_THAT(s, StatusIs(StatusCode::kDeadlineExceeded));
  EXPECT_NE(s.message().find("gave up on " + url + "/projects after "), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("(account.read_retry_for); last error: "), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("refused"), std::string::npos) << s.message();
  milliseconds slept{0};
  for (milliseconds d : time.sleeps()) slept += d;
  EXPECT_LT(slept, 5s);
  ASSERT_EQ(notices.size(), time.sleeps().size());
  ASSERT_FALSE(notices.empty());
  EXPECT_EQ(notices[0].request, "GET " + url + "/projects");
  EXPECT_NE(notices[0].error.find("refused"), std::string::npos) << notices[0].error;
  EXPECT_EQ(notices[0].attempts, 1);
  EXPECT_EQ(notices[0].delay, time.sleeps()[0]);
  EXPECT_GT(notices[0].left, 4s);
  EXPECT_FALSE(notices[0].write);
}

// Writes stay on account.retry_for however short the read budget is.
TEST(AccountClient, WritesKeepRetryingForRetryFor) {
  FakeAccount fake;
  fake.SetHandler([](const Seen&) { return Json(503, ErrorJson("unavailable", "down")); });
  FakeTime time;
  ClientOptions options = time.Options();
  bool write_notices = true;
  options.on_retry = [&](const RetryNotice& n) { write_notices = write_notices && n.write; };
  config::AccountConfig c = Config(fake.url());
  c.retry_for = 10s;
  c.read_retry_for = 1s;
  auto client = MakeClient(c, options);
  Status s = client->Write(Patch()).status();
  EXPECT_THAT(s, StatusIs(StatusCode::kDeadlineExceeded));
  EXPECT_NE(s.message().find("(account.retry_for)"), std::string::npos) << s.message();
  milliseconds slept{0};
  for (milliseconds d : time.sleeps()) slept += d;
  EXPECT_GT(slept, 5s);
  EXPECT_TRUE(write_notices);
}

// account.timeout bounds the whole attempt: an answer trickled a byte at a
// time, each well within any one receive timeout, is cut at the deadline.
TEST(AccountClient, AnAttemptEndsAtItsDeadlineHoweverTheBytesTrickle) {
  FakeAccount fake;
  Reply slow = Json(200, R"({"projects":[]})" + std::string(20, ' '));
  slow.trickle = 100ms;  // 35 bytes: 3.5 s
  fake.SetHandler([slow](const Seen&) { return slow; });
  FakeTime time;
  config::AccountConfig c = Config(fake.url());
  c.timeout = 400ms;
  c.read_retry_for = 1ms;  // as good as one attempt (a retry may be drawn at once)
  auto client = MakeClient(c, time.Options());
  const auto start = std::chrono::steady_clock::now();
  Status s = client->ListProjects().status();
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_THAT(s, StatusIs(StatusCode::kDeadlineExceeded));
  EXPECT_NE(s.message().find("no complete answer within 0.4s (account.timeout: connect, send and "
                             "receive together)"),
            std::string::npos)
      << s.message();
  EXPECT_LT(took, 400ms * fake.seen().size() + 1s);
}

// An answer over max_response_bytes fails at once, whether its size is
// announced or streamed, and a listing page is no exception.
TEST(AccountClient, AnAnswerOverTheCapFailsWithoutRetry) {
  const std::string page = R"({"users":[)" + UserJson("u_1", "a@corp.example") + "," +
                           UserJson("u_2", "b@corp.example") + "," +
                           UserJson("u_3", "c@corp.example") + "]}";
  for (bool chunked : {false, true}) {
    FakeAccount fake;
    Reply big = Json(200, page);
    big.chunked = chunked;
    fake.Script({big});
    FakeTime time;
    ClientOptions options = time.Options();
    options.max_response_bytes = 300;
    auto client = MakeClient(Config(fake.url()), options);
    Status s = client->ListUsers().status();
    EXPECT_THAT(s, StatusIs(StatusCode::kResourceExhausted)) << chunked;
    EXPECT_NE(s.message().find("account: GET /api/v1/users: the answer is larger than 300 bytes ("),
              std::string::npos)
        << s.message();
    EXPECT_EQ(fake.seen().size(), 1u);
    EXPECT_TRUE(time.sleeps().empty());
  }
  // Within the cap the same page is read.
  FakeAccount fake;
  fake.Script({Json(200, page)});
  ClientOptions options;
  options.max_response_bytes = page.size();
  auto client = MakeClient(Config(fake.url()), options);
  Result<std::vector<AccountRecord>> users = client->ListUsers();
  ASSERT_TRUE(users.ok()) << users.status().ToString();
  EXPECT_EQ(users->size(), 3u);
}

// Shutdown does not wait for an answer in progress: Interrupt() cuts it.
TEST(AccountClient, InterruptEndsAReadInProgress) {
  FakeAccount fake;
  Reply late = Json(200, R"({"projects":[]})");
  late.delay = 4s;
  fake.Script({late});
  config::AccountConfig c = Config(fake.url());
  c.timeout = 30s;
  auto client = MakeClient(c, ClientOptions{});
  Status s;
  std::thread reader([&] { s = client->ListProjects().status(); });
  ASSERT_TRUE(::idsync::testing::WaitUntil([&] { return fake.seen().size() == 1; }, 10s));
  const auto interrupted = std::chrono::steady_clock::now();
  client->Interrupt();
  reader.join();
  EXPECT_LT(std::chrono::steady_clock::now() - interrupted, 1s);
  EXPECT_THAT(s, StatusIs(StatusCode::kUnavailable));
  EXPECT_NE(s.message().find("idsync is stopping"), std::string::npos) << s.message();
}

TEST(AccountClient, RetryAfterBeyondTheDeadlineGivesUpAtOnce) {
  FakeAccount fake;
  Reply limited = Json(429, ErrorJson("rate_limited", "slow down"));
  limited.headers = {{"Retry-After", "120"}};
  fake.Script({limited});
  FakeTime time;
  config::AccountConfig c = Config(fake.url());
  c.retry_for = 60s;
  auto client = MakeClient(c, time.Options());
  Status s = client->Write(Invite()).status();
  EXPECT_THAT(s, StatusIs(StatusCode::kDeadlineExceeded));
  ASSERT_TRUE(s.retry_after_seconds().has_value());
  EXPECT_EQ(*s.retry_after_seconds(), 120.0);
  EXPECT_EQ(fake.seen().size(), 1u);
  EXPECT_TRUE(time.sleeps().empty());
}

// ---------------------------------------------------------------------------
// Pacing

struct RateCase {
  int concurrency;
  int requests;
  std::vector<milliseconds> sleeps;
};

TEST(AccountClient, RateLimitSpacesRequestsAfterTheBurst) {
  const RateCase cases[] = {
      {1, 4, {100ms, 100ms, 100ms}},  // burst 1
      {3, 5, {100ms, 100ms}},         // burst 3 (at most one per slot)
  };
  for (const RateCase& rc : cases) {
    SCOPED_TRACE(rc.concurrency);
    FakeAccount fake;
    fake.SetHandler([](const Seen&) { return Json(200, R"({"projects":[]})"); });
    FakeTime time;
    config::AccountConfig c = Config(fake.url());
    c.max_requests_per_second = 10;
    c.concurrency = rc.concurrency;
    auto client = MakeClient(c, time.Options());
    for (int i = 0; i < rc.requests; ++i) ASSERT_TRUE(client->ListProjects().ok());
    EXPECT_EQ(time.sleeps(), rc.sleeps);
  }
}

TEST(AccountClient, ConcurrencyCapsRequestsInFlight) {
  FakeAccount fake;
  fake.SetHandler([](const Seen&) {
    Reply r = Json(200, R"({"projects":[]})");
    r.delay = 25ms;
    return r;
  });
  config::AccountConfig c = Config(fake.url());
  c.concurrency = 3;
  auto client = MakeClient(c, ClientOptions{});
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 3; ++i) {
        if (!client->ListProjects().ok()) ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(fake.seen().size(), 24u);
  EXPECT_LE(fake.max_in_flight(), 3);
  EXPECT_GE(fake.max_in_flight(), 2);  // the cap was reached, not merely respected by luck
}

// ---------------------------------------------------------------------------
// Configuration and TLS

TEST(AccountClient, CreateRejectsBadConfiguration) {
  const std::string urls[] = {"ftp://host/api", "https://", "https://user:pw@host/api",
                              "https://host/api?x=1", "host/api"};
  for (const std::string& url : urls) {
    SCOPED_TRACE(url);
    Result<std::unique_ptr<AccountClient>> client = AccountClient::Create(Config(url));
    EXPECT_THAT(client, StatusIs(StatusCode::kInvalidArgument));
  }
  config::AccountConfig c = Config("https://host/api");
  c.ca_file = "/nonexistent/ca.pem";
  EXPECT_THAT(AccountClient::Create(c), StatusIs(StatusCode::kInvalidArgument));
}

// A temporary directory with self-signed certificates for 127.0.0.1.
class TlsFiles {
 public:
  TlsFiles() {
    std::string pattern = (std::filesystem::temp_directory_path() / "idsync-tls-XXXXXX").string();
    dir_ = mkdtemp(pattern.data());
    Write("good");
    Write("other");
  }
  ~TlsFiles() { std::filesystem::remove_all(dir_); }
  std::string Cert(const std::string& name) const { return dir_ + "/" + name + ".crt"; }
  std::string Key(const std::string& name) const { return dir_ + "/" + name + ".key"; }

 private:
  void Write(const std::string& name) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    ASSERT_NE(key, nullptr);
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), ++serial_);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* subject = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
    X509_set_issuer_name(cert, subject);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:TRUE"},
                              std::pair{NID_subject_key_identifier, "hash"},
                              std::pair{NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost"}}) {
      X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
      ASSERT_NE(ext, nullptr);
      X509_add_ext(cert, ext, -1);
      X509_EXTENSION_free(ext);
    }
    ASSERT_GT(X509_sign(cert, key, EVP_sha256()), 0);
    FILE* f = std::fopen(Cert(name).c_str(), "w");
    ASSERT_NE(f, nullptr);
    PEM_write_X509(f, cert);
    std::fclose(f);
    f = std::fopen(Key(name).c_str(), "w");
    ASSERT_NE(f, nullptr);
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    X509_free(cert);
    EVP_PKEY_free(key);
  }

  std::string dir_;
  long serial_ = 0;
};

Poco::Net::Context::Ptr ServerContext(const TlsFiles& files) {
  Poco::Net::initializeSSL();
  return new Poco::Net::Context(Poco::Net::Context::TLS_SERVER_USE, files.Key("good"),
                                files.Cert("good"), "", Poco::Net::Context::VERIFY_NONE);
}

TEST(AccountClient, TlsVerifiedWithTheRightCaFile) {
  TlsFiles files;
  FakeAccount fake(ServerContext(files));
  fake.Script({Json(200, R"({"projects":[]})")});
  FakeTime time;
  config::AccountConfig c = Config(fake.url());
  c.ca_file = files.Cert("good");
  auto client = MakeClient(c, time.Options());
  Result<std::vector<mapping::Project>> projects = client->ListProjects();
  ASSERT_TRUE(projects.ok()) << projects.status().ToString();
  EXPECT_EQ(fake.seen().at(0).Header("authorization"), std::string("Bearer ") + kToken);
}

TEST(AccountClient, TlsRefusedWithAnotherCaAndNotRetried) {
  TlsFiles files;
  FakeAccount fake(ServerContext(files));
  fake.SetHandler([](const Seen&) { return Json(200, R"({"projects":[]})"); });
  FakeTime time;
  config::AccountConfig c = Config(fake.url());
  c.ca_file = files.Cert("other");
  auto client = MakeClient(c, time.Options());
  Status s = client->ListProjects().status();
  EXPECT_THAT(s, StatusIs(StatusCode::kUnavailable));
  EXPECT_NE(s.message().find("certificate"), std::string::npos) << s.message();
  EXPECT_TRUE(fake.seen().empty());
  EXPECT_EQ(client->counters().requests, 1);
  EXPECT_TRUE(time.sleeps().empty());
}

TEST(AccountClient, TlsAcceptedWithoutVerification) {
  TlsFiles files;
  FakeAccount fake(ServerContext(files));
  fake.Script({Json(200, R"({"projects":[]})")});
  FakeTime time;
  config::AccountConfig c = Config(fake.url());
  c.ca_file = files.Cert("other");
  c.verify = false;
  auto client = MakeClient(c, time.Options());
  Result<std::vector<mapping::Project>> projects = client->ListProjects();
  EXPECT_TRUE(projects.ok()) << projects.status().ToString();
}

}  // namespace
}  // namespace idsync::account
