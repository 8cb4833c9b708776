// RFC 4515 LDAP filters (~840 lines): the parser, the printer and the
// evaluator over one private syntax tree (Node), with the matching rules
// (equality, ordering, substrings, bit-and/or, DN matching) the evaluator
// needs. The tree is private to this file, so the three stay together.

#include "idsync/filter/filter.h"

#include <cstdint>
#include <limits>
#include <optional>

#include "idsync/base/ascii.h"

namespace idsync::filter {

enum class NodeKind {
  kAnd,
  kOr,
  kNot,
  kEquality,
  kApprox,
  kGreaterOrEqual,
  kLessOrEqual,
  kPresent,
  kSubstrings,
  kExtensible,
};

// Matching rules idsync evaluates in memory. Anything else is kUnknown and
// evaluates to Undefined.
enum class Rule {
  kDefault,  // no rule given: the attribute's equality (directory string)
  kCaseIgnore,
  kCaseExact,
  kBitAnd,
  kBitOr,
  kUnknown,
};

struct Node {
  NodeKind kind = NodeKind::kPresent;
  std::vector<std::unique_ptr<Node>> children;  // and, or, not

  // Items. `attribute` is the description as written (options included);
  // `attribute_base` is the part before ';', which is what evaluation uses.
  std::string attribute;
  std::string attribute_base;
  std::string value;  // decoded assertion value

  // Substrings, decoded. `initial`/`final` are absent when the filter starts
  // or ends with '*'.
  std::optional<std::string> initial;
  std::vector<std::string> any;
  std::optional<std::string> final;

  // Extensible match.
  bool dn_attributes = false;
  std::string rule_text;  // as written, "" when absent
  Rule rule = Rule::kDefault;

