// The web console's routing, sessions and headers (console.h). What the
// pages show comes from the ConsoleBackend; the pages themselves are
// console_assets.cc, made at build time from daemon/console/.

#include "idsync/daemon/console.h"

#include <algorithm>
#include <cctype>
#include <exception>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "idsync/daemon/admin.h"
#include "idsync/daemon/report.h"
#include "idsync/daemon/status.h"

#include "console_assets.h"

namespace idsync::daemon {
namespace {

constexpr std::string_view kCookie = "idsync_session";
constexpr std::string_view kApi = "/ui/api/";
constexpr std::size_t kMaxTrackedAddresses = 10000;
constexpr std::size_t kMaxPageSize = 200;

constexpr char kPolicy[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

void Harden(httpd::Response& r, bool cacheable) {
  r.headers.emplace_back("Content-Security-Policy", kPolicy);
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("Cross-Origin-Opener-Policy", "same-origin");
  r.headers.emplace_back("Cache-Control", cacheable ? "no-cache" : "no-store");
}

httpd::Response Json(int status, std::string body) {
  httpd::Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  Harden(r, false);
  return r;
}

httpd::Response Error(int status, const std::string& message) {
  httpd::Response r = AdminErrorResponse(status, message);
  Harden(r, false);
  return r;
}

httpd::Response FromResult(const Result<std::string>& result) {
  if (!result.ok()) return Error(StatusToHttp(result.status().code()), result.status().message());
  return Json(200, *result);
}

std::string RandomHex(std::size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) return "";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : raw) {
    hex += kHex[c >> 4];
    hex += kHex[c & 0xF];
  }
  return hex;
}

bool SameSecret(std::string_view a, std::string_view b) {
  return a.size() == b.size() && !a.empty() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// The first header named `name` (ASCII case ignored), or "".
std::string_view HeaderOf(const httpd::Request& request, std::string_view name) {
  for (const auto& [key, value] : request.headers) {
    if (key.size() == name.size() &&
        std::equal(key.begin(), key.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) ==
                 std::tolower(static_cast<unsigned char>(b));
        })) {
      return value;
    }
  }
  return {};
}

// The session cookie's value, or "".
std::string CookieOf(const httpd::Request& request) {
  std::string_view header = HeaderOf(request, "Cookie");
  while (!header.empty()) {
    const std::size_t end = header.find(';');
    std::string_view part = header.substr(0, end);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    if (part.size() > kCookie.size() && part.substr(0, kCookie.size()) == kCookie &&
        part[kCookie.size()] == '=') {
      return std::string(part.substr(kCookie.size() + 1));
    }
    if (end == std::string_view::npos) break;
    header.remove_prefix(end + 1);
  }
  return "";
}

// "127.0.0.1:53122" -> "127.0.0.1"; "[::1]:8080" -> "::1".
std::string AddressOf(const std::string& remote) {
  if (!remote.empty() && remote.front() == '[') {
    const std::size_t close = remote.find(']');
    return close == std::string::npos ? remote : remote.substr(1, close - 1);
  }
  const std::size_t colon = remote.rfind(':');
  return colon == std::string::npos ? remote : remote.substr(0, colon);
}

std::string SetCookie(const std::string& value, std::int64_t max_age_s, bool tls) {
  std::string c = std::string(kCookie) + "=" + value + "; Path=/ui/; HttpOnly; SameSite=Strict";
  c += "; Max-Age=" + std::to_string(max_age_s);
  if (tls) c += "; Secure";
  return c;
}

std::size_t Number(const httpd::Request& request, std::string_view name, std::size_t fallback,
                   std::size_t most) {
  const std::string* text = request.Query(name);
  if (text == nullptr || text->empty() || text->size() > 15 ||
      !std::all_of(text->begin(), text->end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return fallback;
  }
  return std::min<std::size_t>(std::stoul(*text), most);
}

}  // namespace

Console::Console(ConsoleBackend& backend, store::ConsoleSessions& sessions, Logger& log, NowFn now,
                 std::chrono::milliseconds session_lifetime)
    : backend_(backend),
      sessions_(sessions),
      log_(log),
      now_(std::move(now)),
      lifetime_(session_lifetime) {}

bool Console::Serves(std::string_view path) { return path == "/ui" || path.rfind("/ui/", 0) == 0; }

void Console::SetSessionLifetime(std::chrono::milliseconds lifetime) {
  std::lock_guard lock(mu_);
  lifetime_ = lifetime;
}

