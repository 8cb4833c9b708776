// Replays, over real loopback HTTP, the request sequences Okta and Microsoft
// Entra ID send (issue #5, "What the IdPs really send") against the real
// endpoint, service and SQLite store, and checks every answer and what the
// service reports as changed (the ScimChange the daemon consumes: whom a
// write touched). The same sequences replayed through the running idsyncd,
// checking what reaches the account, are in tests/e2e/idp_replay_test.cc.
#include <algorithm>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "scim_harness.h"

namespace idsync::scim::testing {
namespace {

using nlohmann::json;

constexpr char kOkta[] = "okta-token";
constexpr char kEntra[] = "entra-token";
constexpr char kUserSchema[] = "urn:ietf:params:scim:schemas:core:2.0:User";
constexpr char kGroupSchema[] = "urn:ietf:params:scim:schemas:core:2.0:Group";
constexpr char kPatchSchema[] = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
constexpr char kListSchema[] = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
constexpr char kEnterprise[] = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

class ReplayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<ScimHarness>> h = ScimHarness::Start(HarnessOptions{});
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    h_ = std::move(h).value();
  }

  // Sends and parses; the body is null for an empty answer.
  json Send(const std::string& token, const std::string& method, const std::string& target,
            const json& body, int want_status) {
    const HttpReply r = h_->Call(method, "/scim/v2" + target, token,
                                 body.is_null() ? "" : body.dump(), "application/scim+json");
    EXPECT_EQ(r.status, want_status) << method << " " << target << "\n" << r.body;
    if (!r.body.empty()) {
      EXPECT_EQ(r.Header("content-type").rfind("application/scim+json", 0), 0u);
    }
    if (r.body.empty()) return nullptr;
    json parsed = json::parse(r.body, nullptr, false);
    EXPECT_FALSE(parsed.is_discarded()) << r.body;
    return parsed;
  }

  json Get(const std::string& token, const std::string& target, int want = 200) {
    return Send(token, "GET", target, nullptr, want);
  }

  // PATCH answers 200 with the resource or 204; either way the state is read back.
  json Patch(const std::string& token, const std::string& target, const json& ops) {
    const HttpReply r = h_->Call("PATCH", "/scim/v2" + target, token,
                                 json{{"schemas", {kPatchSchema}}, {"Operations", ops}}.dump());
    EXPECT_TRUE(r.status == 200 || r.status == 204) << target << " " << r.status << "\n" << r.body;
    return Get(token, target);
  }

  static std::set<std::string> MemberIds(const json& group) {
    std::set<std::string> ids;
    for (const json& m : group.value("members", json::array())) ids.insert(m.value("value", ""));
    return ids;
  }

  static std::string Filter(const std::string& f) { return "filter=" + UrlEncode(f); }

  std::set<std::string> ChangedEmailsSince(std::size_t first) const {
    std::set<std::string> out;
    const std::vector<ScimChange> changes = h_->Changes();
    for (std::size_t i = first; i < changes.size(); ++i) {
      out.insert(changes[i].emails.begin(), changes[i].emails.end());
    }
    return out;
  }

  json OktaUser(const std::string& login, const std::string& given, bool active) {
    return {{"schemas", {kUserSchema}},
            {"userName", login},
            {"name", {{"givenName", given}, {"familyName", "Okta"}}},
            {"emails", {{{"primary", true}, {"value", login}, {"type", "work"}}}},
            {"displayName", given + " Okta"},
            {"locale", "en-US"},
            {"externalId", "00u" + given},
            {"groups", json::array()},
            {"password", "Okta-Sent-Pa55word"},
            {"active", active}};
  }

  std::unique_ptr<ScimHarness> h_;
};