  // Prepared at parse time so evaluation of many entries does not redo it.
  std::string folded;                   // value for case-insensitive compares
  std::string exact;                    // value with spaces normalized, case kept
  std::optional<std::int64_t> integer;  // value as an integer, when it is one
  std::optional<std::string> initial_folded;
  std::vector<std::string> any_folded;
  std::optional<std::string> final_folded;
};

namespace {

// Three-valued results of RFC 4511: Undefined arises from rules idsync cannot
// evaluate and propagates through not; only the top level turns it to false.
enum class Tri { kFalse, kTrue, kUndefined };

constexpr int kMaxDepth = 128;

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsKeyChar(char c) { return IsAlpha(c) || IsDigit(c) || c == '-' || c == '_'; }
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

using base::AsciiLower;
using base::EqualsIgnoreCase;

// The attribute type of a description: options (";binary", ";range=0-1499")
// do not change which attribute is meant.
std::string_view BaseName(std::string_view description) {
  std::size_t semi = description.find(';');
  return semi == std::string_view::npos ? description : description.substr(0, semi);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Directory-string insignificant space handling: leading and trailing spaces
// dropped, inner runs of spaces collapsed to one. `trim_front`/`trim_back`
// let substring pieces keep the spaces that separate them from neighbours.
std::string NormalizeSpaces(std::string_view in, bool fold, bool trim_front = true,
                            bool trim_back = true) {
  std::string out;
  out.reserve(in.size());
  bool pending_space = false;
  for (char c : in) {
    if (c == ' ') {
      pending_space = true;
      continue;
    }
    if (pending_space && (!out.empty() || !trim_front)) out.push_back(' ');
    pending_space = false;
    out.push_back(fold ? AsciiLower(c) : c);
  }
  if (pending_space && !trim_back && (!out.empty() || !trim_front)) out.push_back(' ');
  return out;
}

std::string Fold(std::string_view in) { return NormalizeSpaces(in, /*fold=*/true); }

// An optional sign and decimal digits, surrounding spaces allowed. Values out
// of int64 range are not integers for our purposes.
std::optional<std::int64_t> ParseInteger(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  bool negative = false;
  if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
    negative = text.front() == '-';
    text.remove_prefix(1);
  }
  if (text.empty()) return std::nullopt;
  // Accumulate as a negative number so INT64_MIN parses.
  std::int64_t acc = 0;
  constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
  for (char c : text) {
    if (!IsDigit(c)) return std::nullopt;
    int d = c - '0';
    if (acc < (kMin + d) / 10) return std::nullopt;
    acc = acc * 10 - d;
  }
  if (!negative) {
    if (acc == kMin) return std::nullopt;
    return -acc;
  }
  return acc;
}

// Active Directory stores 32-bit flag attributes as signed numbers
// (groupType -2147483646), while filters may write the same bits unsigned
// (2147483650). Values that fit in 32 bits are compared as their 32-bit
// pattern so both spellings mean the same bits.
std::uint64_t Bits(std::int64_t v) {
  if (v >= std::numeric_limits<std::int32_t>::min() &&
      v <= static_cast<std::int64_t>(std::numeric_limits<std::uint32_t>::max())) {
    return static_cast<std::uint32_t>(v);
  }
  return static_cast<std::uint64_t>(v);
}

Rule RuleFromText(std::string_view text) {
  if (text.empty()) return Rule::kDefault;
  if (text == "1.2.840.113556.1.4.803") return Rule::kBitAnd;
  if (text == "1.2.840.113556.1.4.804") return Rule::kBitOr;
  if (text == "2.5.13.2" || EqualsIgnoreCase(text, "caseIgnoreMatch")) return Rule::kCaseIgnore;
  if (text == "2.5.13.5" || EqualsIgnoreCase(text, "caseExactMatch")) return Rule::kCaseExact;
  return Rule::kUnknown;
}

void Prepare(Node& node) {
  switch (node.kind) {
    case NodeKind::kEquality:
    case NodeKind::kApprox:
    case NodeKind::kGreaterOrEqual:
    case NodeKind::kLessOrEqual:
    case NodeKind::kExtensible:
      node.folded = Fold(node.value);
      node.exact = NormalizeSpaces(node.value, /*fold=*/false);
      node.integer = ParseInteger(node.value);
      break;
    case NodeKind::kSubstrings:
      // A piece keeps the spaces on the sides where it touches a wildcard:
      // "(cn=John *)" must not match "Johnny".
      if (node.initial) {
        node.initial_folded = NormalizeSpaces(*node.initial, true, /*trim_front=*/true,
                                              /*trim_back=*/false);
      }
      for (const std::string& a : node.any) {
        node.any_folded.push_back(NormalizeSpaces(a, true, false, false));
      }
      if (node.final) {
        node.final_folded = NormalizeSpaces(*node.final, true, /*trim_front=*/false,
                                            /*trim_back=*/true);
      }
      break;
    default:
      break;
  }
}

// ---------------------------------------------------------------------------
// Parsing

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Result<std::unique_ptr<Node>> ParseTop() {
    SkipSpaces();
    if (AtEnd()) return Error("empty filter");
    std::unique_ptr<Node> root;
    if (Peek() == '(') {
      ASSIGN_OR_RETURN(root, ParseFilter(0));
    } else {
      // A single item may be written without its parentheses: "mail=*".
      bare_ = true;
      ASSIGN_OR_RETURN(root, ParseItem());
    }
    SkipSpaces();
    if (!AtEnd()) return Error("unexpected text after the filter");
    return root;
  }

 private:
  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return text_[pos_]; }

  void SkipSpaces() {
    while (!AtEnd() && IsSpace(Peek())) ++pos_;
  }

  Status Error(std::string_view what) const { return ErrorAt(pos_, what); }
  Status ErrorAt(std::size_t offset, std::string_view what) const {
    return InvalidArgumentError("invalid LDAP filter at offset " + std::to_string(offset) + ": " +
                                std::string(what));
  }

