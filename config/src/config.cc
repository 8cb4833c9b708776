// The configuration loader: YAML text -> a checked Config.
//
// Why one file of ~1,500 lines: every section's checks share the node
// walkers and the FILE:LINE:COL error helpers defined once at the top, and the
// cross-section checks (rules against presets, sources and the catalog;
// secrets only in their fields) need every section parsed; splitting by section
// would export those helpers for no reader's benefit. Sections are in the
// order config.md documents them. A source's own keys are read by its
// connector's parser through SourceSection (source.h), defined at the end.
//
// yaml-cpp is used only to build a node tree; every check is ours, so that
// each error can point at the key or value that caused it. yaml-cpp marks are
// 0-based; messages are 1-based ("FILE:LINE:COL: ..."). yaml-cpp exceptions
// are caught here and never leave this file.
//
// Secrets are expanded only in account.token and in the keys a source type
// names as secret (the ldap type's bind.password), and no message quotes
// those. Every other string is
// taken as written and a secret reference in it is refused (CheckSecrets), so
// a secret can never reach a rule name, a group, a glob or a project, which
// explain, plans and audit entries show.

#include "idsync/config/config.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include "idsync/base/ascii.h"
#include "idsync/filter/filter.h"
#include "idsync/mapping/dn.h"
#include "idsync/mapping/glob.h"

#include "secrets.h"

namespace idsync::config {
namespace {

using internal::SecretResolver;
using Words = std::vector<std::string>;

// ---------------------------------------------------------------------------
// Text helpers

// A value as written, for messages: quoted, one line, cut when long.
std::string Quote(std::string_view raw) {
  constexpr std::size_t kMax = 60;
  std::string out = "'";
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (i == kMax) {
      out += "...";
      break;
    }
    char c = raw[i];
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      out += c;
    }
  }
  out += "'";
  return out;
}

// "a, b or c".
std::string JoinOr(const Words& words) {
  std::string out;
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (i > 0) out += i + 1 == words.size() ? " or " : ", ";
    out += words[i];
  }
  return out;
}

// "a, b, c".
std::string Join(const Words& words) {
  std::string out;
  for (const std::string& word : words) {
    if (!out.empty()) out += ", ";
    out += word;
  }
  return out;
}

// Edit distance counting a swap of two neighbours as one edit (optimal
// string alignment): "emial" is one slip away from "email".
std::size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// " (did you mean 'x'?)" when a candidate is close enough to `word` to be
// the likely intent (a typo or a case slip), else "".
std::string Suggest(std::string_view word, const Words& candidates) {
  std::string lower = base::AsciiLower(word);
  const std::string* best = nullptr;
  std::size_t best_distance = 0;
  for (const std::string& candidate : candidates) {
    std::size_t d = EditDistance(lower, base::AsciiLower(candidate));
    if (best == nullptr || d < best_distance) {
      best = &candidate;
      best_distance = d;
    }
  }
  if (best == nullptr) return "";
  // Two edits at most, and fewer than a third of the word: "max_removal"
  // suggests "max_removals", but "id" does not suggest "url".
  std::size_t limit = std::min<std::size_t>(2, std::max<std::size_t>(1, best->size() / 3));
  if (best_distance > limit) return "";
  return " (did you mean '" + *best + "'?)";
}

bool Contains(const Words& words, std::string_view word) {
  return std::find(words.begin(), words.end(), word) != words.end();
}

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

bool IsLowerHex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// "sha256:<64 lowercase hex digits>", as `idsync scim-token new` prints.
bool IsTokenHash(std::string_view text) {
  constexpr std::string_view kPrefix = "sha256:";
  return StartsWith(text, kPrefix) && text.size() == kPrefix.size() + 64 &&
         IsLowerHex(text.substr(kPrefix.size()));
}

// A plain address: one '@' between a non-empty local part and a domain of
// non-empty labels, no spaces, no globs (protect names people exactly).
bool IsEmailAddress(std::string_view text) {
  std::size_t at = text.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == text.size()) return false;
  if (text.find('@', at + 1) != std::string_view::npos) return false;
  for (char c : text) {
    if (static_cast<unsigned char>(c) <= ' ' || c == '*' || c == '?' || c == ',' || c == ';' ||
        c == '<' || c == '>' || c == '"' || c == 0x7f) {
      return false;
    }
  }
  std::string_view domain = text.substr(at + 1);
  return domain.front() != '.' && domain.back() != '.' &&
         domain.find("..") == std::string_view::npos;
}

// An LDAP attribute description: a name ("mail", "msDS-x") or a numeric OID,
// with optional ";options".
bool IsAttributeName(std::string_view text) {
  std::string_view base = text.substr(0, text.find(';'));
  if (base.empty()) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (alpha(base[0])) {
    return std::all_of(base.begin(), base.end(),
                       [&](char c) { return alpha(c) || digit(c) || c == '-'; });
  }
  return std::all_of(base.begin(), base.end(), [&](char c) { return digit(c) || c == '.'; });
}

// "host:port", "[v6]:port"; the port 0-65535 (0: any free port, for tests).
bool IsListenAddress(std::string_view text) {
  std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view host = text.substr(0, colon);
  std::string_view port = text.substr(colon + 1);
  if (port.empty() || port.size() > 5) return false;
  if (!std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  if (std::stoi(std::string(port)) > 65535) return false;
  if (host.front() == '[') {
    if (host.back() != ']' || host.size() < 3) return false;
    std::string_view v6 = host.substr(1, host.size() - 2);
    return std::all_of(v6.begin(), v6.end(), [](char c) {
      return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
             c == ':' || c == '.';
    });
  }
  return std::all_of(host.begin(), host.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
           c == '-' || c == '_';
  });
}

// Whether a listen address (checked by IsListenAddress) stays on this host:
// 127.0.0.0/8, ::1 or localhost. 0.0.0.0 and [::] are every address.
bool IsLoopbackListen(std::string_view text) {
  std::string_view host = text.substr(0, text.rfind(':'));
  if (host == "[::1]" || host == "localhost") return true;
  if (host.substr(0, 4) != "127.") return false;
  int dots = 0;
  for (char c : host) {
    if (c == '.') {
      ++dots;
    } else if (c < '0' || c > '9') {
      return false;
    }
  }
  return dots == 3;
}

// A reference anywhere else, even written "$${env:", is refused rather than
// kept literally: whoever wrote it expected a secret there.
bool HasSecretReference(std::string_view text) {
  return text.find("${env:") != std::string_view::npos ||
         text.find("${file:") != std::string_view::npos;
}

constexpr char kSecretsOnlyIn[] =
    "secrets (${env:...}, ${file:...}) are only read in account.token, bind.password and "
    "store.password";

// Source names end up in metrics labels, store keys and log lines: keep them
// to a plain alphabet.
bool IsSourceName(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
           c == '-' || c == '_';
  });
}

// ---------------------------------------------------------------------------
// Positions

struct Value {
  YAML::Node node;
  YAML::Mark mark;                // where errors about the value point
  std::optional<YAML::Mark> key;  // the key it is written under, if any
  std::string path;               // "sources[0].users.base"; "" for the root
};

struct Field {
  std::string name;
  YAML::Node key_node;
  Value value;
};

// A checked mapping: known keys only, each once, in file order.
struct Section {
  Value self;
  std::vector<Field> fields;

  const Field* Get(std::string_view name) const {
    for (const Field& f : fields) {
      if (f.name == name) return &f;
    }
    return nullptr;
  }
};

std::string Child(const std::string& path, std::string_view name) {
  return path.empty() ? std::string(name) : path + "." + std::string(name);
}

std::string Item(const std::string& path, std::size_t index) {
  return path + "[" + std::to_string(index) + "]";
}

// " in PATH", or "" at the top level.
std::string In(const std::string& path) { return path.empty() ? "" : " in " + path; }

// The node's text for messages: what kind of thing it is.
std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return "nothing";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      break;
  }
  return Quote(node.Scalar());
}

// `node[key]` without the non-const operator's habit of adding the key.
YAML::Node Lookup(const YAML::Node& node, const std::string& key) { return node[key]; }

// A quoted scalar ('x', "x", block scalars, !!str) is a string, never a
// number or a boolean.
bool IsQuoted(const YAML::Node& node) { return node.Tag() != "?"; }

// ---------------------------------------------------------------------------
// The loader

class Loader {
 public:
  Loader(std::string file, const LoadOptions& options, const mapping::Catalog& catalog)
      : file_(std::move(file)),
        secrets_(options.getenv, options.credentials_directory),
        secret_use_(options.secrets),
        source_types_(options.source_types),
        catalog_(catalog) {
    std::filesystem::path dir = std::filesystem::path(file_).parent_path();
    std::error_code ec;
    if (dir.is_relative()) dir = std::filesystem::absolute(dir, ec);
    base_dir_ = dir.lexically_normal();
    for (const mapping::CatalogArea& area : catalog_.areas()) catalog_keys_.push_back(area.key);
    for (const std::string& key : catalog_.item_keys()) catalog_keys_.push_back(key);
  }

  Result<Config> Run(const YAML::Node& root);

  // A connector reads its source's keys through the same checks.
  friend class ::idsync::config::SourceSection;

  Status ErrorAt(const YAML::Mark& mark, const std::string& message) const {
    return InvalidArgumentError(Position(mark) + ": " + message);
  }

