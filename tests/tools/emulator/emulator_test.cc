// The account emulator over real HTTP on loopback: every contract endpoint's
// answers and errors, idempotency keys, injected faults, the admin API,
// persistence and the command-line tool.
#include "idsync/emulator/emulator.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <Poco/Exception.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace idsync::emulator {
namespace {

using Json = nlohmann::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr char kToken[] = "test-token";
constexpr char kSeed[] = R"({
  "projects": [{"id": "p_support", "name": "Support"}, {"id": "p_sales", "name": "Sales"}],
  "users": [{"id": "u_root", "email": "root@corp.example", "name": "Root", "role": "admin",
             "status": "active", "managed": true}]
})";

struct Reply {
  int status = 0;
  std::string body;
  Json json;
  std::map<std::string, std::string> headers;
  bool transport_error = false;

  std::string error_code() const {
    return json.is_object() && json.contains("error") ? json["error"].value("code", "") : "";
  }
};

// A keep-alive HTTP client on one connection, reconnecting after a failure.
class Client {
 public:
  Client(int port, std::string token) : session_("127.0.0.1", port), token(std::move(token)) {
    session_.setKeepAlive(true);
    session_.setTimeout(Poco::Timespan(10, 0));
  }

  Reply Call(const std::string& method, const std::string& path, const std::string& body = "",
             const Headers& headers = {}) {
    Poco::Net::HTTPRequest request(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
    request.setKeepAlive(true);
    if (!token.empty()) request.set("Authorization", "Bearer " + token);
    if (!body.empty()) request.setContentType("application/json");
    for (const auto& [name, value] : headers) request.set(name, value);
    if (!body.empty() || method == "POST" || method == "PATCH" || method == "PUT") {
      request.setContentLength(static_cast<std::streamsize>(body.size()));
    }
    Reply reply;
    try {
      std::ostream& out = session_.sendRequest(request);
      out << body;
      Poco::Net::HTTPResponse response;
      std::istream& in = session_.receiveResponse(response);
      reply.status = response.getStatus();
      reply.body.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      for (const auto& [name, value] : response) reply.headers[name] = value;
      if (!reply.body.empty()) reply.json = Json::parse(reply.body, nullptr, false);
    } catch (const Poco::Exception&) {
      reply.transport_error = true;
      session_.reset();
    }
    return reply;
  }

  Reply Invite(const std::string& email, const std::string& key = "") {
    Headers h;
    if (!key.empty()) h.emplace_back("Idempotency-Key", key);
    return Call("POST", "/users", Json{{"email", email}, {"name", "N"}}.dump(), h);
  }

 private:
  Poco::Net::HTTPClientSession session_;

 public:
  std::string token;
};

std::string TempPath(const std::string& name) {
  static int counter = 0;
  std::filesystem::path dir =
      std::filesystem::path(testing::TempDir()) /
      ("emulator_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

class EmulatorTest : public testing::Test {
 protected:
  void SetUp() override {
    EmulatorOptions options;
    options.token = kToken;
    options.seed_json = kSeed;
    options.random_seed = 42;
    Start(std::move(options));
  }

  void Start(EmulatorOptions options) {
    client_.reset();
    emulator_.reset();
    auto started = AccountEmulator::Start(std::move(options));
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    emulator_ = std::move(started).value();
    client_ = std::make_unique<Client>(emulator_->port(), kToken);
  }

  void SetFaults(const std::string& json) {
    Result<Faults> faults = ParseFaults(json);
    ASSERT_TRUE(faults.ok()) << faults.status().ToString();
    emulator_->SetFaults(*faults);
  }

  std::vector<Json> AllUsers() {
    Reply r = client_->Call("GET", "/users?limit=1000");
    EXPECT_EQ(r.status, 200) << r.body;
    return r.json["users"].get<std::vector<Json>>();
  }

  // Seeds `n` extra users user000@corp.example ... with the given projects.
  void SeedUsers(int n) {
    Json seed = Json::parse(kSeed);
    for (int i = 0; i < n; ++i) {
      char email[64];
      std::snprintf(email, sizeof email, "user%03d@corp.example", i);
      seed["users"].push_back({{"email", email}});
    }
    ASSERT_TRUE(emulator_->SetStateJson(seed.dump()).ok());
  }

  std::unique_ptr<AccountEmulator> emulator_;
  std::unique_ptr<Client> client_;
};

// --- Catalog and projects ---------------------------------------------------

TEST_F(EmulatorTest, CatalogIsTheBuiltinOne) {
  Reply r = client_->Call("GET", "/catalog");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["Content-Type"], "application/json");
  EXPECT_EQ(r.json["levels"], Json({"none", "read", "edit"}));
  std::vector<std::string> areas;
  for (const Json& a : r.json["areas"]) areas.push_back(a["key"]);
  EXPECT_EQ(areas, (std::vector<std::string>{"analytics", "build", "channels", "configure",
                                             "deployments"}));
  EXPECT_EQ(r.json["areas"][1]["items"].size(), 10u);
  EXPECT_EQ(r.json["areas"][1]["items"][1], Json({{"key", "knowledge"}, {"label", "Knowledge"}}));
}

TEST_F(EmulatorTest, CatalogComesFromTheSeedWhenGiven) {
  EmulatorOptions options;
  options.seed_json = R"({"catalog": {"areas": [{"key": "reports", "label": "Reports",
                          "items": [{"key": "daily", "label": "Daily"}]}]}})";
  Start(std::move(options));
  Reply r = client_->Call("GET", "/catalog");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.json["areas"].size(), 1u);
  EXPECT_EQ(r.json["areas"][0]["items"][0]["key"], "daily");
  Reply invite = client_->Call("POST", "/users",
                               R"({"email": "a@corp.example", "permissions": {"build": "read"}})");
  EXPECT_EQ(invite.status, 400);
  Reply ok = client_->Call(
      "POST", "/users", R"({"email": "a@corp.example", "permissions": {"reports.daily": "read"}})");
  EXPECT_EQ(ok.status, 201) << ok.body;
}

