// ScimService without a transport: every request goes through Handle() as the

#include "idsync/testing/status_matchers.h"
// HTTP layer would send it, against an in-memory persistence that holds real
// state (and fails on demand), with a fake clock and a recording listener.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "idsync/scim/service.h"

namespace idsync::scim {
namespace {

using nlohmann::json;

constexpr std::string_view kBase = "https://idp.example:8443/scim/v2";
constexpr std::int64_t kStartMs = 1764298800123;  // 2025-11-28T03:00:00.123Z

// Holds what was stored, like the store would; fails on demand.
class MemoryPersistence : public ResourcePersistence {
  // A staged write's commit: `outcome`; when it failed, the write undone.
  class Commit : public PendingPersist {
   public:
    Commit(MemoryPersistence& p, StoredResource written, std::optional<StoredResource> before,
           Status outcome)
        : p_(p), written_(std::move(written)), before_(std::move(before)), outcome_(outcome) {}
    Status Wait() override {
      if (outcome_.ok()) return outcome_;
      std::lock_guard lock(p_.mu_);
      const auto key = std::make_tuple(written_.source, written_.type, written_.id);
      if (before_) {
        p_.rows[key] = *before_;
      } else {
        p_.rows.erase(key);
      }
      return outcome_;
    }

   private:
    MemoryPersistence& p_;
    StoredResource written_;
    std::optional<StoredResource> before_;
    Status outcome_;
  };

 public:
  Status Put(const StoredResource& r) override {
    std::lock_guard lock(mu_);
    ++puts;
    if (fail) return *fail;
    rows[{r.source, r.type, r.id}] = r;
    return Status::Ok();
  }
  Status Delete(const std::string& source, const std::string& type,
                const std::string& id) override {
    std::lock_guard lock(mu_);
    ++deletes;
    if (fail) return *fail;
    rows.erase({source, type, id});
    return Status::Ok();
  }
  Result<std::vector<StoredResource>> LoadAll(const std::string& source) override {
    std::lock_guard lock(mu_);
    if (fail) return *fail;
    if (fail_loads) return *fail_loads;
    std::vector<StoredResource> out;
    for (const auto& [key, r] : rows) {
      if (r.source == source) out.push_back(r);
    }
    std::reverse(out.begin(), out.end());  // "in any order": not the creation order
    return out;
  }

  std::optional<StoredResource> Row(const std::string& source, const std::string& type,
                                    const std::string& id) {
    std::lock_guard lock(mu_);
    auto it = rows.find({source, type, id});
    if (it == rows.end()) return std::nullopt;
    return it->second;
  }
  size_t Size() {
    std::lock_guard lock(mu_);
    return rows.size();
  }

  // Stage takes the write, then its commit fails with this and is undone.
  Result<std::unique_ptr<PendingPersist>> Stage(const StoredResource& r) override {
    const std::optional<StoredResource> before = Row(r.source, r.type, r.id);
    RETURN_IF_ERROR(Put(r));
    return std::unique_ptr<PendingPersist>(
        std::make_unique<Commit>(*this, r, before, fail_commit.value_or(Status::Ok())));
  }

  Result<std::unique_ptr<PendingPersist>> StageDelete(const std::string& source,
                                                      const std::string& type,
                                                      const std::string& id) override {
    const std::optional<StoredResource> before = Row(source, type, id);
    RETURN_IF_ERROR(Delete(source, type, id));
    StoredResource key{source, type, id, "", 0};
    return std::unique_ptr<PendingPersist>(
        std::make_unique<Commit>(*this, key, before, fail_commit.value_or(Status::Ok())));
  }

  std::optional<Status> fail;
  std::optional<Status> fail_commit;  // the commit of a staged write fails
  std::optional<Status> fail_loads;   // reads fail, writes do not
  std::map<std::tuple<std::string, std::string, std::string>, StoredResource> rows;
  int puts = 0;
  int deletes = 0;

 private:
  std::mutex mu_;
};

struct Answer {
  int status = 0;
  json body;
  std::string raw;
  std::string etag;
  std::string location;
  std::string allow;
};

using Query = std::vector<std::pair<std::string, std::string>>;
using Counts = std::pair<std::int64_t, std::int64_t>;

class ScimServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(); }

  void Start() {
    service_.reset();
    ServiceOptions options;
    options.sources = {"okta", "entra"};
    options.max_results = 50;
    options.max_json_depth = 16;
    options.now = [this] { return now_ms_.load(); };
    options.strict_patch_sources = strict_patch_sources_;
    options.on_patch_refused = [this](const PatchRefusal& r) {
      std::lock_guard lock(changes_mu_);
      refusals_.push_back(r);
    };
    Result<std::unique_ptr<ScimService>> s =
        ScimService::Create(options, persistence_, [this](const ScimChange& c) {
          std::lock_guard lock(changes_mu_);
          changes_.push_back(c);
        });
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    service_ = std::move(s).value();
  }

  Answer Call(std::string method, std::string path, std::string body = "", Query query = {},
              std::string if_match = "", std::string source = "okta") {
    ScimRequest req;
    req.source = std::move(source);
    req.method = std::move(method);
    req.path = std::move(path);
    req.query = std::move(query);
    req.body = std::move(body);
    req.if_match = std::move(if_match);
    req.content_type = "application/scim+json";
    req.base_url = std::string(kBase);
    ScimResponse r = service_->Handle(req);
    Answer a;
    a.status = r.status;
    a.raw = r.body;
    a.etag = r.etag;
    a.location = r.location;
    a.allow = r.allow;
    if (!r.body.empty()) a.body = json::parse(r.body);
    return a;
  }

  // POSTs a resource and returns its id (fails the test unless 201).
  std::string Post(std::string_view endpoint, const json& body, std::string source = "okta") {
    if (tick_per_post_) now_ms_ += 1;
    Answer a = Call("POST", std::string(endpoint), body.dump(), {}, "", std::move(source));
    EXPECT_EQ(a.status, 201) << a.raw;
    return a.status == 201 ? a.body["id"].get<std::string>() : "";
  }

  std::string PostUser(std::string_view user_name, std::string_view email,
                       std::string source = "okta") {
    json u = {{"schemas", {"urn:ietf:params:scim:schemas:core:2.0:User"}},
              {"userName", user_name},
              {"active", true}};
    if (!email.empty()) u["emails"] = {{{"value", email}, {"primary", true}, {"type", "work"}}};
    return Post("/Users", u, std::move(source));
  }

  std::string PostGroup(std::string_view name, const std::vector<std::string>& members,
                        std::string source = "okta") {
    json g = {{"schemas", {"urn:ietf:params:scim:schemas:core:2.0:Group"}},
              {"displayName", name},
              {"members", json::array()}};
    for (const std::string& m : members) g["members"].push_back({{"value", m}});
    return Post("/Groups", g, std::move(source));
  }

  Answer PatchOps(const std::string& path, const json& ops, Query query = {},
                  std::string if_match = "") {
    json body = {{"schemas", {"urn:ietf:params:scim:api:messages:2.0:PatchOp"}},
                 {"Operations", ops}};
    return Call("PATCH", path, body.dump(), std::move(query), std::move(if_match));
  }

  std::vector<ScimChange> TakeChanges() {
    std::lock_guard lock(changes_mu_);
    return std::exchange(changes_, {});
  }

  static std::vector<std::string> Ids(const json& list) {
    std::vector<std::string> out;
    for (const json& r : list["Resources"]) out.push_back(r["id"].get<std::string>());
    return out;
  }

  static void ExpectScimError(const Answer& a, int status, std::string_view scim_type) {
    EXPECT_EQ(a.status, status) << a.raw;
    ASSERT_TRUE(a.body.is_object()) << a.raw;
    EXPECT_EQ(a.body["schemas"], json::array({"urn:ietf:params:scim:api:messages:2.0:Error"}));
    EXPECT_EQ(a.body["status"], std::to_string(status));
    if (scim_type.empty()) {
      EXPECT_FALSE(a.body.contains("scimType")) << a.raw;
    } else {
      EXPECT_EQ(a.body.value("scimType", ""), scim_type) << a.raw;
    }
    EXPECT_TRUE(a.body["detail"].is_string());
  }

  MemoryPersistence persistence_;
  std::atomic<std::int64_t> now_ms_{kStartMs};
  // When set, every Post() happens one millisecond after the previous one,
  // so that the list order (created, then id) is the creation order.
  bool tick_per_post_ = false;
  std::unique_ptr<ScimService> service_;
  std::mutex changes_mu_;
  std::vector<ScimChange> changes_;
  std::vector<PatchRefusal> refusals_;
  std::vector<std::string> strict_patch_sources_;
};

// ---------------------------------------------------------------------------
// Users: create, read, meta

TEST_F(ScimServiceTest, PostUserAnswers201WithMetaLocationAndEtag) {
  const json okta_post = json::parse(R"({
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": "isaac.brock@example.com",
    "name": {"givenName": "Isaac", "familyName": "Brock"},
    "emails": [{"primary": true, "value": "isaac.brock@example.com", "type": "work"}],
    "displayName": "Isaac Brock", "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7",
    "password": "1mz050nq", "groups": [], "active": true, "x-custom": {"kept": 1}})");
  Answer a = Call("POST", "/Users", okta_post.dump());
  ASSERT_EQ(a.status, 201) << a.raw;
  const std::string id = a.body["id"];
  EXPECT_EQ(id.size(), 36u);
  EXPECT_EQ(a.location, std::string(kBase) + "/Users/" + id);
  EXPECT_EQ(a.etag, "W/\"1\"");
  const json& meta = a.body["meta"];
  EXPECT_EQ(meta["resourceType"], "User");
  EXPECT_EQ(meta["created"], "2025-11-28T03:00:00.123Z");
  EXPECT_EQ(meta["lastModified"], "2025-11-28T03:00:00.123Z");
  EXPECT_EQ(meta["location"], a.location);
  EXPECT_EQ(meta["version"], "W/\"1\"");
  EXPECT_EQ(a.body["schemas"], json::array({"urn:ietf:params:scim:schemas:core:2.0:User"}));
  EXPECT_EQ(a.body["x-custom"], json::parse(R"({"kept": 1})"));
  EXPECT_FALSE(a.body.contains("password"));
  EXPECT_FALSE(a.body.contains("groups"));
  EXPECT_EQ(a.raw.find("1mz050nq"), std::string::npos);

  std::optional<StoredResource> row = persistence_.Row("okta", "User", id);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->version, 1);
  EXPECT_EQ(row->json.find("1mz050nq"), std::string::npos);
  EXPECT_EQ(json::parse(row->json), a.body);

  Answer got = Call("GET", "/Users/" + id);
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.body, a.body);
  EXPECT_EQ(got.etag, "W/\"1\"");
}

