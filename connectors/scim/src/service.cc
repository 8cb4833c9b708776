// The SCIM service: routing, the in-memory resource tables of each source and
// their indexes, and the write path (validate, persist, publish, notify).
//
// Locking: each source has a writer mutex, held for a whole write (so writes
// to one source are serialized and see a stable state while they prepare),
// and a shared_mutex that readers hold shared and a writer holds exclusively
// only for the moment it publishes an already persisted change. Entries are
// never modified in place: a write builds a new Entry and swaps it in, so a
// reader holding the shared lock sees either the old or the new state.
#include "idsync/scim/service.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "idsync/mapping/affected.h"
#include "idsync/scim/errors.h"
#include "idsync/scim/filter.h"
#include "idsync/scim/json.h"
#include "idsync/scim/patch.h"
#include "idsync/scim/resource.h"

#include "datetime.h"
#include "discovery.h"
#include "identity.h"
#include "json_internal.h"
#include "json_util.h"
#include "projection.h"
#include "text.h"

namespace idsync::scim {
namespace {

using nlohmann::json;

constexpr std::string_view kListResponseSchema =
    "urn:ietf:params:scim:api:messages:2.0:ListResponse";
constexpr std::string_view kErrorSchema = "urn:ietf:params:scim:api:messages:2.0:Error";

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string_view TypeName(ResourceType type) {
  return type == ResourceType::kUser ? "User" : "Group";
}

std::string_view Endpoint(ResourceType type) {
  return type == ResourceType::kUser ? "/Users" : "/Groups";
}

std::string TrimBase(std::string_view base_url) {
  while (!base_url.empty() && base_url.back() == '/') base_url.remove_suffix(1);
  return std::string(base_url);
}

std::string Location(std::string_view base_url, ResourceType type, const std::string& id) {
  return TrimBase(base_url) + std::string(Endpoint(type)) + "/" + id;
}

std::string VersionTag(std::int64_t version) { return "W/\"" + std::to_string(version) + "\""; }

// ---------------------------------------------------------------------------
// Answers

ScimResponse ErrorResponse(int status, std::string_view scim_type, std::string_view detail) {
  json body = {{"schemas", json::array({kErrorSchema})},
               {"status", std::to_string(status)},
               {"detail", std::string(detail)}};
  if (!scim_type.empty()) body["scimType"] = std::string(scim_type);
  ScimResponse r;
  r.status = status;
  r.body = Dump(body);
  return r;
}

// A Status from the SCIM core or from this file as an answer.
ScimResponse StatusResponse(const Status& status) {
  const ScimType type = ScimTypeOf(status);
  if (type != ScimType::kNone) {
    return ErrorResponse(type == ScimType::kUniqueness ? 409 : 400, ScimTypeName(type),
                         ScimErrorDetail(status));
  }
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
      return ErrorResponse(400, "", status.message());
    case StatusCode::kNotFound:
      return ErrorResponse(404, "", status.message());
    case StatusCode::kAlreadyExists:
      return ErrorResponse(409, "uniqueness", status.message());
    case StatusCode::kFailedPrecondition:
      return ErrorResponse(412, "", status.message());
    default:
      return ErrorResponse(500, "", "internal error");
  }
}

// The persistence port failed: nothing changed. Its message is not passed
// on (it may name files or database details the IdP has no business with).
ScimResponse PersistenceFailure(const Status& status) {
  const bool transient = status.code() == StatusCode::kUnavailable ||
                         status.code() == StatusCode::kDeadlineExceeded ||
                         status.code() == StatusCode::kResourceExhausted;
  return ErrorResponse(transient ? 503 : 500, "",
                       "the change could not be stored, nothing was changed; try again later");
}

ScimResponse MethodNotAllowed(std::string_view method, std::string_view path,
                              std::string_view allow) {
  ScimResponse r = ErrorResponse(405, "",
                                 std::string(method) + " is not allowed on " + std::string(path) +
                                     "; use " + std::string(allow));
  r.allow = std::string(allow);
  return r;
}

// ---------------------------------------------------------------------------
// Resources in memory

struct Entry {
  std::string id;
  std::int64_t created_ms = 0;
  std::int64_t version = 0;
  Json body;                 // the whole resource as answered, meta included
  std::string key_lower;     // users: lower-cased userName; groups: lower-cased displayName
  std::string external_id;   // "" when none
  std::string email;         // users: the address the mapping uses, as stored ("" if none)
  std::string display_name;  // users: the name the mapping uses; groups: displayName
  bool disabled = false;     // users: active is false
  std::vector<std::string> member_ids;  // groups: members[].value
};

bool OrderBefore(const Entry* a, const Entry* b) {
  if (a->created_ms != b->created_ms) return a->created_ms < b->created_ms;
  return a->id < b->id;
}

const std::string* StringMember(const json& obj, std::string_view name) {
  const json* v = FindMember(obj, name);
  return v != nullptr && v->is_string() ? &v->get_ref<const std::string&>() : nullptr;
}

// config.md and the guides: displayName, else name.formatted, else
// name.givenName and name.familyName, else the userName.
std::string MappedName(const json& user) {
  if (const std::string* d = StringMember(user, "displayName"); d != nullptr && !d->empty()) {
    return *d;
  }
  if (const json* name = FindMember(user, "name"); name != nullptr && name->is_object()) {
    if (const std::string* f = StringMember(*name, "formatted"); f != nullptr && !f->empty()) {
      return *f;
    }
    std::string joined;
    for (std::string_view part : {"givenName", "familyName"}) {
      const std::string* p = StringMember(*name, part);
      if (p == nullptr || p->empty()) continue;
      if (!joined.empty()) joined += ' ';
      joined += *p;
    }
    if (!joined.empty()) return joined;
  }
  const std::string* user_name = StringMember(user, "userName");
  return user_name != nullptr ? *user_name : "";
}

// Fills the derived fields of `e` from its body.
void Derive(Entry& e, ResourceType type) {
  const json& b = JsonAccess::Get(e.body);
  const std::string* external_id = StringMember(b, "externalId");
  e.external_id = external_id != nullptr ? *external_id : "";
  if (type == ResourceType::kUser) {
    const std::string* user_name = StringMember(b, "userName");
    e.key_lower = user_name != nullptr ? AsciiLower(*user_name) : "";
    e.email = IdentityEmail(b);
    e.display_name = MappedName(b);
    const json* active = FindMember(b, "active");
    e.disabled = active != nullptr && active->is_boolean() && !active->get<bool>();
    return;
  }
  const std::string* display = StringMember(b, "displayName");
  e.display_name = display != nullptr ? *display : "";
  e.key_lower = AsciiLower(e.display_name);
  e.member_ids.clear();
  if (const json* members = FindMember(b, "members"); members != nullptr && members->is_array()) {
    for (const json& m : *members) {
      if (!m.is_object()) continue;
      if (const std::string* v = StringMember(m, "value"); v != nullptr && !v->empty()) {
        e.member_ids.push_back(*v);
      }
    }
  }
}

using Index = std::unordered_multimap<std::string, const Entry*>;

void IndexErase(Index& index, const std::string& key, const Entry* e) {
  auto [lo, hi] = index.equal_range(key);
  for (auto it = lo; it != hi; ++it) {
    if (it->second == e) {
      index.erase(it);
      return;
    }
  }
}

// Hashes std::string keys so that a std::string_view finds them too.
struct KeyHash {
  using is_transparent = void;
  size_t operator()(std::string_view key) const { return std::hash<std::string_view>()(key); }
};

// The resources of one type in one source.
struct Table {
  std::unordered_map<std::string, std::unique_ptr<Entry>, KeyHash, std::equal_to<>> by_id;
  std::vector<const Entry*> order;  // by (created_ms, id): the list order
  Index by_key;                     // lower-cased userName / displayName
  Index by_external_id;

