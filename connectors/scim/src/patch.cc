// SCIM PATCH: request parsing and application. Operations run on a copy of
// the resource, which replaces the original only when every operation and
// the final normalisation succeed: a PATCH is all or nothing.
#include "idsync/scim/patch.h"

#include <cstddef>
#include <functional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "idsync/scim/errors.h"

#include "ast.h"
#include "identity.h"
#include "json_internal.h"
#include "json_util.h"
#include "normalize.h"
#include "text.h"

namespace idsync::scim {

using nlohmann::json;

enum class PatchOpKind { kAdd, kReplace, kRemove };

// One operation, after expansion: a path-less add/replace becomes one
// operation per key of its value.
struct PatchOperation {
  PatchOpKind kind = PatchOpKind::kAdd;
  AttrPath path;
  bool has_value = false;
  json value;
  bool from_pathless = false;  // came from a key of a path-less value
  size_t index = 0;            // position in "Operations", for messages
};

struct Patch::Rep {
  std::vector<PatchOperation> ops;
  size_t values = 0;  // see Patch::values()
};

namespace {

Status InOperation(size_t index, const Status& status) {
  const ScimType type = ScimTypeOf(status);
  if (type == ScimType::kNone) return status;
  return ScimError(
      type, "Operations[" + std::to_string(index) + "]: " + std::string(ScimErrorDetail(status)));
}

// Where a value lives, or would live once written.
struct Slot {
  json* parent = nullptr;  // the object holding it
  std::string name;        // as the request spelled it
  SchemaId schema = SchemaId::kCore;
  std::string dotted;              // schema name ("name.givenName"); "" for a whole extension
  const AttrInfo* info = nullptr;  // null when the schema does not know it
};

Slot ChildSlot(json& parent_value, const Slot& parent, std::string_view name) {
  Slot s;
  s.parent = &parent_value;
  s.name = std::string(name);
  s.schema = parent.schema;
  s.dotted = parent.dotted.empty() ? s.name : parent.dotted + "." + s.name;
  s.info = FindAttr(s.schema, s.dotted);
  return s;
}

json* Find(const Slot& s) { return FindMember(*s.parent, s.name); }

// An existing member keeps its key; a new one gets the schema spelling.
json& Create(const Slot& s) {
  if (std::optional<std::string> key = FindKey(*s.parent, s.name)) return (*s.parent)[*key];
  if (s.info != nullptr) return (*s.parent)[std::string(LeafName(*s.info))];
  if (s.dotted.empty()) return (*s.parent)[CanonicalUrn(s.name)];
  return (*s.parent)[s.name];
}

void Erase(const Slot& s) { EraseMember(*s.parent, s.name); }

bool IsMulti(const Slot& s, const json* existing, const json& input) {
  if (s.info != nullptr) return s.info->multi_valued;
  if (s.dotted.empty()) return false;
  if (existing != nullptr && !existing->is_null()) return existing->is_array();
  return input.is_array();
}

bool IsComplex(const Slot& s, const json* existing) {
  if (s.dotted.empty()) return true;
  if (s.info != nullptr) return s.info->type == AttrType::kComplex;
  return existing != nullptr && existing->is_object();
}

// Group members and a User's groups are references: two values with the
// same "value" are the same member whatever else they carry.
bool IdentifiedByValue(const Slot& s) {
  return s.schema == SchemaId::kCore &&
         (EqualsIgnoreCase(s.dotted, "members") || EqualsIgnoreCase(s.dotted, "groups"));
}

// `e` without its primary flag, for comparing values.
json WithoutPrimary(const json& e) {
  if (!e.is_object()) return e;
  json copy = e;
  EraseMember(copy, "primary");
  return copy;
}

bool SameElement(const json& existing, const json& item, const Slot& s, bool by_value) {
  if (by_value && existing.is_object() && item.is_object()) {
    const json* a = FindMember(existing, "value");
    const json* b = FindMember(item, "value");
    if (a != nullptr && b != nullptr) {
      if (a->is_string() && b->is_string()) {
        const AttrInfo* vi = FindAttr(s.schema, s.dotted + ".value");
        if (vi != nullptr && vi->case_exact) return *a == *b;
        return EqualsIgnoreCase(a->get_ref<const std::string&>(), b->get_ref<const std::string&>());
      }
      return *a == *b;
    }
  }
  if (existing.is_object() && item.is_object()) {
    return WithoutPrimary(existing) == WithoutPrimary(item);
  }
  return existing == item;
}

// A hash consistent with SameElement(): elements it calls the same hash
// alike (the converse need not hold; candidates are confirmed with
// SameElement). It lets a PATCH that adds or removes n values in a list of m
// run in O(n + m) instead of comparing every pair.
void HashCombine(std::size_t& h, std::size_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
}

// Structural, as nlohmann's operator== compares: numbers by value whatever
// their representation; an object's "primary" members left out when
// `skip_primary`. Recursion is bounded by the JSON's depth (max_json_depth).
std::size_t StructuralHash(const json& v, bool skip_primary) {
  std::size_t h = static_cast<std::size_t>(v.is_number() ? json::value_t::number_float : v.type());
  switch (v.type()) {
    case json::value_t::null:
    case json::value_t::discarded:
      break;
    case json::value_t::boolean:
      HashCombine(h, v.get<bool>() ? 1 : 2);
      break;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: {
      double d = v.get<double>();
      if (d == 0) d = 0;  // -0.0 == 0.0
      HashCombine(h, std::hash<double>()(d));
      break;
    }
    case json::value_t::string:
      HashCombine(h, std::hash<std::string>()(v.get_ref<const std::string&>()));
      break;
    case json::value_t::binary:
      HashCombine(h, v.get_binary().size());
      break;
    case json::value_t::array:
      for (const json& e : v) HashCombine(h, StructuralHash(e, false));
      break;
    case json::value_t::object:
      for (auto it = v.begin(); it != v.end(); ++it) {
        if (skip_primary && EqualsIgnoreCase(it.key(), "primary")) continue;
        HashCombine(h, std::hash<std::string>()(it.key()));
        HashCombine(h, StructuralHash(it.value(), false));
      }
      break;
  }
  return h;
}

std::size_t ElementHash(const json& e, bool by_value) {
  if (by_value && e.is_object()) {
    if (const json* v = FindMember(e, "value")) {
      // Compared case-insensitively unless the schema says caseExact: the
      // folded form hashes both alike.
      if (v->is_string())
        return std::hash<std::string>()(AsciiLower(v->get_ref<const std::string&>()));
      return StructuralHash(*v, false) ^ 0x5bd1e995;
    }
  }
  return StructuralHash(e, /*skip_primary=*/true);
}

// Elements of a list by ElementHash, each standing for the first element of
// the list SameElement() calls the same (later equal ones are not kept).
class ElementIndex {
 public:
  ElementIndex(const Slot& s, bool by_value) : s_(s), by_value_(by_value) {}

