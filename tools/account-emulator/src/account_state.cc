// The account emulator's state machine (~980 lines): every endpoint of the
// account contract (../shared/contracts/account-api.md) with its validation,
// idempotency keys, pagination cursors, the audit trail and persistence. It
// mirrors the contract section by section, which is how a reader checks it.

#include "account_state.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <set>
#include <utility>

#include "idsync/base/json_text.h"

namespace idsync::emulator {
namespace {

constexpr std::int64_t kIdempotencyTtlMs = 24LL * 3600 * 1000;
constexpr std::size_t kMaxNameBytes = 256;
constexpr std::size_t kMaxEmailBytes = 254;
constexpr std::size_t kMaxKeyBytes = 255;
constexpr int kDefaultLimit = 100;
constexpr int kMaxLimit = 1000;
constexpr std::string_view kCursorPrefix = "after:";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::int64_t ToMillis(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

bool IsWrite(std::string_view method) {
  return method == "POST" || method == "PATCH" || method == "DELETE";
}

ApiOutcome Answer(int status, Json body) {
  ApiOutcome out;
  out.response.status = status;
  out.response.body = body.dump();
  return out;
}

ApiOutcome Error(int status, std::string_view code, std::string_view message) {
  ApiOutcome out;
  out.response = ErrorResponse(status, code, message);
  return out;
}

ApiOutcome Invalid(std::string_view message) { return Error(400, "invalid_request", message); }

// Text from the request line (paths, query values) is not checked UTF-8, so
// it is rendered with bad bytes replaced instead of failing the answer.
std::string SafeDump(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string Quote(std::string_view s) { return SafeDump(Json(std::string(s))); }

// Percent-decoding for a path segment or query component. False on a
// malformed escape. '+' means a space only in queries.
bool PercentDecode(std::string_view in, bool plus_is_space, std::string* out) {
  out->clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      auto hex = [](char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'a' && h <= 'f') return h - 'a' + 10;
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        return -1;
      };
      int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      out->push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out->push_back(' ');
    } else {
      out->push_back(c);
    }
  }
  return true;
}

// Splits a query into name -> value. False (and *error) on a malformed or
// repeated parameter, or one not in `allowed`.
bool ParseQuery(std::string_view query, const std::set<std::string, std::less<>>& allowed,
                std::map<std::string, std::string>* out, std::string* error) {
  out->clear();
  if (query.empty()) return true;
  std::size_t start = 0;
  while (start <= query.size()) {
    std::size_t amp = query.find('&', start);
    std::string_view part = query.substr(start, amp == std::string_view::npos ? amp : amp - start);
    std::size_t eq = part.find('=');
    std::string name, value;
    if (!PercentDecode(part.substr(0, eq), true, &name) ||
        (eq != std::string_view::npos && !PercentDecode(part.substr(eq + 1), true, &value))) {
      *error = "malformed query string";
      return false;
    }
    if (name.empty()) {
      *error = "malformed query string";
      return false;
    }
    if (!allowed.contains(name)) {
      *error = "unknown query parameter " + Quote(name);
      return false;
    }
    if (!out->emplace(name, value).second) {
      *error = "query parameter " + Quote(name) + " is repeated";
      return false;
    }
    if (amp == std::string_view::npos) break;
    start = amp + 1;
  }
  return true;
}

// A non-negative decimal integer, digits only, no overflow.
bool ParseUint(std::string_view s, std::uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

// Cursors are opaque to clients: the hex of "after:<seq>". Encoding the
// creation sequence keeps paging stable while users are added or removed.
std::string EncodeCursor(std::uint64_t seq) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string plain = std::string(kCursorPrefix) + std::to_string(seq);
  std::string out;
  for (unsigned char c : plain) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

bool DecodeCursor(std::string_view cursor, std::uint64_t* seq) {
  if (cursor.empty() || cursor.size() % 2 != 0 || cursor.size() > 64) return false;
  std::string plain;
  for (std::size_t i = 0; i < cursor.size(); i += 2) {
    auto hex = [](char h) -> int {
      if (h >= '0' && h <= '9') return h - '0';
      if (h >= 'a' && h <= 'f') return h - 'a' + 10;
      return -1;
    };
    int hi = hex(cursor[i]), lo = hex(cursor[i + 1]);
    if (hi < 0 || lo < 0) return false;
    plain.push_back(static_cast<char>(hi * 16 + lo));
  }
  if (!plain.starts_with(kCursorPrefix)) return false;
  return ParseUint(std::string_view(plain).substr(kCursorPrefix.size()), seq);
}

// "local@domain": one '@', a local part of printable non-space characters
// (UTF-8 allowed), a domain of at least two dot-separated labels of letters,
// digits and '-' that neither start nor end with '-'.
bool LooksLikeEmail(std::string_view email) {
  if (email.empty() || email.size() > kMaxEmailBytes) return false;
  std::size_t at = email.find('@');
  if (at == std::string_view::npos || at == 0 || email.find('@', at + 1) != std::string_view::npos)
    return false;
  std::string_view local = email.substr(0, at), domain = email.substr(at + 1);
  if (local.size() > 64) return false;
  static constexpr std::string_view kForbidden = " \"(),:;<>[\\]";
  for (char c : local) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u == 0x7f || kForbidden.find(c) != std::string_view::npos) return false;
  }
  if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos)
    return false;
  if (domain.empty() || domain.find('.') == std::string_view::npos) return false;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = domain.find('.', start);
    std::string_view label =
        domain.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
      return false;
    for (char c : label) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

