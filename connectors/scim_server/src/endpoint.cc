// The SCIM listener's transport side. Tokens are matched by hashing the
// presented token once and comparing that digest with every configured one
// (all of them, each in constant time) so that neither timing nor the order
// of sources tells anything about a near miss.
#include "idsync/scim/endpoint.h"

#include <array>
#include <cctype>
#include <chrono>
#include <exception>
#include <optional>

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "idsync/scim/route.h"

namespace idsync::scim {
namespace {

constexpr std::string_view kErrorSchema = "urn:ietf:params:scim:api:messages:2.0:Error";
constexpr std::string_view kScimJson = "application/scim+json";
constexpr std::string_view kHashPrefix = "sha256:";

using Digest = std::array<unsigned char, 32>;

Digest Sha256(std::string_view data) {
  // Fetched once: OpenSSL 3 looks the algorithm up again on every call
  // otherwise, which costs more than hashing a token.
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  Digest out{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len,
             kSha256 != nullptr ? kSha256 : EVP_sha256(), nullptr);
  return out;
}

std::string Hex(const unsigned char* data, std::size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(kHex[data[i] >> 4]);
    out.push_back(kHex[data[i] & 0xf]);
  }
  return out;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// "sha256:<64 hex>" to its 32 bytes; nullopt for anything else.
std::optional<Digest> ParseHash(std::string_view text) {
  if (text.size() != kHashPrefix.size() + 64) return std::nullopt;
  for (std::size_t i = 0; i < kHashPrefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) != kHashPrefix[i]) return std::nullopt;
  }
  text.remove_prefix(kHashPrefix.size());
  Digest d{};
  for (std::size_t i = 0; i < 32; ++i) {
    const int hi = HexDigit(text[2 * i]);
    const int lo = HexDigit(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    d[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return d;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

httpd::Response ScimError(int status, std::string_view detail, std::string_view scim_type = {}) {
  nlohmann::json body = {{"schemas", {kErrorSchema}},
                         {"status", std::to_string(status)},
                         {"detail", std::string(detail)}};
  if (!scim_type.empty()) body["scimType"] = std::string(scim_type);
  httpd::Response r;
  r.status = status;
  r.content_type = std::string(kScimJson);
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

// Whether `content_type`'s media type is one SCIM bodies may come in.
bool AcceptedMediaType(std::string_view content_type) {
  const std::size_t semi = content_type.find(';');
  const std::string media = Lower(Trim(content_type.substr(0, semi)));
  return media == "application/scim+json" || media == "application/json";
}

// The deepest nesting of objects and arrays in `body`, read without parsing
// (strings skipped); stops counting past `limit`.
int JsonDepth(std::string_view body, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (const char c : body) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > deepest) deepest = depth;
      if (deepest > limit) return deepest;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return deepest;
}

// A Host header value safe to echo in meta.location, or "" when it is not.
bool PlausibleHost(std::string_view host) {
  if (host.empty() || host.size() > 255) return false;
  for (const char c : host) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' ||
          c == '[' || c == ']' || c == '_')) {
      return false;
    }
  }
  return true;
}

}  // namespace

TokenPair NewTokenPair() {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof(raw)) != 1) {
    // The system's random source failing is not something to limp on from.
    std::terminate();
  }
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string token;
  std::uint32_t acc = 0;
  int bits = 0;
  for (const unsigned char byte : raw) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      token.push_back(kAlphabet[(acc >> bits) & 0x3f]);
    }
  }
  if (bits > 0) token.push_back(kAlphabet[(acc << (6 - bits)) & 0x3f]);
  OPENSSL_cleanse(raw, sizeof(raw));
  TokenPair pair;
  pair.hash = HashToken(token);
  pair.token = std::move(token);
  return pair;
}

std::string HashToken(std::string_view token) {
  const Digest d = Sha256(token);
  return std::string(kHashPrefix) + Hex(d.data(), d.size());
}

ScimEndpoint::ScimEndpoint(EndpointOptions options, ScimService& service)
    : options_(std::move(options)), service_(service) {
  while (options_.scim_path.size() > 1 && options_.scim_path.back() == '/') {
    options_.scim_path.pop_back();
  }
  if (options_.scim_path == "/") options_.scim_path.clear();
  for (std::size_t i = 0; i < options_.sources.size(); ++i) {
    for (const std::string& hash : options_.sources[i].hashes) {
      // Malformed hashes are refused by config validation; here they just match nothing.
      if (std::optional<Digest> d = ParseHash(hash)) tokens_.push_back({*d, i});
    }
  }
}