TEST_F(EmulatorTest, ProjectsListsTheSeededProjects) {
  Reply r = client_->Call("GET", "/projects");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.json, Json::parse(R"({"projects": [{"id": "p_support", "name": "Support"},
                                                 {"id": "p_sales", "name": "Sales"}]})"));
}

// --- Authentication and routing -----------------------------------------------

TEST_F(EmulatorTest, RequestsWithoutTheTokenAre401) {
  for (std::string token : {"", "wrong-token", "test-token-but-longer"}) {
    client_->token = token;
    Reply r = client_->Call("GET", "/users");
    EXPECT_EQ(r.status, 401) << token;
    EXPECT_EQ(r.error_code(), "unauthorized");
    EXPECT_EQ(r.headers["WWW-Authenticate"], "Bearer");
  }
  Reply basic = client_->Call("GET", "/users", "", {{"Authorization", "Basic dGVzdA=="}});
  EXPECT_EQ(basic.status, 401);
}

TEST_F(EmulatorTest, ReadOnlyTokenReadsButWritesAre403) {
  emulator_->SetTokens(kToken, "reader");
  client_->token = "reader";
  EXPECT_EQ(client_->Call("GET", "/users").status, 200);
  Reply r = client_->Invite("a@corp.example");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.error_code(), "forbidden");
  EXPECT_EQ(AllUsers().size(), 1u);  // only the seeded admin; AllUsers reads as the reader
}

TEST_F(EmulatorTest, UnknownPathIs404AndWrongMethodIs405) {
  Reply missing = client_->Call("GET", "/groups");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.error_code(), "not_found");
  Reply wrong = client_->Call("PUT", "/users/u_root", "{}");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.error_code(), "method_not_allowed");
  EXPECT_EQ(wrong.headers["Allow"], "GET, PATCH, DELETE");
  Reply bad_bytes = client_->Call("GET", "/users/%FF%FE");
  EXPECT_EQ(bad_bytes.status, 404);
  EXPECT_EQ(bad_bytes.error_code(), "not_found");
  EXPECT_EQ(client_->Call("GET", "/users/u%5Froot").status, 200);  // escapes are decoded
}

// --- Users: invite ------------------------------------------------------------

TEST_F(EmulatorTest, InviteCreatesAnInvitedUser) {
  Reply r = client_->Call("POST", "/users", R"({"email": "Ana@Corp.example", "name": "Ana Lima",
      "role": "member", "permissions": {"analytics": "read", "build.knowledge": "edit"},
      "projects": ["p_support"]})");
  ASSERT_EQ(r.status, 201) << r.body;
  std::string id = r.json["id"];
  EXPECT_EQ(id.size(), 18u) << id;
  EXPECT_TRUE(id.starts_with("u_")) << id;
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef", 2), std::string::npos) << id;
  EXPECT_EQ(r.json["email"], "Ana@Corp.example");  // stored as given
  EXPECT_EQ(r.json["status"], "invited");
  EXPECT_EQ(r.json["permissions"],
            Json::parse(R"({"analytics": "read", "build.knowledge": "edit"})"));
  EXPECT_EQ(r.json["projects"], Json({"p_support"}));
  EXPECT_EQ(r.headers["Location"], "/users/" + id);
  Reply get = client_->Call("GET", "/users/" + id);
  ASSERT_EQ(get.status, 200);
  EXPECT_EQ(get.json, r.json);
}

TEST_F(EmulatorTest, InviteOfAnExistingEmailIs409WithTheUserId) {
  Reply r = client_->Invite("ROOT@corp.EXAMPLE");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.error_code(), "user_exists");
  EXPECT_EQ(r.json["error"]["user_id"], "u_root");
  EXPECT_EQ(AllUsers().size(), 1u);
}