  // The index of the first element kept that is the same as `e`, or -1.
  std::ptrdiff_t Find(const json& list, const json& e) const {
    auto [lo, hi] = map_.equal_range(ElementHash(e, by_value_));
    for (auto it = lo; it != hi; ++it) {
      if (SameElement(list[it->second], e, s_, by_value_))
        return static_cast<std::ptrdiff_t>(it->second);
    }
    return -1;
  }

  // Adds list[i] unless an element already kept is the same.
  void Add(const json& list, std::size_t i) {
    if (Find(list, list[i]) < 0) map_.emplace(ElementHash(list[i], by_value_), i);
  }

 private:
  const Slot& s_;
  const bool by_value_;
  std::unordered_multimap<std::size_t, std::size_t> map_;
};

bool IsPrimary(const json& e) {
  const json* p = FindMember(e, "primary");
  return p != nullptr && p->is_boolean() && p->get<bool>();
}

// Sets the primary flag of `e`, under the key it already has.
void SetPrimary(json& e, bool primary) {
  if (std::optional<std::string> key = FindKey(e, "primary")) {
    e[*key] = primary;
  } else {
    e["primary"] = primary;
  }
}

// RFC 7643 2.4: at most one value of a multi-valued attribute is primary;
// the one just written wins.
void KeepOnlyPrimary(json& arr, size_t keep) {
  for (size_t i = 0; i < arr.size(); ++i) {
    if (i != keep && IsPrimary(arr[i])) *FindMember(arr[i], "primary") = false;
  }
}

// The values of a list that are primary, so that each write keeps at most
// one (KeepOnlyPrimary) without scanning the whole list: a PATCH writing n
// values of a list of m costs O(n + m), not O(n * m).
class PrimaryFlags {
 public:
  explicit PrimaryFlags(json& arr) : arr_(arr) {
    for (size_t i = 0; i < arr_.size(); ++i) {
      if (IsPrimary(arr_[i])) primary_.insert(i);
    }
  }

