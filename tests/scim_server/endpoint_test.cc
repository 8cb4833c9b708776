// ScimEndpoint's transport duties (tokens, routing, content types, error
// bodies) against a recording fake service; tokens; the store adapter over a
// real SQLite store.
#include "idsync/scim/endpoint.h"

#include <filesystem>
#include <mutex>
#include <set>
#include <stdexcept>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <stdlib.h>

namespace idsync::scim {
namespace {

using nlohmann::json;

// Records what reached it; each source sees only the ids it created.
class FakeService : public ScimService {
 public:
  ScimResponse Handle(const ScimRequest& request) override {
    std::lock_guard lock(mu_);
    requests.push_back(request);
    ScimResponse r;
    if (request.path == "/throw") throw std::runtime_error("fake failure");
    if (request.path == "/Users" && request.method == "POST") {
      const std::string id = request.source + "-" + std::to_string(++next_);
      ids_[request.source].insert(id);
      r.status = 201;
      r.etag = "W/\"1\"";
      r.location = request.base_url + "/Users/" + id;
      r.body = json{{"id", id}}.dump();
      return r;
    }
    if (request.path.rfind("/Users/", 0) == 0 && request.method == "GET") {
      const std::string id = request.path.substr(7);
      if (ids_[request.source].count(id) == 0) {
        r.status = 404;
        r.body = json{{"status", "404"}}.dump();
        return r;
      }
      r.body = json{{"id", id}}.dump();
      return r;
    }
    if (request.path == "/Users" && request.method == "DELETE") {
      r.status = 405;
      return r;
    }
    if (request.path == "/Unavailable") {
      r.status = 503;
      r.body = json{{"status", "503"}}.dump();
      return r;
    }
    r.body = json{{"source", request.source}, {"path", request.path}}.dump();
    return r;
  }
  mapping::SourceSnapshot Snapshot(const std::string&) const override { return {}; }
  mapping::SourceSnapshot Snapshot(const std::string&,
                                   const std::vector<std::string>&) const override {
    return {};
  }
  std::pair<std::int64_t, std::int64_t> Counts(const std::string&) const override { return {0, 0}; }
  Status Absorb(const std::string&, const std::string&, const std::string&,
                const std::optional<StoredResource>&) override {
    return Status::Ok();
  }

  std::vector<ScimRequest> requests;

 private:
  std::mutex mu_;
  int next_ = 0;
  std::map<std::string, std::set<std::string>> ids_;
};

class EndpointTest : public ::testing::Test {
 protected:
  EndpointTest() { Make(); }

  void Make() {
    EndpointOptions o;
    o.scim_path = "/scim/v2";
    // okta has two tokens (rotation); entra's hash is written in upper case.
    o.sources = {{"okta", {HashToken("old-okta"), HashToken("okta-token")}},
                 {"entra", {Upper(HashToken("entra-token"))}}};
    o.public_base_url = public_base_url_;
    o.max_json_depth = 8;
    o.observer = [this](std::string_view method, int status, double seconds) {
      observed_.push_back(std::string(method) + " " + std::to_string(status));
      EXPECT_GE(seconds, 0.0);
    };
    endpoint_ = std::make_unique<ScimEndpoint>(o, fake_);
  }

  static std::string Upper(std::string s) {
    for (std::size_t i = 7; i < s.size(); ++i) s[i] = static_cast<char>(std::toupper(s[i]));
    return s;
  }

  httpd::Response Call(const std::string& method, const std::string& path, const std::string& token,
                       const std::string& body = "",
                       const std::string& content_type = "application/scim+json") {
    httpd::Request r;
    r.method = method;
    r.path = path;
    if (!token.empty()) r.headers.emplace_back("Authorization", "Bearer " + token);
    if (!body.empty()) r.headers.emplace_back("Content-Type", content_type);
    r.headers.emplace_back("Host", "idp.example:8443");
    r.body = body;
    return endpoint_->Handle(r);
  }

