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
  for (size_t i = 0; i < v.size(); ++i) {
    const char c = v[i];
    const auto u = static_cast<unsigned char>(c);
    // A C1 control character (C2 80-C2 9F) is escaped, so quoted too.
    const bool c1 = u == 0xc2 && i + 1 < v.size() && static_cast<unsigned char>(v[i + 1]) <= 0x9f;
    if (u <= ' ' || c == '"' || c == '=' || c == '\\' || u == 0x7f || c1) {
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

bool IsBlank(char c) { return c == ' ' || c == '\t'; }
bool IsQuote(char c) { return c == '"' || c == '\''; }

// Words whose value is a secret however it is written: `password=x`,
// `token: 'x'`, `"password": "x"`, `Authorization: Basic x`. Matched
// anywhere in a word ("access_token=", "client_secret:"), lower case.
constexpr std::string_view kSecretWords[] = {"password", "passwd",  "token",  "secret",
                                             "bind_pw",  "api_key", "apikey", "authorization"};

// Where the value after a secret word ending at `k` starts: past a closing
// quote (JSON's `"password"`), blanks, '=' or ':', and blanks. npos when no
// separator follows, so "tokens: 3" and "the token expired" are prose.
size_t ValueStart(std::string_view text, size_t k) {
  if (k < text.size() && IsQuote(text[k])) ++k;
  while (k < text.size() && IsBlank(text[k])) ++k;
  if (k >= text.size() || (text[k] != '=' && text[k] != ':')) return std::string::npos;
  ++k;
  while (k < text.size() && IsBlank(text[k])) ++k;
  return k;
}

// The end of an unquoted value starting at `k`.
size_t BareEnd(std::string_view text, size_t k) {
  while (k < text.size() && !IsValueEnd(text[k])) ++k;
  return k;
}

// The closing quote of a value opened at `open` (backslash escapes skipped),
// or the end of the text when it is never closed.
size_t QuotedEnd(std::string_view text, size_t open) {
  const char quote = text[open];
  for (size_t k = open + 1; k < text.size(); ++k) {
    if (text[k] == '\\') {
      ++k;
    } else if (text[k] == quote) {
      return k;
    }
  }
  return text.size();
}

// In an Authorization value the scheme ("Basic", "Bearer") is kept and the
// credentials after it are the secret: moves [*from, *to) past the scheme
// when one is followed by blanks and something more.
void SkipScheme(std::string_view text, bool quoted, size_t* from, size_t* to) {
  size_t k = *from;
  while (k < *to && (std::isalnum(static_cast<unsigned char>(text[k])) || text[k] == '-')) ++k;
  size_t credentials = k;
  while (credentials < text.size() && IsBlank(text[credentials])) ++credentials;
  if (k == *from || credentials == k || credentials >= text.size()) return;
  if (quoted) {
    if (credentials < *to) *from = credentials;
    return;
  }
  if (IsValueEnd(text[credentials])) return;
  *from = credentials;
  *to = BareEnd(text, credentials);
}

// C1 control characters (U+0080-U+009F, C2 80-C2 9F in UTF-8) and DEL
// escaped as C0 ones are (backslash, u, four hex digits): some terminals act
// on C1 as on ESC sequences
// (U+009B is CSI). Applied to a whole finished line, text or JSON, where
// such bytes can only stand inside a value, and a JSON string may hold the
// escape.
std::string EscapeC1(std::string line) {
  static constexpr char kHex[] = "0123456789abcdef";
  auto c1_at = [&line](size_t k) {
    return static_cast<unsigned char>(line[k]) == 0xc2 && k + 1 < line.size() &&
           static_cast<unsigned char>(line[k + 1]) >= 0x80 &&
           static_cast<unsigned char>(line[k + 1]) <= 0x9f;
  };
  bool any = false;
  for (size_t k = 0; k < line.size() && !any; ++k) any = line[k] == 0x7f || c1_at(k);
  if (!any) return line;
  std::string out;
  out.reserve(line.size() + 16);
  for (size_t k = 0; k < line.size(); ++k) {
    unsigned code = 0;
    if (line[k] == 0x7f) {
      code = 0x7f;
    } else if (c1_at(k)) {
      code = static_cast<unsigned char>(line[++k]);
    } else {
      out.push_back(line[k]);
      continue;
    }
    out += "\\u00";
    out.push_back(kHex[code >> 4]);
    out.push_back(kHex[code & 0xf]);
  }
  return out;
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
    size_t from = std::string::npos;  // where a secret value starts
    size_t to = std::string::npos;    // and where it ends
    // "Bearer <token>" (any case), as an Authorization header is written.
    if (lower.compare(i, 7, "bearer ") == 0) {
      from = i + 7;
      while (from < text.size() && IsBlank(text[from])) ++from;
      to = BareEnd(text, from);
    } else {
      for (std::string_view w : kSecretWords) {
        if (lower.compare(i, w.size(), w) != 0) continue;
        const size_t v = ValueStart(text, i + w.size());
        if (v >= text.size()) break;
        const bool quoted = IsQuote(text[v]);
        from = quoted ? v + 1 : v;
        to = quoted ? QuotedEnd(text, v) : BareEnd(text, v);
        if (w == "authorization") SkipScheme(text, quoted, &from, &to);
        break;
      }
    }
    if (from == std::string::npos || to <= from) {
      // No value follows: keep scanning after this byte.
      out.push_back(text[i++]);
      continue;
    }
    out.append(text.substr(i, from - i));
    out.append(kRedacted);
    i = to;
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
    return EscapeC1(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)) + "\n";
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
  return EscapeC1(std::move(line));
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