  // To call after arr[i] was written or appended (and nothing else): when it
  // is primary, every other value loses the flag, as KeepOnlyPrimary(arr, i).
  void Written(size_t i) {
    if (!IsPrimary(arr_[i])) {
      primary_.erase(i);
      return;
    }
    for (size_t p : primary_) {
      if (p != i) *FindMember(arr_[p], "primary") = false;
    }
    primary_.clear();
    primary_.insert(i);
  }

 private:
  json& arr_;
  std::unordered_set<size_t> primary_;
};

json LiteralToJson(const Literal& lit) {
  switch (lit.kind) {
    case Literal::Kind::kString:
      return lit.text;
    case Literal::Kind::kNumber:
      return json::parse(lit.text, nullptr, /*allow_exceptions=*/false);
    case Literal::Kind::kBool:
      return lit.boolean;
    case Literal::Kind::kNull:
      return nullptr;
  }
  return nullptr;
}

void AddSchemaUrn(json& root, const std::string& urn) {
  json* schemas = FindMember(root, "schemas");
  if (schemas == nullptr || !schemas->is_array()) return;
  for (const json& s : *schemas) {
    if (s.is_string() && EqualsIgnoreCase(s.get_ref<const std::string&>(), urn)) return;
  }
  schemas->push_back(urn);
}

void DropSchemaUrn(json& root, const std::string& urn) {
  json* schemas = FindMember(root, "schemas");
  if (schemas == nullptr || !schemas->is_array()) return;
  for (size_t i = schemas->size(); i-- > 0;) {
    const json& s = (*schemas)[i];
    if (s.is_string() && EqualsIgnoreCase(s.get_ref<const std::string&>(), urn)) {
      schemas->erase(i);
    }
  }
}

class Applier {
 public:
  Applier(json& root, ResourceType type, const PatchOptions& options)
      : root_(root), type_(type), options_(options) {}

  Status Apply(const PatchOperation& op) {
    const AttrPath& p = op.path;
    if (p.schema == SchemaId::kCore) {
      if (EqualsIgnoreCase(p.attr, "id")) {
        // Okta's group rename repeats the id in a path-less replace.
        const json* id = FindMember(root_, "id");
        if (op.from_pathless && op.kind != PatchOpKind::kRemove && p.sub.empty() && id != nullptr &&
            *id == op.value) {
          return Status::Ok();
        }
        return ScimError(ScimType::kMutability, "'id' is read-only");
      }
      if (EqualsIgnoreCase(p.attr, "meta")) {
        return ScimError(ScimType::kMutability, "'meta' is read-only");
      }
      if (type_ == ResourceType::kUser && EqualsIgnoreCase(p.attr, "groups")) {
        return ScimError(ScimType::kMutability,
                         "'groups' is read-only; change the Group's members instead");
      }
      if (type_ == ResourceType::kUser && EqualsIgnoreCase(p.attr, "password")) {
        return Status::Ok();  // dropped on arrival: idsync never stores a password
      }
    }

    Slot slot;
    if (p.schema != SchemaId::kCore && p.attr.empty()) {
      // The whole extension object, e.g. path "urn:...:enterprise:2.0:User".
      slot = Slot{&root_, p.urn, p.schema, "", nullptr};
      if (op.kind == PatchOpKind::kRemove) {
        Erase(slot);
        DropSchemaUrn(root_, p.urn);
        return Status::Ok();
      }
      if (!op.value.is_object() && !op.value.is_null()) {
        return ScimError(ScimType::kInvalidValue, "'" + p.urn + "' takes an object");
      }
      AddSchemaUrn(root_, p.urn);
      return Write(slot, op.value, op.kind);
    }
    if (p.schema != SchemaId::kCore) {
      json* ext = FindMember(root_, p.urn);
      if (ext == nullptr || ext->is_null()) {
        if (op.kind == PatchOpKind::kRemove) return Status::Ok();
        ext = &root_[p.urn];
        *ext = json::object();
        AddSchemaUrn(root_, p.urn);
      }
      if (!ext->is_object()) {
        return ScimError(ScimType::kInvalidPath, "'" + p.urn + "' is not an object");
      }
      slot = Slot{ext, p.attr, p.schema, p.attr, FindAttr(p.schema, p.attr)};
    } else {
      slot = Slot{&root_, p.attr, SchemaId::kCore, p.attr, FindAttr(SchemaId::kCore, p.attr)};
    }

    if (p.filter != nullptr) return ApplyFiltered(slot, op);
    if (!p.sub.empty()) return ApplySub(slot, op);
    if (op.kind == PatchOpKind::kRemove) return Remove(slot, op);
    return Write(slot, op.value, op.kind);
  }