TEST_F(EmulatorTest, InviteRejectsInvalidBodies) {
  struct Case {
    const char* name;
    std::string body;
    int status;
    std::string code;
  };
  const std::vector<Case> cases = {
      {"unknown area", R"({"email": "a@corp.example", "permissions": {"billing": "read"}})", 400,
       "invalid_request"},
      {"unknown item", R"({"email": "a@corp.example", "permissions": {"build.nope": "read"}})", 400,
       "invalid_request"},
      {"unknown level", R"({"email": "a@corp.example", "permissions": {"build": "write"}})", 400,
       "invalid_request"},
      {"level not a string", R"({"email": "a@corp.example", "permissions": {"build": 2}})", 400,
       "invalid_request"},
      {"permissions an array", R"({"email": "a@corp.example", "permissions": ["build"]})", 400,
       "invalid_request"},
      {"unknown role", R"({"email": "a@corp.example", "role": "owner"})", 400, "invalid_request"},
      {"no at", R"({"email": "corp.example"})", 400, "invalid_request"},
      {"two ats", R"({"email": "a@b@corp.example"})", 400, "invalid_request"},
      {"no domain dot", R"({"email": "a@localhost"})", 400, "invalid_request"},
      {"space", R"({"email": "a b@corp.example"})", 400, "invalid_request"},
      {"empty local", R"({"email": "@corp.example"})", 400, "invalid_request"},
      {"email missing", R"({"name": "A"})", 400, "invalid_request"},
      {"email a number", R"({"email": 5})", 400, "invalid_request"},
      {"name a number", R"({"email": "a@corp.example", "name": 5})", 400, "invalid_request"},
      {"unknown project", R"({"email": "a@corp.example", "projects": ["p_nope"]})", 400,
       "invalid_request"},
      {"projects a string", R"({"email": "a@corp.example", "projects": "p_support"})", 400,
       "invalid_request"},
      {"repeated project", R"({"email": "a@corp.example", "projects": ["p_sales", "p_sales"]})",
       400, "invalid_request"},
      {"unknown field", R"({"email": "a@corp.example", "status": "active"})", 400,
       "invalid_request"},
      {"malformed JSON", R"({"email": "a@corp.example")", 400, "invalid_request"},
      {"not an object", R"(["a@corp.example"])", 400, "invalid_request"},
  };
  for (const Case& c : cases) {
    Reply r = client_->Call("POST", "/users", c.body);
    EXPECT_EQ(r.status, c.status) << c.name << ": " << r.body;
    EXPECT_EQ(r.error_code(), c.code) << c.name;
    EXPECT_FALSE(r.json["error"].value("message", "").empty()) << c.name;
  }
  EXPECT_EQ(AllUsers().size(), 1u);
}

TEST_F(EmulatorTest, InviteRequiresAJsonContentType) {
  Reply r = client_->Call("POST", "/users", R"({"email": "a@corp.example"})",
                          {{"Content-Type", "text/plain"}});
  EXPECT_EQ(r.status, 415);
  EXPECT_EQ(r.error_code(), "unsupported_media_type");
  Reply charset = client_->Call("POST", "/users", R"({"email": "a@corp.example"})",
                                {{"Content-Type", "application/json; charset=utf-8"}});
  EXPECT_EQ(charset.status, 201);
  Reply empty = client_->Call("POST", "/users", "");
  EXPECT_EQ(empty.status, 400);
}

// --- Users: listing -------------------------------------------------------------

TEST_F(EmulatorTest, ListingPagesInCreationOrder) {
  SeedUsers(24);  // 25 users with u_root
  std::vector<std::string> emails;
  std::vector<std::size_t> page_sizes;
  std::string path = "/users?limit=10";
  while (true) {
    Reply r = client_->Call("GET", path);
    ASSERT_EQ(r.status, 200) << r.body;
    page_sizes.push_back(r.json["users"].size());
    for (const Json& u : r.json["users"]) emails.push_back(u["email"]);
    if (r.json["next_cursor"].is_null()) break;
    path = "/users?limit=10&cursor=" + r.json["next_cursor"].get<std::string>();
  }
  EXPECT_EQ(page_sizes, (std::vector<std::size_t>{10, 10, 5}));
  ASSERT_EQ(emails.size(), 25u);
  EXPECT_EQ(emails[0], "root@corp.example");
  EXPECT_EQ(emails[1], "user000@corp.example");
  EXPECT_EQ(emails[24], "user023@corp.example");
}

// Pages are written without building a document: each user on a page must
// be the object GET /users/{id} answers, escapes and non-ASCII text included.
TEST_F(EmulatorTest, ListedUsersEqualTheirSingleAnswers) {
  SeedUsers(3);
  Reply odd = client_->Call(
      "POST", "/users",
      R"({"email": "odd@corp.example", "name": "Zoë \"Q\" back\\slash\ttab\u0001ctl /",
          "role": "member", "permissions": {"build.knowledge": "edit", "analytics": "read"},
          "projects": []})");
  ASSERT_EQ(odd.status, 201) << odd.body;
  std::vector<Json> listed = AllUsers();
  ASSERT_EQ(listed.size(), 5u);
  bool saw_odd = false;
  for (const Json& u : listed) {
    Reply one = client_->Call("GET", "/users/" + u["id"].get<std::string>());
    ASSERT_EQ(one.status, 200) << one.body;
    EXPECT_EQ(u, one.json);
    if (u["email"] == "odd@corp.example") {
      saw_odd = true;
      EXPECT_EQ(u["name"],
                "Zoë \"Q\" back\\slash\ttab\x01"
                "ctl /");
    }
  }
  EXPECT_TRUE(saw_odd);
}

TEST_F(EmulatorTest, ListingDefaultsTo100PerPage) {
  SeedUsers(149);
  Reply r = client_->Call("GET", "/users");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.json["users"].size(), 100u);
  EXPECT_TRUE(r.json["next_cursor"].is_string());
  Reply rest = client_->Call("GET", "/users?cursor=" + r.json["next_cursor"].get<std::string>());
  EXPECT_EQ(rest.json["users"].size(), 50u);
  EXPECT_TRUE(rest.json["next_cursor"].is_null());
}

