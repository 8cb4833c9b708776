#include "idsync/ldif/ldif_source.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <unordered_map>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "idsync/base/ascii.h"
#include "idsync/filter/filter.h"
#include "idsync/ldif/ldif.h"
#include "idsync/mapping/dn.h"

namespace idsync::ldif {
namespace {

using base::AsciiLower;
using base::EqualsIgnoreCase;

std::string_view BaseName(std::string_view description) {
  return description.substr(0, description.find(';'));
}

bool IsBlank(std::string_view text) {
  return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

// A compiled filter setting; nullopt means "every entry" (an empty filter).
Result<std::optional<filter::Filter>> CompileFilter(std::string_view context, std::string_view key,
                                                    const std::string& text) {
  if (IsBlank(text)) return std::optional<filter::Filter>();
  Result<filter::Filter> parsed = filter::Filter::Parse(text);
  if (!parsed.ok()) {
    return parsed.status().WithContext(std::string(context) + ": " + std::string(key));
  }
  // The in-chain rule, for one, means something only to a live directory;
  // evaluating it as false here would silently drop people.
  Status evaluable = parsed->CheckEvaluable();
  if (!evaluable.ok()) return evaluable.WithContext(std::string(context) + ": " + std::string(key));
  return std::optional<filter::Filter>(std::move(parsed).value());
}

// The normalized base, "" for the whole file.
Result<std::string> NormalizeBase(std::string_view context, std::string_view key,
                                  const std::string& base) {
  if (IsBlank(base)) return std::string();
  Result<std::string> normalized = mapping::NormalizeDn(base);
  if (!normalized.ok()) {
    return InvalidArgumentError(std::string(context) + ": " + std::string(key) + " '" + base +
                                "' is not a DN: " + normalized.status().message());
  }
  return std::move(normalized).value();
}

// True when the normalized `dn` is `base` or below it (subtree scope).
bool InScope(std::string_view dn, std::string_view base) {
  if (base.empty() || dn == base) return true;
  if (dn.size() <= base.size() || !dn.ends_with(base)) return false;
  std::size_t comma = dn.size() - base.size() - 1;
  if (dn[comma] != ',') return false;
  // The comma must separate RDNs, not be an escaped one inside a value:
  // an odd run of backslashes before it escapes it.
  std::size_t backslashes = 0;
  while (backslashes < comma && dn[comma - 1 - backslashes] == '\\') ++backslashes;
  return backslashes % 2 == 0;
}

bool Matches(const std::optional<filter::Filter>& f, const filter::Entry& entry) {
  return !f || f->Matches(entry);
}

// Where a member value points. -1: nothing of that kind.
struct Target {
  std::int64_t user = -1;
  std::int64_t group = -1;
  bool invalid = false;
};

// The whole file. POSIX calls rather than iostreams so that a directory or an
// I/O error is reported with its cause instead of reading as empty.
Result<std::string> ReadFile(const LdifConfig& source) {
  auto fail = [&](int error) {
    return NotFoundError("source '" + source.name + "': cannot read '" + source.path +
                         "': " + std::strerror(error));
  };
  int fd = ::open(source.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(errno);
  std::string text;
  struct stat info {};
  if (::fstat(fd, &info) == 0 && info.st_size > 0) {
    text.reserve(static_cast<std::size_t>(info.st_size));
  }
  char chunk[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      int error = errno;
      ::close(fd);
      return fail(error);
    }
    text.append(chunk, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return text;
}

}  // namespace

Result<mapping::SourceSnapshot> SnapshotFromLdif(const LdifConfig& source, std::string_view text,
                                                 LdifStats* stats) {
  std::string context = "source '" + source.name + "'";
  if (!source.path.empty()) context += " (" + source.path + ")";

  ASSIGN_OR_RETURN(std::optional<filter::Filter> user_filter,
                   CompileFilter(context, "users.filter", source.users.filter));
  std::optional<filter::Filter> disabled_filter;
  if (!IsBlank(source.users.disabled_filter)) {
    ASSIGN_OR_RETURN(disabled_filter,
                     CompileFilter(context, "users.disabled_filter", source.users.disabled_filter));
  }
  ASSIGN_OR_RETURN(std::optional<filter::Filter> group_filter,
                   CompileFilter(context, "groups.filter", source.groups.filter));
  ASSIGN_OR_RETURN(std::string user_base, NormalizeBase(context, "users.base", source.users.base));
  ASSIGN_OR_RETURN(std::string group_base,
                   NormalizeBase(context, "groups.base", source.groups.base));
  // A source without a `groups` section reads no groups (the configuration
  // requires groups.base whenever groups are configured).
  const bool read_groups = !IsBlank(source.groups.base);

  Result<std::vector<filter::Entry>> parsed = ParseLdif(text);
  if (!parsed.ok()) return parsed.status().WithContext(context);
  const std::vector<filter::Entry>& entries = *parsed;

  mapping::SourceSnapshot snapshot;
  snapshot.source = source.name;
  snapshot.nested = source.groups.nested;
  snapshot.max_depth = source.groups.max_depth;

  LdifStats counts;
  counts.entries = entries.size();

  // Users and groups by normalized DN, so members resolve in constant time
  // whatever the spelling of the DN in the member value.
  std::unordered_map<std::string, std::uint32_t> user_index;
  std::unordered_map<std::string, std::uint32_t> group_index;
  std::vector<const filter::Entry*> group_entries;
  user_index.reserve(entries.size());
  group_index.reserve(entries.size());

  for (const filter::Entry& entry : entries) {
    Result<std::string> normalized = mapping::NormalizeDn(entry.dn);
    if (!normalized.ok()) {
      // Skipping the entry could deprovision a person because of a typo, so
      // the whole read fails instead and the last good read stays in force.
      return InvalidArgumentError(context + ": entry '" + entry.dn +
                                  "' has an invalid DN: " + normalized.status().message());
    }
    const std::string& dn = *normalized;
    bool is_user = InScope(dn, user_base) && Matches(user_filter, entry);
    bool is_group = read_groups && InScope(dn, group_base) && Matches(group_filter, entry);

    if (is_user) {
      auto [it, inserted] =
          user_index.emplace(dn, static_cast<std::uint32_t>(snapshot.users.size()));
      if (!inserted) {
        return InvalidArgumentError(context + ": two user entries have the DN '" + entry.dn + "'");
      }
      mapping::DirectoryUser user;
      if (!source.users.id.empty()) user.id = std::string(entry.First(source.users.id));
      if (user.id.empty()) user.id = std::string(entry.First("entryUUID"));
      if (user.id.empty()) user.id = dn;
      user.dn = entry.dn;
      user.email = std::string(entry.First(source.users.email));
      user.name = std::string(entry.First(source.users.name));
      user.disabled = disabled_filter && disabled_filter->Matches(entry);
      snapshot.users.push_back(std::move(user));
    }
    if (is_group) {
      auto [it, inserted] =
          group_index.emplace(dn, static_cast<std::uint32_t>(snapshot.groups.size()));
      if (!inserted) {
        return InvalidArgumentError(context + ": two group entries have the DN '" + entry.dn + "'");
      }
      mapping::DirectoryGroup group;
      group.id = std::string(entry.First("entryUUID"));
      if (group.id.empty()) group.id = dn;
      group.dn = entry.dn;
      group.name = std::string(entry.First(source.groups.name));
      snapshot.groups.push_back(std::move(group));
      group_entries.push_back(&entry);
    }
  }

  // The same member DN usually appears in many groups, written the same way;
  // remembering each written form saves normalizing it again.
  std::unordered_map<std::string_view, Target> resolved;
  resolved.reserve(entries.size());
  std::string_view member_attribute = BaseName(source.groups.member);
  for (std::size_t g = 0; g < group_entries.size(); ++g) {
    mapping::DirectoryGroup& group = snapshot.groups[g];
    for (const auto& [name, values] : group_entries[g]->attributes) {
      if (!EqualsIgnoreCase(BaseName(name), member_attribute)) continue;
      for (const std::string& value : values) {
        auto [it, inserted] = resolved.try_emplace(value);
        Target& target = it->second;
        if (inserted) {
          Result<std::string> normalized = mapping::NormalizeDn(value);
          if (!normalized.ok()) {
            target.invalid = true;
          } else {
            if (auto u = user_index.find(*normalized); u != user_index.end()) {
              target.user = u->second;
            }
            if (auto h = group_index.find(*normalized); h != group_index.end()) {
              target.group = h->second;
            }
          }
        }
        if (target.invalid) {
          ++counts.invalid_member_dns;
          continue;
        }
        if (target.user < 0 && target.group < 0) ++counts.unresolved_members;
        if (target.user >= 0) group.member_users.push_back(static_cast<std::uint32_t>(target.user));
        if (target.group >= 0) {
          group.member_groups.push_back(static_cast<std::uint32_t>(target.group));
        }
      }
    }
    // One member written twice (or in two spellings) is one member.
    for (std::vector<std::uint32_t>* list : {&group.member_users, &group.member_groups}) {
      std::sort(list->begin(), list->end());
      list->erase(std::unique(list->begin(), list->end()), list->end());
    }
  }

  if (stats != nullptr) *stats = counts;
  return snapshot;
}

Result<mapping::SourceSnapshot> LdifSource::Read() {
  ASSIGN_OR_RETURN(std::string text, ReadFile(source_));
  LdifStats stats;
  ASSIGN_OR_RETURN(mapping::SourceSnapshot snapshot, SnapshotFromLdif(source_, text, &stats));
  last_stats_ = stats;
  return snapshot;
}

}  // namespace idsync::ldif
