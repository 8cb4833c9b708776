// Shared by the command implementations of the `idsync` CLI (not installed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "idsync/config/config.h"
#include "idsync/daemon/inputs.h"
#include "idsync/mapping/catalog.h"
#include "idsync/mapping/rules.h"
#include "idsync/store/store.h"

namespace idsync::daemon::cli {

struct Args {
  std::string command;
  std::vector<std::string> positional;
  std::string config = "/etc/idsync/idsync.yaml";
  std::string account_state;
  std::string since;
  std::string head;
  std::string credentials_dir;  // --credentials-dir: where ${file:NAME} is read from
  std::string to;               // store copy --to URL
  std::string format;           // report --format
  std::string out;              // report --out FILE
  bool json = false;
  bool all = false;
  bool force = false;
  bool online = false;
  bool changes = false;  // report --changes
  bool help = false;
  bool version = false;
};

// The configuration loaded against `catalog`, with its rules compiled.
struct Loaded {
  config::Config config;
  mapping::Catalog catalog;
  std::unique_ptr<mapping::RuleSet> rules;
};

// Loads args.config (secrets per `secrets`, files from --credentials-dir
// when given) and compiles its rules; prints the problem to `err` and
// returns nullopt on failure.
std::optional<Loaded> LoadConfigAndRules(const Args& args, const mapping::Catalog& catalog,
                                         config::SecretUse secrets, std::ostream& err);

// Opens the configured store, printing the problem on failure. Run as root,
// first becomes the store's owner (EnterStoreOwner); a refusal sets `exit`
// to kExitUsage, another failure to kExitFailed.
std::unique_ptr<store::Store> OpenStore(const config::Config& config, std::ostream& err,
                                        int* exit = nullptr);

// The configured store when its file already exists (never creates one), for
// commands that only look (explain, offline plan); nullptr otherwise.
std::unique_ptr<store::Store> OpenExistingStore(const config::Config& config);

// The sources read as a run reads them (SCIM sources and the last good reads
// of failing sources from the store, when it exists), each failure printed,
// and mapped with `options`; nullopt (the problem printed) when the mapping
// fails.
struct MappedSources {
  SourceReads reads;
  mapping::MappingResult mapped;
};
std::optional<MappedSources> ReadAndMap(const Loaded& loaded, const mapping::MapOptions& options,
                                        std::ostream& err);

int Apply(const Args& args, std::ostream& out, std::ostream& err);
int PlanLive(const Args& args, std::ostream& out, std::ostream& err);
int ValidateOnline(const Args& args, std::ostream& out, std::ostream& err);
int StatusCommand(const Args& args, std::ostream& out, std::ostream& err);
int Audit(const Args& args, std::ostream& out, std::ostream& err);
int ScimToken(const Args& args, std::ostream& out, std::ostream& err);
int StoreCommand(const Args& args, std::ostream& out, std::ostream& err);
int PolicyTest(const Args& args, std::ostream& out, std::ostream& err);
int Report(const Args& args, std::ostream& out, std::ostream& err);

// "2026-11-28", "2026-11-28T10:00:00Z", or a duration meaning that long
// ago ("30d"), as milliseconds since the epoch; "" is 0 (the beginning).
Result<std::int64_t> ParseSince(const std::string& text, std::int64_t now_ms);

// Runs the configuration's given: policy tests (part of its validity, as
// validate checks it). When one fails: prints every failure to `err` and
// returns kTestsFailed; otherwise how many ran.
inline constexpr std::size_t kTestsFailed = static_cast<std::size_t>(-1);
std::size_t GivenTestsFail(const Loaded& loaded, std::ostream& err);

}  // namespace idsync::daemon::cli
