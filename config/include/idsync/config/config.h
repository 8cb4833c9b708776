// The validated configuration of one idsync instance (contracts/config.md),
// and the loader that builds it from YAML.
//
// Loading reads the file, checks every key, type and value, resolves secrets
// (${env:NAME}, ${file:NAME}) in account.token and in the secret keys of the
// source types (an ldap source's bind.password) only (a reference in any
// other value is an error), reads each source's own keys with its type's
// parser (LoadOptions::source_types), and compiles presets and
// rules against a catalog. Any problem is one kInvalidArgument whose message starts with
// "FILE:LINE:COLUMN: ". A Config is an immutable value once loaded; share it
// read-only between threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/config/source.h"
#include "idsync/mapping/catalog.h"
#include "idsync/mapping/policy.h"
#include "idsync/mapping/reconcile.h"
#include "idsync/mapping/rules.h"

namespace idsync::config {

struct AccountConfig {
  std::string url;    // Account API base, e.g. https://studio.example.com/api/v1
  std::string token;  // resolved secret; never logged
  std::string ca_file;
  bool verify = true;
  double max_requests_per_second = 20;
  int concurrency = 4;
  // One attempt, connect, send and receive together.
  Duration timeout = std::chrono::seconds(10);
  // How long a write (the outbox) is retried before it is recorded as failed.
  Duration retry_for = std::chrono::hours(24);
  // How long a read (catalog, projects, the user listing) is retried before
  // the command or run that needs it fails.
  Duration read_retry_for = std::chrono::minutes(1);
};

struct ServerConfig {
  std::vector<std::string> listen;  // "host:port" for SCIM; empty: no SCIM listener
  std::string tls_cert;
  std::string tls_key;
  std::string scim_path = "/scim/v2";
  std::uint64_t max_body = 1024 * 1024;
  std::vector<std::string> admin_listen = {"127.0.0.1:9107"};
  std::vector<std::string> admin_tokens;  // "sha256:<64 hex>"
  // TLS for the admin listener (server.admin_tls); both or neither.
  std::string admin_tls_cert;
  std::string admin_tls_key;
  // An admin listener outside loopback without TLS is refused unless set.
  bool admin_allow_insecure = false;

  // Deadlines, the same on both listeners (docs/operations.md, "Exposing
  // the SCIM endpoint").
  Duration header_timeout = std::chrono::seconds(10);  // the whole request head
  Duration body_timeout = std::chrono::seconds(30);    // the whole body
  Duration tls_handshake_timeout = std::chrono::seconds(10);
  Duration keep_alive_timeout = std::chrono::seconds(60);  // idle between requests
  Duration write_timeout = std::chrono::seconds(30);       // writing one response
  // Connection caps, per listener.
  int max_connections = 4096;
  int max_connections_per_ip = 256;
  // Work per SCIM request.
  std::uint64_t max_patch_values = 10000;        // member values one PATCH may add or remove
  std::uint64_t max_response = 8 * 1024 * 1024;  // a list response's body, in bytes
  // This replica's name among several on one PostgreSQL store; "": the host
  // name and the process id.
  std::string replica_id;
  // How long a sign-in to the web console (/ui/) lasts.
  Duration console_session = std::chrono::hours(8);
};

// Several replicas on one PostgreSQL store (ha:).
struct HaConfig {
  // How long a leader's lease lasts; renewed every third of it.
  Duration lease = std::chrono::seconds(10);
};

enum class CatalogSource { kAccount, kBuiltin };

struct SafetyConfig {
  // Unset, removals are held to 10% of managed users: a directory outage
  // that empties a group must not deprovision everyone by default.
  mapping::Limit max_removals{mapping::Limit::Kind::kPercent, 10};
  mapping::Limit max_changes;
  Duration window = std::chrono::hours(1);
};

struct LoggingConfig {
  enum class Format { kText, kJson };
  enum class Level { kDebug, kInfo, kWarning, kError };
  Format format = Format::kText;
  Level level = Level::kInfo;
};

// Where a configuration element was written, for later messages.
struct Location {
  int line = 0;    // 1-based
  int column = 0;  // 1-based
};

struct Config {
  std::string path;  // the file it was loaded from
  AccountConfig account;
  // A sqlite:// URL (its path made absolute) or a postgresql:// libpq URI.
  // May hold a password: never echoed.
  std::string store = "sqlite:///var/lib/idsync/state.db";
  std::string store_password;  // store.password, resolved; never logged
  std::vector<SourceConfig> sources;
  ServerConfig server;
  HaConfig ha;
  CatalogSource catalog_source = CatalogSource::kAccount;
  std::vector<mapping::Preset> custom_presets;
  std::vector<mapping::Rule> rules;
  std::vector<Location> rule_locations;  // parallel to rules
  // Policy tests (`tests:`), in file order, each with its "FILE:LINE:COL".
  // Loading checks their shape; running them is the caller's
  // (mapping/policy.h).
  std::vector<mapping::PolicyCase> tests;
  // What loads but should not be so, for `idsync validate` and
  // --check-config: "FILE:LINE:COL: message" for a secret written in the
  // file, "FILE: message" for a token hash published in the docs
  // (PublishedTokenWarnings).
  std::vector<std::string> warnings;
  mapping::DeprovisionMode deprovision = mapping::DeprovisionMode::kRemove;
  bool adopt_existing = false;
  std::vector<std::string> protect;  // lower-cased e-mail addresses
  SafetyConfig safety;
  LoggingConfig logging;
  // retention.runs: finished outbox entries and runs older than this are
  // deleted after each full run (the audit log is never pruned).
  Duration retention_runs = std::chrono::hours(24 * 90);

