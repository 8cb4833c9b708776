// SCIM filter parsing (recursive descent over RFC 7644 figure 1) and
// evaluation against nlohmann::json resources. Parser and evaluator share the
// private expression tree and its attribute-path rules, so they stay in one
// file (~750 lines), in the order of the grammar.
#include "idsync/scim/filter.h"

#include <charconv>
#include <string>
#include <utility>
#include <vector>

#include "idsync/base/json_text.h"
#include "idsync/scim/errors.h"

#include "ast.h"
#include "datetime.h"
#include "json_internal.h"
#include "json_util.h"
#include "text.h"

namespace idsync::scim {
namespace {

using NodePtr = std::unique_ptr<FilterNode>;
using nlohmann::json;

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsNameChar(char c) { return IsAlpha(c) || IsDigit(c) || c == '-' || c == '_'; }
bool IsPathChar(char c) { return IsNameChar(c) || c == ':' || c == '.' || c == '$'; }
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// ATTRNAME = ALPHA *(nameChar); sub-attributes may also be "$ref".
bool IsAttrName(std::string_view s, bool allow_ref) {
  if (allow_ref && s == "$ref") return true;
  if (s.empty() || !IsAlpha(s[0])) return false;
  for (char c : s) {
    if (!IsNameChar(c)) return false;
  }
  return true;
}

// A JSON number (RFC 8259 section 6).
bool IsJsonNumber(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && s[i] == '-') ++i;
  if (i >= s.size()) return false;
  if (s[i] == '0') {
    ++i;
  } else if (IsDigit(s[i])) {
    while (i < s.size() && IsDigit(s[i])) ++i;
  } else {
    return false;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (i >= s.size() || !IsDigit(s[i])) return false;
    while (i < s.size() && IsDigit(s[i])) ++i;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (i >= s.size() || !IsDigit(s[i])) return false;
    while (i < s.size() && IsDigit(s[i])) ++i;
  }
  return i == s.size();
}

std::optional<double> ToDouble(std::string_view s) {
  if (!IsJsonNumber(s)) return std::nullopt;
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

void AppendUtf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool IsOrdering(CompareOp op) {
  return op == CompareOp::kGt || op == CompareOp::kGe || op == CompareOp::kLt ||
         op == CompareOp::kLe;
}

std::string_view OpName(CompareOp op) {
  switch (op) {
    case CompareOp::kEq:
      return "eq";
    case CompareOp::kNe:
      return "ne";
    case CompareOp::kCo:
      return "co";
    case CompareOp::kSw:
      return "sw";
    case CompareOp::kEw:
      return "ew";
    case CompareOp::kGt:
      return "gt";
    case CompareOp::kGe:
      return "ge";
    case CompareOp::kLt:
      return "lt";
    case CompareOp::kLe:
      return "le";
    case CompareOp::kPr:
      return "pr";
  }
  return "";
}

std::optional<CompareOp> OpFromName(std::string_view name) {
  static constexpr CompareOp kOps[] = {
      CompareOp::kEq, CompareOp::kNe, CompareOp::kCo, CompareOp::kSw, CompareOp::kEw,
      CompareOp::kGt, CompareOp::kGe, CompareOp::kLt, CompareOp::kLe, CompareOp::kPr};
  for (CompareOp op : kOps) {
    if (EqualsIgnoreCase(name, OpName(op))) return op;
  }
  return std::nullopt;
}

// Where a path is resolved: the resource (schema kCore, no parent), or the
// elements of a multi-valued attribute inside a value filter.
struct Scope {
  SchemaId schema = SchemaId::kCore;
  std::string parent;
};

// Facts of the value a comparison on `path` looks at.
const AttrInfo* LeafInfo(const AttrPath& path, const Scope& scope) {
  const SchemaId schema = path.urn.empty() ? scope.schema : path.schema;
  std::string dotted = scope.parent.empty() ? path.attr : scope.parent + "." + path.attr;
  if (!path.sub.empty()) dotted += "." + path.sub;
  const AttrInfo* info = FindAttr(schema, dotted);
  if (info != nullptr && info->type == AttrType::kComplex) {
    info = FindAttr(schema, dotted + ".value");
  }
  return info;
}

class Parser {
 public:
  Parser(std::string_view text, ScimType outer_error) : s_(text), outer_error_(outer_error) {}

  Result<NodePtr> WholeFilter() {
    SkipSpaces();
    if (AtEnd()) return Fail("empty filter");
    ASSIGN_OR_RETURN(NodePtr node, ParseOr());
    SkipSpaces();
    if (!AtEnd()) return Fail("unexpected '" + std::string(1, s_[pos_]) + "'");
    return node;
  }

  // True when the last failure was a limit (comparisons, nesting) rather
  // than the grammar.
  bool limit_hit() const { return limit_hit_; }

  Result<AttrPath> WholePatchPath() {
    SkipSpaces();
    if (AtEnd()) return Fail("empty path");
    ASSIGN_OR_RETURN(AttrPath path, ParseAttrPath(/*allow_bare_urn=*/true));
    SkipSpaces();
    if (!AtEnd()) return Fail("unexpected '" + std::string(1, s_[pos_]) + "'");
    return path;
  }

 private:
  bool AtEnd() const { return pos_ >= s_.size(); }
  char Peek() const { return AtEnd() ? '\0' : s_[pos_]; }

  // Skips whitespace; true when there was some.
  bool SkipSpaces() {
    const size_t start = pos_;
    while (!AtEnd() && IsSpace(s_[pos_])) ++pos_;
    return pos_ > start;
  }

  // `word` at the cursor as a whole word, any case.
  bool AtKeyword(std::string_view word) const {
    if (s_.size() - pos_ < word.size()) return false;
    if (!EqualsIgnoreCase(s_.substr(pos_, word.size()), word)) return false;
    const size_t end = pos_ + word.size();
    return end == s_.size() || !IsPathChar(s_[end]);
  }

  Status Fail(const std::string& what) const { return FailAt(pos_, what); }
  Status FailAt(size_t at, const std::string& what) const {
    // Inside brackets the problem is the filter, even in a PATCH path.
    return ScimError(in_brackets_ ? ScimType::kInvalidFilter : outer_error_,
                     what + " at offset " + std::to_string(at));
  }

  // or binds loosest, then and, then not; a keyword needs space before it.
  Result<NodePtr> ParseOr() { return ParseChain("or", FilterNode::Kind::kOr); }
  Result<NodePtr> ParseAnd() { return ParseChain("and", FilterNode::Kind::kAnd); }

  // A chain of operands joined by `keyword` becomes one node with every
  // operand as a child: however long the chain, it adds one level to the
  // tree (a left-deep tree of 100,000 "or"s would be walked recursively).
  Result<NodePtr> ParseChain(std::string_view keyword, FilterNode::Kind kind) {
    auto next = [this, kind]() {
      return kind == FilterNode::Kind::kOr ? ParseAnd() : ParseUnary();
    };
    ASSIGN_OR_RETURN(NodePtr first, next());
    std::vector<NodePtr> operands;
    operands.push_back(std::move(first));
    while (true) {
      const size_t save = pos_;
      if (!SkipSpaces() || !AtKeyword(keyword)) {
        pos_ = save;
        break;
      }
      pos_ += keyword.size();
      if (!SkipSpaces() && Peek() != '(') {
        return Fail("expected a filter after '" + std::string(keyword) + "'");
      }
      ASSIGN_OR_RETURN(NodePtr operand, next());
      operands.push_back(std::move(operand));
    }
    if (operands.size() == 1) return std::move(operands.front());
    auto node = std::make_unique<FilterNode>();
    node->kind = kind;
    node->children = std::move(operands);
    return node;
  }

  Result<NodePtr> ParseUnary() {
    if (depth_ > kMaxFilterDepth) {
      limit_hit_ = true;
      return Fail("filter nests deeper than " + std::to_string(kMaxFilterDepth) +
                  " levels (the limit)");
    }
    ++depth_;
    Result<NodePtr> result = ParseUnaryInner();
    --depth_;
    return result;
  }

  Result<NodePtr> ParseUnaryInner() {
    if (AtKeyword("not")) {
      // "not" is the operator only when a parenthesised filter follows;
      // otherwise it is an attribute that happens to be called "not".
      const size_t save = pos_;
      pos_ += 3;
      SkipSpaces();
      if (Peek() == '(') {
        ASSIGN_OR_RETURN(NodePtr inner, ParseGroup());
        auto node = std::make_unique<FilterNode>();
        node->kind = FilterNode::Kind::kNot;
        node->children.push_back(std::move(inner));
        return node;
      }
      pos_ = save;
    }
    if (Peek() == '(') return ParseGroup();
    return ParseAttrExp();
  }

  Result<NodePtr> ParseGroup() {
    ++pos_;  // '('
    SkipSpaces();
    ASSIGN_OR_RETURN(NodePtr inner, ParseOr());
    SkipSpaces();
    if (Peek() != ')') return Fail("expected ')'");
    ++pos_;
    return inner;
  }

  Result<NodePtr> ParseAttrExp() {
    const size_t expression_start = pos_;
    ASSIGN_OR_RETURN(AttrPath path, ParseAttrPath(/*allow_bare_urn=*/false));
    auto node = std::make_unique<FilterNode>();
    if (path.filter != nullptr && path.sub.empty()) {
      // emails[type eq "work"] alone: true when an element matches.
      const size_t save = pos_;
      SkipSpaces();
      const bool alone =
          AtEnd() || Peek() == ')' || Peek() == ']' || AtKeyword("and") || AtKeyword("or");
      pos_ = save;
      if (alone) {
        node->kind = FilterNode::Kind::kValuePath;
        node->path = std::move(path);
        return node;
      }
    }
    if (!SkipSpaces()) return Fail("expected an operator after '" + path.text + "'");
    if (++comparisons_ > kMaxFilterComparisons) {
      limit_hit_ = true;
      return FailAt(expression_start, "filter has more than " +
                                          std::to_string(kMaxFilterComparisons) +
                                          " comparisons (the limit)");
    }
    const size_t op_start = pos_;
    while (!AtEnd() && IsPathChar(s_[pos_])) ++pos_;
    const std::string_view op_text = s_.substr(op_start, pos_ - op_start);
    if (op_text.empty()) return FailAt(op_start, "expected an operator");
    std::optional<CompareOp> op = OpFromName(op_text);
    if (!op) return FailAt(op_start, "unknown operator '" + std::string(op_text) + "'");
    node->kind = FilterNode::Kind::kCompare;
    node->op = *op;
    node->info = LeafInfo(path, scope_);
    if (*op != CompareOp::kPr) {
      if (!SkipSpaces()) return Fail("expected a value after '" + std::string(op_text) + "'");
      const size_t value_start = pos_;
      ASSIGN_OR_RETURN(node->value, ParseLiteral());
      if (node->value.kind == Literal::Kind::kNull && *op != CompareOp::kEq &&
          *op != CompareOp::kNe) {
        return FailAt(value_start, "null can only be compared with eq or ne");
      }
      const bool boolean_attr = node->info != nullptr && node->info->type == AttrType::kBoolean;
      if (boolean_attr && *op != CompareOp::kEq && *op != CompareOp::kNe) {
        return FailAt(op_start, "'" + std::string(op_text) + "' does not apply to boolean '" +
                                    path.text + "'");
      }
    }
    node->path = std::move(path);
    return node;
  }

  Result<AttrPath> ParseAttrPath(bool allow_bare_urn) {
    const size_t start = pos_;
    while (!AtEnd() && IsPathChar(s_[pos_])) ++pos_;
    const std::string_view token = s_.substr(start, pos_ - start);
    if (token.empty()) return FailAt(start, "expected an attribute name");
    AttrPath path;
    std::string_view rest = token;
    if (StartsWithIgnoreCase(token, "urn:")) {
      std::string_view known = KnownUrnPrefix(token);
      size_t split;
      if (!known.empty()) {
        split = known.size();
      } else {
        // An extension idsync has no table for: its attribute is after the
        // last colon (attribute names hold none).
        split = token.rfind(':');
      }
      path.urn = CanonicalUrn(token.substr(0, split));
      path.schema = ClassifyUrn(path.urn);
      rest = split < token.size() ? token.substr(split + 1) : std::string_view();
      if (rest.empty() && !(allow_bare_urn && !known.empty() && split == token.size())) {
        return FailAt(start, "expected an attribute name after the schema URN");
      }
    }
    const size_t dot = rest.find('.');
    path.attr = std::string(rest.substr(0, dot));
    if (dot != std::string_view::npos) path.sub = std::string(rest.substr(dot + 1));
    if (!path.attr.empty() && !IsAttrName(path.attr, false)) {
      return FailAt(start, "malformed attribute name '" + std::string(token) + "'");
    }
    if (dot != std::string_view::npos && !IsAttrName(path.sub, true)) {
      return FailAt(start, "malformed sub-attribute in '" + std::string(token) + "'");
    }
    if (Peek() == '[') {
      if (in_brackets_) return Fail("value filters cannot nest");
      if (path.attr.empty() || !path.sub.empty()) {
        return Fail("a value filter must follow an attribute name");
      }
      ++pos_;
      in_brackets_ = true;
      Scope outer = std::move(scope_);
      scope_ = Scope{path.urn.empty() ? outer.schema : path.schema, path.attr};
      SkipSpaces();
      if (Peek() == ']') return Fail("empty value filter");
      ASSIGN_OR_RETURN(path.filter, ParseOr());
      SkipSpaces();
      if (Peek() != ']') return Fail("expected ']'");
      ++pos_;
      in_brackets_ = false;
      scope_ = std::move(outer);
      if (Peek() == '.') {
        ++pos_;
        const size_t sub_start = pos_;
        while (!AtEnd() && (IsNameChar(s_[pos_]) || s_[pos_] == '$')) ++pos_;
        path.sub = std::string(s_.substr(sub_start, pos_ - sub_start));
        if (!IsAttrName(path.sub, true)) return FailAt(sub_start, "expected a sub-attribute");
      }
    }
    path.text = std::string(s_.substr(start, pos_ - start));
    return path;
  }

  Result<Literal> ParseLiteral() {
    if (Peek() == '"') return ParseString();
    // An unquoted value: true, false, null, a number, or (leniently, as
    // Entra's test suite and some IdPs send) a string without spaces.
    const size_t start = pos_;
    while (!AtEnd() && !IsSpace(s_[pos_]) && s_[pos_] != ')' && s_[pos_] != ']') ++pos_;
    const std::string_view token = s_.substr(start, pos_ - start);
    if (token.empty()) return FailAt(start, "expected a value");
    if (token.find_first_of("\"([") != std::string_view::npos) {
      return FailAt(start, "malformed value '" + std::string(token) + "'");
    }
    Literal lit;
    lit.text = std::string(token);
    if (EqualsIgnoreCase(token, "true") || EqualsIgnoreCase(token, "false")) {
      lit.kind = Literal::Kind::kBool;
      lit.boolean = EqualsIgnoreCase(token, "true");
    } else if (EqualsIgnoreCase(token, "null")) {
      lit.kind = Literal::Kind::kNull;
    } else if (std::optional<double> n = ToDouble(token)) {
      lit.kind = Literal::Kind::kNumber;
      lit.number = *n;
    } else {
      lit.kind = Literal::Kind::kString;
    }
    return lit;
  }

  Result<uint32_t> ParseHex4() {
    if (s_.size() - pos_ < 4) return Fail("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_++];
      v <<= 4;
      if (IsDigit(c)) {
        v |= c - '0';
      } else if (c >= 'a' && c <= 'f') {
        v |= c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        v |= c - 'A' + 10;
      } else {
        return FailAt(pos_ - 1, "bad hex digit in \\u escape");
      }
    }
    return v;
  }

  Result<Literal> ParseString() {
    const size_t start = pos_++;
    Literal lit;
    lit.kind = Literal::Kind::kString;
    lit.quoted = true;
    while (true) {
      if (AtEnd()) return FailAt(start, "unterminated string");
      const char c = s_[pos_++];
      if (c == '"') break;
      if (static_cast<unsigned char>(c) < 0x20) {
        return FailAt(pos_ - 1, "control character in string");
      }
      if (c != '\\') {
        lit.text += c;
        continue;
      }
      if (AtEnd()) return FailAt(start, "unterminated string");
      const char e = s_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          lit.text += e;
          break;
        case 'b':
          lit.text += '\b';
          break;
        case 'f':
          lit.text += '\f';
          break;
        case 'n':
          lit.text += '\n';
          break;
        case 'r':
          lit.text += '\r';
          break;
        case 't':
          lit.text += '\t';
          break;
        case 'u': {
          ASSIGN_OR_RETURN(uint32_t cp, ParseHex4());
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (s_.substr(pos_, 2) != "\\u") return Fail("unpaired surrogate");
            pos_ += 2;
            ASSIGN_OR_RETURN(uint32_t low, ParseHex4());
            if (low < 0xDC00 || low > 0xDFFF) return Fail("unpaired surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return Fail("unpaired surrogate");
          }
          AppendUtf8(cp, lit.text);
          break;
        }
        default:
          return FailAt(pos_ - 2, "bad escape '\\" + std::string(1, e) + "'");
      }
    }
    return lit;
  }

  std::string_view s_;
  size_t pos_ = 0;
  int depth_ = 0;
  int comparisons_ = 0;  // attribute comparisons so far, value filters included
  bool limit_hit_ = false;
  bool in_brackets_ = false;
  Scope scope_;
  ScimType outer_error_;
};

// ---------------------------------------------------------------------------
// Evaluation

// The values `path` selects in `base`, multi-valued attributes flattened.
void CollectValues(const AttrPath& path, const json& base, std::vector<const json*>& out) {
  const json* container = &base;
  if (!path.urn.empty() && path.schema != SchemaId::kCore) {
    container = FindMember(base, path.urn);
    if (container == nullptr) return;
  }
  const json* value = FindMember(*container, path.attr);
  if (value == nullptr || value->is_null()) return;
  std::vector<const json*> elements;
  if (value->is_array()) {
    for (const json& e : *value) elements.push_back(&e);
  } else {
    elements.push_back(value);
  }
  if (path.filter != nullptr) {
    std::erase_if(elements, [&path](const json* e) {
      return !e->is_object() || !EvaluateFilter(*path.filter, *e);
    });
  }
  if (path.sub.empty()) {
    out.insert(out.end(), elements.begin(), elements.end());
    return;
  }
  for (const json* e : elements) {
    const json* sub = FindMember(*e, path.sub);
    if (sub == nullptr) continue;
    if (sub->is_array()) {
      for (const json& s : *sub) out.push_back(&s);
    } else {
      out.push_back(sub);
    }
  }
}

// RFC 7644 3.4.2.2 "pr": a non-empty value, or a non-empty complex node.
bool Present(const json& v) {
  if (v.is_null()) return false;
  if (v.is_string()) return !v.get_ref<const std::string&>().empty();
  if (v.is_array() || v.is_object()) return !v.empty();
  return true;
}

bool Ordered(CompareOp op, std::strong_ordering c) {
  switch (op) {
    case CompareOp::kEq:
      return c == 0;
    case CompareOp::kNe:
      return c != 0;
    case CompareOp::kGt:
      return c > 0;
    case CompareOp::kGe:
      return c >= 0;
    case CompareOp::kLt:
      return c < 0;
    case CompareOp::kLe:
      return c <= 0;
    default:
      return false;
  }
}

bool CompareString(const std::string& a, CompareOp op, const Literal& lit, const AttrInfo* info) {
  const std::string& b = lit.text;
  const bool date_attr = info != nullptr && info->type == AttrType::kDateTime;
  if (date_attr || IsOrdering(op)) {
    std::optional<Instant> da = ParseDateTime(a);
    std::optional<Instant> db = ParseDateTime(b);
    if (da && db && op != CompareOp::kCo && op != CompareOp::kSw && op != CompareOp::kEw) {
      return Ordered(op, *da <=> *db);
    }
  }
  const bool exact = info != nullptr && info->case_exact;
  const std::string x = exact ? a : AsciiLower(a);
  const std::string y = exact ? b : AsciiLower(b);
  switch (op) {
    case CompareOp::kCo:
      return x.find(y) != std::string::npos;
    case CompareOp::kSw:
      return x.starts_with(y);
    case CompareOp::kEw:
      return x.ends_with(y);
    default:
      return Ordered(op, x.compare(y) <=> 0);
  }
}

bool CompareOne(const json& v, CompareOp op, const Literal& lit, const AttrInfo* info) {
  if (v.is_string()) return CompareString(v.get_ref<const std::string&>(), op, lit, info);
  if (v.is_boolean()) {
    std::optional<bool> b;
    if (lit.kind == Literal::Kind::kBool) {
      b = lit.boolean;
    } else if (lit.kind == Literal::Kind::kString &&
               (EqualsIgnoreCase(lit.text, "true") || EqualsIgnoreCase(lit.text, "false"))) {
      b = EqualsIgnoreCase(lit.text, "true");
    }
    if (!b) return false;
    if (op == CompareOp::kEq) return v.get<bool>() == *b;
    if (op == CompareOp::kNe) return v.get<bool>() != *b;
    return false;
  }
  if (v.is_number()) {
    std::optional<double> b;
    if (lit.kind == Literal::Kind::kNumber) {
      b = lit.number;
    } else if (lit.kind == Literal::Kind::kString) {
      b = ToDouble(lit.text);
    }
    if (!b || op == CompareOp::kCo || op == CompareOp::kSw || op == CompareOp::kEw) return false;
    const double a = v.get<double>();
    if (a == *b) return Ordered(op, std::strong_ordering::equal);
    return Ordered(op, a < *b ? std::strong_ordering::less : std::strong_ordering::greater);
  }
  return false;
}

bool EvaluateCompare(const FilterNode& node, const json& base) {
  std::vector<const json*> found;
  CollectValues(node.path, base, found);
  if (node.op == CompareOp::kPr) {
    for (const json* v : found) {
      if (Present(*v)) return true;
    }
    return false;
  }
  // A complex value compared as a whole is compared by its "value".
  std::vector<const json*> values;
  for (const json* v : found) {
    if (v->is_object()) v = FindMember(*v, "value");
    if (v != nullptr && !v->is_null()) values.push_back(v);
  }
  if (node.value.kind == Literal::Kind::kNull) {
    return node.op == CompareOp::kEq ? values.empty() : !values.empty();
  }
  if (node.op == CompareOp::kNe) {
    if (values.empty()) return true;
    for (const json* v : values) {
      if (!CompareOne(*v, CompareOp::kEq, node.value, node.info)) return true;
    }
    return false;
  }
  for (const json* v : values) {
    if (CompareOne(*v, node.op, node.value, node.info)) return true;
  }
  return false;
}

std::string PathToString(const AttrPath& path) {
  std::string out;
  if (!path.urn.empty()) out += path.urn + ":";
  out += path.attr;
  if (path.filter != nullptr) out += "[" + FilterToString(*path.filter) + "]";
  if (!path.sub.empty()) out += "." + path.sub;
  return out;
}

}  // namespace

