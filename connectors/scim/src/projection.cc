#include "projection.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "json_util.h"
#include "schema.h"
#include "text.h"

namespace idsync::scim {
namespace {

using nlohmann::json;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits at commas outside brackets and quoted strings.
std::vector<std::string_view> SplitList(std::string_view text) {
  std::vector<std::string_view> out;
  int depth = 0;
  bool quoted = false;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == '[') {
      ++depth;
    } else if (c == ']') {
      depth = std::max(0, depth - 1);
    } else if (c == ',' && depth == 0) {
      out.push_back(Trim(text.substr(start, i - start)));
      start = i + 1;
    }
  }
  out.push_back(Trim(text.substr(start)));
  return out;
}

// "emails[type eq \"work\"].value" -> "emails.value".
std::string DropValueFilter(std::string_view item) {
  const size_t open = item.find('[');
  if (open == std::string_view::npos) return std::string(item);
  bool quoted = false;
  for (size_t i = open + 1; i < item.size(); ++i) {
    const char c = item[i];
    if (quoted) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ']') {
      return std::string(item.substr(0, open)) + std::string(item.substr(i + 1));
    }
  }
  return std::string(item.substr(0, open));
}

std::optional<AttrSelector> ParseSelector(std::string_view item) {
  AttrSelector sel;
  sel.text = DropValueFilter(item);
  std::string_view path = sel.text;
  if (StartsWithIgnoreCase(path, "urn:")) {
    const std::string_view known = KnownUrnPrefix(path);
    if (!known.empty()) {
      path = path.size() == known.size() ? std::string_view() : path.substr(known.size() + 1);
      if (ClassifyUrn(known) == SchemaId::kCore) {
        if (path.empty()) return std::nullopt;  // the whole core schema: no selection
      } else {
        sel.urn = std::string(known);
      }
    } else {
      // An extension nobody described: its URN ends at the last colon (the
      // whole text may also name the extension itself; Apply tries both).
      const size_t colon = path.rfind(':');
      sel.urn = std::string(path.substr(0, colon));
      path = path.substr(colon + 1);
    }
  }
  const size_t dot = path.find('.');
  sel.attr = std::string(path.substr(0, dot));
  if (dot != std::string_view::npos) sel.sub = std::string(path.substr(dot + 1));
  if (sel.attr.empty() && sel.urn.empty()) return std::nullopt;
  return sel;
}

std::vector<AttrSelector> ParseSelectors(std::string_view text) {
  std::vector<AttrSelector> out;
  if (Trim(text).empty()) return out;
  for (std::string_view item : SplitList(text)) {
    if (item.empty()) continue;
    if (std::optional<AttrSelector> sel = ParseSelector(item)) out.push_back(std::move(*sel));
  }
  return out;
}

// Copies the sub-attribute `sub` of src[key] into dst[key], element by
// element for a multi-valued attribute.
void CopySub(const json& v, json& d, const std::string& sub) {
  if (v.is_object()) {
    if (std::optional<std::string> sk = FindKey(v, sub)) {
      if (!d.is_object()) d = json::object();
      d[*sk] = v.at(*sk);
    }
    return;
  }
  if (!v.is_array()) return;
  if (!d.is_array() || d.size() != v.size()) d = json::array();
  while (d.size() < v.size()) d.push_back(json::object());
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].is_object()) continue;
    if (std::optional<std::string> sk = FindKey(v[i], sub)) d[i][*sk] = v[i].at(*sk);
  }
}

// Drops the empty objects a sub-attribute selection left in `v`.
void Compact(json& v) {
  if (!v.is_array()) return;
  json out = json::array();
  for (json& e : v) {
    if (!(e.is_object() && e.empty())) out.push_back(std::move(e));
  }
  v = std::move(out);
}

json Include(const json& resource, const std::vector<AttrSelector>& selectors) {
  json out = json::object();
  for (std::string_view always : {"id", "schemas"}) {
    if (std::optional<std::string> k = FindKey(resource, always)) out[*k] = resource.at(*k);
  }
  // Sub-attributes first: a whole attribute selected too then overwrites them.
  std::vector<const AttrSelector*> ordered;
  for (const AttrSelector& s : selectors) {
    if (!s.sub.empty()) ordered.push_back(&s);
  }
  for (const AttrSelector& s : selectors) {
    if (s.sub.empty()) ordered.push_back(&s);
  }
  std::vector<std::pair<std::string, std::string>> compact;  // (extension key, attribute key)
  for (const AttrSelector* sel : ordered) {
    const json* src = &resource;
    std::string ext_key;
    if (!sel->urn.empty()) {
      std::optional<std::string> k = FindKey(resource, sel->urn);
      if (!k && !sel->attr.empty()) {
        // "urn:acme:ext" may name an undescribed extension as a whole.
        if (std::optional<std::string> whole = FindKey(resource, sel->text)) {
          out[*whole] = resource.at(*whole);
        }
        continue;
      }
      if (!k) continue;
      if (sel->attr.empty()) {
        out[*k] = resource.at(*k);
        continue;
      }
      src = &resource.at(*k);
      if (!src->is_object()) continue;
      ext_key = *k;
    }
    std::optional<std::string> key = FindKey(*src, sel->attr);
    if (!key) continue;
    json& dst_parent = ext_key.empty() ? out : out[ext_key];
    if (!dst_parent.is_object()) dst_parent = json::object();
    const json& v = src->at(*key);
    if (sel->sub.empty()) {
      dst_parent[*key] = v;
    } else {
      CopySub(v, dst_parent[*key], sel->sub);
      compact.emplace_back(ext_key, *key);
    }
  }
  for (const auto& [ext_key, key] : compact) {
    json& parent = ext_key.empty() ? out : out[ext_key];
    if (!parent.contains(key)) continue;
    Compact(parent[key]);
    if (parent[key].is_null() || parent[key].empty()) parent.erase(key);
  }
  for (auto it = out.begin(); it != out.end();) {
    if (StartsWithIgnoreCase(it.key(), "urn:") && it->is_object() && it->empty()) {
      it = out.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

void Exclude(json& out, const std::vector<AttrSelector>& selectors) {
  for (const AttrSelector& sel : selectors) {
    json* parent = &out;
    if (!sel.urn.empty()) {
      if (sel.attr.empty()) {
        EraseMember(out, sel.urn);
        continue;
      }
      json* ext = FindMember(out, sel.urn);
      if (ext == nullptr) {
        EraseMember(out, sel.text);
        continue;
      }
      if (!ext->is_object()) continue;
      parent = ext;
    } else if (EqualsIgnoreCase(sel.attr, "id") || EqualsIgnoreCase(sel.attr, "schemas")) {
      continue;  // returned always
    }
    if (sel.sub.empty()) {
      EraseMember(*parent, sel.attr);
      continue;
    }
    json* v = FindMember(*parent, sel.attr);
    if (v == nullptr) continue;
    if (v->is_object()) {
      EraseMember(*v, sel.sub);
    } else if (v->is_array()) {
      for (json& e : *v) {
        if (e.is_object()) EraseMember(e, sel.sub);
      }
    }
  }
}

}  // namespace

Projection Projection::Parse(std::string_view attributes, std::string_view excluded) {
  Projection p;
  p.include_ = ParseSelectors(attributes);
  p.exclude_ = ParseSelectors(excluded);
  return p;
}

json Projection::Apply(const json& resource) const {
  json out = include_.empty() ? resource : Include(resource, include_);
  if (!exclude_.empty()) Exclude(out, exclude_);
  return out;
}

}  // namespace idsync::scim