const std::string* ScimEndpoint::SourceFor(std::string_view token) const {
  const Digest presented = Sha256(token);
  std::size_t found = options_.sources.size();
  for (const TokenDigest& e : tokens_) {
    // Every entry is compared; none ends the loop early.
    const bool match = CRYPTO_memcmp(presented.data(), e.digest.data(), presented.size()) == 0;
    if (match && found == options_.sources.size()) found = e.source;
  }
  return found == options_.sources.size() ? nullptr : &options_.sources[found].source;
}

httpd::Response ScimEndpoint::Handle(const httpd::Request& request) {
  const auto start = std::chrono::steady_clock::now();
  httpd::Response response = Dispatch(request);
  if (options_.observer) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    options_.observer(request.method, response.status, seconds);
  }
  return response;
}

bool ScimEndpoint::UnderBase(std::string_view path, std::string_view* rest) const {
  const std::string& base = options_.scim_path;
  if (path.compare(0, base.size(), base) != 0 ||
      (path.size() > base.size() && path[base.size()] != '/')) {
    return false;
  }
  *rest = path.substr(base.size());
  return true;
}

std::variant<const std::string*, httpd::Response> ScimEndpoint::Authenticate(
    const httpd::Request& request) const {
  // Screened on its head by this endpoint's Screen (or another's, before a
  // reload: then the source must still be one of ours).
  if (!request.screened.empty()) {
    for (const SourceTokens& s : options_.sources) {
      if (s.source == request.screened) return &s.source;
    }
  }
  const std::string_view auth = Trim(request.Header("Authorization"));
  if (auth.empty()) {
    httpd::Response r = ScimError(401, "a bearer token is required");
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"idsync\"");
    return r;
  }
  const std::size_t space = auth.find(' ');
  const std::string_view token = space == std::string_view::npos ? "" : Trim(auth.substr(space));
  const std::string* source = nullptr;
  if (space != std::string_view::npos && Lower(auth.substr(0, space)) == "bearer" &&
      !token.empty()) {
    source = SourceFor(token);
  }
  if (source == nullptr) {
    httpd::Response r = ScimError(401, "the bearer token is not valid");
    r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"idsync\", error=\"invalid_token\"");
    return r;
  }
  return source;
}

std::optional<httpd::Response> ScimEndpoint::Screen(httpd::Request* head) const {
  std::string_view rest;
  if (!UnderBase(head->path, &rest)) return std::nullopt;
  std::variant<const std::string*, httpd::Response> who = Authenticate(*head);
  auto* refused = std::get_if<httpd::Response>(&who);
  if (refused == nullptr) {
    head->screened = *std::get<const std::string*>(who);
    return std::nullopt;
  }
  // The answer closes the connection: the body was never read.
  refused->headers.emplace_back("Connection", "close");
  if (options_.observer) options_.observer(head->method, refused->status, 0.0);
  return std::move(*refused);
}

httpd::Response ScimEndpoint::Dispatch(const httpd::Request& request) {
  if (request.path == "/healthz") {
    if (request.method != "GET" && request.method != "HEAD") {
      httpd::Response r = ScimError(405, "only GET is allowed here");
      r.headers.emplace_back("Allow", "GET, HEAD");
      return r;
    }
    httpd::Response r;
    r.content_type = "application/json";
    r.body = "{\"status\":\"ok\"}";
    return r;
  }
  const std::string& base = options_.scim_path;
  std::string_view rest;
  if (!UnderBase(request.path, &rest)) return ScimError(404, "no such endpoint");
  std::variant<const std::string*, httpd::Response> who = Authenticate(request);
  if (auto* refused = std::get_if<httpd::Response>(&who)) return std::move(*refused);
  const std::string* source = std::get<const std::string*>(who);

  const std::string_view content_type = request.Header("Content-Type");
  if (!request.body.empty() && !AcceptedMediaType(content_type)) {
    return ScimError(415, "a request body must be application/scim+json or application/json");
  }
  if (!request.body.empty() &&
      JsonDepth(request.body, options_.max_json_depth) > options_.max_json_depth) {
    return ScimError(
        400,
        "the request body nests deeper than " + std::to_string(options_.max_json_depth) + " levels",
        "invalidSyntax");
  }

  // Routed here only for the path and the Allow header: the service
  // dispatches on the same route.
  const ScimRoute route = RouteScimRequest(request.method, rest);
  ScimRequest scim;
  scim.source = *source;
  scim.method = request.method;
  scim.path = route.path;
  scim.query = request.query;
  scim.content_type = std::string(content_type);
  scim.if_match = std::string(request.Header("If-Match"));
  scim.body = request.body;
  if (!options_.public_base_url.empty()) {
    std::string url = options_.public_base_url;
    while (!url.empty() && url.back() == '/') url.pop_back();
    scim.base_url = url + base;
  } else {
    const std::string_view host = request.Header("Host");
    scim.base_url = std::string(request.tls ? "https://" : "http://") +
                    (PlausibleHost(host) ? std::string(host) : std::string("localhost")) + base;
  }

  ScimResponse answer;
  try {
    answer = service_.Handle(scim);
  } catch (const std::exception&) {
    return ScimError(500, "internal error");
  }
  httpd::Response r;
  r.status = answer.status;
  r.content_type = std::string(kScimJson);
  r.body = std::move(answer.body);
  if (!answer.etag.empty()) r.headers.emplace_back("ETag", answer.etag);
  if (!answer.location.empty()) r.headers.emplace_back("Location", answer.location);
  if (r.status == 405 && !route.allow.empty()) r.headers.emplace_back("Allow", route.allow);
  // The store is away or the resource is being changed elsewhere: nothing
  // was changed, and identity providers honour Retry-After.
  if (r.status == 503) r.headers.emplace_back("Retry-After", "5");
  return r;
}