TEST_F(ScimServiceTest, ClientSentIdMetaAndGroupsAreIgnored) {
  Answer a = Call("POST", "/Users", R"({"id": "mine", "userName": "u1",
      "meta": {"created": "2019-09-18T18:15:26.5788954+00:00", "resourceType": "Group"},
      "groups": [{"value": "g"}]})");
  ASSERT_EQ(a.status, 201) << a.raw;
  EXPECT_NE(a.body["id"], "mine");
  EXPECT_EQ(a.body["meta"]["resourceType"], "User");
  EXPECT_EQ(a.body["meta"]["created"], "2025-11-28T03:00:00.123Z");
  EXPECT_FALSE(a.body.contains("groups"));
}

TEST_F(ScimServiceTest, EnterpriseExtensionIsKeptAndListedInSchemas) {
  Answer a = Call("POST", "/Users", R"({"userName": "e1",
      "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
        {"Department": "bob", "Manager": {"Value": "SuzzyQ"}, "employeeNumber": 701984}})");
  ASSERT_EQ(a.status, 201) << a.raw;
  const json& ext = a.body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"];
  EXPECT_EQ(ext["department"], "bob");
  EXPECT_EQ(ext["manager"], json::parse(R"({"value": "SuzzyQ"})"));
  EXPECT_EQ(ext["employeeNumber"], "701984");
  EXPECT_EQ(a.body["schemas"],
            json::array({"urn:ietf:params:scim:schemas:core:2.0:User",
                         "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"}));
}

TEST_F(ScimServiceTest, UserNameIsUniqueCaseInsensitivelyWithinASource) {
  PostUser("Alice@Example.com", "");
  const int puts = persistence_.puts;
  Answer dup = Call("POST", "/Users", R"({"userName": "alice@EXAMPLE.com"})");
  ExpectScimError(dup, 409, "uniqueness");
  EXPECT_EQ(persistence_.puts, puts);
  EXPECT_EQ(Call("GET", "/Users").body["totalResults"], 1);
  // Another source has its own users.
  EXPECT_FALSE(PostUser("alice@example.com", "", "entra").empty());
}

TEST_F(ScimServiceTest, RenamingOntoATakenUserNameIs409AndChangesNothing) {
  PostUser("a", "");
  const std::string b = PostUser("b", "");
  ExpectScimError(
      PatchOps("/Users/" + b, {{{"op", "replace"}, {"path", "userName"}, {"value", "A"}}}), 409,
      "uniqueness");
  ExpectScimError(Call("PUT", "/Users/" + b, R"({"userName": "A"})"), 409, "uniqueness");
  EXPECT_EQ(Call("GET", "/Users/" + b).body["userName"], "b");
  // Changing the case of one's own userName is fine.
  EXPECT_EQ(
      PatchOps("/Users/" + b, {{{"op", "replace"}, {"path", "userName"}, {"value", "B"}}}).status,
      204);
}

TEST_F(ScimServiceTest, AnIdOfAnotherSourceIsNotFound) {
  const std::string id = PostUser("u", "u@x.com", "entra");
  ExpectScimError(Call("GET", "/Users/" + id), 404, "");
  ExpectScimError(Call("DELETE", "/Users/" + id), 404, "");
  ExpectScimError(Call("GET", "/Groups/" + id, "", {}, "", "entra"), 404, "");
  EXPECT_EQ(Call("GET", "/Users/" + id, "", {}, "", "entra").status, 200);
  EXPECT_EQ(Call("GET", "/Users", "", {{"filter", "id eq \"" + id + "\""}}).body["totalResults"],
            0);
}

// ---------------------------------------------------------------------------
// Lists: filters, paging, projection

TEST_F(ScimServiceTest, OktaLookupByUserNameFindsOneOrAnswersAnEmptyList) {
  const std::string id = PostUser("isaac.brock@example.com", "isaac.brock@example.com");
  PostUser("other@example.com", "other@example.com");
  const Query q = {
      {"filter", "userName eq \"Isaac.Brock@example.com\""}, {"startIndex", "1"}, {"count", "100"}};
  Answer a = Call("GET", "/Users", "", q);
  ASSERT_EQ(a.status, 200) << a.raw;
  EXPECT_EQ(a.body["schemas"], json::array({"urn:ietf:params:scim:api:messages:2.0:ListResponse"}));
  EXPECT_EQ(a.body["totalResults"], 1);
  EXPECT_EQ(a.body["itemsPerPage"], 1);
  EXPECT_EQ(a.body["startIndex"], 1);
  EXPECT_EQ(Ids(a.body), std::vector<std::string>{id});

  Answer none = Call(
      "GET", "/Users", "",
      {{"filter", "userName eq \"nobody@example.com\""}, {"startIndex", "1"}, {"count", "100"}});
  EXPECT_EQ(none.status, 200);
  EXPECT_EQ(none.body["totalResults"], 0);
  EXPECT_EQ(none.body["Resources"], json::array());
}

TEST_F(ScimServiceTest, ListPagesInCreationOrderWithExactTotals) {
  std::vector<std::string> expected;
  for (int i = 0; i < 7; ++i) {
    now_ms_ += 1;
    expected.push_back(PostUser("user" + std::to_string(i), ""));
  }
  EXPECT_EQ(Ids(Call("GET", "/Users").body), expected);
  Answer page = Call("GET", "/Users", "", {{"startIndex", "3"}, {"count", "2"}});
  EXPECT_EQ(page.body["totalResults"], 7);
  EXPECT_EQ(page.body["itemsPerPage"], 2);
  EXPECT_EQ(page.body["startIndex"], 3);
  EXPECT_EQ(Ids(page.body), (std::vector<std::string>{expected[2], expected[3]}));
  Answer tail = Call("GET", "/Users", "", {{"startIndex", "6"}, {"count", "10"}});
  EXPECT_EQ(Ids(tail.body), (std::vector<std::string>{expected[5], expected[6]}));
  Answer zero = Call("GET", "/Users", "", {{"count", "0"}});
  EXPECT_EQ(zero.body["totalResults"], 7);
  EXPECT_EQ(zero.body["Resources"], json::array());
  Answer low = Call("GET", "/Users", "", {{"startIndex", "-4"}, {"count", "1"}});
  EXPECT_EQ(low.body["startIndex"], 1);
  EXPECT_EQ(Ids(low.body), std::vector<std::string>{expected[0]});
  ExpectScimError(Call("GET", "/Users", "", {{"count", "ten"}}), 400, "invalidValue");
}

TEST_F(ScimServiceTest, UsersCreatedInTheSameMillisecondKeepOneOrder) {
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(PostUser("same" + std::to_string(i), ""));
  const std::vector<std::string> order = Ids(Call("GET", "/Users").body);
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));  // ties broken by id
  std::vector<std::string> sorted_ids = ids;
  std::sort(sorted_ids.begin(), sorted_ids.end());
  EXPECT_EQ(order, sorted_ids);
  std::vector<std::string> paged;
  for (int start = 1; start <= 6; start += 4) {
    for (const std::string& id :
         Ids(Call("GET", "/Users", "", {{"startIndex", std::to_string(start)}, {"count", "4"}})
                 .body)) {
      paged.push_back(id);
    }
  }
  EXPECT_EQ(paged, order);
}

TEST_F(ScimServiceTest, CountIsCappedAtMaxResults) {
  for (int i = 0; i < 55; ++i) PostUser("u" + std::to_string(i), "");
  Answer all = Call("GET", "/Users", "", {{"count", "1000"}});
  EXPECT_EQ(all.body["totalResults"], 55);
  EXPECT_EQ(all.body["itemsPerPage"], 50);
  Answer def = Call("GET", "/Users");
  EXPECT_EQ(def.body["itemsPerPage"], 50);
  Answer filtered = Call("GET", "/Users", "", {{"filter", "userName sw \"u\""}, {"count", "999"}});
  EXPECT_EQ(filtered.body["totalResults"], 55);
  EXPECT_EQ(filtered.body["itemsPerPage"], 50);
}

TEST_F(ScimServiceTest, FiltersCoverTheGrammarAndIdentityProviderShapes) {
  tick_per_post_ = true;
  const std::string a = Post("/Users", json::parse(R"({"userName": "OMalley", "externalId": "ext-1",
      "name": {"familyName": "OMalley"}, "active": true,
      "emails": [{"type": "work", "value": "anna@example.com"}]})"));
  const std::string b = Post("/Users", json::parse(R"({"userName": "emp1", "externalId": "ext-2",
      "name": {"familyName": "Employee"}, "active": false,
      "emails": [{"type": "home", "value": "emp1@example.org"}]})"));
  const std::string c = Post("/Users", json::parse(R"({"userName": "emp2",
      "name": {"familyName": "Employee"},
      "emails": [{"type": "work", "value": "emp2@example.net"}]})"));
  struct Case {
    std::string filter;
    std::vector<std::string> ids;
  };
  const std::vector<Case> cases = {
      {"userName eq emp1", {b}},         // unquoted value
      {"USERNAME EQ \"EMP1\"", {b}},     // case-insensitive everything
      {"externalId eq \"ext-2\"", {b}},  // indexed, case-exact
      {"externalId eq \"EXT-2\"", {}},   //
      {"id eq \"" + c + "\"", {c}},      //
      {"emails[type eq \"work\"].value eq \"emp2@example.net\"", {c}},  // Entra
      {"emails[type eq \"work\"]", {a, c}},  // a value path alone is a filter
      {"name.FamilyName eq Employee and (emails.Value co example.com or emails.Value co "
       "example.org)",
       {b}},
      {"userName sw O", {a}},
      {"active eq false", {b}},
      {"not (active eq false)", {a, c}},
      {"externalId pr", {a, b}},
      {"meta.Created gt 2015-10-10T14:38:21.8617979-07:00", {a, b, c}},
      {"meta.created lt \"2015-01-01T00:00:00Z\"", {}},
      {"userName eq \"5f0c7d6e-5d8e-4d9a-9bb0-1e0b0c7f7a11\"", {}},  // Entra's test connection
      {"  ", {a, b, c}},                                             // blank: no filter
  };
  for (const Case& tc : cases) {
    Answer r = Call("GET", "/Users", "", {{"filter", tc.filter}});
    ASSERT_EQ(r.status, 200) << tc.filter << "\n" << r.raw;
    EXPECT_EQ(Ids(r.body), tc.ids) << tc.filter;
    EXPECT_EQ(r.body["totalResults"], tc.ids.size()) << tc.filter;
  }
}

