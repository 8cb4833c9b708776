// The store's SCIM resources and each source's last good read: round trips,

#include "idsync/testing/status_matchers.h"
// restart, replacement, and damage found on read.
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include "idsync/store/store.h"

#include "codec.h"
#include "snapshot_codec.h"

namespace idsync::store {
namespace {

namespace fs = std::filesystem;

class SourceStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "idsync-srcstate-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::unique_ptr<Store> Open() {
    auto opened = Store::Open("sqlite://" + (dir_ / "state.db").string());
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    if (!opened.ok()) std::abort();
    return std::move(opened).value();
  }
  // Runs SQL on the file directly, as an operator with the sqlite3 shell would.
  void Raw(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ / "state.db").string().c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
    std::string message = error ? error : "";
    sqlite3_free(error);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << message;
  }
  fs::path dir_;
};

mapping::SourceSnapshot Sample() {
  mapping::SourceSnapshot s;
  s.source = "corp";
  s.nested = false;
  s.max_depth = 7;
  s.users.push_back({"u1", "uid=ann,ou=people", "ann@corp.example", "Ann", false});
  s.users.push_back({"u2", "uid=bo,ou=people", "", "Bö Ørsted", true});
  s.users.push_back({"u3", "", "cy@corp.example", std::string("nul\0inside", 10), false});
  mapping::DirectoryGroup g1{"g1", "cn=a", "A", {0, 2}, {1}};
  mapping::DirectoryGroup g2{"g2", "cn=b", "B", {1}, {0}};  // a cycle
  s.groups = {g1, g2};
  return s;
}

void ExpectSame(const mapping::SourceSnapshot& a, const mapping::SourceSnapshot& b) {
  EXPECT_EQ(a.source, b.source);
  EXPECT_EQ(a.nested, b.nested);
  EXPECT_EQ(a.max_depth, b.max_depth);
  ASSERT_EQ(a.users.size(), b.users.size());
  for (size_t i = 0; i < a.users.size(); ++i) {
    EXPECT_EQ(a.users[i].id, b.users[i].id);
    EXPECT_EQ(a.users[i].dn, b.users[i].dn);
    EXPECT_EQ(a.users[i].email, b.users[i].email);
    EXPECT_EQ(a.users[i].name, b.users[i].name);
    EXPECT_EQ(a.users[i].disabled, b.users[i].disabled);
  }
  ASSERT_EQ(a.groups.size(), b.groups.size());
  for (size_t i = 0; i < a.groups.size(); ++i) {
    EXPECT_EQ(a.groups[i].id, b.groups[i].id);
    EXPECT_EQ(a.groups[i].dn, b.groups[i].dn);
    EXPECT_EQ(a.groups[i].name, b.groups[i].name);
    EXPECT_EQ(a.groups[i].member_users, b.groups[i].member_users);
    EXPECT_EQ(a.groups[i].member_groups, b.groups[i].member_groups);
  }
}

TEST(SnapshotCodecTest, RoundTripsEveryField) {
  mapping::SourceSnapshot s = Sample();
  auto decoded = internal::DecodeSnapshot(internal::EncodeSnapshot(s));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ExpectSame(s, *decoded);
}

TEST(SnapshotCodecTest, EveryTruncationIsRefused) {
  std::string bytes = internal::EncodeSnapshot(Sample());
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto decoded = internal::DecodeSnapshot(std::string_view(bytes).substr(0, n));
    EXPECT_FALSE(decoded.ok()) << "accepted a snapshot cut at byte " << n;
  }
  EXPECT_FALSE(internal::DecodeSnapshot(bytes + "x").ok());
}

TEST(SnapshotCodecTest, MemberIndexOutOfRangeIsRefused) {
  mapping::SourceSnapshot s = Sample();
  s.groups[0].member_users.push_back(99);
  auto decoded = internal::DecodeSnapshot(internal::EncodeSnapshot(s));
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find("corp"), std::string::npos);
}

// Only what EncodeSnapshot writes decodes: a header whose fields were
// written another way is damaged, not read as something close.
TEST(SnapshotCodecTest, OnlyTheEncodersFormsDecode) {
  const std::string magic("IDSR\x01", 5);
  const std::string source(
      "\x04"
      "corp",
      5);
  // nested, max_depth, no users, no groups.
  auto with_header = [&](std::string_view fields) {
    return internal::DecodeSnapshot(magic + source + std::string(fields) + std::string("\0\0", 2));
  };
  ASSERT_TRUE(with_header(std::string("\x01\x05", 2)).ok());
  EXPECT_FALSE(with_header(std::string("\x02\x05", 2)).ok()) << "a flag of 2";
  EXPECT_FALSE(with_header(std::string("\x01\x85\x00", 3)).ok()) << "a varint in two bytes";
  // max_depth 2^32 + 5, which an int would read as 5.
  EXPECT_FALSE(with_header(std::string("\x01\x85\x80\x80\x80\x10", 6)).ok())
      << "a max_depth past int";
  // 2^64 and more.
  EXPECT_FALSE(with_header(std::string("\x01\x80\x80\x80\x80\x80\x80\x80\x80\x80\x02", 11)).ok())
      << "a varint past 64 bits";
}