  static void ExpectScimError(const httpd::Response& r, int status) {
    EXPECT_EQ(r.status, status);
    EXPECT_EQ(r.content_type, "application/scim+json");
    const json body = json::parse(r.body);
    EXPECT_EQ(body["schemas"], json::array({"urn:ietf:params:scim:api:messages:2.0:Error"}));
    EXPECT_EQ(body["status"], std::to_string(status));
    EXPECT_TRUE(body["detail"].is_string());
  }

  static std::string HeaderOf(const httpd::Response& r, const std::string& name) {
    for (const auto& [k, v] : r.headers) {
      if (k == name) return v;
    }
    return "";
  }

  FakeService fake_;
  std::string public_base_url_;
  std::vector<std::string> observed_;
  std::unique_ptr<ScimEndpoint> endpoint_;
};

TEST_F(EndpointTest, HealthzAnswersWithoutAToken) {
  const httpd::Response r = Call("GET", "/healthz", "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body)["status"], "ok");
  EXPECT_TRUE(fake_.requests.empty());
}

TEST_F(EndpointTest, A503SaysWhenToTryAgain) {
  const httpd::Response r = Call("GET", "/scim/v2/Unavailable", "okta-token");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(HeaderOf(r, "Retry-After"), "5");
  EXPECT_EQ(HeaderOf(Call("GET", "/scim/v2/Users/x", "okta-token"), "Retry-After"), "");
}

TEST_F(EndpointTest, MissingTokenIs401WithBearerChallenge) {
  const httpd::Response r = Call("GET", "/scim/v2/Users", "");
  ExpectScimError(r, 401);
  EXPECT_EQ(HeaderOf(r, "WWW-Authenticate").rfind("Bearer", 0), 0u);
  EXPECT_TRUE(fake_.requests.empty());
}

TEST_F(EndpointTest, WrongTokenIs401) {
  for (const std::string token : {"Okta-token", "okta-token2", "okta-toke", "x"}) {
    const httpd::Response r = Call("GET", "/scim/v2/Users", token);
    ExpectScimError(r, 401);
    EXPECT_NE(HeaderOf(r, "WWW-Authenticate").find("invalid_token"), std::string::npos);
  }
  EXPECT_TRUE(fake_.requests.empty());
}

TEST_F(EndpointTest, OtherAuthorizationSchemesAre401) {
  for (const std::string header : {"Basic okta-token", "okta-token", "Bearer", "Bearer   "}) {
    httpd::Request r;
    r.method = "GET";
    r.path = "/scim/v2/Users";
    r.headers = {{"Authorization", header}};
    ExpectScimError(endpoint_->Handle(r), 401);
  }
  EXPECT_TRUE(fake_.requests.empty());
}

TEST_F(EndpointTest, BearerSchemeIsCaseInsensitive) {
  httpd::Request r;
  r.method = "GET";
  r.path = "/scim/v2/Users";
  r.headers = {{"authorization", "bearer okta-token"}};
  EXPECT_EQ(endpoint_->Handle(r).status, 200);
}

TEST_F(EndpointTest, TheTokenDecidesTheSource) {
  EXPECT_EQ(Call("GET", "/scim/v2/Users", "okta-token").status, 200);
  EXPECT_EQ(Call("GET", "/scim/v2/Users", "old-okta").status, 200);
  EXPECT_EQ(Call("GET", "/scim/v2/Users", "entra-token").status, 200);
  ASSERT_EQ(fake_.requests.size(), 3u);
  EXPECT_EQ(fake_.requests[0].source, "okta");
  EXPECT_EQ(fake_.requests[1].source, "okta");
  EXPECT_EQ(fake_.requests[2].source, "entra");
}

TEST_F(EndpointTest, ASourceCannotReachAnotherSourcesIds) {
  const httpd::Response created =
      Call("POST", "/scim/v2/Users", "okta-token", R"({"userName":"a"})");
  ASSERT_EQ(created.status, 201);
  const std::string id = json::parse(created.body)["id"];
  EXPECT_EQ(Call("GET", "/scim/v2/Users/" + id, "okta-token").status, 200);
  EXPECT_EQ(Call("GET", "/scim/v2/Users/" + id, "entra-token").status, 404);
}

TEST_F(EndpointTest, PathsOutsideTheScimBaseAre404) {
  for (const std::string path : {"/", "/scim", "/scim/v2x/Users", "/Users", "/scim/v3/Users"}) {
    ExpectScimError(Call("GET", path, "okta-token"), 404);
  }
  EXPECT_TRUE(fake_.requests.empty());
}

TEST_F(EndpointTest, PassesTheCanonicalPathBelowTheBase) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/scim/v2/Users", "/Users"},
      {"/scim/v2/users/", "/Users"},
      {"/scim/v2/GROUPS/abc", "/Groups/abc"},
      {"/scim/v2//groups//abc/", "/Groups/abc"},
      {"/scim/v2/serviceproviderconfig", "/ServiceProviderConfig"},
      {"/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
       "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"},
      {"/scim/v2", "/"},
      {"/scim/v2/Unknown", "/Unknown"},
  };
  for (const auto& [path, want] : cases) {
    ASSERT_EQ(Call("GET", path, "okta-token").status, 200) << path;
    EXPECT_EQ(fake_.requests.back().path, want) << path;
  }
}

TEST_F(EndpointTest, PassesMethodQueryHeadersAndBody) {
  httpd::Request r;
  r.method = "PATCH";
  r.path = "/scim/v2/Users/7";
  r.query = {{"attributes", "userName"}, {"aadOptscim062020", ""}};
  r.headers = {{"Authorization", "Bearer okta-token"},
               {"Content-Type", "application/json; charset=utf-8"},
               {"If-Match", "W/\"3\""},
               {"Host", "h:1"}};
  r.body = R"({"Operations":[]})";
  r.tls = true;
  ASSERT_EQ(endpoint_->Handle(r).status, 200);
  const ScimRequest& got = fake_.requests.back();
  EXPECT_EQ(got.method, "PATCH");
  EXPECT_EQ(got.query, r.query);
  EXPECT_EQ(got.content_type, "application/json; charset=utf-8");
  EXPECT_EQ(got.if_match, "W/\"3\"");
  EXPECT_EQ(got.body, r.body);
  EXPECT_EQ(got.base_url, "https://h:1/scim/v2");
}

TEST_F(EndpointTest, BaseUrlComesFromTheHostOrTheConfiguredUrl) {
  Call("GET", "/scim/v2/Users", "okta-token");
  EXPECT_EQ(fake_.requests.back().base_url, "http://idp.example:8443/scim/v2");

  httpd::Request r;
  r.method = "GET";
  r.path = "/scim/v2/Users";
  r.headers = {{"Authorization", "Bearer okta-token"}, {"Host", "evil\"/><x"}};
  endpoint_->Handle(r);
  EXPECT_EQ(fake_.requests.back().base_url, "http://localhost/scim/v2");

  public_base_url_ = "https://scim.corp.example/";
  Make();
  Call("GET", "/scim/v2/Users", "okta-token");
  EXPECT_EQ(fake_.requests.back().base_url, "https://scim.corp.example/scim/v2");
}

TEST_F(EndpointTest, AcceptsScimAndPlainJsonBodies) {
  for (const std::string type : {"application/scim+json", "application/json",
                                 "application/json; charset=utf-8", "Application/SCIM+JSON"}) {
    EXPECT_EQ(Call("POST", "/scim/v2/Groups", "okta-token", "{}", type).status, 200) << type;
  }
}

TEST_F(EndpointTest, OtherBodyContentTypesAre415) {
  for (const std::string type : {"text/plain", "application/x-www-form-urlencoded",
                                 "application/jsonx", "application/scim+json2", ""}) {
    ExpectScimError(Call("POST", "/scim/v2/Users", "okta-token", "{}", type), 415);
  }
  EXPECT_TRUE(fake_.requests.empty());
}

TEST_F(EndpointTest, ABodylessRequestNeedsNoContentType) {
  EXPECT_EQ(Call("DELETE", "/scim/v2/Groups/1", "okta-token").status, 200);
}

TEST_F(EndpointTest, DeepNestingIsRefusedBeforeTheService) {
  const std::string deep = std::string(9, '[') + std::string(9, ']');
  const httpd::Response r = Call("POST", "/scim/v2/Users", "okta-token", deep);
  ExpectScimError(r, 400);
  EXPECT_EQ(json::parse(r.body)["scimType"], "invalidSyntax");
  EXPECT_TRUE(fake_.requests.empty());

  // Eight levels pass; brackets inside strings are not nesting.
  const std::string ok = std::string(8, '[') + "\"[[[[{{{{\\\"[[\"" + std::string(8, ']');
  EXPECT_EQ(Call("POST", "/scim/v2/Groups", "okta-token", ok).status, 200);
}

// 100,000 levels: refused by the scan, which stops at the limit and never
// recurses, whatever the body's depth.
TEST_F(EndpointTest, HundredThousandLevelsAreRefusedBeforeTheService) {
  for (const std::string& body :
       {std::string(100000, '[') + std::string(100000, ']'), std::string(100000, '{'),
        "{\"Operations\":" + std::string(100000, '[')}) {
    const httpd::Response r = Call("PATCH", "/scim/v2/Groups/1", "okta-token", body);
    ExpectScimError(r, 400);
    EXPECT_EQ(json::parse(r.body)["scimType"], "invalidSyntax");
  }
  EXPECT_TRUE(fake_.requests.empty());
}

TEST_F(EndpointTest, ServiceHeadersAndTypeAreSent) {
  const httpd::Response r = Call("POST", "/scim/v2/Users", "okta-token", R"({"userName":"a"})");
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.content_type, "application/scim+json");
  EXPECT_EQ(HeaderOf(r, "ETag"), "W/\"1\"");
  EXPECT_EQ(HeaderOf(r, "Location"), "http://idp.example:8443/scim/v2/Users/okta-1");
}