TEST_F(ScimServiceTest, BadFiltersAre400InvalidFilter) {
  PostUser("u", "");
  for (std::string_view f :
       {"userName eq", "userName xx \"a\"", "(userName eq \"a\"", "userName eq \"a\" and",
        "emails[type eq \"work\"", "userName eq \"unterminated"}) {
    ExpectScimError(Call("GET", "/Users", "", {{"filter", std::string(f)}}), 400, "invalidFilter");
  }
}

TEST_F(ScimServiceTest, GroupsAreIndexedByDisplayNameAndExternalId) {
  tick_per_post_ = true;
  const std::string g1 =
      Post("/Groups", json::parse(R"({"displayName": "Sales", "externalId": "x1"})"));
  const std::string g2 =
      Post("/Groups", json::parse(R"({"displayName": "sales", "externalId": "x2"})"));
  PostGroup("Support", {});
  EXPECT_EQ(Ids(Call("GET", "/Groups", "", {{"filter", "displayName eq \"SALES\""}}).body),
            (std::vector<std::string>{g1, g2}));
  EXPECT_EQ(Ids(Call("GET", "/Groups", "", {{"filter", "externalId eq \"x2\""}}).body),
            std::vector<std::string>{g2});
  EXPECT_EQ(Call("GET", "/Groups", "", {{"filter", "userName eq \"Sales\""}}).body["totalResults"],
            0);
}

TEST_F(ScimServiceTest, AttributesProjectAndAlwaysKeepIdAndSchemas) {
  const std::string id = Post("/Users", json::parse(R"({"userName": "emp1", "displayName": "E",
      "name": {"givenName": "Darl", "familyName": "Employee"},
      "emails": [{"type": "work", "value": "w@x.com", "primary": true},
                 {"type": "home", "value": "h@x.com"}],
      "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "D", "costCenter": "C"}})"));
  Answer a = Call("GET", "/Users", "", {{"attributes", "userName"}});
  EXPECT_EQ(a.body["Resources"][0],
            json({{"id", id},
                  {"schemas",
                   {"urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"}},
                  {"userName", "emp1"}}));
  Answer sub = Call("GET", "/Users/" + id, "", {{"attributes", "name.givenName,emails.value"}});
  EXPECT_EQ(sub.body["name"], json({{"givenName", "Darl"}}));
  EXPECT_EQ(sub.body["emails"], json::parse(R"([{"value": "w@x.com"}, {"value": "h@x.com"}])"));
  EXPECT_FALSE(sub.body.contains("userName"));
  Answer ext = Call(
      "GET", "/Users/" + id, "",
      {{"attributes", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"}});
  EXPECT_EQ(ext.body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            json({{"department", "D"}}));
  // Microsoft's suite asks for emails through a value filter: the whole attribute comes back.
  Answer mf = Call("GET", "/Users", "", {{"attributes", "emails[type eq \"work\"]"}});
  EXPECT_EQ(mf.body["Resources"][0]["emails"].size(), 2u);
  Answer ex = Call("GET", "/Users/" + id, "",
                   {{"excludedAttributes", "emails,name.familyName,id,schemas,meta"}});
  EXPECT_FALSE(ex.body.contains("emails"));
  EXPECT_FALSE(ex.body.contains("meta"));
  EXPECT_EQ(ex.body["name"], json({{"givenName", "Darl"}}));
  EXPECT_EQ(ex.body["id"], id);
  EXPECT_TRUE(ex.body.contains("schemas"));
  EXPECT_EQ(ex.body["userName"], "emp1");
}

TEST_F(ScimServiceTest, GroupsListWithoutMembersWhenExcluded) {
  const std::string u = PostUser("u", "u@x.com");
  const std::string g = PostGroup("G", {u});
  Answer list = Call("GET", "/Groups", "", {{"excludedAttributes", "members"}});
  ASSERT_EQ(list.body["Resources"].size(), 1u);
  EXPECT_FALSE(list.body["Resources"][0].contains("members"));
  EXPECT_EQ(list.body["Resources"][0]["displayName"], "G");
  Answer one = Call("GET", "/Groups/" + g, "", {{"excludedAttributes", "members"}});
  EXPECT_FALSE(one.body.contains("members"));
  EXPECT_EQ(Call("GET", "/Groups/" + g).body["members"][0]["value"], u);
}

TEST_F(ScimServiceTest, UnknownQueryParametersAreIgnored) {
  PostUser("u", "");
  Answer a = Call("GET", "/Users", "", {{"aadOptscim062020", ""}, {"sortBy", "userName"}});
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body["totalResults"], 1);
}

TEST_F(ScimServiceTest, PostSearchTakesASearchRequest) {
  const std::string id = PostUser("alice", "");
  PostUser("bob", "");
  Answer a = Call("POST", "/Users/.search", R"({
      "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
      "filter": "userName eq \"alice\"", "attributes": ["userName"], "startIndex": 1, "count": 10})");
  ASSERT_EQ(a.status, 200) << a.raw;
  EXPECT_EQ(Ids(a.body), std::vector<std::string>{id});
  EXPECT_FALSE(a.body["Resources"][0].contains("meta"));
  ExpectScimError(Call("POST", "/Users/.search", R"({"filter": "userName eq"})"), 400,
                  "invalidFilter");
}

// ---------------------------------------------------------------------------
// PUT, PATCH, DELETE, versions

TEST_F(ScimServiceTest, PutReplacesKeepsIdAndCreatedAndBumpsTheVersion) {
  const std::string id = Post("/Users", json::parse(R"({"userName": "u", "title": "T",
      "emails": [{"value": "u@x.com", "primary": true}]})"));
  now_ms_ += 60000;
  Answer a = Call("PUT", "/Users/" + id, R"({"id": "other", "userName": "u2", "password": "s3cret",
      "meta": {"created": "2001-01-01T00:00:00Z"}, "active": false})");
  ASSERT_EQ(a.status, 200) << a.raw;
  EXPECT_EQ(a.body["id"], id);
  EXPECT_EQ(a.body["userName"], "u2");
  EXPECT_FALSE(a.body.contains("title"));   // replaced whole
  EXPECT_FALSE(a.body.contains("emails"));  //
  EXPECT_FALSE(a.body.contains("password"));
  EXPECT_EQ(a.raw.find("s3cret"), std::string::npos);
  EXPECT_EQ(persistence_.Row("okta", "User", id)->json.find("s3cret"), std::string::npos);
  EXPECT_EQ(a.body["meta"]["created"], "2025-11-28T03:00:00.123Z");
  EXPECT_EQ(a.body["meta"]["lastModified"], "2025-11-28T03:01:00.123Z");
  EXPECT_EQ(a.body["meta"]["version"], "W/\"2\"");
  EXPECT_EQ(a.etag, "W/\"2\"");
  EXPECT_EQ(persistence_.Row("okta", "User", id)->version, 2);
  // The same body again changes nothing.
  const int puts = persistence_.puts;
  TakeChanges();
  Answer same = Call("PUT", "/Users/" + id, R"({"userName": "u2", "active": "False"})");
  EXPECT_EQ(same.status, 200);
  EXPECT_EQ(same.etag, "W/\"2\"");
  EXPECT_EQ(persistence_.puts, puts);
  EXPECT_TRUE(TakeChanges().empty());
  ExpectScimError(Call("PUT", "/Users/nope", R"({"userName": "x"})"), 404, "");
}

TEST_F(ScimServiceTest, PatchAnswers204OrTheResourceWhenAttributesAreAsked) {
  const std::string id = PostUser("u", "u@x.com");
  Answer a =
      PatchOps("/Users/" + id, {{{"op", "Replace"}, {"path", "active"}, {"value", "False"}}});
  EXPECT_EQ(a.status, 204);
  EXPECT_TRUE(a.raw.empty());
  EXPECT_EQ(a.etag, "W/\"2\"");
  EXPECT_EQ(Call("GET", "/Users/" + id).body["active"], false);
  Answer b =
      PatchOps("/Users/" + id, {{{"op", "replace"}, {"path", "displayName"}, {"value", "U"}}},
               {{"attributes", "displayName"}});
  EXPECT_EQ(b.status, 200);
  EXPECT_EQ(b.body["displayName"], "U");
  EXPECT_FALSE(b.body.contains("userName"));
  EXPECT_EQ(b.etag, "W/\"3\"");
}

TEST_F(ScimServiceTest, APatchThatChangesNothingKeepsTheVersion) {
  const std::string id = PostUser("u", "u@x.com");
  TakeChanges();
  const int puts = persistence_.puts;
  const json ops = {{{"op", "replace"}, {"path", "active"}, {"value", true}},
                    {{"op", "remove"}, {"path", "emails[value eq \"nobody@x.com\"]"}}};
  Answer a = PatchOps("/Users/" + id, ops);
  EXPECT_EQ(a.status, 204);
  EXPECT_EQ(a.etag, "W/\"1\"");
  EXPECT_EQ(persistence_.puts, puts);
  EXPECT_TRUE(TakeChanges().empty());
  EXPECT_EQ(Call("GET", "/Users/" + id).body["meta"]["version"], "W/\"1\"");
}

TEST_F(ScimServiceTest, IfMatchWithAnotherVersionIs412) {
  const std::string id = PostUser("u", "");
  const json op = {{{"op", "replace"}, {"path", "title"}, {"value", "T"}}};
  ExpectScimError(PatchOps("/Users/" + id, op, {}, "W/\"7\""), 412, "");
  ExpectScimError(Call("PUT", "/Users/" + id, R"({"userName": "u", "title": "X"})", {}, "W/\"2\""),
                  412, "");
  ExpectScimError(Call("DELETE", "/Users/" + id, "", {}, "\"0\""), 412, "");
  EXPECT_EQ(Call("GET", "/Users/" + id).body["meta"]["version"], "W/\"1\"");
  EXPECT_EQ(PatchOps("/Users/" + id, op, {}, "W/\"1\"").status, 204);
  EXPECT_EQ(PatchOps("/Users/" + id, {{{"op", "replace"}, {"path", "title"}, {"value", "U"}}}, {},
                     "W/\"1\", W/\"2\"")
                .status,
            204);
  EXPECT_EQ(Call("DELETE", "/Users/" + id, "", {}, "*").status, 204);
}

