// What every store backend must do, run against SQLite (store_test) and
// against a throwaway PostgreSQL (store_postgres_test): the outbox and its
// transitions, Complete's one transaction, the mirror, the managed set, the
// run log, the caches, and the audit chain with its tamper checks. The
// backend (test_backend.h) gives each test a fresh store and raw SQL on it.
#include "idsync/store/store.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "idsync/store/copy.h"
#include "idsync/testing/status_matchers.h"

#include "audit_hash.h"
#include "require_servers.h"
#include "store_test_helpers.h"
#include "test_backend.h"

namespace idsync::store {
namespace {

// A fresh store per test, on the backend this binary links.
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_ = TestBackend::New();
    const std::string why = backend_->WhyUnavailable();
    IDSYNC_REQUIRE_SERVER(why.empty(), why);
    url_ = backend_->NewStoreUrl();
  }
  void TearDown() override {
    store_.reset();
    backend_.reset();
  }

  const std::string& Url() const { return url_; }

  Store& Open() {
    Result<std::unique_ptr<Store>> opened = Store::Open(Url());
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    if (!opened.ok()) std::abort();
    store_ = std::move(opened).value();
    return *store_;
  }

  std::unique_ptr<TestBackend> backend_;
  std::string url_;
  std::unique_ptr<Store> store_;
};

// --- outbox ---

TEST_F(StoreTest, EnqueueAssignsIdsInOrderAndStoresEntriesPlanned) {
  Store& store = Open();
  std::vector<OutboxEntry> entries = {MakeEntry("a"), MakeEntry("b"), MakeEntry("c")};
  entries[1].state = OutboxState::kDone;  // ignored: new entries are planned
  entries[1].attempts = 4;
  ASSERT_TRUE(store.outbox().Enqueue(entries).ok());
  EXPECT_GT(entries[0].id, 0);
  EXPECT_EQ(entries[1].id, entries[0].id + 1);
  EXPECT_EQ(entries[2].id, entries[0].id + 2);
  for (const OutboxEntry& e : entries) {
    EXPECT_EQ(e.state, OutboxState::kPlanned);
    EXPECT_EQ(e.attempts, 0);
    EXPECT_EQ(e.updated_ms, e.created_ms);
  }
  std::vector<OutboxEntry> stored = store.outbox().Unfinished().value();
  ASSERT_EQ(stored.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) ExpectSameEntry(stored[i], entries[i]);
}

TEST_F(StoreTest, EnqueueRejectsDuplicateKeysAtomically) {
  struct Case {
    std::string name;
    std::vector<std::string> stored;  // enqueued first
    std::vector<std::string> batch;
  };
  const Case cases[] = {
      {"key already stored", {"k1"}, {"n1", "n2", "k1"}},
      {"key repeated in the batch", {}, {"n1", "n2", "n1"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    TearDown();
    SetUp();
    Store& store = Open();
    std::vector<OutboxEntry> first;
    for (const std::string& key : c.stored) first.push_back(MakeEntry(key));
    ASSERT_TRUE(store.outbox().Enqueue(first).ok());
    std::vector<OutboxEntry> batch;
    for (const std::string& key : c.batch) batch.push_back(MakeEntry(key));
    Status status = store.outbox().Enqueue(batch);
    EXPECT_THAT(status, StatusIs(StatusCode::kAlreadyExists)) << status.ToString();
    for (const OutboxEntry& e : batch) EXPECT_EQ(e.id, 0);
    EXPECT_EQ(store.outbox().Unfinished()->size(), c.stored.size());
  }
}

TEST_F(StoreTest, EnqueueRejectsEmptyKey) {
  Store& store = Open();
  std::vector<OutboxEntry> batch = {MakeEntry("a"), MakeEntry("")};
  EXPECT_THAT(store.outbox().Enqueue(batch), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_TRUE(store.outbox().Unfinished()->empty());
}

TEST_F(StoreTest, EnqueueRejectsTextThatIsNotUtf8) {
  Store& store = Open();
  std::vector<OutboxEntry> batch = {MakeEntry("a"), MakeEntry("b")};
  batch[1].write.name = std::string("Bad \xff name");
  EXPECT_THAT(store.outbox().Enqueue(batch), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_TRUE(store.outbox().Unfinished()->empty());
}

TEST_F(StoreTest, EnqueueRefusesUnknownRun) {
  // Foreign keys are on: an entry must belong to a run that exists (or none).
  Store& store = Open();
  std::int64_t run = store.runs().BeginRun("apply", 1).value();
  std::vector<OutboxEntry> ok = {MakeEntry("a", 0, run), MakeEntry("b", 0, 0)};
  ASSERT_TRUE(store.outbox().Enqueue(ok).ok());
  std::vector<OutboxEntry> bad = {MakeEntry("c", 0, run + 100)};
  EXPECT_THAT(store.outbox().Enqueue(bad), StatusIs(StatusCode::kInternal));
  std::vector<OutboxEntry> stored = store.outbox().Unfinished().value();
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[0].run_id, run);
  EXPECT_EQ(stored[1].run_id, 0);
}

TEST_F(StoreTest, UnfinishedOrdersByPriorityThenId) {
  Store& store = Open();
  std::vector<OutboxEntry> entries = {MakeEntry("a", 0), MakeEntry("b", 5), MakeEntry("c", 0),
                                      MakeEntry("d", 5), MakeEntry("e", 1), MakeEntry("f", -1)};
  ASSERT_TRUE(store.outbox().Enqueue(entries).ok());
  auto id = [&](int i) { return entries[static_cast<std::size_t>(i)].id; };
  EXPECT_EQ(Ids(store.outbox().Unfinished().value()),
            (std::vector<std::int64_t>{id(1), id(3), id(4), id(0), id(2), id(5)}));
}

TEST_F(StoreTest, UnfinishedHoldsPlannedAndSentOnly) {
  Store& store = Open();
  std::vector<OutboxEntry> dropped = {MakeEntry("dropped")};
  ASSERT_TRUE(store.outbox().Enqueue(dropped).ok());
  ASSERT_EQ(store.outbox().DropPlanned(4).value(), 1);
  std::vector<OutboxEntry> e = {MakeEntry("planned"), MakeEntry("sent"), MakeEntry("done"),
                                MakeEntry("failed")};
  ASSERT_TRUE(store.outbox().Enqueue(e).ok());
  ASSERT_TRUE(store.outbox().MarkSent(e[1].id, 2).ok());
  ASSERT_TRUE(store.outbox().MarkSent(e[2].id, 2).ok());
  Completion c;
  c.entry_id = e[2].id;
  c.user_id = "u-done";
  c.action = "invite";
  ASSERT_TRUE(store.outbox().Complete(c).ok());
  ASSERT_TRUE(store.outbox().Fail(e[3].id, "rejected", 3).ok());
  EXPECT_EQ(Ids(store.outbox().Unfinished().value()),
            (std::vector<std::int64_t>{e[0].id, e[1].id}));
}

// Each transition from each state: the outcome and the state after it.
TEST_F(StoreTest, OutboxTransitions) {
  enum class Op { kMarkSent, kNoteError, kFail, kComplete };
  struct Case {
    Op op;
    OutboxState from;
    StatusCode code;
    OutboxState to;
  };
  using S = OutboxState;
  using C = StatusCode;
  const Case cases[] = {
      {Op::kMarkSent, S::kPlanned, C::kOk, S::kSent},
      {Op::kMarkSent, S::kSent, C::kOk, S::kSent},
      {Op::kMarkSent, S::kDone, C::kFailedPrecondition, S::kDone},
      {Op::kMarkSent, S::kFailed, C::kFailedPrecondition, S::kFailed},
      {Op::kMarkSent, S::kDropped, C::kFailedPrecondition, S::kDropped},
      {Op::kNoteError, S::kPlanned, C::kOk, S::kPlanned},
      {Op::kNoteError, S::kSent, C::kOk, S::kSent},
      {Op::kNoteError, S::kDone, C::kFailedPrecondition, S::kDone},
      {Op::kNoteError, S::kFailed, C::kFailedPrecondition, S::kFailed},
      {Op::kNoteError, S::kDropped, C::kFailedPrecondition, S::kDropped},
      {Op::kFail, S::kPlanned, C::kOk, S::kFailed},
      {Op::kFail, S::kSent, C::kOk, S::kFailed},
      {Op::kFail, S::kDone, C::kFailedPrecondition, S::kDone},
      {Op::kFail, S::kFailed, C::kFailedPrecondition, S::kFailed},
      {Op::kFail, S::kDropped, C::kFailedPrecondition, S::kDropped},
      {Op::kComplete, S::kPlanned, C::kOk, S::kDone},
      {Op::kComplete, S::kSent, C::kOk, S::kDone},
      {Op::kComplete, S::kDone, C::kFailedPrecondition, S::kDone},
      {Op::kComplete, S::kFailed, C::kFailedPrecondition, S::kFailed},
      {Op::kComplete, S::kDropped, C::kFailedPrecondition, S::kDropped},
  };
  Store& store = Open();
  int n = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE("case " + std::to_string(n) + " from " + std::string(OutboxStateName(c.from)));
    std::vector<OutboxEntry> batch = {MakeEntry("k" + std::to_string(n++))};
    ASSERT_TRUE(store.outbox().Enqueue(batch).ok());
    const std::int64_t id = batch[0].id;
    Completion done;
    done.entry_id = id;
    done.user_id = "u" + std::to_string(id);
    done.action = "invite";
    switch (c.from) {
      case S::kPlanned:
        break;
      case S::kSent:
        ASSERT_TRUE(store.outbox().MarkSent(id, 10).ok());
        break;
      case S::kDone:
        ASSERT_TRUE(store.outbox().Complete(done).ok());
        break;
      case S::kFailed:
        ASSERT_TRUE(store.outbox().Fail(id, "no", 10).ok());
        break;
      case S::kDropped:
        ASSERT_TRUE(store.outbox().DropPlanned(10).ok());
        break;
    }
    const std::string head_before = store.audit().Head().value();
    Status status;
    switch (c.op) {
      case Op::kMarkSent:
        status = store.outbox().MarkSent(id, 20);
        break;
      case Op::kNoteError:
        status = store.outbox().NoteError(id, "timeout", 20);
        break;
      case Op::kFail:
        status = store.outbox().Fail(id, "rejected", 20);
        break;
      case Op::kComplete:
        status = store.outbox().Complete(done).status();
        break;
    }
    EXPECT_EQ(status.code(), c.code) << status.ToString();
    EXPECT_EQ(backend_->Text("SELECT state FROM outbox WHERE id = " + std::to_string(id)),
              OutboxStateName(c.to));
    // Only a successful Complete writes an audit entry.
    const bool audited = c.op == Op::kComplete && c.code == C::kOk;
    EXPECT_EQ(store.audit().Head().value() != head_before, audited);
  }
}

TEST_F(StoreTest, TransitionsOfUnknownEntryAreNotFound) {
  Store& store = Open();
  Completion c;
  c.entry_id = 42;
  c.user_id = "u";
  c.action = "invite";
  EXPECT_THAT(store.outbox().MarkSent(42, 1), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store.outbox().NoteError(42, "x", 1), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store.outbox().Fail(42, "x", 1), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(store.outbox().Complete(c), StatusIs(StatusCode::kNotFound));
}

TEST_F(StoreTest, MarkSentCountsAttempts) {
  Store& store = Open();
  std::vector<OutboxEntry> e = {MakeEntry("a")};
  ASSERT_TRUE(store.outbox().Enqueue(e).ok());
  ASSERT_TRUE(store.outbox().MarkSent(e[0].id, 2000).ok());
  ASSERT_TRUE(store.outbox().MarkSent(e[0].id, 3000).ok());
  OutboxEntry stored = store.outbox().Unfinished()->front();
  EXPECT_EQ(stored.state, OutboxState::kSent);
  EXPECT_EQ(stored.attempts, 2);
  EXPECT_EQ(stored.updated_ms, 3000);
  EXPECT_EQ(stored.created_ms, 1000);
}

TEST_F(StoreTest, NoteErrorRecordsErrorAndKeepsState) {
  Store& store = Open();
  std::vector<OutboxEntry> e = {MakeEntry("a")};
  ASSERT_TRUE(store.outbox().Enqueue(e).ok());
  ASSERT_TRUE(store.outbox().MarkSent(e[0].id, 2000).ok());
  ASSERT_TRUE(store.outbox().NoteError(e[0].id, "503 from the account", 2500).ok());
  OutboxEntry stored = store.outbox().Unfinished()->front();
  EXPECT_EQ(stored.state, OutboxState::kSent);
  EXPECT_EQ(stored.error, "503 from the account");
  EXPECT_EQ(stored.updated_ms, 2500);
  EXPECT_EQ(stored.attempts, 1);
}

TEST_F(StoreTest, FailedListsNewestFirstWithLimit) {
  Store& store = Open();
  std::vector<OutboxEntry> e = {MakeEntry("a"), MakeEntry("b"), MakeEntry("c"), MakeEntry("d")};
  ASSERT_TRUE(store.outbox().Enqueue(e).ok());
  ASSERT_TRUE(store.outbox().Fail(e[0].id, "first", 30).ok());
  ASSERT_TRUE(store.outbox().Fail(e[1].id, "second", 10).ok());
  ASSERT_TRUE(store.outbox().Fail(e[2].id, "third", 20).ok());
  std::vector<OutboxEntry> failed = store.outbox().Failed(0).value();
  EXPECT_EQ(Ids(failed), (std::vector<std::int64_t>{e[0].id, e[2].id, e[1].id}));
  EXPECT_EQ(failed[0].error, "first");
  EXPECT_EQ(failed[0].state, OutboxState::kFailed);
  EXPECT_EQ(Ids(store.outbox().Failed(2).value()), (std::vector<std::int64_t>{e[0].id, e[2].id}));
}

TEST_F(StoreTest, DropPlannedDropsOnlyPlanned) {
  Store& store = Open();
  std::vector<OutboxEntry> e = {MakeEntry("a"), MakeEntry("b"), MakeEntry("c"), MakeEntry("d")};
  ASSERT_TRUE(store.outbox().Enqueue(e).ok());
  ASSERT_TRUE(store.outbox().MarkSent(e[1].id, 5).ok());
  ASSERT_TRUE(store.outbox().Fail(e[3].id, "no", 5).ok());
  EXPECT_EQ(store.outbox().DropPlanned(9).value(), 2);
  EXPECT_EQ(Ids(store.outbox().Unfinished().value()), (std::vector<std::int64_t>{e[1].id}));
  EXPECT_EQ(backend_->OutboxStates(), "dropped,sent,dropped,failed");
  EXPECT_EQ(store.outbox().DropPlanned(10).value(), 0);
}

TEST_F(StoreTest, AccountWriteRoundTripsForEveryKind) {
  struct Case {
    std::string name;
    AccountWrite write;
  };
  auto write = [](AccountWrite::Kind kind, const std::string& key) {
    AccountWrite w;
    w.kind = kind;
    w.idempotency_key = key;
    return w;
  };
  std::vector<Case> cases;
  {
    AccountWrite w = write(AccountWrite::Kind::kInvite, "invite-full");
    w.email = "Ada.Lovelace@Example.com";
    w.name = "Ada Lovelace — ÆØÅ ✓";
    w.role = Role::kAdmin;
    w.permissions = mapping::PermissionSpec{};
    w.projects = std::vector<std::string>{};
    cases.push_back({"invite admin", w});
  }
  {
    AccountWrite w = write(AccountWrite::Kind::kInvite, "invite-member");
    w.email = "b@example.com";
    w.name = "";
    w.role = Role::kMember;
    w.permissions = mapping::PermissionSpec{
        {"build", Level::kEdit}, {"build.knowledge", Level::kNone}, {"insights", Level::kRead}};
    w.projects = std::vector<std::string>{"p-1", "p \"quoted\"", ""};
    cases.push_back({"invite member", w});
  }
  {
    AccountWrite w = write(AccountWrite::Kind::kPatch, "patch-role");
    w.user_id = "u-1";
    w.role = Role::kMember;
    cases.push_back({"patch role only", w});
  }
  {
    AccountWrite w = write(AccountWrite::Kind::kPatch, "patch-revoke");
    w.user_id = "u-2";
    w.role = Role::kMember;
    w.permissions = mapping::PermissionSpec{};
    w.projects = std::vector<std::string>{};
    cases.push_back({"patch revoke: empty maps are kept, not dropped", w});
  }
  {
    AccountWrite w = write(AccountWrite::Kind::kPatch, "patch-name");
    w.user_id = "u-3";
    w.email = "c@example.com";
    w.name = "New Name";
    cases.push_back({"patch name", w});
  }
  {
    AccountWrite w = write(AccountWrite::Kind::kDelete, "delete");
    w.user_id = "u-4";
    cases.push_back({"delete", w});
  }
  Store& store = Open();
  std::vector<OutboxEntry> entries;
  for (const Case& c : cases) {
    OutboxEntry e = MakeEntry(c.write.idempotency_key);
    e.write = c.write;
    entries.push_back(e);
  }
  ASSERT_TRUE(store.outbox().Enqueue(entries).ok());
  store_.reset();  // read back from the file, not from anything cached
  std::vector<OutboxEntry> stored = Open().outbox().Unfinished().value();
  ASSERT_EQ(stored.size(), cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].name);
    ExpectSameWrite(stored[i].write, cases[i].write);
  }
}

// --- Complete ---

class CompleteTest : public StoreTest {
 protected:
  // One entry of `kind`, sent, in run 1.
  OutboxEntry Sent(AccountWrite::Kind kind, const std::string& op, const std::string& user_id) {
    Store& store = *store_;
    if (run_ == 0) run_ = store.runs().BeginRun("apply", 100).value();
    OutboxEntry e = MakeEntry(op + "-" + user_id, 0, run_);
    e.kind = op == "invite"   ? mapping::OpKind::kInvite
             : op == "remove" ? mapping::OpKind::kRemove
             : op == "revoke" ? mapping::OpKind::kRevoke
                              : mapping::OpKind::kUpdate;
    e.email = user_id + "@example.com";
    e.write.kind = kind;
    e.write.user_id = kind == AccountWrite::Kind::kInvite ? "" : user_id;
    e.operation_json = R"({"op":")" + op + R"(","rules":["r1"]})";
    e.source = "scim:okta";
    std::vector<OutboxEntry> batch = {e};
    EXPECT_TRUE(store.outbox().Enqueue(batch).ok());
    EXPECT_TRUE(store.outbox().MarkSent(batch[0].id, 200).ok());
    return batch[0];
  }
  std::int64_t run_ = 0;
};

TEST_F(CompleteTest, InviteUpdatesMirrorManagedAndAudit) {
  Store& store = Open();
  OutboxEntry e = Sent(AccountWrite::Kind::kInvite, "invite", "u-1");
  Completion c;
  c.entry_id = e.id;
  c.at_ms = 5000;
  c.user = MakeUser("u-1", "u-1@example.com");
  c.user_id = "u-1";
  c.action = "invite";
  c.management = Completion::Management::kInvited;
  Result<std::string> head = store.outbox().Complete(c);
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(*head, store.audit().Head().value());
  EXPECT_TRUE(store.outbox().Unfinished()->empty());

  std::vector<AccountRecord> mirror = store.mirror().Users().value();
  ASSERT_EQ(mirror.size(), 1u);
  ExpectSameUser(mirror[0], *c.user);

  std::vector<ManagedUser> managed = store.mirror().Managed().value();
  ASSERT_EQ(managed.size(), 1u);
  EXPECT_EQ(managed[0].user_id, "u-1");
  EXPECT_EQ(managed[0].email, "u-1@example.com");
  EXPECT_EQ(managed[0].how, "invited");
  EXPECT_EQ(managed[0].since_ms, 5000);

  std::vector<AuditEntry> audit = store.audit().Since(0).value();
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].seq, 1);
  EXPECT_EQ(audit[0].at_ms, 5000);
  EXPECT_EQ(audit[0].run_id, run_);
  EXPECT_EQ(audit[0].action, "invite");
  EXPECT_EQ(audit[0].email, "u-1@example.com");
  EXPECT_EQ(audit[0].user_id, "u-1");
  EXPECT_EQ(audit[0].source, "scim:okta");
  EXPECT_EQ(audit[0].detail_json, e.operation_json);
  EXPECT_EQ(audit[0].prev_hash, "");
  EXPECT_EQ(audit[0].hash, *head);
}