 private:
  Status At(const Value& v, const std::string& message) const { return ErrorAt(v.mark, message); }
  Status AtKey(const Field& f, const std::string& message) const {
    return ErrorAt(f.key_node.Mark(), message);
  }
  // Missing keys are reported at the key that opens the section.
  Status Missing(const Section& s, std::string_view key) const {
    return ErrorAt(s.self.key.value_or(s.self.mark),
                   "missing required key '" + std::string(key) + "'" + In(s.self.path));
  }
  Status TypeError(const Value& v, std::string_view expected) const {
    std::string got = Describe(v.node);
    if (v.node.IsScalar() && IsQuoted(v.node)) got += " (quoted, so a string)";
    return At(v, "expected " + std::string(expected) + " for " + v.path + ", got " + got);
  }

  // Structure.
  Result<std::vector<Field>> Entries(const Value& v) const;
  Result<Section> Open(const Value& v, const Words& allowed) const;
  Result<std::vector<Value>> List(const Value& v, bool allow_single) const;

  // Refuses a secret reference in any value but the secret fields, walking
  // the whole tree so that no key, present or future, is missed.
  void FindSecretPaths(const YAML::Node& root);
  Status CheckSecrets(const YAML::Node& node, const std::string& path) const;

  // Scalars.
  Result<std::string> Str(const Value& v) const;
  Result<std::string> NonEmptyStr(const Value& v) const;
  // A secret field: references expanded, the result non-empty.
  // A secret field: expanded when `read`, else only checked ("" returned).
  Result<std::string> Secret(const Value& v, bool read) const;
  Result<bool> Bool(const Value& v) const;
  Result<std::int64_t> Int(const Value& v, std::int64_t min, std::int64_t max) const;
  Result<double> Number(const Value& v) const;
  Result<Duration> Dur(const Value& v, bool allow_zero) const;
  // A byte size ("8MiB"), more than 0.
  Result<std::uint64_t> Size(const Value& v) const;
  Result<mapping::Limit> Limit(const Value& v) const;
  Result<std::string> Path(const Value& v) const;
  Result<std::string> TokenHash(const Value& v) const;
  Result<std::string> Filter(const Value& v, bool in_memory) const;
  Result<std::string> Dn(const Value& v) const;
  Result<std::string> Attribute(const Value& v) const;
  template <typename T>
  Result<T> Choice(const Value& v, const std::vector<std::pair<std::string, T>>& choices) const;

  // Sections.
  Status Account(const Value& v, AccountConfig* out);
  Status Store(const Value& v, Config* out);
  Status Ha(const Value& v, HaConfig* out);
  Status Sources(const Value& v, std::vector<SourceConfig>* out);
  Result<SourceConfig> Source(const Value& v);
  Status Users(const Value& v, bool in_memory, UserQuery* out) const;
  Status Groups(const Value& v, bool in_memory, GroupQuery* out) const;
  Status Server(const Value& v, ServerConfig* out);
  Status Permissions(const Value& v, Config* out);
  Result<mapping::PermissionSpec> Spec(const Value& v) const;
  Status Rules(const Value& v, const Config& config, std::vector<mapping::Rule>* out,
               std::vector<Location>* locations);
  Result<mapping::Rule> Rule(const Value& v, const Config& config);
  bool GrantsSomething(const mapping::Rule& rule) const;
  Status Tests(const Value& v, const Config& config, std::vector<mapping::PolicyCase>* out);
  Result<mapping::PolicyCase> Test(const Value& v, const Config& config);
  Status GivenPerson(const Value& v, const Config& config, mapping::PolicyCase* out);
  Status Expectation(const Value& v, const std::string& test, mapping::PolicyExpect* out);
  // Names a configured source, or is an error listing them.
  Status KnownSource(const Value& v, const std::string& name, const Config& config) const;
  Status Protect(const Value& v, std::vector<std::string>* out);
  Status Safety(const Value& v, SafetyConfig* out);
  Status Logging(const Value& v, LoggingConfig* out);
  Status CompileRules(const Config& config, const Value& rules_value);
  // Refuses a token hash written for two owners (two sources, or a source
  // and the admin API), naming both places.
  Status CheckTokenOwners() const;

  // "FILE:LINE:COL", as messages start.
  std::string Position(const YAML::Mark& mark) const {
    int line = mark.is_null() ? 1 : mark.line + 1;
    int column = mark.is_null() ? 1 : mark.column + 1;
    return file_ + ":" + std::to_string(line) + ":" + std::to_string(column);
  }

  std::string Resolve(const std::string& path) const {
    std::filesystem::path p(path);
    if (p.is_absolute()) return p.lexically_normal().string();
    return (base_dir_ / p).lexically_normal().string();
  }

  std::string file_;
  SecretResolver secrets_;
  SecretUse secret_use_;
  const SourceTypes* source_types_;
  // Where secrets may be written: "account.token" and each source's
  // secret keys ("sources[2].bind.password"), found before the walk.
  Words secret_paths_;
  mutable std::vector<std::string> warnings_;  // for Config::warnings
  const mapping::Catalog& catalog_;
  std::filesystem::path base_dir_;
  Words catalog_keys_;
  Words preset_names_;
  // Built-in and custom presets, set once `permissions` has been read.
  std::optional<mapping::PresetBook> presets_;
  // Every token hash in file order: its owner ("source 'idp'" or
  // "the admin API"), its path and where it is written.
  struct TokenPlace {
    std::string hash;
    std::string owner;
    std::string path;
    YAML::Mark mark;
  };
  std::vector<TokenPlace> token_places_;
};

Result<std::vector<Field>> Loader::Entries(const Value& v) const {
  std::vector<Field> fields;
  if (v.node.IsNull()) return fields;
  if (!v.node.IsMap()) {
    if (v.path.empty()) {
      return At(v, "the configuration must be a map of keys, got " + Describe(v.node));
    }
    return TypeError(v, "a map");
  }
  for (auto it = v.node.begin(); it != v.node.end(); ++it) {
    // A copy: the iterator hands out a temporary pair.
    const YAML::Node key = it->first;
    if (!key.IsScalar()) {
      return ErrorAt(key.Mark(), "keys must be names, got " + Describe(key) + In(v.path));
    }
    std::string name = key.Scalar();
    for (const Field& f : fields) {
      if (f.name == name) {
        return ErrorAt(key.Mark(), "duplicate key '" + name + "'" + In(v.path) +
                                       " (first at line " +
                                       std::to_string(f.key_node.Mark().line + 1) + ")");
      }
    }
    YAML::Node value = it->second;
    YAML::Mark mark = value.IsNull() || value.Mark().is_null() ? key.Mark() : value.Mark();
    fields.push_back(Field{name, key, Value{value, mark, key.Mark(), Child(v.path, name)}});
  }
  return fields;
}

Result<Section> Loader::Open(const Value& v, const Words& allowed) const {
  ASSIGN_OR_RETURN(std::vector<Field> fields, Entries(v));
  for (const Field& f : fields) {
    if (!Contains(allowed, f.name)) {
      return AtKey(f, "unknown key '" + f.name + "'" + In(v.path) + Suggest(f.name, allowed));
    }
  }
  return Section{v, std::move(fields)};
}

Result<std::vector<Value>> Loader::List(const Value& v, bool allow_single) const {
  std::vector<Value> items;
  if (v.node.IsNull()) return items;
  if (v.node.IsScalar() && allow_single) {
    items.push_back(v);
    return items;
  }
  if (!v.node.IsSequence()) return TypeError(v, allow_single ? "a string or a list" : "a list");
  std::size_t i = 0;
  for (auto it = v.node.begin(); it != v.node.end(); ++it, ++i) {
    YAML::Node item = *it;
    YAML::Mark mark = item.IsNull() || item.Mark().is_null() ? v.mark : item.Mark();
    items.push_back(Value{item, mark, std::nullopt, Item(v.path, i)});
  }
  return items;
}

void Loader::FindSecretPaths(const YAML::Node& root) {
  secret_paths_ = {"account.token", "store.password"};
  if (source_types_ == nullptr || !root.IsMap()) return;
  const YAML::Node sources = Lookup(root, "sources");
  if (!sources.IsDefined() || !sources.IsSequence()) return;
  std::size_t i = 0;
  for (auto it = sources.begin(); it != sources.end(); ++it, ++i) {
    const YAML::Node item = *it;
    if (!item.IsMap()) continue;
    const YAML::Node type = Lookup(item, "type");
    if (!type.IsDefined() || !type.IsScalar()) continue;
    const SourceType* spec = source_types_->Find(type.Scalar());
    if (spec == nullptr) continue;
    for (const std::string& key : spec->secret_keys) {
      secret_paths_.push_back(Child(Item("sources", i), key));
    }
  }
}

Status Loader::CheckSecrets(const YAML::Node& node, const std::string& path) const {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      if (HasSecretReference(node.Scalar()) && !Contains(secret_paths_, path)) {
        return ErrorAt(node.Mark(), kSecretsOnlyIn);
      }
      return Status::Ok();
    case YAML::NodeType::Sequence: {
      std::size_t i = 0;
      for (auto it = node.begin(); it != node.end(); ++it, ++i) {
        RETURN_IF_ERROR(CheckSecrets(*it, Item(path, i)));
      }
      return Status::Ok();
    }
    case YAML::NodeType::Map:
      for (auto it = node.begin(); it != node.end(); ++it) {
        // A non-scalar key is refused later, where the map is read.
        std::string name = it->first.IsScalar() ? it->first.Scalar() : "?";
        RETURN_IF_ERROR(CheckSecrets(it->second, Child(path, name)));
      }
      return Status::Ok();
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return Status::Ok();
}

Result<std::string> Loader::Str(const Value& v) const {
  if (!v.node.IsScalar()) return TypeError(v, "a string");
  return v.node.Scalar();
}

Result<std::string> Loader::NonEmptyStr(const Value& v) const {
  ASSIGN_OR_RETURN(std::string s, Str(v));
  if (s.empty()) return At(v, v.path + " must not be empty");
  return s;
}