TEST_F(ReplayTest, OktaUserLifecycle) {
  // Okta looks the user up before creating it: absent is an empty list.
  const std::string lookup =
      "/Users?" + Filter("userName eq \"ada@corp.test\"") + "&startIndex=1&count=100";
  json list = Get(kOkta, lookup);
  EXPECT_EQ(list["schemas"], json::array({kListSchema}));
  EXPECT_EQ(list["totalResults"], 0);
  EXPECT_EQ(list.value("Resources", json::array()).size(), 0u);

  // Create with password and groups: []; the password never comes back.
  const HttpReply created =
      h_->Call("POST", "/scim/v2/Users", kOkta, OktaUser("ada@corp.test", "Ada", true).dump());
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.body.find("Okta-Sent-Pa55word"), std::string::npos);
  EXPECT_FALSE(created.Header("location").empty());
  EXPECT_FALSE(created.Header("etag").empty());
  const json user = json::parse(created.body);
  const std::string id = user["id"];
  EXPECT_EQ(user["userName"], "ada@corp.test");
  EXPECT_EQ(user["active"], true);
  EXPECT_EQ(user["externalId"], "00uAda");
  EXPECT_EQ(user["meta"]["resourceType"], "User");
  EXPECT_EQ(user["meta"]["location"], created.Header("location"));
  EXPECT_EQ(ChangedEmailsSince(0), std::set<std::string>{"ada@corp.test"});

  list = Get(kOkta, lookup);
  ASSERT_EQ(list["totalResults"], 1);
  EXPECT_EQ(list["Resources"][0]["id"], id);
  EXPECT_EQ(list["Resources"][0].dump().find("Pa55word"), std::string::npos);

  // Deactivate: path-less replace of {"active": false}.
  std::size_t mark = h_->Changes().size();
  json after = Patch(kOkta, "/Users/" + id, {{{"op", "replace"}, {"value", {{"active", false}}}}});
  EXPECT_EQ(after["active"], false);
  EXPECT_EQ(after["userName"], "ada@corp.test");
  EXPECT_EQ(ChangedEmailsSince(mark), std::set<std::string>{"ada@corp.test"});

  // Reactivate by PUT of the whole user (Okta sends the password again).
  mark = h_->Changes().size();
  const json put = Send(kOkta, "PUT", "/Users/" + id, OktaUser("ada@corp.test", "Ada", true), 200);
  EXPECT_EQ(put["active"], true);
  EXPECT_EQ(put["id"], id);
  EXPECT_EQ(put.dump().find("Pa55word"), std::string::npos);
  EXPECT_EQ(Get(kOkta, "/Users/" + id)["active"], true);
  EXPECT_EQ(ChangedEmailsSince(mark), std::set<std::string>{"ada@corp.test"});

  // Deactivation by PUT works too.
  EXPECT_EQ(
      Send(kOkta, "PUT", "/Users/" + id, OktaUser("ada@corp.test", "Ada", false), 200)["active"],
      false);

  // Nothing of the password reached the store.
  Result<std::vector<store::ScimResourceRow>> rows = h_->store().scim().List("okta");
  ASSERT_TRUE(rows.ok());
  ASSERT_FALSE(rows->empty()) << "ada is not in the store: nothing was checked";
  bool ada_stored = false;
  for (const auto& row : *rows) {
    EXPECT_EQ(row.json.find("Pa55word"), std::string::npos);
    ada_stored = ada_stored || row.json.find("ada@corp.test") != std::string::npos;
  }
  EXPECT_TRUE(ada_stored);
}

TEST_F(ReplayTest, OktaImportPagesThroughEveryUserOnce) {
  std::set<std::string> created;
  for (int i = 0; i < 7; ++i) {
    const std::string login = "user" + std::to_string(i) + "@corp.test";
    created.insert(
        Send(kOkta, "POST", "/Users", OktaUser(login, "U" + std::to_string(i), true), 201)["id"]);
  }
  std::vector<std::string> seen;
  for (int start = 1; start <= 7; start += 3) {
    const json page = Get(kOkta, "/Users?startIndex=" + std::to_string(start) + "&count=3");
    EXPECT_EQ(page["totalResults"], 7);
    EXPECT_EQ(page["startIndex"], start);
    EXPECT_EQ(page["itemsPerPage"], std::min(3, 8 - start));
    for (const json& u : page["Resources"]) seen.push_back(u["id"]);
  }
  EXPECT_EQ(seen.size(), 7u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), created);
  // The order is stable: the same pages again give the same ids.
  std::vector<std::string> again;
  for (int start = 1; start <= 7; start += 3) {
    const json page = Get(kOkta, "/Users?startIndex=" + std::to_string(start) + "&count=3");
    for (const json& u : page["Resources"]) again.push_back(u["id"]);
  }
  EXPECT_EQ(again, seen);
}

