// The admin listener's routing, token check and error bodies. What each
// endpoint says comes from the AdminBackend; this file only decides who may
// ask and how the answer travels.

#include "idsync/daemon/admin.h"

#include <algorithm>
#include <cctype>
#include <exception>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "idsync/daemon/console.h"

namespace idsync::daemon {
namespace {

constexpr std::string_view kV1Prefix = "/v1/";
constexpr std::string_view kExplainPrefix = "/v1/explain/";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "sha256:<hex>" of `token`, the form server.admin_tokens holds. Empty when
// OpenSSL fails (then nothing matches).
std::string HashToken(std::string_view token) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(token.data(), token.size(), digest, &len, EVP_sha256(), nullptr) != 1) return {};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xf]);
  }
  return out;
}

// The token of an "Authorization: Bearer <token>" header, or "".
std::string_view BearerToken(std::string_view header) {
  constexpr std::string_view kScheme = "bearer";
  if (header.size() <= kScheme.size() || Lower(header.substr(0, kScheme.size())) != kScheme) {
    return {};
  }
  std::string_view rest = header.substr(kScheme.size());
  if (rest.front() != ' ' && rest.front() != '\t') return {};
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
  while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t')) rest.remove_suffix(1);
  return rest;
}

// The first header named `name` (ASCII case-insensitive), or "". Looked up
// here rather than through Request::Header so that the api is usable (and
// testable) without linking the server.
std::string_view FindHeader(const httpd::Request& request, std::string_view name) {
  const std::string want = Lower(name);
  for (const auto& [key, value] : request.headers) {
    if (Lower(key) == want) return value;
  }
  return {};
}

httpd::Response JsonResponse(int status, std::string body) {
  httpd::Response r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  if (r.body.empty() || r.body.back() != '\n') r.body.push_back('\n');
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

httpd::Response MethodNotAllowed(std::string_view allow) {
  httpd::Response r = AdminErrorResponse(405, "method not allowed; use " + std::string(allow));
  r.headers.emplace_back("Allow", std::string(allow));
  return r;
}

httpd::Response FromResult(const Result<std::string>& result) {
  if (!result.ok()) {
    return AdminErrorResponse(StatusToHttp(result.status().code()), result.status().message());
  }
  return JsonResponse(200, *result);
}

}  // namespace

int StatusToHttp(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAborted:
      return 409;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kUnauthenticated:
      return 401;
    case StatusCode::kResourceExhausted:
      return 429;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kDeadlineExceeded:
      return 504;
    case StatusCode::kInternal:
    case StatusCode::kDataLoss:
      return 500;
  }
  return 500;
}

httpd::Response AdminErrorResponse(int status, const std::string& message) {
  nlohmann::json body = {{"error", message}, {"status", status}};
  // Replace invalid UTF-8 rather than throw: the message may quote a request.
  return JsonResponse(status, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

AdminApi::AdminApi(std::vector<std::string> token_hashes, AdminBackend& backend,
                   const Metrics& metrics, const Console* console)
    : backend_(backend), metrics_(metrics), console_(console) {
  SetTokenHashes(std::move(token_hashes));
}

void AdminApi::SetTokenHashes(std::vector<std::string> token_hashes) {
  // The hex digits are compared as written by HashToken: lower case.
  for (std::string& h : token_hashes) h = Lower(h);
  std::lock_guard<std::mutex> lock(mu_);
  token_hashes_ = std::move(token_hashes);
}

httpd::Handler AdminApi::AsHandler() const {
  return [this](const httpd::Request& request) { return Handle(request); };
}

std::optional<httpd::Response> AdminApi::Refusal(const httpd::Request& request) const {
  std::vector<std::string> hashes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hashes = token_hashes_;
  }
  if (hashes.empty()) {
    return AdminErrorResponse(403,
                              "the admin API is disabled: no admin token is configured; set "
                              "server.admin_tokens to the \"sha256:...\" hash of a token "
                              "(`idsync scim-token new` makes one)");
  }
  std::string_view token = BearerToken(FindHeader(request, "Authorization"));
  bool match = false;
  if (!token.empty()) {
    const std::string presented = HashToken(token);
    // Every configured hash is compared, each in constant time, so the answer
    // takes the same time whichever (if any) matches.
    for (const std::string& h : hashes) {
      if (h.size() == presented.size() && !presented.empty() &&
          CRYPTO_memcmp(h.data(), presented.data(), h.size()) == 0) {
        match = true;
      }
    }
  }
  if (match) return std::nullopt;
  httpd::Response r = AdminErrorResponse(
      401, token.empty() ? "an admin token is required (Authorization: Bearer <token>)"
                         : "the admin token is not accepted");
  r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"idsync-admin\"");
  return r;
}