  const Entry* Find(std::string_view id) const {
    auto it = by_id.find(id);
    return it == by_id.end() ? nullptr : it->second.get();
  }

  void Insert(std::unique_ptr<Entry> e) {
    const Entry* p = e.get();
    by_key.emplace(p->key_lower, p);
    if (!p->external_id.empty()) by_external_id.emplace(p->external_id, p);
    auto pos = std::upper_bound(order.begin(), order.end(), p, OrderBefore);
    order.insert(pos, p);
    by_id[p->id] = std::move(e);
  }

  // Removes and returns the entry with `id` (which must exist).
  std::unique_ptr<Entry> Remove(const std::string& id) {
    auto it = by_id.find(id);
    std::unique_ptr<Entry> e = std::move(it->second);
    by_id.erase(it);
    IndexErase(by_key, e->key_lower, e.get());
    if (!e->external_id.empty()) IndexErase(by_external_id, e->external_id, e.get());
    auto pos = std::lower_bound(order.begin(), order.end(), e.get(), OrderBefore);
    if (pos != order.end() && *pos == e.get()) order.erase(pos);
    return e;
  }
};

struct SourceState {
  std::string name;
  PatchOptions patch;            // the source's PATCH dialect
  std::mutex write_mu;           // serializes writers
  mutable std::shared_mutex mu;  // guards the tables (exclusive only to publish)
  Table users;
  Table groups;

  Table& Of(ResourceType t) { return t == ResourceType::kUser ? users : groups; }
  const Table& Of(ResourceType t) const { return t == ResourceType::kUser ? users : groups; }
};

// A source as a write found it or left it, for mapping::AffectedEmails: the
// tables as they are, except that the written resource (`type`, `id`) is
// `entry`, or absent when that is null. Needs the source's writer mutex.
class WriteView final : public mapping::MembershipView {
 public:
  WriteView(const SourceState& s, ResourceType type, std::string_view id, const Entry* entry)
      : s_(s), type_(type), id_(id), entry_(entry) {}

  std::string_view Email(std::string_view user_key) const override {
    const Entry* u = Find(ResourceType::kUser, user_key);
    return u == nullptr ? std::string_view() : std::string_view(u->email);
  }

  std::optional<mapping::GroupIdentity> Group(std::string_view group_key) const override {
    const Entry* g = Find(ResourceType::kGroup, group_key);
    if (g == nullptr) return std::nullopt;
    return mapping::GroupIdentity{g->id, "", g->display_name};
  }

  // Members are ids of users or groups of the source (SCIM nests groups);
  // ids it does not know name nobody.
  void Members(std::string_view group_key, std::vector<std::string_view>* users,
               std::vector<std::string_view>* groups) const override {
    const Entry* g = Find(ResourceType::kGroup, group_key);
    if (g == nullptr) return;
    for (const std::string& id : g->member_ids) {
      if (Find(ResourceType::kUser, id) != nullptr) {
        users->push_back(id);
      } else if (Find(ResourceType::kGroup, id) != nullptr) {
        groups->push_back(id);
      }
    }
  }

 private:
  const Entry* Find(ResourceType type, std::string_view id) const {
    if (type == type_ && id == id_) return entry_;
    return s_.Of(type).Find(id);
  }

  const SourceState& s_;
  const ResourceType type_;
  const std::string_view id_;
  const Entry* const entry_;
};

// ---------------------------------------------------------------------------
// Requests

const std::string* QueryParam(const ScimRequest& req, std::string_view name) {
  const std::string* found = nullptr;
  for (const auto& [k, v] : req.query) {
    if (EqualsIgnoreCase(k, name)) found = &v;  // the last one wins
  }
  return found;
}

std::vector<std::string_view> Segments(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < path.size()) {
    const size_t slash = path.find('/', i);
    const size_t end = slash == std::string_view::npos ? path.size() : slash;
    if (end > i) out.push_back(path.substr(i, end - i));
    i = end + 1;
  }
  return out;
}

