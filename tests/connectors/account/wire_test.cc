// The account's User JSON as idsync reads it: listing pages and single users,
// as records and in the compact form a plan takes. The two forms must agree.
#include "wire.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "idsync/mapping/catalog.h"
#include "idsync/mapping/ports.h"

namespace idsync::account::wire {
namespace {

using mapping::AccountUser;
using mapping::Level;
using mapping::Role;

const char* const kPage = R"({
  "users": [
    {"id": "u_1", "email": "Ana@corp.example", "name": "Ana Ökafor", "role": "member",
     "status": "active",
     "permissions": {"build": "read", "build.knowledge": "edit", "analytics": "edit",
                     "retired.area": "edit"},
     "projects": ["p_b", "p_a", "p_b"], "created_at": "2026-01-01T00:00:00Z",
     "updated_at": "2026-01-02T00:00:00Z", "extra": {"nested": [1, {"x": null}]}},
    {"id": "u_2", "email": "bo@corp.example", "name": null, "role": "admin",
     "status": "invited", "permissions": null, "projects": null},
    {"id": "u_3", "email": "cy@corp.example", "role": "member"}
  ],
  "total": 3,
  "next_cursor": "c2"
})";

TEST(WireUserPage, RecordsKeepWhatTheAccountStores) {
  Result<UserPage> page = ParseUserPage(kPage);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->users.size(), 3u);
  EXPECT_EQ(page->next_cursor, "c2");
  const mapping::AccountRecord& ana = page->users[0];
  EXPECT_EQ(ana.id, "u_1");
  EXPECT_EQ(ana.email, "Ana@corp.example");
  EXPECT_EQ(ana.name, "Ana Ökafor");
  EXPECT_EQ(ana.role, Role::kMember);
  EXPECT_EQ(ana.status, AccountUser::Status::kActive);
  EXPECT_EQ(ana.permissions.size(), 4u);
  EXPECT_EQ(ana.permissions.at("build.knowledge"), Level::kEdit);
  EXPECT_EQ(ana.permissions.at("retired.area"), Level::kEdit);
  EXPECT_EQ(ana.projects, (std::vector<std::string>{"p_b", "p_a", "p_b"}));
  EXPECT_EQ(ana.created_at, "2026-01-01T00:00:00Z");
  EXPECT_EQ(ana.updated_at, "2026-01-02T00:00:00Z");
  EXPECT_EQ(page->users[1].name, "");
  EXPECT_EQ(page->users[1].role, Role::kAdmin);
  EXPECT_EQ(page->users[1].status, AccountUser::Status::kInvited);
  EXPECT_TRUE(page->users[1].permissions.empty());
  EXPECT_EQ(page->users[2].status, AccountUser::Status::kInvited);
}

TEST(WireUserPage, CompactFormEqualsTheRecordsExpanded) {
  const mapping::Catalog& catalog = mapping::Catalog::Builtin();
  Result<UserPage> records = ParseUserPage(kPage);
  Result<CompactUserPage> compact = ParseCompactUserPage(kPage, catalog);
  ASSERT_TRUE(records.ok()) << records.status().ToString();
  ASSERT_TRUE(compact.ok()) << compact.status().ToString();
  EXPECT_EQ(compact->next_cursor, "c2");
  ASSERT_EQ(compact->users.size(), records->users.size());
  for (std::size_t i = 0; i < compact->users.size(); ++i) {
    AccountUser want = mapping::CompactAccountUser(records->users[i], catalog);
    const AccountUser& got = compact->users[i];
    EXPECT_EQ(got.id, want.id);
    EXPECT_EQ(got.email, want.email);
    EXPECT_EQ(got.name, want.name);
    EXPECT_EQ(got.role, want.role);
    EXPECT_EQ(got.status, want.status);
    EXPECT_EQ(got.levels, want.levels) << got.id;
    EXPECT_EQ(got.projects, want.projects) << got.id;
  }
  // The item key wins over its area whatever the order; unknown keys are
  // skipped; projects come sorted and unique.
  const AccountUser& ana = compact->users[0];
  auto knowledge = catalog.Resolve("build.knowledge");
  auto agent = catalog.Resolve("build.agent");
  ASSERT_TRUE(knowledge && agent);
  EXPECT_EQ(ana.levels[knowledge->begin], Level::kEdit);
  EXPECT_EQ(ana.levels[agent->begin], Level::kRead);
  EXPECT_EQ(ana.projects, (std::vector<std::string>{"p_a", "p_b"}));
}