 private:
  // add or replace `input` at `s`. A null input unassigns. A complex value
  // merges sub-attribute by sub-attribute (RFC 7644 3.5.2.1 and 3.5.2.3);
  // a multi-valued one appends (add) or replaces the list (replace).
  Status Write(const Slot& s, const json& input, PatchOpKind mode) {
    if (input.is_null()) {
      Erase(s);
      return Status::Ok();
    }
    json* existing = Find(s);
    if (IsMulti(s, existing, input)) return WriteMulti(s, input, mode);
    if (input.is_object() && IsComplex(s, existing)) {
      json& target = Create(s);
      if (!target.is_object()) target = json::object();
      for (auto it = input.begin(); it != input.end(); ++it) {
        RETURN_IF_ERROR(Write(ChildSlot(target, s, it.key()), it.value(), mode));
      }
      return Status::Ok();
    }
    json v = input;
    RETURN_IF_ERROR(CoerceAttribute(s.schema, s.info, v));
    Create(s) = std::move(v);
    return Status::Ok();
  }

  Status WriteMulti(const Slot& s, const json& input, PatchOpKind mode) {
    json items = input.is_array() ? input : json::array({input});
    RETURN_IF_ERROR(CoerceAttribute(s.schema, s.info, items));
    json& target = Create(s);
    if (mode == PatchOpKind::kReplace || !target.is_array()) target = json::array();
    std::vector<json> lists;
    lists.push_back(std::move(items));
    AddValues(s, target, lists);
    return Status::Ok();
  }

  // Adds the values of each of `lists` (coerced arrays), in order, to the
  // list `target` at `s`.
  void AddValues(const Slot& s, json& target, std::vector<json>& lists) {
    const bool by_value = IdentifiedByValue(s);
    ElementIndex index(s, by_value);
    for (std::size_t i = 0; i < target.size(); ++i) index.Add(target, i);
    PrimaryFlags primary(target);
    for (json& items : lists) {
      for (json& item : items) {
        // A value already there (primary aside: it is a flag on the value,
        // RFC 7643 2.4) is not added again; a primary flag sent with it
        // moves to it.
        std::ptrdiff_t found = index.Find(target, item);
        const json* flag = item.is_object() ? FindMember(item, "primary") : nullptr;
        std::size_t at;
        if (found < 0) {
          at = target.size();
          target.push_back(std::move(item));
          index.Add(target, at);
        } else {
          at = static_cast<std::size_t>(found);
          if (flag != nullptr && flag->is_boolean() && target[at].is_object()) {
            SetPrimary(target[at], flag->get<bool>());
          }
        }
        primary.Written(at);
      }
    }
  }

 public:
  // Applies a run of operations on a Group's members that identity
  // providers send many of in one request, in one pass over the list rather
  // than one per operation: removes through `members[value eq "…"]` (Okta
  // sends one per member), or adds to `members`. The outcome is the one
  // applying them in turn gives. Returns how many operations from `first` it
  // applied; 0 when ops[first] starts no such run (apply it alone). On error
  // `*failed` is the failing operation.
  size_t ApplyMemberRun(const std::vector<PatchOperation>& ops, size_t first, Status* error,
                        const PatchOperation** failed) {
    if (type_ != ResourceType::kGroup) return 0;
    if (IsMemberValueRemove(ops[first])) return RemoveMemberRun(ops, first);
    if (IsMemberAdd(ops[first])) return AddMemberRun(ops, first, error, failed);
    return 0;
  }

 private:
  static bool IsMembersPath(const AttrPath& p) {
    return p.schema == SchemaId::kCore && EqualsIgnoreCase(p.attr, "members") && p.sub.empty();
  }

  // remove with path members[value eq "…"] (a string).
  static bool IsMemberValueRemove(const PatchOperation& op) {
    if (op.kind != PatchOpKind::kRemove || !IsMembersPath(op.path) || op.path.filter == nullptr) {
      return false;
    }
    const FilterNode& f = *op.path.filter;
    return f.kind == FilterNode::Kind::kCompare && f.op == CompareOp::kEq && f.path.urn.empty() &&
           f.path.filter == nullptr && f.path.sub.empty() &&
           EqualsIgnoreCase(f.path.attr, "value") && f.value.kind == Literal::Kind::kString;
  }

  // add with path members and a value.
  static bool IsMemberAdd(const PatchOperation& op) {
    return op.kind == PatchOpKind::kAdd && IsMembersPath(op.path) && op.path.filter == nullptr &&
           op.has_value && !op.value.is_null();
  }