  // The source with this name, or nullptr.
  const SourceConfig* FindSource(std::string_view name) const;

  // The store path of a sqlite:// URL ("" for another scheme). The loader
  // makes the path absolute (":memory:" stays as is).
  std::string SqlitePath() const;

  // The reconcile policy these settings give (force off, empty window).
  mapping::ReconcilePolicy Policy() const;
};

// Which secret fields a load reads (a command that talks to neither the
// account nor a directory needs none, and may run where the credentials are
// not, e.g. a shell outside the unit). Every choice but kNone reads
// store.password: every command that opens the store needs it.
enum class SecretUse {
  kAll,      // account.token, every bind.password, store.password
  kSources,  // bind.password and store.password: account.token is left empty
  kStore,    // store.password only (status, audit: they read the store alone)
  kNone,     // none: each is left empty (offline validate, --check-config)
};

struct LoadOptions {
  // Secret fields not read are still checked for malformed references.
  SecretUse secrets = SecretUse::kAll;
  // The catalog presets and permission keys are checked against; nullptr: the
  // built-in one.
  const mapping::Catalog* catalog = nullptr;
  // Looks up ${env:NAME} (and $CREDENTIALS_DIRECTORY when
  // credentials_directory is unset); unset: the process environment.
  std::function<std::optional<std::string>(const std::string&)> getenv;
  // Where a relative ${file:NAME} is read from; unset: $CREDENTIALS_DIRECTORY.
  std::optional<std::string> credentials_directory;
  // The types of source the file may use (the build's connectors); nullptr:
  // none, and any source is refused.
  const SourceTypes* source_types = nullptr;
};

// Reads and validates `path`. kInvalidArgument "FILE:LINE:COL: message" for
// bad YAML, unknown keys, wrong types, bad values, unknown presets, sources or
// permission keys, rules that grant nothing, secret references outside the
// secret fields, and missing secrets (the message names the reference,
// never a value); kNotFound "cannot read FILE: reason" when the file cannot
// be read. Relative paths in the file resolve against its directory. Blocks
// on file reads; safe to call from several threads when `options.getenv` is.
Result<Config> LoadConfig(const std::string& path, const LoadOptions& options = {});

// As LoadConfig, from text already read; `file_name` is used in messages and
// to resolve relative paths (the directory of the file).
Result<Config> ParseConfig(const std::string& text, const std::string& file_name,
                           const LoadOptions& options = {});

// Token hashes (scim sources' `tokens`, `server.admin_tokens`) that were
// published in idsync's documentation or examples: one line per hash found,
// naming where it is, for `idsync validate` and `idsyncd --check-config` to
// warn about. A published hash is no secret; its token may be guessable.
std::vector<std::string> PublishedTokenWarnings(const Config& config);

// The `store` URL written in `path` (or the default; `store.url` when the
// store is a mapping), read without checking the rest of the file: where to
// find the cached account catalog before the file can be checked against it.
// A store password is not read: a PostgreSQL store that needs one is found
// only through PGPASSFILE here.
Result<std::string> ReadStoreUrl(const std::string& path);

// Parses "30s", "15m", "2h", "1d", "500ms" (also combined, largest unit
// first, each unit once: "1h30m"); "0s" is zero. kInvalidArgument otherwise
// (no spaces, signs, fractions or bare numbers).
Result<Duration> ParseDuration(std::string_view text);

// Parses "10" (a count), "5%" (of managed users; 0-100, "2.5%" allowed) or
// "none" (unlimited). kInvalidArgument otherwise.
Result<mapping::Limit> ParseLimit(std::string_view text);

// Parses "1MiB", "512KiB", "1048576", "2MB" (units B, KB/kB, MB, GB, KiB,
// MiB, GiB). kInvalidArgument otherwise.
Result<std::uint64_t> ParseByteSize(std::string_view text);

}  // namespace idsync::config
