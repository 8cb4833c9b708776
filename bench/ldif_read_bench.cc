// Reads the benchmark company (100,000 users, 10,000 groups, about 1,000,000
// member values) from LDIF text into a snapshot: parsing, filtering, and
// resolving every member DN. See bench/README.md.
#include <sstream>
#include <string>

#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include "idsync/config/config.h"
#include "idsync/gen/directory_generator.h"
#include "idsync/ldif/ldif_source.h"

namespace idsync::ldif {
namespace {

const std::string& CompanyLdif() {
  static const std::string* text = [] {
    gen::DirectoryOptions options;
    options.users = 100000;
    options.groups = 10000;
    options.seed = 7;
    options.cycles = 5;
    std::ostringstream out;
    gen::WriteLdif(gen::GenerateDirectory(options), options.base, out);
    return new std::string(out.str());
  }();
  return *text;
}

void BM_SnapshotFromLdif(benchmark::State& state) {
  LdifConfig source;
  source.name = "directory";
  source.users.base = "ou=people,dc=corp,dc=example";
  source.users.filter = "(objectClass=inetOrgPerson)";
  source.users.disabled_filter = "(employeeType=former)";
  source.groups.base = "ou=groups,dc=corp,dc=example";
  source.groups.filter = "(objectClass=groupOfNames)";
  const std::string& text = CompanyLdif();
  std::size_t users = 0;
  for (auto _ : state) {
    auto snapshot = SnapshotFromLdif(source, text);
    if (!snapshot.ok()) {
      state.SkipWithError(snapshot.status().ToString().c_str());
      return;
    }
    users = snapshot->users.size();
    benchmark::DoNotOptimize(snapshot);
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  state.counters["users"] = static_cast<double>(users);
  state.counters["ldif_MB"] = static_cast<double>(text.size()) / 1e6;
  state.counters["peak_rss_MB"] = static_cast<double>(usage.ru_maxrss) / 1024.0;
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_SnapshotFromLdif)->Unit(benchmark::kMillisecond)->MinTime(3);

}  // namespace
}  // namespace idsync::ldif

BENCHMARK_MAIN();