Result<std::int64_t> ParseInteger(std::string_view text, std::string_view name) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size()) {
    return ScimError(ScimType::kInvalidValue, std::string(name) + " must be an integer");
  }
  return v;
}

// What a list or search asks for.
struct ListQuery {
  std::optional<Filter> filter;
  std::int64_t start_index = 1;
  std::int64_t count = 0;
  Projection projection;
};

Result<std::optional<Filter>> ParseFilterParam(std::string_view text) {
  if (text.find_first_not_of(" \t") == std::string_view::npos) return std::optional<Filter>();
  ASSIGN_OR_RETURN(Filter f, Filter::Parse(text));
  return std::optional<Filter>(std::move(f));
}

std::int64_t ClampCount(std::optional<std::int64_t> count, int max_results) {
  if (!count) return max_results;
  return std::clamp<std::int64_t>(*count, 0, max_results);
}

Result<ListQuery> ListQueryFromParams(const ScimRequest& req, int max_results) {
  ListQuery q;
  if (const std::string* f = QueryParam(req, "filter")) {
    ASSIGN_OR_RETURN(q.filter, ParseFilterParam(*f));
  }
  if (const std::string* s = QueryParam(req, "startIndex")) {
    ASSIGN_OR_RETURN(std::int64_t v, ParseInteger(*s, "startIndex"));
    q.start_index = std::max<std::int64_t>(v, 1);
  }
  std::optional<std::int64_t> count;
  if (const std::string* c = QueryParam(req, "count")) {
    ASSIGN_OR_RETURN(count, ParseInteger(*c, "count"));
  }
  q.count = ClampCount(count, max_results);
  const std::string* a = QueryParam(req, "attributes");
  const std::string* x = QueryParam(req, "excludedAttributes");
  q.projection = Projection::Parse(a != nullptr ? *a : "", x != nullptr ? *x : "");
  return q;
}

// "a,b" from a SearchRequest's attribute list (an array of strings, or one
// string).
Result<std::string> JoinAttributeList(const json* v, std::string_view name) {
  if (v == nullptr || v->is_null()) return std::string();
  if (v->is_string()) return v->get<std::string>();
  if (!v->is_array()) {
    return ScimError(ScimType::kInvalidValue, std::string(name) + " must be an array of strings");
  }
  std::string out;
  for (const json& e : *v) {
    if (!e.is_string()) {
      return ScimError(ScimType::kInvalidValue, std::string(name) + " must be an array of strings");
    }
    if (!out.empty()) out += ",";
    out += e.get<std::string>();
  }
  return out;
}

Result<std::optional<std::int64_t>> JsonInteger(const json& body, std::string_view name) {
  const json* v = FindMember(body, name);
  if (v == nullptr || v->is_null()) return std::optional<std::int64_t>();
  if (v->is_number_integer()) return std::optional<std::int64_t>(v->get<std::int64_t>());
  if (v->is_string()) {
    ASSIGN_OR_RETURN(std::int64_t n, ParseInteger(v->get_ref<const std::string&>(), name));
    return std::optional<std::int64_t>(n);
  }
  return ScimError(ScimType::kInvalidValue, std::string(name) + " must be an integer");
}

// POST .search (RFC 7644 3.4.3).
Result<ListQuery> ListQueryFromSearch(const json& body, int max_results) {
  if (!body.is_object()) {
    return ScimError(ScimType::kInvalidSyntax, "a SearchRequest must be a JSON object");
  }
  ListQuery q;
  if (const json* f = FindMember(body, "filter"); f != nullptr && !f->is_null()) {
    if (!f->is_string()) return ScimError(ScimType::kInvalidFilter, "filter must be a string");
    ASSIGN_OR_RETURN(q.filter, ParseFilterParam(f->get_ref<const std::string&>()));
  }
  ASSIGN_OR_RETURN(std::optional<std::int64_t> start, JsonInteger(body, "startIndex"));
  if (start) q.start_index = std::max<std::int64_t>(*start, 1);
  ASSIGN_OR_RETURN(std::optional<std::int64_t> count, JsonInteger(body, "count"));
  q.count = ClampCount(count, max_results);
  ASSIGN_OR_RETURN(std::string a, JoinAttributeList(FindMember(body, "attributes"), "attributes"));
  ASSIGN_OR_RETURN(std::string x,
                   JoinAttributeList(FindMember(body, "excludedAttributes"), "excludedAttributes"));
  q.projection = Projection::Parse(a, x);
  return q;
}

// RFC 7232 If-Match with weak comparison: "*" or any listed tag naming the
// current version.
bool IfMatchHolds(std::string_view header, std::int64_t version) {
  if (header.find_first_not_of(" \t") == std::string_view::npos) return true;
  const std::string want = std::to_string(version);
  size_t i = 0;
  while (i <= header.size()) {
    size_t comma = header.find(',', i);
    if (comma == std::string_view::npos) comma = header.size();
    std::string_view tag = header.substr(i, comma - i);
    while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t')) tag.remove_prefix(1);
    while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) tag.remove_suffix(1);
    if (tag == "*") return true;
    if (tag.starts_with("W/") || tag.starts_with("w/")) tag.remove_prefix(2);
    if (tag.size() >= 2 && tag.front() == '"' && tag.back() == '"') {
      tag = tag.substr(1, tag.size() - 2);
    }
    if (tag == want) return true;
    i = comma + 1;
  }
  return false;
}

// The schemas list a resource carries: its core URN, then the URN of every
// extension object present.
json SchemasFor(const json& resource, ResourceType type) {
  json schemas = json::array({type == ResourceType::kUser ? kUserSchema : kGroupSchema});
  for (auto it = resource.begin(); it != resource.end(); ++it) {
    if (StartsWithIgnoreCase(it.key(), "urn:") && it->is_object()) schemas.push_back(it.key());
  }
  return schemas;
}