TEST_F(EndpointTest, MethodNotAllowedNamesTheAllowedMethods) {
  for (const std::string path : {"/scim/v2/Users", "/scim/v2//users/"}) {
    const httpd::Response r = Call("DELETE", path, "okta-token");
    EXPECT_EQ(r.status, 405) << path;
    EXPECT_EQ(HeaderOf(r, "Allow"), "GET, POST") << path;
  }
}

TEST_F(EndpointTest, AServiceExceptionIs500) {
  ExpectScimError(Call("GET", "/scim/v2/throw", "okta-token"), 500);
}

TEST_F(EndpointTest, TheObserverSeesEveryAnswer) {
  Call("GET", "/scim/v2/Users", "okta-token");
  Call("GET", "/scim/v2/Users", "");
  Call("GET", "/healthz", "");
  EXPECT_EQ(observed_, (std::vector<std::string>{"GET 200", "GET 401", "GET 200"}));
}

TEST(ScimErrorResponse, IsAScimErrorBody) {
  const httpd::Response r = ScimErrorResponse(413, "request body larger than 10 bytes");
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.content_type, "application/scim+json");
  const json body = json::parse(r.body);
  EXPECT_EQ(body["status"], "413");
  EXPECT_EQ(body["detail"], "request body larger than 10 bytes");
  EXPECT_EQ(body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error");
}

