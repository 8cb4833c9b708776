// Logger: idsyncd's log lines on stderr, read by journald.
//
// Text format: one line per event, "<N>event: message key=value ...", where
// <N> is the sd-daemon priority prefix (<3> error, <4> warning, <6> info,
// <7> debug) that journald turns into the entry's priority. JSON format
// (logging.format: json): one object per line {"time", "level", "event",
// "message", "fields": {...}}. Lines under the configured level are dropped.
//
// Secrets: callers never pass tokens, passwords or keys, neither in the
// message nor in fields. As a second line of defence, a field whose key names
// a secret (token, password, secret, authorization, credential, key, cookie)
// is written as "[redacted]", and secret values in any text are masked (see
// ScrubSecrets).
//
// Control characters: C0 (but tab), DEL and C1 (U+0080-U+009F) are written
// as JSON-style escapes (a backslash, 'u', four hex digits) in both formats,
// so no value can end a journal line or drive the terminal reading it.
//
// Thread-safe: each line is written whole with one write.
#pragma once

#include <chrono>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "idsync/config/config.h"

namespace idsync::daemon {

enum class LogLevel { kDebug, kInfo, kWarning, kError };
enum class LogFormat { kText, kJson };

// One key=value pair of a log line. Keys are snake_case and stable.
struct LogField {
  LogField(std::string_view k, std::string_view v) : key(k), value(v) {}
  LogField(std::string_view k, const char* v) : key(k), value(v) {}
  LogField(std::string_view k, const std::string& v) : key(k), value(v) {}
  LogField(std::string_view k, long long v) : key(k), value(std::to_string(v)) {}
  LogField(std::string_view k, int v) : key(k), value(std::to_string(v)) {}
  LogField(std::string_view k, long v) : key(k), value(std::to_string(v)) {}
  LogField(std::string_view k, unsigned long v) : key(k), value(std::to_string(v)) {}
  LogField(std::string_view k, double v);
  LogField(std::string_view k, bool v) : key(k), value(v ? "true" : "false") {}
  std::string key;
  std::string value;
};

// True when a field named `key` would carry a secret (case-insensitive match
// of token, password, passwd, secret, authorization, credential, cookie,
// api_key/private_key/key).
bool IsSecretKey(std::string_view key);

// `text` with secret values replaced by "[redacted]": "Bearer <x>"; the
// credentials of "Authorization: <scheme> <x>"; and the value after a word
// naming a secret (password, passwd, token, secret, bind_pw, api_key,
// authorization) and '=' or ':', bare (`password=x`), quoted
// (`token: 'x y'`, quotes kept) or in JSON (`"password": "x"`). A word
// without such a separator ("3 tokens", "the token expired") is prose.
std::string ScrubSecrets(std::string_view text);

class Logger {
 public:
  // Where a finished line goes (with its trailing '\n'). Default: stderr.
  // Called under the logger's lock, one line at a time: it must not log.
  using Sink = std::function<void(std::string_view line)>;
  // The wall clock for JSON "time"; default system_clock::now.
  using Clock = std::function<std::chrono::system_clock::time_point()>;

  explicit Logger(LogFormat format = LogFormat::kText, LogLevel level = LogLevel::kInfo,
                  Sink sink = nullptr, Clock clock = nullptr);

  // Changes format and level (after a reload). Thread-safe.
  void Configure(LogFormat format, LogLevel level);
  // Same, from logging: in the configuration.
  void Configure(const config::LoggingConfig& logging);

  // True when a line at `level` would be written.
  bool Enabled(LogLevel level) const;

  // Writes one line. `event` is a stable dotted name ("run.finished");
  // `message` for people; `fields` in order.
  void Log(LogLevel level, std::string_view event, std::string_view message,
           std::initializer_list<LogField> fields = {});
  void Log(LogLevel level, std::string_view event, std::string_view message,
           const std::vector<LogField>& fields);

  void Debug(std::string_view event, std::string_view message,
             std::initializer_list<LogField> fields = {}) {
    Log(LogLevel::kDebug, event, message, fields);
  }
  void Info(std::string_view event, std::string_view message,
            std::initializer_list<LogField> fields = {}) {
    Log(LogLevel::kInfo, event, message, fields);
  }
  void Warning(std::string_view event, std::string_view message,
               std::initializer_list<LogField> fields = {}) {
    Log(LogLevel::kWarning, event, message, fields);
  }
  void Error(std::string_view event, std::string_view message,
             std::initializer_list<LogField> fields = {}) {
    Log(LogLevel::kError, event, message, fields);
  }

 private:
  std::string Format(LogFormat format, LogLevel level, std::string_view event,
                     std::string_view message, const LogField* fields, size_t n) const;
  void Write(LogLevel level, std::string_view event, std::string_view message,
             const LogField* fields, size_t n);

  mutable std::mutex mu_;
  LogFormat format_;  // guarded by mu_
  LogLevel level_;    // guarded by mu_
  Sink sink_;
  Clock clock_;
};

}  // namespace idsync::daemon