TEST_F(ReplayTest, OktaGroupPush) {
  std::vector<std::string> users;
  for (const std::string name : {"a", "b", "c"}) {
    users.push_back(
        Send(kOkta, "POST", "/Users", OktaUser(name + "@corp.test", name, true), 201)["id"]);
  }
  // Push creates the group empty.
  const json group = Send(
      kOkta, "POST", "/Groups",
      {{"schemas", {kGroupSchema}}, {"displayName", "Engineering"}, {"members", json::array()}},
      201);
  const std::string gid = group["id"];
  EXPECT_TRUE(MemberIds(group).empty());

  // Rename: path-less replace whose value carries the read-only id.
  json after =
      Patch(kOkta, "/Groups/" + gid,
            {{{"op", "replace"}, {"value", {{"id", gid}, {"displayName", "Engineering EU"}}}}});
  EXPECT_EQ(after["displayName"], "Engineering EU");
  EXPECT_EQ(after["id"], gid);

  after = Patch(
      kOkta, "/Groups/" + gid,
      {{{"op", "add"},
        {"path", "members"},
        {"value",
         {{{"value", users[0]}, {"display", "a"}}, {{"value", users[1]}, {"display", "b"}}}}}});
  EXPECT_EQ(MemberIds(after), (std::set<std::string>{users[0], users[1]}));

  // One PATCH: remove one member by value filter, add another.
  std::size_t mark = h_->Changes().size();
  after = Patch(
      kOkta, "/Groups/" + gid,
      {{{"op", "remove"}, {"path", "members[value eq \"" + users[0] + "\"]"}},
       {{"op", "add"}, {"path", "members"}, {"value", {{{"value", users[2]}, {"display", "c"}}}}}});
  EXPECT_EQ(MemberIds(after), (std::set<std::string>{users[1], users[2]}));
  const std::set<std::string> touched = ChangedEmailsSince(mark);
  EXPECT_TRUE(touched.count("a@corp.test")) << "the removed member must be re-evaluated";
  EXPECT_TRUE(touched.count("c@corp.test")) << "the added member must be re-evaluated";

  // "Push now" replaces the members whole.
  after = Patch(kOkta, "/Groups/" + gid,
                {{{"op", "replace"}, {"path", "members"}, {"value", {{{"value", users[0]}}}}}});
  EXPECT_EQ(MemberIds(after), std::set<std::string>{users[0]});
  const json put = Send(kOkta, "PUT", "/Groups/" + gid,
                        {{"schemas", {kGroupSchema}},
                         {"id", gid},
                         {"displayName", "Engineering EU"},
                         {"members", {{{"value", users[1]}}, {{"value", users[2]}}}}},
                        200);
  EXPECT_EQ(MemberIds(put), (std::set<std::string>{users[1], users[2]}));

  mark = h_->Changes().size();
  EXPECT_TRUE(Send(kOkta, "DELETE", "/Groups/" + gid, nullptr, 204).is_null());
  Get(kOkta, "/Groups/" + gid, 404);
  const std::set<std::string> dropped = ChangedEmailsSince(mark);
  EXPECT_TRUE(dropped.count("b@corp.test") && dropped.count("c@corp.test"));
  // Deleting the group leaves its users.
  for (const std::string& u : users) Get(kOkta, "/Users/" + u);
}

json EntraUser(const std::string& upn, const std::string& external_id) {
  return {
      {"schemas", {kUserSchema, kEnterprise}},
      {"externalId", external_id},
      {"userName", upn},
      {"active", true},
      {"displayName", "Grace Hopper"},
      {"name", {{"formatted", "Grace Hopper"}, {"familyName", "Hopper"}, {"givenName", "Grace"}}},
      {"emails", {{{"primary", true}, {"type", "work"}, {"value", upn}}}},
      {"title", "Rear Admiral"},
      {kEnterprise, {{"employeeNumber", "1906"}, {"department", "Navy"}}}};
}

TEST_F(ReplayTest, EntraTestConnectionFindsNothing) {
  const json list =
      Get(kEntra, "/Users?" + Filter("userName eq \"b5c9b4d2-84e1-4fd5-9dc3-4a35f7d1e0a3\""));
  EXPECT_EQ(list["totalResults"], 0);
  EXPECT_EQ(list["schemas"], json::array({kListSchema}));
}