TEST_F(CompleteTest, AdoptionMakesUserManagedAsAdoptedWithGivenAction) {
  Store& store = Open();
  OutboxEntry e = Sent(AccountWrite::Kind::kPatch, "update", "u-7");
  Completion c;
  c.entry_id = e.id;
  c.at_ms = 6000;
  c.user = MakeUser("u-7", "u-7@example.com");
  c.user_id = "u-7";
  c.management = Completion::Management::kAdopted;
  c.action = "adopt";
  ASSERT_TRUE(store.outbox().Complete(c).ok());
  std::vector<ManagedUser> managed = store.mirror().Managed().value();
  ASSERT_EQ(managed.size(), 1u);
  EXPECT_EQ(managed[0].how, "adopted");
  EXPECT_EQ(managed[0].since_ms, 6000);
  EXPECT_EQ(store.audit().Since(0)->front().action, "adopt");
}

TEST_F(CompleteTest, PatchUpdatesMirrorAndKeepsManagement) {
  Store& store = Open();
  ASSERT_TRUE(store.mirror().Replace({MakeUser("u-2", "u-2@example.com")}, 10).ok());
  ASSERT_TRUE(store.mirror().SetManaged({"u-2", "u-2@example.com", "invited", 50}).ok());
  OutboxEntry e = Sent(AccountWrite::Kind::kPatch, "update", "u-2");
  Completion c;
  c.entry_id = e.id;
  c.at_ms = 7000;
  c.user = MakeUser("u-2", "u-2@example.com");
  c.user->role = Role::kAdmin;
  c.user->permissions = {};
  c.user_id = "u-2";
  c.action = "update";
  ASSERT_TRUE(store.outbox().Complete(c).ok());
  std::vector<AccountRecord> mirror = store.mirror().Users().value();
  ASSERT_EQ(mirror.size(), 1u);
  ExpectSameUser(mirror[0], *c.user);
  std::vector<ManagedUser> managed = store.mirror().Managed().value();
  ASSERT_EQ(managed.size(), 1u);
  EXPECT_EQ(managed[0].how, "invited");
  EXPECT_EQ(managed[0].since_ms, 50);
  EXPECT_EQ(store.audit().Since(0)->front().action, "update");
}