TEST_F(EmulatorTest, ListingContinuesPastAUserDeletedBetweenPages) {
  SeedUsers(4);
  Reply first = client_->Call("GET", "/users?limit=2");
  ASSERT_EQ(first.status, 200);
  std::string last_id = first.json["users"][1]["id"];
  ASSERT_EQ(client_->Call("DELETE", "/users/" + last_id).status, 204);
  Reply second =
      client_->Call("GET", "/users?limit=2&cursor=" + first.json["next_cursor"].get<std::string>());
  ASSERT_EQ(second.status, 200);
  EXPECT_EQ(second.json["users"][0]["email"], "user001@corp.example");
  EXPECT_EQ(second.json["users"][1]["email"], "user002@corp.example");
}

TEST_F(EmulatorTest, ListingRejectsBadLimitsAndCursors) {
  for (std::string query : {"limit=0", "limit=1001", "limit=abc", "limit=-1", "limit=", "cursor=zz",
                            "cursor=", "cursor=6166746572", "limit=5&limit=6", "page=2"}) {
    Reply r = client_->Call("GET", "/users?" + query);
    EXPECT_EQ(r.status, 400) << query;
    EXPECT_EQ(r.error_code(), "invalid_request") << query;
  }
  EXPECT_EQ(client_->Call("GET", "/users?limit=1000").status, 200);
  EXPECT_EQ(client_->Call("GET", "/users?limit=1").status, 200);
}

TEST_F(EmulatorTest, GetOfAnUnknownUserIs404) {
  Reply r = client_->Call("GET", "/users/u_nobody");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.error_code(), "not_found");
}

// --- Users: patch and delete ------------------------------------------------------

TEST_F(EmulatorTest, PatchReplacesPermissionsAndProjectsWhole) {
  Reply invite = client_->Call("POST", "/users", R"({"email": "a@corp.example",
      "permissions": {"analytics": "read", "build": "edit"}, "projects": ["p_support"]})");
  ASSERT_EQ(invite.status, 201);
  std::string id = invite.json["id"];
  Reply r = client_->Call("PATCH", "/users/" + id,
                          R"({"permissions": {"channels.voice": "read"}, "projects": ["p_sales"],
                              "role": "admin", "name": "Ana"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["permissions"], Json::parse(R"({"channels.voice": "read"})"));
  EXPECT_EQ(r.json["projects"], Json({"p_sales"}));
  EXPECT_EQ(r.json["role"], "admin");
  EXPECT_EQ(r.json["name"], "Ana");
  EXPECT_EQ(r.json["email"], "a@corp.example");
  EXPECT_EQ(client_->Call("GET", "/users/" + id).json, r.json);
  Reply only_name = client_->Call("PATCH", "/users/" + id, R"({"name": "Ana L"})");
  EXPECT_EQ(only_name.json["permissions"], r.json["permissions"]);  // untouched
}

TEST_F(EmulatorTest, PatchRejectsInvalidBodiesAndUnknownUsers) {
  struct Case {
    const char* name;
    std::string body;
  };
  for (const Case& c : std::vector<Case>{
           {"email is read-only", R"({"email": "b@corp.example"})"},
           {"status is read-only", R"({"status": "active"})"},
           {"bad level", R"({"permissions": {"build": "admin"}})"},
           {"bad key", R"({"permissions": {"build.": "read"}})"},
           {"unknown project", R"({"projects": ["p_x"]})"},
           {"bad role", R"({"role": "Admin"})"},
           {"name null", R"({"name": null})"},
           {"malformed", R"({"name": )"},
       }) {
    Reply r = client_->Call("PATCH", "/users/u_root", c.body);
    EXPECT_EQ(r.status, 400) << c.name << ": " << r.body;
    EXPECT_EQ(r.error_code(), "invalid_request") << c.name;
  }
  Reply missing = client_->Call("PATCH", "/users/u_gone", R"({"name": "x"})");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.error_code(), "not_found");
}

TEST_F(EmulatorTest, DeleteAnswers204ThenThe404) {
  Reply first = client_->Call("DELETE", "/users/u_root");
  EXPECT_EQ(first.status, 204);
  EXPECT_TRUE(first.body.empty());
  Reply again = client_->Call("DELETE", "/users/u_root");
  EXPECT_EQ(again.status, 404);
  EXPECT_EQ(again.error_code(), "not_found");
  EXPECT_EQ(client_->Call("GET", "/users/u_root").status, 404);
  // The e-mail is free again.
  EXPECT_EQ(client_->Invite("root@corp.example").status, 201);
}

// --- Audit ----------------------------------------------------------------------