TEST_F(ScimServiceTest, DeleteAnswers204AndForgetsTheResource) {
  const std::string id = PostUser("u", "");
  Answer a = Call("DELETE", "/Users/" + id);
  EXPECT_EQ(a.status, 204);
  EXPECT_TRUE(a.raw.empty());
  EXPECT_FALSE(persistence_.Row("okta", "User", id).has_value());
  ExpectScimError(Call("GET", "/Users/" + id), 404, "");
  ExpectScimError(Call("DELETE", "/Users/" + id), 404, "");
  // The userName is free again.
  EXPECT_FALSE(PostUser("U", "").empty());
}

// ---------------------------------------------------------------------------
// Paths, methods, discovery

TEST_F(ScimServiceTest, PathsAndMethods) {
  const std::string id = PostUser("u", "");
  EXPECT_EQ(Call("GET", "/users").status, 200);  // Microsoft's suite
  EXPECT_EQ(Call("GET", "/Users/").status, 200);
  EXPECT_EQ(Call("GET", "/Users/" + id + "/").status, 200);
  Answer m = Call("DELETE", "/Users");
  ExpectScimError(m, 405, "");
  EXPECT_EQ(m.allow, "GET, POST");
  EXPECT_EQ(Call("POST", "/Users/" + id, "{}").allow, "GET, PUT, PATCH, DELETE");
  ExpectScimError(Call("POST", "/Schemas", "{}"), 405, "");
  ExpectScimError(Call("PUT", "/ServiceProviderConfig", "{}"), 405, "");
  ExpectScimError(Call("GET", "/Nope"), 404, "");
  ExpectScimError(Call("GET", "/"), 404, "");
  ExpectScimError(Call("GET", "/Users/" + id + "/extra"), 404, "");
  for (std::string_view p : {"/Bulk", "/Me", "/Me/x"}) {
    Answer a = Call("POST", std::string(p), "{}");
    ExpectScimError(a, 501, "");
    EXPECT_NE(a.body["detail"].get<std::string>().find("not supported"), std::string::npos) << p;
  }
}

TEST_F(ScimServiceTest, DiscoveryDocuments) {
  Answer spc = Call("GET", "/ServiceProviderConfig");
  ASSERT_EQ(spc.status, 200);
  EXPECT_EQ(spc.body["patch"]["supported"], true);
  EXPECT_EQ(spc.body["bulk"]["supported"], false);
  EXPECT_EQ(spc.body["filter"]["maxResults"], 50);
  EXPECT_EQ(spc.body["etag"]["supported"], true);
  EXPECT_EQ(spc.body["meta"]["location"], std::string(kBase) + "/ServiceProviderConfig");

  Answer rt = Call("GET", "/ResourceTypes");
  EXPECT_EQ(rt.body["totalResults"], 2);
  EXPECT_EQ(rt.body["Resources"][0]["endpoint"], "/Users");
  EXPECT_EQ(rt.body["Resources"][1]["endpoint"], "/Groups");
  EXPECT_EQ(Call("GET", "/ResourceTypes/Group").body["schema"],
            "urn:ietf:params:scim:schemas:core:2.0:Group");
  ExpectScimError(Call("GET", "/ResourceTypes/Device"), 404, "");

  Answer schemas = Call("GET", "/Schemas");
  EXPECT_NE(schemas.raw.find("User Account"), std::string::npos);
  EXPECT_EQ(schemas.body["totalResults"], 3);
  Answer user = Call("GET", "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User");
  ASSERT_EQ(user.status, 200);
  bool saw_user_name = false, saw_emails_value = false;
  for (const json& attr : user.body["attributes"]) {
    if (attr["name"] == "userName") {
      saw_user_name = true;
      EXPECT_EQ(attr["uniqueness"], "server");
      EXPECT_EQ(attr["required"], true);
    }
    if (attr["name"] == "password") {
      EXPECT_EQ(attr["returned"], "never");
    }
    if (attr["name"] == "emails") {
      for (const json& sub : attr["subAttributes"]) saw_emails_value |= sub["name"] == "value";
    }
  }
  EXPECT_TRUE(saw_user_name);
  EXPECT_TRUE(saw_emails_value);
  Answer ent = Call("GET", "/Schemas/urn:ietf:params:scim:schemas:extension:enterprise:2.0:User");
  EXPECT_EQ(ent.status, 200);
  EXPECT_NE(ent.raw.find("\"manager\""), std::string::npos);
  ExpectScimError(Call("GET", "/Schemas/urn:nope"), 404, "");
}

// ---------------------------------------------------------------------------
// Bad input

TEST_F(ScimServiceTest, BadBodiesAre400AndChangeNothing) {
  const std::string id = PostUser("u", "");
  const int puts = persistence_.puts;
  ExpectScimError(Call("POST", "/Users", R"({"acve": tre, "userName": "x"})"), 400,
                  "invalidSyntax");
  ExpectScimError(Call("POST", "/Users", ""), 400, "invalidSyntax");
  ExpectScimError(Call("POST", "/Users", "[1, 2]"), 400, "invalidSyntax");
  std::string deep =
      R"({"userName": "d", "x": )" + std::string(20, '[') + std::string(20, ']') + "}";
  ExpectScimError(Call("POST", "/Users", deep), 400, "invalidSyntax");
  ExpectScimError(Call("POST", "/Users", R"({"displayName": "no userName"})"), 400, "invalidValue");
  ExpectScimError(Call("POST", "/Users", R"({"userName": "x", "active": "yes"})"), 400,
                  "invalidValue");
  ExpectScimError(Call("POST", "/Users", R"({"userName": "x", "name": "Bob"})"), 400,
                  "invalidValue");
  ExpectScimError(Call("POST", "/Users", R"({"userName": 12, "emails": 7})"), 400, "invalidValue");
  ExpectScimError(Call("POST", "/Groups", R"({"members": []})"), 400, "invalidValue");
  ExpectScimError(Call("PUT", "/Users/" + id, R"({"userame": "typo"})"), 400, "invalidValue");
  ExpectScimError(PatchOps("/Users/" + id, {{{"op", "jump"}, {"path", "title"}}}), 400,
                  "invalidSyntax");
  ExpectScimError(PatchOps("/Users/" + id, {{{"op", "replace"}, {"path", "id"}, {"value", "x"}}}),
                  400, "mutability");
  ExpectScimError(PatchOps("/Users/" + id, {{{"op", "replace"}, {"path", "active"}, {"value", 3}}}),
                  400, "invalidValue");
  ExpectScimError(PatchOps("/Users/" + id, {{{"op", "replace"},
                                             {"path", "emails[type co \"work\"]"},
                                             {"value", {{"value", "a@b"}}}}}),
                  400, "noTarget");
  ExpectScimError(Call("PATCH", "/Users/" + id, R"({"Operations": "no"})"), 400, "invalidSyntax");
  EXPECT_EQ(persistence_.puts, puts);
  EXPECT_EQ(Call("GET", "/Users/" + id).body["meta"]["version"], "W/\"1\"");
}

TEST_F(ScimServiceTest, UnknownAttributesAreKeptOnUsersAndPatchable) {
  const std::string id = Post("/Users", json::parse(R"({"userName": "u", "adreses": [{"x": 1}],
      "urn:acme:ext:1.0:User": {"badge": "7"}})"));
  Answer got = Call("GET", "/Users/" + id);
  EXPECT_EQ(got.body["adreses"], json::parse(R"([{"x": 1}])"));
  EXPECT_EQ(got.body["urn:acme:ext:1.0:User"]["badge"], "7");
  // RFC 7644 3.5.2.1/3.5.2.3: add and replace on an attribute without a
  // value create it; the service keeps attributes it does not know, so a
  // path naming one is not an invalidPath. Removing one that is absent is a
  // no-op (3.5.2.2 leaves the resource as asked).
  EXPECT_EQ(
      PatchOps("/Users/" + id, {{{"op", "add"}, {"path", "favouriteColour"}, {"value", "red"}}})
          .status,
      204);
  EXPECT_EQ(Call("GET", "/Users/" + id).body["favouriteColour"], "red");
  EXPECT_EQ(PatchOps("/Users/" + id, {{{"op", "remove"}, {"path", "shoeSize"}}}).status, 204);
  EXPECT_EQ(Call("GET", "/Users/" + id).body["meta"]["version"], "W/\"2\"");
  // A malformed path is invalidPath.
  ExpectScimError(PatchOps("/Users/" + id, {{{"op", "add"}, {"path", "a..b"}, {"value", 1}}}), 400,
                  "invalidPath");
}

// ---------------------------------------------------------------------------
// Persistence: before the answer, nothing changed on failure, restart

TEST_F(ScimServiceTest, AFailingPersistenceChangesNothing) {
  const std::string id = PostUser("keep", "keep@x.com");
  const std::string g = PostGroup("G", {id});
  TakeChanges();
  persistence_.fail = UnavailableError("disk gone");
  Answer post = Call("POST", "/Users", R"({"userName": "new"})");
  ExpectScimError(post, 503, "");
  EXPECT_EQ(post.raw.find("disk gone"), std::string::npos);
  ExpectScimError(Call("PUT", "/Users/" + id, R"({"userName": "changed"})"), 503, "");
  ExpectScimError(PatchOps("/Groups/" + g, {{{"op", "remove"}, {"path", "members"}}}), 503, "");
  ExpectScimError(Call("DELETE", "/Users/" + id), 503, "");
  persistence_.fail = InternalError("constraint failed");
  ExpectScimError(Call("POST", "/Users", R"({"userName": "new"})"), 500, "");
  persistence_.fail.reset();

  EXPECT_TRUE(TakeChanges().empty());
  EXPECT_EQ(Call("GET", "/Users").body["totalResults"], 1);
  Answer u = Call("GET", "/Users/" + id);
  EXPECT_EQ(u.body["userName"], "keep");
  EXPECT_EQ(u.etag, "W/\"1\"");
  EXPECT_EQ(Call("GET", "/Groups/" + g).body["members"].size(), 1u);
  EXPECT_EQ(Call("GET", "/Users", "", {{"filter", "userName eq \"new\""}}).body["totalResults"], 0);
  EXPECT_EQ(service_->Counts("okta"), (Counts{1, 1}));
}