TEST_F(CompleteTest, DeleteRemovesMirrorRowAndForgetsUser) {
  Store& store = Open();
  ASSERT_TRUE(
      store.mirror()
          .Replace({MakeUser("u-3", "u-3@example.com"), MakeUser("u-4", "u-4@example.com")}, 10)
          .ok());
  ASSERT_TRUE(store.mirror().SetManaged({"u-3", "u-3@example.com", "adopted", 50}).ok());
  ASSERT_TRUE(store.mirror().SetManaged({"u-4", "u-4@example.com", "invited", 50}).ok());
  OutboxEntry e = Sent(AccountWrite::Kind::kDelete, "remove", "u-3");
  Completion c;
  c.entry_id = e.id;
  c.at_ms = 8000;
  c.user_id = "u-3";
  c.action = "remove";
  c.management = Completion::Management::kForget;
  ASSERT_TRUE(store.outbox().Complete(c).ok());
  std::vector<AccountRecord> mirror = store.mirror().Users().value();
  ASSERT_EQ(mirror.size(), 1u);
  EXPECT_EQ(mirror[0].id, "u-4");
  std::vector<ManagedUser> managed = store.mirror().Managed().value();
  ASSERT_EQ(managed.size(), 1u);
  EXPECT_EQ(managed[0].user_id, "u-4");
  std::vector<AuditEntry> audit = store.audit().Since(0).value();
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].action, "remove");
  EXPECT_EQ(audit[0].user_id, "u-3");
}

TEST_F(CompleteTest, ManagementIsTheCallersDecision) {
  // The store records what the completion says, whatever the write was: an
  // invite completed as unchanged makes nobody managed.
  Store& store = Open();
  OutboxEntry e = Sent(AccountWrite::Kind::kInvite, "invite", "u-9");
  Completion c;
  c.entry_id = e.id;
  c.user = MakeUser("u-9", "u-9@example.com");
  c.user_id = "u-9";
  c.action = "invite";
  ASSERT_TRUE(store.outbox().Complete(c).ok());
  EXPECT_EQ(store.audit().Since(0)->front().user_id, "u-9");
  EXPECT_TRUE(store.mirror().Managed()->empty());
  EXPECT_EQ(store.mirror().Users()->size(), 1u);
}

// Everything Complete touches, to compare before and after a failure.
struct Snapshot {
  std::string head;
  std::vector<std::int64_t> unfinished;
  std::size_t mirror = 0;
  std::size_t managed = 0;
  std::string states;
  bool operator==(const Snapshot&) const = default;
};

Snapshot Take(Store& store, TestBackend& backend) {
  Snapshot s;
  s.head = store.audit().Head().value();
  s.unfinished = Ids(store.outbox().Unfinished().value());
  s.mirror = store.mirror().Users()->size();
  s.managed = store.mirror().Managed()->size();
  s.states = backend.OutboxStates();
  return s;
}

TEST_F(CompleteTest, FailuresChangeNothing) {
  Store& store = Open();
  OutboxEntry done = Sent(AccountWrite::Kind::kInvite, "invite", "u-1");
  Completion first;
  first.entry_id = done.id;
  first.user = MakeUser("u-1", "u-1@example.com");
  first.user_id = "u-1";
  first.action = "invite";
  ASSERT_TRUE(store.outbox().Complete(first).ok());
  OutboxEntry pending = Sent(AccountWrite::Kind::kInvite, "invite", "u-2");

  struct Case {
    std::string name;
    Completion completion;
    StatusCode code;
  };
  Completion unknown;
  unknown.entry_id = 999;
  unknown.user = MakeUser("u-x", "x@example.com");
  unknown.user_id = "u-x";
  unknown.action = "invite";
  Completion again = first;
  Completion no_user;
  no_user.entry_id = pending.id;  // no user id
  no_user.action = "invite";
  Completion no_action;
  no_action.entry_id = pending.id;
  no_action.user_id = "u-2";
  const Case cases[] = {
      {"unknown entry", unknown, StatusCode::kNotFound},
      {"entry already done", again, StatusCode::kFailedPrecondition},
      {"no account user named", no_user, StatusCode::kInvalidArgument},
      {"no audit action", no_action, StatusCode::kInvalidArgument},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Snapshot before = Take(store, *backend_);
    EXPECT_EQ(store.outbox().Complete(c.completion).status().code(), c.code);
    EXPECT_TRUE(Take(store, *backend_) == before);
  }
}

TEST_F(CompleteTest, FailureInsideTheTransactionRollsEverythingBack) {
  Store& store = Open();
  OutboxEntry e = Sent(AccountWrite::Kind::kInvite, "invite", "u-1");
  // The audit insert, the last step, fails: the mirror, managed and outbox
  // updates before it must not land either.
  backend_->FailAuditInserts(true);
  Snapshot before = Take(store, *backend_);
  Completion c;
  c.entry_id = e.id;
  c.user = MakeUser("u-1", "u-1@example.com");
  c.user_id = "u-1";
  c.action = "invite";
  c.management = Completion::Management::kInvited;
  Result<std::string> head = store.outbox().Complete(c);
  ASSERT_FALSE(head.ok());
  EXPECT_THAT(head, StatusIs(StatusCode::kInternal));
  EXPECT_TRUE(Take(store, *backend_) == before);
  EXPECT_EQ(before.states, "sent");
  EXPECT_EQ(before.mirror, 0u);

  // Once the fault is gone the same completion lands.
  backend_->FailAuditInserts(false);
  ASSERT_TRUE(store.outbox().Complete(c).ok());
  EXPECT_EQ(store.mirror().Users()->size(), 1u);
}

// --- mirror, managed users, runs, metadata ---

// What a partial run reads of the mirror: its people by address in any
// ASCII case (other letters as they are), the active admins, and the
// managed among them, without the rest.
TEST_F(StoreTest, APartialRunReadsItsPeopleAndTheActiveAdminsOnly) {
  Store& store = Open();
  AccountRecord ana = MakeUser("u1", "Ana@Corp.Example");
  AccountRecord eloise = MakeUser("u2", "\xc3\x89lo\xc3\xafse@corp.example");  // capital E acute
  AccountRecord other = MakeUser("u3", "other@corp.example");
  AccountRecord admin = MakeUser("u4", "boss@corp.example");
  admin.role = Role::kAdmin;
  AccountRecord invited_admin = MakeUser("u5", "new-boss@corp.example");
  invited_admin.role = Role::kAdmin;
  invited_admin.status = mapping::AccountUser::Status::kInvited;
  ASSERT_TRUE(store.mirror().Replace({ana, eloise, other, admin, invited_admin}, 1).ok());
  ASSERT_TRUE(store.mirror().SetManaged({"u1", "ana@corp.example", "invited", 1}).ok());
  ASSERT_TRUE(store.mirror().SetManaged({"u3", "other@corp.example", "adopted", 1}).ok());

  auto ids = [](const std::vector<AccountRecord>& users) {
    std::vector<std::string> out;
    for (const AccountRecord& u : users) out.push_back(u.id);
    std::sort(out.begin(), out.end());
    return out;
  };
  EXPECT_EQ(ids(store.mirror().UsersFor({"ana@corp.example"}).value()),
            (std::vector<std::string>{"u1", "u4"}));
  // ASCII letters fold; the capital E acute does not.
  EXPECT_EQ(ids(store.mirror().UsersFor({"\xc3\x89lo\xc3\xafse@corp.example"}).value()),
            (std::vector<std::string>{"u2", "u4"}));
  EXPECT_EQ(ids(store.mirror().UsersFor({"\xc3\xa9lo\xc3\xafse@corp.example"}).value()),
            (std::vector<std::string>{"u4"}));
  EXPECT_EQ(ids(store.mirror().UsersFor({}).value()), (std::vector<std::string>{"u4"}));
  std::vector<std::string> many;
  for (int i = 0; i < 1200; ++i) many.push_back("x" + std::to_string(i) + "@corp.example");
  many.push_back("other@corp.example");
  EXPECT_EQ(ids(store.mirror().UsersFor(many).value()), (std::vector<std::string>{"u3", "u4"}));

  EXPECT_EQ(store.mirror().ManagedCount().value(), 2);
  Result<std::vector<ManagedUser>> among = store.mirror().ManagedAmong({"u1", "u2", "u4"});
  ASSERT_TRUE(among.ok()) << among.status().ToString();
  std::vector<std::string> managed;
  for (const ManagedUser& m : *among) managed.push_back(m.user_id);
  EXPECT_EQ(managed, (std::vector<std::string>{"u1"}));
  EXPECT_TRUE(store.mirror().ManagedAmong({}).value().empty());
}

TEST_F(StoreTest, ReplaceMirrorReplacesEverything) {
  Store& store = Open();
  ASSERT_TRUE(store.mirror()
                  .Replace({MakeUser("u-1", "b@example.com"), MakeUser("u-2", "a@example.com")}, 1)
                  .ok());
  AccountRecord invited = MakeUser("u-3", "c@example.com");
  invited.status = mapping::AccountUser::Status::kInvited;
  invited.role = Role::kAdmin;
  invited.permissions = {};
  invited.projects = {};
  invited.name = "";
  ASSERT_TRUE(store.mirror().Replace({MakeUser("u-2", "a@example.com"), invited}, 2).ok());
  std::vector<AccountRecord> mirror = store.mirror().Users().value();
  ASSERT_EQ(mirror.size(), 2u);
  ExpectSameUser(mirror[0], MakeUser("u-2", "a@example.com"));
  ExpectSameUser(mirror[1], invited);
  ASSERT_TRUE(store.mirror().Replace({}, 3).ok());
  EXPECT_TRUE(store.mirror().Users()->empty());
}

TEST_F(StoreTest, ReplaceMirrorKeepsTheRowsOfThePeopleNamed) {
  Store& store = Open();
  AccountRecord newer = MakeUser("u-1", "Kept@Example.com");
  newer.name = "written by a partial run";
  ASSERT_TRUE(
      store.mirror()
          .Replace({newer, MakeUser("u-2", "gone@example.com"), MakeUser("u-4", "old@example.com")},
                   1)
          .ok());
  // The older read of the account: u-1 as it was before a partial run wrote
  // it, gone@ already deleted by hand, a new user, and nobody@, whom a
  // partial run has deleted since: kept as absent.
  AccountRecord older = MakeUser("u-1", "kept@example.com");
  older.name = "as read before";
  ASSERT_TRUE(
      store.mirror()
          .Replace({older, MakeUser("u-3", "new@example.com"), MakeUser("u-4", "old@example.com"),
                    MakeUser("u-5", "nobody@example.com")},
                   2, {"kept@example.com", "Nobody@example.com"})
          .ok());
  std::vector<AccountRecord> mirror = store.mirror().Users().value();
  ASSERT_EQ(mirror.size(), 3u);
  EXPECT_EQ(mirror[0].id, "u-1");
  EXPECT_EQ(mirror[0].name, "written by a partial run");
  EXPECT_EQ(mirror[1].id, "u-3");
  EXPECT_EQ(mirror[2].id, "u-4");
}