TEST(Tokens, HashIsSha256InLowerHex) {
  EXPECT_EQ(HashToken("abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Tokens, NewPairRoundTrips) {
  const TokenPair pair = NewTokenPair();
  EXPECT_EQ(HashToken(pair.token), pair.hash);
  EXPECT_EQ(pair.token.size(), 43u);  // 32 bytes in base64url, no padding
  EXPECT_EQ(pair.token.find_first_not_of(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos);
  EXPECT_NE(NewTokenPair().token, pair.token);
}

TEST(Tokens, ANewTokenIsAccepted) {
  const TokenPair pair = NewTokenPair();
  FakeService fake;
  EndpointOptions o;
  o.sources = {{"okta", {pair.hash}}};
  ScimEndpoint endpoint(o, fake);
  httpd::Request r;
  r.method = "GET";
  r.path = "/scim/v2/Users";
  r.headers = {{"Authorization", "Bearer " + pair.token}};
  EXPECT_EQ(endpoint.Handle(r).status, 200);
  r.headers = {{"Authorization", "Bearer " + pair.hash}};  // the hash is not a token
  EXPECT_EQ(endpoint.Handle(r).status, 401);
}

TEST(Tokens, MalformedConfiguredHashesMatchNothing) {
  FakeService fake;
  EndpointOptions o;
  o.sources = {{"okta", {"", "sha256:", "md5:abc", "sha256:" + std::string(64, 'z')}}};
  ScimEndpoint endpoint(o, fake);
  httpd::Request r;
  r.method = "GET";
  r.path = "/scim/v2/Users";
  r.headers = {{"Authorization", "Bearer x"}};
  EXPECT_EQ(endpoint.Handle(r).status, 401);
}

class PersistenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "idsync-scim-store-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    Result<std::unique_ptr<store::Store>> st = store::Store::Open("sqlite://" + dir_ + "/s.db");
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    store_ = std::move(st).value();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string dir_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(PersistenceTest, PutLoadDeleteRoundTrip) {
  StoreResourcePersistence p(*store_, [] { return std::int64_t{1234}; });
  ASSERT_TRUE(p.Put({"okta", "User", "u1", R"({"id":"u1"})", 1}).ok());
  ASSERT_TRUE(p.Put({"okta", "Group", "g1", R"({"id":"g1"})", 1}).ok());
  ASSERT_TRUE(p.Put({"okta", "Group", "g1", R"({"id":"g1"})", 2}).ok());
  ASSERT_TRUE(p.Put({"entra", "User", "u1", R"({"id":"e"})", 1}).ok());
  ASSERT_TRUE(p.Put({"okta", "User", "u1", R"({"id":"u1","v":2})", 2}).ok());  // replaces
  // A version written over one the store no longer holds (another replica
  // wrote first) is refused, and Get reads what is there.
  EXPECT_EQ(p.Put({"okta", "User", "u1", R"({"id":"u1","v":"late"})", 2}).code(),
            StatusCode::kAborted);
  EXPECT_EQ(p.Put({"okta", "User", "u9", R"({"id":"u9"})", 3}).code(), StatusCode::kAborted);
  Result<std::optional<StoredResource>> held = p.Get("okta", "User", "u1");
  ASSERT_TRUE(held.ok() && held->has_value());
  EXPECT_EQ((*held)->json, R"({"id":"u1","v":2})");
  EXPECT_FALSE(p.Get("okta", "User", "u9").value().has_value());

  Result<std::vector<StoredResource>> okta = p.LoadAll("okta");
  ASSERT_TRUE(okta.ok());
  ASSERT_EQ(okta->size(), 2u);
  std::map<std::string, StoredResource> by_id;
  for (const StoredResource& r : *okta) by_id[r.type + "/" + r.id] = r;
  EXPECT_EQ(by_id["User/u1"].json, R"({"id":"u1","v":2})");
  EXPECT_EQ(by_id["User/u1"].version, 2);
  EXPECT_EQ(by_id["User/u1"].source, "okta");
  EXPECT_EQ(by_id["Group/g1"].version, 2);

  Result<std::vector<store::ScimResourceRow>> rows = store_->scim().List("okta");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  for (const auto& row : *rows) EXPECT_EQ(row.updated_ms, 1234);

  ASSERT_TRUE(p.Delete("okta", "User", "u1").ok());
  ASSERT_TRUE(p.Delete("okta", "User", "absent").ok());
  Result<std::vector<StoredResource>> after = p.LoadAll("okta");
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].id, "g1");
  Result<std::vector<StoredResource>> entra = p.LoadAll("entra");
  ASSERT_TRUE(entra.ok());
  EXPECT_EQ(entra->size(), 1u);
}

}  // namespace
}  // namespace idsync::scim