bool ValidRole(const std::string& role) { return role == "admin" || role == "member"; }

// The JSON type a client sent, for messages.
std::string TypeName(const Json& v) { return v.type_name(); }

// Idempotency keys: 1..255 printable ASCII characters.
bool ValidIdempotencyKey(std::string_view key) {
  if (key.empty() || key.size() > kMaxKeyBytes) return false;
  return std::all_of(key.begin(), key.end(), [](char c) { return c >= 0x21 && c <= 0x7e; });
}

// The body as compared between a first request and its replay: parsed and
// dumped again when it is JSON (so key order and spacing do not matter).
std::string CanonicalBody(const std::string& body) {
  if (body.empty()) return body;
  nlohmann::json parsed = nlohmann::json::parse(body, nullptr, false);
  if (parsed.is_discarded()) return body;
  return parsed.dump();
}

bool IsJsonMediaType(std::string_view content_type) {
  std::string_view media = content_type.substr(0, content_type.find(';'));
  while (!media.empty() && std::isspace(static_cast<unsigned char>(media.back())))
    media.remove_suffix(1);
  while (!media.empty() && std::isspace(static_cast<unsigned char>(media.front())))
    media.remove_prefix(1);
  return Lower(media) == "application/json";
}

// Parses a write's body: must be a JSON object sent as application/json.
// Returns an error outcome, or nullopt with *out set.
std::optional<ApiOutcome> ParseBody(const ApiRequest& request, Json* out) {
  if (request.body.empty()) return Invalid("a JSON body is required");
  if (!IsJsonMediaType(request.content_type)) {
    return Error(415, "unsupported_media_type", "the body must be sent as application/json");
  }
  Json parsed = Json::parse(request.body, nullptr, false);
  if (parsed.is_discarded()) return Invalid("the body is not well-formed JSON");
  if (!parsed.is_object())
    return Invalid("the body must be a JSON object, not " + TypeName(parsed));
  *out = std::move(parsed);
  return std::nullopt;
}

// A string field of a seed document, or `fallback` when absent.
bool SeedString(const Json& obj, const char* field, std::string fallback, std::string* out,
                std::string* error, const std::string& where) {
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) {
    *out = std::move(fallback);
    return true;
  }
  if (!it->is_string()) {
    *error = where + "." + field + " must be a string";
    return false;
  }
  *out = it->get<std::string>();
  return true;
}

}  // namespace

