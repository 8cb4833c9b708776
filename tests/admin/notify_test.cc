// Notifier against a real unix datagram socket standing in for systemd's
// NOTIFY_SOCKET: the messages sent, and the watchdog's ping rate.

#include "idsync/daemon/notify.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "wait_until.h"

namespace idsync::daemon {
namespace {

using Clock = std::chrono::steady_clock;

// A bound datagram socket in a temp dir, exported as NOTIFY_SOCKET.
class NotifySocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/idsync-notify-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/notify.sock";
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd_, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path_.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    ASSERT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    setenv("NOTIFY_SOCKET", path_.c_str(), 1);
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
  }
  void TearDown() override {
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    if (fd_ >= 0) close(fd_);
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }

  // The next datagram, or "" when none comes within `wait`.
  std::string Receive(std::chrono::milliseconds wait = std::chrono::milliseconds(1000)) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(wait.count())) <= 0) return "";
    char buf[4096];
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }

  std::string dir_, path_;
  int fd_ = -1;
};

TEST_F(NotifySocketTest, SendsReadyStatusReloadingStopping) {
  Notifier n;
  ASSERT_TRUE(n.enabled());
  n.Ready("serving: 2 sources");
  EXPECT_EQ(Receive(), "READY=1\nSTATUS=serving: 2 sources");
  n.Ready();
  EXPECT_EQ(Receive(), "READY=1");
  n.SetStatus("last run ok\nin 3.1 s");
  EXPECT_EQ(Receive(), "STATUS=last run ok in 3.1 s");
  n.Reloading();
  std::string reloading = Receive();
  EXPECT_EQ(reloading.rfind("RELOADING=1\nMONOTONIC_USEC=", 0), 0u) << reloading;
  EXPECT_GT(std::stoull(reloading.substr(reloading.find('=', 12) + 1)), 0u);
  n.Stopping();
  EXPECT_EQ(Receive(), "STOPPING=1");
  n.Ping();
  EXPECT_EQ(Receive(), "WATCHDOG=1");
}

TEST_F(NotifySocketTest, NothingIsSentWithoutNotifySocket) {
  unsetenv("NOTIFY_SOCKET");
  setenv("WATCHDOG_USEC", "100000", 1);
  Notifier n;
  EXPECT_FALSE(n.enabled());
  EXPECT_EQ(n.watchdog_timeout().count(), 0);
  n.Ready("x");
  n.Ping();
  n.StartWatchdog([] { return true; });
  EXPECT_EQ(Receive(std::chrono::milliseconds(200)), "");
}

TEST_F(NotifySocketTest, WatchdogOffWithoutWatchdogUsec) {
  Notifier n;
  EXPECT_EQ(n.watchdog_timeout().count(), 0);
  n.StartWatchdog([] { return true; });
  EXPECT_EQ(Receive(std::chrono::milliseconds(300)), "");
}

TEST_F(NotifySocketTest, WatchdogOffForAnotherPid) {
  setenv("WATCHDOG_USEC", "100000", 1);
  setenv("WATCHDOG_PID", std::to_string(getpid() + 1).c_str(), 1);
  Notifier n;
  EXPECT_EQ(n.watchdog_timeout().count(), 0);
  n.StartWatchdog([] { return true; });
  EXPECT_EQ(Receive(std::chrono::milliseconds(300)), "");
}