  Slot MembersSlot(const AttrPath& p) {
    return Slot{&root_, p.attr, SchemaId::kCore, p.attr, FindAttr(SchemaId::kCore, p.attr)};
  }

  size_t RemoveMemberRun(const std::vector<PatchOperation>& ops, size_t first) {
    const AttrInfo* info = ops[first].path.filter->info;
    size_t end = first;
    while (end < ops.size() && IsMemberValueRemove(ops[end]) &&
           ops[end].path.filter->info == info) {
      ++end;
    }
    const Slot s = MembersSlot(ops[first].path);
    json* arr = Find(s);
    if (arr == nullptr || arr->is_null()) return end - first;  // nothing to remove
    if (!arr->is_array()) return 0;                            // refused by the operation itself
    // The filter compares strings case-insensitively unless the schema says
    // caseExact (filter.h): the same keys here.
    const bool exact = info != nullptr && info->case_exact;
    std::unordered_set<std::string> values;
    for (size_t i = first; i < end; ++i) {
      const std::string& v = ops[i].path.filter->value.text;
      values.insert(exact ? v : AsciiLower(v));
    }
    auto matches = [&](const json& e) {
      if (!e.is_object()) return false;
      const json* v = FindMember(e, "value");
      if (v == nullptr || v->is_null()) return false;
      if (v->is_string()) {
        const std::string& text = v->get_ref<const std::string&>();
        return values.count(exact ? text : AsciiLower(text)) != 0;
      }
      for (size_t i = first; i < end; ++i) {
        if (EvaluateFilter(*ops[i].path.filter, e)) return true;
      }
      return false;
    };
    json kept = json::array();
    for (json& e : *arr) {
      if (!matches(e)) kept.push_back(std::move(e));
    }
    *arr = std::move(kept);
    if (arr->empty()) Erase(s);
    return end - first;
  }

  size_t AddMemberRun(const std::vector<PatchOperation>& ops, size_t first, Status* error,
                      const PatchOperation** failed) {
    size_t end = first;
    while (end < ops.size() && IsMemberAdd(ops[end])) ++end;
    const Slot s = MembersSlot(ops[first].path);
    std::vector<json> lists;
    for (size_t i = first; i < end; ++i) {
      json items = ops[i].value.is_array() ? ops[i].value : json::array({ops[i].value});
      if (Status c = CoerceAttribute(s.schema, s.info, items); !c.ok()) {
        *error = c;
        *failed = &ops[i];
        return end - first;
      }
      lists.push_back(std::move(items));
    }
    json& target = Create(s);
    if (!target.is_array()) target = json::array();
    AddValues(s, target, lists);
    return end - first;
  }

 private:
  Status Remove(const Slot& s, const PatchOperation& op) {
    json* existing = Find(s);
    if (existing == nullptr) return Status::Ok();
    if (op.has_value && !op.value.is_null() && existing->is_array()) {
      // Entra removes members by listing them in "value".
      json items = op.value.is_array() ? op.value : json::array({op.value});
      RETURN_IF_ERROR(CoerceAttribute(s.schema, s.info, items));
      if (!items.is_array()) items = json::array({items});
      ElementIndex index(s, /*by_value=*/true);
      for (std::size_t i = 0; i < items.size(); ++i) index.Add(items, i);
      json kept = json::array();
      for (json& e : *existing) {
        if (index.Find(items, e) < 0) kept.push_back(std::move(e));
      }
      *existing = std::move(kept);
      if (existing->empty()) Erase(s);
      return Status::Ok();
    }
    Erase(s);
    return Status::Ok();
  }

  Status ApplySub(const Slot& s, const PatchOperation& op) {
    const std::string& sub = op.path.sub;
    if (s.info != nullptr && s.info->type != AttrType::kComplex) {
      return ScimError(ScimType::kInvalidPath, "'" + s.dotted + "' has no sub-attributes");
    }
    json* parent = Find(s);
    if (op.kind == PatchOpKind::kRemove) {
      if (parent == nullptr || parent->is_null()) return Status::Ok();
      if (parent->is_object()) {
        EraseMember(*parent, sub);
        if (parent->empty()) Erase(s);
        return Status::Ok();
      }
      if (parent->is_array()) {
        for (json& e : *parent) EraseMember(e, sub);
        return Status::Ok();
      }
      return ScimError(ScimType::kInvalidPath, "'" + s.dotted + "' has no sub-attributes");
    }
    if (parent == nullptr || parent->is_null()) {
      if (IsMulti(s, nullptr, json())) {
        return ScimError(ScimType::kNoTarget, "'" + s.dotted + "' has no values");
      }
      parent = &Create(s);
      *parent = json::object();
    }
    if (parent->is_object()) return Write(ChildSlot(*parent, s, sub), op.value, op.kind);
    if (parent->is_array()) {
      std::vector<bool> was_primary;
      bool any = false;
      for (json& e : *parent) {
        was_primary.push_back(IsPrimary(e));
        if (!e.is_object()) continue;
        RETURN_IF_ERROR(Write(ChildSlot(e, s, sub), op.value, op.kind));
        any = true;
      }
      if (!any) return ScimError(ScimType::kNoTarget, "'" + s.dotted + "' has no values");
      // emails.primary = true writes every value: of those it made primary,
      // the last keeps the flag (RFC 7643 2.4: one primary value).
      for (size_t i = parent->size(); i-- > 0;) {
        if (IsPrimary((*parent)[i]) && !was_primary[i]) {
          KeepOnlyPrimary(*parent, i);
          break;
        }
      }
      return Status::Ok();
    }
    return ScimError(ScimType::kInvalidPath, "'" + s.dotted + "' has no sub-attributes");
  }