std::string ClassifyEndpoint(std::string_view method, std::string_view path, std::string* allow) {
  allow->clear();
  auto pick = [&](std::string_view methods, std::string_view pattern) -> std::string {
    // `methods` is a comma-separated list; answer the endpoint or fill Allow.
    std::size_t start = 0;
    while (start < methods.size()) {
      std::size_t comma = methods.find(',', start);
      std::string_view m =
          methods.substr(start, comma == std::string_view::npos ? comma : comma - start);
      if (m == method) return std::string(m) + " " + std::string(pattern);
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    allow->clear();
    for (char c : methods) *allow += (c == ',') ? std::string(", ") : std::string(1, c);
    return "";
  };
  if (path == "/catalog") return pick("GET", "/catalog");
  if (path == "/projects") return pick("GET", "/projects");
  if (path == "/audit") return pick("GET", "/audit");
  if (path == "/users") return pick("GET,POST", "/users");
  if (path.starts_with("/users/")) {
    std::string_view id = path.substr(7);
    if (!id.empty() && id.find('/') == std::string_view::npos) {
      return pick("GET,PATCH,DELETE", "/users/{id}");
    }
  }
  return "";
}

ApiResponse ErrorResponse(int status, std::string_view code, std::string_view message) {
  ApiResponse r;
  r.status = status;
  Json body = {{"error", {{"code", code}, {"message", message}}}};
  r.body = SafeDump(body);
  return r;
}

std::string FormatTime(Clock::time_point t, bool with_millis) {
  std::int64_t ms = ToMillis(t);
  std::time_t secs = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out(buf, n);
  if (with_millis) {
    char frac[8];
    std::snprintf(frac, sizeof frac, ".%03d", static_cast<int>(((ms % 1000) + 1000) % 1000));
    out += frac;
  }
  out += 'Z';
  return out;
}

AccountState::AccountState(std::uint64_t random_seed)
    : catalog_(mapping::Catalog::Builtin()), rng_(random_seed) {}

AccountState::User* AccountState::FindUser(const std::string& id) {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &users_.at(it->second);
}

const AccountState::User* AccountState::FindUser(const std::string& id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &users_.at(it->second);
}

std::string AccountState::NewUserId() {
  static constexpr char kHex[] = "0123456789abcdef";
  while (true) {
    std::uint64_t r = rng_();
    std::string id = "u_";
    for (int i = 0; i < 16; ++i) id.push_back(kHex[(r >> (4 * i)) & 15]);
    if (!by_id_.contains(id)) return id;
  }
}

Json AccountState::UserJson(const User& u) const {
  Json permissions = Json::object();
  for (const auto& [key, level] : u.permissions) permissions[key] = level;
  return Json{{"id", u.id},
              {"email", u.email},
              {"name", u.name},
              {"role", u.role},
              {"status", u.status},
              {"permissions", std::move(permissions)},
              {"projects", u.projects},
              {"created_at", u.created_at},
              {"updated_at", u.updated_at}};
}

namespace {

// The account keeps only text it accepted as JSON, so it is valid UTF-8 and
// goes out as it is, escaped as dump() escapes it.
void AppendMember(std::string_view key, std::string_view value, std::string* out) {
  base::AppendJsonString(key, out);
  out->push_back(':');
  base::AppendJsonString(value, out);
}

}  // namespace

void AccountState::AppendUserText(const User& u, std::string* out) {
  out->push_back('{');
  AppendMember("id", u.id, out);
  out->push_back(',');
  AppendMember("email", u.email, out);
  out->push_back(',');
  AppendMember("name", u.name, out);
  out->push_back(',');
  AppendMember("role", u.role, out);
  out->push_back(',');
  AppendMember("status", u.status, out);
  out->append(",\"permissions\":{");
  bool first = true;
  for (const auto& [key, level] : u.permissions) {
    if (!first) out->push_back(',');
    first = false;
    AppendMember(key, level, out);
  }
  out->append("},\"projects\":[");
  first = true;
  for (const std::string& project : u.projects) {
    if (!first) out->push_back(',');
    first = false;
    base::AppendJsonString(project, out);
  }
  out->append("],");
  AppendMember("created_at", u.created_at, out);
  out->push_back(',');
  AppendMember("updated_at", u.updated_at, out);
  out->push_back('}');
}

Json AccountState::CatalogJson() const {
  Json areas = Json::array();
  for (const mapping::CatalogArea& area : catalog_.areas()) {
    Json items = Json::array();
    for (const mapping::CatalogItem& item : area.items) {
      items.push_back({{"key", item.key}, {"label", item.label}});
    }
    areas.push_back({{"key", area.key}, {"label", area.label}, {"items", std::move(items)}});
  }
  return Json{{"levels", {"none", "read", "edit"}}, {"areas", std::move(areas)}};
}

Json AccountState::StateDocument() const {
  Json users = Json::array();
  for (const auto& [seq, user] : users_) users.push_back(UserJson(user));
  Json projects = Json::array();
  for (const Project& p : projects_) projects.push_back({{"id", p.id}, {"name", p.name}});
  return Json{
      {"users", std::move(users)}, {"projects", std::move(projects)}, {"catalog", CatalogJson()}};
}

std::string AccountState::PersistJson() const {
  Json doc = StateDocument();
  doc["audit"] = audit_;
  Json keys = Json::array();
  for (const auto& [at_ms, key] : idempotency_order_) {
    auto it = idempotency_.find(key);
    if (it == idempotency_.end() || it->second.at_ms != at_ms) continue;
    const IdempotencyEntry& e = it->second;
    keys.push_back({{"key", key},
                    {"method", e.method},
                    {"path", e.path},
                    {"body", e.body},
                    {"status", e.response.status},
                    {"response", e.response.body},
                    {"location", e.response.location},
                    {"user_id", e.user_id},
                    {"at_ms", e.at_ms}});
  }
  doc["idempotency"] = std::move(keys);
  return doc.dump(1);
}

bool AccountState::ParsePermissions(const Json& value, bool strict_keys,
                                    std::map<std::string, std::string>* out,
                                    std::string* error) const {
  out->clear();
  if (!value.is_object()) {
    *error = "permissions must be an object, not " + TypeName(value);
    return false;
  }
  for (const auto& [key, level] : value.items()) {
    if (strict_keys && !catalog_.Resolve(key).has_value()) {
      *error = "unknown permission key " + Quote(key) + " (not in the catalog)";
      return false;
    }
    if (!level.is_string()) {
      *error = "permissions[" + Quote(key) + "] must be a string level, not " + TypeName(level);
      return false;
    }
    std::string text = level.get<std::string>();
    if (!mapping::ParseLevel(text).has_value()) {
      *error =
          "permissions[" + Quote(key) + "]: unknown level " + Quote(text) + " (none, read or edit)";
      return false;
    }
    (*out)[key] = text;
  }
  return true;
}

bool AccountState::ParseProjects(const Json& value, std::vector<std::string>* out,
                                 std::string* error) const {
  out->clear();
  if (!value.is_array()) {
    *error = "projects must be an array, not " + TypeName(value);
    return false;
  }
  std::set<std::string> seen;
  for (const Json& p : value) {
    if (!p.is_string()) {
      *error = "projects must hold project id strings, not " + TypeName(p);
      return false;
    }
    std::string id = p.get<std::string>();
    bool known = std::any_of(projects_.begin(), projects_.end(),
                             [&](const Project& project) { return project.id == id; });
    if (!known) {
      *error = "unknown project id " + Quote(id);
      return false;
    }
    if (!seen.insert(id).second) {
      *error = "project id " + Quote(id) + " is repeated";
      return false;
    }
    out->push_back(id);
  }
  return true;
}

void AccountState::Audit(Clock::time_point now, const User& user, std::string_view action,
                         Json before, Json after) {
  audit_.push_back(Json{{"seq", next_audit_seq_++},
                        {"at", FormatTime(now)},
                        {"user_id", user.id},
                        {"email", user.email},
                        {"action", action},
                        {"before", std::move(before)},
                        {"after", std::move(after)}});
}

void AccountState::PruneIdempotency(std::int64_t now_ms) {
  while (!idempotency_order_.empty() &&
         now_ms - idempotency_order_.front().first >= kIdempotencyTtlMs) {
    auto it = idempotency_.find(idempotency_order_.front().second);
    // A key re-used after expiry has a newer entry; only the stale one goes.
    if (it != idempotency_.end() && it->second.at_ms == idempotency_order_.front().first) {
      idempotency_.erase(it);
    }
    idempotency_order_.pop_front();
  }
}

ApiOutcome AccountState::Handle(const ApiRequest& request, Clock::time_point now) {
  std::string allow;
  std::string endpoint = ClassifyEndpoint(request.method, request.path, &allow);
  if (endpoint.empty()) {
    if (!allow.empty()) {
      ApiOutcome out =
          Error(405, "method_not_allowed", request.method + " is not allowed on " + request.path);
      out.response.allow = allow;
      return out;
    }
    return Error(404, "not_found", "no such endpoint: " + request.path);
  }
  bool keyed = IsWrite(request.method) && !request.idempotency_key.empty();
  if (!keyed) return Dispatch(endpoint, request, now);

  if (!ValidIdempotencyKey(request.idempotency_key)) {
    return Invalid("Idempotency-Key must be 1 to 255 printable ASCII characters");
  }
  std::int64_t now_ms = ToMillis(now);
  PruneIdempotency(now_ms);
  std::string body = CanonicalBody(request.body);
  auto it = idempotency_.find(request.idempotency_key);
  if (it != idempotency_.end()) {
    const IdempotencyEntry& e = it->second;
    if (e.method != request.method || e.path != request.path || e.body != body) {
      return Error(422, "idempotency_mismatch",
                   "Idempotency-Key " + Quote(request.idempotency_key) +
                       " was first used for a different request (" + e.method + " " + e.path + ")");
    }
    ApiOutcome out;
    out.response = e.response;
    out.replay = true;
    out.user_id = e.user_id;
    return out;
  }
  ApiOutcome out = Dispatch(endpoint, request, now);
  IdempotencyEntry entry{request.method, request.path, body, out.response, out.user_id, now_ms};
  idempotency_[request.idempotency_key] = std::move(entry);
  idempotency_order_.emplace_back(now_ms, request.idempotency_key);
  return out;
}

ApiOutcome AccountState::Dispatch(const std::string& endpoint, const ApiRequest& request,
                                  Clock::time_point now) {
  std::string id;
  if (endpoint.ends_with("{id}") && !PercentDecode(request.path.substr(7), false, &id)) {
    return Invalid("malformed user id in the path");
  }
  if (endpoint == "GET /catalog") return GetCatalog(request);
  if (endpoint == "GET /projects") return GetProjects(request);
  if (endpoint == "GET /users") return ListUsers(request);
  if (endpoint == "GET /audit") return GetAudit(request);
  // The remaining endpoints take no query parameters.
  if (!request.query.empty()) {
    return Invalid("unknown query parameter in " + Quote(request.query));
  }
  if (endpoint == "GET /users/{id}") return GetUser(id);
  if (endpoint == "POST /users") return CreateUser(request, now);
  if (endpoint == "PATCH /users/{id}") return PatchUser(id, request, now);
  return DeleteUser(id, now);
}

ApiOutcome AccountState::GetCatalog(const ApiRequest& request) const {
  std::map<std::string, std::string> params;
  std::string error;
  if (!ParseQuery(request.query, {}, &params, &error)) return Invalid(error);
  return Answer(200, CatalogJson());
}

ApiOutcome AccountState::GetProjects(const ApiRequest& request) const {
  std::map<std::string, std::string> params;
  std::string error;
  if (!ParseQuery(request.query, {}, &params, &error)) return Invalid(error);
  Json projects = Json::array();
  for (const Project& p : projects_) projects.push_back({{"id", p.id}, {"name", p.name}});
  return Answer(200, Json{{"projects", std::move(projects)}});
}

ApiOutcome AccountState::ListUsers(const ApiRequest& request) const {
  std::map<std::string, std::string> params;
  std::string error;
  if (!ParseQuery(request.query, {"limit", "cursor"}, &params, &error)) return Invalid(error);
  std::uint64_t limit = kDefaultLimit;
  if (auto it = params.find("limit"); it != params.end()) {
    if (!ParseUint(it->second, &limit) || limit < 1 || limit > kMaxLimit) {
      return Invalid("limit must be an integer from 1 to 1000, not " + Quote(it->second));
    }
  }
  std::uint64_t after = 0;
  if (auto it = params.find("cursor"); it != params.end()) {
    if (!DecodeCursor(it->second, &after)) return Invalid("invalid cursor " + Quote(it->second));
  }
  ApiOutcome out;
  std::string& body = out.response.body;
  body.reserve(std::min<std::uint64_t>(limit, users_.size()) * 600 + 64);
  body.append("{\"users\":[");
  auto it = users_.upper_bound(after);
  std::uint64_t last = after;
  for (std::uint64_t n = 0; it != users_.end() && n < limit; ++it, ++n) {
    if (n > 0) body.push_back(',');
    AppendUserText(it->second, &body);
    last = it->first;
  }
  body.append("],\"next_cursor\":");
  if (it == users_.end()) {
    body.append("null");
  } else {
    base::AppendJsonString(EncodeCursor(last), &body);
  }
  body.push_back('}');
  out.response.status = 200;
  return out;
}

ApiOutcome AccountState::GetUser(const std::string& id) const {
  const User* user = FindUser(id);
  if (user == nullptr) return Error(404, "not_found", "no user with id " + Quote(id));
  ApiOutcome out = Answer(200, UserJson(*user));
  out.user_id = id;
  return out;
}

ApiOutcome AccountState::CreateUser(const ApiRequest& request, Clock::time_point now) {
  Json body;
  if (auto bad = ParseBody(request, &body)) return *bad;
  static const std::set<std::string, std::less<>> kFields = {"email", "name", "role", "permissions",
                                                             "projects"};
  for (const auto& [key, value] : body.items()) {
    if (!kFields.contains(key)) return Invalid("unknown field " + Quote(key));
  }
  User user;
  auto email = body.find("email");
  if (email == body.end()) return Invalid("email is required");
  if (!email->is_string()) return Invalid("email must be a string, not " + TypeName(*email));
  user.email = email->get<std::string>();
  if (!LooksLikeEmail(user.email)) return Invalid("bad e-mail address " + Quote(user.email));
  if (auto name = body.find("name"); name != body.end()) {
    if (!name->is_string()) return Invalid("name must be a string, not " + TypeName(*name));
    user.name = name->get<std::string>();
    if (user.name.size() > kMaxNameBytes) return Invalid("name is longer than 256 bytes");
  }
  user.role = "member";
  if (auto role = body.find("role"); role != body.end()) {
    if (!role->is_string()) return Invalid("role must be a string, not " + TypeName(*role));
    user.role = role->get<std::string>();
    if (!ValidRole(user.role)) return Invalid("unknown role " + Quote(user.role));
  }
  std::string error;
  if (auto p = body.find("permissions"); p != body.end()) {
    if (!ParsePermissions(*p, true, &user.permissions, &error)) return Invalid(error);
  }
  if (auto p = body.find("projects"); p != body.end()) {
    if (!ParseProjects(*p, &user.projects, &error)) return Invalid(error);
  }
  std::string lower = Lower(user.email);
  if (auto existing = by_email_.find(lower); existing != by_email_.end()) {
    ApiOutcome out;
    Json err = {{"error",
                 {{"code", "user_exists"},
                  {"message", "a user with e-mail " + Quote(user.email) + " exists"},
                  {"user_id", existing->second}}}};
    out.response.status = 409;
    out.response.body = err.dump();
    out.user_id = existing->second;
    return out;
  }
  user.seq = next_user_seq_++;
  user.id = NewUserId();
  user.status = "invited";
  user.created_at = user.updated_at = FormatTime(now);
  Json after = UserJson(user);
  Audit(now, user, "invite", nullptr, after);
  by_id_[user.id] = user.seq;
  by_email_[lower] = user.id;
  ApiOutcome out = Answer(201, after);
  out.response.location = "/users/" + user.id;
  out.applied = true;
  out.user_id = user.id;
  out.email = user.email;
  users_.emplace(user.seq, std::move(user));
  return out;
}

ApiOutcome AccountState::PatchUser(const std::string& id, const ApiRequest& request,
                                   Clock::time_point now) {
  User* user = FindUser(id);
  if (user == nullptr) return Error(404, "not_found", "no user with id " + Quote(id));
  Json body;
  if (auto bad = ParseBody(request, &body)) return *bad;
  static const std::set<std::string, std::less<>> kFields = {"name", "role", "permissions",
                                                             "projects"};
  for (const auto& [key, value] : body.items()) {
    if (!kFields.contains(key)) {
      return Invalid("unknown or read-only field " + Quote(key) +
                     " (PATCH takes name, role, permissions, projects)");
    }
  }
  User updated = *user;
  if (auto name = body.find("name"); name != body.end()) {
    if (!name->is_string()) return Invalid("name must be a string, not " + TypeName(*name));
    updated.name = name->get<std::string>();
    if (updated.name.size() > kMaxNameBytes) return Invalid("name is longer than 256 bytes");
  }
  if (auto role = body.find("role"); role != body.end()) {
    if (!role->is_string()) return Invalid("role must be a string, not " + TypeName(*role));
    updated.role = role->get<std::string>();
    if (!ValidRole(updated.role)) return Invalid("unknown role " + Quote(updated.role));
  }
  std::string error;
  if (auto p = body.find("permissions"); p != body.end()) {
    if (!ParsePermissions(*p, true, &updated.permissions, &error)) return Invalid(error);
  }
  if (auto p = body.find("projects"); p != body.end()) {
    if (!ParseProjects(*p, &updated.projects, &error)) return Invalid(error);
  }
  ApiOutcome out;
  out.user_id = id;
  out.email = user->email;
  bool changed = updated.name != user->name || updated.role != user->role ||
                 updated.permissions != user->permissions || updated.projects != user->projects;
  if (changed) {
    Json before = UserJson(*user);
    updated.updated_at = FormatTime(now);
    *user = std::move(updated);
    Audit(now, *user, "update", std::move(before), UserJson(*user));
    out.applied = true;
  }
  out.response.status = 200;
  out.response.body = UserJson(*user).dump();
  return out;
}

ApiOutcome AccountState::DeleteUser(const std::string& id, Clock::time_point now) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return Error(404, "not_found", "no user with id " + Quote(id));
  auto user_it = users_.find(it->second);
  std::string email = user_it->second.email;
  Audit(now, user_it->second, "delete", UserJson(user_it->second), nullptr);
  by_email_.erase(Lower(user_it->second.email));
  users_.erase(user_it);
  by_id_.erase(it);
  ApiOutcome out;
  out.response.status = 204;
  out.applied = true;
  out.user_id = id;
  out.email = std::move(email);
  return out;
}