TEST_F(StoreTest, DropAbandonsOnePlannedEntry) {
  Store& store = Open();
  std::vector<OutboxEntry> e = {MakeEntry("a"), MakeEntry("b"), MakeEntry("c")};
  ASSERT_TRUE(store.outbox().Enqueue(e).ok());
  ASSERT_TRUE(store.outbox().MarkSent(e[1].id, 5).ok());
  EXPECT_TRUE(store.outbox().Drop(e[0].id, 6).ok());
  EXPECT_THAT(store.outbox().Drop(e[1].id, 6), StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_THAT(store.outbox().Drop(999, 6), StatusIs(StatusCode::kNotFound));
  EXPECT_EQ(Ids(store.outbox().Unfinished().value()),
            (std::vector<std::int64_t>{e[1].id, e[2].id}));
}

TEST_F(StoreTest, ReplaceMirrorWithDuplicateIdKeepsOldMirror) {
  Store& store = Open();
  ASSERT_TRUE(store.mirror().Replace({MakeUser("u-1", "a@example.com")}, 1).ok());
  Status status = store.mirror().Replace(
      {MakeUser("u-2", "b@example.com"), MakeUser("u-2", "c@example.com")}, 2);
  EXPECT_THAT(status, StatusIs(StatusCode::kInvalidArgument));
  std::vector<AccountRecord> mirror = store.mirror().Users().value();
  ASSERT_EQ(mirror.size(), 1u);
  EXPECT_EQ(mirror[0].id, "u-1");
}

TEST_F(StoreTest, MirrorRowEditedToNonsenseIsInternal) {
  Store& store = Open();
  ASSERT_TRUE(store.mirror().Replace({MakeUser("u-1", "a@example.com")}, 1).ok());
  backend_->Exec("UPDATE mirror SET role = 'owner'");
  EXPECT_THAT(store.mirror().Users(), StatusIs(StatusCode::kInternal));
}

TEST_F(StoreTest, ManagedUsersSetReplaceAndForget) {
  Store& store = Open();
  ASSERT_TRUE(store.mirror().SetManaged({"u-2", "b@example.com", "invited", 10}).ok());
  ASSERT_TRUE(store.mirror().SetManaged({"u-1", "a@example.com", "adopted", 20}).ok());
  ASSERT_TRUE(store.mirror().SetManaged({"u-2", "b2@example.com", "adopted", 30}).ok());
  std::vector<ManagedUser> managed = store.mirror().Managed().value();
  ASSERT_EQ(managed.size(), 2u);
  EXPECT_EQ(managed[0].user_id, "u-1");
  EXPECT_EQ(managed[1].user_id, "u-2");
  EXPECT_EQ(managed[1].email, "b2@example.com");
  EXPECT_EQ(managed[1].how, "adopted");
  EXPECT_EQ(managed[1].since_ms, 30);
  ASSERT_TRUE(store.mirror().ForgetManaged("u-1").ok());
  ASSERT_TRUE(store.mirror().ForgetManaged("never-managed").ok());
  ASSERT_EQ(store.mirror().Managed()->size(), 1u);
  EXPECT_EQ(store.mirror().Managed()->front().user_id, "u-2");
}

TEST_F(StoreTest, SetManagedRejectsBadInput) {
  Store& store = Open();
  EXPECT_THAT(store.mirror().SetManaged({"u-1", "a@example.com", "found", 1}),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(store.mirror().SetManaged({"", "a@example.com", "invited", 1}),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_TRUE(store.mirror().Managed()->empty());
}

TEST_F(StoreTest, RunsBeginFinishAndListNewestFirst) {
  Store& store = Open();
  std::int64_t a = store.runs().BeginRun("apply", 100).value();
  std::int64_t b = store.runs().BeginRun("partial", 200).value();
  EXPECT_GT(b, a);
  RunRecord finished;
  finished.id = a;
  finished.finished_ms = 150;
  finished.result = "ok";
  finished.summary_json = R"({"invite":3})";
  finished.audit_head = "abc";
  finished.error = "";
  ASSERT_TRUE(store.runs().FinishRun(finished).ok());
  std::vector<RunRecord> runs = store.runs().RecentRuns(10).value();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].id, b);
  EXPECT_EQ(runs[0].kind, "partial");
  EXPECT_EQ(runs[0].started_ms, 200);
  EXPECT_EQ(runs[0].finished_ms, 0);
  EXPECT_EQ(runs[0].result, "");
  EXPECT_EQ(runs[1].id, a);
  EXPECT_EQ(runs[1].kind, "apply");
  EXPECT_EQ(runs[1].started_ms, 100);
  EXPECT_EQ(runs[1].finished_ms, 150);
  EXPECT_EQ(runs[1].result, "ok");
  EXPECT_EQ(runs[1].summary_json, R"({"invite":3})");
  EXPECT_EQ(runs[1].audit_head, "abc");
  EXPECT_EQ(store.runs().RecentRuns(1)->size(), 1u);
  EXPECT_EQ(store.runs().RecentRuns(0)->size(), 2u);
}

TEST_F(StoreTest, FinishRunErrors) {
  Store& store = Open();
  std::int64_t id = store.runs().BeginRun("apply", 100).value();
  RunRecord unknown;
  unknown.id = id + 1;
  unknown.result = "ok";
  EXPECT_THAT(store.runs().FinishRun(unknown), StatusIs(StatusCode::kNotFound));
  RunRecord no_result;
  no_result.id = id;
  EXPECT_THAT(store.runs().FinishRun(no_result), StatusIs(StatusCode::kInvalidArgument));
}

TEST_F(StoreTest, CloseInterruptedRunsStopsOnlyUnfinishedRuns) {
  Store& store = Open();
  std::int64_t done = store.runs().BeginRun("apply", 100).value();
  std::int64_t died = store.runs().BeginRun("apply", 200).value();
  RunRecord r;
  r.id = done;
  r.finished_ms = 150;
  r.result = "failed";
  r.error = "account unreachable";
  ASSERT_TRUE(store.runs().FinishRun(r).ok());
  ASSERT_TRUE(store.runs().CloseInterruptedRuns(900).ok());
  std::vector<RunRecord> runs = store.runs().RecentRuns(0).value();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].id, died);
  EXPECT_EQ(runs[0].result, "stopped");
  EXPECT_EQ(runs[0].finished_ms, 900);
  EXPECT_FALSE(runs[0].error.empty());
  EXPECT_EQ(runs[1].result, "failed");
  EXPECT_EQ(runs[1].finished_ms, 150);
  EXPECT_EQ(runs[1].error, "account unreachable");
}

TEST_F(StoreTest, AccountCacheRoundTripsCatalogAndProjects) {
  Store& store = Open();
  EXPECT_EQ(store.account_cache().GetCatalog().value(), std::nullopt);
  EXPECT_EQ(store.account_cache().GetProjects().value(), std::nullopt);
  ASSERT_TRUE(store.account_cache().PutCatalog(mapping::Catalog::Builtin()).ok());
  std::optional<mapping::Catalog> catalog = store.account_cache().GetCatalog().value();
  ASSERT_TRUE(catalog.has_value());
  EXPECT_EQ(catalog->item_keys(), mapping::Catalog::Builtin().item_keys());
  ASSERT_TRUE(store.account_cache().PutProjects({{"p_1", "a"}, {"p_2", "b"}}).ok());
  ASSERT_TRUE(store.account_cache().PutProjects({{"p_3", "c"}}).ok());  // replaced
  std::optional<std::vector<mapping::Project>> projects =
      store.account_cache().GetProjects().value();
  ASSERT_TRUE(projects.has_value());
  ASSERT_EQ(projects->size(), 1u);
  EXPECT_EQ((*projects)[0].id, "p_3");
  EXPECT_EQ((*projects)[0].name, "c");
}

TEST_F(StoreTest, UnreadableCacheIsDataLoss) {
  Store& store = Open();
  backend_->Exec("INSERT INTO account_cache (what, value) VALUES ('catalog', 'not json')");
  EXPECT_THAT(store.account_cache().GetCatalog(), StatusIs(StatusCode::kDataLoss));
}

TEST_F(StoreTest, SourceHealthAndFeedStateAreKeptPerSource) {
  Store& store = Open();
  EXPECT_EQ(store.sources().GetHealth("corp").value(), std::nullopt);
  SourceHealth h;
  h.name = "corp";
  h.type = "ldap";
  h.failing = true;
  h.last_error = "cannot bind";
  h.last_error_ms = 77;
  h.users = 12;
  ASSERT_TRUE(store.sources().PutHealth(h).ok());
  std::optional<SourceHealth> got = store.sources().GetHealth("corp").value();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->type, "ldap");
  EXPECT_TRUE(got->failing);
  EXPECT_EQ(got->last_error, "cannot bind");
  EXPECT_EQ(got->last_error_ms, 77);
  EXPECT_EQ(got->users, 12);
  EXPECT_EQ(store.sources().GetHealth("other").value(), std::nullopt);

  const std::string binary("c\0o\xffk", 5);  // feed cursors are any bytes
  ASSERT_TRUE(store.sources().PutFeedState("corp", "cookie", binary).ok());
  ASSERT_TRUE(store.sources().PutFeedState("hr", "cookie", "other").ok());
  EXPECT_EQ(store.sources().GetFeedState("corp", "cookie").value(),
            std::optional<std::string>(binary));
  EXPECT_EQ(store.sources().GetFeedState("corp", "usn").value(), std::nullopt);
}

// --- copying a store ---

// A SQLite store in a directory of its own, removed with the object.
class SqliteScratch {
 public:
  SqliteScratch() {
    std::string pattern = (std::filesystem::temp_directory_path() / "idsync-copy-XXXXXX").string();
    EXPECT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  ~SqliteScratch() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string Url(const std::string& name) const { return "sqlite://" + dir_ + "/" + name; }

 private:
  std::string dir_;
};

// One of everything a store holds, with the outbox in every state.
void Fill(Store& store) {
  std::int64_t run = store.runs().BeginRun("full", 100).value();
  std::vector<OutboxEntry> e = {MakeEntry("planned", 0, run), MakeEntry("sent", 5, run),
                                MakeEntry("done", 0, run), MakeEntry("failed", 0, 0)};
  ASSERT_TRUE(store.outbox().Enqueue(e).ok());
  ASSERT_TRUE(store.outbox().MarkSent(e[1].id, 110).ok());
  ASSERT_TRUE(store.outbox().NoteError(e[1].id, "HTTP 503", 111).ok());
  ASSERT_TRUE(store.outbox().MarkSent(e[2].id, 112).ok());
  Completion done;
  done.entry_id = e[2].id;
  done.user = MakeUser("u-1", "done@example.com");
  done.user_id = "u-1";
  done.action = "invite";
  done.management = Completion::Management::kInvited;
  ASSERT_TRUE(store.outbox().Complete(done).ok());
  ASSERT_TRUE(store.outbox().Fail(e[3].id, "HTTP 422: no such project", 113).ok());
  AuditEntry adopt = MakeAudit(2);
  ASSERT_TRUE(store.audit().Append(adopt).ok());
  ASSERT_TRUE(store.mirror().SetManaged({"u-2", "bo@example.com", "adopted", 120}).ok());
  RunRecord finished;
  finished.id = run;
  finished.finished_ms = 130;
  finished.result = "operations_failed";
  finished.summary_json = R"({"invite":3})";
  finished.audit_head = store.audit().Head().value();
  ASSERT_TRUE(store.runs().FinishRun(finished).ok());
  ASSERT_TRUE(store.runs().BeginRun("partial", 140).ok());  // interrupted
  ASSERT_TRUE(store.scim().Put({"okta", "User", "id-1", R"({"userName":"ann"})", 3, 150}).ok());
  ASSERT_TRUE(store.scim().Put({"okta", "Group", "g-1", R"({"displayName":"Ops"})", 1, 151}).ok());
  SourceRead read;
  read.snapshot.source = "corp";
  read.snapshot.users.push_back({"u1", "uid=ann", "ann@corp.example", "Ann", false});
  read.snapshot.groups.push_back({"g1", "cn=ops", "Ops", {0}, {}});
  read.read_ms = 160;
  ASSERT_TRUE(store.sources().PutRead(read).ok());
  SourceHealth health;
  health.name = "corp";
  health.type = "ldap";
  health.users = 1;
  ASSERT_TRUE(store.sources().PutHealth(health).ok());
  ASSERT_TRUE(store.sources().PutFeedState("corp", "cookie", std::string("\0\xff\x01rid", 6)).ok());
  ASSERT_TRUE(store.account_cache().PutCatalog(mapping::Catalog::Builtin()).ok());
  ASSERT_TRUE(store.account_cache().PutProjects({{"p_1", "support-bot"}}).ok());
}

void ExpectSameContents(Store& a, Store& b) {
  std::vector<OutboxEntry> ua = a.outbox().Unfinished().value();
  std::vector<OutboxEntry> ub = b.outbox().Unfinished().value();
  ASSERT_EQ(ua.size(), ub.size());
  for (std::size_t i = 0; i < ua.size(); ++i) ExpectSameEntry(ua[i], ub[i]);
  std::vector<OutboxEntry> fa = a.outbox().Failed(0).value();
  std::vector<OutboxEntry> fb = b.outbox().Failed(0).value();
  ASSERT_EQ(fa.size(), fb.size());
  for (std::size_t i = 0; i < fa.size(); ++i) ExpectSameEntry(fa[i], fb[i]);
  std::vector<AccountRecord> ma = a.mirror().Users().value();
  std::vector<AccountRecord> mb = b.mirror().Users().value();
  ASSERT_EQ(ma.size(), mb.size());
  for (std::size_t i = 0; i < ma.size(); ++i) ExpectSameUser(ma[i], mb[i]);
  std::vector<ManagedUser> ga = a.mirror().Managed().value();
  std::vector<ManagedUser> gb = b.mirror().Managed().value();
  ASSERT_EQ(ga.size(), gb.size());
  for (std::size_t i = 0; i < ga.size(); ++i) {
    EXPECT_EQ(ga[i].user_id, gb[i].user_id);
    EXPECT_EQ(ga[i].how, gb[i].how);
    EXPECT_EQ(ga[i].since_ms, gb[i].since_ms);
  }
  std::vector<AuditEntry> aa = a.audit().Since(0).value();
  std::vector<AuditEntry> ab = b.audit().Since(0).value();
  ASSERT_EQ(aa.size(), ab.size());
  for (std::size_t i = 0; i < aa.size(); ++i) {
    EXPECT_EQ(aa[i].seq, ab[i].seq);
    EXPECT_EQ(aa[i].hash, ab[i].hash);
    EXPECT_EQ(aa[i].detail_json, ab[i].detail_json);
  }
  std::vector<RunRecord> ra = a.runs().RecentRuns(0).value();
  std::vector<RunRecord> rb = b.runs().RecentRuns(0).value();
  ASSERT_EQ(ra.size(), rb.size());
  for (std::size_t i = 0; i < ra.size(); ++i) {
    EXPECT_EQ(ra[i].id, rb[i].id);
    EXPECT_EQ(ra[i].result, rb[i].result);
    EXPECT_EQ(ra[i].summary_json, rb[i].summary_json);
    EXPECT_EQ(ra[i].audit_head, rb[i].audit_head);
  }
  std::vector<ScimResourceRow> sa = a.scim().List("okta").value();
  std::vector<ScimResourceRow> sb = b.scim().List("okta").value();
  ASSERT_EQ(sa.size(), sb.size());
  for (std::size_t i = 0; i < sa.size(); ++i) {
    EXPECT_EQ(sa[i].id, sb[i].id);
    EXPECT_EQ(sa[i].json, sb[i].json);
    EXPECT_EQ(sa[i].version, sb[i].version);
  }
  std::optional<SourceRead> read = b.sources().GetRead("corp").value();
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->read_ms, 160);
  ASSERT_EQ(read->snapshot.users.size(), 1u);
  EXPECT_EQ(read->snapshot.users[0].email, "ann@corp.example");
  EXPECT_EQ(b.sources().GetHealth("corp").value()->users, 1);
  EXPECT_EQ(b.sources().GetFeedState("corp", "cookie").value(),
            a.sources().GetFeedState("corp", "cookie").value());
  EXPECT_EQ(b.account_cache().GetCatalog().value()->item_count(),
            mapping::Catalog::Builtin().item_count());
  EXPECT_EQ(b.account_cache().GetProjects().value()->size(), 1u);
}