TEST_F(ScimServiceTest, ANewServiceOverTheSamePersistenceSeesEverything) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    now_ms_ += 1000;
    ids.push_back(PostUser("user" + std::to_string(i), "u" + std::to_string(i) + "@x.com"));
  }
  const std::string g = PostGroup("G", {ids[0], ids[3]});
  const std::string e = PostUser("entra-user", "", "entra");
  ASSERT_EQ(
      PatchOps("/Users/" + ids[1], {{{"op", "replace"}, {"path", "active"}, {"value", false}}})
          .status,
      204);
  ASSERT_EQ(Call("DELETE", "/Users/" + ids[2]).status, 204);
  const json users_before = Call("GET", "/Users").body;
  const json groups_before = Call("GET", "/Groups").body;
  const mapping::SourceSnapshot snap_before = service_->Snapshot("okta");

  Start();  // restart over the same persistence
  EXPECT_EQ(Call("GET", "/Users").body, users_before);
  EXPECT_EQ(Call("GET", "/Groups").body, groups_before);
  EXPECT_EQ(Call("GET", "/Users/" + e, "", {}, "", "entra").status, 200);
  const mapping::SourceSnapshot snap = service_->Snapshot("okta");
  ASSERT_FALSE(snap_before.users.empty());
  ASSERT_EQ(snap.users.size(), snap_before.users.size());
  for (size_t i = 0; i < snap.users.size(); ++i) {
    EXPECT_EQ(snap.users[i].id, snap_before.users[i].id);
    EXPECT_EQ(snap.users[i].email, snap_before.users[i].email);
    EXPECT_EQ(snap.users[i].disabled, snap_before.users[i].disabled);
  }
  ASSERT_EQ(snap.groups.size(), 1u);
  EXPECT_EQ(snap.groups[0].member_users, snap_before.groups[0].member_users);
  // Versions continue, and uniqueness still holds.
  Answer p = PatchOps("/Users/" + ids[1], {{{"op", "replace"}, {"path", "title"}, {"value", "T"}}});
  EXPECT_EQ(p.etag, "W/\"3\"");
  ExpectScimError(Call("POST", "/Users", R"({"userName": "USER0"})"), 409, "uniqueness");
  EXPECT_EQ(Call("GET", "/Users", "", {{"filter", "userName eq \"user4\""}}).body["totalResults"],
            1);
}

TEST_F(ScimServiceTest, UnreadableStoredResourcesFailCreation) {
  PostUser("u", "");
  for (const std::string& bad : {std::string("{not json"), std::string("[]"),
                                 std::string(R"({"id": "other", "userName": "u"})")}) {
    MemoryPersistence p;
    p.rows = persistence_.rows;
    p.rows.begin()->second.json = bad;
    ServiceOptions options;
    options.sources = {"okta"};
    Result<std::unique_ptr<ScimService>> s = ScimService::Create(options, p, nullptr);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_THAT(s, StatusIs(StatusCode::kDataLoss));
    EXPECT_EQ(s.status().message().rfind("SCIM User ", 0), 0u) << s.status().message();
  }
  MemoryPersistence failing;
  failing.fail = UnavailableError("db locked");
  ServiceOptions options;
  options.sources = {"okta"};
  Result<std::unique_ptr<ScimService>> s = ScimService::Create(options, failing, nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s, StatusIs(StatusCode::kUnavailable));
}

// ---------------------------------------------------------------------------
// The listener

TEST_F(ScimServiceTest, UserWritesNotifyTheAddressBeforeAndAfter) {
  const std::string id = PostUser("u", "Old@X.com");
  std::vector<ScimChange> c = TakeChanges();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].source, "okta");
  EXPECT_EQ(c[0].method, "POST");
  EXPECT_EQ(c[0].type, "User");
  EXPECT_EQ(c[0].id, id);
  EXPECT_EQ(c[0].emails, std::vector<std::string>{"old@x.com"});

  PatchOps(
      "/Users/" + id,
      {{{"op", "replace"}, {"path", "emails[primary eq true].value"}, {"value", "new@x.com"}}});
  c = TakeChanges();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].method, "PATCH");
  EXPECT_EQ(c[0].emails, (std::vector<std::string>{"new@x.com", "old@x.com"}));

  Call("PUT", "/Users/" + id, R"({"userName": "u", "active": false,
      "emails": [{"value": "new@x.com", "primary": true}]})");
  c = TakeChanges();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].method, "PUT");
  EXPECT_EQ(c[0].emails, std::vector<std::string>{"new@x.com"});

  const std::string g = PostGroup("G", {id});
  TakeChanges();
  Call("DELETE", "/Users/" + id);
  c = TakeChanges();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].method, "DELETE");
  EXPECT_EQ(c[0].emails, std::vector<std::string>{"new@x.com"});
  // The group keeps its member entry; the snapshot no longer resolves it.
  EXPECT_EQ(Call("GET", "/Groups/" + g).body["members"].size(), 1u);
  EXPECT_TRUE(service_->Snapshot("okta").groups[0].member_users.empty());
}

// ---------------------------------------------------------------------------
// PATCH dialects: a filtered replace that matches nothing, refusals

// What Entra sends on a delta sync when a person is disabled and a mobile
// number and an office were filled in since the last cycle.
const json kEntraDeltaOps = {
    {{"op", "Replace"},
     {"path", "phoneNumbers[type eq \"mobile\"].value"},
     {"value", "+1 555 0142"}},
    {{"op", "Replace"}, {"path", "addresses[type eq \"work\"].locality"}, {"value", "Lisbon"}},
    {{"op", "Replace"}, {"path", "active"}, {"value", "False"}}};

TEST_F(ScimServiceTest, EntrasDeltaPatchDisablesThePersonAndKeepsTheAddress) {
  const std::string id = PostUser("maya@corp.example", "maya@corp.example");
  TakeChanges();
  Answer a = PatchOps("/Users/" + id, kEntraDeltaOps);
  EXPECT_EQ(a.status, 204) << a.raw;
  const json user = Call("GET", "/Users/" + id).body;
  EXPECT_EQ(user["active"], false);
  EXPECT_EQ(user["phoneNumbers"], json::parse(R"([{"type": "mobile", "value": "+1 555 0142"}])"));
  EXPECT_EQ(user["addresses"], json::parse(R"([{"type": "work", "locality": "Lisbon"}])"));
  const std::vector<ScimChange> c = TakeChanges();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].emails, std::vector<std::string>{"maya@corp.example"});
  const mapping::SourceSnapshot snap = service_->Snapshot("okta");
  ASSERT_EQ(snap.users.size(), 1u);
  EXPECT_TRUE(snap.users[0].disabled);
  EXPECT_TRUE(refusals_.empty());
}

TEST_F(ScimServiceTest, ACreatedWorkAddressDoesNotRenameThePerson) {
  const std::string id = Post(
      "/Users",
      {{"userName", "maya"}, {"emails", {{{"value", "maya@home.example"}, {"type", "home"}}}}});
  TakeChanges();
  EXPECT_EQ(PatchOps("/Users/" + id, {{{"op", "Replace"},
                                       {"path", "emails[type eq \"work\"].value"},
                                       {"value", "maya@corp.example"}}})
                .status,
            204);
  const std::vector<ScimChange> c = TakeChanges();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].emails, std::vector<std::string>{"maya@home.example"});
  EXPECT_EQ(service_->Snapshot("okta").users[0].email, "maya@home.example");

  // A PUT of the whole user says which address is primary: it decides.
  Call("PUT", "/Users/" + id, R"({"userName": "maya", "emails": [
      {"value": "maya@home.example", "type": "home"},
      {"value": "maya@corp.example", "type": "work", "primary": true}]})");
  EXPECT_EQ(service_->Snapshot("okta").users[0].email, "maya@corp.example");
}

TEST_F(ScimServiceTest, StrictPatchSourcesRefuseAFilteredReplaceThatMatchesNothing) {
  strict_patch_sources_ = {"entra"};
  Start();
  const std::string strict = PostUser("maya@corp.example", "maya@corp.example", "entra");
  const std::string lenient = PostUser("maya@corp.example", "maya@corp.example", "okta");
  json body = {{"schemas", {"urn:ietf:params:scim:api:messages:2.0:PatchOp"}},
               {"Operations", kEntraDeltaOps}};
  Answer a = Call("PATCH", "/Users/" + strict, body.dump(), {}, "", "entra");
  ExpectScimError(a, 400, "noTarget");
  EXPECT_EQ(Call("GET", "/Users/" + strict, "", {}, "", "entra").body["active"], true)
      << "all or nothing";
  ASSERT_EQ(refusals_.size(), 1u);
  EXPECT_EQ(refusals_[0].source, "entra");
  EXPECT_EQ(refusals_[0].type, "User");
  EXPECT_EQ(refusals_[0].id, strict);
  EXPECT_EQ(refusals_[0].operation, 0);
  EXPECT_EQ(refusals_[0].scim_type, "noTarget");
  EXPECT_EQ(refusals_[0].detail, a.body["detail"]);

  EXPECT_EQ(Call("PATCH", "/Users/" + lenient, body.dump()).status, 204);
  EXPECT_EQ(refusals_.size(), 1u);
}

TEST_F(ScimServiceTest, RefusedPatchesAreReportedWithTheOperationAtFault) {
  const std::string a = PostUser("a", "");
  const std::string b = PostUser("b", "");
  // An operation that does not parse.
  ExpectScimError(PatchOps("/Users/" + b, {{{"op", "add"}, {"path", "title"}, {"value", "x"}},
                                           {{"op", "copy"}, {"path", "title"}}}),
                  400, "invalidSyntax");
  // An operation that cannot apply.
  ExpectScimError(PatchOps("/Users/" + b, {{{"op", "add"}, {"path", "title"}, {"value", "x"}},
                                           {{"op", "replace"}, {"path", "id"}, {"value", "x"}}}),
                  400, "mutability");
  // A result another user holds: the request as a whole.
  ExpectScimError(
      PatchOps("/Users/" + b, {{{"op", "replace"}, {"path", "userName"}, {"value", "A"}}}), 409,
      "uniqueness");
  // A body that is not JSON.
  ExpectScimError(Call("PATCH", "/Users/" + b, "{"), 400, "invalidSyntax");
  ASSERT_EQ(refusals_.size(), 4u);
  EXPECT_EQ(refusals_[0].operation, 1);
  EXPECT_EQ(refusals_[0].scim_type, "invalidSyntax");
  EXPECT_EQ(refusals_[1].operation, 1);
  EXPECT_EQ(refusals_[1].scim_type, "mutability");
  EXPECT_EQ(refusals_[2].operation, -1);
  EXPECT_EQ(refusals_[2].scim_type, "uniqueness");
  EXPECT_EQ(refusals_[3].operation, -1);
  for (const PatchRefusal& r : refusals_) {
    EXPECT_EQ(r.source, "okta");
    EXPECT_EQ(r.id, b);
  }
  // Not a refusal of the PATCH: an unknown id, an If-Match of another version.
  EXPECT_EQ(PatchOps("/Users/nope", {{{"op", "add"}, {"path", "title"}, {"value", "x"}}}).status,
            404);
  EXPECT_EQ(
      PatchOps("/Users/" + a, {{{"op", "add"}, {"path", "title"}, {"value", "x"}}}, {}, "W/\"99\"")
          .status,
      412);
  EXPECT_EQ(refusals_.size(), 4u);
}