Result<std::string> Loader::Secret(const Value& v, bool read) const {
  if (!v.node.IsScalar()) return TypeError(v, "a string");
  if (v.node.Scalar().empty()) return At(v, v.path + " must not be empty");
  if (v.node.Scalar().find("${") == std::string::npos) {
    warnings_.push_back(
        ErrorAt(v.mark, v.path + " holds the secret itself: anyone who can read the file has it; "
                                 "use ${file:NAME} (a systemd credential) or ${env:NAME}")
            .message());
  }
  if (!read) {
    if (Status syntax = secrets_.CheckSyntax(v.node.Scalar()); !syntax.ok()) {
      return At(v, syntax.message());
    }
    return std::string();
  }
  // Expansion refuses an empty variable or file, so the result is never
  // empty; messages name references only.
  Result<std::string> expanded = secrets_.Expand(v.node.Scalar());
  if (!expanded.ok()) return At(v, expanded.status().message());
  return expanded;
}

Result<bool> Loader::Bool(const Value& v) const {
  // Only YAML 1.2 booleans: "yes", "on" and friends are strings there, and
  // accepting them would make `no` (Norway) a boolean.
  if (v.node.IsScalar() && !IsQuoted(v.node)) {
    const std::string& s = v.node.Scalar();
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  return TypeError(v, "a boolean");
}

Result<std::int64_t> Loader::Int(const Value& v, std::int64_t min, std::int64_t max) const {
  bool ok = v.node.IsScalar() && !IsQuoted(v.node);
  std::int64_t n = 0;
  if (ok) {
    const std::string& s = v.node.Scalar();
    std::size_t start = !s.empty() && s[0] == '-' ? 1 : 0;
    ok = s.size() > start && s.size() - start <= 18 &&
         std::all_of(s.begin() + static_cast<std::ptrdiff_t>(start), s.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
    if (ok) n = std::stoll(s);
  }
  if (!ok) return TypeError(v, "an integer");
  if (n < min || n > max) {
    return At(v, v.path + " must be between " + std::to_string(min) + " and " +
                     std::to_string(max) + ", got " + std::to_string(n));
  }
  return n;
}

Result<double> Loader::Number(const Value& v) const {
  bool ok = v.node.IsScalar() && !IsQuoted(v.node) && !v.node.Scalar().empty();
  double d = 0;
  if (ok) {
    const std::string& s = v.node.Scalar();
    ok = std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || c == '.' || c == '-'; });
    char* end = nullptr;
    if (ok) d = std::strtod(s.c_str(), &end);
    ok = ok && end == s.c_str() + s.size() && std::isfinite(d);
  }
  if (!ok) return TypeError(v, "a number");
  if (d <= 0) return At(v, v.path + " must be more than 0, got " + v.node.Scalar());
  return d;
}

Result<std::uint64_t> Loader::Size(const Value& v) const {
  if (!v.node.IsScalar()) return TypeError(v, "a size");
  Result<std::uint64_t> size = ParseByteSize(v.node.Scalar());
  if (!size.ok()) {
    return At(v, "bad size " + Quote(v.node.Scalar()) + " for " + v.path +
                     ": write a number of bytes, optionally with a unit (B, KB, MB, GB, "
                     "KiB, MiB, GiB), e.g. 1MiB");
  }
  if (*size == 0) return At(v, v.path + " must be more than 0");
  return size;
}

Result<Duration> Loader::Dur(const Value& v, bool allow_zero) const {
  if (!v.node.IsScalar()) return TypeError(v, "a duration");
  Result<Duration> d = ParseDuration(v.node.Scalar());
  if (!d.ok()) {
    return At(v, "bad duration " + Quote(v.node.Scalar()) + " for " + v.path +
                     ": write whole numbers with a unit (ms, s, m, h, d), e.g. 30s, 15m, 2h, "
                     "1h30m");
  }
  if (!allow_zero && d->count() == 0) {
    return At(v, v.path + " must be longer than 0, got " + Quote(v.node.Scalar()));
  }
  return d;
}

Result<mapping::Limit> Loader::Limit(const Value& v) const {
  if (!v.node.IsScalar()) return TypeError(v, "a count, a percentage or none");
  Result<mapping::Limit> limit = ParseLimit(v.node.Scalar());
  if (!limit.ok()) {
    return At(v, "bad limit " + Quote(v.node.Scalar()) + " for " + v.path +
                     ": write a count (e.g. 10), a percentage from 0% to 100% (e.g. 5%) or "
                     "none (no limit)");
  }
  return limit;
}

Result<std::string> Loader::Path(const Value& v) const {
  ASSIGN_OR_RETURN(std::string s, NonEmptyStr(v));
  return Resolve(s);
}

Result<std::string> Loader::TokenHash(const Value& v) const {
  ASSIGN_OR_RETURN(std::string s, Str(v));
  if (!IsTokenHash(s)) {
    return At(v, v.path +
                     " must be sha256:<64 lowercase hex digits> (`idsync scim-token new` "
                     "prints one), got " +
                     Describe(v.node));
  }
  return s;
}

Result<std::string> Loader::Filter(const Value& v, bool in_memory) const {
  ASSIGN_OR_RETURN(std::string s, Str(v));
  Result<filter::Filter> parsed = filter::Filter::Parse(s);
  Status status =
      parsed.ok() ? (in_memory ? parsed->CheckEvaluable() : Status::Ok()) : parsed.status();
  if (!status.ok()) {
    return At(v,
              "bad LDAP filter " + Describe(v.node) + " for " + v.path + ": " + status.message());
  }
  return s;
}

Result<std::string> Loader::Dn(const Value& v) const {
  ASSIGN_OR_RETURN(std::string s, Str(v));
  Result<std::string> normal = mapping::NormalizeDn(s);
  if (s.empty() || !normal.ok()) {
    std::string why = s.empty() ? "it is empty" : normal.status().message();
    return At(v, "bad DN " + Describe(v.node) + " for " + v.path + ": " + why);
  }
  return s;
}

Result<std::string> Loader::Attribute(const Value& v) const {
  ASSIGN_OR_RETURN(std::string s, Str(v));
  if (!IsAttributeName(s)) {
    return At(v, v.path + " must be an LDAP attribute name, got " + Describe(v.node));
  }
  return s;
}

template <typename T>
Result<T> Loader::Choice(const Value& v,
                         const std::vector<std::pair<std::string, T>>& choices) const {
  Words names;
  for (const auto& [name, value] : choices) names.push_back(name);
  if (!v.node.IsScalar()) return TypeError(v, "one of " + JoinOr(names));
  for (const auto& [name, value] : choices) {
    if (v.node.Scalar() == name) return value;
  }
  return At(
      v, "unknown value " + Quote(v.node.Scalar()) + " for " + v.path + ": use " + JoinOr(names));
}

// ---------------------------------------------------------------------------
// Sections

Status Loader::Account(const Value& v, AccountConfig* out) {
  ASSIGN_OR_RETURN(Section s,
                   Open(v, {"url", "token", "ca_file", "verify", "max_requests_per_second",
                            "concurrency", "timeout", "retry_for", "read_retry_for"}));
  const Field* url = s.Get("url");
  if (url == nullptr) return Missing(s, "url");
  ASSIGN_OR_RETURN(out->url, Str(url->value));
  std::string lower = base::AsciiLower(out->url);
  std::size_t scheme = StartsWith(lower, "https://") ? 8 : StartsWith(lower, "http://") ? 7 : 0;
  if (scheme == 0 || out->url.size() == scheme || out->url[scheme] == '/') {
    return At(url->value,
              "account.url must be an http:// or https:// URL, got " + Describe(url->value.node));
  }
  // The client appends "/users" and friends; a trailing slash would double.
  while (out->url.back() == '/') out->url.pop_back();
  if (const Field* f = s.Get("token")) {
    ASSIGN_OR_RETURN(out->token, Secret(f->value, secret_use_ == SecretUse::kAll));
  }
  if (const Field* f = s.Get("ca_file")) {
    ASSIGN_OR_RETURN(out->ca_file, Path(f->value));
  }
  if (const Field* f = s.Get("verify")) {
    ASSIGN_OR_RETURN(out->verify, Bool(f->value));
  }
  if (const Field* f = s.Get("max_requests_per_second")) {
    ASSIGN_OR_RETURN(out->max_requests_per_second, Number(f->value));
  }
  if (const Field* f = s.Get("concurrency")) {
    ASSIGN_OR_RETURN(std::int64_t n, Int(f->value, 1, 256));
    out->concurrency = static_cast<int>(n);
  }
  if (const Field* f = s.Get("timeout")) {
    ASSIGN_OR_RETURN(out->timeout, Dur(f->value, false));
  }
  if (const Field* f = s.Get("retry_for")) {
    ASSIGN_OR_RETURN(out->retry_for, Dur(f->value, false));
  }
  if (const Field* f = s.Get("read_retry_for")) {
    ASSIGN_OR_RETURN(out->read_retry_for, Dur(f->value, false));
  }
  return Status::Ok();
}