httpd::Response AdminApi::Handle(const httpd::Request& request) const {
  try {
    const std::string& path = request.path;
    const std::string& method = request.method;

    if (path == "/healthz") {
      if (method != "GET") return MethodNotAllowed("GET");
      httpd::Response r;
      r.content_type = "text/plain; charset=utf-8";
      r.body = "ok\n";
      r.headers.emplace_back("Cache-Control", "no-store");
      return r;
    }
    if (path == "/readyz") {
      if (method != "GET") return MethodNotAllowed("GET");
      // Paths and error text only for a token holder: /readyz needs none.
      const bool trusted = !Refusal(request).has_value();
      std::vector<std::string> reasons;
      for (const AdminBackend::NotReady& r : backend_.NotReadyReasons()) {
        reasons.push_back(trusted && !r.detail.empty() ? r.reason + ": " + r.detail : r.reason);
      }
      nlohmann::json body = {{"ready", reasons.empty()}, {"reasons", reasons}};
      return JsonResponse(reasons.empty() ? 200 : 503,
                          body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
    if (path == "/metrics") {
      if (method != "GET") return MethodNotAllowed("GET");
      httpd::Response r;
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.body = metrics_.Render();
      r.headers.emplace_back("Cache-Control", "no-store");
      return r;
    }

    if (console_ != nullptr && Console::Serves(path)) {
      std::vector<std::string> hashes;
      {
        std::lock_guard<std::mutex> lock(mu_);
        hashes = token_hashes_;
      }
      return console_->Handle(request, hashes);
    }
    if (path.rfind(kV1Prefix, 0) != 0) return AdminErrorResponse(404, "no such endpoint");

    // Route first, so a wrong path or method is told apart from a refusal;
    // what the endpoints answer is only reached with a token.
    enum class Route { kSync, kStatus, kPlan, kExplain } route;
    std::string email;
    if (path == "/v1/sync") {
      if (method != "POST") return MethodNotAllowed("POST");
      route = Route::kSync;
    } else if (path == "/v1/status") {
      if (method != "GET") return MethodNotAllowed("GET");
      route = Route::kStatus;
    } else if (path == "/v1/plan") {
      if (method != "GET") return MethodNotAllowed("GET");
      route = Route::kPlan;
    } else if (path.rfind(kExplainPrefix, 0) == 0) {
      if (method != "GET") return MethodNotAllowed("GET");
      email = path.substr(kExplainPrefix.size());
      route = Route::kExplain;
    } else {
      return AdminErrorResponse(404, "no such endpoint");
    }

    if (std::optional<httpd::Response> refusal = Refusal(request)) return *std::move(refusal);

    switch (route) {
      case Route::kSync: {
        // No body, or {"force": true|false}.
        bool force = false;
        if (!request.body.empty()) {
          nlohmann::json body =
              nlohmann::json::parse(request.body, nullptr, /*allow_exceptions=*/false);
          const bool valid =
              body.is_object() &&
              std::all_of(body.items().begin(), body.items().end(), [](const auto& item) {
                return item.key() == "force" && item.value().is_boolean();
              });
          if (!valid) {
            return AdminErrorResponse(
                400, "the body of POST /v1/sync is empty or {\"force\": true|false}");
          }
          force = body.value("force", false);
        }
        Status s = backend_.RequestSync(force);
        if (!s.ok()) return AdminErrorResponse(StatusToHttp(s.code()), s.message());
        return JsonResponse(202, R"({"accepted": true})");
      }
      case Route::kStatus:
        return FromResult(backend_.StatusJson());
      case Route::kPlan:
        return FromResult(backend_.PlanJson());
      case Route::kExplain:
        if (email.empty() || email.find('/') != std::string::npos) {
          return AdminErrorResponse(400, "expected /v1/explain/{email}");
        }
        return FromResult(backend_.ExplainJson(email));
    }
    return AdminErrorResponse(404, "no such endpoint");
  } catch (const std::exception&) {
    // A backend bug must not take the listener down; the message stays
    // generic because exception text may carry anything.
    return AdminErrorResponse(500, "internal error");
  }
}

}  // namespace idsync::daemon