  // filter = "(" filtercomp ")"
  Result<std::unique_ptr<Node>> ParseFilter(int depth) {
    if (depth > kMaxDepth) return Error("filter nested too deeply");
    if (AtEnd() || Peek() != '(') return Error("expected '('");
    ++pos_;
    if (AtEnd()) return Error("unexpected end of filter");
    std::unique_ptr<Node> node;
    char c = Peek();
    if (c == '&' || c == '|') {
      ++pos_;
      node = std::make_unique<Node>();
      node->kind = c == '&' ? NodeKind::kAnd : NodeKind::kOr;
      // Whitespace between the filters of a list is tolerated: people write
      // long filters over several lines in YAML.
      SkipSpaces();
      if (AtEnd() || Peek() != '(') return Error("expected '(' to start a filter of the list");
      while (!AtEnd() && Peek() == '(') {
        ASSIGN_OR_RETURN(std::unique_ptr<Node> child, ParseFilter(depth + 1));
        node->children.push_back(std::move(child));
        SkipSpaces();
      }
    } else if (c == '!') {
      ++pos_;
      node = std::make_unique<Node>();
      node->kind = NodeKind::kNot;
      SkipSpaces();
      ASSIGN_OR_RETURN(std::unique_ptr<Node> child, ParseFilter(depth + 1));
      node->children.push_back(std::move(child));
      SkipSpaces();
    } else {
      ASSIGN_OR_RETURN(node, ParseItem());
    }
    if (AtEnd()) return Error("expected ')'");
    if (Peek() != ')') return Error("expected ')'");
    ++pos_;
    return node;
  }

  // attributedescription = (descr / numericoid) *(";" option). Returns the
  // text as written.
  Result<std::string> ParseAttributeDescription() {
    std::size_t start = pos_;
    if (AtEnd()) return Error("expected an attribute description");
    if (IsAlpha(Peek())) {
      while (!AtEnd() && IsKeyChar(Peek())) ++pos_;
    } else if (IsDigit(Peek())) {
      RETURN_IF_ERROR(ParseNumericOid());
    } else {
      return Error("expected an attribute description");
    }
    while (!AtEnd() && Peek() == ';') {
      ++pos_;
      std::size_t option_start = pos_;
      // Options are keychars, but Active Directory's "range=0-1499" also
      // uses '='. It is taken as part of the option only when a filter type
      // follows the range, so "(member;range=5)" still reads as an equality.
      while (!AtEnd() && IsKeyChar(Peek())) ++pos_;
      if (pos_ == option_start) return Error("empty attribute option");
      if (!AtEnd() && Peek() == '=' &&
          EqualsIgnoreCase(text_.substr(option_start, pos_ - option_start), "range")) {
        std::size_t p = pos_ + 1;
        while (p < text_.size() && (IsDigit(text_[p]) || text_[p] == '-' || text_[p] == '*')) ++p;
        if (p > pos_ + 1 && p < text_.size() &&
            std::string_view("=~<>:").find(text_[p]) != std::string_view::npos) {
          pos_ = p;
        }
      }
    }
    return std::string(text_.substr(start, pos_ - start));
  }

  // numericoid = number 1*("." number), number = "0" / non-zero digits.
  Status ParseNumericOid() {
    int parts = 0;
    while (true) {
      if (AtEnd() || !IsDigit(Peek())) return Error("expected a digit in the OID");
      if (Peek() == '0' && pos_ + 1 < text_.size() && IsDigit(text_[pos_ + 1])) {
        return Error("leading zero in an OID number");
      }
      while (!AtEnd() && IsDigit(Peek())) ++pos_;
      ++parts;
      if (AtEnd() || Peek() != '.') break;
      ++pos_;
    }
    if (parts < 2) return Error("an OID needs at least two numbers");
    return Status::Ok();
  }

  // oid = descr / numericoid (a matching rule).
  Result<std::string> ParseOid() {
    std::size_t start = pos_;
    if (AtEnd()) return Error("expected a matching rule");
    if (IsAlpha(Peek())) {
      while (!AtEnd() && IsKeyChar(Peek())) ++pos_;
    } else if (IsDigit(Peek())) {
      RETURN_IF_ERROR(ParseNumericOid());
    } else {
      return Error("expected a matching rule");
    }
    return std::string(text_.substr(start, pos_ - start));
  }

