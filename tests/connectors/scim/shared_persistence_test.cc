// Two SCIM services on one persistence, as replicas on one store: a write
// the persistence refuses because the other got there first is applied
// again to what the other stored, so that neither write is lost; a change
// the other made is taken in (Absorb) with whom it touched.
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "idsync/scim/service.h"

namespace idsync::scim {
namespace {

using nlohmann::json;

// Keeps what was stored and writes version N only over N - 1, as the
// store's PutIf does.
class SharedPersistence : public ResourcePersistence {
 public:
  Status Put(const StoredResource& r) override {
    std::lock_guard lock(mu_);
    ++puts;
    auto it = rows_.find({r.source, r.type, r.id});
    const std::int64_t held = it == rows_.end() ? 0 : it->second.version;
    if (held != r.version - 1) {
      ++refused;
      return AbortedError("another writer changed it first");
    }
    rows_[{r.source, r.type, r.id}] = r;
    return Status::Ok();
  }
  Status Delete(const std::string& source, const std::string& type,
                const std::string& id) override {
    std::lock_guard lock(mu_);
    rows_.erase({source, type, id});
    return Status::Ok();
  }
  Result<std::vector<StoredResource>> LoadAll(const std::string& source) override {
    std::lock_guard lock(mu_);
    std::vector<StoredResource> out;
    for (const auto& [key, r] : rows_) {
      if (r.source == source) out.push_back(r);
    }
    return out;
  }
  // Get is the port's default (from LoadAll).

  std::optional<StoredResource> Row(const std::string& type, const std::string& id) {
    std::lock_guard lock(mu_);
    auto it = rows_.find({"okta", type, id});
    if (it == rows_.end()) return std::nullopt;
    return it->second;
  }
  void Set(const StoredResource& r) {
    std::lock_guard lock(mu_);
    rows_[{r.source, r.type, r.id}] = r;
  }

  int puts = 0;
  int refused = 0;

 private:
  std::mutex mu_;
  std::map<std::tuple<std::string, std::string, std::string>, StoredResource> rows_;
};

class Replica {
 public:
  explicit Replica(SharedPersistence& persistence) {
    ServiceOptions options;
    options.sources = {"okta"};
    options.now = [] { return 1764298800000; };
    Result<std::unique_ptr<ScimService>> s = ScimService::Create(
        options, persistence, [this](const ScimChange& c) { changes.push_back(c); });
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    service = std::move(s).value();
  }

  ScimResponse Call(const std::string& method, const std::string& path, const json& body = {}) {
    ScimRequest req;
    req.source = "okta";
    req.method = method;
    req.path = path;
    if (!body.is_null()) req.body = body.dump();
    req.content_type = "application/scim+json";
    req.base_url = "https://idp.example/scim/v2";
    return service->Handle(req);
  }