TEST_F(EmulatorTest, AuditRecordsEveryChangeInOrder) {
  std::string id = client_->Invite("a@corp.example").json["id"];
  ASSERT_EQ(client_->Call("PATCH", "/users/" + id, R"({"role": "admin"})").status, 200);
  ASSERT_EQ(client_->Call("PATCH", "/users/" + id, R"({"role": "admin"})").status, 200);  // no-op
  ASSERT_EQ(client_->Call("DELETE", "/users/" + id).status, 204);

  Reply r = client_->Call("GET", "/audit");
  ASSERT_EQ(r.status, 200);
  const Json& events = r.json["events"];
  ASSERT_EQ(events.size(), 3u) << r.body;
  std::vector<std::string> actions;
  for (const Json& e : events) actions.push_back(e["action"]);
  EXPECT_EQ(actions, (std::vector<std::string>{"invite", "update", "delete"}));
  EXPECT_EQ(events[0]["seq"], 1);
  EXPECT_EQ(events[0]["user_id"], id);
  EXPECT_EQ(events[0]["email"], "a@corp.example");
  EXPECT_TRUE(events[0]["before"].is_null());
  EXPECT_EQ(events[1]["before"]["role"], "member");
  EXPECT_EQ(events[1]["after"]["role"], "admin");
  EXPECT_TRUE(events[2]["after"].is_null());
  EXPECT_TRUE(events[2].contains("at"));

  Reply after = client_->Call("GET", "/audit?after=2");
  ASSERT_EQ(after.json["events"].size(), 1u);
  EXPECT_EQ(after.json["events"][0]["seq"], 3);
  EXPECT_EQ(client_->Call("GET", "/audit?after=x").status, 400);
  EXPECT_EQ(client_->Call("GET", "/audit?since=1").status, 400);
}

// --- Idempotency keys ------------------------------------------------------------

TEST_F(EmulatorTest, ReplayedKeyReturnsTheFirstAnswerAndChangesNothing) {
  Reply first = client_->Invite("a@corp.example", "key-1");
  ASSERT_EQ(first.status, 201);
  Reply second = client_->Invite("a@corp.example", "key-1");
  EXPECT_EQ(second.status, 201);
  EXPECT_EQ(second.body, first.body);
  EXPECT_EQ(second.headers["Idempotent-Replayed"], "true");
  EXPECT_EQ(AllUsers().size(), 2u);
  EXPECT_EQ(client_->Call("GET", "/audit").json["events"].size(), 1u);

  std::vector<LoggedRequest> log = emulator_->Requests();
  ASSERT_GE(log.size(), 2u);
  EXPECT_EQ(log[0].idempotency_key, "key-1");
  EXPECT_TRUE(log[0].applied);
  EXPECT_FALSE(log[0].replay);
  EXPECT_TRUE(log[1].replay);
  EXPECT_FALSE(log[1].applied);
  EXPECT_EQ(log[1].status, 201);
  EXPECT_EQ(log[1].user_id, first.json["id"]);
}

TEST_F(EmulatorTest, ReplayedDeleteAnswers204Again) {
  ASSERT_EQ(client_->Call("DELETE", "/users/u_root", "", {{"Idempotency-Key", "d"}}).status, 204);
  Reply again = client_->Call("DELETE", "/users/u_root", "", {{"Idempotency-Key", "d"}});
  EXPECT_EQ(again.status, 204);
  EXPECT_EQ(client_->Call("DELETE", "/users/u_root").status, 404);  // without the key
}

TEST_F(EmulatorTest, ReplayComparesBodiesAsJson) {
  Headers key = {{"Idempotency-Key", "k"}};
  ASSERT_EQ(client_->Call("POST", "/users", R"({"email":"a@corp.example","name":"A"})", key).status,
            201);
  Reply reordered =
      client_->Call("POST", "/users", R"({ "name": "A",  "email": "a@corp.example" })", key);
  EXPECT_EQ(reordered.status, 201);
  EXPECT_EQ(reordered.headers["Idempotent-Replayed"], "true");
}

TEST_F(EmulatorTest, KeyReusedForAnotherRequestIs422) {
  ASSERT_EQ(client_->Invite("a@corp.example", "k").status, 201);
  Reply other_body = client_->Invite("b@corp.example", "k");
  EXPECT_EQ(other_body.status, 422);
  EXPECT_EQ(other_body.error_code(), "idempotency_mismatch");
  Reply other_path =
      client_->Call("PATCH", "/users/u_root", R"({"name": "x"})", {{"Idempotency-Key", "k"}});
  EXPECT_EQ(other_path.status, 422);
  EXPECT_EQ(client_->Call("GET", "/users/u_root").json["name"], "Root");
  EXPECT_EQ(AllUsers().size(), 2u);
}

TEST_F(EmulatorTest, KeyIsForgottenAfter24Hours) {
  ASSERT_EQ(client_->Invite("a@corp.example", "k").status, 201);
  emulator_->AdvanceClock(std::chrono::hours(23));
  EXPECT_EQ(client_->Invite("a@corp.example", "k").status, 201);  // still a replay
  emulator_->AdvanceClock(std::chrono::hours(1));
  Reply late = client_->Invite("a@corp.example", "k");
  EXPECT_EQ(late.status, 409);  // processed afresh: the user exists
  EXPECT_EQ(late.error_code(), "user_exists");
}

TEST_F(EmulatorTest, InvalidKeyIs400) {
  Reply r = client_->Invite("a@corp.example", std::string(256, 'k'));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(AllUsers().size(), 1u);
}

// --- Faults -----------------------------------------------------------------------

TEST_F(EmulatorTest, ThrottleAnswers429WithRetryAfter) {
  SetFaults(R"({"throttle_rate": {"GET /catalog": 1}, "retry_after_seconds": 3})");
  Reply r = client_->Call("GET", "/catalog");
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.error_code(), "rate_limited");
  EXPECT_EQ(r.headers["Retry-After"], "3");
  EXPECT_EQ(client_->Call("GET", "/projects").status, 200);
  EXPECT_EQ(emulator_->Requests().front().fault, "throttle");
}