  // One value up to an unescaped '*', ')' or the end; `\XX` decoded.
  // Stops before '*' so substrings can split on it.
  Result<std::string> ParseValue() {
    std::string out;
    while (!AtEnd()) {
      char c = Peek();
      if (c == ')' || c == '*') break;
      if (c == '(') return Error("unescaped '(' in a value (write \\28)");
      if (c == '\0') return Error("NUL in a value (write \\00)");
      if (c == '\\') {
        if (pos_ + 2 >= text_.size()) return Error("incomplete escape: '\\' needs two hex digits");
        int hi = HexValue(text_[pos_ + 1]);
        int lo = HexValue(text_[pos_ + 2]);
        if (hi < 0 || lo < 0) return Error("invalid escape: '\\' needs two hex digits");
        out.push_back(static_cast<char>(hi * 16 + lo));
        pos_ += 3;
        continue;
      }
      if (bare_ && IsSpace(c)) {
        // Without parentheses, trailing whitespace belongs around the filter,
        // not in the value.
        std::size_t p = pos_;
        while (p < text_.size() && IsSpace(text_[p])) ++p;
        if (p == text_.size()) break;
      }
      out.push_back(c);
      ++pos_;
    }
    return out;
  }

  // item = simple / present / substring / extensible
  Result<std::unique_ptr<Node>> ParseItem() {
    auto node = std::make_unique<Node>();
    if (!AtEnd() && Peek() == ':') {
      // ":dn:rule:=value" or ":rule:=value": no attribute.
      return ParseExtensible(std::move(node));
    }
    ASSIGN_OR_RETURN(node->attribute, ParseAttributeDescription());
    node->attribute_base = std::string(BaseName(node->attribute));
    if (AtEnd()) return Error("expected a filter type ('=', '~=', '>=', '<=' or ':')");
    char c = Peek();
    if (c == ':') return ParseExtensible(std::move(node));
    if (c == '~' || c == '>' || c == '<') {
      ++pos_;
      if (AtEnd() || Peek() != '=') return Error("expected '='");
      ++pos_;
      node->kind = c == '~'   ? NodeKind::kApprox
                   : c == '>' ? NodeKind::kGreaterOrEqual
                              : NodeKind::kLessOrEqual;
      ASSIGN_OR_RETURN(node->value, ParseValue());
      if (!AtEnd() && Peek() == '*') return Error("'*' is not allowed in this value (write \\2a)");
      Prepare(*node);
      return node;
    }
    if (c != '=') return Error("expected a filter type ('=', '~=', '>=', '<=' or ':')");
    ++pos_;
    // equality, presence or substrings: split on unescaped '*'.
    std::vector<std::string> pieces;
    std::vector<std::size_t> piece_offsets;
    while (true) {
      piece_offsets.push_back(pos_);
      ASSIGN_OR_RETURN(std::string piece, ParseValue());
      pieces.push_back(std::move(piece));
      if (AtEnd() || Peek() != '*') break;
      ++pos_;
    }
    if (pieces.size() == 1) {
      node->kind = NodeKind::kEquality;
      node->value = std::move(pieces[0]);
    } else if (pieces.size() == 2 && pieces[0].empty() && pieces[1].empty()) {
      node->kind = NodeKind::kPresent;
    } else {
      node->kind = NodeKind::kSubstrings;
      for (std::size_t i = 1; i + 1 < pieces.size(); ++i) {
        if (pieces[i].empty()) return ErrorAt(piece_offsets[i], "empty substring between '*'s");
        node->any.push_back(std::move(pieces[i]));
      }
      if (!pieces.front().empty()) node->initial = std::move(pieces.front());
      if (!pieces.back().empty()) node->final = std::move(pieces.back());
    }
    Prepare(*node);
    return node;
  }

