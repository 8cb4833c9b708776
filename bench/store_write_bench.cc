// Store writes from concurrent writers: how many SCIM resource writes
// (PutIf, each durable before it returns) one store takes per second with
// 1, 4, 16 and 64 writers at once, so that commits shared by writes that
// arrive together show. Run by hand (bench/README.md):
//   build/bench/store_write_bench [STORE_URL] [SECONDS]
// STORE_URL defaults to a SQLite file in a fresh temporary directory.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "idsync/store/store.h"

namespace {

using Clock = std::chrono::steady_clock;

int Run(idsync::store::Store& store, int writers, double seconds, int round) {
  std::atomic<bool> stop{false};
  std::atomic<long> done{0};
  std::atomic<long> failed{0};
  std::vector<std::thread> threads;
  const auto started = Clock::now();
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      for (long i = 0; !stop.load(); ++i) {
        idsync::store::ScimResourceRow row;
        row.source = "bench";
        row.type = "User";
        row.id = "r" + std::to_string(round) + "-w" + std::to_string(w) + "-" + std::to_string(i);
        row.json = R"({"userName":")" + row.id + R"(@corp.example","active":true})";
        row.version = 1;
        row.updated_ms = 1;
        if (store.scim().PutIf(row, 0).ok()) {
          done.fetch_add(1);
        } else {
          failed.fetch_add(1);
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop.store(true);
  for (std::thread& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  std::printf("%3d writers: %8.0f writes/s (%ld in %.1f s, %ld failed)\n", writers,
              static_cast<double>(done.load()) / elapsed, done.load(), elapsed, failed.load());
  return failed.load() == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string url = argc > 1 ? argv[1] : "";
  const double seconds = argc > 2 ? std::atof(argv[2]) : 5.0;
  std::filesystem::path dir;
  if (url.empty()) {
    char pattern[] = "/tmp/idsync-store-bench.XXXXXX";
    if (mkdtemp(pattern) == nullptr) return 2;
    dir = pattern;
    url = "sqlite://" + (dir / "state.db").string();
  }
  auto store = idsync::store::Store::Open(url);
  if (!store.ok()) {
    std::fprintf(stderr, "store_write_bench: %s\n", store.status().ToString().c_str());
    return 2;
  }
  int rc = 0;
  int round = 0;
  for (int writers : {1, 4, 16, 64}) rc |= Run(**store, writers, seconds, ++round);
  store->reset();
  if (!dir.empty()) std::filesystem::remove_all(dir);
  return rc;
}