ApiOutcome AccountState::GetAudit(const ApiRequest& request) const {
  std::map<std::string, std::string> params;
  std::string error;
  if (!ParseQuery(request.query, {"after", "limit"}, &params, &error)) return Invalid(error);
  std::uint64_t after = 0;
  if (auto it = params.find("after"); it != params.end() && !ParseUint(it->second, &after)) {
    return Invalid("after must be a non-negative integer, not " + Quote(it->second));
  }
  std::uint64_t limit = audit_.size();
  if (auto it = params.find("limit"); it != params.end()) {
    if (!ParseUint(it->second, &limit) || limit < 1) {
      return Invalid("limit must be a positive integer, not " + Quote(it->second));
    }
  }
  Json events = Json::array();
  // Events are in seq order, so the first one past `after` is found by bisection.
  auto first = std::partition_point(audit_.begin(), audit_.end(), [&](const Json& e) {
    return e["seq"].get<std::uint64_t>() <= after;
  });
  for (auto it = first; it != audit_.end() && events.size() < limit; ++it) events.push_back(*it);
  return Answer(200, Json{{"events", std::move(events)}});
}

Result<std::string> AccountState::Accept(const std::string& id, Clock::time_point now,
                                         bool* changed) {
  *changed = false;
  User* user = FindUser(id);
  if (user == nullptr) return NotFoundError("no user with id " + Quote(id));
  if (user->status != "active") {
    Json before = UserJson(*user);
    user->status = "active";
    user->updated_at = FormatTime(now);
    Audit(now, *user, "accept", std::move(before), UserJson(*user));
    *changed = true;
  }
  return UserJson(*user).dump();
}