Status Loader::Store(const Value& v, Config* out) {
  // A URL, or {url, password} where the password is a secret reference.
  Value url_value = v;
  std::optional<Section> section;
  if (v.node.IsMap()) {
    ASSIGN_OR_RETURN(section, Open(v, {"url", "password"}));
    const Field* url = section->Get("url");
    if (url == nullptr) return Missing(*section, "url");
    url_value = url->value;
  }
  // The value is never echoed: a database URL may hold a password.
  ASSIGN_OR_RETURN(std::string url, Str(url_value));
  std::string lower = base::AsciiLower(url);
  if (StartsWith(lower, "postgresql://") || StartsWith(lower, "postgres://")) {
    const std::size_t authority = url.find("://") + 3;
    const std::size_t at = url.find('@', authority);
    const std::size_t end = url.find_first_of("/?", authority);
    if (at != std::string::npos && (end == std::string::npos || at < end) &&
        url.find(':', authority) < at) {
      warnings_.push_back(
          ErrorAt(url_value.mark,
                  "the store URL holds a password: anyone who can read the file has it; use "
                  "store: {url: ..., password: ${file:NAME}} or PGPASSFILE")
              .message());
    }
    out->store = url;
  } else {
    constexpr std::string_view kSqlite = "sqlite://";
    if (!StartsWith(url, kSqlite) || url.size() == kSqlite.size()) {
      return At(url_value,
                "unsupported store URL: use sqlite:///PATH or postgresql://USER@HOST/DATABASE");
    }
    std::string path = url.substr(kSqlite.size());
    out->store = std::string(kSqlite) + (path == ":memory:" ? path : Resolve(path));
  }
  if (section) {
    if (const Field* f = section->Get("password")) {
      if (!StartsWith(lower, "postgres")) {
        return At(f->value, "store.password applies to a postgresql:// store only");
      }
      ASSIGN_OR_RETURN(out->store_password, Secret(f->value, secret_use_ != SecretUse::kNone));
    }
  }
  return Status::Ok();
}

Status Loader::Ha(const Value& v, HaConfig* out) {
  ASSIGN_OR_RETURN(Section s, Open(v, {"lease"}));
  if (const Field* f = s.Get("lease")) {
    ASSIGN_OR_RETURN(out->lease, Dur(f->value, false));
    if (out->lease < std::chrono::seconds(3) || out->lease > std::chrono::minutes(10)) {
      return At(f->value, "ha.lease must be between 3s and 10m");
    }
  }
  return Status::Ok();
}

// The keys every source has, and those the engine schedules on, by what the
// type is.
const Words& NameKeys() {
  static const Words* const kKeys = new Words{"name", "type"};
  return *kKeys;
}
const Words& PulledKeys() {
  static const Words* const kKeys = new Words{"interval", "jitter"};
  return *kKeys;
}
const Words& WatchKeys() {
  static const Words* const kKeys = new Words{"watch", "watch_interval"};
  return *kKeys;
}
const Words& PushedKeys() {
  static const Words* const kKeys = new Words{"tokens"};
  return *kKeys;
}

// The keys a source of this type takes.
Words KeysOf(const SourceType& type) {
  Words keys = NameKeys();
  const Words& schedule = type.pushed ? PushedKeys() : PulledKeys();
  keys.insert(keys.end(), schedule.begin(), schedule.end());
  if (type.watchable) keys.insert(keys.end(), WatchKeys().begin(), WatchKeys().end());
  keys.insert(keys.end(), type.keys.begin(), type.keys.end());
  return keys;
}

Status Loader::Sources(const Value& v, std::vector<SourceConfig>* out) {
  if (v.node.IsNull() || (v.node.IsSequence() && v.node.size() == 0)) {
    return At(v, "sources must list at least one source");
  }
  ASSIGN_OR_RETURN(std::vector<Value> items, List(v, false));
  std::vector<YAML::Mark> name_marks;
  for (const Value& item : items) {
    ASSIGN_OR_RETURN(SourceConfig source, Source(item));
    const YAML::Node name_node = Lookup(item.node, "name");
    for (std::size_t i = 0; i < out->size(); ++i) {
      if ((*out)[i].name == source.name) {
        return ErrorAt(name_node.Mark(), "duplicate source name '" + source.name +
                                             "' (first at line " +
                                             std::to_string(name_marks[i].line + 1) + ")");
      }
    }
    name_marks.push_back(name_node.Mark());
    out->push_back(std::move(source));
  }
  return Status::Ok();
}

}  // namespace

// A source's section as SourceSection hands it out: the loader that checks
// values, and the checked map.
struct SourceSection::Impl {
  const Loader* loader;
  Section section;
  std::string source_name;
};