// The fraction of 5xx answers when GET /projects fails with `rate`, and the pattern.
std::vector<int> ErrorPattern(Client& client, int n) {
  std::vector<int> statuses;
  for (int i = 0; i < n; ++i) statuses.push_back(client.Call("GET", "/projects").status);
  return statuses;
}

TEST_F(EmulatorTest, ErrorRateIsHonouredAndReproducible) {
  const char* faults = R"({"error_rate": {"GET /projects": 0.25}})";
  SetFaults(faults);
  std::vector<int> first = ErrorPattern(*client_, 400);
  int errors = 0;
  for (int s : first) {
    if (s != 200) {
      ++errors;
      EXPECT_TRUE(s == 500 || s == 502 || s == 503) << s;
    }
  }
  EXPECT_GE(errors, 70);
  EXPECT_LE(errors, 130);
  EXPECT_EQ(client_->Call("GET", "/catalog").status, 200);  // other endpoints unaffected

  EmulatorOptions options;
  options.token = kToken;
  options.seed_json = kSeed;
  options.random_seed = 42;
  options.faults = *ParseFaults(faults);
  Start(std::move(options));
  EXPECT_EQ(ErrorPattern(*client_, 400), first);
}

TEST_F(EmulatorTest, DropBeforeProcessingChangesNothing) {
  SetFaults(R"({"drop_before_rate": {"POST /users": 1}})");
  Reply r = client_->Invite("a@corp.example", "k");
  EXPECT_TRUE(r.transport_error);
  EXPECT_EQ(AllUsers().size(), 1u);
  LoggedRequest logged = emulator_->Requests().front();
  EXPECT_TRUE(logged.dropped);
  EXPECT_FALSE(logged.applied);
  EXPECT_EQ(logged.status, 0);
  EXPECT_EQ(logged.fault, "drop_before");
}

TEST_F(EmulatorTest, DropAfterProcessingAppliesTheChange) {
  SetFaults(R"({"drop_after_rate": {"POST *": 1}})");
  Reply lost = client_->Invite("a@corp.example", "k");
  EXPECT_TRUE(lost.transport_error);
  EXPECT_EQ(AllUsers().size(), 2u);  // the invite landed although its answer did not

  emulator_->SetFaults(Faults{});
  Reply retry = client_->Invite("a@corp.example", "k");
  EXPECT_EQ(retry.status, 201);
  EXPECT_EQ(retry.headers["Idempotent-Replayed"], "true");
  EXPECT_EQ(AllUsers().size(), 2u);

  std::vector<LoggedRequest> log = emulator_->Requests();
  EXPECT_TRUE(log[0].dropped);
  EXPECT_TRUE(log[0].applied);
  EXPECT_EQ(log[0].status, 201);
  EXPECT_EQ(log[0].fault, "drop_after");
  EXPECT_EQ(log[0].user_id, retry.json["id"]);
}

TEST_F(EmulatorTest, RateLimitAnswers429AboveTheLimit) {
  SetFaults(R"({"rate_limit_per_second": 1, "rate_limit_burst": 5})");
  int ok = 0, limited = 0;
  for (int i = 0; i < 12; ++i) {
    Reply r = client_->Call("GET", "/catalog");
    if (r.status == 200) ++ok;
    if (r.status == 429) {
      ++limited;
      EXPECT_EQ(r.headers["Retry-After"], "1");
      EXPECT_EQ(r.error_code(), "rate_limited");
    }
  }
  // A full bucket of 5, plus the one token a second that refills meanwhile.
  EXPECT_GE(ok, 5);
  EXPECT_LE(ok, 7);
  EXPECT_EQ(ok + limited, 12);
  EXPECT_EQ(emulator_->Requests().back().fault, "rate_limit");
}

TEST_F(EmulatorTest, LatencyDelaysEachAnswer) {
  SetFaults(R"({"latency_ms": {"min": 40, "max": 60}})");
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(client_->Call("GET", "/catalog").status, 200);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(40));
}

TEST(ParseFaults, AcceptsTheDocumentedForms) {
  Result<Faults> f = ParseFaults(R"({"error_rate": {"POST /users": 0.2, "*": 0.1},
      "error_statuses": [503], "throttle_rate": 0.05, "retry_after_seconds": 2,
      "latency_ms": 200, "drop_before_rate": {"GET *": 0.01},
      "drop_after_rate": {"PATCH /users/{id}": 0.5}, "rate_limit_per_second": 200,
      "rate_limit_burst": 10})");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->error_rate, (RateTable{{"POST /users", 0.2}, {"*", 0.1}}));
  EXPECT_EQ(f->error_statuses, std::vector<int>{503});
  EXPECT_EQ(f->throttle_rate, (RateTable{{"*", 0.05}}));
  EXPECT_EQ(f->latency.min, std::chrono::milliseconds(200));
  EXPECT_EQ(f->latency.max, std::chrono::milliseconds(200));
  EXPECT_EQ(f->rate_limit_per_second, 200);
  Result<Faults> again = ParseFaults(FaultsToJson(*f));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(FaultsToJson(*again), FaultsToJson(*f));
}