Status AccountState::Load(std::string_view json, Clock::time_point now) {
  Json doc = Json::parse(json, nullptr, false);
  if (doc.is_discarded()) return InvalidArgumentError("state: not well-formed JSON");
  if (!doc.is_object()) return InvalidArgumentError("state: the document must be a JSON object");

  AccountState fresh(0);
  fresh.rng_ = rng_;  // generated ids continue this account's random sequence
  std::string error;
  try {
    // Catalog: the built-in one unless the document gives one.
    if (auto c = doc.find("catalog"); c != doc.end() && !c->is_null()) {
      if (!c->is_object() || !c->contains("areas") || !(*c)["areas"].is_array()) {
        return InvalidArgumentError("state: catalog must be an object with an \"areas\" array");
      }
      if (auto levels = c->find("levels"); levels != c->end()) {
        if (!levels->is_array())
          return InvalidArgumentError("state: catalog.levels must be an array");
        for (const Json& l : *levels) {
          if (!l.is_string() || !mapping::ParseLevel(l.get<std::string>())) {
            return InvalidArgumentError("state: catalog.levels holds an unknown level " + l.dump());
          }
        }
      }
      std::vector<mapping::CatalogArea> areas;
      for (const Json& a : (*c)["areas"]) {
        if (!a.is_object()) return InvalidArgumentError("state: catalog areas must be objects");
        mapping::CatalogArea area;
        if (!SeedString(a, "key", "", &area.key, &error, "catalog.areas[]") ||
            !SeedString(a, "label", area.key, &area.label, &error, "catalog.areas[]")) {
          return InvalidArgumentError("state: " + error);
        }
        if (auto items = a.find("items"); items != a.end()) {
          if (!items->is_array()) {
            return InvalidArgumentError("state: catalog area " + Quote(area.key) +
                                        ": items must be an array");
          }
          for (const Json& i : *items) {
            if (!i.is_object()) return InvalidArgumentError("state: catalog items must be objects");
            mapping::CatalogItem item;
            if (!SeedString(i, "key", "", &item.key, &error, "catalog item") ||
                !SeedString(i, "label", item.key, &item.label, &error, "catalog item")) {
              return InvalidArgumentError("state: " + error);
            }
            area.items.push_back(std::move(item));
          }
        }
        areas.push_back(std::move(area));
      }
      Result<mapping::Catalog> catalog = mapping::Catalog::Create(std::move(areas));
      if (!catalog.ok()) return InvalidArgumentError("state: " + catalog.status().message());
      fresh.catalog_ = std::move(catalog).value();
    }

    // Projects: as given; without them, the ids users name (names = ids).
    bool projects_given = false;
    if (auto p = doc.find("projects"); p != doc.end() && !p->is_null()) {
      if (!p->is_array()) return InvalidArgumentError("state: projects must be an array");
      projects_given = true;
      std::set<std::string> ids;
      for (const Json& pj : *p) {
        if (!pj.is_object()) return InvalidArgumentError("state: projects must hold objects");
        Project project;
        if (!SeedString(pj, "id", "", &project.id, &error, "projects[]") ||
            !SeedString(pj, "name", project.id, &project.name, &error, "projects[]")) {
          return InvalidArgumentError("state: " + error);
        }
        if (project.id.empty()) return InvalidArgumentError("state: a project has no id");
        if (!ids.insert(project.id).second) {
          return InvalidArgumentError("state: project id " + Quote(project.id) + " is repeated");
        }
        fresh.projects_.push_back(std::move(project));
      }
    }

    std::string stamp = FormatTime(now);
    if (auto u = doc.find("users"); u != doc.end() && !u->is_null()) {
      if (!u->is_array()) return InvalidArgumentError("state: users must be an array");
      std::size_t index = 0;
      for (const Json& uj : *u) {
        std::string where = "users[" + std::to_string(index++) + "]";
        if (!uj.is_object()) return InvalidArgumentError("state: " + where + " must be an object");
        User user;
        if (!SeedString(uj, "email", "", &user.email, &error, where) ||
            !SeedString(uj, "id", "", &user.id, &error, where) ||
            !SeedString(uj, "name", "", &user.name, &error, where) ||
            !SeedString(uj, "role", "member", &user.role, &error, where) ||
            !SeedString(uj, "status", "active", &user.status, &error, where) ||
            !SeedString(uj, "created_at", stamp, &user.created_at, &error, where) ||
            !SeedString(uj, "updated_at", user.created_at, &user.updated_at, &error, where)) {
          return InvalidArgumentError("state: " + error);
        }
        if (!LooksLikeEmail(user.email)) {
          return InvalidArgumentError("state: " + where + ": bad e-mail address " +
                                      Quote(user.email));
        }
        if (!ValidRole(user.role)) {
          return InvalidArgumentError("state: " + where + ": unknown role " + Quote(user.role));
        }
        if (user.status != "invited" && user.status != "active") {
          return InvalidArgumentError("state: " + where + ": unknown status " + Quote(user.status));
        }
        // Stored permission keys may predate a catalog change, so only
        // their levels are checked.
        if (auto p = uj.find("permissions"); p != uj.end() && !p->is_null()) {
          if (!fresh.ParsePermissions(*p, false, &user.permissions, &error)) {
            return InvalidArgumentError("state: " + where + ": " + error);
          }
        }
        if (auto p = uj.find("projects"); p != uj.end() && !p->is_null()) {
          if (!projects_given && p->is_array()) {
            for (const Json& ref : *p) {
              if (!ref.is_string()) continue;
              std::string pid = ref.get<std::string>();
              bool known = std::any_of(fresh.projects_.begin(), fresh.projects_.end(),
                                       [&](const Project& pr) { return pr.id == pid; });
              if (!known) fresh.projects_.push_back({pid, pid});
            }
          }
          if (!fresh.ParseProjects(*p, &user.projects, &error)) {
            return InvalidArgumentError("state: " + where + ": " + error);
          }
        }
        if (user.id.empty()) user.id = fresh.NewUserId();
        if (fresh.by_id_.contains(user.id)) {
          return InvalidArgumentError("state: " + where + ": user id " + Quote(user.id) +
                                      " is repeated");
        }
        std::string lower = Lower(user.email);
        if (fresh.by_email_.contains(lower)) {
          return InvalidArgumentError("state: " + where + ": e-mail " + Quote(user.email) +
                                      " is repeated");
        }
        user.seq = fresh.next_user_seq_++;
        fresh.by_id_[user.id] = user.seq;
        fresh.by_email_[lower] = user.id;
        fresh.users_.emplace(user.seq, std::move(user));
      }
    }

    // What PersistJson adds: the audit trail and idempotency keys.
    if (auto a = doc.find("audit"); a != doc.end() && a->is_array()) {
      for (const Json& e : *a) {
        if (!e.is_object() || !e.contains("seq") || !e["seq"].is_number_unsigned()) {
          return InvalidArgumentError("state: audit events need an unsigned \"seq\"");
        }
        std::uint64_t seq = e["seq"].get<std::uint64_t>();
        if (seq < fresh.next_audit_seq_) {
          return InvalidArgumentError("state: audit events are out of order");
        }
        fresh.next_audit_seq_ = seq + 1;
        fresh.audit_.push_back(e);
      }
    }
    if (auto k = doc.find("idempotency"); k != doc.end() && k->is_array()) {
      for (const Json& e : *k) {
        IdempotencyEntry entry;
        std::string key = e.at("key").get<std::string>();
        entry.method = e.at("method").get<std::string>();
        entry.path = e.at("path").get<std::string>();
        entry.body = e.at("body").get<std::string>();
        entry.response.status = e.at("status").get<int>();
        entry.response.body = e.at("response").get<std::string>();
        entry.response.location = e.value("location", "");
        entry.user_id = e.value("user_id", "");
        entry.at_ms = e.at("at_ms").get<std::int64_t>();
        fresh.idempotency_order_.emplace_back(entry.at_ms, key);
        fresh.idempotency_[key] = std::move(entry);
      }
    }
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgumentError(std::string("state: ") + e.what());
  }
  *this = std::move(fresh);
  return Status::Ok();
}

}  // namespace idsync::emulator