// Removes what a client may send but never sets (RFC 7643: readOnly values
// are ignored): id, meta, schemas (recomputed) and a User's groups (derived
// from the Groups' members).
void DropServerAttributes(json& resource, ResourceType type) {
  EraseMember(resource, "id");
  EraseMember(resource, "meta");
  EraseMember(resource, "schemas");
  if (type == ResourceType::kUser) EraseMember(resource, "groups");
}

// Whether two resources are equal apart from meta: what decides whether a
// write changed anything. Compares in place (a large group is not copied).
bool SameContent(const json& a, const json& b) {
  if (!a.is_object() || !b.is_object()) return a == b;
  auto is_meta = [](const std::string& key) { return EqualsIgnoreCase(key, "meta"); };
  size_t na = 0, nb = 0;
  for (auto it = a.begin(); it != a.end(); ++it) {
    if (is_meta(it.key())) continue;
    ++na;
    auto other = b.find(it.key());
    if (other == b.end() || *other != *it) return false;
  }
  for (auto it = b.begin(); it != b.end(); ++it) {
    if (!is_meta(it.key())) ++nb;
  }
  return na == nb;
}

// ---------------------------------------------------------------------------

class ServiceImpl : public ScimService {
 public:
  ServiceImpl(const ServiceOptions& options, ResourcePersistence& persistence,
              ChangeListener listener)
      : options_(options), persistence_(persistence), listener_(std::move(listener)) {
    if (options_.max_results < 1) options_.max_results = 1;
    std::random_device rd;
    rng_.seed((static_cast<std::uint64_t>(rd()) << 32) ^ rd());
    for (const std::string& name : options_.sources) {
      auto s = std::make_unique<SourceState>();
      s->name = name;
      for (const std::string& strict : options_.strict_patch_sources) {
        if (strict == name) s->patch.strict = true;
      }
      sources_.emplace(name, std::move(s));
    }
  }

  Status Load() {
    for (auto& [name, state] : sources_) {
      Result<std::vector<StoredResource>> stored = persistence_.LoadAll(name);
      if (!stored.ok()) return stored.status().WithContext("loading SCIM source '" + name + "'");
      for (const StoredResource& r : *stored) RETURN_IF_ERROR(LoadOne(*state, r));
    }
    return Status::Ok();
  }

  ScimResponse Handle(const ScimRequest& req) override {
    try {
      return Route(req);
    } catch (const std::exception&) {
      // Only a bug gets here (the JSON library throws on misuse); the
      // request changed nothing that was not persisted first.
      return ErrorResponse(500, "", "internal error");
    }
  }

  mapping::SourceSnapshot Snapshot(const std::string& source) const override {
    mapping::SourceSnapshot snap;
    snap.source = source;
    snap.nested = true;
    const SourceState* s = FindSource(source);
    if (s == nullptr) return snap;
    std::shared_lock lock(s->mu);
    snap.users.reserve(s->users.order.size());
    for (const Entry* e : s->users.order) {
      mapping::DirectoryUser u;
      u.id = e->id;
      u.email = e->email;
      u.name = e->display_name;
      u.disabled = e->disabled;
      snap.users.push_back(std::move(u));
    }
    if (s->groups.order.empty()) return snap;
    // id -> index, as one sorted array each (no allocation per entry: this
    // runs over every user of the source).
    using IdIndex = std::vector<std::pair<std::string_view, std::uint32_t>>;
    auto build = [](const std::vector<const Entry*>& order) {
      IdIndex index;
      index.reserve(order.size());
      for (const Entry* e : order) {
        index.emplace_back(e->id, static_cast<std::uint32_t>(index.size()));
      }
      std::sort(index.begin(), index.end());
      return index;
    };
    auto find = [](const IdIndex& index, std::string_view id) -> std::optional<std::uint32_t> {
      auto it = std::lower_bound(index.begin(), index.end(), id,
                                 [](const auto& p, std::string_view v) { return p.first < v; });
      if (it == index.end() || it->first != id) return std::nullopt;
      return it->second;
    };
    const IdIndex user_index = build(s->users.order);
    const IdIndex group_index = build(s->groups.order);
    snap.groups.reserve(s->groups.order.size());
    for (const Entry* e : s->groups.order) {
      mapping::DirectoryGroup g;
      g.id = e->id;
      g.name = e->display_name;
      for (const std::string& m : e->member_ids) {
        if (std::optional<std::uint32_t> u = find(user_index, m)) {
          g.member_users.push_back(*u);
        } else if (std::optional<std::uint32_t> gi = find(group_index, m)) {
          g.member_groups.push_back(*gi);
        }
      }
      // A member listed twice counts once.
      for (std::vector<std::uint32_t>* v : {&g.member_users, &g.member_groups}) {
        std::vector<std::uint32_t> seen = *v;
        std::sort(seen.begin(), seen.end());
        if (std::adjacent_find(seen.begin(), seen.end()) == seen.end()) continue;
        std::vector<std::uint32_t> unique;
        for (std::uint32_t x : *v) {
          if (std::find(unique.begin(), unique.end(), x) == unique.end()) unique.push_back(x);
        }
        *v = std::move(unique);
      }
      snap.groups.push_back(std::move(g));
    }
    return snap;
  }

  std::pair<std::int64_t, std::int64_t> Counts(const std::string& source) const override {
    const SourceState* s = FindSource(source);
    if (s == nullptr) return {0, 0};
    std::shared_lock lock(s->mu);
    return {static_cast<std::int64_t>(s->users.by_id.size()),
            static_cast<std::int64_t>(s->groups.by_id.size())};
  }

 private:
  const SourceState* FindSource(const std::string& name) const {
    auto it = sources_.find(name);
    return it == sources_.end() ? nullptr : it->second.get();
  }
  SourceState* FindSource(const std::string& name) {
    auto it = sources_.find(name);
    return it == sources_.end() ? nullptr : it->second.get();
  }