httpd::Response ScimErrorResponse(int status, const std::string& message) {
  return ScimError(status, message);
}

StoreResourcePersistence::StoreResourcePersistence(store::Store& store,
                                                   std::function<std::int64_t()> now_ms)
    : store_(store), now_ms_(std::move(now_ms)) {
  if (!now_ms_) {
    now_ms_ = [] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
}

store::ScimResourceRow StoreResourcePersistence::RowOf(const StoredResource& resource) const {
  store::ScimResourceRow row;
  row.source = resource.source;
  row.type = resource.type;
  row.id = resource.id;
  row.json = resource.json;
  row.version = resource.version;
  row.updated_ms = now_ms_();
  return row;
}

// The service writes version N over N - 1 (a new resource is version 1): a
// replica that wrote first makes this one refused, and read again.
Status StoreResourcePersistence::Put(const StoredResource& resource) {
  return store_.scim().PutIf(RowOf(resource), resource.version - 1);
}

Status StoreResourcePersistence::Delete(const std::string& source, const std::string& type,
                                        const std::string& id) {
  return store_.scim().Delete(source, type, id);
}

namespace {

class PendingStoreWrite final : public PendingPersist {
 public:
  explicit PendingStoreWrite(std::unique_ptr<store::PendingWrite> write)
      : write_(std::move(write)) {}
  Status Wait() override {
    Status landed;
    // A handler waiting for the commit lets another one compute meanwhile.
    httpd::WhileBlocked([&] { landed = write_->Wait(); });
    return landed;
  }

 private:
  std::unique_ptr<store::PendingWrite> write_;
};

Result<std::unique_ptr<PendingPersist>> Pending(
    Result<std::unique_ptr<store::PendingWrite>> staged) {
  if (!staged.ok()) return staged.status();
  return std::unique_ptr<PendingPersist>(
      std::make_unique<PendingStoreWrite>(std::move(staged).value()));
}

}  // namespace

Result<std::unique_ptr<PendingPersist>> StoreResourcePersistence::Stage(
    const StoredResource& resource) {
  return Pending(store_.scim().StagePutIf(RowOf(resource), resource.version - 1));
}

Result<std::unique_ptr<PendingPersist>> StoreResourcePersistence::StageDelete(
    const std::string& source, const std::string& type, const std::string& id) {
  return Pending(store_.scim().StageDelete(source, type, id));
}

Result<std::optional<StoredResource>> StoreResourcePersistence::Get(const std::string& source,
                                                                    const std::string& type,
                                                                    const std::string& id) {
  ASSIGN_OR_RETURN(std::optional<store::ScimResourceRow> row, store_.scim().Get(source, type, id));
  if (!row) return std::optional<StoredResource>();
  return std::optional<StoredResource>(StoredResource{std::move(row->source), std::move(row->type),
                                                      std::move(row->id), std::move(row->json),
                                                      row->version});
}

Result<std::vector<StoredResource>> StoreResourcePersistence::LoadAll(const std::string& source) {
  ASSIGN_OR_RETURN(std::vector<store::ScimResourceRow> rows, store_.scim().List(source));
  std::vector<StoredResource> out;
  out.reserve(rows.size());
  for (store::ScimResourceRow& row : rows) {
    out.push_back(StoredResource{std::move(row.source), std::move(row.type), std::move(row.id),
                                 std::move(row.json), row.version});
  }
  return out;
}

}  // namespace idsync::scim
