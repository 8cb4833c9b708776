// Log line formatting. Lines are built outside the lock and written with one
// fwrite under it, so concurrent lines never interleave.

#include "idsync/daemon/log.h"

#include <cctype>
#include <cstdio>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>
#include <time.h>

#include "idsync/base/json_text.h"

namespace idsync::daemon {
namespace {

constexpr std::string_view kRedacted = "[redacted]";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The sd-daemon priority (syslog numbering) journald reads from "<N>".
int Priority(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return 7;
    case LogLevel::kInfo:
      return 6;
    case LogLevel::kWarning:
      return 4;
    case LogLevel::kError:
      return 3;
  }
  return 6;
}

std::string_view LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

// journald starts a new entry at each newline, so a text line must stay one.
std::string OneLine(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if ((u < 0x20 && c != '\t') || u == 0x7f) {
      // A directory value in an error must not drive the terminal reading
      // the journal.
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\u00";
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// A text field value: bare when it is a plain word, else double-quoted with
// backslash escapes, so `key=value` pairs stay machine-splittable.
std::string QuoteValue(std::string_view v) {
  bool plain = !v.empty();
  for (char c : v) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= ' ' || c == '"' || c == '=' || c == '\\' || u == 0x7f) {
      plain = false;
      break;
    }
  }
  if (plain) return std::string(v);
  // Every control character is escaped, so a directory value can neither
  // start a fake journal line nor reach a terminal as an escape sequence.
  return base::JsonQuote(v);
}

std::string Rfc3339(std::chrono::system_clock::time_point t) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  const auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(ms / 1000);
  long frac = static_cast<long>(ms % 1000);
  if (frac < 0) {
    frac += 1000;
    --secs;
  }
  tm utc{};
  gmtime_r(&secs, &utc);
  // Sized for any int year, so the compiler can prove nothing is cut.
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, frac);
  return buf;
}

bool IsValueEnd(char c) {
  return std::isspace(static_cast<unsigned char>(c)) || c == '&' || c == ',' || c == ';' ||
         c == '"' || c == '\'' || c == ')' || c == '}';
}

}  // namespace

LogField::LogField(std::string_view k, double v) : key(k) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  value = buf;
}

bool IsSecretKey(std::string_view key) {
  const std::string k = Lower(key);
  static constexpr std::string_view kWords[] = {
      "token",      "password", "passwd",      "secret",  "authorization",
      "credential", "cookie",   "private_key", "api_key", "bind_pw"};
  for (std::string_view w : kWords) {
    if (k.find(w) != std::string::npos) return true;
  }
  return k == "key" || k == "pass" || k == "pw";
}

std::string ScrubSecrets(std::string_view text) {
  const std::string lower = Lower(text);
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    size_t skip_from = std::string::npos;  // where a secret value starts
    // "Bearer <token>" (any case), as an Authorization header is written.
    if (lower.compare(i, 7, "bearer ") == 0) {
      skip_from = i + 7;
    } else {
      for (std::string_view w : {"password=", "password:", "passwd=", "token=", "token:", "secret=",
                                 "secret:", "bind_pw="}) {
        if (lower.compare(i, w.size(), w) == 0) {
          skip_from = i + w.size();
          break;
        }
      }
    }
    if (skip_from == std::string::npos) {
      out.push_back(text[i++]);
      continue;
    }
    out.append(text.substr(i, skip_from - i));
    size_t j = skip_from;
    while (j < text.size() && text[j] == ' ') ++j;
    size_t end = j;
    while (end < text.size() && !IsValueEnd(text[end])) ++end;
    if (end == j) {
      // Nothing follows: keep scanning after the keyword.
      i = skip_from;
      continue;
    }
    out.append(text.substr(skip_from, j - skip_from));
    out.append(kRedacted);
    i = end;
  }
  return out;
}

Logger::Logger(LogFormat format, LogLevel level, Sink sink, Clock clock)
    : format_(format), level_(level), sink_(std::move(sink)), clock_(std::move(clock)) {
  if (!clock_) clock_ = [] { return std::chrono::system_clock::now(); };
}

void Logger::Configure(LogFormat format, LogLevel level) {
  std::lock_guard<std::mutex> lock(mu_);
  format_ = format;
  level_ = level;
}

void Logger::Configure(const config::LoggingConfig& logging) {
  LogFormat format =
      logging.format == config::LoggingConfig::Format::kJson ? LogFormat::kJson : LogFormat::kText;
  LogLevel level = LogLevel::kInfo;
  switch (logging.level) {
    case config::LoggingConfig::Level::kDebug:
      level = LogLevel::kDebug;
      break;
    case config::LoggingConfig::Level::kInfo:
      level = LogLevel::kInfo;
      break;
    case config::LoggingConfig::Level::kWarning:
      level = LogLevel::kWarning;
      break;
    case config::LoggingConfig::Level::kError:
      level = LogLevel::kError;
      break;
  }
  Configure(format, level);
}

bool Logger::Enabled(LogLevel level) const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(level) >= static_cast<int>(level_);
}

void Logger::Log(LogLevel level, std::string_view event, std::string_view message,
                 std::initializer_list<LogField> fields) {
  Write(level, event, message, fields.begin(), fields.size());
}

void Logger::Log(LogLevel level, std::string_view event, std::string_view message,
                 const std::vector<LogField>& fields) {
  Write(level, event, message, fields.data(), fields.size());
}

std::string Logger::Format(LogFormat format, LogLevel level, std::string_view event,
                           std::string_view message, const LogField* fields, size_t n) const {
  const std::string clean_message = ScrubSecrets(message);
  auto value_of = [](const LogField& f) {
    return IsSecretKey(f.key) ? std::string(kRedacted) : ScrubSecrets(f.value);
  };
  if (format == LogFormat::kJson) {
    nlohmann::ordered_json j;
    j["time"] = Rfc3339(clock_());
    j["level"] = LevelName(level);
    j["event"] = event;
    j["message"] = clean_message;
    nlohmann::ordered_json f = nlohmann::ordered_json::object();
    for (size_t i = 0; i < n; ++i) f[fields[i].key] = value_of(fields[i]);
    j["fields"] = std::move(f);
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  }
  std::string line = "<" + std::to_string(Priority(level)) + ">";
  line += OneLine(event);
  line += ": ";
  line += OneLine(clean_message);
  for (size_t i = 0; i < n; ++i) {
    line.push_back(' ');
    line += OneLine(fields[i].key);
    line.push_back('=');
    line += QuoteValue(value_of(fields[i]));
  }
  line.push_back('\n');
  return line;
}

void Logger::Write(LogLevel level, std::string_view event, std::string_view message,
                   const LogField* fields, size_t n) {
  LogFormat format;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (static_cast<int>(level) < static_cast<int>(level_)) return;
    format = format_;
  }
  const std::string line = Format(format, level, event, message, fields, n);
  std::lock_guard<std::mutex> lock(mu_);
  if (sink_) {
    sink_(line);
  } else {
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
  }
}

}  // namespace idsync::daemon