  std::int64_t NowMs() const {
    if (options_.now) return options_.now();
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  // A random (version 4) UUID, unused in `s`.
  std::string NewId(const SourceState& s) {
    for (;;) {
      std::uint64_t hi, lo;
      {
        std::lock_guard lock(rng_mu_);
        hi = rng_();
        lo = rng_();
      }
      hi = (hi & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000004000ULL;
      lo = (lo & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;
      char buf[37];
      std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx",
                    static_cast<unsigned>(hi >> 32), static_cast<unsigned>((hi >> 16) & 0xFFFF),
                    static_cast<unsigned>(hi & 0xFFFF), static_cast<unsigned>(lo >> 48),
                    static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFULL));
      std::string id(buf);
      if (s.users.Find(id) == nullptr && s.groups.Find(id) == nullptr) return id;
    }
  }

  Status LoadOne(SourceState& s, const StoredResource& r) {
    const std::string where = "SCIM " + r.type + " '" + r.id + "' of source '" + s.name + "'";
    auto data_loss = [&where](std::string_view why) {
      return DataLossError(where + " " + std::string(why));
    };
    ResourceType type;
    if (r.type == "User") {
      type = ResourceType::kUser;
    } else if (r.type == "Group") {
      type = ResourceType::kGroup;
    } else {
      return data_loss("has an unknown resource type");
    }
    Result<Json> parsed = Json::Parse(r.json, options_.max_json_depth + 8);
    if (!parsed.ok()) return data_loss("cannot be parsed");
    const json& body = JsonAccess::Get(*parsed);
    if (!body.is_object()) return data_loss("is not a JSON object");
    const std::string* id = StringMember(body, "id");
    if (id == nullptr || *id != r.id || r.id.empty()) return data_loss("does not carry its id");
    const std::string* key =
        StringMember(body, type == ResourceType::kUser ? "userName" : "displayName");
    if (key == nullptr) return data_loss("has no userName/displayName");
    auto e = std::make_unique<Entry>();
    e->id = r.id;
    e->body = std::move(parsed).value();
    e->version = std::max<std::int64_t>(r.version, 1);
    const json* meta = FindMember(JsonAccess::Get(e->body), "meta");
    if (meta != nullptr && meta->is_object()) {
      if (const std::string* created = StringMember(*meta, "created")) {
        if (std::optional<Instant> t = ParseDateTime(*created)) {
          e->created_ms = t->seconds * 1000 + t->nanos / 1000000;
        }
      }
    }
    Derive(*e, type);
    Table& table = s.Of(type);
    if (table.Find(e->id) != nullptr ||
        s.Of(type == ResourceType::kUser ? ResourceType::kGroup : ResourceType::kUser)
                .Find(e->id) != nullptr) {
      return data_loss("is stored twice");
    }
    if (type == ResourceType::kUser && table.by_key.count(e->key_lower) != 0) {
      return data_loss("repeats another user's userName");
    }
    table.Insert(std::move(e));
    return Status::Ok();
  }

  // --- routing ---

  ScimResponse Route(const ScimRequest& req) {
    const std::vector<std::string_view> seg = Segments(req.path);
    const std::string& m = req.method;
    if (seg.empty()) return ErrorResponse(404, "", "no such endpoint: " + req.path);
    const std::string_view first = seg[0];
    std::optional<ResourceType> type;
    if (EqualsIgnoreCase(first, "Users")) type = ResourceType::kUser;
    if (EqualsIgnoreCase(first, "Groups")) type = ResourceType::kGroup;
    if (type) {
      SourceState* s = FindSource(req.source);
      if (s == nullptr) {
        return ErrorResponse(500, "", "the SCIM service does not serve this source");
      }
      if (seg.size() == 1) {
        if (m == "GET") return List(*s, *type, req);
        if (m == "POST") return Create(*s, *type, req);
        return MethodNotAllowed(m, req.path, "GET, POST");
      }
      if (seg.size() == 2 && seg[1] == ".search") {
        if (m == "POST") return Search(*s, *type, req);
        return MethodNotAllowed(m, req.path, "POST");
      }
      if (seg.size() == 2) {
        const std::string id(seg[1]);
        if (m == "GET") return Get(*s, *type, id, req);
        if (m == "PUT") return Replace(*s, *type, id, req);
        if (m == "PATCH") return Modify(*s, *type, id, req);
        if (m == "DELETE") return Delete(*s, *type, id, req);
        return MethodNotAllowed(m, req.path, "GET, PUT, PATCH, DELETE");
      }
      return ErrorResponse(404, "", "no such endpoint: " + req.path);
    }
    if (EqualsIgnoreCase(first, "Bulk")) {
      return ErrorResponse(501, "", "bulk operations are not supported");
    }
    if (EqualsIgnoreCase(first, "Me")) {
      return ErrorResponse(501, "", "/Me is not supported: requests act for an identity provider");
    }
    if (EqualsIgnoreCase(first, ".search") && seg.size() == 1) {
      return ErrorResponse(501, "",
                           "searching across resource types is not supported; use "
                           "/Users/.search or /Groups/.search");
    }
    const std::string base = TrimBase(req.base_url);
    if (EqualsIgnoreCase(first, "ServiceProviderConfig") && seg.size() == 1) {
      if (m != "GET") return MethodNotAllowed(m, req.path, "GET");
      return JsonResponse(200, ServiceProviderConfigJson(base, options_.max_results));
    }
    if (EqualsIgnoreCase(first, "ResourceTypes") && seg.size() <= 2) {
      if (m != "GET") return MethodNotAllowed(m, req.path, "GET");
      return Discovery(ResourceTypesJson(base), seg, req.path);
    }
    if (EqualsIgnoreCase(first, "Schemas") && seg.size() <= 2) {
      if (m != "GET") return MethodNotAllowed(m, req.path, "GET");
      return Discovery(SchemasJson(base), seg, req.path);
    }
    return ErrorResponse(404, "", "no such endpoint: " + req.path);
  }

  static ScimResponse JsonResponse(int status, const json& body) {
    ScimResponse r;
    r.status = status;
    r.body = Dump(body);
    return r;
  }

  // A list of discovery resources, or the one whose id is seg[1].
  static ScimResponse Discovery(std::vector<json> all, const std::vector<std::string_view>& seg,
                                const std::string& path) {
    if (seg.size() == 2) {
      for (json& r : all) {
        if (EqualsIgnoreCase(r["id"].get_ref<const std::string&>(), seg[1])) {
          return JsonResponse(200, r);
        }
      }
      return ErrorResponse(404, "", "no such resource: " + path);
    }
    const size_t n = all.size();
    return JsonResponse(200, {{"schemas", json::array({kListResponseSchema})},
                              {"totalResults", n},
                              {"startIndex", 1},
                              {"itemsPerPage", n},
                              {"Resources", std::move(all)}});
  }

  // --- reads ---

  // The resource as answered: its stored body with meta.location for this
  // request's base URL, projected. Needs the source's shared lock (or its
  // writer mutex) while `e` is used.
  static json Render(const Entry& e, ResourceType type, const ScimRequest& req,
                     const Projection& projection) {
    json out = JsonAccess::Get(e.body);
    if (json* meta = FindMember(out, "meta"); meta != nullptr && meta->is_object()) {
      (*meta)["location"] = Location(req.base_url, type, e.id);
    }
    return projection.IsIdentity() ? out : projection.Apply(out);
  }

  static ScimResponse ResourceResponse(int status, const Entry& e, ResourceType type,
                                       const ScimRequest& req, const Projection& projection) {
    ScimResponse r;
    r.status = status;
    r.body = Dump(Render(e, type, req, projection));
    r.etag = VersionTag(e.version);
    return r;
  }

  static Projection ProjectionOf(const ScimRequest& req) {
    const std::string* a = QueryParam(req, "attributes");
    const std::string* x = QueryParam(req, "excludedAttributes");
    return Projection::Parse(a != nullptr ? *a : "", x != nullptr ? *x : "");
  }

  ScimResponse Get(const SourceState& s, ResourceType type, const std::string& id,
                   const ScimRequest& req) const {
    const Projection projection = ProjectionOf(req);
    std::shared_lock lock(s.mu);
    const Entry* e = s.Of(type).Find(id);
    if (e == nullptr) return NotFound(type, id);
    return ResourceResponse(200, *e, type, req, projection);
  }

  static ScimResponse NotFound(ResourceType type, const std::string& id) {
    return ErrorResponse(404, "", std::string(TypeName(type)) + " " + id + " not found");
  }

  ScimResponse List(const SourceState& s, ResourceType type, const ScimRequest& req) const {
    Result<ListQuery> q = ListQueryFromParams(req, options_.max_results);
    if (!q.ok()) return StatusResponse(q.status());
    return RunQuery(s, type, *q, req);
  }

  ScimResponse Search(const SourceState& s, ResourceType type, const ScimRequest& req) const {
    Result<Json> body = Json::Parse(req.body, options_.max_json_depth);
    if (!body.ok()) return StatusResponse(body.status());
    Result<ListQuery> q = ListQueryFromSearch(JsonAccess::Get(*body), options_.max_results);
    if (!q.ok()) return StatusResponse(q.status());
    return RunQuery(s, type, *q, req);
  }

  // The candidates an indexed equality names, in list order; nullopt when
  // the filter has no index here.
  static std::optional<std::vector<const Entry*>> IndexLookup(const Table& t, ResourceType type,
                                                              const Filter& filter) {
    std::optional<IndexedEquality> eq = filter.AsIndexedEquality();
    if (!eq) return std::nullopt;
    std::vector<const Entry*> out;
    if (eq->attribute == "id") {
      if (const Entry* e = t.Find(eq->value)) out.push_back(e);
      return out;
    }
    const Index* index = nullptr;
    std::string key = eq->value;
    if (eq->attribute == "externalId") {
      index = &t.by_external_id;
    } else if ((eq->attribute == "userName" && type == ResourceType::kUser) ||
               (eq->attribute == "displayName" && type == ResourceType::kGroup)) {
      index = &t.by_key;
      key = AsciiLower(key);
    } else if (eq->attribute == "userName") {
      return out;  // Groups have no userName
    } else {
      return std::nullopt;  // a User's displayName: not indexed
    }
    auto [lo, hi] = index->equal_range(key);
    for (auto it = lo; it != hi; ++it) out.push_back(it->second);
    std::sort(out.begin(), out.end(), OrderBefore);
    return out;
  }

  ScimResponse RunQuery(const SourceState& s, ResourceType type, const ListQuery& q,
                        const ScimRequest& req) const {
    std::vector<std::string> page;
    std::int64_t total = 0;
    const std::int64_t first = q.start_index - 1;  // 0-based
    {
      std::shared_lock lock(s.mu);
      const Table& t = s.Of(type);
      auto take = [&](const Entry* e) {
        if (total >= first && total - first < q.count) {
          page.push_back(Dump(Render(*e, type, req, q.projection)));
        }
        ++total;
      };
      if (!q.filter) {
        total = static_cast<std::int64_t>(t.order.size());
        for (std::int64_t i = first; i < total && i - first < q.count; ++i) {
          page.push_back(Dump(Render(*t.order[i], type, req, q.projection)));
        }
      } else if (std::optional<std::vector<const Entry*>> hits = IndexLookup(t, type, *q.filter)) {
        for (const Entry* e : *hits) {
          if (q.filter->Matches(e->body)) take(e);
        }
      } else {
        for (const Entry* e : t.order) {
          if (q.filter->Matches(e->body)) take(e);
        }
      }
    }
    std::string body = "{\"Resources\":[";
    for (size_t i = 0; i < page.size(); ++i) {
      if (i > 0) body += ',';
      body += page[i];
    }
    body += "],\"itemsPerPage\":" + std::to_string(page.size()) + ",\"schemas\":[\"" +
            std::string(kListResponseSchema) +
            "\"],\"startIndex\":" + std::to_string(q.start_index) +
            ",\"totalResults\":" + std::to_string(total) + "}";
    ScimResponse r;
    r.status = 200;
    r.body = std::move(body);
    return r;
  }

  // --- writes ---

  // Parses and normalises a POST or PUT body into the stored shape, without
  // id, meta and schemas.
  Result<Json> ParseResourceBody(const ScimRequest& req, ResourceType type) const {
    if (req.body.find_first_not_of(" \t\r\n") == std::string::npos) {
      return ScimError(ScimType::kInvalidSyntax, "the request has no body");
    }
    ASSIGN_OR_RETURN(Json body, Json::Parse(req.body, options_.max_json_depth));
    if (!body.IsObject()) {
      return ScimError(ScimType::kInvalidSyntax, "a resource must be a JSON object");
    }
    DropServerAttributes(JsonAccess::Get(body), type);
    RETURN_IF_ERROR(NormalizeResource(body, type));
    return body;
  }

  // 409 when another user of `s` has `user_name_lower`.
  static Status CheckUnique(const SourceState& s, const Entry& e, const std::string* except_id) {
    auto [lo, hi] = s.users.by_key.equal_range(e.key_lower);
    for (auto it = lo; it != hi; ++it) {
      if (except_id == nullptr || it->second->id != *except_id) {
        return ScimError(ScimType::kUniqueness,
                         "userName is already taken by user " + it->second->id);
      }
    }
    return Status::Ok();
  }

  // Sets id, schemas and meta on `e.body` for a new version of a resource.
  void Stamp(Entry& e, ResourceType type, std::int64_t created_ms, std::int64_t now_ms,
             const std::string& base_url) const {
    json& b = JsonAccess::Get(e.body);
    b["id"] = e.id;
    b["schemas"] = SchemasFor(b, type);
    b["meta"] = {{"resourceType", std::string(TypeName(type))},
                 {"created", FormatMillis(created_ms)},
                 {"lastModified", FormatMillis(now_ms)},
                 {"location", Location(base_url, type, e.id)},
                 {"version", VersionTag(e.version)}};
    e.created_ms = created_ms;
    Derive(e, type);
  }

  Status Persist(const SourceState& s, ResourceType type, const Entry& e) {
    StoredResource r;
    r.source = s.name;
    r.type = std::string(TypeName(type));
    r.id = e.id;
    r.json = Dump(JsonAccess::Get(e.body));
    r.version = e.version;
    return persistence_.Put(r);
  }

  // Whose access a write may change (see ScimChange): mapping::AffectedEmails
  // between the source with `before` and with `after` (null: absent).
  static std::vector<std::string> ChangedEmails(const SourceState& s, ResourceType type,
                                                const Entry* before, const Entry* after) {
    const std::string& id = before != nullptr ? before->id : after->id;
    mapping::TouchedEntries touched;
    (type == ResourceType::kUser ? touched.users : touched.groups).push_back(id);
    return mapping::AffectedEmails(touched, WriteView(s, type, id, before),
                                   WriteView(s, type, id, after));
  }

  void Notify(const SourceState& s, ResourceType type, const std::string& method,
              const std::string& id, std::vector<std::string> emails) const {
    if (!listener_) return;
    ScimChange change;
    change.source = s.name;
    change.emails = std::move(emails);
    change.method = method;
    change.type = std::string(TypeName(type));
    change.id = id;
    try {
      listener_(change);
    } catch (const std::exception&) {
      // The change is committed and answered as such; a listener that
      // throws loses only its own notification.
    }
  }

  ScimResponse Create(SourceState& s, ResourceType type, const ScimRequest& req) {
    Result<Json> body = ParseResourceBody(req, type);
    if (!body.ok()) return StatusResponse(body.status());
    const Projection projection = ProjectionOf(req);
    std::lock_guard write(s.write_mu);
    auto e = std::make_unique<Entry>();
    e->id = NewId(s);
    e->version = 1;
    e->body = std::move(body).value();
    const std::int64_t now = NowMs();
    Stamp(*e, type, now, now, req.base_url);
    if (type == ResourceType::kUser) {
      if (Status u = CheckUnique(s, *e, nullptr); !u.ok()) return StatusResponse(u);
    }
    if (Status p = Persist(s, type, *e); !p.ok()) return PersistenceFailure(p);
    const Entry* published = e.get();
    {
      std::unique_lock lock(s.mu);
      s.Of(type).Insert(std::move(e));
    }
    Notify(s, type, "POST", published->id, ChangedEmails(s, type, nullptr, published));
    ScimResponse r = ResourceResponse(201, *published, type, req, projection);
    r.location = Location(req.base_url, type, published->id);
    return r;
  }

  // Publishes `next` in place of `prev` once persisted, and notifies.
  ScimResponse Commit(SourceState& s, ResourceType type, const Entry& prev,
                      std::unique_ptr<Entry> next, const std::string& method,
                      const ScimRequest& req, int status, const Projection& projection) {
    if (type == ResourceType::kUser) {
      if (Status u = CheckUnique(s, *next, &next->id); !u.ok()) return StatusResponse(u);
    }
    if (Status p = Persist(s, type, *next); !p.ok()) return PersistenceFailure(p);
    std::vector<std::string> emails;
    std::unique_ptr<Entry> old;
    const Entry* published = next.get();
    {
      std::unique_lock lock(s.mu);
      old = s.Of(type).Remove(prev.id);
      s.Of(type).Insert(std::move(next));
    }
    Notify(s, type, method, published->id, ChangedEmails(s, type, old.get(), published));
    if (status == 204) {
      ScimResponse r;
      r.status = 204;
      r.etag = VersionTag(published->version);
      return r;
    }
    return ResourceResponse(status, *published, type, req, projection);
  }

  std::unique_ptr<Entry> NextVersion(const Entry& prev, Json body, ResourceType type,
                                     const ScimRequest& req) {
    auto next = std::make_unique<Entry>();
    next->id = prev.id;
    next->version = prev.version + 1;
    next->body = std::move(body);
    Stamp(*next, type, prev.created_ms, std::max(NowMs(), prev.created_ms), req.base_url);
    return next;
  }

  ScimResponse Replace(SourceState& s, ResourceType type, const std::string& id,
                       const ScimRequest& req) {
    Result<Json> body = ParseResourceBody(req, type);
    if (!body.ok()) return StatusResponse(body.status());
    const Projection projection = ProjectionOf(req);
    std::lock_guard write(s.write_mu);
    const Entry* prev = s.Of(type).Find(id);
    if (prev == nullptr) return NotFound(type, id);
    if (!IfMatchHolds(req.if_match, prev->version)) return PreconditionFailed(*prev);
    json& b = JsonAccess::Get(*body);
    b["id"] = prev->id;
    b["schemas"] = SchemasFor(b, type);
    if (SameContent(b, JsonAccess::Get(prev->body))) {
      return ResourceResponse(200, *prev, type, req, projection);  // nothing to change
    }
    return Commit(s, type, *prev, NextVersion(*prev, std::move(body).value(), type, req), "PUT",
                  req, 200, projection);
  }

  // A PATCH, reported to on_patch_refused when it is refused with a SCIM
  // error (the identity provider will send it again and be refused again).
  ScimResponse Modify(SourceState& s, ResourceType type, const std::string& id,
                      const ScimRequest& req) {
    PatchRefusal refusal;
    refusal.operation = -1;
    Status refused;
    ScimResponse r = ApplyPatch(s, type, id, req, &refusal.operation, &refused);
    if (!refused.ok() && (r.status == 400 || r.status == 409) && options_.on_patch_refused) {
      refusal.source = s.name;
      refusal.type = std::string(TypeName(type));
      refusal.id = id;
      refusal.scim_type = std::string(ScimTypeName(ScimTypeOf(refused)));
      refusal.detail = std::string(ScimErrorDetail(refused));
      options_.on_patch_refused(refusal);
    }
    return r;
  }

  // Parses and applies a PATCH. A refusal of the request itself (body, an
  // operation, the patched result) is also stored in `refused`.
  ScimResponse ApplyPatch(SourceState& s, ResourceType type, const std::string& id,
                          const ScimRequest& req, int* failed_operation, Status* refused) {
    auto refuse = [refused](const Status& status) {
      *refused = status;
      return StatusResponse(status);
    };
    Result<Json> body = Json::Parse(req.body, options_.max_json_depth);
    if (!body.ok()) return refuse(body.status());
    Result<Patch> patch = Patch::Parse(*body, failed_operation);
    if (!patch.ok()) return refuse(patch.status());
    const bool want_body = QueryParam(req, "attributes") != nullptr ||
                           QueryParam(req, "excludedAttributes") != nullptr;
    const Projection projection = ProjectionOf(req);
    std::lock_guard write(s.write_mu);
    const Entry* prev = s.Of(type).Find(id);
    if (prev == nullptr) return NotFound(type, id);
    if (!IfMatchHolds(req.if_match, prev->version)) return PreconditionFailed(*prev);
    Json work = prev->body;
    Result<bool> changed = patch->ApplyTo(work, type, s.patch, failed_operation);
    if (!changed.ok()) return refuse(changed.status());
    json& w = JsonAccess::Get(work);
    if (*changed) {
      w["schemas"] = SchemasFor(w, type);
      if (type == ResourceType::kUser) EraseMember(w, "groups");
    }
    if (!*changed || SameContent(w, JsonAccess::Get(prev->body))) {
      if (!want_body) {
        ScimResponse r;
        r.status = 204;
        r.etag = VersionTag(prev->version);
        return r;
      }
      return ResourceResponse(200, *prev, type, req, projection);
    }
    std::unique_ptr<Entry> next = NextVersion(*prev, std::move(work), type, req);
    if (type == ResourceType::kUser) {
      // A userName another user has: refused here so that it is reported.
      if (Status u = CheckUnique(s, *next, &next->id); !u.ok()) return refuse(u);
    }
    return Commit(s, type, *prev, std::move(next), "PATCH", req, want_body ? 200 : 204, projection);
  }

  ScimResponse Delete(SourceState& s, ResourceType type, const std::string& id,
                      const ScimRequest& req) {
    std::lock_guard write(s.write_mu);
    const Entry* prev = s.Of(type).Find(id);
    if (prev == nullptr) return NotFound(type, id);
    if (!IfMatchHolds(req.if_match, prev->version)) return PreconditionFailed(*prev);
    if (Status p = persistence_.Delete(s.name, std::string(TypeName(type)), id); !p.ok()) {
      return PersistenceFailure(p);
    }
    std::vector<std::string> emails = ChangedEmails(s, type, prev, nullptr);
    std::unique_ptr<Entry> old;
    {
      std::unique_lock lock(s.mu);
      old = s.Of(type).Remove(id);
    }
    Notify(s, type, "DELETE", id, std::move(emails));
    ScimResponse r;
    r.status = 204;
    return r;
  }

  static ScimResponse PreconditionFailed(const Entry& current) {
    ScimResponse r = ErrorResponse(
        412, "", "If-Match does not name the current version " + VersionTag(current.version));
    return r;
  }

  ServiceOptions options_;
  ResourcePersistence& persistence_;
  ChangeListener listener_;
  std::unordered_map<std::string, std::unique_ptr<SourceState>> sources_;
  std::mutex rng_mu_;
  std::mt19937_64 rng_;
};

}  // namespace

Result<std::unique_ptr<ScimService>> ScimService::Create(const ServiceOptions& options,
                                                         ResourcePersistence& persistence,
                                                         ChangeListener listener) {
  auto service = std::make_unique<ServiceImpl>(options, persistence, std::move(listener));
  RETURN_IF_ERROR(service->Load());
  return std::unique_ptr<ScimService>(std::move(service));
}

}  // namespace idsync::scim