  // extensible = attr [":dn"] [":" rule] ":=" value
  //            / [":dn"] ":" rule ":=" value
  // `node->attribute` is set (or empty) and pos_ is at the first ':'.
  Result<std::unique_ptr<Node>> ParseExtensible(std::unique_ptr<Node> node) {
    node->kind = NodeKind::kExtensible;
    std::size_t start = pos_;
    // Each round reads ":" then either "=" (the end), "dn", or a rule.
    while (true) {
      if (AtEnd() || Peek() != ':') return Error("expected ':'");
      ++pos_;
      if (AtEnd()) return Error("unexpected end of filter");
      if (Peek() == '=') {
        ++pos_;
        break;
      }
      if (!node->rule_text.empty()) return Error("expected ':=' after the matching rule");
      ASSIGN_OR_RETURN(std::string word, ParseOid());
      if (EqualsIgnoreCase(word, "dn") && !node->dn_attributes && !AtEnd() && Peek() == ':') {
        // "dn" right after the attribute (or at the start) is the dnAttributes
        // flag; a rule literally named "dn" is not something we support.
        node->dn_attributes = true;
        continue;
      }
      node->rule_text = std::move(word);
    }
    if (node->attribute.empty() && node->rule_text.empty()) {
      return ErrorAt(start, "an extensible match without an attribute needs a matching rule");
    }
    node->rule = RuleFromText(node->rule_text);
    ASSIGN_OR_RETURN(node->value, ParseValue());
    if (!AtEnd() && Peek() == '*') return Error("'*' is not allowed in this value (write \\2a)");
    Prepare(*node);
    return node;
  }

  std::string_view text_;
  bool bare_ = false;  // parsing a single item written without parentheses
  std::size_t pos_ = 0;
};

// ---------------------------------------------------------------------------
// Printing

void AppendValue(std::string& out, std::string_view value) {
  static constexpr char kHex[] = "0123456789abcdef";
  auto escape = [&](unsigned char b) {
    out.push_back('\\');
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  };
  std::size_t i = 0;
  while (i < value.size()) {
    auto b = static_cast<unsigned char>(value[i]);
    if (b == 0 || b == '(' || b == ')' || b == '*' || b == '\\' || b < 0x20 || b == 0x7f) {
      escape(b);
      ++i;
      continue;
    }
    if (b < 0x80) {
      out.push_back(static_cast<char>(b));
      ++i;
      continue;
    }
    // Keep well-formed UTF-8 sequences readable; escape stray bytes so the
    // printed filter is valid UTF-8 text.
    std::size_t len = (b & 0xe0) == 0xc0 ? 2 : (b & 0xf0) == 0xe0 ? 3 : (b & 0xf8) == 0xf0 ? 4 : 0;
    bool ok = len != 0 && i + len <= value.size();
    for (std::size_t k = 1; ok && k < len; ++k) {
      ok = (static_cast<unsigned char>(value[i + k]) & 0xc0) == 0x80;
    }
    if (!ok) {
      escape(b);
      ++i;
      continue;
    }
    out.append(value.substr(i, len));
    i += len;
  }
}