httpd::Response Console::Handle(const httpd::Request& request,
                                const std::vector<std::string>& token_hashes) const {
  try {
    const std::string& path = request.path;
    if (path == "/ui") {
      httpd::Response r;
      r.status = 308;
      r.content_type = "text/plain; charset=utf-8";
      r.body = "see /ui/\n";
      r.headers.emplace_back("Location", "/ui/");
      Harden(r, false);
      return r;
    }
    if (path.rfind(kApi, 0) == 0) {
      return Api(request, std::string_view(path).substr(kApi.size()), token_hashes);
    }
    const ConsoleAsset* asset = FindConsoleAsset(path == "/ui/" ? "/ui/index.html" : path);
    if (asset == nullptr) return Error(404, "no such page");
    if (request.method != "GET" && request.method != "HEAD") {
      httpd::Response r = Error(405, "method not allowed");
      r.headers.emplace_back("Allow", "GET, HEAD");
      return r;
    }
    httpd::Response r;
    r.content_type = std::string(asset->content_type);
    r.body = std::string(asset->body);
    Harden(r, true);
    return r;
  } catch (const std::exception&) {
    return Error(500, "internal error");
  }
}

bool Console::MayTry(const std::string& remote, std::int64_t now) const {
  std::lock_guard lock(mu_);
  auto it = failures_.find(remote);
  if (it == failures_.end()) return true;
  if (now - it->second.start_ms >= 60000) {
    failures_.erase(it);
    return true;
  }
  return it->second.failures < kSignInFailuresPerMinute;
}

void Console::Failed(const std::string& remote, std::int64_t now) const {
  std::lock_guard lock(mu_);
  if (failures_.size() >= kMaxTrackedAddresses && !failures_.count(remote)) {
    // Full: forget the windows that are over, then the oldest.
    for (auto it = failures_.begin(); it != failures_.end();) {
      it = now - it->second.start_ms >= 60000 ? failures_.erase(it) : std::next(it);
    }
    if (failures_.size() >= kMaxTrackedAddresses) {
      failures_.erase(std::min_element(
          failures_.begin(), failures_.end(),
          [](const auto& a, const auto& b) { return a.second.start_ms < b.second.start_ms; }));
    }
  }
  Window& w = failures_[remote];
  if (w.failures == 0 || now - w.start_ms >= 60000) w = Window{now, 0};
  w.failures++;
}

httpd::Response Console::SignIn(const httpd::Request& request,
                                const std::vector<std::string>& token_hashes) const {
  const std::int64_t now = now_();
  const std::string remote = AddressOf(request.remote);
  if (!MayTry(remote, now)) {
    log_.Warning("console.signin_refused",
                 "too many failed sign-ins to the console from one address; refused for a minute",
                 {{"remote", remote}});
    httpd::Response r = Error(429, "too many failed sign-ins; try again in a minute");
    r.headers.emplace_back("Retry-After", "60");
    return r;
  }
  const nlohmann::json body = nlohmann::json::parse(request.body, nullptr, false);
  if (!body.is_object() || !body.contains("token") || !body["token"].is_string()) {
    return Error(400, "the body is {\"token\": \"<admin token>\"}");
  }
  const std::string presented = "sha256:" + Sha256Hex(body["token"].get<std::string>());
  std::string matched;
  for (const std::string& h : token_hashes) {
    if (SameSecret(h, presented)) matched = h;
  }
  if (matched.empty()) {
    Failed(remote, now);
    log_.Warning("console.signin_failed", "a sign-in to the console with a wrong token",
                 {{"remote", remote}});
    return Error(401, token_hashes.empty() ? "the console is disabled: no admin token is "
                                             "configured (server.admin_tokens)"
                                           : "that token is not accepted");
  }
  std::chrono::milliseconds lifetime;
  {
    std::lock_guard lock(mu_);
    lifetime = lifetime_;
  }
  const std::string secret = RandomHex(32);
  const std::string csrf = RandomHex(32);
  if (secret.empty() || csrf.empty()) return Error(500, "no random bytes for a session");
  store::ConsoleSession session{Sha256Hex(secret), matched, csrf, now, now + lifetime.count()};
  if (Status created = sessions_.Create(session); !created.ok()) {
    return Error(StatusToHttp(created.code()), created.message());
  }
  sessions_.Prune(now).status().IgnoreError();
  log_.Info("console.signin", "signed in to the console", {{"remote", remote}});
  httpd::Response r = Json(
      200, nlohmann::json({{"csrf", csrf}, {"expires_at", FormatTime(session.expires_ms)}}).dump());
  r.headers.emplace_back("Set-Cookie", SetCookie(secret, lifetime.count() / 1000, request.tls));
  return r;
}

