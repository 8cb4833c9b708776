// The small value syntaxes of the configuration (durations, safety limits,
// byte sizes) and the Config accessors. No YAML here: these parse plain text
// so that the CLI and tests can use them too.

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "idsync/config/config.h"

namespace idsync::config {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads a run of decimal digits at `text[*pos]` into `*value`. False when
// there is no digit or the number does not fit in int64.
bool ReadDigits(std::string_view text, std::size_t* pos, std::int64_t* value) {
  std::size_t start = *pos;
  std::int64_t v = 0;
  while (*pos < text.size() && IsDigit(text[*pos])) {
    int digit = text[*pos] - '0';
    if (v > (std::numeric_limits<std::int64_t>::max() - digit) / 10) return false;
    v = v * 10 + digit;
    ++*pos;
  }
  *value = v;
  return *pos > start;
}

Status BadDuration(std::string_view text) {
  return InvalidArgumentError("bad duration '" + std::string(text) +
                              "': write whole numbers with a unit (ms, s, m, h, d), e.g. 30s, "
                              "15m, 2h, 1h30m");
}

Status BadLimit(std::string_view text) {
  return InvalidArgumentError("bad limit '" + std::string(text) +
                              "': write a count (e.g. 10), a percentage from 0% to 100% "
                              "(e.g. 5%) or none (no limit)");
}

Status BadByteSize(std::string_view text) {
  return InvalidArgumentError("bad size '" + std::string(text) +
                              "': write a number of bytes, optionally with a unit (B, KB, MB, "
                              "GB, KiB, MiB, GiB), e.g. 1MiB");
}

}  // namespace

Result<Duration> ParseDuration(std::string_view text) {
  // Units must come largest first and at most once each ("1h30m", not
  // "30m1h" or "1m30m"): a repeated or reversed unit is almost always a typo.
  struct Unit {
    std::string_view suffix;
    std::int64_t millis;
  };
  static constexpr Unit kUnits[] = {
      {"d", 86'400'000}, {"h", 3'600'000}, {"ms", 1}, {"m", 60'000}, {"s", 1'000},
  };
  static constexpr int kRank[] = {5, 4, 1, 3, 2};  // size order of kUnits entries
  if (text.empty()) return BadDuration(text);
  std::size_t pos = 0;
  std::int64_t total = 0;
  int last_rank = 6;
  while (pos < text.size()) {
    std::int64_t n = 0;
    if (!ReadDigits(text, &pos, &n)) return BadDuration(text);
    int found = -1;
    for (int i = 0; i < 5; ++i) {
      if (text.substr(pos, kUnits[i].suffix.size()) == kUnits[i].suffix) {
        found = i;
        break;
      }
    }
    if (found < 0) return BadDuration(text);
    pos += kUnits[found].suffix.size();
    if (kRank[found] >= last_rank) return BadDuration(text);
    last_rank = kRank[found];
    const std::int64_t max = std::numeric_limits<std::int64_t>::max();
    if (n > (max - total) / kUnits[found].millis) return BadDuration(text);
    total += n * kUnits[found].millis;
  }
  return Duration(total);
}

Result<mapping::Limit> ParseLimit(std::string_view text) {
  if (text.empty()) return BadLimit(text);
  mapping::Limit limit;
  // A word rather than a huge count or an empty value: turning a safety
  // limit off should be visible when the file is read.
  if (text == "none") {
    limit.kind = mapping::Limit::Kind::kUnlimited;
    return limit;
  }
  if (text.back() == '%') {
    std::string_view number = text.substr(0, text.size() - 1);
    std::size_t pos = 0;
    std::int64_t whole = 0;
    if (!ReadDigits(number, &pos, &whole)) return BadLimit(text);
    double value = static_cast<double>(whole);
    if (pos < number.size()) {
      // A fraction: "0.5%".
      if (number[pos] != '.') return BadLimit(text);
      ++pos;
      std::size_t frac_start = pos;
      double scale = 0.1;
      while (pos < number.size() && IsDigit(number[pos])) {
        value += (number[pos] - '0') * scale;
        scale /= 10;
        ++pos;
      }
      if (pos == frac_start || pos != number.size()) return BadLimit(text);
    }
    if (value > 100) return BadLimit(text);
    limit.kind = mapping::Limit::Kind::kPercent;
    limit.value = value;
    return limit;
  }
  std::size_t pos = 0;
  std::int64_t count = 0;
  if (!ReadDigits(text, &pos, &count) || pos != text.size()) return BadLimit(text);
  limit.kind = mapping::Limit::Kind::kCount;
  limit.value = static_cast<double>(count);
  return limit;
}

Result<std::uint64_t> ParseByteSize(std::string_view text) {
  struct Unit {
    std::string_view suffix;
    std::uint64_t factor;
  };
  static constexpr Unit kUnits[] = {
      {"", 1},
      {"B", 1},
      {"KB", 1000},
      {"kB", 1000},
      {"MB", 1000 * 1000},
      {"GB", 1000ULL * 1000 * 1000},
      {"KiB", 1024},
      {"MiB", 1024 * 1024},
      {"GiB", 1024ULL * 1024 * 1024},
  };
  std::size_t pos = 0;
  std::int64_t n = 0;
  if (!ReadDigits(text, &pos, &n)) return BadByteSize(text);
  std::string_view suffix = text.substr(pos);
  for (const Unit& unit : kUnits) {
    if (suffix != unit.suffix) continue;
    auto value = static_cast<std::uint64_t>(n);
    if (value > std::numeric_limits<std::uint64_t>::max() / unit.factor) {
      return BadByteSize(text);
    }
    return value * unit.factor;
  }
  return BadByteSize(text);
}

const SourceConfig* Config::FindSource(std::string_view name) const {
  for (const SourceConfig& source : sources) {
    if (source.name == name) return &source;
  }
  return nullptr;
}

std::string Config::SqlitePath() const {
  constexpr std::string_view kScheme = "sqlite://";
  if (store.compare(0, kScheme.size(), kScheme) != 0) return "";
  return store.substr(kScheme.size());
}

mapping::ReconcilePolicy Config::Policy() const {
  mapping::ReconcilePolicy policy;
  policy.deprovision = deprovision;
  policy.adopt_existing = adopt_existing;
  policy.protect = protect;
  policy.max_removals = safety.max_removals;
  policy.max_changes = safety.max_changes;
  return policy;
}

}  // namespace idsync::config