namespace {

Result<SourceConfig> Loader::Source(const Value& v) {
  // Every key any type takes, so that a key of another type is told apart
  // from a typing slip.
  Words types = source_types_ != nullptr ? source_types_->Names() : Words{};
  Words all_keys;
  for (const std::string& name : types) {
    for (std::string& key : KeysOf(*source_types_->Find(name))) {
      if (!Contains(all_keys, key)) all_keys.push_back(std::move(key));
    }
  }
  for (const Words* common : {&NameKeys(), &PulledKeys(), &WatchKeys(), &PushedKeys()}) {
    for (const std::string& key : *common) {
      if (!Contains(all_keys, key)) all_keys.push_back(key);
    }
  }
  if (types.empty()) return At(v, "this build knows no source types");
  ASSIGN_OR_RETURN(Section s, Open(v, all_keys));
  SourceConfig out;
  const Field* name = s.Get("name");
  if (name == nullptr) return Missing(s, "name");
  ASSIGN_OR_RETURN(out.name, Str(name->value));
  if (!IsSourceName(out.name)) {
    return At(name->value, "source names use letters, digits, '.', '-' and '_', got " +
                               Describe(name->value.node));
  }
  const Field* type = s.Get("type");
  if (type == nullptr) return Missing(s, "type");
  if (!type->value.node.IsScalar()) return TypeError(type->value, "one of " + JoinOr(types));
  out.type = type->value.node.Scalar();
  const SourceType* spec = source_types_->Find(out.type);
  if (spec == nullptr) {
    return At(type->value, "unknown value " + Quote(out.type) + " for " + type->value.path +
                               ": use " + JoinOr(types));
  }
  const Words keys = KeysOf(*spec);
  for (const Field& f : s.fields) {
    if (!Contains(keys, f.name)) {
      return AtKey(f, "key '" + f.name + "' does not apply to a source of type " + out.type);
    }
  }

  out.pushed = spec->pushed;
  if (spec->pushed) {
    const Field* tokens = s.Get("tokens");
    if (tokens == nullptr) return Missing(s, "tokens");
    ASSIGN_OR_RETURN(std::vector<Value> items, List(tokens->value, false));
    if (items.empty()) return At(tokens->value, "tokens must list at least one token hash");
    for (const Value& item : items) {
      ASSIGN_OR_RETURN(std::string hash, TokenHash(item));
      token_places_.push_back(TokenPlace{hash, "source '" + out.name + "'", item.path, item.mark});
      out.token_hashes.push_back(std::move(hash));
    }
  } else {
    if (const Field* f = s.Get("interval")) {
      ASSIGN_OR_RETURN(out.interval, Dur(f->value, false));
    }
    if (const Field* f = s.Get("jitter")) {
      ASSIGN_OR_RETURN(out.jitter, Dur(f->value, true));
    }
  }
  if (const Field* f = s.Get("watch")) {
    ASSIGN_OR_RETURN(out.watch, Bool(f->value));
  }
  if (const Field* f = s.Get("watch_interval")) {
    ASSIGN_OR_RETURN(out.watch_interval, Dur(f->value, false));
  }

  auto impl = std::make_shared<SourceSection::Impl>(SourceSection::Impl{this, s, out.name});
  Result<std::shared_ptr<const SourceOptions>> options = spec->parse(SourceSection(impl));
  if (!options.ok()) return options.status();
  if (*options == nullptr) {
    return InternalError("source '" + out.name + "': the " + out.type +
                         " connector gave no options");
  }
  out.options = std::move(*options);
  return out;
}

Status Loader::Users(const Value& v, bool in_memory, UserQuery* out) const {
  ASSIGN_OR_RETURN(Section s,
                   Open(v, {"base", "filter", "email", "name", "disabled_filter", "id"}));
  const Field* base = s.Get("base");
  if (base == nullptr) return Missing(s, "base");
  ASSIGN_OR_RETURN(out->base, Dn(base->value));
  if (const Field* f = s.Get("filter")) {
    ASSIGN_OR_RETURN(out->filter, Filter(f->value, in_memory));
  }
  if (const Field* f = s.Get("email")) {
    ASSIGN_OR_RETURN(out->email, Attribute(f->value));
  }
  if (const Field* f = s.Get("name")) {
    ASSIGN_OR_RETURN(out->name, Attribute(f->value));
  }
  if (const Field* f = s.Get("disabled_filter")) {
    ASSIGN_OR_RETURN(out->disabled_filter, Filter(f->value, in_memory));
  }
  if (const Field* f = s.Get("id")) {
    ASSIGN_OR_RETURN(out->id, Attribute(f->value));
  }
  return Status::Ok();
}

Status Loader::Groups(const Value& v, bool in_memory, GroupQuery* out) const {
  ASSIGN_OR_RETURN(
      Section s, Open(v, {"base", "filter", "name", "member", "nested", "max_depth", "in_chain"}));
  // Without a base the search would cover the whole directory and, with the
  // default filter, take every entry for a group.
  const Field* base = s.Get("base");
  if (base == nullptr) return Missing(s, "base");
  ASSIGN_OR_RETURN(out->base, Dn(base->value));
  if (const Field* f = s.Get("filter")) {
    ASSIGN_OR_RETURN(out->filter, Filter(f->value, in_memory));
  }
  if (const Field* f = s.Get("name")) {
    ASSIGN_OR_RETURN(out->name, Attribute(f->value));
  }
  if (const Field* f = s.Get("member")) {
    ASSIGN_OR_RETURN(out->member, Attribute(f->value));
  }
  if (const Field* f = s.Get("nested")) {
    ASSIGN_OR_RETURN(out->nested, Bool(f->value));
  }
  if (const Field* f = s.Get("max_depth")) {
    ASSIGN_OR_RETURN(std::int64_t n, Int(f->value, 1, 1000));
    out->max_depth = static_cast<int>(n);
  }
  if (const Field* f = s.Get("in_chain")) {
    if (in_memory) return AtKey(*f, "in_chain does not apply to a source of type ldif");
    ASSIGN_OR_RETURN(out->in_chain, Bool(f->value));
  }
  return Status::Ok();
}

Status Loader::Server(const Value& v, ServerConfig* out) {
  ASSIGN_OR_RETURN(
      Section s, Open(v, {"listen", "tls", "scim_path", "max_body", "admin_listen", "admin_tokens",
                          "admin_tls", "admin_allow_insecure", "header_timeout", "body_timeout",
                          "tls_handshake_timeout", "keep_alive_timeout", "write_timeout",
                          "max_connections", "max_connections_per_ip", "max_patch_values",
                          "max_response", "replica_id", "console_session"}));
  auto addresses = [&](const Field& f, std::vector<std::string>* list) -> Status {
    // An empty `admin_listen:` keeps the default; an explicit [] clears it.
    if (f.value.node.IsNull()) return Status::Ok();
    ASSIGN_OR_RETURN(std::vector<Value> items, List(f.value, true));
    list->clear();
    for (const Value& item : items) {
      ASSIGN_OR_RETURN(std::string address, Str(item));
      if (!IsListenAddress(address)) {
        return At(item, item.path + " must be HOST:PORT (e.g. 0.0.0.0:8443 or [::1]:8443), got " +
                            Describe(item.node));
      }
      list->push_back(std::move(address));
    }
    return Status::Ok();
  };
  if (const Field* f = s.Get("listen")) RETURN_IF_ERROR(addresses(*f, &out->listen));
  if (const Field* f = s.Get("admin_listen")) RETURN_IF_ERROR(addresses(*f, &out->admin_listen));
  auto tls_pair = [&](const Field& f, std::string* cert, std::string* key) -> Status {
    ASSIGN_OR_RETURN(Section tls, Open(f.value, {"cert", "key"}));
    if (const Field* c = tls.Get("cert")) {
      ASSIGN_OR_RETURN(*cert, Path(c->value));
    }
    if (const Field* k = tls.Get("key")) {
      ASSIGN_OR_RETURN(*key, Path(k->value));
    }
    if (cert->empty() != key->empty()) return Missing(tls, cert->empty() ? "cert" : "key");
    return Status::Ok();
  };
  if (const Field* f = s.Get("tls")) RETURN_IF_ERROR(tls_pair(*f, &out->tls_cert, &out->tls_key));
  if (const Field* f = s.Get("admin_tls")) {
    RETURN_IF_ERROR(tls_pair(*f, &out->admin_tls_cert, &out->admin_tls_key));
  }
  if (const Field* f = s.Get("admin_allow_insecure")) {
    ASSIGN_OR_RETURN(out->admin_allow_insecure, Bool(f->value));
  }
  // The admin API hands out plans, audit and run control: off this host it
  // needs TLS, or an explicit acceptance of clear text.
  if (out->admin_tls_cert.empty() && !out->admin_allow_insecure) {
    for (const std::string& address : out->admin_listen) {
      if (IsLoopbackListen(address)) continue;
      const Field* where = s.Get("admin_listen");
      return At(where != nullptr ? where->value : v,
                "server.admin_listen " + Quote(address) +
                    " is reachable from other hosts but server.admin_tls is not set: add "
                    "server.admin_tls (cert, key), listen on 127.0.0.1, or set "
                    "server.admin_allow_insecure: true");
    }
  }
  const std::pair<const char*, Duration*> deadlines[] = {
      {"header_timeout", &out->header_timeout},
      {"body_timeout", &out->body_timeout},
      {"tls_handshake_timeout", &out->tls_handshake_timeout},
      {"keep_alive_timeout", &out->keep_alive_timeout},
      {"write_timeout", &out->write_timeout},
      {"console_session", &out->console_session},
  };
  for (const auto& [key, field] : deadlines) {
    if (const Field* f = s.Get(key)) {
      ASSIGN_OR_RETURN(*field, Dur(f->value, false));
    }
  }
  if (const Field* f = s.Get("max_connections")) {
    ASSIGN_OR_RETURN(std::int64_t n, Int(f->value, 1, 1000000));
    out->max_connections = static_cast<int>(n);
  }
  if (const Field* f = s.Get("max_connections_per_ip")) {
    ASSIGN_OR_RETURN(std::int64_t n, Int(f->value, 1, 1000000));
    out->max_connections_per_ip = static_cast<int>(n);
  }
  if (const Field* f = s.Get("max_patch_values")) {
    ASSIGN_OR_RETURN(std::int64_t n, Int(f->value, 1, 100000000));
    out->max_patch_values = static_cast<std::uint64_t>(n);
  }
  if (const Field* f = s.Get("scim_path")) {
    ASSIGN_OR_RETURN(std::string path, Str(f->value));
    bool ok = !path.empty() && path[0] == '/' && path.find_first_of(" \t?#") == std::string::npos;
    if (!ok) {
      return At(f->value, "server.scim_path must be a path starting with '/', got " +
                              Describe(f->value.node));
    }
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    out->scim_path = path;
  }
  if (const Field* f = s.Get("max_body")) {
    ASSIGN_OR_RETURN(out->max_body, Size(f->value));
  }
  if (const Field* f = s.Get("max_response")) {
    ASSIGN_OR_RETURN(out->max_response, Size(f->value));
  }
  if (const Field* f = s.Get("replica_id")) {
    ASSIGN_OR_RETURN(out->replica_id, Str(f->value));
    // It names the replica in logs, metrics and pg_stat_activity.
    const bool printable = std::all_of(out->replica_id.begin(), out->replica_id.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '-' || c == '_' || c == '.';
    });
    if (out->replica_id.empty() || out->replica_id.size() > 63 || !printable) {
      return At(f->value, "server.replica_id must be 1 to 63 letters, digits, '-', '_' or '.'");
    }
  }
  if (const Field* f = s.Get("admin_tokens")) {
    ASSIGN_OR_RETURN(std::vector<Value> items, List(f->value, false));
    for (const Value& item : items) {
      ASSIGN_OR_RETURN(std::string hash, TokenHash(item));
      token_places_.push_back(TokenPlace{hash, "the admin API", item.path, item.mark});
      out->admin_tokens.push_back(std::move(hash));
    }
  }
  return Status::Ok();
}

Result<mapping::PermissionSpec> Loader::Spec(const Value& v) const {
  ASSIGN_OR_RETURN(std::vector<Field> fields, Entries(v));
  mapping::PermissionSpec spec;
  for (const Field& f : fields) {
    if (!catalog_.Resolve(f.name)) {
      return AtKey(f, "unknown permission key '" + f.name + "'" + In(v.path) +
                          Suggest(f.name, catalog_keys_));
    }
    const Value& level = f.value;
    std::optional<mapping::Level> parsed;
    if (level.node.IsScalar()) parsed = mapping::ParseLevel(level.node.Scalar());
    if (!parsed) {
      return At(level, "unknown level " + Describe(level.node) + " for " + level.path +
                           ": use none, read or edit");
    }
    spec[f.name] = *parsed;
  }
  return spec;
}

Status Loader::Permissions(const Value& v, Config* out) {
  ASSIGN_OR_RETURN(Section s, Open(v, {"catalog", "presets"}));
  if (const Field* f = s.Get("catalog")) {
    ASSIGN_OR_RETURN(out->catalog_source,
                     Choice<CatalogSource>(f->value, {{"account", CatalogSource::kAccount},
                                                      {"builtin", CatalogSource::kBuiltin}}));
  }
  const Field* presets = s.Get("presets");
  if (presets == nullptr) return Status::Ok();
  ASSIGN_OR_RETURN(std::vector<Field> fields, Entries(presets->value));
  for (const Field& f : fields) {
    if (f.name.empty()) return AtKey(f, "preset names must not be empty");
    if (Contains(preset_names_, f.name)) {
      return AtKey(f, "preset '" + f.name + "' is built in; choose another name");
    }
    if (!f.value.node.IsMap() && !f.value.node.IsNull()) {
      return TypeError(f.value, "a map of permission keys to levels");
    }
    ASSIGN_OR_RETURN(mapping::PermissionSpec spec, Spec(f.value));
    out->custom_presets.push_back(mapping::Preset{f.name, std::move(spec)});
    preset_names_.push_back(f.name);
  }
  Result<mapping::PresetBook> book = mapping::PresetBook::Create(catalog_, out->custom_presets);
  if (!book.ok()) return ErrorAt(presets->key_node.Mark(), book.status().message());
  presets_ = std::move(*book);
  return Status::Ok();
}

