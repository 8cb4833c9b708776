// What only the PostgreSQL store has: a connection that can be lost or
// hang. A call on a connection the server dropped fails as unavailable and
// the next one connects again; a call the server does not answer within
// the call timeout fails as unavailable, and the store works again once
// the server answers; a session that stops inside a transaction (its
// process paused) loses it and its locks, so another replica can take the
// lease; an outbox row another transaction holds is not waited for.
#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <signal.h>

#include "idsync/store/store.h"
#include "idsync/testing/status_matchers.h"

#include "pg_session.h"
#include "postgres_fixture.h"
#include "require_servers.h"

namespace idsync::store {
namespace {

using testing::PostgresFixture;

class PgStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    IDSYNC_REQUIRE_SERVER(PostgresFixture::Available(), PostgresFixture::WhyUnavailable());
    server_ = PostgresFixture::Shared();
    ASSERT_NE(server_, nullptr) << "the test PostgreSQL server did not start";
    Result<std::string> name = server_->CreateDatabase();
    ASSERT_TRUE(name.ok()) << name.status().ToString();
    database_ = *name;
  }

  std::unique_ptr<Store> Open(const std::string& application,
                              std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    StoreOptions options;
    options.url = server_->Url(database_);
    options.application_name = application;
    options.call_timeout = timeout;
    Result<std::unique_ptr<Store>> store = Store::Open(options);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  // The server process of the session named `application`.
  int BackendPid(const std::string& application) {
    Result<std::string> pid =
        server_->Psql("postgres", "SELECT pid FROM pg_stat_activity WHERE application_name = '" +
                                      application + "'");
    EXPECT_TRUE(pid.ok()) << pid.status().ToString();
    return pid.ok() && !pid->empty() ? std::stoi(*pid) : -1;
  }

  PostgresFixture* server_ = nullptr;
  std::string database_;
};

TEST_F(PgStoreTest, ACallOnADroppedConnectionFailsAndTheNextConnectsAgain) {
  std::unique_ptr<Store> store = Open("idsync-drop-test");
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->runs().BeginRun("full", 1).ok());
  const int pid = BackendPid("idsync-drop-test");
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(
      server_->Psql("postgres", "SELECT pg_terminate_backend(" + std::to_string(pid) + ")").ok());
  Result<std::int64_t> lost = store->runs().BeginRun("full", 2);
  EXPECT_THAT(lost, StatusIs(StatusCode::kUnavailable));
  EXPECT_EQ(lost.status().message().find("postgresql://"), std::string::npos);
  Result<std::int64_t> again = store->runs().BeginRun("full", 3);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(store->runs().RecentRuns(0)->size(), 2u);
  EXPECT_NE(BackendPid("idsync-drop-test"), pid);
}

TEST_F(PgStoreTest, ACallTheServerDoesNotAnswerFailsWithinTheCallTimeout) {
  std::unique_ptr<Store> store = Open("idsync-hang-test", std::chrono::milliseconds(1000));
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->runs().BeginRun("full", 1).ok());
  const int pid = BackendPid("idsync-hang-test");
  ASSERT_GT(pid, 0);
  // The session's server process stops answering (its socket stays open).
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  const auto asked = std::chrono::steady_clock::now();
  Result<std::int64_t> hung = store->runs().BeginRun("full", 2);
  const auto waited = std::chrono::steady_clock::now() - asked;
  ::kill(pid, SIGCONT);
  EXPECT_THAT(hung, StatusIs(StatusCode::kUnavailable));
  EXPECT_NE(hung.status().message().find("no answer in 1000 ms"), std::string::npos)
      << hung.status().message();
  EXPECT_GE(waited, std::chrono::milliseconds(900));
  EXPECT_LT(waited, std::chrono::seconds(5));
  // The dropped connection is replaced by the next call.
  Result<std::int64_t> again = store->runs().BeginRun("full", 3);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
}