// --- SCIM resources and their change log ---

TEST_F(StoreTest, PutIfWritesOnlyOverTheVersionItFollows) {
  Store& store = Open();
  ScimResources& scim = store.scim();
  ASSERT_TRUE(scim.PutIf({"okta", "User", "u1", R"({"v":1})", 1, 10}, 0).ok());
  // Created twice: the second writer is refused and changes nothing.
  EXPECT_THAT(scim.PutIf({"okta", "User", "u1", R"({"v":"other"})", 1, 11}, 0),
              StatusIs(StatusCode::kAborted));
  ASSERT_TRUE(scim.PutIf({"okta", "User", "u1", R"({"v":2})", 2, 12}, 1).ok());
  // Two writers both read version 1: the one that writes second loses.
  EXPECT_THAT(scim.PutIf({"okta", "User", "u1", R"({"v":"lost"})", 2, 13}, 1),
              StatusIs(StatusCode::kAborted));
  std::optional<ScimResourceRow> held = scim.Get("okta", "User", "u1").value();
  ASSERT_TRUE(held.has_value());
  EXPECT_EQ(held->json, R"({"v":2})");
  EXPECT_EQ(held->version, 2);
  EXPECT_EQ(held->updated_ms, 12);
  EXPECT_FALSE(scim.Get("okta", "Group", "u1").value().has_value());
  EXPECT_FALSE(scim.Get("entra", "User", "u1").value().has_value());
  EXPECT_THAT(scim.PutIf({"okta", "Printer", "p", "{}", 1, 1}, 0),
              StatusIs(StatusCode::kInvalidArgument));
}

TEST_F(StoreTest, EveryScimWriteIsLoggedInCommitOrder) {
  Store& store = Open();
  ScimResources& scim = store.scim();
  EXPECT_EQ(scim.LastChange().value(), 0);
  ASSERT_TRUE(scim.Put({"okta", "User", "u1", "{}", 1, 10}).ok());
  ASSERT_TRUE(scim.PutIf({"okta", "Group", "g1", "{}", 1, 11}, 0).ok());
  ASSERT_TRUE(scim.PutIf({"okta", "User", "u1", "{}", 2, 12}, 1).ok());
  // Refused and absent deletes are not changes.
  ASSERT_FALSE(scim.PutIf({"okta", "User", "u1", "{}", 2, 13}, 1).ok());
  ASSERT_TRUE(scim.Delete("okta", "User", "missing").ok());
  ASSERT_TRUE(scim.Delete("okta", "Group", "g1").ok());

  ScimChangePage page = scim.ChangesSince(0, 100).value();
  EXPECT_FALSE(page.gap);
  EXPECT_GT(page.now_ms, 1700000000000);
  ASSERT_EQ(page.changes.size(), 4u);
  const std::vector<std::string> ids = {"u1", "g1", "u1", "g1"};
  for (std::size_t i = 0; i < ids.size(); ++i) {
    EXPECT_EQ(page.changes[i].id, ids[i]) << i;
    EXPECT_EQ(page.changes[i].source, "okta");
    if (i > 0) {
      EXPECT_GT(page.changes[i].seq, page.changes[i - 1].seq);
    }
    EXPECT_LE(page.changes[i].at_ms, page.now_ms);
  }
  EXPECT_EQ(page.changes[1].type, "Group");
  EXPECT_EQ(scim.LastChange().value(), page.changes.back().seq);
  // Each change comes with the resource as it is now: u1 at its latest
  // version (for both of its changes), g1 deleted.
  ASSERT_TRUE(page.changes[0].now.has_value());
  EXPECT_EQ(page.changes[0].now->version, 2);
  EXPECT_EQ(page.changes[0].now->updated_ms, 12);
  EXPECT_EQ(page.changes[0].now->source, "okta");
  ASSERT_TRUE(page.changes[2].now.has_value());
  EXPECT_EQ(page.changes[2].now->json, "{}");
  EXPECT_FALSE(page.changes[1].now.has_value());
  EXPECT_FALSE(page.changes[3].now.has_value());

  ScimChangePage rest = scim.ChangesSince(page.changes[1].seq, 1).value();
  ASSERT_EQ(rest.changes.size(), 1u);
  EXPECT_EQ(rest.changes[0].seq, page.changes[2].seq);
  EXPECT_TRUE(scim.ChangesSince(page.changes.back().seq, 100).value().changes.empty());
}

TEST_F(StoreTest, AFollowerPastThePrunedLogIsToldToLoadEverything) {
  Store& store = Open();
  ScimResources& scim = store.scim();
  ASSERT_TRUE(scim.Put({"okta", "User", "u1", "{}", 1, 10}).ok());
  const std::int64_t first = scim.LastChange().value();
  // As the log's pruning leaves it when it passed `first`.
  backend_->Exec("DELETE FROM scim_changes WHERE seq <= " + std::to_string(first));
  backend_->Exec("INSERT INTO scim_changes_pruned (id, upto) VALUES (1, " + std::to_string(first) +
                 ")");
  ASSERT_TRUE(scim.Put({"okta", "User", "u2", "{}", 1, 10}).ok());
  EXPECT_TRUE(scim.ChangesSince(0, 100).value().gap);
  EXPECT_TRUE(scim.ChangesSince(first - 1, 100).value().gap);
  ScimChangePage page = scim.ChangesSince(first, 100).value();
  EXPECT_FALSE(page.gap);
  ASSERT_EQ(page.changes.size(), 1u);
  EXPECT_EQ(page.changes[0].id, "u2");
}

TEST_F(StoreTest, TheLogIsPrunedToTheLatestChangesKept) {
  Store& store = Open();
  ScimResources& scim = store.scim();
  ASSERT_TRUE(scim.Put({"okta", "User", "u1", "{}", 1, 10}).ok());
  // Move the sequence to just before a pruning point past the kept count.
  const std::int64_t next = ((kKeptScimChanges / 1024) + 2) * 1024;
  backend_->Exec("INSERT INTO scim_changes (seq, source, type, id, at_ms) VALUES (" +
                 std::to_string(next - 1) + ", 'okta', 'User', 'x', 1)");
  backend_->ResyncChangeSequence();
  ASSERT_TRUE(scim.Put({"okta", "User", "u2", "{}", 1, 10}).ok());
  EXPECT_EQ(scim.LastChange().value(), next);
  const std::int64_t upto = next - kKeptScimChanges;
  EXPECT_EQ(backend_->Int("SELECT upto FROM scim_changes_pruned"), upto);
  EXPECT_EQ(backend_->Int("SELECT count(*) FROM scim_changes"), 2);
  EXPECT_TRUE(scim.ChangesSince(upto - 1, 10).value().gap);
  EXPECT_EQ(scim.ChangesSince(upto, 10).value().changes.size(), 2u);
}

TEST_F(StoreTest, WritesFromTwoConnectionsAreSeenByAWatcherOfTheOther) {
  Store& writer = Open();
  Result<std::unique_ptr<Store>> other = Store::Open(Url());
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  std::unique_ptr<ScimChangeSignal> signal = (*other)->scim().Watch().value();
  // The first wait connects (and says look, as after any reconnect).
  signal->Wait(std::chrono::milliseconds(10));
  const std::int64_t from = (*other)->scim().LastChange().value();
  ASSERT_TRUE(writer.scim().PutIf({"okta", "User", "u1", "{}", 1, 10}, 0).ok());
  if (backend_->Notifies()) {
    EXPECT_TRUE(signal->Wait(std::chrono::seconds(5)));
  }
  ScimChangePage page = (*other)->scim().ChangesSince(from, 10).value();
  ASSERT_EQ(page.changes.size(), 1u);
  EXPECT_EQ(page.changes[0].id, "u1");
  EXPECT_EQ((*other)->scim().Get("okta", "User", "u1").value()->version, 1);
  // Quiet afterwards: a wait with nothing written times out.
  if (backend_->Notifies()) {
    EXPECT_FALSE(signal->Wait(std::chrono::milliseconds(200)));
  }
}