TEST(WireUserPage, LastPageHasNoCursor) {
  Result<UserPage> page = ParseUserPage(R"({"users": [], "next_cursor": null})");
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_TRUE(page->users.empty());
  EXPECT_FALSE(page->next_cursor.has_value());
  page = ParseUserPage(R"({"users": []})");
  ASSERT_TRUE(page.ok());
  EXPECT_FALSE(page->next_cursor.has_value());
}

// Each malformed answer fails whole, naming the problem, in both forms.
TEST(WireUserPage, MalformedPagesFailNamingTheProblem) {
  const struct {
    const char* body;
    const char* message;
  } cases[] = {
      {R"({"users": [)", "answer is not JSON"},
      {R"(not json)", "answer is not JSON"},
      {R"([1, 2])", "answer is not a JSON object"},
      {R"({"next_cursor": null})", "missing \"users\" array"},
      {R"({"users": {}})", "missing \"users\" array"},
      {R"({"users": [], "users": []})", "\"users\" is given twice"},
      {R"({"users": [], "next_cursor": 5})", "\"next_cursor\" is not a string"},
      {R"({"users": [7]})", "a user is not a JSON object"},
      {R"({"users": [{"email": "a@x", "role": "member"}]})", "missing \"id\""},
      {R"({"users": [{"id": "", "email": "a@x", "role": "member"}]})",
       "a user has an empty \"id\""},
      {R"({"users": [{"id": "u", "role": "member"}]})", "missing \"email\""},
      {R"({"users": [{"id": "u", "email": "a@x"}]})", "missing \"role\""},
      {R"({"users": [{"id": "u", "email": 3, "role": "member"}]})", "\"email\" is not a string"},
      {R"({"users": [{"id": "u", "email": "a@x", "role": "owner"}]})",
       "user u has unknown role \"owner\""},
      {R"({"users": [{"id": "u", "email": "a@x", "role": "member", "status": "gone"}]})",
       "user u has unknown status \"gone\""},
      {R"({"users": [{"permissions": [], "id": "u", "email": "a@x", "role": "member"}]})",
       "user u: permissions not an object"},
      {R"({"users": [{"id": "u", "email": "a@x", "role": "member",
                      "permissions": {"build": "write"}}]})",
       "user u: bad level for \"build\""},
      {R"({"users": [{"id": "u", "email": "a@x", "role": "member",
                      "permissions": {"build": {"level": "read"}}}]})",
       "user u: bad level for \"build\""},
      {R"({"users": [{"id": "u", "email": "a@x", "role": "member", "projects": "p"}]})",
       "\"projects\" is not an array"},
      {R"({"users": [{"id": "u", "email": "a@x", "role": "member", "projects": ["p", 1]}]})",
       "\"projects\" holds a non-string"},
  };
  for (const auto& c : cases) {
    Result<UserPage> records = ParseUserPage(c.body);
    ASSERT_FALSE(records.ok()) << c.body;
    EXPECT_EQ(records.status().message(), c.message) << c.body;
    Result<CompactUserPage> compact = ParseCompactUserPage(c.body, mapping::Catalog::Builtin());
    ASSERT_FALSE(compact.ok()) << c.body;
    EXPECT_EQ(compact.status().message(), c.message) << c.body;
  }
}

TEST(WireUser, OneUserIsTheWholeBody) {
  Result<mapping::AccountRecord> user = ParseUser(
      R"({"id": "u_9", "email": "z@corp.example", "role": "member", "status": "active",
          "permissions": {"channels": "read"}, "projects": []})");
  ASSERT_TRUE(user.ok()) << user.status().ToString();
  EXPECT_EQ(user->id, "u_9");
  EXPECT_EQ(user->permissions.at("channels"), Level::kRead);
  EXPECT_FALSE(ParseUser(R"({"users": []})").ok());
  EXPECT_FALSE(ParseUser(R"("u_9")").ok());
  EXPECT_FALSE(ParseUser(R"({"id": "u_9", "email": "z@x", "role": "member"} {})").ok());
}

}  // namespace
}  // namespace idsync::account::wire