  // Builds the element an add through a value filter creates when nothing
  // matches: emails[type eq "work"] gives {"type": "work"}.
  Status ElementFromFilter(const FilterNode& n, const Slot& s, json& e) {
    if (n.kind == FilterNode::Kind::kAnd) {
      for (const std::unique_ptr<FilterNode>& c : n.children) {
        RETURN_IF_ERROR(ElementFromFilter(*c, s, e));
      }
      return Status::Ok();
    }
    if (n.kind == FilterNode::Kind::kCompare && n.op == CompareOp::kEq && n.path.urn.empty() &&
        n.path.filter == nullptr && n.path.sub.empty() && n.value.kind != Literal::Kind::kNull) {
      json v = LiteralToJson(n.value);
      if (const json* have = FindMember(e, n.path.attr)) {
        if (*have != v) {
          return ScimError(ScimType::kNoTarget,
                           "the filter on '" + s.dotted + "' cannot be satisfied");
        }
        return Status::Ok();
      }
      return Write(ChildSlot(e, s, n.path.attr), v, PatchOpKind::kAdd);
    }
    return ScimError(ScimType::kNoTarget,
                     "no value of '" + s.dotted +
                         "' matches the filter, and only eq terms joined by and can create one");
  }

  // A User's emails, where a created value could take over the address.
  bool IsUserEmails(const Slot& s) const {
    return type_ == ResourceType::kUser && s.schema == SchemaId::kCore &&
           EqualsIgnoreCase(s.dotted, "emails");
  }

  // An add or replace through a value filter that matches nothing: the new
  // element is what the filter's eq terms say, with the operation's value
  // written into it (the sub-attribute, or every key of an object value).
  Status CreateFromFilter(const Slot& s, const PatchOperation& op) {
    // Unassigning what is not there is already the state asked for.
    if (op.value.is_null()) return Status::Ok();
    const std::string& sub = op.path.sub;
    json e = json::object();
    RETURN_IF_ERROR(ElementFromFilter(*op.path.filter, s, e));
    if (!sub.empty()) {
      RETURN_IF_ERROR(Write(ChildSlot(e, s, sub), op.value, PatchOpKind::kAdd));
    } else {
      for (auto it = op.value.begin(); it != op.value.end(); ++it) {
        RETURN_IF_ERROR(Write(ChildSlot(e, s, it.key()), it.value(), PatchOpKind::kAdd));
      }
    }
    json& target = Create(s);
    if (!target.is_array()) target = json::array();
    const int identity_before = IsUserEmails(s) ? IdentityEmailIndex(target) : -1;
    target.push_back(std::move(e));
    const size_t added = target.size() - 1;
    if (IsPrimary(target[added])) {
      KeepOnlyPrimary(target, added);
    } else if (identity_before >= 0 && IdentityEmailIndex(target) == static_cast<int>(added)) {
      // A new work address on a user whose address was a non-primary other
      // one: the user keeps the address it had (docs/scim-compatibility.md).
      const size_t keep_at = static_cast<size_t>(identity_before);
      SetPrimary(target[keep_at], true);
      KeepOnlyPrimary(target, keep_at);
    }
    return Status::Ok();
  }