TEST_F(StoreTest, CopyMovesEverythingFromSqliteAndBackAndTheChainVerifiesThere) {
  SqliteScratch scratch;
  Result<std::unique_ptr<Store>> source = Store::Open(scratch.Url("source.db"));
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  ASSERT_NO_FATAL_FAILURE(Fill(**source));
  const std::string head = (*source)->audit().Head().value();

  Store& copy = Open();  // this binary's backend
  Result<CopyReport> report = CopyStore(**source, copy);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->audit_head, head);
  EXPECT_EQ(report->audit_entries, 2);
  ASSERT_EQ(report->tables.size(), 10u);
  EXPECT_EQ(report->tables[0], (std::pair<std::string, std::int64_t>{"runs", 2}));
  EXPECT_EQ(report->tables[1], (std::pair<std::string, std::int64_t>{"outbox", 4}));
  ASSERT_NO_FATAL_FAILURE(ExpectSameContents(**source, copy));
  AuditCheck check = copy.audit().Verify(head).value();
  EXPECT_TRUE(check.ok) << check.message;

  // New rows get ids past the copied ones, and the chain goes on.
  std::vector<OutboxEntry> more = {MakeEntry("after-copy")};
  ASSERT_TRUE(copy.outbox().Enqueue(more).ok());
  EXPECT_EQ(more[0].id, 5);
  EXPECT_EQ(copy.runs().BeginRun("full", 200).value(), 3);
  AuditEntry next = MakeAudit(3);
  ASSERT_TRUE(copy.audit().Append(next).ok());
  EXPECT_EQ(next.seq, 3);
  EXPECT_EQ(next.prev_hash, head);

  // A copy never merges: into a store that holds something it is refused,
  // and that store is left as it was.
  const std::string copy_head = copy.audit().Head().value();
  Result<CopyReport> again = CopyStore(**source, copy);
  EXPECT_THAT(again, StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_NE(again.status().message().find("not empty"), std::string::npos);
  EXPECT_EQ(copy.audit().Head().value(), copy_head);
  EXPECT_EQ(copy.outbox().Unfinished()->size(), 3u);
  EXPECT_THAT(CopyStore(copy, copy), StatusIs(StatusCode::kInvalidArgument));

  // And back into a new SQLite file, the later rows included.
  Result<std::unique_ptr<Store>> back = Store::Open(scratch.Url("back.db"));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  report = CopyStore(copy, **back);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->audit_entries, 3);
  ASSERT_NO_FATAL_FAILURE(ExpectSameContents(copy, **back));
}

// --- the leader lease and the fence ---

TEST_F(StoreTest, LeaseIsTakenRenewedReleasedAndChangesHandsWithAGrowingEpoch) {
  Store& store = Open();
  EXPECT_EQ(store.lease().Current().value(), std::nullopt);
  const auto ten_s = std::chrono::seconds(10);
  LeaseState a = store.lease().Acquire("a", ten_s).value();
  EXPECT_EQ(a.holder, "a");
  EXPECT_EQ(a.epoch, 1);
  EXPECT_FALSE(a.expired);
  EXPECT_GT(a.expires_in_ms, 5000);
  EXPECT_LE(a.expires_in_ms, 10000);
  // Held: another gets the holder's lease back, unchanged.
  LeaseState b = store.lease().Acquire("b", ten_s).value();
  EXPECT_EQ(b.holder, "a");
  EXPECT_EQ(b.epoch, 1);
  // Renewed by its holder: same epoch.
  EXPECT_EQ(store.lease().Acquire("a", ten_s)->epoch, 1);
  // Released (by its holder only): taken at once, one epoch on.
  ASSERT_TRUE(store.lease().Release("b").ok());
  EXPECT_EQ(store.lease().Acquire("b", ten_s)->holder, "a");
  ASSERT_TRUE(store.lease().Release("a").ok());
  std::optional<LeaseState> released = store.lease().Current().value();
  ASSERT_TRUE(released.has_value());
  EXPECT_TRUE(released->expired);
  EXPECT_EQ(released->holder, "a");
  b = store.lease().Acquire("b", ten_s).value();
  EXPECT_EQ(b.holder, "b");
  EXPECT_EQ(b.epoch, 2);
  // Expired: taken without a release.
  ASSERT_EQ(store.lease().Acquire("b", std::chrono::milliseconds(150))->holder, "b");
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_TRUE(store.lease().Current().value()->expired);
  a = store.lease().Acquire("a", ten_s).value();
  EXPECT_EQ(a.holder, "a");
  EXPECT_EQ(a.epoch, 3);
  EXPECT_THAT(store.lease().Acquire("", ten_s), StatusIs(StatusCode::kInvalidArgument));
}

TEST_F(StoreTest, TwoProcessesRacingForTheLeaseGetOneHolder) {
  Store& first = Open();
  Result<std::unique_ptr<Store>> second = Store::Open(Url());
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  std::string last_holder;
  std::int64_t last_epoch = 0;
  for (int round = 0; round < 8; ++round) {
    SCOPED_TRACE(round);
    Result<LeaseState> got_a = InternalError("not run");
    Result<LeaseState> got_b = InternalError("not run");
    std::thread ta([&] { got_a = first.lease().Acquire("a", std::chrono::seconds(10)); });
    std::thread tb([&] { got_b = (*second)->lease().Acquire("b", std::chrono::seconds(10)); });
    ta.join();
    tb.join();
    ASSERT_TRUE(got_a.ok()) << got_a.status().ToString();
    ASSERT_TRUE(got_b.ok()) << got_b.status().ToString();
    // Both see the same holder and epoch: one won, the other was told so.
    EXPECT_EQ(got_a->holder, got_b->holder);
    EXPECT_EQ(got_a->epoch, got_b->epoch);
    // The epoch moves exactly when the lease changes hands.
    EXPECT_EQ(got_a->epoch, got_a->holder == last_holder ? last_epoch : last_epoch + 1);
    last_holder = got_a->holder;
    last_epoch = got_a->epoch;
    ASSERT_TRUE(first.lease().Release(got_a->holder).ok());
  }
}

TEST_F(StoreTest, TheFenceRefusesALeadersWritesOnceAnotherHasTakenOver) {
  Store& old_leader = Open();
  Result<std::unique_ptr<Store>> other = Store::Open(Url());
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  Store& new_leader = **other;

  LeaseState held = old_leader.lease().Acquire("old", std::chrono::milliseconds(150)).value();
  old_leader.SetFence(Fence{"old", held.epoch});
  // While it holds the lease, its writes go through.
  std::int64_t run = old_leader.runs().BeginRun("full", 1).value();
  std::vector<OutboxEntry> batch = {MakeEntry("k1", 0, run), MakeEntry("k2", 0, run)};
  ASSERT_TRUE(old_leader.outbox().Enqueue(batch).ok());
  ASSERT_TRUE(old_leader.outbox().MarkSent(batch[0].id, 2).ok());
  // Past its lease with nobody taking over, it is still the only leader.
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  ASSERT_TRUE(old_leader.outbox().NoteError(batch[0].id, "slow", 3).ok());

  LeaseState taken = new_leader.lease().Acquire("new", std::chrono::seconds(10)).value();
  ASSERT_EQ(taken.holder, "new");
  ASSERT_EQ(taken.epoch, held.epoch + 1);
  const std::string head = old_leader.audit().Head().value();
  Completion done;
  done.entry_id = batch[0].id;
  done.user = MakeUser("u-1", "k1@example.com");
  done.user_id = "u-1";
  done.action = "invite";
  done.management = Completion::Management::kInvited;
  AuditEntry adopt = MakeAudit(1);
  SourceRead read;
  read.snapshot.source = "corp";
  RunRecord finished;
  finished.id = run;
  finished.result = "ok";
  SourceHealth health;
  health.name = "corp";
  std::vector<OutboxEntry> more = {MakeEntry("k3", 0, run)};
  const std::vector<std::pair<std::string, Status>> refused = {
      {"BeginRun", old_leader.runs().BeginRun("full", 5).status()},
      {"FinishRun", old_leader.runs().FinishRun(finished)},
      {"Enqueue", old_leader.outbox().Enqueue(more)},
      {"MarkSent", old_leader.outbox().MarkSent(batch[1].id, 5)},
      {"NoteError", old_leader.outbox().NoteError(batch[0].id, "x", 5)},
      {"Fail", old_leader.outbox().Fail(batch[1].id, "x", 5)},
      {"Drop", old_leader.outbox().Drop(batch[1].id, 5)},
      {"DropPlanned", old_leader.outbox().DropPlanned(5).status()},
      {"Complete", old_leader.outbox().Complete(done).status()},
      {"Replace", old_leader.mirror().Replace({MakeUser("u-9", "z@example.com")}, 5)},
      {"SetManaged", old_leader.mirror().SetManaged({"u-9", "z@example.com", "adopted", 5})},
      {"ForgetManaged", old_leader.mirror().ForgetManaged("u-9")},
      {"Append", old_leader.audit().Append(adopt).status()},
      {"PutRead", old_leader.sources().PutRead(read)},
      {"PutHealth", old_leader.sources().PutHealth(health)},
      {"PutFeedState", old_leader.sources().PutFeedState("corp", "cookie", "c")},
      {"PutProjects", old_leader.account_cache().PutProjects({{"p_1", "bot"}})},
      {"CloseInterruptedRuns", old_leader.runs().CloseInterruptedRuns(5)},
  };
  for (const auto& [name, status] : refused) {
    SCOPED_TRACE(name);
    EXPECT_THAT(status, StatusIs(StatusCode::kFailedPrecondition));
    EXPECT_TRUE(FenceLost(status)) << status.ToString();
    EXPECT_NE(status.message().find("epoch " + std::to_string(taken.epoch)), std::string::npos)
        << status.message();
  }
  // Nothing of it landed.
  std::vector<OutboxEntry> unfinished = new_leader.outbox().Unfinished().value();
  ASSERT_EQ(unfinished.size(), 2u);
  EXPECT_EQ(unfinished[0].state, OutboxState::kSent);
  EXPECT_EQ(unfinished[0].error, "slow");
  EXPECT_EQ(unfinished[1].state, OutboxState::kPlanned);
  EXPECT_EQ(new_leader.audit().Head().value(), head);
  EXPECT_TRUE(new_leader.mirror().Users()->empty());
  EXPECT_TRUE(new_leader.mirror().Managed()->empty());
  EXPECT_EQ(new_leader.runs().RecentRuns(0)->size(), 1u);
  EXPECT_EQ(new_leader.sources().GetRead("corp").value(), std::nullopt);
  EXPECT_EQ(new_leader.account_cache().GetProjects().value(), std::nullopt);
  // Reads, and SCIM writes (which every replica makes), are not fenced.
  EXPECT_TRUE(old_leader.outbox().Unfinished().ok());
  EXPECT_TRUE(old_leader.scim().Put({"okta", "User", "id-1", "{}", 1, 5}).ok());
  // The new leader, fenced at its own epoch, claims the work and finishes it.
  new_leader.SetFence(Fence{"new", taken.epoch});
  ASSERT_TRUE(new_leader.outbox().MarkSent(batch[0].id, 6).ok());
  EXPECT_TRUE(new_leader.outbox().Complete(done).ok());
  // And the old one, taking the lease back later, gets a new epoch.
  ASSERT_TRUE(new_leader.lease().Release("new").ok());
  LeaseState back = old_leader.lease().Acquire("old", std::chrono::seconds(10)).value();
  EXPECT_EQ(back.epoch, taken.epoch + 1);
  old_leader.SetFence(Fence{"old", back.epoch});
  EXPECT_TRUE(old_leader.runs().BeginRun("full", 9).ok());
  EXPECT_TRUE(FenceLost(new_leader.runs().BeginRun("full", 9).status()));
}

