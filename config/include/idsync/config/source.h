// A source's section of the configuration and the types of source a build
// knows.
//
// The loader reads the keys every source has (name, type) and the keys the
// engine schedules on (interval and jitter for sources read on a schedule;
// watch and watch_interval for sources that can be followed; tokens for
// sources the identity provider pushes to). Everything else in the section
// belongs to the source's connector: its SourceType parses it through a
// SourceSection into its own options, a class derived from SourceOptions.
// Adding a type of source is a SourceType in the connector's folder and one
// registration line where the build lists its connectors.
//
// No YAML type appears here: a SourceSection hands out checked values, and
// every error it returns is kInvalidArgument "FILE:LINE:COL: message"
// pointing at the value (or, for a missing key, at the section).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "idsync/base/status.h"

namespace idsync::config {

using Duration = std::chrono::milliseconds;

// What a connector reads from its own keys. Each connector derives its own
// and finds it again with SourceConfig::OptionsAs.
class SourceOptions {
 public:
  virtual ~SourceOptions() = default;
};

// Where the users and groups of a directory are (the `users` and `groups`
// keys of the ldap and ldif sources).
struct UserQuery {
  std::string base;
  std::string filter = "(objectClass=*)";
  std::string email = "mail";
  std::string name = "cn";
  std::string disabled_filter;  // empty: nobody is disabled by filter
  std::string id;               // stable-id attribute; empty: by flavor (entryUUID / objectGUID)
};

struct GroupQuery {
  std::string base;  // empty only when the source has no `groups` section
  std::string filter = "(objectClass=*)";
  std::string name = "cn";
  std::string member = "member";
  bool nested = true;
  int max_depth = 32;
  bool in_chain = false;
};

// The options of a directory source (ldap, ldif): where its users and groups
// are. Connectors of directories derive theirs from it.
struct DirectoryOptions : SourceOptions {
  UserQuery users;
  GroupQuery groups;
};

struct SourceConfig {
  std::string name;
  std::string type;  // as written: "ldap", "ldif", "scim"

  // Pushed: the identity provider writes to idsync (SCIM); such a source is
  // never read on a schedule and has bearer tokens. Otherwise it is read
  // every `interval` (plus up to `jitter`).
  bool pushed = false;
  Duration interval = std::chrono::minutes(15);
  Duration jitter = std::chrono::minutes(1);
  // Followed between full runs (types that can be).
  bool watch = false;
  Duration watch_interval = std::chrono::seconds(30);
  // Pushed sources: "sha256:<64 hex>" hashes of the bearer tokens that write
  // to this source.
  std::vector<std::string> token_hashes;

  // The connector's own options; never null in a loaded Config.
  std::shared_ptr<const SourceOptions> options;

  // The options as the connector's type, or nullptr when they are another.
  template <typename T>
  const T* OptionsAs() const {
    return dynamic_cast<const T*>(options.get());
  }
};

// One source's section, as its connector's parser reads it. Each getter
// checks the value's type and form; an absent key gives the fallback. Cheap
// to copy; valid only during the parse call that received it.
class SourceSection {
 public:
  struct Impl;
  explicit SourceSection(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

  // The source's `name:`.
  const std::string& source_name() const;
  bool Has(std::string_view key) const;

  // A string as written.
  Result<std::string> Str(std::string_view key, std::string fallback = "") const;
  // A non-empty path, made absolute against the configuration's directory;
  // required.
  Result<std::string> Path(std::string_view key) const;
  // A distinguished name (RFC 4514); required.
  Result<std::string> Dn(std::string_view key) const;
  Result<bool> Flag(std::string_view key, bool fallback) const;
  Result<std::int64_t> Int(std::string_view key, std::int64_t min, std::int64_t max,
                           std::int64_t fallback) const;
  // "30s", "15m", ...; zero only when `allow_zero`.
  Result<Duration> Dur(std::string_view key, Duration fallback, bool allow_zero = false) const;
  // One string of a list, with where it was written.
  struct Text {
    std::string value;
    std::string path;  // "sources[0].url[1]"
    int line = 0;      // 1-based
    int column = 0;
  };
  // A string or a list of strings.
  Result<std::vector<Text>> Strings(std::string_view key) const;
  // A secret field: ${env:NAME} and ${file:NAME} expanded, unless the
  // command reads no source secrets (then "" after checking the syntax).
  // The value is never quoted in an error.
  Result<std::string> Secret(std::string_view key) const;
  // One of `names` (its index); `fallback` when absent.
  Result<std::size_t> OneOf(std::string_view key, const std::vector<std::string>& names,
                            std::size_t fallback) const;
  template <typename T>
  Result<T> Choice(std::string_view key, const std::vector<std::pair<std::string, T>>& choices,
                   T fallback) const {
    std::vector<std::string> names;
    std::size_t fallback_index = choices.size();
    for (std::size_t i = 0; i < choices.size(); ++i) {
      names.push_back(choices[i].first);
      if (choices[i].second == fallback) fallback_index = i;
    }
    ASSIGN_OR_RETURN(std::size_t i, OneOf(key, names, fallback_index));
    return i < choices.size() ? choices[i].second : fallback;
  }

  // A nested map under `key` whose keys must be among `allowed` (an absent
  // key is an empty section).
  Result<SourceSection> Open(std::string_view key, const std::vector<std::string>& allowed) const;
  // The `users` or `groups` map of a directory source. `in_memory`: its
  // filters are evaluated by idsync (ldif), not by a server.
  Result<UserQuery> Users(std::string_view key, bool in_memory) const;
  Result<GroupQuery> Groups(std::string_view key, bool in_memory) const;

  // Errors placed in the file: at the value of `key` (the section itself when
  // absent), at the key, or "missing required key".
  Status ErrorAt(std::string_view key, const std::string& message) const;
  Status ErrorAtKey(std::string_view key, const std::string& message) const;
  Status Missing(std::string_view key) const;
  Status ErrorAt(const Text& text, const std::string& message) const;

 private:
  std::shared_ptr<const Impl> impl_;
};

// A type of source: its `type:` name, the keys it takes, and its parser.
struct SourceType {
  std::string name;
  // Written to by the identity provider (takes `tokens`, not `interval`).
  bool pushed = false;
  // Can be followed between full runs (takes `watch` and `watch_interval`).
  bool watchable = false;
  // The connector's own keys, besides name, type and the ones above.
  std::vector<std::string> keys;
  // Dotted paths below the section whose values are secrets
  // ("bind.password"); a secret reference anywhere else is refused.
  std::vector<std::string> secret_keys;
  // Reads the connector's keys; errors from the section's getters (or its
  // ErrorAt) keep their place in the file.
  std::function<Result<std::shared_ptr<const SourceOptions>>(const SourceSection&)> parse;
};

// The types of source a build has, by name. Filled once at start, then
// only read.
class SourceTypes {
 public:
  void Add(SourceType type);
  const SourceType* Find(std::string_view name) const;
  std::vector<std::string> Names() const;

 private:
  std::map<std::string, SourceType, std::less<>> types_;
};

}  // namespace idsync::config
