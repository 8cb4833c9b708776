// The account port's defaults: what an adapter gets without overriding them.

#include "idsync/mapping/ports.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "idsync/mapping/catalog.h"
#include "idsync/testing/status_matchers.h"

namespace idsync::mapping {
namespace {

// Lists fixed records; everything else is out of scope here.
class FixedAccount : public AccountDirectory {
 public:
  explicit FixedAccount(std::vector<AccountRecord> records) : records_(std::move(records)) {}
  Result<Catalog> GetCatalog() override { return Catalog::Builtin(); }
  Result<std::vector<Project>> ListProjects() override { return std::vector<Project>{}; }
  Result<std::vector<AccountRecord>> ListUsers() override {
    if (fail_) return UnavailableError("account unreachable");
    return records_;
  }
  Result<AccountRecord> GetUser(const std::string&) override { return NotFoundError("no"); }
  Result<AccountRecord> Write(const AccountWrite&) override { return UnavailableError("no"); }
  bool fail_ = false;

 private:
  std::vector<AccountRecord> records_;
};

AccountRecord Record(std::string id, PermissionSpec permissions,
                     std::vector<std::string> projects) {
  AccountRecord r;
  r.id = id;
  r.email = id + "@corp.example";
  r.name = "Name " + id;
  r.role = Role::kMember;
  r.status = AccountUser::Status::kActive;
  r.permissions = std::move(permissions);
  r.projects = std::move(projects);
  return r;
}

TEST(CompactAccountUser, ExpandsThroughTheCatalogAndSortsProjects) {
  const Catalog& catalog = Catalog::Builtin();
  AccountUser u = CompactAccountUser(
      Record("u1",
             {{"build", Level::kRead}, {"build.knowledge", Level::kEdit}, {"gone.x", Level::kEdit}},
             {"p2", "p1", "p2"}),
      catalog);
  EXPECT_EQ(u.id, "u1");
  EXPECT_EQ(u.email, "u1@corp.example");
  EXPECT_EQ(u.status, AccountUser::Status::kActive);
  EXPECT_FALSE(u.managed);
  ItemLevels want =
      catalog.ExpandLenient({{"build", Level::kRead}, {"build.knowledge", Level::kEdit}});
  EXPECT_EQ(u.levels, want);
  EXPECT_EQ(u.projects, (std::vector<std::string>{"p1", "p2"}));
}

TEST(AccountDirectoryDefaults, CompactPagesCarryEveryUserExpanded) {
  FixedAccount account({Record("u1", {{"analytics", Level::kEdit}}, {}),
                        Record("u2", {{"channels", Level::kRead}}, {"p1"})});
  std::vector<AccountUser> seen;
  Status s =
      account.ForEachCompactUserPage(Catalog::Builtin(), [&](std::vector<AccountUser>& page) {
        for (AccountUser& u : page) seen.push_back(std::move(u));
        return Status::Ok();
      });
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].levels, Catalog::Builtin().ExpandLenient({{"analytics", Level::kEdit}}));
  EXPECT_EQ(seen[1].levels, Catalog::Builtin().ExpandLenient({{"channels", Level::kRead}}));
  EXPECT_EQ(seen[1].projects, (std::vector<std::string>{"p1"}));
}

TEST(AccountDirectoryDefaults, ListingAndPageErrorsComeBackWhole) {
  FixedAccount account({Record("u1", {}, {})});
  account.fail_ = true;
  int pages = 0;
  Status s = account.ForEachCompactUserPage(Catalog::Builtin(), [&](std::vector<AccountUser>&) {
    ++pages;
    return Status::Ok();
  });
  EXPECT_THAT(s, StatusIs(StatusCode::kUnavailable));
  EXPECT_EQ(pages, 0);
  account.fail_ = false;
  s = account.ForEachCompactUserPage(
      Catalog::Builtin(), [&](std::vector<AccountUser>&) { return InternalError("stop here"); });
  EXPECT_EQ(s.message(), "stop here");
}

}  // namespace
}  // namespace idsync::mapping