void Print(const Node& node, std::string& out) {
  out.push_back('(');
  switch (node.kind) {
    case NodeKind::kAnd:
    case NodeKind::kOr:
    case NodeKind::kNot:
      out.push_back(node.kind == NodeKind::kAnd ? '&' : node.kind == NodeKind::kOr ? '|' : '!');
      for (const auto& child : node.children) Print(*child, out);
      break;
    case NodeKind::kEquality:
      out += node.attribute;
      out += '=';
      AppendValue(out, node.value);
      break;
    case NodeKind::kApprox:
      out += node.attribute;
      out += "~=";
      AppendValue(out, node.value);
      break;
    case NodeKind::kGreaterOrEqual:
      out += node.attribute;
      out += ">=";
      AppendValue(out, node.value);
      break;
    case NodeKind::kLessOrEqual:
      out += node.attribute;
      out += "<=";
      AppendValue(out, node.value);
      break;
    case NodeKind::kPresent:
      out += node.attribute;
      out += "=*";
      break;
    case NodeKind::kSubstrings:
      out += node.attribute;
      out += '=';
      if (node.initial) AppendValue(out, *node.initial);
      out += '*';
      for (const std::string& a : node.any) {
        AppendValue(out, a);
        out += '*';
      }
      if (node.final) AppendValue(out, *node.final);
      break;
    case NodeKind::kExtensible:
      out += node.attribute;
      if (node.dn_attributes) out += ":dn";
      if (!node.rule_text.empty()) {
        out += ':';
        out += node.rule_text;
      }
      out += ":=";
      AppendValue(out, node.value);
      break;
  }
  out.push_back(')');
}

// ---------------------------------------------------------------------------
// Evaluation

// Calls fn(values) for every attribute of `entry` whose type is `base`,
// whatever its options; stops when fn returns true.
template <typename Fn>
bool AnyAttribute(const Entry& entry, std::string_view base, Fn&& fn) {
  for (const auto& [name, values] : entry.attributes) {
    if (EqualsIgnoreCase(BaseName(name), base) && fn(values)) return true;
  }
  return false;
}

bool ValueEquals(const Node& node, std::string_view value) {
  if (node.integer) {
    if (std::optional<std::int64_t> v = ParseInteger(value)) return *v == *node.integer;
  }
  return Fold(value) == node.folded;
}

// Negative when value < assertion, 0 when equal, positive when greater.
int ValueCompare(const Node& node, std::string_view value) {
  if (node.integer) {
    if (std::optional<std::int64_t> v = ParseInteger(value)) {
      return *v < *node.integer ? -1 : *v > *node.integer ? 1 : 0;
    }
  }
  return Fold(value).compare(node.folded);
}

bool SubstringsMatch(const Node& node, std::string_view raw) {
  std::string value = Fold(raw);
  std::string_view rest = value;
  if (node.initial_folded) {
    if (!rest.starts_with(*node.initial_folded)) return false;
    rest.remove_prefix(node.initial_folded->size());
  }
  // The final piece is reserved at the end first, so an any-piece cannot
  // consume the characters it needs.
  if (node.final_folded) {
    if (rest.size() < node.final_folded->size() || !rest.ends_with(*node.final_folded)) {
      return false;
    }
    rest.remove_suffix(node.final_folded->size());
  }
  for (const std::string& piece : node.any_folded) {
    std::size_t at = rest.find(piece);
    if (at == std::string_view::npos) return false;
    rest.remove_prefix(at + piece.size());
  }
  return true;
}

// One value against an extensible match's rule. Undefined when the rule or
// the assertion cannot be evaluated.
Tri RuleMatches(const Node& node, std::string_view value) {
  switch (node.rule) {
    case Rule::kDefault:
      return ValueEquals(node, value) ? Tri::kTrue : Tri::kFalse;
    case Rule::kCaseIgnore:
      return Fold(value) == node.folded ? Tri::kTrue : Tri::kFalse;
    case Rule::kCaseExact:
      return NormalizeSpaces(value, /*fold=*/false) == node.exact ? Tri::kTrue : Tri::kFalse;
    case Rule::kBitAnd:
    case Rule::kBitOr: {
      if (!node.integer) return Tri::kUndefined;
      std::optional<std::int64_t> v = ParseInteger(value);
      if (!v) return Tri::kFalse;  // not an integer attribute value
      std::uint64_t n = Bits(*node.integer);
      std::uint64_t bits = Bits(*v);
      bool hit = node.rule == Rule::kBitAnd ? (bits & n) == n : (bits & n) != 0;
      return hit ? Tri::kTrue : Tri::kFalse;
    }
    case Rule::kUnknown:
      return Tri::kUndefined;
  }
  return Tri::kUndefined;
}

