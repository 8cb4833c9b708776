// The SCIM listener end to end over loopback HTTP: real httpd, endpoint,
// ScimService and SQLite store. Bad input, source isolation, persistence.
#include <atomic>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "scim_harness.h"

namespace idsync::scim::testing {
namespace {

using nlohmann::json;

constexpr char kOkta[] = "okta-token";
constexpr char kEntra[] = "entra-token";

class ScimHttpTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(HarnessOptions{}); }

  void Start(HarnessOptions options) {
    h_.reset();
    Result<std::unique_ptr<ScimHarness>> h = ScimHarness::Start(std::move(options));
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    h_ = std::move(h).value();
  }

  static std::string User(const std::string& name) {
    return json{{"schemas", {"urn:ietf:params:scim:schemas:core:2.0:User"}},
                {"userName", name},
                {"active", true},
                {"emails", {{{"value", name}, {"type", "work"}, {"primary", true}}}}}
        .dump();
  }

  std::string CreateUser(const std::string& token, const std::string& name) {
    const HttpReply r = h_->Call("POST", "/scim/v2/Users", token, User(name));
    EXPECT_EQ(r.status, 201) << r.body;
    if (r.status != 201) return "";
    return json::parse(r.body).value("id", "");
  }

  static void ExpectScimError(const HttpReply& r, int status) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.Header("content-type").rfind("application/scim+json", 0), 0u)
        << r.Header("content-type");
    const json body = json::parse(r.body, nullptr, false);
    ASSERT_FALSE(body.is_discarded()) << r.body;
    EXPECT_EQ(body.value("schemas", json::array()),
              json::array({"urn:ietf:params:scim:api:messages:2.0:Error"}));
    EXPECT_EQ(body.value("status", ""), std::to_string(status));
  }

  std::unique_ptr<ScimHarness> h_;
};

TEST_F(ScimHttpTest, MissingAndWrongTokensAre401) {
  const HttpReply none = h_->Call("GET", "/scim/v2/Users", "");
  ExpectScimError(none, 401);
  EXPECT_EQ(none.Header("www-authenticate").rfind("Bearer", 0), 0u);
  ExpectScimError(h_->Call("GET", "/scim/v2/Users", "not-a-token"), 401);
  ExpectScimError(h_->Call("POST", "/scim/v2/Users", "not-a-token", User("a@x.test")), 401);
  EXPECT_EQ(json::parse(h_->Call("GET", "/scim/v2/Users", kOkta).body)["totalResults"], 0);
}

TEST_F(ScimHttpTest, ATokenSeesOnlyItsOwnSource) {
  const std::string id = CreateUser(kOkta, "ann@x.test");
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(h_->Call("GET", "/scim/v2/Users/" + id, kOkta).status, 200);
  ExpectScimError(h_->Call("GET", "/scim/v2/Users/" + id, kEntra), 404);
  ExpectScimError(h_->Call("DELETE", "/scim/v2/Users/" + id, kEntra), 404);
  ExpectScimError(h_->Call("PUT", "/scim/v2/Users/" + id, kEntra, User("ann@x.test")), 404);
  ExpectScimError(h_->Call("PATCH", "/scim/v2/Users/" + id, kEntra,
                           R"({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                               "Operations":[{"op":"replace","value":{"active":false}}]})"),
                  404);
  const json entra_list = json::parse(h_->Call("GET", "/scim/v2/Users", kEntra).body);
  EXPECT_EQ(entra_list["totalResults"], 0);
  // userName is unique within a source, not across sources.
  EXPECT_FALSE(CreateUser(kEntra, "ann@x.test").empty());
  const json okta_user = json::parse(h_->Call("GET", "/scim/v2/Users/" + id, kOkta).body);
  EXPECT_EQ(okta_user["active"], true);  // entra's attempts changed nothing
}

TEST_F(ScimHttpTest, ABodyOverTheLimitIs413AsAScimError) {
  HarnessOptions o;
  o.max_body = 4096;
  Start(o);
  const std::string big = User(std::string(5000, 'a') + "@x.test");
  ExpectScimError(h_->Call("POST", "/scim/v2/Users", kOkta, big), 413);
  EXPECT_EQ(json::parse(h_->Call("GET", "/scim/v2/Users", kOkta).body)["totalResults"], 0);
  EXPECT_FALSE(CreateUser(kOkta, "small@x.test").empty());
}