  Status ApplyFiltered(const Slot& s, const PatchOperation& op) {
    const std::string& sub = op.path.sub;
    json* arr = Find(s);
    if ((s.info != nullptr && !s.info->multi_valued) ||
        (arr != nullptr && !arr->is_null() && !arr->is_array())) {
      return ScimError(ScimType::kInvalidPath, "'" + s.dotted + "' is not multi-valued");
    }
    std::vector<size_t> hits;
    if (arr != nullptr && arr->is_array()) {
      for (size_t i = 0; i < arr->size(); ++i) {
        const json& e = (*arr)[i];
        if (e.is_object() && EvaluateFilter(*op.path.filter, e)) hits.push_back(i);
      }
    }
    switch (op.kind) {
      case PatchOpKind::kRemove:
        // Nothing matching is already the state asked for: retries and
        // removals of members deleted meanwhile succeed.
        if (hits.empty()) return Status::Ok();
        if (!sub.empty()) {
          for (size_t i : hits) EraseMember((*arr)[i], sub);
          return Status::Ok();
        }
        {
          // One pass: erasing hit by hit is quadratic in a long list.
          json kept = json::array();
          size_t next_hit = 0;
          for (size_t i = 0; i < arr->size(); ++i) {
            if (next_hit < hits.size() && hits[next_hit] == i) {
              ++next_hit;
            } else {
              kept.push_back(std::move((*arr)[i]));
            }
          }
          *arr = std::move(kept);
        }
        if (arr->empty()) Erase(s);
        return Status::Ok();
      case PatchOpKind::kReplace:
        if (sub.empty() && !op.value.is_object()) {
          return ScimError(ScimType::kInvalidValue,
                           "a value of '" + s.dotted + "' must be an object");
        }
        if (hits.empty()) {
          if (options_.strict) {
            return ScimError(ScimType::kNoTarget,
                             "no value of '" + s.dotted +
                                 "' matches the filter (strict_patch: nothing is created)");
          }
          return CreateFromFilter(s, op);
        }
        {
          PrimaryFlags primary(*arr);
          for (size_t i : hits) {
            json& e = (*arr)[i];
            if (!sub.empty()) {
              RETURN_IF_ERROR(Write(ChildSlot(e, s, sub), op.value, PatchOpKind::kReplace));
            } else {
              json v = op.value;
              RETURN_IF_ERROR(CoerceElement(s.schema, s.info, v));
              e = std::move(v);
            }
            primary.Written(i);
          }
        }
        return Status::Ok();
      case PatchOpKind::kAdd:
        if (sub.empty() && !op.value.is_object()) {
          return ScimError(ScimType::kInvalidValue,
                           "a value of '" + s.dotted + "' must be an object");
        }
        // Entra adds emails[type eq "work"].value to a user without one.
        if (hits.empty()) return CreateFromFilter(s, op);
        {
          PrimaryFlags primary(*arr);
          for (size_t i : hits) {
            json& e = (*arr)[i];
            if (!sub.empty()) {
              RETURN_IF_ERROR(Write(ChildSlot(e, s, sub), op.value, PatchOpKind::kAdd));
            } else {
              for (auto it = op.value.begin(); it != op.value.end(); ++it) {
                RETURN_IF_ERROR(Write(ChildSlot(e, s, it.key()), it.value(), PatchOpKind::kAdd));
              }
            }
            primary.Written(i);
          }
        }
        return Status::Ok();
    }
    return Status::Ok();
  }