TEST_F(ReplayTest, EntraUserDialect) {
  const json created =
      Send(kEntra, "POST", "/Users?aadOptscim062020", EntraUser("grace@corp.test", "gh-1906"), 201);
  const std::string id = created["id"];
  EXPECT_EQ(created[kEnterprise]["department"], "Navy");

  // Lookups by userName (any case), externalId, and the work e-mail.
  for (const std::string f : {"userName eq \"GRACE@corp.test\"", "externalId eq \"gh-1906\"",
                              "emails[type eq \"work\"].value eq \"grace@corp.test\""}) {
    const json list = Get(kEntra, "/Users?aadOptscim062020&" + Filter(f));
    ASSERT_EQ(list["totalResults"], 1) << f;
    EXPECT_EQ(list["Resources"][0]["id"], id) << f;
  }

  // Capitalised ops, booleans as strings.
  json after =
      Patch(kEntra, "/Users/" + id, {{{"op", "Replace"}, {"path", "active"}, {"value", "False"}}});
  EXPECT_EQ(after["active"], false);
  after =
      Patch(kEntra, "/Users/" + id, {{{"op", "Replace"}, {"path", "active"}, {"value", "True"}}});
  EXPECT_EQ(after["active"], true);

  // Path-less replace with dotted and URN-qualified keys.
  after = Patch(kEntra, "/Users/" + id,
                {{{"op", "Replace"},
                  {"value",
                   {{"name.givenName", "Amazing Grace"},
                    {std::string(kEnterprise) + ":department", "Computing"}}}}});
  EXPECT_EQ(after["name"]["givenName"], "Amazing Grace");
  EXPECT_EQ(after["name"]["familyName"], "Hopper");
  EXPECT_EQ(after[kEnterprise]["department"], "Computing");
  EXPECT_EQ(after[kEnterprise]["employeeNumber"], "1906");

  // Add on a value path that matches nothing creates the element.
  after = Patch(
      kEntra, "/Users/" + id,
      {{{"op", "Add"}, {"path", "emails[type eq \"home\"].value"}, {"value", "grace@home.test"}}});
  bool home = false, work = false;
  for (const json& e : after["emails"]) {
    if (e.value("type", "") == "home" && e.value("value", "") == "grace@home.test") home = true;
    if (e.value("type", "") == "work" && e.value("value", "") == "grace@corp.test") work = true;
  }
  EXPECT_TRUE(home) << after["emails"].dump();
  EXPECT_TRUE(work) << after["emails"].dump();

  // Manager as a bare string and as an object.
  const std::string manager_path = std::string(kEnterprise) + ":manager";
  after =
      Patch(kEntra, "/Users/" + id, {{{"op", "Add"}, {"path", manager_path}, {"value", "m-1"}}});
  EXPECT_EQ(after[kEnterprise]["manager"]["value"], "m-1");
  after = Patch(kEntra, "/Users/" + id,
                {{{"op", "Replace"}, {"path", manager_path}, {"value", {{"value", "m-2"}}}}});
  EXPECT_EQ(after[kEnterprise]["manager"]["value"], "m-2");

  // Entra disables (and finally deletes) users.
  Send(kEntra, "DELETE", "/Users/" + id, nullptr, 204);
  Get(kEntra, "/Users/" + id, 404);
  EXPECT_EQ(Get(kEntra, "/Users?" + Filter("externalId eq \"gh-1906\""))["totalResults"], 0);
}

// Every attribute Entra's default user mapping sends, each by Add and by
// Replace, to a user that has the value and to one that has not. Entra sends
// filtered paths whether or not a value matches: each must be answered 2xx
// and end with the value in place (a refusal would cost the whole PATCH, a
// deactivation in it included).
struct EntraShape {
  std::string path;          // as Entra's default mapping writes it
  json value;                // what Entra sends
  json::json_pointer where;  // where the value ends up in the resource
  json before;               // a user that has a value there: the resource member
  std::string member;        // the member `before` sets
};