TEST_F(ScimHttpTest, MalformedJsonIs400InvalidSyntax) {
  for (const std::string body : {"{\"userName\": ", "not json", "{\"userName\":\"a\"}}", "[]"}) {
    const HttpReply r = h_->Call("POST", "/scim/v2/Users", kOkta, body);
    ExpectScimError(r, 400);
    EXPECT_EQ(json::parse(r.body).value("scimType", ""), "invalidSyntax") << body;
  }
  EXPECT_EQ(json::parse(h_->Call("GET", "/scim/v2/Users", kOkta).body)["totalResults"], 0);
}

TEST_F(ScimHttpTest, DeepNestingIs400) {
  std::string deep = R"({"userName":"d@x.test","x":)";
  deep += std::string(200, '[') + std::string(200, ']') + "}";
  const HttpReply r = h_->Call("POST", "/scim/v2/Users", kOkta, deep);
  ExpectScimError(r, 400);
  EXPECT_EQ(json::parse(r.body).value("scimType", ""), "invalidSyntax");
}

TEST_F(ScimHttpTest, AWrongContentTypeIs415) {
  ExpectScimError(h_->Call("POST", "/scim/v2/Users", kOkta, User("a@x.test"), "text/plain"), 415);
  EXPECT_EQ(
      h_->Call("POST", "/scim/v2/Users", kOkta, User("a@x.test"), "application/json; charset=utf-8")
          .status,
      201);
}

TEST_F(ScimHttpTest, InvalidFilterIs400InvalidFilter) {
  const HttpReply r =
      h_->Call("GET", "/scim/v2/Users?filter=" + UrlEncode("userName eq \"a\" and ("), kOkta);
  ExpectScimError(r, 400);
  EXPECT_EQ(json::parse(r.body).value("scimType", ""), "invalidFilter");
}

TEST_F(ScimHttpTest, HealthzNeedsNoToken) {
  const HttpReply r = h_->Call("GET", "/healthz", "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body)["status"], "ok");
}

TEST_F(ScimHttpTest, UnknownPathsAre404ScimErrors) {
  ExpectScimError(h_->Call("GET", "/nothing/here", kOkta), 404);
  ExpectScimError(h_->Call("GET", "/scim/v2/Nothing", kOkta), 404);
}

TEST_F(ScimHttpTest, ResourcesSurviveARestartAndPasswordsAreNotStored) {
  const std::string body = json{
      {"schemas", {"urn:ietf:params:scim:schemas:core:2.0:User"}},
      {"userName", "pat@x.test"},
      {"password", "Sup3rSecret!"},
      {"active", true}}.dump();
  const HttpReply created = h_->Call("POST", "/scim/v2/Users", kOkta, body);
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.body.find("Sup3rSecret"), std::string::npos);
  const std::string id = json::parse(created.body)["id"];

  ASSERT_TRUE(h_->Restart().ok());
  const HttpReply got = h_->Call("GET", "/scim/v2/Users/" + id, kOkta);
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(json::parse(got.body)["userName"], "pat@x.test");

  Result<std::vector<store::ScimResourceRow>> rows = h_->store().scim().List("okta");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].id, id);
  EXPECT_EQ((*rows)[0].json.find("Sup3rSecret"), std::string::npos);
}

TEST_F(ScimHttpTest, ConcurrentCreatesAllLand) {
  constexpr int kThreads = 8, kEach = 25;
  std::atomic<int> created = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string name = "u" + std::to_string(t) + "-" + std::to_string(i) + "@x.test";
        if (h_->Call("POST", "/scim/v2/Users", kOkta, User(name)).status == 201) ++created;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(created.load(), kThreads * kEach);
  const json list = json::parse(h_->Call("GET", "/scim/v2/Users?count=1", kOkta).body);
  EXPECT_EQ(list["totalResults"], kThreads * kEach);
  Result<std::vector<store::ScimResourceRow>> rows = h_->store().scim().List("okta");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->size(), static_cast<std::size_t>(kThreads * kEach));
}

TEST_F(ScimHttpTest, DuplicateUserNameIs409Uniqueness) {
  ASSERT_FALSE(CreateUser(kOkta, "dup@x.test").empty());
  const HttpReply r = h_->Call("POST", "/scim/v2/Users", kOkta, User("DUP@x.test"));
  ExpectScimError(r, 409);
  EXPECT_EQ(json::parse(r.body).value("scimType", ""), "uniqueness");
}

}  // namespace
}  // namespace idsync::scim::testing