TEST_F(ScimServiceTest, GroupWritesNotifyMembersIncludingNestedOnes) {
  const std::string a = PostUser("a", "a@x.com");
  const std::string b = PostUser("b", "b@x.com");
  const std::string c = PostUser("c", "c@x.com");
  const std::string d = PostUser("d", "D@x.com");
  const std::string inner = PostGroup("Inner", {c, d});
  TakeChanges();

  const std::string outer = PostGroup("Outer", {a, inner, "not-a-known-id"});
  std::vector<ScimChange> ch = TakeChanges();
  ASSERT_EQ(ch.size(), 1u);
  EXPECT_EQ(ch[0].type, "Group");
  EXPECT_EQ(ch[0].emails, (std::vector<std::string>{"a@x.com", "c@x.com", "d@x.com"}));

  // Membership only: who joined or left.
  PatchOps("/Groups/" + outer, {{{"op", "remove"}, {"path", "members[value eq \"" + a + "\"]"}},
                                {{"op", "add"}, {"path", "members"}, {"value", {{{"value", b}}}}}});
  ch = TakeChanges();
  ASSERT_EQ(ch.size(), 1u);
  EXPECT_EQ(ch[0].emails, (std::vector<std::string>{"a@x.com", "b@x.com"}));

  // A change inside the nested group reaches its members.
  PatchOps("/Groups/" + inner,
           {{{"op", "remove"}, {"path", "members"}, {"value", {{{"value", d}}}}}});
  ch = TakeChanges();
  ASSERT_EQ(ch.size(), 1u);
  EXPECT_EQ(ch[0].emails, std::vector<std::string>{"d@x.com"});

  // A rename touches everyone in it, nested members too.
  PatchOps("/Groups/" + outer,
           {{{"op", "replace"}, {"value", {{"id", outer}, {"displayName", "Renamed"}}}}});
  ch = TakeChanges();
  ASSERT_EQ(ch.size(), 1u);
  EXPECT_EQ(ch[0].emails, (std::vector<std::string>{"b@x.com", "c@x.com"}));

  Call("DELETE", "/Groups/" + outer);
  ch = TakeChanges();
  ASSERT_EQ(ch.size(), 1u);
  EXPECT_EQ(ch[0].method, "DELETE");
  EXPECT_EQ(ch[0].emails, (std::vector<std::string>{"b@x.com", "c@x.com"}));
}

TEST_F(ScimServiceTest, NestedGroupCyclesEnd) {
  const std::string u = PostUser("u", "u@x.com");
  const std::string g1 = PostGroup("G1", {u});
  const std::string g2 = PostGroup("G2", {g1});
  TakeChanges();
  PatchOps("/Groups/" + g1, {{{"op", "add"}, {"path", "members"}, {"value", {{{"value", g2}}}}}});
  std::vector<ScimChange> ch = TakeChanges();
  ASSERT_EQ(ch.size(), 1u);
  EXPECT_TRUE(ch[0].emails.empty());  // u was and stays a member
  Call("DELETE", "/Groups/" + g2);
  ch = TakeChanges();
  ASSERT_EQ(ch.size(), 1u);
  EXPECT_EQ(ch[0].emails, std::vector<std::string>{"u@x.com"});
}

// Whom a group write affects follows the LDAP feeds' rule
// (mapping::AffectedEmails): a group renamed is another group to the rules,
// so everyone in it before and after is affected, membership changes or not.
TEST_F(ScimServiceTest, ARenamedGroupAffectsEveryMemberBeforeAndAfter) {
  const std::string a = PostUser("a", "a@x.com");
  const std::string b = PostUser("b", "b@x.com");
  const std::string c = PostUser("c", "c@x.com");
  const std::string d = PostUser("d", "d@x.com");
  const std::string inner = PostGroup("Inner", {d});
  const std::string g = PostGroup("Team", {a, b, inner});
  TakeChanges();

  // A PUT that renames and swaps b for c: a stayed, yet is affected too.
  Call("PUT", "/Groups/" + g,
       json{{"displayName", "Team Renamed"},
            {"members", {{{"value", a}}, {{"value", c}}, {{"value", inner}}}}}
           .dump());
  std::vector<ScimChange> ch = TakeChanges();
  ASSERT_EQ(ch.size(), 1u);
  EXPECT_EQ(ch[0].method, "PUT");
  EXPECT_EQ(ch[0].emails, (std::vector<std::string>{"a@x.com", "b@x.com", "c@x.com", "d@x.com"}));

  // A rename that changes only the case is a rename too (rules may compare
  // names as written).
  PatchOps("/Groups/" + g,
           {{{"op", "replace"}, {"path", "displayName"}, {"value", "TEAM RENAMED"}}});
  ch = TakeChanges();
  ASSERT_EQ(ch.size(), 1u);
  EXPECT_EQ(ch[0].emails, (std::vector<std::string>{"a@x.com", "c@x.com", "d@x.com"}));

  // The same name again with a member less: only who left.
  PatchOps("/Groups/" + g, {{{"op", "remove"}, {"path", "members[value eq \"" + a + "\"]"}}});
  ch = TakeChanges();
  ASSERT_EQ(ch.size(), 1u);
  EXPECT_EQ(ch[0].emails, std::vector<std::string>{"a@x.com"});
}

// Who joined or left is decided by user, not by address: two users sharing
// one address, one leaving as the other joins, still name that address.
TEST_F(ScimServiceTest, JoinersAndLeaversAreUsersNotAddresses) {
  const std::string first = PostUser("first", "shared@x.com");
  const std::string second = PostUser("second", "Shared@x.com");
  const std::string g = PostGroup("Team", {first});
  TakeChanges();
  Call("PUT", "/Groups/" + g,
       json{{"displayName", "Team"}, {"members", {{{"value", second}}}}}.dump());
  std::vector<ScimChange> ch = TakeChanges();
  ASSERT_EQ(ch.size(), 1u);
  EXPECT_EQ(ch[0].emails, std::vector<std::string>{"shared@x.com"});
}

// ---------------------------------------------------------------------------
// Snapshot

TEST_F(ScimServiceTest, SnapshotFollowsTheMappingRules) {
  struct Case {
    std::string body;
    std::string email;
    std::string name;
    bool disabled;
  };
  const std::vector<Case> cases = {
      {R"({"userName": "u1", "displayName": "D",
           "emails": [{"value": "first@x"}, {"value": "work@x", "type": "work"},
                      {"value": "primary@x", "primary": true}]})",
       "primary@x", "D", false},
      {R"({"userName": "u2", "name": {"formatted": "F"},
           "emails": [{"value": "first@x"}, {"value": "work@x", "type": "Work"}]})",
       "work@x", "F", false},
      {R"({"userName": "u3", "emails": [{"value": "first@x"}, {"value": "home@x", "type": "home"}],
           "active": false})",
       "first@x", "u3", true},
      {R"({"userName": "u4@x.com", "active": "True"})", "u4@x.com", "u4@x.com", false},
      {R"({"userName": "u5", "emails": [{"type": "work"}]})", "", "u5", false},
      {R"({"userName": "maya@corp.example", "name": {"givenName": "Maya", "familyName": "Ito"}})",
       "maya@corp.example", "Maya Ito", false},
      {R"({"userName": "u7", "name": {"familyName": "Ito", "middleName": "K"}})", "", "Ito", false},
      {R"({"userName": "u8", "displayName": "", "name": {"givenName": "Ana", "formatted": ""}})",
       "", "Ana", false},
  };
  tick_per_post_ = true;
  for (const Case& c : cases) {
    now_ms_ += 1;
    Answer a = Call("POST", "/Users", c.body);
    ASSERT_EQ(a.status, 201) << a.raw;
  }
  const std::string u1 =
      Call("GET", "/Users", "", {{"filter", "userName eq u1"}}).body["Resources"][0]["id"];
  const std::string u3 =
      Call("GET", "/Users", "", {{"filter", "userName eq u3"}}).body["Resources"][0]["id"];
  const std::string inner = PostGroup("Inner", {u3});
  const std::string other_source_user = PostUser("o", "o@x", "entra");
  PostGroup("Outer", {u1, inner, "ghost", other_source_user, u1});

  const mapping::SourceSnapshot s = service_->Snapshot("okta");
  EXPECT_EQ(s.source, "okta");
  EXPECT_TRUE(s.nested);
  ASSERT_EQ(s.users.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(s.users[i].email, cases[i].email) << i;
    EXPECT_EQ(s.users[i].name, cases[i].name) << i;
    EXPECT_EQ(s.users[i].disabled, cases[i].disabled) << i;
    EXPECT_TRUE(s.users[i].dn.empty());
  }
  ASSERT_EQ(s.groups.size(), 2u);
  EXPECT_EQ(s.groups[0].name, "Inner");
  EXPECT_EQ(s.groups[0].member_users, std::vector<std::uint32_t>{2});
  EXPECT_EQ(s.groups[1].name, "Outer");
  EXPECT_EQ(
      s.groups[1].id,
      Call("GET", "/Groups", "", {{"filter", "displayName eq Outer"}}).body["Resources"][0]["id"]);
  EXPECT_EQ(s.groups[1].member_users, std::vector<std::uint32_t>{0});
  EXPECT_EQ(s.groups[1].member_groups, std::vector<std::uint32_t>{0});
  EXPECT_EQ(service_->Counts("okta"), (Counts{8, 2}));
  EXPECT_EQ(service_->Counts("entra"), (Counts{1, 0}));
  EXPECT_TRUE(service_->Snapshot("nope").users.empty());
}