std::vector<EntraShape> EntraShapes() {
  using P = json::json_pointer;
  const std::string ext = kEnterprise;
  std::vector<EntraShape> shapes;
  for (const std::string type : {"work", "mobile", "fax"}) {
    shapes.push_back({"phoneNumbers[type eq \"" + type + "\"].value", "+1 555 01" + type,
                      P("/phoneNumbers/0/value"),
                      json::array({{{"type", type}, {"value", "+1 555 0000"}}}), "phoneNumbers"});
  }
  for (const std::string sub :
       {"formatted", "streetAddress", "locality", "region", "postalCode", "country"}) {
    shapes.push_back({"addresses[type eq \"work\"]." + sub, sub + " new", P("/addresses/0/" + sub),
                      json::array({{{"type", "work"}, {sub, sub + " old"}}}), "addresses"});
  }
  shapes.push_back({"title", "Staff Engineer", P("/title"), "Engineer", "title"});
  shapes.push_back(
      {"preferredLanguage", "pt-PT", P("/preferredLanguage"), "en-US", "preferredLanguage"});
  for (const std::string attr :
       {"costCenter", "organization", "division", "department", "employeeNumber"}) {
    shapes.push_back({ext + ":" + attr, attr + " new", P("/" + ext + "/" + attr),
                      json{{attr, attr + " old"}}, ext});
  }
  shapes.push_back({"emails[type eq \"work\"].value", "grace.h@corp.test", P("/emails/0/value"),
                    json::array({{{"type", "work"}, {"value", "old@corp.test"}}}), "emails"});
  shapes.push_back(
      {"name.givenName", "Grace", P("/name/givenName"), json{{"givenName", "G"}}, "name"});
  shapes.push_back(
      {"name.familyName", "Hopper", P("/name/familyName"), json{{"familyName", "H"}}, "name"});
  shapes.push_back({"displayName", "Grace Hopper", P("/displayName"), "GH", "displayName"});
  shapes.push_back({"externalId", "gh-2", P("/externalId"), "gh-1", "externalId"});
  return shapes;
}

TEST_F(ReplayTest, EntraDefaultMappingShapesWithAndWithoutAValue) {
  int n = 0;
  for (const EntraShape& shape : EntraShapes()) {
    for (const std::string op : {"Add", "Replace"}) {
      for (const bool has_value : {false, true}) {
        SCOPED_TRACE(op + " " + shape.path + (has_value ? " (has a value)" : " (has none)"));
        const std::string upn = "shape" + std::to_string(++n) + "@corp.test";
        json user = {{"schemas", {kUserSchema}}, {"userName", upn}, {"active", true}};
        if (has_value) {
          if (shape.member == kEnterprise) user["schemas"].push_back(kEnterprise);
          user[shape.member] = shape.before;
        }
        const json created = Send(kEntra, "POST", "/Users?aadOptscim062020", user, 201);
        const std::string id = created.value("id", "");
        ASSERT_FALSE(id.empty());
        // With the deactivation Entra sends in the same cycle.
        const json after = Patch(kEntra, "/Users/" + id,
                                 {{{"op", op}, {"path", shape.path}, {"value", shape.value}},
                                  {{"op", "Replace"}, {"path", "active"}, {"value", "False"}}});
        ASSERT_TRUE(after.contains(shape.where)) << after.dump();
        EXPECT_EQ(after[shape.where], shape.value) << after.dump();
        EXPECT_EQ(after["active"], false);
        if (shape.path.find('[') != std::string::npos) {
          const std::string attr = shape.path.substr(0, shape.path.find('['));
          EXPECT_EQ(after[attr].size(), 1u) << "one value, found or made: " << after.dump();
          EXPECT_FALSE(after[attr][0].contains("primary")) << after.dump();
        }
      }
    }
  }
  // Entra removes a value cleared in the directory.
  const json created = Send(
      kEntra, "POST", "/Users",
      {{"userName", "cleared@corp.test"},
       {"phoneNumbers", {{{"type", "mobile"}, {"value", "1"}}, {{"type", "fax"}, {"value", "2"}}}}},
      201);
  const json after = Patch(kEntra, "/Users/" + created.value("id", ""),
                           {{{"op", "Remove"}, {"path", "phoneNumbers[type eq \"mobile\"]"}},
                            {{"op", "Remove"}, {"path", "addresses[type eq \"work\"]"}}});
  EXPECT_EQ(after["phoneNumbers"], json::parse(R"([{"type": "fax", "value": "2"}])"));
}

// The PATCH of issue #11: Entra disables a person whose mobile and office
// were filled in since the last cycle. Answered 2xx, the person disabled.
TEST_F(ReplayTest, EntraDeltaWithNewValuesStillDisables) {
  const std::string id =
      Send(kEntra, "POST", "/Users?aadOptscim062020", EntraUser("maya@corp.test", "m-1"), 201)
          .value("id", "");
  const std::size_t mark = h_->Changes().size();
  const json after = Patch(kEntra, "/Users/" + id, json::parse(R"([
        {"op":"Replace","path":"phoneNumbers[type eq \"mobile\"].value","value":"+1 555 0142"},
        {"op":"Replace","path":"addresses[type eq \"work\"].locality","value":"Lisbon"},
        {"op":"Replace","path":"active","value":"False"}])"));
  EXPECT_EQ(after["active"], false);
  EXPECT_EQ(after["phoneNumbers"][0]["value"], "+1 555 0142");
  EXPECT_EQ(after["addresses"][0]["locality"], "Lisbon");
  EXPECT_EQ(ChangedEmailsSince(mark), std::set<std::string>{"maya@corp.test"});
}

