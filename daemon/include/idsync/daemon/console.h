// The read-only web console on the admin listener, under /ui/.
//
// Pages (/ui/, /ui/app.js, /ui/app.css) are compiled into the binary and
// served under a strict Content-Security-Policy (no inline script, nothing
// from elsewhere, no framing). The page talks to /ui/api/*:
//
//   POST   /ui/api/session   {"token": admin token} -> signed in: a session
//                             cookie (HttpOnly, SameSite=Strict, Secure over
//                             TLS) and {"csrf", "expires_at"}; 401 a wrong
//                             token; 429 after too many failures from one
//                             address (console.signin_refused in the log)
//   GET    /ui/api/session   the session's {"csrf", "expires_at"}, or 401
//   DELETE /ui/api/session   signs out (everywhere: sessions live in the store)
//   GET    /ui/api/overview  idsync status --json
//   GET    /ui/api/plan      idsync plan --json
//   GET    /ui/api/people?q=&offset=&limit=   people search, server-side
//   GET    /ui/api/people/{email}              explain --json
//   GET    /ui/api/audit?email=&since=&until=&offset=&limit=  the audit log
//   GET    /ui/api/report.html                 the access review, as a download
//   POST   /ui/api/sync      a full run now (the console's one action)
//
// Every /ui/api/ call but sign-in needs the session cookie; DELETE and POST
// also need the session's CSRF token in X-CSRF-Token. A session ends when it
// expires (server.console_session), when it is signed out, or when the
// admin token it signed in with is no longer configured.
//
// Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "idsync/base/status.h"
#include "idsync/daemon/log.h"
#include "idsync/daemon/sync.h"
#include "idsync/httpd/server.h"
#include "idsync/store/console_sessions.h"

namespace idsync::daemon {

// What the console shows, from the daemon. Called from httpd worker threads.
class ConsoleBackend {
 public:
  virtual ~ConsoleBackend() = default;
  virtual Result<std::string> OverviewJson() = 0;
  virtual Result<std::string> PlanJson() = 0;
  // People the sources know whose address or name contains `query` (case
  // ignored), in e-mail order: {"total", "offset", "people": [{"email",
  // "name", "access", "role", "projects"}]}.
  virtual Result<std::string> PeopleJson(const std::string& query, std::size_t offset,
                                         std::size_t limit) = 0;
  virtual Result<std::string> ExplainJson(const std::string& email) = 0;
  // Audit entries (newest first) of `email` ("" for everyone) between the
  // times (0: no bound): {"total", "offset", "entries": [...], "chain": {"ok",
  // "entries", "head", "problem"}}.
  virtual Result<std::string> AuditJson(const std::string& email, std::int64_t since_ms,
                                        std::int64_t until_ms, std::size_t offset,
                                        std::size_t limit) = 0;
  virtual Result<std::string> ReportHtml() = 0;
  virtual Status RequestSync(bool force) = 0;
};

class Console {
 public:
  // Failed sign-ins one address may make in a minute before it is refused
  // (429) until the minute is over.
  static constexpr int kSignInFailuresPerMinute = 5;

  Console(ConsoleBackend& backend, store::ConsoleSessions& sessions, Logger& log, NowFn now,
          std::chrono::milliseconds session_lifetime);

  // True for the paths the console answers (/ui and below).
  static bool Serves(std::string_view path);

  // Answers one request; `token_hashes` are the admin tokens in force
  // ("sha256:..."), `tls` whether the listener has TLS. Never throws.
  httpd::Response Handle(const httpd::Request& request,
                         const std::vector<std::string>& token_hashes) const;

  // After a reload.
  void SetSessionLifetime(std::chrono::milliseconds lifetime);

 private:
  httpd::Response Api(const httpd::Request& request, std::string_view path,
                      const std::vector<std::string>& token_hashes) const;
  httpd::Response SignIn(const httpd::Request& request,
                         const std::vector<std::string>& token_hashes) const;
  // The request's live session, or the 401 to answer.
  Result<store::ConsoleSession> SessionOf(const httpd::Request& request,
                                          const std::vector<std::string>& token_hashes) const;
  // True (and counts it) when `remote` may try to sign in now.
  bool MayTry(const std::string& remote, std::int64_t now) const;
  void Failed(const std::string& remote, std::int64_t now) const;

  ConsoleBackend& backend_;
  store::ConsoleSessions& sessions_;
  Logger& log_;
  NowFn now_;

  mutable std::mutex mu_;
  std::chrono::milliseconds lifetime_;  // guarded by mu_
  struct Window {
    std::int64_t start_ms = 0;
    int failures = 0;
  };
  // Failed sign-ins per address in the current minute; bounded (oldest
  // windows are dropped first when it is full).
  mutable std::map<std::string, Window> failures_;  // guarded by mu_
};

}  // namespace idsync::daemon