Result<mapping::Rule> Loader::Rule(const Value& v, const Config& config) {
  ASSIGN_OR_RETURN(Section s, Open(v, {"name", "match", "role", "preset", "presets", "permissions",
                                       "projects"}));
  mapping::Rule rule;
  const Field* name = s.Get("name");
  if (name == nullptr) return Missing(s, "name");
  ASSIGN_OR_RETURN(rule.name, NonEmptyStr(name->value));

  const Field* match = s.Get("match");
  if (match == nullptr) {
    return At(s.self, "rule '" + rule.name + "' has no match: give group, source or email");
  }
  ASSIGN_OR_RETURN(Section m, Open(match->value, {"group", "source", "email"}));
  if (m.fields.empty()) {
    return At(match->value,
              "rule '" + rule.name + "' has an empty match: give group, source or email");
  }
  if (const Field* f = m.Get("group")) {
    ASSIGN_OR_RETURN(std::vector<Value> items, List(f->value, true));
    if (items.empty()) return At(f->value, "match.group must name at least one group");
    for (const Value& item : items) {
      std::string group;
      if (item.node.IsScalar() && mapping::LooksLikeDn(item.node.Scalar())) {
        ASSIGN_OR_RETURN(group, Dn(item));
      } else {
        ASSIGN_OR_RETURN(group, NonEmptyStr(item));
      }
      rule.groups.push_back(std::move(group));
    }
  }
  if (const Field* f = m.Get("source")) {
    ASSIGN_OR_RETURN(rule.source, NonEmptyStr(f->value));
    RETURN_IF_ERROR(KnownSource(f->value, rule.source, config));
  }
  if (const Field* f = m.Get("email")) {
    ASSIGN_OR_RETURN(rule.email, NonEmptyStr(f->value));
  }

  if (const Field* f = s.Get("role")) {
    ASSIGN_OR_RETURN(rule.role,
                     Choice<mapping::Role>(f->value, {{"admin", mapping::Role::kAdmin},
                                                      {"member", mapping::Role::kMember}}));
  }
  std::vector<Value> preset_values;
  if (const Field* f = s.Get("preset")) preset_values.push_back(f->value);
  if (const Field* f = s.Get("presets")) {
    ASSIGN_OR_RETURN(std::vector<Value> items, List(f->value, false));
    preset_values.insert(preset_values.end(), items.begin(), items.end());
  }
  for (const Value& item : preset_values) {
    ASSIGN_OR_RETURN(std::string preset, NonEmptyStr(item));
    if (!Contains(preset_names_, preset)) {
      std::string hint = Suggest(preset, preset_names_);
      if (hint.empty()) hint = " (known: " + Join(preset_names_) + ")";
      return At(item, "unknown preset " + Describe(item.node) + " in " + item.path + hint);
    }
    // preset and presets are a union; naming one twice changes nothing.
    if (!Contains(rule.presets, preset)) rule.presets.push_back(std::move(preset));
  }
  if (const Field* f = s.Get("permissions")) {
    if (!f->value.node.IsMap() && !f->value.node.IsNull()) {
      return TypeError(f->value, "a map of permission keys to levels");
    }
    ASSIGN_OR_RETURN(rule.permissions, Spec(f->value));
  }
  if (const Field* f = s.Get("projects")) {
    ASSIGN_OR_RETURN(std::vector<Value> items, List(f->value, false));
    for (const Value& item : items) {
      ASSIGN_OR_RETURN(std::string project, NonEmptyStr(item));
      if (!Contains(rule.projects, project)) rule.projects.push_back(std::move(project));
    }
  }
  if (!GrantsSomething(rule)) {
    return At(s.self, "rule '" + rule.name +
                          "' grants nothing: give it role admin, a preset, a permission above "
                          "none, or a project");
  }
  return rule;
}

// What RuleSet::Compile will hold against the rule, checked here so that the
// message points at the rule: admin, a project, or a level above none once
// its presets are combined (highest level per item) and its own keys have set
// their items exactly (area keys first, then item keys, as Catalog::Expand).
bool Loader::GrantsSomething(const mapping::Rule& rule) const {
  if (rule.role == mapping::Role::kAdmin || !rule.projects.empty()) return true;
  mapping::ItemLevels levels = catalog_.Uniform(mapping::Level::kNone);
  for (const std::string& name : rule.presets) {
    const mapping::ItemLevels* preset = presets_ ? presets_->Find(name) : nullptr;
    if (preset == nullptr) continue;  // unknown names were refused before
    for (std::size_t i = 0; i < levels.size() && i < preset->size(); ++i) {
      levels[i] = std::max(levels[i], (*preset)[i]);
    }
  }
  for (bool areas : {true, false}) {
    for (const auto& [key, level] : rule.permissions) {
      if ((key.find('.') == std::string::npos) != areas) continue;
      std::optional<mapping::Catalog::Range> range = catalog_.Resolve(key);
      if (!range) continue;  // unknown keys were refused before
      std::fill(levels.begin() + static_cast<std::ptrdiff_t>(range->begin),
                levels.begin() + static_cast<std::ptrdiff_t>(range->end), level);
    }
  }
  return std::any_of(levels.begin(), levels.end(),
                     [](mapping::Level level) { return level != mapping::Level::kNone; });
}

Status Loader::Rules(const Value& v, const Config& config, std::vector<mapping::Rule>* out,
                     std::vector<Location>* locations) {
  if (v.node.IsNull() || (v.node.IsSequence() && v.node.size() == 0)) {
    return At(v, "rules must list at least one rule");
  }
  ASSIGN_OR_RETURN(std::vector<Value> items, List(v, false));
  for (const Value& item : items) {
    ASSIGN_OR_RETURN(mapping::Rule rule, Rule(item, config));
    for (std::size_t i = 0; i < out->size(); ++i) {
      if ((*out)[i].name == rule.name) {
        return ErrorAt(Lookup(item.node, "name").Mark(),
                       "duplicate rule name '" + rule.name + "' (first at line " +
                           std::to_string((*locations)[i].line) + ")");
      }
    }
    out->push_back(std::move(rule));
    locations->push_back(Location{item.mark.line + 1, item.mark.column + 1});
  }
  return Status::Ok();
}

// The mapping library has the last word on presets and rules: what it
// refuses is reported at the rule it names, found by compiling rules one by
// one.
Status Loader::CompileRules(const Config& config, const Value& rules_value) {
  Words sources;
  for (const SourceConfig& source : config.sources) sources.push_back(source.name);
  Result<mapping::RuleSet> all =
      mapping::RuleSet::Compile(config.rules, catalog_, *presets_, sources);
  if (all.ok()) return Status::Ok();
  for (std::size_t i = 0; i < config.rules.size(); ++i) {
    Result<mapping::RuleSet> one =
        mapping::RuleSet::Compile({config.rules[i]}, catalog_, *presets_, sources);
    if (one.ok()) continue;
    YAML::Mark mark;
    mark.line = config.rule_locations[i].line - 1;
    mark.column = config.rule_locations[i].column - 1;
    return ErrorAt(mark, one.status().message());
  }
  return At(rules_value, all.status().message());
}

Status Loader::CheckTokenOwners() const {
  // The listeners look a bearer token up by its hash and take the first
  // owner found: a hash written twice would open a source to the other
  // source's identity provider, or the admin API to an identity provider.
  // Repeating a hash under one owner changes nothing and is let be.
  for (std::size_t i = 0; i < token_places_.size(); ++i) {
    const TokenPlace& again = token_places_[i];
    for (std::size_t j = 0; j < i; ++j) {
      const TokenPlace& first = token_places_[j];
      if (first.hash != again.hash || first.owner == again.owner) continue;
      return ErrorAt(again.mark, "the token hash in " + again.path + " (" + again.owner +
                                     ") is also in " + first.path + " (" + first.owner + ") at " +
                                     Position(first.mark) +
                                     ": a token must open one source or the admin API, not two; "
                                     "make another with `idsync scim-token new`");
    }
  }
  return Status::Ok();
}

Status Loader::KnownSource(const Value& v, const std::string& name, const Config& config) const {
  if (config.FindSource(name) != nullptr) return Status::Ok();
  Words names;
  for (const SourceConfig& source : config.sources) names.push_back(source.name);
  std::string hint = Suggest(name, names);
  if (hint.empty()) hint = " (known: " + Join(names) + ")";
  return At(v, "unknown source " + Describe(v.node) + " in " + v.path + hint);
}

Status Loader::Tests(const Value& v, const Config& config, std::vector<mapping::PolicyCase>* out) {
  if (v.node.IsNull()) return Status::Ok();
  ASSIGN_OR_RETURN(std::vector<Value> items, List(v, false));
  std::vector<int> lines;
  for (const Value& item : items) {
    ASSIGN_OR_RETURN(mapping::PolicyCase test, Test(item, config));
    for (std::size_t i = 0; i < out->size(); ++i) {
      if ((*out)[i].name == test.name) {
        return ErrorAt(Lookup(item.node, "name").Mark(), "duplicate test name '" + test.name +
                                                             "' (first at line " +
                                                             std::to_string(lines[i]) + ")");
      }
    }
    test.where = Position(item.mark);
    lines.push_back(item.mark.line + 1);
    out->push_back(std::move(test));
  }
  return Status::Ok();
}

Result<mapping::PolicyCase> Loader::Test(const Value& v, const Config& config) {
  ASSIGN_OR_RETURN(Section s, Open(v, {"name", "person", "given", "expect"}));
  mapping::PolicyCase test;
  const Field* name = s.Get("name");
  if (name == nullptr) return Missing(s, "name");
  ASSIGN_OR_RETURN(test.name, NonEmptyStr(name->value));
  const Field* person = s.Get("person");
  const Field* given = s.Get("given");
  if (person == nullptr && given == nullptr) {
    return At(s.self, "test '" + test.name +
                          "' needs person: (someone the sources know) or given: (a made-up "
                          "person)");
  }
  if (person != nullptr && given != nullptr) {
    return AtKey(*given, "test '" + test.name + "' has both person: and given:; write two tests");
  }
  if (person != nullptr) {
    ASSIGN_OR_RETURN(std::string address, NonEmptyStr(person->value));
    if (!IsEmailAddress(address)) {
      return At(person->value, person->value.path + " must be an e-mail address, got " +
                                   Describe(person->value.node));
    }
    test.person = base::AsciiLower(address);
  } else {
    RETURN_IF_ERROR(GivenPerson(given->value, config, &test));
  }
  const Field* expect = s.Get("expect");
  if (expect == nullptr) return Missing(s, "expect");
  RETURN_IF_ERROR(Expectation(expect->value, test.name, &test.expect));
  return test;
}

