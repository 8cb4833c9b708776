// `idsync report`: the access review of everyone with access, from the
// sources as a run reads them; `idsync report --changes`: who gained or
// lost what, from the audit log.

#include <cstdio>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include <sys/stat.h>

#include "idsync/daemon/cli.h"
#include "idsync/daemon/inputs.h"
#include "idsync/daemon/report.h"
#include "idsync/daemon/status.h"
#include "idsync/daemon/sync.h"

#include "cli_internal.h"

namespace idsync::daemon::cli {
namespace {

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

// Writes through `write` to --out (a file beside it first, then renamed,
// readable by its owner and group only: it lists people's access) or to
// `out`. False, with the problem printed, when the file cannot be written.
template <typename Write>
bool Emit(const Args& args, std::ostream& out, std::ostream& err, Write write) {
  if (args.out.empty()) {
    write(out);
    return true;
  }
  const std::string partial = args.out + ".partial";
  {
    std::ofstream file(partial, std::ios::binary | std::ios::trunc);
    if (!file) {
      err << "idsync: cannot write " << partial << "\n";
      return false;
    }
    ::chmod(partial.c_str(), 0640);
    write(file);
    file.flush();
    if (!file) {
      err << "idsync: cannot write " << partial << "\n";
      std::remove(partial.c_str());
      return false;
    }
  }
  if (std::rename(partial.c_str(), args.out.c_str()) != 0) {
    err << "idsync: cannot write " << args.out << "\n";
    std::remove(partial.c_str());
    return false;
  }
  return true;
}

int Changes(const Args& args, const std::string& format, std::ostream& out, std::ostream& err) {
  if (format != "csv" && format != "json") {
    err << "idsync: report --changes takes --format csv or json\n";
    return kExitUsage;
  }
  Result<std::int64_t> since = ParseSince(args.since, SystemNowMs());
  if (!since.ok()) {
    err << "idsync: " << since.status().message() << "\n";
    return kExitUsage;
  }
  std::optional<Loaded> loaded =
      LoadConfigAndRules(args, OfflineCatalog(args.config), config::SecretUse::kStore, err);
  if (!loaded) return kExitUsage;
  int exit = kExitFailed;
  std::unique_ptr<store::Store> store = OpenStore(loaded->config, err, &exit);
  if (!store) return exit;
  Result<std::vector<store::AuditEntry>> entries = store->audit().Since(*since);
  if (!entries.ok()) {
    err << "idsync: store: " << entries.status().message() << "\n";
    return kExitFailed;
  }
  Result<std::vector<AccessChange>> changes = AccessChanges(*entries);
  if (!changes.ok()) {
    err << "idsync: " << changes.status().message() << "\n";
    return kExitFailed;
  }
  const bool written = Emit(args, out, err, [&](std::ostream& to) {
    if (format == "json") {
      WriteChangesJson(to, *changes);
    } else {
      WriteChangesCsv(to, *changes);
    }
  });
  return written ? kExitOk : kExitFailed;
}

}  // namespace

int Report(const Args& args, std::ostream& out, std::ostream& err) {
  if (!args.positional.empty()) {
    err << "idsync: report takes no arguments\n";
    return kExitUsage;
  }
  const std::string format = !args.format.empty() ? args.format : args.json ? "json" : "csv";
  if (!args.since.empty() && !args.changes) {
    err << "idsync: --since goes with report --changes\n";
    return kExitUsage;
  }
  if (args.changes) return Changes(args, format, out, err);
  if (format != "csv" && format != "csv-long" && format != "json" && format != "html") {
    err << "idsync: report --format takes csv, csv-long, json or html, not '" << format << "'\n";
    return kExitUsage;
  }
  std::optional<Loaded> loaded =
      LoadConfigAndRules(args, OfflineCatalog(args.config), config::SecretUse::kSources, err);
  if (!loaded) return kExitUsage;
  mapping::MapOptions options;
  options.details = true;
  std::optional<MappedSources> read = ReadAndMap(*loaded, options, err);
  if (!read) return kExitFailed;
  ReportPeople people;
  for (const mapping::PersonAccess& p : read->mapped.people) {
    if (p.has_access) people.push_back(&p);
  }
  ReportMeta meta;
  meta.config_path = args.config;
  meta.config_sha256 = Sha256Hex(ReadBytes(args.config));
  meta.generated_ms = SystemNowMs();
  if (std::unique_ptr<store::Store> store = OpenExistingStore(loaded->config)) {
    Result<std::string> head = store->audit().Head();
    if (head.ok()) meta.audit_head = *head;
  }
  const bool written = Emit(args, out, err, [&](std::ostream& to) {
    if (format == "csv") {
      WriteReportCsv(to, *loaded->rules, people);
    } else if (format == "csv-long") {
      WriteReportCsvLong(to, *loaded->rules, people);
    } else if (format == "json") {
      WriteReportJson(to, *loaded->rules, people, meta);
    } else {
      WriteReportHtml(to, *loaded->rules, people, meta);
    }
  });
  if (!written) return kExitFailed;
  return read->reads.failed.empty() ? kExitOk : kExitFailed;
}

}  // namespace idsync::daemon::cli