TEST_F(ReplayTest, OktaProfilePutKeepsOrChangesTheAddressAsSent) {
  json user = OktaUser("kai@corp.test", "Kai", true);
  const std::string id = Send(kOkta, "POST", "/Users", user, 201).value("id", "");
  // A profile update: Okta PUTs the whole user, password and id included.
  user["id"] = id;
  user["name"]["familyName"] = "Okta-Renamed";
  user["displayName"] = "Kai Renamed";
  user["phoneNumbers"] = {{{"type", "mobile"}, {"value", "+1 555 0199"}}};
  user["title"] = "Lead";
  std::size_t mark = h_->Changes().size();
  json put = Send(kOkta, "PUT", "/Users/" + id, user, 200);
  EXPECT_EQ(put["displayName"], "Kai Renamed");
  EXPECT_EQ(put["phoneNumbers"][0]["value"], "+1 555 0199");
  EXPECT_EQ(put.dump().find("Pa55word"), std::string::npos);
  EXPECT_EQ(ChangedEmailsSince(mark), std::set<std::string>{"kai@corp.test"});
  // The same PUT again changes nothing and reports nobody.
  mark = h_->Changes().size();
  Send(kOkta, "PUT", "/Users/" + id, user, 200);
  EXPECT_TRUE(ChangedEmailsSince(mark).empty());
  // A new address in a PUT is the IdP's word: the old and the new are touched.
  user["emails"] = {{{"primary", true}, {"value", "kai.new@corp.test"}, {"type", "work"}}};
  mark = h_->Changes().size();
  Send(kOkta, "PUT", "/Users/" + id, user, 200);
  EXPECT_EQ(ChangedEmailsSince(mark),
            (std::set<std::string>{"kai.new@corp.test", "kai@corp.test"}));
}

TEST_F(ReplayTest, EntraGroupDialect) {
  const std::string u1 = Send(kEntra, "POST", "/Users", EntraUser("u1@corp.test", "e1"), 201)["id"];
  const std::string u2 = Send(kEntra, "POST", "/Users", EntraUser("u2@corp.test", "e2"), 201)["id"];
  const std::string u3 = Send(kEntra, "POST", "/Users", EntraUser("u3@corp.test", "e3"), 201)["id"];
  const json group = Send(kEntra, "POST", "/Groups",
                          {{"schemas", {kGroupSchema}},
                           {"externalId", "g-ext"},
                           {"displayName", "Finance"},
                           {"members", {{{"value", u1}}}}},
                          201);
  const std::string gid = group["id"];

  // Adding members, one of them already there, is a no-op for that one.
  json after = Patch(kEntra, "/Groups/" + gid,
                     {{{"op", "Add"},
                       {"path", "members"},
                       {"value", {{{"value", u1}}, {{"value", u2}}, {{"value", u3}}}}}});
  EXPECT_EQ(after["members"].size(), 3u) << after["members"].dump();
  EXPECT_EQ(MemberIds(after), (std::set<std::string>{u1, u2, u3}));

  // Remove on members with a value array removes only those.
  after = Patch(kEntra, "/Groups/" + gid,
                {{{"op", "Remove"}, {"path", "members"}, {"value", {{{"value", u2}}}}}});
  EXPECT_EQ(MemberIds(after), (std::set<std::string>{u1, u3}));

  // Lists without members, and a single group without members.
  const json list =
      Get(kEntra, "/Groups?excludedAttributes=members&" + Filter("displayName eq \"Finance\""));
  ASSERT_EQ(list["totalResults"], 1);
  EXPECT_FALSE(list["Resources"][0].contains("members"));
  EXPECT_EQ(list["Resources"][0]["displayName"], "Finance");
  EXPECT_FALSE(Get(kEntra, "/Groups/" + gid + "?excludedAttributes=members").contains("members"));
  EXPECT_EQ(Get(kEntra, "/Groups?" + Filter("externalId eq \"g-ext\""))["totalResults"], 1);

  // Okta's token cannot see Entra's group.
  Get(kOkta, "/Groups/" + gid, 404);
  EXPECT_EQ(Get(kOkta, "/Groups")["totalResults"], 0);
}

}  // namespace
}  // namespace idsync::scim::testing