Status Loader::GivenPerson(const Value& v, const Config& config, mapping::PolicyCase* out) {
  ASSIGN_OR_RETURN(Section s, Open(v, {"email", "groups", "disabled"}));
  if (const Field* f = s.Get("email")) {
    ASSIGN_OR_RETURN(out->email, NonEmptyStr(f->value));
    if (!IsEmailAddress(out->email)) {
      return At(f->value,
                f->value.path + " must be an e-mail address, got " + Describe(f->value.node));
    }
  }
  if (const Field* f = s.Get("disabled")) {
    ASSIGN_OR_RETURN(out->disabled, Bool(f->value));
  }
  if (const Field* f = s.Get("groups")) {
    ASSIGN_OR_RETURN(std::vector<Value> items, List(f->value, false));
    for (const Value& item : items) {
      ASSIGN_OR_RETURN(Section g, Open(item, {"source", "name", "dn"}));
      mapping::PolicyGroup group;
      const Field* source = g.Get("source");
      if (source == nullptr) return Missing(g, "source");
      ASSIGN_OR_RETURN(group.source, NonEmptyStr(source->value));
      RETURN_IF_ERROR(KnownSource(source->value, group.source, config));
      const Field* name = g.Get("name");
      const Field* dn = g.Get("dn");
      if (name == nullptr && dn == nullptr) {
        return At(item, item.path + " needs name: or dn: (or both)");
      }
      if (name != nullptr) {
        ASSIGN_OR_RETURN(group.name, NonEmptyStr(name->value));
      }
      if (dn != nullptr) {
        ASSIGN_OR_RETURN(group.dn, Dn(dn->value));
      }
      out->groups.push_back(std::move(group));
    }
  }
  return Status::Ok();
}

Status Loader::Expectation(const Value& v, const std::string& test, mapping::PolicyExpect* out) {
  if (!v.node.IsMap() || v.node.size() == 0) {
    return At(v, "test '" + test +
                     "' expects nothing: give access, role, projects or permission keys with "
                     "their levels");
  }
  ASSIGN_OR_RETURN(std::vector<Field> fields, Entries(v));
  for (const Field& f : fields) {
    if (f.name == "access") {
      ASSIGN_OR_RETURN(bool access, Bool(f.value));
      out->access = access;
    } else if (f.name == "role") {
      ASSIGN_OR_RETURN(out->role,
                       Choice<mapping::Role>(f.value, {{"admin", mapping::Role::kAdmin},
                                                       {"member", mapping::Role::kMember}}));
    } else if (f.name == "projects") {
      ASSIGN_OR_RETURN(std::vector<Value> items, List(f.value, false));
      std::vector<std::string> projects;
      for (const Value& item : items) {
        ASSIGN_OR_RETURN(std::string project, NonEmptyStr(item));
        projects.push_back(std::move(project));
      }
      out->projects = std::move(projects);
    } else if (catalog_.Resolve(f.name)) {
      std::optional<mapping::Level> level;
      if (f.value.node.IsScalar()) level = mapping::ParseLevel(f.value.node.Scalar());
      if (!level) {
        return At(f.value, "unknown level " + Describe(f.value.node) + " for " + f.value.path +
                               ": use none, read or edit");
      }
      out->levels.emplace_back(f.name, *level);
    } else {
      Words known = {"access", "role", "projects"};
      known.insert(known.end(), catalog_keys_.begin(), catalog_keys_.end());
      return AtKey(f, "unknown key '" + f.name + "'" + In(v.path) +
                          ": expect takes access, role, projects and permission keys" +
                          Suggest(f.name, known));
    }
  }
  return Status::Ok();
}

Status Loader::Protect(const Value& v, std::vector<std::string>* out) {
  ASSIGN_OR_RETURN(std::vector<Value> items, List(v, false));
  for (const Value& item : items) {
    ASSIGN_OR_RETURN(std::string address, Str(item));
    if (!IsEmailAddress(address)) {
      return At(item, item.path + " must be an e-mail address, got " + Describe(item.node));
    }
    address = base::AsciiLower(address);
    if (!Contains(*out, address)) out->push_back(std::move(address));
  }
  return Status::Ok();
}

Status Loader::Safety(const Value& v, SafetyConfig* out) {
  ASSIGN_OR_RETURN(Section s, Open(v, {"max_removals", "max_changes", "window"}));
  if (const Field* f = s.Get("max_removals")) {
    ASSIGN_OR_RETURN(out->max_removals, Limit(f->value));
  }
  if (const Field* f = s.Get("max_changes")) {
    ASSIGN_OR_RETURN(out->max_changes, Limit(f->value));
  }
  if (const Field* f = s.Get("window")) {
    ASSIGN_OR_RETURN(out->window, Dur(f->value, true));
  }
  return Status::Ok();
}

Status Loader::Logging(const Value& v, LoggingConfig* out) {
  using Format = LoggingConfig::Format;
  using Level = LoggingConfig::Level;
  ASSIGN_OR_RETURN(Section s, Open(v, {"format", "level"}));
  if (const Field* f = s.Get("format")) {
    ASSIGN_OR_RETURN(out->format,
                     Choice<Format>(f->value, {{"text", Format::kText}, {"json", Format::kJson}}));
  }
  if (const Field* f = s.Get("level")) {
    ASSIGN_OR_RETURN(out->level, Choice<Level>(f->value, {{"debug", Level::kDebug},
                                                          {"info", Level::kInfo},
                                                          {"warning", Level::kWarning},
                                                          {"error", Level::kError}}));
  }
  return Status::Ok();
}

Result<Config> Loader::Run(const YAML::Node& root) {
  Value top{root, root.Mark(), std::nullopt, ""};
  if (root.IsNull()) return ErrorAt(YAML::Mark(), "the configuration is empty");
  ASSIGN_OR_RETURN(Section s, Open(top, {"account", "store", "sources", "server", "ha",
                                         "permissions", "rules", "deprovision", "adopt_existing",
                                         "protect", "safety", "logging", "retention", "tests"}));
  FindSecretPaths(root);
  RETURN_IF_ERROR(CheckSecrets(root, ""));
  Config config;
  config.path = file_;
  for (const mapping::Preset& preset : mapping::BuiltinPresets()) {
    preset_names_.push_back(preset.name);
  }

  // Sections are read in dependency order: rules need the sources and the
  // presets.
  if (const Field* f = s.Get("store")) RETURN_IF_ERROR(Store(f->value, &config));
  if (const Field* f = s.Get("account")) RETURN_IF_ERROR(Account(f->value, &config.account));
  const Field* sources = s.Get("sources");
  if (sources == nullptr) return Missing(s, "sources");
  RETURN_IF_ERROR(Sources(sources->value, &config.sources));
  if (const Field* f = s.Get("server")) RETURN_IF_ERROR(Server(f->value, &config.server));
  if (const Field* f = s.Get("ha")) RETURN_IF_ERROR(Ha(f->value, &config.ha));
  RETURN_IF_ERROR(CheckTokenOwners());
  if (const Field* f = s.Get("permissions")) RETURN_IF_ERROR(Permissions(f->value, &config));
  if (!presets_) {
    // No custom presets: the built-in ones alone, which cannot fail.
    Result<mapping::PresetBook> book = mapping::PresetBook::Create(catalog_, {});
    if (!book.ok()) return At(top, book.status().message());
    presets_ = std::move(*book);
  }
  const Field* rules = s.Get("rules");
  if (rules == nullptr) return Missing(s, "rules");
  RETURN_IF_ERROR(Rules(rules->value, config, &config.rules, &config.rule_locations));
  if (const Field* f = s.Get("deprovision")) {
    ASSIGN_OR_RETURN(config.deprovision,
                     Choice<mapping::DeprovisionMode>(
                         f->value, {{"remove", mapping::DeprovisionMode::kRemove},
                                    {"revoke", mapping::DeprovisionMode::kRevoke}}));
  }
  if (const Field* f = s.Get("adopt_existing")) {
    ASSIGN_OR_RETURN(config.adopt_existing, Bool(f->value));
  }
  if (const Field* f = s.Get("protect")) RETURN_IF_ERROR(Protect(f->value, &config.protect));
  if (const Field* f = s.Get("safety")) RETURN_IF_ERROR(Safety(f->value, &config.safety));
  if (const Field* f = s.Get("logging")) RETURN_IF_ERROR(Logging(f->value, &config.logging));
  if (const Field* f = s.Get("retention")) {
    ASSIGN_OR_RETURN(Section r, Open(f->value, {"runs"}));
    if (const Field* runs = r.Get("runs")) {
      ASSIGN_OR_RETURN(config.retention_runs, Dur(runs->value, false));
    }
  }
  if (const Field* f = s.Get("tests")) RETURN_IF_ERROR(Tests(f->value, config, &config.tests));

  // A SCIM source only ever receives data through the SCIM listener.
  if (config.server.listen.empty()) {
    for (std::size_t i = 0; i < config.sources.size(); ++i) {
      if (!config.sources[i].pushed) continue;
      const YAML::Node& list = sources->value.node;
      YAML::Node item = list[i];
      return ErrorAt(item.Mark(), "source '" + config.sources[i].name + "' is of type " +
                                      config.sources[i].type +
                                      " but server.listen is not set: the "
                                      "identity provider has nowhere to push");
    }
  }

  RETURN_IF_ERROR(CompileRules(config, rules->value));
  config.warnings = std::move(warnings_);
  for (std::string& w : PublishedTokenWarnings(config)) {
    config.warnings.push_back(file_ + ": " + std::move(w));
  }
  return config;
}