  std::unique_ptr<ScimService> service;
  std::vector<ScimChange> changes;
};

json User(const std::string& name, const std::string& email) {
  return {{"schemas", {"urn:ietf:params:scim:schemas:core:2.0:User"}},
          {"userName", name},
          {"active", true},
          {"emails", {{{"value", email}, {"primary", true}, {"type", "work"}}}}};
}

json Replace(const std::string& path, const json& value) {
  return {{"schemas", {"urn:ietf:params:scim:api:messages:2.0:PatchOp"}},
          {"Operations", {{{"op", "replace"}, {"path", path}, {"value", value}}}}};
}

TEST(SharedPersistenceTest, AChangeOfTheOtherReplicaIsTakenInWithWhomItTouched) {
  SharedPersistence store;
  Replica a(store), b(store);
  ScimResponse created = a.Call("POST", "/Users", User("ann", "Ann@corp.example"));
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = json::parse(created.body)["id"];
  EXPECT_EQ(b.Call("GET", "/Users/" + id).status, 404);

  ASSERT_TRUE(b.service->Absorb("okta", "User", id, store.Row("User", id)).ok());
  EXPECT_EQ(b.Call("GET", "/Users/" + id).status, 200);
  ASSERT_EQ(b.changes.size(), 1u);
  EXPECT_EQ(b.changes[0].method, "POST");
  EXPECT_EQ(b.changes[0].emails, std::vector<std::string>{"ann@corp.example"});
  EXPECT_EQ(b.service->Snapshot("okta").users.size(), 1u);

  // Its own write coming back, or an older one, is no change.
  ASSERT_TRUE(a.service->Absorb("okta", "User", id, store.Row("User", id)).ok());
  ASSERT_TRUE(b.service->Absorb("okta", "User", id, store.Row("User", id)).ok());
  EXPECT_EQ(a.changes.size(), 1u);  // its POST only
  EXPECT_EQ(b.changes.size(), 1u);

  // A deletion there is one here too.
  ASSERT_EQ(a.Call("DELETE", "/Users/" + id).status, 204);
  ASSERT_TRUE(b.service->Absorb("okta", "User", id, std::nullopt).ok());
  EXPECT_EQ(b.Call("GET", "/Users/" + id).status, 404);
  ASSERT_EQ(b.changes.size(), 2u);
  EXPECT_EQ(b.changes[1].method, "DELETE");
  // Gone already: no change.
  ASSERT_TRUE(b.service->Absorb("okta", "User", id, std::nullopt).ok());
  EXPECT_EQ(b.changes.size(), 2u);
}

TEST(SharedPersistenceTest, TwoReplicasPatchingOneUserLoseNeitherChange) {
  SharedPersistence store;
  Replica a(store), b(store);
  ScimResponse created = a.Call("POST", "/Users", User("ann", "ann@corp.example"));
  const std::string id = json::parse(created.body)["id"];
  ASSERT_TRUE(b.service->Absorb("okta", "User", id, store.Row("User", id)).ok());

  // a writes version 2; b, not yet told, patches version 1 and is refused
  // by the store, reads version 2 and applies its PATCH to that.
  ASSERT_EQ(a.Call("PATCH", "/Users/" + id, Replace("displayName", "Ann A")).status, 204);
  const int refused_before = store.refused;
  ScimResponse patched = b.Call("PATCH", "/Users/" + id, Replace("title", "Engineer"));
  EXPECT_EQ(patched.status, 204) << patched.body;
  EXPECT_EQ(store.refused, refused_before + 1);

  std::optional<StoredResource> row = store.Row("User", id);
  ASSERT_TRUE(row.has_value());
  EXPECT_EQ(row->version, 3);
  json stored = json::parse(row->json);
  EXPECT_EQ(stored["displayName"], "Ann A");
  EXPECT_EQ(stored["title"], "Engineer");
  // b's view holds what it answered from.
  json seen = json::parse(b.Call("GET", "/Users/" + id).body);
  EXPECT_EQ(seen["displayName"], "Ann A");
  EXPECT_EQ(seen["title"], "Engineer");
}

TEST(SharedPersistenceTest, APutOverAVersionItDidNotSeeIsDecidedAgainstTheNewOne) {
  SharedPersistence store;
  Replica a(store), b(store);
  ScimResponse created = a.Call("POST", "/Users", User("ann", "ann@corp.example"));
  const std::string id = json::parse(created.body)["id"];
  ASSERT_TRUE(b.service->Absorb("okta", "User", id, store.Row("User", id)).ok());
  ASSERT_EQ(a.Call("PATCH", "/Users/" + id, Replace("active", false)).status, 204);
  // b replaces with the body a just wrote: against version 2 it changes
  // nothing, and nothing more is stored.
  json same = json::parse(store.Row("User", id)->json);
  same.erase("meta");
  ScimResponse put = b.Call("PUT", "/Users/" + id, same);
  EXPECT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(store.Row("User", id)->version, 2);
}

TEST(SharedPersistenceTest, AnUnreadableChangeIsRefusedAndTheViewKept) {
  SharedPersistence store;
  Replica a(store), b(store);
  ScimResponse created = a.Call("POST", "/Users", User("ann", "ann@corp.example"));
  const std::string id = json::parse(created.body)["id"];
  ASSERT_TRUE(b.service->Absorb("okta", "User", id, store.Row("User", id)).ok());
  StoredResource damaged = *store.Row("User", id);
  damaged.json = "{not json";
  damaged.version = 2;
  EXPECT_EQ(b.service->Absorb("okta", "User", id, damaged).code(), StatusCode::kDataLoss);
  EXPECT_EQ(b.Call("GET", "/Users/" + id).status, 200);
  StoredResource other_id = *store.Row("User", id);
  other_id.version = 3;
  EXPECT_EQ(b.service->Absorb("okta", "User", "someone-else", other_id).code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(b.service->Absorb("okta", "Printer", id, std::nullopt).code(),
            StatusCode::kInvalidArgument);
  // A source this service does not serve is not its business.
  EXPECT_TRUE(b.service->Absorb("entra", "User", id, std::nullopt).ok());
}

TEST(SharedPersistenceTest, AWriterThatKeepsLosingIsAnswered503AndNothingChanges) {
  // A persistence that refuses every update, as if another replica always
  // got there first.
  class Contended : public SharedPersistence {
   public:
    Status Put(const StoredResource& r) override {
      if (r.version > 1) {
        // The other replica's write lands first, every time.
        StoredResource theirs = *Row(r.type, r.id);
        theirs.version = r.version;
        Set(theirs);
      }
      return SharedPersistence::Put(r);
    }
  };
  Contended store;
  Replica a(store);
  ScimResponse created = a.Call("POST", "/Users", User("ann", "ann@corp.example"));
  const std::string id = json::parse(created.body)["id"];
  ScimResponse patched = a.Call("PATCH", "/Users/" + id, Replace("title", "Engineer"));
  EXPECT_EQ(patched.status, 503) << patched.body;
  EXPECT_FALSE(json::parse(store.Row("User", id)->json).contains("title"));
}

}  // namespace
}  // namespace idsync::scim