// Text over kMaxFilterBytes is refused. Its first kMaxFilterBytes are still
// read, so that the limit reported is the first one met reading from the
// left: a chain of 120,001 comparisons breaks the comparison limit long
// before the length limit.
Result<std::unique_ptr<FilterNode>> ParseFilterText(std::string_view text) {
  if (text.size() <= kMaxFilterBytes) return Parser(text, ScimType::kInvalidFilter).WholeFilter();
  Parser prefix(text.substr(0, kMaxFilterBytes), ScimType::kInvalidFilter);
  Result<std::unique_ptr<FilterNode>> r = prefix.WholeFilter();
  if (!r.ok() && prefix.limit_hit()) return r.status();
  return ScimError(
      ScimType::kInvalidFilter,
      "filter is longer than " + std::to_string(kMaxFilterBytes) + " bytes (the limit)");
}

Result<AttrPath> ParsePatchPath(std::string_view text) {
  if (text.size() <= kMaxFilterBytes) return Parser(text, ScimType::kInvalidPath).WholePatchPath();
  Parser prefix(text.substr(0, kMaxFilterBytes), ScimType::kInvalidPath);
  Result<AttrPath> r = prefix.WholePatchPath();
  if (!r.ok() && prefix.limit_hit()) return r.status();
  return ScimError(ScimType::kInvalidPath,
                   "path is longer than " + std::to_string(kMaxFilterBytes) + " bytes (the limit)");
}