// What a person reaches in a snapshot: for each user entry with `email`
// (ASCII lower-cased), its name, whether disabled, and the names of every
// group it is in, directly or through nested groups (sorted).
std::vector<std::string> Reach(const mapping::SourceSnapshot& s, const std::string& email) {
  std::vector<std::string> out;
  for (std::uint32_t u = 0; u < s.users.size(); ++u) {
    std::string lower = s.users[u].email;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower != email) continue;
    std::set<std::uint32_t> in;
    std::vector<std::uint32_t> todo;
    for (std::uint32_t g = 0; g < s.groups.size(); ++g) {
      const auto& m = s.groups[g].member_users;
      if (std::find(m.begin(), m.end(), u) != m.end() && in.insert(g).second) todo.push_back(g);
    }
    while (!todo.empty()) {
      const std::uint32_t child = todo.back();
      todo.pop_back();
      for (std::uint32_t g = 0; g < s.groups.size(); ++g) {
        const auto& m = s.groups[g].member_groups;
        if (std::find(m.begin(), m.end(), child) != m.end() && in.insert(g).second) {
          todo.push_back(g);
        }
      }
    }
    std::vector<std::string> names;
    for (std::uint32_t g : in) names.push_back(s.groups[g].name);
    std::sort(names.begin(), names.end());
    std::string line = s.users[u].id + " " + s.users[u].name + (s.users[u].disabled ? " off" : "");
    for (const std::string& n : names) line += " | " + n;
    out.push_back(line);
  }
  return out;
}

// A partial run reads only what its people need: for any set of addresses,
// each person reaches in the part what they reach in the whole snapshot,
// through nesting, cycles, members listed twice, ids the source does not
// A write whose commit fails after it was staged and published: answered
// 503, and the view goes back to what the store holds; when
// the store cannot even be read then, the next write is refused until it
// can, and the view is put right first.
TEST_F(ScimServiceTest, AWriteWhoseCommitFailsIsTakenBackOutOfTheView) {
  const std::string ana = PostUser("ana", "ana@corp.example");
  TakeChanges();
  auto users_named = [&](const std::string& name) {
    return Call("GET", "/Users", "", {{"filter", "userName eq \"" + name + "\""}})
        .body["totalResults"];
  };
  persistence_.fail_commit = UnavailableError("disk full");

  Answer put = Call("PUT", "/Users/" + ana, R"({"userName": "ana", "displayName": "Changed"})");
  EXPECT_EQ(put.status, 503) << put.raw;
  Answer got = Call("GET", "/Users/" + ana);
  EXPECT_EQ(got.status, 200);
  EXPECT_FALSE(got.body.contains("displayName")) << got.raw;
  EXPECT_EQ(got.body["meta"]["version"], "W/\"1\"");

  EXPECT_EQ(Call("POST", "/Users", R"({"userName": "bo"})").status, 503);
  EXPECT_EQ(users_named("bo"), 0);
  EXPECT_EQ(Call("DELETE", "/Users/" + ana).status, 503);
  EXPECT_EQ(Call("GET", "/Users/" + ana).status, 200);
  // Only the way back is told (a partial run may have read the write that
  // did not land): ana as the store has her, and bo taken out.
  for (const ScimChange& c : TakeChanges()) {
    EXPECT_TRUE(c.id == ana || c.method == "DELETE") << c.method << " " << c.id;
  }

  // The store cannot be read either: the failed write stays in the view
  // until the store can be read, and no write goes in meanwhile.
  persistence_.fail_loads = UnavailableError("connection lost");
  EXPECT_EQ(Call("POST", "/Users", R"({"userName": "cy"})").status, 503);
  persistence_.fail_commit.reset();
  EXPECT_EQ(Call("POST", "/Users", R"({"userName": "di"})").status, 503);
  EXPECT_EQ(users_named("di"), 0);
  persistence_.fail_loads.reset();
  EXPECT_EQ(Call("POST", "/Users", R"({"userName": "di"})").status, 201);
  EXPECT_EQ(users_named("cy"), 0);
  EXPECT_EQ(users_named("di"), 1);
  EXPECT_EQ(persistence_.Size(), 2u);  // ana and di
}

// know, addresses in another case, and two users sharing one address.
TEST_F(ScimServiceTest, ThePartOfASnapshotAPersonNeedsGivesTheSameReach) {
  std::vector<std::string> users;
  std::vector<std::string> emails;
  for (int i = 0; i < 12; ++i) {
    const std::string email = "p" + std::to_string(i) + "@corp.example";
    emails.push_back(email);
    users.push_back(PostUser("u" + std::to_string(i), i % 3 == 0 ? "P" + email.substr(1) : email));
  }
  users.push_back(PostUser("twin", "p4@corp.example"));  // shares p4's address
  const std::string entra = PostUser("e", "p1@corp.example", "entra");
  const std::string leaf = PostGroup("Leaf", {users[0], users[1], users[1], "ghost"});
  const std::string mid = PostGroup("Mid", {leaf, users[2]});
  const std::string top = PostGroup("Top", {mid, users[3]});
  const std::string a = PostGroup("Cycle A", {users[4]});
  const std::string b = PostGroup("Cycle B", {a, users[5]});
  ASSERT_EQ(Call("PATCH", "/Groups/" + a,
                 json({{"schemas", {"urn:ietf:params:scim:api:messages:2.0:PatchOp"}},
                       {"Operations",
                        {{{"op", "add"}, {"path", "members"}, {"value", {{{"value", b}}}}}}}})
                     .dump())
                    .status /
                100,
            2);
  PostGroup("Flat", {users[6], users[12], entra});
  PostGroup("Empty", {});
  PostGroup("Outside", {users[11]});

  const mapping::SourceSnapshot whole = service_->Snapshot("okta");
  std::mt19937 random(7);
  for (int round = 0; round < 40; ++round) {
    std::vector<std::string> wanted;
    for (const std::string& e : emails) {
      if (random() % 3 == 0) wanted.push_back(e);
    }
    if (round == 0) wanted = {"p0@corp.example"};
    if (round == 1) wanted = {"nobody@corp.example"};
    std::sort(wanted.begin(), wanted.end());
    const mapping::SourceSnapshot part = service_->Snapshot("okta", wanted);
    EXPECT_EQ(part.source, "okta");
    EXPECT_TRUE(part.nested);
    std::size_t kept = 0;
    for (const std::string& e : wanted) {
      SCOPED_TRACE(e);
      EXPECT_EQ(Reach(part, e), Reach(whole, e));
      kept += Reach(whole, e).size();
    }
    EXPECT_EQ(part.users.size(), kept) << "only the people asked for";
    EXPECT_LE(part.groups.size(), whole.groups.size());
  }
  EXPECT_TRUE(service_->Snapshot("okta", {"p11@corp.example"}).groups.size() == 1);
  EXPECT_TRUE(service_->Snapshot("nope", {"p1@corp.example"}).users.empty());
}

// ---------------------------------------------------------------------------
// What Okta sends

TEST_F(ScimServiceTest, OktaUserLifecycle) {
  // Lookup before create, then create with a password and empty groups.
  EXPECT_EQ(Call("GET", "/Users", "",
                 {{"filter", "userName eq \"isaac.brock@example.com\""},
                  {"startIndex", "1"},
                  {"count", "100"}})
                .body["totalResults"],
            0);
  Answer created = Call("POST", "/Users", R"({
      "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
      "userName": "isaac.brock@example.com",
      "name": {"givenName": "Isaac", "familyName": "Brock"},
      "emails": [{"primary": true, "value": "isaac.brock@example.com", "type": "work"}],
      "displayName": "Isaac Brock", "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7",
      "groups": [], "password": "1mz050nq", "active": true})");
  ASSERT_EQ(created.status, 201) << created.raw;
  const std::string id = created.body["id"];
  // Profile update by PUT.
  Answer put = Call("PUT", "/Users/" + id,
                    R"({
      "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": ")" +
                        id + R"(",
      "userName": "isaac.brock@example.com", "name": {"givenName": "Isaac", "familyName": "Brock"},
      "emails": [{"primary": true, "value": "isaac.brock@example.com", "type": "work"}],
      "displayName": "Isaac B.", "active": true, "password": "changed1"})");
  ASSERT_EQ(put.status, 200) << put.raw;
  EXPECT_EQ(put.body["displayName"], "Isaac B.");
  // Deactivation by a path-less replace.
  Answer deact = PatchOps("/Users/" + id, {{{"op", "replace"}, {"value", {{"active", false}}}}});
  EXPECT_EQ(deact.status, 204) << deact.raw;
  EXPECT_EQ(Call("GET", "/Users/" + id).body["active"], false);
  EXPECT_TRUE(service_->Snapshot("okta").users[0].disabled);
  // Reactivation by PUT.
  Answer react = Call("PUT", "/Users/" + id, R"({"userName": "isaac.brock@example.com",
      "emails": [{"primary": true, "value": "isaac.brock@example.com", "type": "work"}],
      "active": true})");
  EXPECT_EQ(react.status, 200);
  EXPECT_FALSE(service_->Snapshot("okta").users[0].disabled);
}

TEST_F(ScimServiceTest, OktaGroupPush) {
  const std::string u1 = PostUser("u1@x.com", "u1@x.com");
  const std::string u2 = PostUser("u2@x.com", "u2@x.com");
  const std::string u3 = PostUser("u3@x.com", "u3@x.com");
  Answer created = Call("POST", "/Groups", R"({
      "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
      "displayName": "Test SCIMv2", "members": []})");
  ASSERT_EQ(created.status, 201);
  const std::string g = created.body["id"];
  EXPECT_EQ(created.body["members"], json::array());
  // Rename with the read-only id repeated.
  Answer rename = PatchOps(
      "/Groups/" + g, {{{"op", "replace"}, {"value", {{"id", g}, {"displayName", "Renamed"}}}}});
  EXPECT_EQ(rename.status, 204) << rename.raw;
  EXPECT_EQ(Call("GET", "/Groups/" + g).body["displayName"], "Renamed");
  // Membership: remove and add in one PATCH.
  PatchOps("/Groups/" + g, {{{"op", "add"},
                             {"path", "members"},
                             {"value", {{{"value", u1}, {"display", "u1@x.com"}}}}}});
  Answer both = PatchOps(
      "/Groups/" + g,
      {{{"op", "remove"}, {"path", "members[value eq \"" + u1 + "\"]"}},
       {{"op", "add"},
        {"path", "members"},
        {"value",
         {{{"value", u2}, {"display", "u2@x.com"}}, {{"value", u3}, {"display", "u3@x.com"}}}}}});
  EXPECT_EQ(both.status, 204) << both.raw;
  json members = Call("GET", "/Groups/" + g).body["members"];
  ASSERT_EQ(members.size(), 2u);
  EXPECT_EQ(members[0], json({{"value", u2}, {"display", "u2@x.com"}}));
  EXPECT_EQ(members[1]["value"], u3);
  // "Push now" replaces the members whole.
  Answer push = PatchOps("/Groups/" + g,
                         {{{"op", "replace"}, {"path", "members"}, {"value", {{{"value", u1}}}}}});
  EXPECT_EQ(push.status, 204);
  EXPECT_EQ(Call("GET", "/Groups/" + g).body["members"],
            json::parse("[{\"value\": \"" + u1 + "\"}]"));
  // A path-less replace with another id is refused.
  ExpectScimError(PatchOps("/Groups/" + g, {{{"op", "replace"}, {"value", {{"id", "x"}}}}}), 400,
                  "mutability");
  EXPECT_EQ(Call("DELETE", "/Groups/" + g).status, 204);
  ExpectScimError(Call("GET", "/Groups/" + g), 404, "");
}