// The attribute type/value pairs of a DN's RDNs (RFC 4514), values unescaped.
// Used by ":dn:" matches; a DN we cannot split yields what was read so far.
std::vector<std::pair<std::string, std::string>> DnPairs(std::string_view dn) {
  std::vector<std::pair<std::string, std::string>> pairs;
  std::size_t i = 0;
  while (i < dn.size()) {
    while (i < dn.size() && dn[i] == ' ') ++i;
    std::size_t type_start = i;
    while (i < dn.size() && dn[i] != '=' && dn[i] != ',' && dn[i] != '+') ++i;
    if (i >= dn.size() || dn[i] != '=') break;
    std::string_view type = dn.substr(type_start, i - type_start);
    while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
    ++i;
    while (i < dn.size() && dn[i] == ' ') ++i;
    std::string value;
    while (i < dn.size() && dn[i] != ',' && dn[i] != '+' && dn[i] != ';') {
      if (dn[i] == '\\' && i + 1 < dn.size()) {
        int hi = HexValue(dn[i + 1]);
        int lo = i + 2 < dn.size() ? HexValue(dn[i + 2]) : -1;
        if (hi >= 0 && lo >= 0) {
          value.push_back(static_cast<char>(hi * 16 + lo));
          i += 3;
        } else {
          value.push_back(dn[i + 1]);
          i += 2;
        }
        continue;
      }
      value.push_back(dn[i]);
      ++i;
    }
    pairs.emplace_back(std::string(type), std::move(value));
    if (i < dn.size()) ++i;  // the separator
  }
  return pairs;
}

Tri Or(Tri a, Tri b) {
  if (a == Tri::kTrue || b == Tri::kTrue) return Tri::kTrue;
  if (a == Tri::kUndefined || b == Tri::kUndefined) return Tri::kUndefined;
  return Tri::kFalse;
}

Tri Extensible(const Node& node, const Entry& entry) {
  Tri result = Tri::kFalse;
  auto consider = [&](const std::vector<std::string>& values) {
    for (const std::string& v : values) {
      result = Or(result, RuleMatches(node, v));
      if (result == Tri::kTrue) return true;
    }
    return false;
  };
  if (node.attribute_base.empty()) {
    // No attribute: every attribute the rule applies to. The bit rules only
    // apply to integer values, which RuleMatches already checks.
    for (const auto& attribute : entry.attributes) {
      if (consider(attribute.second)) return Tri::kTrue;
    }
  } else if (AnyAttribute(entry, node.attribute_base, consider)) {
    return Tri::kTrue;
  }
  if (node.dn_attributes) {
    for (const auto& [type, value] : DnPairs(entry.dn)) {
      if (!node.attribute_base.empty() && !EqualsIgnoreCase(type, node.attribute_base)) continue;
      result = Or(result, RuleMatches(node, value));
      if (result == Tri::kTrue) return result;
    }
  }
  // An unknown rule is Undefined even when the entry lacks the attribute:
  // the filter cannot be evaluated, whatever the entry.
  if (node.rule == Rule::kUnknown) return Tri::kUndefined;
  if ((node.rule == Rule::kBitAnd || node.rule == Rule::kBitOr) && !node.integer) {
    return Tri::kUndefined;
  }
  return result;
}

