// The resource tables: what the service derives from a resource's body,
// the list order and the indexes, and reading stored resources back.
#include "resource_table.h"

#include <algorithm>
#include <utility>

#include <nlohmann/json.hpp>

#include "datetime.h"
#include "identity.h"
#include "json_internal.h"
#include "json_util.h"
#include "text.h"

namespace idsync::scim::internal {
namespace {

using nlohmann::json;

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

void IndexErase(Index& index, const std::string& key, const Entry* e) {
  auto [lo, hi] = index.equal_range(key);
  for (auto it = lo; it != hi; ++it) {
    if (it->second == e) {
      index.erase(it);
      return;
    }
  }
}

}  // namespace

std::size_t AsciiFoldHash::operator()(std::string_view text) const {
  // FNV-1a over the folded bytes.
  std::uint64_t h = 1469598103934665603ULL;
  for (char c : text) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  return static_cast<std::size_t>(h);
}

bool AsciiFoldEqual::operator()(std::string_view a, std::string_view b) const {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

bool OrderBefore(const Entry* a, const Entry* b) {
  if (a->created_ms != b->created_ms) return a->created_ms < b->created_ms;
  return a->id < b->id;
}

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

void Table::Insert(std::unique_ptr<Entry> e) {
  const Entry* p = e.get();
  by_key.emplace(p->key_lower, p);
  if (!p->external_id.empty()) by_external_id.emplace(p->external_id, p);
  if (!p->email.empty()) by_email.emplace(std::string_view(p->email), p);
  auto pos = std::upper_bound(order.begin(), order.end(), p, OrderBefore);
  order.insert(pos, p);
  by_id[p->id] = std::move(e);
}

std::unique_ptr<Entry> Table::Remove(const std::string& id) {
  auto it = by_id.find(id);
  std::unique_ptr<Entry> e = std::move(it->second);
  by_id.erase(it);
  IndexErase(by_key, e->key_lower, e.get());
  if (!e->external_id.empty()) IndexErase(by_external_id, e->external_id, e.get());
  if (!e->email.empty()) {
    auto [lo, hi] = by_email.equal_range(std::string_view(e->email));
    for (auto at = lo; at != hi; ++at) {
      if (at->second == e.get()) {
        by_email.erase(at);
        break;
      }
    }
  }
  auto pos = std::lower_bound(order.begin(), order.end(), e.get(), OrderBefore);
  if (pos != order.end() && *pos == e.get()) order.erase(pos);
  return e;
}

std::optional<std::vector<const Entry*>> IndexLookup(const Table& t, ResourceType type,
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

Result<std::unique_ptr<Entry>> ReadStored(const std::string& source, const StoredResource& r,
                                          int max_json_depth, ResourceType* type) {
  const std::string where = "SCIM " + r.type + " '" + r.id + "' of source '" + source + "'";
  auto data_loss = [&where](std::string_view why) {
    return DataLossError(where + " " + std::string(why));
  };
  if (r.type == "User") {
    *type = ResourceType::kUser;
  } else if (r.type == "Group") {
    *type = ResourceType::kGroup;
  } else {
    return data_loss("has an unknown resource type");
  }
  Result<Json> parsed = Json::Parse(r.json, max_json_depth + 8);
  if (!parsed.ok()) return data_loss("cannot be parsed");
  const json& body = JsonAccess::Get(*parsed);
  if (!body.is_object()) return data_loss("is not a JSON object");
  const std::string* id = StringMember(body, "id");
  if (id == nullptr || *id != r.id || r.id.empty()) return data_loss("does not carry its id");
  const std::string* key =
      StringMember(body, *type == ResourceType::kUser ? "userName" : "displayName");
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
  Derive(*e, *type);
  return e;
}

Status LoadStored(SourceState& s, const StoredResource& r, int max_json_depth) {
  ResourceType type;
  ASSIGN_OR_RETURN(std::unique_ptr<Entry> e, ReadStored(s.name, r, max_json_depth, &type));
  const std::string where = "SCIM " + r.type + " '" + r.id + "' of source '" + s.name + "'";
  Table& table = s.Of(type);
  if (table.Find(e->id) != nullptr ||
      s.Of(type == ResourceType::kUser ? ResourceType::kGroup : ResourceType::kUser).Find(e->id) !=
          nullptr) {
    return DataLossError(where + " is stored twice");
  }
  if (type == ResourceType::kUser && table.by_key.count(e->key_lower) != 0) {
    return DataLossError(where + " repeats another user's userName");
  }
  table.Insert(std::move(e));
  return Status::Ok();
}

}  // namespace idsync::scim::internal