// ---------------------------------------------------------------------------
// What Entra ID sends

TEST_F(ScimServiceTest, EntraUserShapes) {
  // Test Connection.
  Answer probe = Call("GET", "/Users", "",
                      {{"filter", "userName eq \"8a1b5f6e-2d57-4c3e-9d7a-1f0e3c4b5a69\""}});
  EXPECT_EQ(probe.status, 200);
  EXPECT_EQ(probe.body["totalResults"], 0);
  Answer created = Call("POST", "/Users", R"({
      "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
      "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef", "userName": "Test_User_ab6490ee@contoso.com",
      "active": "True", "displayName": "BobIsAmazing",
      "emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b@contoso.com"}],
      "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
      "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Eng"}})");
  ASSERT_EQ(created.status, 201) << created.raw;
  EXPECT_EQ(created.body["active"], true);
  const std::string id = created.body["id"];
  for (const std::string& f :
       {std::string("externalId eq \"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef\""),
        std::string("userName eq \"test_user_ab6490ee@contoso.com\""),
        std::string("emails[type eq \"work\"].value eq \"Test_User_fd0ea19b@contoso.com\"")}) {
    EXPECT_EQ(Ids(Call("GET", "/Users", "", {{"filter", f}}).body), std::vector<std::string>{id})
        << f;
  }
  // Capitalised ops, booleans as strings, path-less keys with sub-attributes
  // and URN-qualified extension attributes, manager as a string.
  Answer p = PatchOps(
      "/Users/" + id,
      {{{"op", "Replace"}, {"path", "active"}, {"value", "False"}},
       {{"op", "Replace"},
        {"value",
         {{"name.givenName", "Given2"},
          {"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "Sales"}}}},
       {{"op", "Add"},
        {"path", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"},
        {"value", "boss-id"}},
       {{"op", "Add"}, {"path", "phoneNumbers[type eq \"mobile\"].value"}, {"value", "+1 555"}}});
  ASSERT_EQ(p.status, 204) << p.raw;
  json u = Call("GET", "/Users/" + id).body;
  EXPECT_EQ(u["active"], false);
  EXPECT_EQ(u["name"]["givenName"], "Given2");
  const json& ext = u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"];
  EXPECT_EQ(ext["department"], "Sales");
  EXPECT_EQ(ext["manager"], json({{"value", "boss-id"}}));
  EXPECT_EQ(u["phoneNumbers"], json::parse(R"([{"type": "mobile", "value": "+1 555"}])"));
  // Manager as an object works too.
  EXPECT_EQ(
      PatchOps("/Users/" + id,
               {{{"op", "Replace"},
                 {"path", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"},
                 {"value", {{"value", "boss-2"}}}}})
          .status,
      204);
  EXPECT_EQ(
      Call("GET", "/Users/" + id)
          .body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"]["value"],
      "boss-2");
}

TEST_F(ScimServiceTest, EntraGroupShapes) {
  tick_per_post_ = true;  // the snapshot indices below follow creation order
  const std::string a = PostUser("a", "a@x.com");
  const std::string b = PostUser("b", "b@x.com");
  const std::string c = PostUser("c", "c@x.com");
  const std::string g = Post("/Groups", json::parse(R"({
      "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
      "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159", "displayName": "Group1DisplayName",
      "members": []})"));
  EXPECT_EQ(Ids(Call("GET", "/Groups", "",
                     {{"filter", "displayName eq \"Group1DisplayName\""},
                      {"excludedAttributes", "members"}})
                    .body),
            std::vector<std::string>{g});
  Answer add =
      PatchOps("/Groups/" + g, {{{"op", "Add"},
                                 {"path", "members"},
                                 {"value", {{{"value", a}}, {{"value", b}}, {{"value", c}}}}}});
  EXPECT_EQ(add.status, 204) << add.raw;
  // Adding an existing member is a no-op: no new version.
  Answer again =
      PatchOps("/Groups/" + g, {{{"op", "Add"}, {"path", "members"}, {"value", {{{"value", a}}}}}});
  EXPECT_EQ(again.status, 204);
  EXPECT_EQ(again.etag, add.etag);
  // Remove with a value array removes only those.
  Answer rm = PatchOps(
      "/Groups/" + g,
      {{{"op", "Remove"}, {"path", "members"}, {"value", {{{"value", a}}, {{"value", c}}}}}});
  EXPECT_EQ(rm.status, 204);
  json members = Call("GET", "/Groups/" + g).body["members"];
  EXPECT_EQ(members, json::parse("[{\"value\": \"" + b + "\"}]"));
  EXPECT_EQ(service_->Snapshot("okta").groups[0].member_users, std::vector<std::uint32_t>{1});
}

// ---------------------------------------------------------------------------
// What Microsoft's conformance collection expects beyond RFC 7644

TEST_F(ScimServiceTest, MicrosoftSuiteExpectations) {
  // "active": "True" stored as a boolean.
  Answer emp1 = Call("POST", "/Users", R"({"userName": "emp1", "active": "True",
      "emails": [{"type": "work", "primary": true, "value": "anna33@gmail.com"}],
      "name": {"familyName": "Employee", "honorificPrefix": null}})");
  ASSERT_EQ(emp1.status, 201);
  EXPECT_EQ(emp1.body["active"], true);
  EXPECT_EQ(Call("GET", "/Users/" + emp1.body["id"].get<std::string>()).body["active"], true);
  // A PUT with a misspelled attribute keeps it as sent and carries no "Addresses".
  Answer put = Call("PUT", "/Users/" + emp1.body["id"].get<std::string>(),
                    R"({"userName": "emp1", "adreses": [{"country": "Germany"}]})");
  EXPECT_EQ(put.status, 200);
  EXPECT_EQ(put.raw.find("Addresses"), std::string::npos);
  // Members added as bare id strings; members[].displayName kept as sent.
  const std::string g = Post("/Groups", json::parse(R"({"displayName": "Group 1",
      "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"]})"));
  EXPECT_EQ(Call("PATCH", "/Groups/" + g, R"({"id": ")" + g + R"(",
      "Operations": [{"op": "add", "path": "members", "value": "string id 1"}],
      "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]})")
                .status,
            204);
  EXPECT_EQ(Call("PATCH", "/Groups/" + g, R"({"Operations": [{"name": "addMember", "op": "add",
      "path": "members", "value": [{"displayName": "new User", "value": "id4"}]}],
      "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]})")
                .status,
            204);
  json members = Call("GET", "/Groups/" + g).body["members"];
  EXPECT_EQ(members, json::parse(R"([{"value": "string id 1"},
                                     {"displayName": "new User", "value": "id4"}])"));
  EXPECT_EQ(
      Call("GET", "/Groups/" + g, "", {{"excludedAttributes", "members"}}).raw.find("new User"),
      std::string::npos);
  // Empty lists carry "Resources": [].
  Call("DELETE", "/Users/" + emp1.body["id"].get<std::string>());
  Answer empty = Call("GET", "/Users", "", {{"attributes", "userName"}});
  EXPECT_EQ(empty.body["Resources"], json::array());
  EXPECT_EQ(empty.body["totalResults"], 0);
}

// ---------------------------------------------------------------------------
// Concurrency

TEST_F(ScimServiceTest, ConcurrentWritersAndReadersLoseNothing) {
  constexpr int kWriters = 4;
  constexpr int kUsersPerWriter = 40;
  const std::string g = PostGroup("All", {});
  std::atomic<bool> done{false};
  std::atomic<int> read_errors{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      while (!done.load()) {
        Answer list = Call("GET", "/Users", "", {{"filter", "userName sw \"w\""}, {"count", "5"}});
        Answer group = Call("GET", "/Groups/" + g);
        if (list.status != 200 || group.status != 200 ||
            list.body["totalResults"].get<int>() <
                static_cast<int>(list.body["Resources"].size())) {
          ++read_errors;
        }
        service_->Snapshot("okta");
      }
    });
  }
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < kUsersPerWriter; ++i) {
        const std::string name = "w" + std::to_string(w) + "-" + std::to_string(i);
        Answer a =
            Call("POST", "/Users",
                 json({{"userName", name}, {"emails", {{{"value", name + "@x.com"}}}}}).dump());
        if (a.status != 201) continue;
        const std::string id = a.body["id"];
        PatchOps("/Groups/" + g,
                 {{{"op", "add"}, {"path", "members"}, {"value", {{{"value", id}}}}}});
        PatchOps("/Users/" + id, {{{"op", "replace"}, {"path", "title"}, {"value", "T"}}});
        Call("POST", "/Users", json({{"userName", "entra-" + name}}).dump(), {}, "", "entra");
      }
    });
  }
  for (std::thread& t : writers) t.join();
  done = true;
  for (std::thread& t : readers) t.join();

  EXPECT_EQ(read_errors.load(), 0);
  const int total = kWriters * kUsersPerWriter;
  EXPECT_EQ(service_->Counts("okta").first, total);
  EXPECT_EQ(service_->Counts("entra").first, total);
  json members = Call("GET", "/Groups/" + g).body["members"];
  EXPECT_EQ(members.size(), static_cast<size_t>(total));  // no membership PATCH lost
  Answer v = Call("GET", "/Groups/" + g);
  EXPECT_EQ(v.etag, "W/\"" + std::to_string(total + 1) + "\"");
  const Answer users = Call("GET", "/Users", "", {{"count", "50"}});
  ASSERT_EQ(users.body["Resources"].size(), 50u);
  for (const json& u : users.body["Resources"]) {
    EXPECT_EQ(u["title"], "T");
    EXPECT_EQ(u["meta"]["version"], "W/\"2\"");
  }
  EXPECT_EQ(persistence_.Size(), static_cast<size_t>(2 * total + 1));
  // Everything durable: a restart sees the same.
  Start();
  EXPECT_EQ(Call("GET", "/Groups/" + g).body["members"].size(), static_cast<size_t>(total));
}

}  // namespace
}  // namespace idsync::scim