Result<Config> Parse(const std::string& text, const std::string& file_name,
                     const LoadOptions& options) {
  const mapping::Catalog& catalog =
      options.catalog != nullptr ? *options.catalog : mapping::Catalog::Builtin();
  Loader loader(file_name, options, catalog);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return loader.ErrorAt(e.mark, e.msg);
  }
  try {
    return loader.Run(root);
  } catch (const YAML::Exception& e) {
    // Only reachable through a bug in our traversal; still report it with a
    // position rather than let it escape.
    return loader.ErrorAt(e.mark, e.msg);
  } catch (const std::exception& e) {
    return InternalError(file_name + ": " + e.what());
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// A source's section, for its connector

const std::string& SourceSection::source_name() const { return impl_->source_name; }

bool SourceSection::Has(std::string_view key) const { return impl_->section.Get(key) != nullptr; }

Result<std::string> SourceSection::Str(std::string_view key, std::string fallback) const {
  const Field* f = impl_->section.Get(key);
  if (f == nullptr) return fallback;
  return impl_->loader->Str(f->value);
}

Result<std::string> SourceSection::Path(std::string_view key) const {
  const Field* f = impl_->section.Get(key);
  if (f == nullptr) return Missing(key);
  return impl_->loader->Path(f->value);
}

Result<std::string> SourceSection::Dn(std::string_view key) const {
  const Field* f = impl_->section.Get(key);
  if (f == nullptr) return Missing(key);
  return impl_->loader->Dn(f->value);
}

Result<bool> SourceSection::Flag(std::string_view key, bool fallback) const {
  const Field* f = impl_->section.Get(key);
  if (f == nullptr) return fallback;
  return impl_->loader->Bool(f->value);
}

Result<std::int64_t> SourceSection::Int(std::string_view key, std::int64_t min, std::int64_t max,
                                        std::int64_t fallback) const {
  const Field* f = impl_->section.Get(key);
  if (f == nullptr) return fallback;
  return impl_->loader->Int(f->value, min, max);
}

Result<Duration> SourceSection::Dur(std::string_view key, Duration fallback,
                                    bool allow_zero) const {
  const Field* f = impl_->section.Get(key);
  if (f == nullptr) return fallback;
  return impl_->loader->Dur(f->value, allow_zero);
}

Result<std::vector<SourceSection::Text>> SourceSection::Strings(std::string_view key) const {
  std::vector<Text> out;
  const Field* f = impl_->section.Get(key);
  if (f == nullptr) return out;
  ASSIGN_OR_RETURN(std::vector<Value> items, impl_->loader->List(f->value, true));
  for (const Value& item : items) {
    ASSIGN_OR_RETURN(std::string text, impl_->loader->Str(item));
    out.push_back(Text{std::move(text), item.path, item.mark.line + 1, item.mark.column + 1});
  }
  return out;
}

Status SourceSection::ErrorAt(const Text& text, const std::string& message) const {
  YAML::Mark mark;
  mark.line = text.line - 1;
  mark.column = text.column - 1;
  return impl_->loader->ErrorAt(mark, message);
}

Result<std::string> SourceSection::Secret(std::string_view key) const {
  const Field* f = impl_->section.Get(key);
  if (f == nullptr) return Missing(key);
  const SecretUse use = impl_->loader->secret_use_;
  return impl_->loader->Secret(f->value, use == SecretUse::kAll || use == SecretUse::kSources);
}

Result<std::size_t> SourceSection::OneOf(std::string_view key,
                                         const std::vector<std::string>& names,
                                         std::size_t fallback) const {
  const Field* f = impl_->section.Get(key);
  if (f == nullptr) return fallback;
  std::vector<std::pair<std::string, std::size_t>> choices;
  for (std::size_t i = 0; i < names.size(); ++i) choices.emplace_back(names[i], i);
  return impl_->loader->Choice<std::size_t>(f->value, choices);
}

Result<SourceSection> SourceSection::Open(std::string_view key,
                                          const std::vector<std::string>& allowed) const {
  const Field* f = impl_->section.Get(key);
  Value value;
  if (f != nullptr) {
    value = f->value;
  } else {
    // An absent map reads as an empty one, placed at the parent.
    value = Value{YAML::Node(), impl_->section.self.mark, std::nullopt,
                  Child(impl_->section.self.path, key)};
  }
  ASSIGN_OR_RETURN(Section nested, impl_->loader->Open(value, allowed));
  return SourceSection(
      std::make_shared<Impl>(Impl{impl_->loader, std::move(nested), impl_->source_name}));
}

Result<UserQuery> SourceSection::Users(std::string_view key, bool in_memory) const {
  const Field* f = impl_->section.Get(key);
  if (f == nullptr) return Missing(key);
  UserQuery out;
  RETURN_IF_ERROR(impl_->loader->Users(f->value, in_memory, &out));
  return out;
}

Result<GroupQuery> SourceSection::Groups(std::string_view key, bool in_memory) const {
  GroupQuery out;
  const Field* f = impl_->section.Get(key);
  if (f == nullptr) return out;
  RETURN_IF_ERROR(impl_->loader->Groups(f->value, in_memory, &out));
  return out;
}

Status SourceSection::ErrorAt(std::string_view key, const std::string& message) const {
  // A dotted key ("groups.in_chain") points below the section.
  const Section& s = impl_->section;
  std::string_view first = key.substr(0, key.find('.'));
  const Field* f = s.Get(first);
  if (f == nullptr) return impl_->loader->At(s.self, message);
  YAML::Node node = f->value.node;
  YAML::Mark mark = f->value.mark;
  std::string_view rest = first.size() < key.size() ? key.substr(first.size() + 1) : "";
  while (!rest.empty() && node.IsMap()) {
    std::string_view part = rest.substr(0, rest.find('.'));
    YAML::Node child = Lookup(node, std::string(part));
    if (!child.IsDefined()) break;
    node = child;
    if (!child.Mark().is_null()) mark = child.Mark();
    rest = part.size() < rest.size() ? rest.substr(part.size() + 1) : "";
  }
  return impl_->loader->ErrorAt(mark, message);
}

Status SourceSection::ErrorAtKey(std::string_view key, const std::string& message) const {
  const Field* f = impl_->section.Get(key);
  if (f == nullptr) return impl_->loader->At(impl_->section.self, message);
  return impl_->loader->AtKey(*f, message);
}

Status SourceSection::Missing(std::string_view key) const {
  return impl_->loader->Missing(impl_->section, key);
}

void SourceTypes::Add(SourceType type) {
  std::string name = type.name;
  types_[std::move(name)] = std::move(type);
}

const SourceType* SourceTypes::Find(std::string_view name) const {
  auto it = types_.find(name);
  return it == types_.end() ? nullptr : &it->second;
}

std::vector<std::string> SourceTypes::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, type] : types_) names.push_back(name);
  return names;
}

Result<Config> ParseConfig(const std::string& text, const std::string& file_name,
                           const LoadOptions& options) {
  return Parse(text, file_name, options);
}

Result<Config> LoadConfig(const std::string& path, const LoadOptions& options) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    return NotFoundError("cannot read " + path + ": " + std::strerror(err));
  }
  std::string text;
  char buffer[8192];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return NotFoundError("cannot read " + path + ": " + std::strerror(err));
    }
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return Parse(text, path, options);
}

}  // namespace idsync::config

namespace idsync::config {

Result<std::string> ReadStoreUrl(const std::string& path) {
  // Only locates the store: the full load (and its errors) comes after.
  try {
    YAML::Node root = YAML::LoadFile(path);
    if (root.IsMap() && root["store"] && root["store"].IsScalar()) {
      return root["store"].as<std::string>();
    }
    if (root.IsMap() && root["store"] && root["store"].IsMap() && root["store"]["url"] &&
        root["store"]["url"].IsScalar()) {
      return root["store"]["url"].as<std::string>();
    }
    return Config{}.store;
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(path + ": " + e.what());
  }
}

std::vector<std::string> PublishedTokenWarnings(const Config& config) {
  // Hashes from docs/, the contract's example and tests: sha256("test"),
  // sha256("foo"), a token once printed in docs/okta.md, and the example
  // hashes the documentation shows now (their tokens were never kept).
  static const std::string_view kPublished[] = {
      "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
      "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
      "sha256:c83035eb7ba459002d00ddbc821b352ce8adfe3e282b4f20ac65c755b26bff00",
      "sha256:aac86eb4c651ab8107843861ae5cad19e7a91a25242c0b41563badc5f829041e",
      "sha256:38df2f81f2217712e4c646bb0cbda5556735153d64585b3c73c4c7e023ae8a0b",
      "sha256:ad6e83592d533284069f5875d46b8d72efb4f61c863c0ef589b503072630cbd3",
  };
  auto published = [](const std::string& hash) {
    for (std::string_view p : kPublished) {
      if (base::AsciiLower(hash) == p) return true;
    }
    return false;
  };
  constexpr std::string_view kAdvice =
      " is an example from idsync's documentation: make your own with `idsync scim-token new`";
  std::vector<std::string> warnings;
  for (const SourceConfig& source : config.sources) {
    for (const std::string& hash : source.token_hashes) {
      if (published(hash)) {
        warnings.push_back("source '" + source.name + "': token hash " + hash +
                           std::string(kAdvice));
      }
    }
  }
  for (const std::string& hash : config.server.admin_tokens) {
    if (published(hash)) {
      warnings.push_back("server.admin_tokens: " + hash + std::string(kAdvice));
    }
  }
  return warnings;
}

}  // namespace idsync::config