TEST(ParseFaults, RejectsBadDocuments) {
  for (const char* json : {
           R"({"error_rate": 1.5})",
           R"({"error_rate": {"POST /user": 0.1}})",
           R"({"error_rate": "high"})",
           R"({"latency_ms": -1})",
           R"({"latency_ms": {"min": 50, "max": 10}})",
           R"({"error_statuses": [404]})",
           R"({"rate_limit_per_second": -5})",
           R"({"retry_after_seconds": 1.5})",
           R"({"drop_rate": 0.1})",
           R"([1])",
           R"({)",
       }) {
    Result<Faults> f = ParseFaults(json);
    ASSERT_FALSE(f.ok()) << json;
    EXPECT_EQ(f.status().code(), StatusCode::kInvalidArgument) << json;
  }
}

// --- Admin endpoints -------------------------------------------------------------

TEST_F(EmulatorTest, AdminFaultsRoundTripOverHttp) {
  Client admin(emulator_->port(), "");
  Reply put = admin.Call("PUT", "/_emulator/faults", R"({"throttle_rate": {"GET /users": 1}})");
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(client_->Call("GET", "/users").status, 429);
  Reply get = admin.Call("GET", "/_emulator/faults");
  EXPECT_EQ(get.json["throttle_rate"], Json({{"GET /users", 1.0}}));
  Reply bad = admin.Call("PUT", "/_emulator/faults", R"({"throttle_rate": 2})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.error_code(), "invalid_request");
  EXPECT_EQ(client_->Call("GET", "/users").status, 429);  // unchanged by the bad document
}

TEST_F(EmulatorTest, AdminRequestLogListsAndResets) {
  client_->Invite("a@corp.example", "key-9");
  client_->Call("GET", "/users/u_root");
  Client admin(emulator_->port(), "");
  Reply log = admin.Call("GET", "/_emulator/requests");
  ASSERT_EQ(log.status, 200);
  ASSERT_EQ(log.json["requests"].size(), 2u);  // admin requests are not logged
  const Json& first = log.json["requests"][0];
  EXPECT_EQ(first["seq"], 1);
  EXPECT_EQ(first["method"], "POST");
  EXPECT_EQ(first["path"], "/users");
  EXPECT_EQ(first["idempotency_key"], "key-9");
  EXPECT_EQ(first["status"], 201);
  EXPECT_EQ(first["replay"], false);
  EXPECT_EQ(first["dropped"], false);
  EXPECT_TRUE(first["time"].is_string());
  EXPECT_EQ(admin.Call("GET", "/_emulator/requests?after=1").json["requests"].size(), 1u);
  EXPECT_EQ(admin.Call("POST", "/_emulator/reset-log").status, 204);
  EXPECT_EQ(admin.Call("GET", "/_emulator/requests").json["requests"].size(), 0u);
  EXPECT_TRUE(emulator_->Requests().empty());
}

TEST_F(EmulatorTest, AdminStateReplacesTheAccount) {
  Client admin(emulator_->port(), "");
  Reply put = admin.Call("PUT", "/_emulator/state", R"({"users": [{"email": "x@corp.example",
      "projects": ["p_new"]}]})");
  ASSERT_EQ(put.status, 200) << put.body;
  Reply state = admin.Call("GET", "/_emulator/state");
  ASSERT_EQ(state.json["users"].size(), 1u);
  EXPECT_EQ(state.json["users"][0]["status"], "active");
  EXPECT_TRUE(state.json["users"][0]["id"].get<std::string>().starts_with("u_"));
  // Without "projects", the ids users name become the projects.
  EXPECT_EQ(state.json["projects"], Json::parse(R"([{"id": "p_new", "name": "p_new"}])"));
  EXPECT_EQ(state.json["catalog"]["areas"].size(), 5u);
  Reply bad = admin.Call("PUT", "/_emulator/state", R"({"users": [{"email": "nope"}]})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(AllUsers().size(), 1u);
}

TEST_F(EmulatorTest, AdminAcceptTurnsAnInviteActive) {
  std::string id = client_->Invite("a@corp.example").json["id"];
  Client admin(emulator_->port(), "");
  Reply r = admin.Call("POST", "/_emulator/users/" + id + "/accept");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["status"], "active");
  EXPECT_EQ(client_->Call("GET", "/users/" + id).json["status"], "active");
  EXPECT_EQ(client_->Call("GET", "/audit").json["events"].back()["action"], "accept");
  EXPECT_EQ(admin.Call("POST", "/_emulator/users/u_nobody/accept").status, 404);
  EXPECT_EQ(emulator_->AcceptInvite("u_nobody").code(), StatusCode::kNotFound);
}

TEST_F(EmulatorTest, AdminTokenGuardsTheAdminApi) {
  EmulatorOptions options;
  options.admin_token = "admin-secret";
  Start(std::move(options));
  Client anonymous(emulator_->port(), "");
  EXPECT_EQ(anonymous.Call("GET", "/_emulator/state").status, 401);
  Client admin(emulator_->port(), "admin-secret");
  EXPECT_EQ(admin.Call("GET", "/_emulator/state").status, 200);
  // No API token configured: the API itself is open.
  EXPECT_EQ(anonymous.Call("GET", "/users").status, 200);
}