// The watchdog's rate, checked so that a loaded machine or a sanitizer build
// cannot fail it: pings keep coming (a fixed number, collected with a generous
// deadline), never faster than half the timeout on average (a wait never ends
// early), and never so late that systemd would have killed the service (a
// gap of the whole timeout, with a wide margin for scheduling).
TEST_F(NotifySocketTest, WatchdogPingsAtHalfTheTimeout) {
  setenv("WATCHDOG_USEC", "200000", 1);  // 200 ms: pings every 100 ms
  setenv("WATCHDOG_PID", std::to_string(getpid()).c_str(), 1);
  Notifier n;
  ASSERT_EQ(n.watchdog_timeout(), std::chrono::microseconds(200000));
  n.StartWatchdog([] { return true; });
  constexpr std::size_t kPings = 8;
  std::vector<std::pair<Clock::time_point, std::string>> got;
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (got.size() < kPings && Clock::now() < deadline) {
    std::string m = Receive(std::chrono::milliseconds(1000));
    if (!m.empty()) got.emplace_back(Clock::now(), m);
  }
  n.StopWatchdog();
  ASSERT_EQ(got.size(), kPings) << "the watchdog stopped pinging";
  for (const auto& [t, m] : got) EXPECT_EQ(m, "WATCHDOG=1");
  for (size_t i = 1; i < got.size(); ++i) {
    const auto gap =
        std::chrono::duration_cast<std::chrono::milliseconds>(got[i].first - got[i - 1].first);
    EXPECT_LT(gap.count(), 2000) << "ping " << i << " came ten timeouts after the one before";
  }
  const auto span =
      std::chrono::duration_cast<std::chrono::microseconds>(got.back().first - got.front().first);
  const double mean_ms =
      static_cast<double>(span.count()) / 1000.0 / static_cast<double>(got.size() - 1);
  RecordProperty("mean_gap_ms", std::to_string(mean_ms));
  std::printf("watchdog: %zu pings, mean gap %.1f ms (want 100)\n", got.size(), mean_ms);
  // The first ping may have waited for the test thread; the 7 waits after
  // it still take 700 ms at least.
  EXPECT_GE(mean_ms, 70.0) << "the watchdog pings faster than half its timeout";
  // Stopped (and joined): whatever it sent is queued already, then nothing.
  while (!Receive(std::chrono::milliseconds(0)).empty()) {
  }
  EXPECT_EQ(Receive(std::chrono::milliseconds(250)), "");
}

TEST_F(NotifySocketTest, WatchdogSkipsPingsWhileNotAlive) {
  setenv("WATCHDOG_USEC", "100000", 1);  // pings every 50 ms
  Notifier n;                            // WATCHDOG_PID unset: the watchdog is ours
  std::atomic<bool> alive{false};
  std::atomic<int> refused{0};  // checks that answered "not alive"
  n.StartWatchdog([&] {
    const bool now = alive.load();
    if (!now) ++refused;
    return now;
  });
  // Until `refused` reaches `n`, nothing may arrive.
  auto expect_silence_until = [&](int n) {
    EXPECT_TRUE(::idsync::testing::WaitUntil(
        [&] {
          EXPECT_EQ(Receive(std::chrono::milliseconds(0)), "") << "a ping while not alive";
          return refused.load() >= n;
        },
        std::chrono::seconds(20)))
        << "the watchdog stopped checking";
    EXPECT_EQ(Receive(std::chrono::milliseconds(0)), "") << "a ping while not alive";
  };
  expect_silence_until(3);
  alive = true;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Receive(std::chrono::milliseconds(5000)), "WATCHDOG=1") << "ping " << i;
  }
  alive = false;
  // Once a check has answered "not alive" again, every ping decided before
  // it has been sent (the watchdog checks and sends on one thread): drain.
  const int refused_before = refused.load();
  ASSERT_TRUE(::idsync::testing::WaitUntil([&] { return refused.load() > refused_before; },
                                           std::chrono::seconds(20)));
  while (!Receive(std::chrono::milliseconds(0)).empty()) {
  }
  expect_silence_until(refused.load() + 3);
}

TEST_F(NotifySocketTest, DestructorStopsTheWatchdog) {
  setenv("WATCHDOG_USEC", "100000", 1);
  {
    Notifier n;
    n.StartWatchdog([] { return true; });
    EXPECT_EQ(Receive(std::chrono::milliseconds(5000)), "WATCHDOG=1");
  }
  // The destructor joined the watchdog: what it sent is queued already.
  while (!Receive(std::chrono::milliseconds(0)).empty()) {
  }
  EXPECT_EQ(Receive(std::chrono::milliseconds(200)), "");
}

}  // namespace
}  // namespace idsync::daemon