  json& root_;
  ResourceType type_;
  const PatchOptions& options_;
};

Result<PatchOpKind> ParseOpName(const json& op) {
  const json* name = FindMember(op, "op");
  if (name == nullptr || !name->is_string()) {
    return ScimError(ScimType::kInvalidSyntax, "'op' must be a string");
  }
  const std::string& s = name->get_ref<const std::string&>();
  if (EqualsIgnoreCase(s, "add")) return PatchOpKind::kAdd;
  if (EqualsIgnoreCase(s, "replace")) return PatchOpKind::kReplace;
  if (EqualsIgnoreCase(s, "remove")) return PatchOpKind::kRemove;
  return ScimError(ScimType::kInvalidSyntax, "unknown op '" + s + "'");
}

Status ParseOperation(const json& op, size_t index, std::vector<PatchOperation>& out) {
  if (!op.is_object()) return ScimError(ScimType::kInvalidSyntax, "not an object");
  ASSIGN_OR_RETURN(PatchOpKind kind, ParseOpName(op));
  const json* path = FindMember(op, "path");
  const json* value = FindMember(op, "value");
  if (path != nullptr && !path->is_null() && !path->is_string()) {
    return ScimError(ScimType::kInvalidPath, "'path' must be a string");
  }
  const bool has_path =
      path != nullptr && path->is_string() &&
      path->get_ref<const std::string&>().find_first_not_of(" \t") != std::string::npos;
  if (kind != PatchOpKind::kRemove && value == nullptr) {
    return ScimError(ScimType::kInvalidValue, "'value' is required");
  }
  if (has_path) {
    PatchOperation parsed;
    parsed.kind = kind;
    ASSIGN_OR_RETURN(parsed.path, ParsePatchPath(path->get_ref<const std::string&>()));
    parsed.has_value = value != nullptr;
    if (value != nullptr) parsed.value = *value;
    parsed.index = index;
    out.push_back(std::move(parsed));
    return Status::Ok();
  }
  if (kind == PatchOpKind::kRemove) {
    return ScimError(ScimType::kNoTarget, "remove needs a path");
  }
  if (!value->is_object()) {
    return ScimError(ScimType::kInvalidValue, "without a path, 'value' must be an object");
  }
  // Each key is an attribute path: "active", "name.givenName",
  // "urn:...:enterprise:2.0:User:department" (Entra) or "id" (Okta).
  for (auto it = value->begin(); it != value->end(); ++it) {
    if (EqualsIgnoreCase(it.key(), "schemas")) continue;
    PatchOperation parsed;
    parsed.kind = kind;
    Result<AttrPath> key_path = ParsePatchPath(it.key());
    if (!key_path.ok()) {
      const ScimType type = ScimTypeOf(key_path.status());
      return ScimError(
          type == ScimType::kNone ? ScimType::kInvalidPath : type,
          "value key '" + it.key() + "': " + std::string(ScimErrorDetail(key_path.status())));
    }
    parsed.path = std::move(key_path).value();
    parsed.has_value = true;
    parsed.value = it.value();
    parsed.from_pathless = true;
    parsed.index = index;
    out.push_back(std::move(parsed));
  }
  return Status::Ok();
}

}  // namespace

Patch::Patch(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
Patch::Patch(Patch&&) noexcept = default;
Patch& Patch::operator=(Patch&&) noexcept = default;
Patch::~Patch() = default;

Result<Patch> Patch::Parse(const Json& body_json, int* failed_operation) {
  const json& body = JsonAccess::Get(body_json);
  if (!body.is_object()) {
    return ScimError(ScimType::kInvalidSyntax, "a PATCH body must be a JSON object");
  }
  if (const json* schemas = FindMember(body, "schemas")) {
    bool found = false;
    if (schemas->is_array()) {
      for (const json& s : *schemas) {
        found = found || (s.is_string() &&
                          EqualsIgnoreCase(s.get_ref<const std::string&>(), kPatchOpSchema));
      }
    }
    if (!found) {
      return ScimError(ScimType::kInvalidSyntax,
                       "'schemas' must list " + std::string(kPatchOpSchema));
    }
  }
  const json* ops = FindMember(body, "Operations");
  if (ops == nullptr || !ops->is_array() || ops->empty()) {
    return ScimError(ScimType::kInvalidSyntax, "'Operations' must be a non-empty array");
  }
  auto rep = std::make_unique<Rep>();
  for (size_t i = 0; i < ops->size(); ++i) {
    Status s = ParseOperation((*ops)[i], i, rep->ops);
    if (!s.ok()) {
      if (failed_operation != nullptr) *failed_operation = static_cast<int>(i);
      return InOperation(i, s);
    }
  }
  for (const PatchOperation& op : rep->ops) {
    rep->values += op.has_value && op.value.is_array() ? op.value.size() : 1;
  }
  return Patch(std::move(rep));
}

size_t Patch::values() const { return rep_->values; }

Result<bool> Patch::ApplyTo(Json& resource, ResourceType type, const PatchOptions& options,
                            int* failed_operation) const {
  json& original = JsonAccess::Get(resource);
  if (!original.is_object()) {
    return ScimError(ScimType::kInvalidSyntax, "a resource must be a JSON object");
  }
  json work = original;
  Applier applier(work, type, options);
  const std::vector<PatchOperation>& ops = rep_->ops;
  for (size_t i = 0; i < ops.size();) {
    Status s;
    const PatchOperation* failed = &ops[i];
    const size_t run = applier.ApplyMemberRun(ops, i, &s, &failed);
    if (run == 0) {
      s = applier.Apply(ops[i]);
      ++i;
    } else {
      i += run;
    }
    if (!s.ok()) {
      if (failed_operation != nullptr) *failed_operation = static_cast<int>(failed->index);
      return InOperation(failed->index, s);
    }
  }
  RETURN_IF_ERROR(NormalizeJson(work, type));
  if (work == original) return false;
  original = std::move(work);
  return true;
}

}  // namespace idsync::scim