Tri Evaluate(const Node& node, const Entry& entry) {
  switch (node.kind) {
    case NodeKind::kAnd: {
      Tri result = Tri::kTrue;
      for (const auto& child : node.children) {
        Tri t = Evaluate(*child, entry);
        if (t == Tri::kFalse) return Tri::kFalse;
        if (t == Tri::kUndefined) result = Tri::kUndefined;
      }
      return result;
    }
    case NodeKind::kOr: {
      Tri result = Tri::kFalse;
      for (const auto& child : node.children) {
        result = Or(result, Evaluate(*child, entry));
        if (result == Tri::kTrue) return result;
      }
      return result;
    }
    case NodeKind::kNot: {
      Tri t = Evaluate(*node.children.front(), entry);
      if (t == Tri::kUndefined) return t;
      return t == Tri::kTrue ? Tri::kFalse : Tri::kTrue;
    }
    case NodeKind::kEquality:
    case NodeKind::kApprox:
      return AnyAttribute(entry, node.attribute_base,
                          [&](const std::vector<std::string>& values) {
                            for (const std::string& v : values) {
                              if (ValueEquals(node, v)) return true;
                            }
                            return false;
                          })
                 ? Tri::kTrue
                 : Tri::kFalse;
    case NodeKind::kGreaterOrEqual:
    case NodeKind::kLessOrEqual: {
      bool ge = node.kind == NodeKind::kGreaterOrEqual;
      return AnyAttribute(entry, node.attribute_base,
                          [&](const std::vector<std::string>& values) {
                            for (const std::string& v : values) {
                              int c = ValueCompare(node, v);
                              if (ge ? c >= 0 : c <= 0) return true;
                            }
                            return false;
                          })
                 ? Tri::kTrue
                 : Tri::kFalse;
    }
    case NodeKind::kPresent:
      // Every directory entry has an objectClass, so "(objectClass=*)" is the
      // usual "everything" filter; an LDIF entry that omits it still matches.
      if (EqualsIgnoreCase(node.attribute_base, "objectClass")) return Tri::kTrue;
      return AnyAttribute(entry, node.attribute_base,
                          [](const std::vector<std::string>& values) { return !values.empty(); })
                 ? Tri::kTrue
                 : Tri::kFalse;
    case NodeKind::kSubstrings:
      return AnyAttribute(entry, node.attribute_base,
                          [&](const std::vector<std::string>& values) {
                            for (const std::string& v : values) {
                              if (SubstringsMatch(node, v)) return true;
                            }
                            return false;
                          })
                 ? Tri::kTrue
                 : Tri::kFalse;
    case NodeKind::kExtensible:
      return Extensible(node, entry);
  }
  return Tri::kUndefined;
}

Status Check(const Node& node) {
  for (const auto& child : node.children) RETURN_IF_ERROR(Check(*child));
  if (node.kind != NodeKind::kExtensible) return Status::Ok();
  std::string text;
  Print(node, text);
  if (node.rule == Rule::kUnknown) {
    return InvalidArgumentError("matching rule " + node.rule_text + " in " + text +
                                " cannot be evaluated by idsync");
  }
  if ((node.rule == Rule::kBitAnd || node.rule == Rule::kBitOr) && !node.integer) {
    return InvalidArgumentError("matching rule " + node.rule_text + " in " + text +
                                " needs an integer value");
  }
  return Status::Ok();
}

}  // namespace

const std::vector<std::string>* Entry::Get(std::string_view name) const {
  std::string_view base = BaseName(name);
  for (const auto& [attribute, values] : attributes) {
    if (EqualsIgnoreCase(BaseName(attribute), base)) return &values;
  }
  return nullptr;
}

std::string_view Entry::First(std::string_view name) const {
  const std::vector<std::string>* values = Get(name);
  if (values == nullptr || values->empty()) return {};
  return values->front();
}

Result<Filter> Filter::Parse(std::string_view text) {
  Parser parser(text);
  ASSIGN_OR_RETURN(std::unique_ptr<Node> root, parser.ParseTop());
  return Filter(std::move(root));
}

Filter::Filter(std::unique_ptr<Node> root) : root_(std::move(root)) {}
Filter::Filter(Filter&&) noexcept = default;
Filter& Filter::operator=(Filter&&) noexcept = default;
Filter::~Filter() = default;

Status Filter::CheckEvaluable() const { return Check(*root_); }

bool Filter::Matches(const Entry& entry) const { return Evaluate(*root_, entry) == Tri::kTrue; }

std::string Filter::ToString() const {
  std::string out;
  Print(*root_, out);
  return out;
}

}  // namespace idsync::filter