TEST_F(PgStoreTest, ASessionIdleInsideATransactionLosesItsLocks) {
  std::unique_ptr<Store> leader = Open("idsync-paused-leader");
  ASSERT_NE(leader, nullptr);
  Result<LeaseState> held = leader->lease().Acquire("paused", std::chrono::milliseconds(500));
  ASSERT_TRUE(held.ok()) << held.status().ToString();
  // As a leader's fenced write does, then nothing more: its process is
  // paused between two statements of the transaction.
  pg::ConnectOptions options;
  options.url = server_->Url(database_);
  options.application_name = "idsync-paused-session";
  options.idle_in_transaction_timeout = std::chrono::milliseconds(1500);
  std::unique_ptr<pg::PgSession> paused = pg::NewPgSession(options);
  ASSERT_TRUE(paused->Begin().ok());
  ASSERT_TRUE(
      paused->Exec("SELECT holder FROM leader_lease WHERE id = 1 FOR SHARE", {}).status().ok());

  // Once the lease has run out another takes it, without waiting for the
  // paused one to come back.
  std::unique_ptr<Store> next = Open("idsync-next-leader");
  ASSERT_NE(next, nullptr);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  const auto asked = std::chrono::steady_clock::now();
  Result<LeaseState> taken = next->lease().Acquire("next", std::chrono::seconds(5));
  const auto waited = std::chrono::steady_clock::now() - asked;
  ASSERT_TRUE(taken.ok()) << taken.status().ToString();
  EXPECT_EQ(taken->holder, "next");
  EXPECT_GE(waited, std::chrono::milliseconds(500));  // it did wait on the lock
  EXPECT_LT(waited, std::chrono::seconds(5));
  // The paused session's transaction is gone with its connection.
  EXPECT_THAT(paused->Exec("SELECT 1", {}), StatusIs(StatusCode::kUnavailable));
  paused->Rollback();
}

TEST_F(PgStoreTest, AClaimDoesNotWaitForARowAnotherTransactionHolds) {
  std::unique_ptr<Store> leader = Open("idsync-claiming-leader");
  ASSERT_NE(leader, nullptr);
  std::int64_t run = leader->runs().BeginRun("full", 1).value();
  std::vector<OutboxEntry> batch(2);
  for (int i = 0; i < 2; ++i) {
    batch[i].run_id = run;
    batch[i].email = "p" + std::to_string(i) + "@example.com";
    batch[i].write.kind = mapping::AccountWrite::Kind::kInvite;
    batch[i].write.email = batch[i].email;
    batch[i].write.idempotency_key = "claim-" + std::to_string(i);
    batch[i].source = "full-run";
  }
  ASSERT_TRUE(leader->outbox().Enqueue(batch).ok());

  // Another process is in the middle of a transaction on the first row.
  pg::ConnectOptions options;
  options.url = server_->Url(database_);
  options.application_name = "idsync-row-holder";
  std::unique_ptr<pg::PgSession> holder = pg::NewPgSession(options);
  ASSERT_TRUE(holder->Begin().ok());
  ASSERT_TRUE(
      holder->Exec("SELECT id FROM outbox WHERE id = $1 FOR UPDATE", {internal::Param(batch[0].id)})
          .status()
          .ok());

  const auto asked = std::chrono::steady_clock::now();
  Status held = leader->outbox().MarkSent(batch[0].id, 2);
  const auto waited = std::chrono::steady_clock::now() - asked;
  EXPECT_THAT(held, StatusIs(StatusCode::kAborted));
  EXPECT_LT(waited, std::chrono::seconds(2));
  // The other row is claimed as usual; the held one is untouched.
  ASSERT_TRUE(leader->outbox().MarkSent(batch[1].id, 2).ok());
  std::vector<OutboxEntry> unfinished = leader->outbox().Unfinished().value();
  ASSERT_EQ(unfinished.size(), 2u);
  EXPECT_EQ(unfinished[0].state, OutboxState::kPlanned);
  EXPECT_EQ(unfinished[0].attempts, 0);
  EXPECT_EQ(unfinished[1].state, OutboxState::kSent);

  // Once the other transaction ends, the row is claimed.
  holder->Rollback();
  ASSERT_TRUE(leader->outbox().MarkSent(batch[0].id, 3).ok());
}

}  // namespace
}  // namespace idsync::store