// Writes from many threads share commits; the change log still gets one
// row per resource written, in commit order, and none for a write refused.
TEST_F(StoreTest, WritesThatShareCommitsEachLeaveOneChangeAndARefusedOneNone) {
  Store& store = Open();
  std::vector<std::thread> threads;
  std::atomic<int> refused{0};
  for (int w = 0; w < 8; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < 50; ++i) {
        ScimResourceRow row;
        row.source = "okta";
        row.type = "User";
        row.id = "w" + std::to_string(w) + "-" + std::to_string(i);
        row.json = "{}";
        row.version = 1;
        row.updated_ms = 1;
        EXPECT_TRUE(store.scim().PutIf(row, 0).ok());
        // The same again over version 0: refused, changing nothing.
        if (store.scim().PutIf(row, 0).code() == StatusCode::kAborted) ++refused;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(refused.load(), 400);
  Result<ScimChangePage> page = store.scim().ChangesSince(0, 1000);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->changes.size(), 400u);
  std::set<std::string> ids;
  std::int64_t last = 0;
  for (const ScimChangeRow& c : page->changes) {
    EXPECT_GT(c.seq, last);
    last = c.seq;
    ids.insert(c.id);
    EXPECT_TRUE(c.now.has_value()) << c.id;
  }
  EXPECT_EQ(ids.size(), 400u);
  EXPECT_EQ(store.scim().LastChange().value(), last);
}

// --- durability of writes that share a commit ---

// Writers in a child process (12 threads: SCIM resources, and outbox
// entries marked sent then completed) report each write the store
// acknowledged on a pipe; the child is SIGKILLed right after the 300th
// acknowledgement. Every write acknowledged before the kill is in the store.
TEST_F(StoreTest, EveryAcknowledgedWriteSurvivesAKillOfTheWriter) {
  constexpr int kEntries = 4000;
  constexpr int kOutboxWriters = 4;
  constexpr int kScimWriters = 8;
  std::vector<std::int64_t> ids;
  {
    Store& store = Open();
    std::vector<OutboxEntry> entries;
    for (int i = 0; i < kEntries; ++i) entries.push_back(MakeEntry("k" + std::to_string(i)));
    ASSERT_TRUE(store.outbox().Enqueue(entries).ok());
    for (const OutboxEntry& e : entries) ids.push_back(e.id);
    store_.reset();
  }
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(fds[0]);
    Result<std::unique_ptr<Store>> opened = Store::Open(Url());
    if (!opened.ok()) ::_exit(3);
    Store& store = **opened;
    auto tell = [&](const std::string& line) {
      // One write(2) of a short line: whole, never interleaved.
      if (::write(fds[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
        ::_exit(4);
      }
    };
    std::vector<std::thread> threads;
    for (int w = 0; w < kScimWriters; ++w) {
      threads.emplace_back([&, w] {
        for (int i = 0;; ++i) {
          ScimResourceRow row;
          row.source = "okta";
          row.type = "User";
          row.id = "w" + std::to_string(w) + "-" + std::to_string(i);
          row.json = R"({"userName":")" + row.id + R"("})";
          row.version = 1;
          row.updated_ms = 1;
          if (store.scim().PutIf(row, 0).ok()) tell("r " + row.id + "\n");
        }
      });
    }
    for (int w = 0; w < kOutboxWriters; ++w) {
      threads.emplace_back([&, w] {
        for (std::size_t i = static_cast<std::size_t>(w); i < ids.size(); i += kOutboxWriters) {
          if (!store.outbox().MarkSent(ids[i], 5).ok()) continue;
          Completion done;
          done.entry_id = ids[i];
          done.user_id = "u" + std::to_string(ids[i]);
          done.user = MakeUser(done.user_id, "p" + std::to_string(ids[i]) + "@example.com");
          done.action = "invite";
          done.at_ms = 6;
          if (store.outbox().Complete(done).ok()) tell("c " + std::to_string(ids[i]) + "\n");
        }
      });
    }
    for (std::thread& t : threads) t.join();
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string text;
  int acknowledged = 0;
  bool killed = false;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buffer, sizeof(buffer));
    if (n <= 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    acknowledged += static_cast<int>(std::count(buffer, buffer + n, '\n'));
    if (!killed && acknowledged >= 300) {
      ASSERT_EQ(::kill(child, SIGKILL), 0);
      killed = true;
    }
  }
  ::close(fds[0]);
  int wstatus = 0;
  ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFSIGNALED(wstatus)) << "the writers ended before the kill: " << wstatus;

  Store& store = Open();
  Result<std::vector<OutboxEntry>> left = store.outbox().Unfinished();
  ASSERT_TRUE(left.ok()) << left.status().ToString();
  std::set<std::int64_t> unfinished;
  for (const OutboxEntry& e : *left) unfinished.insert(e.id);
  Result<std::vector<AccountRecord>> users = store.mirror().Users();
  ASSERT_TRUE(users.ok()) << users.status().ToString();
  std::set<std::string> mirrored;
  for (const AccountRecord& u : *users) mirrored.insert(u.id);
  int resources = 0;
  int completions = 0;
  std::istringstream lines(text);
  std::string kind;
  std::string id;
  while (lines >> kind >> id) {
    if (kind == "r") {
      ++resources;
      EXPECT_TRUE(store.scim().Get("okta", "User", id).value().has_value())
          << "acknowledged SCIM write " << id << " is not in the store";
    } else {
      ++completions;
      EXPECT_EQ(unfinished.count(std::stoll(id)), 0u) << "acknowledged completion " << id;
      EXPECT_EQ(mirrored.count("u" + id), 1u) << "acknowledged completion " << id;
    }
  }
  EXPECT_GE(resources + completions, 300);
  EXPECT_GT(resources, 0);
  EXPECT_GT(completions, 0);
  EXPECT_TRUE(store.audit().Verify(std::nullopt).value().ok);
}

TEST_F(StoreTest, ASentEntryIsClaimedByTheLeadersEpochAndFinishedOnlyByIt) {
  Store& first = Open();
  Result<std::unique_ptr<Store>> other = Store::Open(Url());
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  Store& second = **other;

  // With no lease held, a send claims nothing.
  std::vector<OutboxEntry> batch = {MakeEntry("k1"), MakeEntry("k2"), MakeEntry("k3")};
  ASSERT_TRUE(first.outbox().Enqueue(batch).ok());
  ASSERT_TRUE(first.outbox().MarkSent(batch[2].id, 1).ok());
  EXPECT_EQ(first.outbox().Unfinished()->at(2).claimed_epoch, 0);

  LeaseState held = first.lease().Acquire("first", std::chrono::milliseconds(150)).value();
  first.SetFence(Fence{"first", held.epoch});
  ASSERT_TRUE(first.outbox().MarkSent(batch[0].id, 2).ok());
  ASSERT_TRUE(first.outbox().MarkSent(batch[1].id, 2).ok());
  std::vector<OutboxEntry> sent = first.outbox().Unfinished().value();
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[0].claimed_epoch, held.epoch);
  EXPECT_EQ(sent[1].claimed_epoch, held.epoch);

  // The first leader's lease runs out and the second takes over: what the
  // first sent, the second finishes only by claiming (and sending) it again.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  LeaseState taken = second.lease().Acquire("second", std::chrono::seconds(10)).value();
  ASSERT_EQ(taken.epoch, held.epoch + 1);
  second.SetFence(Fence{"second", taken.epoch});
  Completion done;
  done.entry_id = batch[0].id;
  done.user = MakeUser("u-1", "k1@example.com");
  done.user_id = "u-1";
  done.action = "invite";
  done.management = Completion::Management::kInvited;
  const std::string head = second.audit().Head().value();
  EXPECT_THAT(second.outbox().Complete(done).status(), StatusIs(StatusCode::kAborted));
  EXPECT_EQ(second.audit().Head().value(), head);
  EXPECT_TRUE(second.mirror().Users()->empty());
  // So is one sent while no lease was held.
  Completion unclaimed = done;
  unclaimed.entry_id = batch[2].id;
  unclaimed.user = MakeUser("u-3", "k3@example.com");
  unclaimed.user_id = "u-3";
  EXPECT_THAT(second.outbox().Complete(unclaimed).status(), StatusIs(StatusCode::kAborted));

  ASSERT_TRUE(second.outbox().MarkSent(batch[0].id, 4).ok());
  std::vector<OutboxEntry> reclaimed = second.outbox().Unfinished().value();
  EXPECT_EQ(reclaimed[0].claimed_epoch, taken.epoch);
  EXPECT_EQ(reclaimed[0].attempts, 2);
  EXPECT_TRUE(second.outbox().Complete(done).ok());
  EXPECT_EQ(second.mirror().Users()->size(), 1u);
}

TEST_F(StoreTest, ConsoleSessionsAreSharedExpireAndEnd) {
  Store& one = Open();
  Result<std::unique_ptr<Store>> other = Store::Open(Url());
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  ConsoleSessions& here = one.console_sessions();
  ConsoleSessions& there = (*other)->console_sessions();
  ASSERT_TRUE(here.Create({"id-a", "sha256:aa", "csrf-a", 100, 1000}).ok());
  ASSERT_TRUE(here.Create({"id-b", "sha256:bb", "csrf-b", 100, 500}).ok());
  EXPECT_THAT(here.Create({"id-a", "sha256:cc", "x", 1, 2}), StatusIs(StatusCode::kAlreadyExists));
  EXPECT_THAT(here.Create({"", "sha256:cc", "x", 1, 2}), StatusIs(StatusCode::kInvalidArgument));
  // Signed in on one replica, known on another, until it expires.
  std::optional<ConsoleSession> seen = there.Get("id-a", 999).value();
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->token_hash, "sha256:aa");
  EXPECT_EQ(seen->csrf, "csrf-a");
  EXPECT_EQ(seen->created_ms, 100);
  EXPECT_EQ(seen->expires_ms, 1000);
  EXPECT_FALSE(there.Get("id-a", 1000).value().has_value());
  EXPECT_FALSE(there.Get("nope", 0).value().has_value());
  // Signed out on one, gone on both.
  ASSERT_TRUE(there.End("id-a").ok());
  ASSERT_TRUE(there.End("id-a").ok());
  EXPECT_FALSE(here.Get("id-a", 200).value().has_value());
  EXPECT_EQ(here.Prune(600).value(), 1);
  EXPECT_FALSE(here.Get("id-b", 200).value().has_value());
}

