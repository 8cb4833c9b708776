// Entries, users and audit rows the store tests build, and how they
// compare them. Shared by the backend-independent tests (store_test.cc) and
// the SQLite file's own (sqlite_store_test.cc).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "idsync/store/store.h"

namespace idsync::store {

using mapping::AccountRecord;
using mapping::AccountWrite;
using mapping::Level;
using mapping::Role;

inline OutboxEntry MakeEntry(const std::string& key, int priority = 0, std::int64_t run_id = 0) {
  OutboxEntry e;
  e.run_id = run_id;
  e.kind = mapping::OpKind::kInvite;
  e.email = key + "@example.com";
  e.write.kind = AccountWrite::Kind::kInvite;
  e.write.email = e.email;
  e.write.name = "Person " + key;
  e.write.role = Role::kMember;
  e.write.permissions = mapping::PermissionSpec{{"build", Level::kRead}};
  e.write.projects = std::vector<std::string>{"p1"};
  e.write.idempotency_key = key;
  e.operation_json = R"({"op":"invite","email":")" + e.email + R"("})";
  e.source = "full-run";
  e.priority = priority;
  e.created_ms = 1000;
  return e;
}

inline AccountRecord MakeUser(const std::string& id, const std::string& email) {
  AccountRecord u;
  u.id = id;
  u.email = email;
  u.name = "Name " + id;
  u.role = Role::kMember;
  u.status = mapping::AccountUser::Status::kActive;
  u.permissions = {{"build", Level::kEdit}, {"insights.reports", Level::kRead}};
  u.projects = {"p1", "p2"};
  u.created_at = "2024-01-02T03:04:05Z";
  u.updated_at = "2024-02-03T04:05:06Z";
  return u;
}

inline void ExpectSameWrite(const AccountWrite& a, const AccountWrite& b) {
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.user_id, b.user_id);
  EXPECT_EQ(a.email, b.email);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.role, b.role);
  EXPECT_EQ(a.permissions, b.permissions);
  EXPECT_EQ(a.projects, b.projects);
  EXPECT_EQ(a.idempotency_key, b.idempotency_key);
}

inline void ExpectSameEntry(const OutboxEntry& a, const OutboxEntry& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.run_id, b.run_id);
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.adopt, b.adopt);
  EXPECT_EQ(a.email, b.email);
  ExpectSameWrite(a.write, b.write);
  EXPECT_EQ(a.operation_json, b.operation_json);
  EXPECT_EQ(a.source, b.source);
  EXPECT_EQ(a.priority, b.priority);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.attempts, b.attempts);
  EXPECT_EQ(a.error, b.error);
  EXPECT_EQ(a.created_ms, b.created_ms);
  EXPECT_EQ(a.updated_ms, b.updated_ms);
}

inline void ExpectSameUser(const AccountRecord& a, const AccountRecord& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.email, b.email);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.role, b.role);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.permissions, b.permissions);
  EXPECT_EQ(a.projects, b.projects);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.updated_at, b.updated_at);
}

inline std::vector<std::int64_t> Ids(const std::vector<OutboxEntry>& entries) {
  std::vector<std::int64_t> ids;
  for (const OutboxEntry& e : entries) ids.push_back(e.id);
  return ids;
}

inline AuditEntry MakeAudit(int i) {
  AuditEntry a;
  a.at_ms = 1000 * i;
  a.run_id = 7;
  a.action = "update";
  a.email = "user" + std::to_string(i) + "@example.com";
  a.user_id = "u-" + std::to_string(i);
  a.source = "full-run";
  a.detail_json = R"({"reason":"rule )" + std::to_string(i) + R"("})";
  return a;
}

}  // namespace idsync::store
