// scim_test_server: serves SCIM (the real endpoint, service and SQLite store)
// on loopback for newman and the SCIM benchmark, until SIGTERM or SIGINT.
//
//   scim_test_server --port-file FILE [--token T] [--source NAME]
//                    [--listen 127.0.0.1:0] [--threads N] [--running N]
//                    [--store-dir DIR] [--seed N] [--seed-only]
//
// Writes the bound port to FILE once it serves (atomically: a reader never
// sees a partial file). --seed N creates N users (seed000001@bench.test ...)
// through the service before serving; --seed-only exits after seeding, leaving
// the store behind (the benchmark seeds on tmpfs, then serves from a copy on
// disk). Test-only: never installed.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>
#include <signal.h>

#include "scim_harness.h"

namespace {

int Usage() {
  std::cerr << "usage: scim_test_server --port-file FILE [--token T] [--source NAME] "
               "[--listen ADDR] [--threads N] [--running N] [--store-dir DIR] [--seed N] "
               "[--seed-only]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string port_file, token = "conformance-token", source = "entra";
  idsync::scim::testing::HarnessOptions options;
  long seed = 0;
  bool seed_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--seed-only") {
      seed_only = true;
      continue;
    }
    if (i + 1 >= argc) return Usage();
    const std::string value = argv[++i];
    if (arg == "--port-file") {
      port_file = value;
    } else if (arg == "--token") {
      token = value;
    } else if (arg == "--source") {
      source = value;
    } else if (arg == "--listen") {
      options.listen = value;
    } else if (arg == "--threads") {
      options.threads = std::atoi(value.c_str());
    } else if (arg == "--running") {
      options.running = std::atoi(value.c_str());
    } else if (arg == "--store-dir") {
      options.store_dir = value;
    } else if (arg == "--seed") {
      seed = std::atol(value.c_str());
    } else {
      return Usage();
    }
  }
  if (port_file.empty() && !seed_only) return Usage();
  options.sources = {{source, token}};

  // Signals are taken by sigwait below; every thread started later inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  idsync::Result<std::unique_ptr<idsync::scim::testing::ScimHarness>> harness =
      idsync::scim::testing::ScimHarness::Start(options);
  if (!harness.ok()) {
    std::cerr << "scim_test_server: " << harness.status().ToString() << "\n";
    return 1;
  }
  idsync::scim::testing::ScimHarness& h = **harness;

  if (seed > 0) {
    // Several writers, as an identity provider's parallel pushes would be.
    constexpr int kSeedThreads = 8;
    const auto start = std::chrono::steady_clock::now();
    std::atomic<long> next = 1;
    std::atomic<bool> failed = false;
    std::vector<std::thread> writers;
    for (int t = 0; t < kSeedThreads; ++t) {
      writers.emplace_back([&] {
        for (long n = next++; n <= seed && !failed; n = next++) {
          char name[64];
          std::snprintf(name, sizeof(name), "seed%06ld@bench.test", n);
          idsync::scim::ScimRequest req;
          req.source = source;
          req.method = "POST";
          req.path = "/Users";
          req.content_type = "application/scim+json";
          req.base_url = "http://127.0.0.1/scim/v2";
          req.body = std::string("{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],") +
                     "\"userName\":\"" + name + "\",\"active\":true,\"displayName\":\"Seed " +
                     std::to_string(n) + "\",\"emails\":[{\"value\":\"" + name +
                     "\",\"type\":\"work\",\"primary\":true}]}";
          const idsync::scim::ScimResponse r = h.service().Handle(req);
          if (r.status != 201) {
            std::cerr << "scim_test_server: seeding " << name << " got " << r.status << ": "
                      << r.body << "\n";
            failed = true;
          }
        }
      });
    }
    for (std::thread& w : writers) w.join();
    if (failed) return 1;
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cerr << "scim_test_server: seeded " << seed << " users in " << secs << " s\n";
  }

  if (seed_only) return 0;

  const std::string tmp = port_file + ".tmp";
  {
    std::ofstream out(tmp);
    out << h.port() << "\n";
    if (!out) {
      std::cerr << "scim_test_server: cannot write " << tmp << "\n";
      return 1;
    }
  }
  if (std::rename(tmp.c_str(), port_file.c_str()) != 0) {
    std::cerr << "scim_test_server: cannot rename " << tmp << "\n";
    return 1;
  }
  std::cerr << "scim_test_server: serving on 127.0.0.1:" << h.port() << "\n";

  int sig = 0;
  sigwait(&signals, &sig);
  std::cerr << "scim_test_server: stopping\n";
  return 0;
}