bool EvaluateFilter(const FilterNode& node, const json& base) {
  switch (node.kind) {
    // Recursion follows the tree, which is as deep as the filter's nesting
    // (kMaxFilterDepth), not as long as its chains.
    case FilterNode::Kind::kAnd:
      for (const NodePtr& c : node.children) {
        if (!EvaluateFilter(*c, base)) return false;
      }
      return true;
    case FilterNode::Kind::kOr:
      for (const NodePtr& c : node.children) {
        if (EvaluateFilter(*c, base)) return true;
      }
      return false;
    case FilterNode::Kind::kNot:
      return !EvaluateFilter(*node.children.front(), base);
    case FilterNode::Kind::kCompare:
      return EvaluateCompare(node, base);
    case FilterNode::Kind::kValuePath: {
      std::vector<const json*> found;
      CollectValues(node.path, base, found);
      return !found.empty();
    }
  }
  return false;
}

std::string FilterToString(const FilterNode& node) {
  switch (node.kind) {
    case FilterNode::Kind::kAnd:
    case FilterNode::Kind::kOr: {
      // One pair of parentheses around the whole chain: "a or b or c" is
      // "(a or b or c)". (Nested pairs, one per operator, would print a
      // chain of 33 as a filter nested past the limit, which would not parse
      // again; found by fuzz/scim_filter_fuzzer.cc.)
      const std::string op = node.kind == FilterNode::Kind::kAnd ? " and " : " or ";
      std::string out = "(" + FilterToString(*node.children.front());
      for (size_t i = 1; i < node.children.size(); ++i) {
        out += op + FilterToString(*node.children[i]);
      }
      return out + ")";
    }
    case FilterNode::Kind::kNot:
      return "not (" + FilterToString(*node.children.front()) + ")";
    case FilterNode::Kind::kValuePath:
      return PathToString(node.path);
    case FilterNode::Kind::kCompare: {
      std::string out = PathToString(node.path) + " " + std::string(OpName(node.op));
      if (node.op == CompareOp::kPr) return out;
      switch (node.value.kind) {
        case Literal::Kind::kString:
          return out + " " + base::JsonQuote(node.value.text);
        case Literal::Kind::kNumber:
          return out + " " + node.value.text;
        case Literal::Kind::kBool:
          return out + (node.value.boolean ? " true" : " false");
        case Literal::Kind::kNull:
          return out + " null";
      }
      return out;
    }
  }
  return "";
}