Result<store::ConsoleSession> Console::SessionOf(
    const httpd::Request& request, const std::vector<std::string>& token_hashes) const {
  const std::string secret = CookieOf(request);
  if (secret.empty()) return UnauthenticatedError("sign in first");
  ASSIGN_OR_RETURN(std::optional<store::ConsoleSession> session,
                   sessions_.Get(Sha256Hex(secret), now_()));
  if (!session) return UnauthenticatedError("the session has ended; sign in again");
  // A session of a token no longer configured ends with it.
  if (std::find(token_hashes.begin(), token_hashes.end(), session->token_hash) ==
      token_hashes.end()) {
    sessions_.End(session->id_hash).IgnoreError();
    return UnauthenticatedError("the session has ended; sign in again");
  }
  return *session;
}

httpd::Response Console::Api(const httpd::Request& request, std::string_view route,
                             const std::vector<std::string>& token_hashes) const {
  const std::string& method = request.method;
  if (route == "session" && method == "POST") return SignIn(request, token_hashes);

  Result<store::ConsoleSession> session = SessionOf(request, token_hashes);
  if (!session.ok()) {
    httpd::Response r = Error(StatusToHttp(session.status().code()), session.status().message());
    if (session.status().code() == StatusCode::kUnauthenticated) {
      r.headers.emplace_back("Set-Cookie", SetCookie("", 0, request.tls));
    }
    return r;
  }
  if (method != "GET") {
    // A change is asked for: it must carry the session's CSRF token and, when
    // the browser says where the page came from, come from this listener.
    const std::string_view origin = HeaderOf(request, "Origin");
    const std::string_view host = HeaderOf(request, "Host");
    if (!origin.empty() && origin != "null") {
      const std::size_t scheme = origin.find("://");
      if (scheme == std::string_view::npos || origin.substr(scheme + 3) != host) {
        return Error(403, "a request from another origin");
      }
    }
    if (!SameSecret(HeaderOf(request, "X-CSRF-Token"), session->csrf)) {
      return Error(403, "the request lacks the session's CSRF token");
    }
  }

  if (route == "session") {
    if (method == "GET") {
      return Json(200, nlohmann::json({{"csrf", session->csrf},
                                       {"expires_at", FormatTime(session->expires_ms)}})
                           .dump());
    }
    if (method == "DELETE") {
      if (Status ended = sessions_.End(session->id_hash); !ended.ok()) {
        return Error(StatusToHttp(ended.code()), ended.message());
      }
      log_.Info("console.signout", "signed out of the console",
                {{"remote", AddressOf(request.remote)}});
      httpd::Response r;
      r.status = 204;
      r.content_type = "application/json";
      Harden(r, false);
      r.headers.emplace_back("Set-Cookie", SetCookie("", 0, request.tls));
      return r;
    }
  } else if (route == "sync" && method == "POST") {
    Status s = backend_.RequestSync(false);
    if (!s.ok()) return Error(StatusToHttp(s.code()), s.message());
    log_.Info("console.sync", "a full run was asked for from the console",
              {{"remote", AddressOf(request.remote)}});
    return Json(202, R"({"accepted": true})");
  } else if (method == "GET") {
    if (route == "overview") return FromResult(backend_.OverviewJson());
    if (route == "plan") return FromResult(backend_.PlanJson());
    if (route == "people") {
      const std::string* q = request.Query("q");
      return FromResult(backend_.PeopleJson(q ? *q : "", Number(request, "offset", 0, 1u << 30),
                                            Number(request, "limit", 50, kMaxPageSize)));
    }
    if (route.rfind("people/", 0) == 0) {
      const std::string email(route.substr(7));
      if (email.empty() || email.find('/') != std::string::npos) {
        return Error(400, "expected /ui/api/people/{email}");
      }
      return FromResult(backend_.ExplainJson(email));
    }
    if (route == "audit") {
      const std::string* email = request.Query("email");
      // Milliseconds since the epoch; 0 or absent: no bound.
      auto time = [&](std::string_view name) {
        return static_cast<std::int64_t>(Number(request, name, 0, std::size_t{1} << 52));
      };
      return FromResult(backend_.AuditJson(email ? *email : "", time("since"), time("until"),
                                           Number(request, "offset", 0, 1u << 30),
                                           Number(request, "limit", 50, kMaxPageSize)));
    }
    if (route == "report.html") {
      Result<std::string> html = backend_.ReportHtml();
      if (!html.ok()) return Error(StatusToHttp(html.status().code()), html.status().message());
      httpd::Response r;
      r.content_type = "text/html; charset=utf-8";
      r.body = std::move(html).value();
      Harden(r, false);
      r.headers.emplace_back("Content-Disposition",
                             "attachment; filename=\"idsync-access-review.html\"");
      return r;
    }
  }
  return Error(404, "no such endpoint");
}

}  // namespace idsync::daemon