TEST_F(EmulatorTest, AdminTokensAndClockEndpoints) {
  Client admin(emulator_->port(), "");
  EXPECT_EQ(admin.Call("PUT", "/_emulator/tokens", R"({"token": "rotated"})").status, 204);
  EXPECT_EQ(client_->Call("GET", "/users").status, 401);
  client_->token = "rotated";
  ASSERT_EQ(client_->Invite("a@corp.example", "k").status, 201);
  EXPECT_EQ(admin.Call("POST", "/_emulator/clock", R"({"advance_seconds": 90000})").status, 200);
  EXPECT_EQ(client_->Invite("a@corp.example", "k").status, 409);  // the key has expired
  EXPECT_EQ(admin.Call("POST", "/_emulator/clock", R"({"advance": 1})").status, 400);
}

// --- Start-up, persistence, concurrency, CLI --------------------------------------

TEST(EmulatorStart, RejectsBadSeeds) {
  for (
      const char* seed : {
          R"({"users": [{"email": "a@corp.example"}, {"email": "A@corp.example"}]})",
          R"({"users": [{"id": "u1", "email": "a@corp.example"}, {"id": "u1", "email": "b@corp.example"}]})",
          R"({"users": [{"email": "a@corp.example", "role": "owner"}]})",
          R"({"users": [{"email": "a@corp.example", "permissions": {"build": "write"}}]})",
          R"({"users": [{"email": "a@corp.example", "projects": ["p_x"]}], "projects": []})",
          R"({"catalog": {"areas": [{"key": "a.b"}]}})",
          R"({"projects": [{"id": "p"}, {"id": "p"}]})",
          R"({"users": {}})",
          R"(not json)",
      }) {
    EmulatorOptions options;
    options.seed_json = seed;
    auto started = AccountEmulator::Start(std::move(options));
    ASSERT_FALSE(started.ok()) << seed;
    EXPECT_EQ(started.status().code(), StatusCode::kInvalidArgument) << seed;
  }
}

TEST(EmulatorPersistence, StateSurvivesARestart) {
  std::string state_file = TempPath("account.json");
  EmulatorOptions options;
  options.token = kToken;
  options.seed_json = kSeed;
  options.state_file = state_file;
  std::string id;
  {
    auto emulator = AccountEmulator::Start(options);
    ASSERT_TRUE(emulator.ok()) << emulator.status().ToString();
    Client client((*emulator)->port(), kToken);
    Reply invite = client.Invite("a@corp.example", "k1");
    ASSERT_EQ(invite.status, 201);
    id = invite.json["id"];
    ASSERT_EQ(client.Call("PATCH", "/users/" + id, R"({"projects": ["p_sales"]})").status, 200);
  }
  EXPECT_FALSE(std::filesystem::exists(state_file + ".tmp"));
  std::ifstream in(state_file);
  Json saved = Json::parse(in, nullptr, false);
  ASSERT_FALSE(saved.is_discarded());
  EXPECT_EQ(saved["users"].size(), 2u);

  options.seed_json = R"({"users": []})";  // the state file wins over the seed
  auto restarted = AccountEmulator::Start(options);
  ASSERT_TRUE(restarted.ok()) << restarted.status().ToString();
  Client client((*restarted)->port(), kToken);
  Reply user = client.Call("GET", "/users/" + id);
  ASSERT_EQ(user.status, 200);
  EXPECT_EQ(user.json["projects"], Json({"p_sales"}));
  Reply replay = client.Invite("a@corp.example", "k1");  // keys survive too
  EXPECT_EQ(replay.status, 201);
  EXPECT_EQ(replay.headers["Idempotent-Replayed"], "true");
  EXPECT_EQ(client.Call("GET", "/audit").json["events"].size(), 2u);
  EXPECT_EQ(client.Invite("b@corp.example").status, 201);
  EXPECT_EQ(client.Call("GET", "/audit?after=2").json["events"][0]["seq"], 3);
}

TEST_F(EmulatorTest, ParallelInvitesAllLandOnce) {
  constexpr int kThreads = 8, kPerThread = 40;
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Client client(emulator_->port(), kToken);
      for (int i = 0; i < kPerThread; ++i) {
        std::string email = "p" + std::to_string(t) + "_" + std::to_string(i) + "@corp.example";
        if (client.Invite(email, email).status != 201) ++failures[t];
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures, std::vector<int>(kThreads, 0));
  std::set<std::string> ids;
  for (const Json& u : AllUsers()) ids.insert(u["id"].get<std::string>());
  EXPECT_EQ(ids.size(), 1u + kThreads * kPerThread);
}

TEST(EmulatorCli, ServesUntilSigterm) {
  std::string port_file = TempPath("port");
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::execl(IDSYNC_EMULATOR_BINARY, "account-emulator", "--listen", "127.0.0.1:0", "--token",
            "cli-token", "--port-file", port_file.c_str(), "--faults",
            R"({"throttle_rate": {"GET /projects": 1}})", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int port = 0;
  for (int i = 0; i < 500 && port == 0; ++i) {
    std::ifstream in(port_file);
    if (!(in >> port)) {
      port = 0;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ASSERT_GT(port, 0);
  Client client(port, "cli-token");
  EXPECT_EQ(client.Call("GET", "/catalog").status, 200);
  EXPECT_EQ(client.Call("GET", "/projects").status, 429);
  ::kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace idsync::emulator