// ---------------------------------------------------------------------------
// Filter

Filter::Filter(std::unique_ptr<FilterNode> root) : root_(std::move(root)) {}
Filter::Filter(Filter&&) noexcept = default;
Filter& Filter::operator=(Filter&&) noexcept = default;
Filter::~Filter() = default;

Result<Filter> Filter::Parse(std::string_view text) {
  ASSIGN_OR_RETURN(std::unique_ptr<FilterNode> root, ParseFilterText(text));
  return Filter(std::move(root));
}

bool Filter::Matches(const Json& resource) const {
  return EvaluateFilter(*root_, JsonAccess::Get(resource));
}

std::optional<IndexedEquality> Filter::AsIndexedEquality() const {
  const FilterNode& n = *root_;
  if (n.kind != FilterNode::Kind::kCompare || n.op != CompareOp::kEq ||
      n.value.kind == Literal::Kind::kNull || n.path.schema != SchemaId::kCore ||
      n.path.filter != nullptr || !n.path.sub.empty()) {
    return std::nullopt;
  }
  for (std::string_view attr : {"id", "userName", "externalId", "displayName"}) {
    if (EqualsIgnoreCase(n.path.attr, attr)) {
      const AttrInfo* info = FindAttr(SchemaId::kCore, attr);
      return IndexedEquality{std::string(attr), n.value.text, info->case_exact};
    }
  }
  return std::nullopt;
}

std::string Filter::ToString() const { return FilterToString(*root_); }

}  // namespace idsync::scim