TEST_F(StoreTest, PruneHistoryForgetsWhatIsFinishedAndOldOnly) {
  Store& store = Open();
  // Three old runs (finished at 100, 200, 300) and a recent one; entries
  // finished long ago, one finished recently, one still sent, one failed.
  std::vector<std::int64_t> runs;
  for (std::int64_t at : {100, 200, 300, 5000}) {
    const std::int64_t id = store.runs().BeginRun("full", at).value();
    RunRecord done;
    done.id = id;
    done.finished_ms = at + 10;
    done.result = "ok";
    ASSERT_TRUE(store.runs().FinishRun(done).ok());
    runs.push_back(id);
  }
  std::vector<OutboxEntry> batch = {
      MakeEntry("old-done", 0, runs[0]), MakeEntry("old-sent", 0, runs[1]),
      MakeEntry("new-done", 0, runs[3]), MakeEntry("old-failed", 0, runs[2])};
  ASSERT_TRUE(store.outbox().Enqueue(batch).ok());
  for (const OutboxEntry& e : batch) ASSERT_TRUE(store.outbox().MarkSent(e.id, 150).ok());
  Completion done;
  done.entry_id = batch[0].id;
  done.at_ms = 160;
  done.user = MakeUser("u-1", "old-done@example.com");
  done.user_id = "u-1";
  done.action = "invite";
  done.management = Completion::Management::kInvited;
  ASSERT_TRUE(store.outbox().Complete(done).ok());
  done.entry_id = batch[2].id;
  done.at_ms = 5100;
  done.user = MakeUser("u-3", "new-done@example.com");
  done.user_id = "u-3";
  ASSERT_TRUE(store.outbox().Complete(done).ok());
  ASSERT_TRUE(store.outbox().Fail(batch[3].id, "rejected", 170).ok());
  const std::string head = store.audit().Head().value();

  // Before 1000, keeping the most recent run whatever its age.
  HistoryPruned pruned = store.runs().PruneHistory(1000, 1).value();
  EXPECT_EQ(pruned.entries, 2);  // old-done and old-failed
  EXPECT_EQ(pruned.runs, 2);     // runs 0 and 2: run 1 still has its sent entry
  std::vector<RunRecord> left = store.runs().RecentRuns(0).value();
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].id, runs[3]);
  EXPECT_EQ(left[1].id, runs[1]);
  std::vector<OutboxEntry> unfinished = store.outbox().Unfinished().value();
  ASSERT_EQ(unfinished.size(), 1u);
  EXPECT_EQ(unfinished[0].write.idempotency_key, "old-sent");
  EXPECT_TRUE(store.outbox().Failed(0)->empty());
  // The audit log is whole, and nothing more goes a second time.
  EXPECT_EQ(store.audit().Head().value(), head);
  EXPECT_TRUE(store.audit().Verify(std::nullopt)->ok);
  EXPECT_EQ(store.audit().Since(0)->size(), 2u);
  pruned = store.runs().PruneHistory(1000, 1).value();
  EXPECT_EQ(pruned.entries, 0);
  EXPECT_EQ(pruned.runs, 0);
  // keep_runs holds recent ones back even when they are old.
  pruned = store.runs().PruneHistory(10000, 5).value();
  EXPECT_EQ(pruned.entries, 1);  // new-done
  EXPECT_EQ(pruned.runs, 0);
}

TEST_F(StoreTest, AppendAuditChainsEntries) {
  Store& store = Open();
  EXPECT_EQ(store.audit().Head().value(), "");
  std::vector<AuditEntry> appended;
  for (int i = 1; i <= 3; ++i) {
    AuditEntry a = MakeAudit(i);
    std::string head = store.audit().Append(a).value();
    EXPECT_EQ(a.seq, i);
    EXPECT_EQ(a.hash, head);
    EXPECT_EQ(a.prev_hash, appended.empty() ? "" : appended.back().hash);
    EXPECT_EQ(store.audit().Head().value(), head);
    appended.push_back(a);
  }
  std::vector<AuditEntry> stored = store.audit().Since(0).value();
  ASSERT_EQ(stored.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(stored[i].seq, appended[i].seq);
    EXPECT_EQ(stored[i].email, appended[i].email);
    EXPECT_EQ(stored[i].detail_json, appended[i].detail_json);
    EXPECT_EQ(stored[i].hash, appended[i].hash);
    EXPECT_EQ(stored[i].prev_hash, appended[i].prev_hash);
  }
}

TEST_F(StoreTest, AuditSinceFiltersByTime) {
  Store& store = Open();
  for (int i = 1; i <= 4; ++i) {
    AuditEntry a = MakeAudit(i);
    ASSERT_TRUE(store.audit().Append(a).ok());
  }
  std::vector<AuditEntry> since = store.audit().Since(2500).value();
  ASSERT_EQ(since.size(), 2u);
  EXPECT_EQ(since[0].seq, 3);
  EXPECT_EQ(since[1].seq, 4);
  EXPECT_EQ(store.audit().Since(4000)->size(), 1u);
  EXPECT_TRUE(store.audit().Since(4001)->empty());
}

TEST_F(StoreTest, VerifyEmptyChain) {
  Store& store = Open();
  AuditCheck check = store.audit().Verify(std::nullopt).value();
  EXPECT_TRUE(check.ok);
  EXPECT_EQ(check.entries, 0);
  EXPECT_EQ(check.head, "");
  EXPECT_TRUE(store.audit().Verify(std::string()).value().ok);
  AuditCheck cut = store.audit().Verify(std::string(64, 'a')).value();
  EXPECT_FALSE(cut.ok);
  EXPECT_EQ(cut.problem, "cut off");
}

TEST_F(StoreTest, ConcurrentAppendsFromTwoConnectionsKeepOneChain) {
  // Two connections (as the CLI and the daemon have), two threads each.
  Store& first = Open();
  Result<std::unique_ptr<Store>> second = Store::Open(Url());
  ASSERT_TRUE(second.ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    Store* store = t % 2 == 0 ? &first : second->get();
    threads.emplace_back([store, t] {
      for (int i = 0; i < 25; ++i) {
        AuditEntry a = MakeAudit(t * 100 + i);
        EXPECT_TRUE(store->audit().Append(a).ok());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  AuditCheck check = first.audit().Verify(std::nullopt).value();
  EXPECT_TRUE(check.ok) << check.message;
  EXPECT_EQ(check.entries, 100);
  EXPECT_EQ(check.head, (*second)->audit().Head().value());
}

// A chain of five entries, then raw SQL through a second connection.
class TamperTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    Store& store = Open();
    heads_.clear();
    for (int i = 1; i <= 5; ++i) {
      AuditEntry a = MakeAudit(i);
      heads_.push_back(store.audit().Append(a).value());
    }
  }
  AuditCheck Verify(const std::optional<std::string>& head = std::nullopt) {
    Result<AuditCheck> check = store_->audit().Verify(head);
    EXPECT_TRUE(check.ok()) << check.status().ToString();
    return check.ok() ? *check : AuditCheck();
  }
  // Rewrites the row at `seq` as someone who knows the hash format would:
  // fields edited, its own hash recomputed.
  void Forge(std::int64_t seq, const std::string& email) {
    AuditEntry row = store_->audit().Since(0).value().at(static_cast<std::size_t>(seq - 1));
    row.email = email;
    std::string hash = AuditHash(row).value();
    backend_->Exec("UPDATE audit SET email = '" + email + "', hash = '" + hash +
                   "' WHERE seq = " + std::to_string(seq));
  }
  std::vector<std::string> heads_;  // heads_[i]: the head after entry i + 1
};

TEST_F(TamperTest, IntactChainVerifies) {
  AuditCheck check = Verify();
  EXPECT_TRUE(check.ok) << check.message;
  EXPECT_EQ(check.entries, 5);
  EXPECT_EQ(check.head, heads_.back());
  EXPECT_EQ(check.bad_seq, 0);
  EXPECT_TRUE(check.problem.empty());
}

TEST_F(TamperTest, RawEditsAreFoundAndNamed) {
  // Swapping the contents of two rows keeps every row intact but moves it to
  // a seq its hash was not computed with: "reordered". Removing a row and
  // renumbering the rest also moves rows, but the row after the gap was
  // chained to an entry that no longer exists: "removed".
  const char kSwap[] =
      "UPDATE audit SET seq = -1 WHERE seq = %A; UPDATE audit SET seq = %A WHERE seq = %B; "
      "UPDATE audit SET seq = %B WHERE seq = -1;";
  auto swap = [&](int a, int b) {
    std::string sql = kSwap;
    for (std::size_t p; (p = sql.find("%A")) != std::string::npos;) {
      sql.replace(p, 2, std::to_string(a));
    }
    for (std::size_t p; (p = sql.find("%B")) != std::string::npos;) {
      sql.replace(p, 2, std::to_string(b));
    }
    return sql;
  };
  struct Case {
    std::string name;
    std::string sql;
    std::string problem;
    std::int64_t bad_seq;
  };
  const Case cases[] = {
      {"edit email", "UPDATE audit SET email = 'mallory@example.com' WHERE seq = 3", "edited", 3},
      {"edit first detail", "UPDATE audit SET detail_json = '{}' WHERE seq = 1", "edited", 1},
      {"edit last time", "UPDATE audit SET at_ms = at_ms + 1 WHERE seq = 5", "edited", 5},
      {"edit action", "UPDATE audit SET action = 'invite' WHERE seq = 2", "edited", 2},
      {"edit prev_hash", "UPDATE audit SET prev_hash = '' WHERE seq = 2", "edited", 2},
      {"edit stored hash",
       "UPDATE audit SET hash = " + backend_->RandomHashSql() + " WHERE seq = 4", "edited", 4},
      {"delete middle row", "DELETE FROM audit WHERE seq = 3", "removed", 3},
      {"delete first row", "DELETE FROM audit WHERE seq = 1", "removed", 1},
      {"delete two rows", "DELETE FROM audit WHERE seq IN (2, 3)", "removed", 2},
      {"delete and renumber",
       "DELETE FROM audit WHERE seq = 3; UPDATE audit SET seq = seq - 1 WHERE seq > 3", "removed",
       3},
      {"swap rows 2 and 4", swap(2, 4), "reordered", 2},
      {"swap adjacent rows 4 and 5", swap(4, 5), "reordered", 4},
      {"swap rows 1 and 2", swap(1, 2), "reordered", 1},
      {"move row 2 past the end", "UPDATE audit SET seq = 9 WHERE seq = 2", "reordered", 2},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    TearDown();
    SetUp();
    backend_->Exec(c.sql);
    AuditCheck check = Verify();
    EXPECT_FALSE(check.ok);
    EXPECT_EQ(check.problem, c.problem) << check.message;
    EXPECT_EQ(check.bad_seq, c.bad_seq) << check.message;
    EXPECT_NE(check.message.find("entr"), std::string::npos);
    EXPECT_NE(check.message.find(std::to_string(c.bad_seq)), std::string::npos) << check.message;
    // A head kept elsewhere does not hide the problem.
    EXPECT_FALSE(Verify(heads_.back()).ok);
  }
}

TEST_F(TamperTest, RewrittenEntryWithRecomputedHashBreaksTheNextLink) {
  Forge(3, "mallory@example.com");
  AuditCheck check = Verify();
  EXPECT_FALSE(check.ok);
  EXPECT_EQ(check.problem, "removed") << check.message;
  EXPECT_EQ(check.bad_seq, 4);
}

TEST_F(TamperTest, CutEndIsFoundOnlyWithExpectedHead) {
  backend_->Exec("DELETE FROM audit WHERE seq >= 4");
  AuditCheck alone = Verify();
  EXPECT_TRUE(alone.ok) << alone.message;
  EXPECT_EQ(alone.entries, 3);
  EXPECT_EQ(alone.head, heads_[2]);

  AuditCheck against_head = Verify(heads_.back());
  EXPECT_FALSE(against_head.ok);
  EXPECT_EQ(against_head.problem, "cut off");
  EXPECT_EQ(against_head.bad_seq, 0);
  EXPECT_NE(against_head.message.find(heads_.back()), std::string::npos);

  // Appending after the cut does not bring the old head back.
  AuditEntry a = MakeAudit(6);
  ASSERT_TRUE(store_->audit().Append(a).ok());
  EXPECT_TRUE(Verify().ok);
  EXPECT_EQ(Verify(heads_.back()).problem, "cut off");
}

TEST_F(TamperTest, ReplacedEndIsFoundWithExpectedHead) {
  Forge(5, "mallory@example.com");
  EXPECT_TRUE(Verify().ok);
  EXPECT_EQ(Verify(heads_.back()).problem, "cut off");
}

TEST_F(TamperTest, ExpectedHeadEarlierInTheChainIsFine) {
  // Entries appended after the head was taken are expected.
  for (std::size_t i = 0; i < heads_.size(); ++i) {
    AuditCheck check = Verify(heads_[i]);
    EXPECT_TRUE(check.ok) << i << ": " << check.message;
  }
  EXPECT_TRUE(Verify(std::string()).ok);
  EXPECT_EQ(Verify(std::string(64, '0')).problem, "cut off");
}

}  // namespace
}  // namespace idsync::store