// Found by the store_codec fuzzer: a stored count written with an exponent
// (1.7e21) was converted to int64, which is undefined past its range.
TEST(HealthCodecTest, CountsMustBeIntegersThatFit) {
  EXPECT_EQ(internal::DecodeHealth(R"({"users": 12, "last_success_ms": 1700000000000})")->users,
            12);
  for (const char* bad : {R"({"last_success_ms": 1700000000000e9})", R"({"users": 1.5})",
                          R"({"groups": 18446744073709551615})", R"({"last_error_ms": "7"})"}) {
    SCOPED_TRACE(bad);
    Result<SourceHealth> health = internal::DecodeHealth(bad);
    EXPECT_EQ(health.status().code(), StatusCode::kDataLoss);
  }
  SourceHealth h;
  h.name = "corp";
  h.users = INT64_MAX;
  EXPECT_EQ(internal::DecodeHealth(internal::EncodeHealth(h))->users, INT64_MAX);
}

// Found by the store_codec fuzzer: a stored catalog whose label is not
// text threw from the JSON library (and ended the process) instead of being
// refused as damaged. Project names the same.
TEST(CatalogCodecTest, ALabelOrNameThatIsNotTextIsDamaged) {
  for (const char* bad :
       {R"({"areas":[{"key":"build","label":[{"key":"x"}]}]})",
        R"({"areas":[{"key":"build","label":"Build","items":[{"key":"build.k","label":7}]}]})"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(internal::DecodeCatalog(bad).status().code(), StatusCode::kDataLoss);
  }
  EXPECT_EQ(internal::DecodeProjects(R"([{"id":"p1","name":{"n":1}}])").status().code(),
            StatusCode::kDataLoss);
  Result<std::vector<mapping::Project>> projects =
      internal::DecodeProjects(R"([{"id":"p1","name":"support-bot"},{"id":"p2"}])");
  ASSERT_TRUE(projects.ok()) << projects.status().ToString();
  EXPECT_EQ((*projects)[0].name, "support-bot");
  EXPECT_EQ((*projects)[1].name, "");
  const mapping::Catalog builtin = mapping::Catalog::Builtin();
  Result<mapping::Catalog> back = internal::DecodeCatalog(internal::EncodeCatalog(builtin));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->item_count(), builtin.item_count());
}

TEST_F(SourceStateTest, LastGoodReadSurvivesReopenAndIsReplaced) {
  {
    auto store = Open();
    auto none = store->sources().GetRead("corp");
    ASSERT_TRUE(none.ok());
    EXPECT_FALSE(none->has_value());
    ASSERT_TRUE(store->sources().PutRead({Sample(), 1000}).ok());
  }
  auto store = Open();
  auto read = store->sources().GetRead("corp");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ((*read)->read_ms, 1000);
  ExpectSame(Sample(), (*read)->snapshot);

  mapping::SourceSnapshot smaller = Sample();
  smaller.users.resize(1);
  smaller.groups.clear();
  ASSERT_TRUE(store->sources().PutRead({smaller, 2000}).ok());
  read = store->sources().GetRead("corp");
  ASSERT_TRUE(read.ok());
  EXPECT_EQ((*read)->read_ms, 2000);
  EXPECT_EQ((*read)->snapshot.users.size(), 1u);
  EXPECT_FALSE(store->sources().GetRead("other")->has_value());
}

TEST_F(SourceStateTest, DamagedReadIsAnErrorNotAnEmptyDirectory) {
  {
    auto store = Open();
    ASSERT_TRUE(store->sources().PutRead({Sample(), 1000}).ok());
  }
  Raw("UPDATE source_reads SET snapshot = substr(snapshot, 1, 20)");
  auto store = Open();
  auto read = store->sources().GetRead("corp");
  ASSERT_FALSE(read.ok());
  EXPECT_THAT(read, StatusIs(StatusCode::kInternal));
}

TEST_F(SourceStateTest, ScimResourcesArePerSourceAndSurviveReopen) {
  {
    auto store = Open();
    ASSERT_TRUE(store->scim().Put({"okta", "User", "1", "{\"a\":1}", 1, 10}).ok());
    ASSERT_TRUE(store->scim().Put({"okta", "Group", "g", "{}", 1, 10}).ok());
    ASSERT_TRUE(store->scim().Put({"entra", "User", "1", "{\"e\":1}", 3, 10}).ok());
    // Replacing keeps one row.
    ASSERT_TRUE(store->scim().Put({"okta", "User", "1", "{\"a\":2}", 2, 20}).ok());
  }
  auto store = Open();
  auto okta = store->scim().List("okta");
  ASSERT_TRUE(okta.ok());
  ASSERT_EQ(okta->size(), 2u);
  EXPECT_EQ((*okta)[0].type, "Group");
  EXPECT_EQ((*okta)[1].json, "{\"a\":2}");
  EXPECT_EQ((*okta)[1].version, 2);
  EXPECT_EQ((*okta)[1].updated_ms, 20);
  ASSERT_TRUE(store->scim().Delete("okta", "User", "1").ok());
  ASSERT_TRUE(store->scim().Delete("okta", "User", "missing").ok());
  EXPECT_EQ(store->scim().List("okta")->size(), 1u);
  ASSERT_EQ(store->scim().List("entra")->size(), 1u);
  EXPECT_EQ((*store->scim().List("entra"))[0].json, "{\"e\":1}");
}

TEST_F(SourceStateTest, ScimResourceOfUnknownTypeIsRefused) {
  auto store = Open();
  EXPECT_THAT(store->scim().Put({"okta", "Printer", "1", "{}", 1, 1}),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store->scim().Put({"okta", "User", "", "{}", 1, 1}),
              StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace idsync::store
