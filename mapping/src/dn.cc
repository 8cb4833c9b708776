#include "idsync/mapping/dn.h"

#include <algorithm>
#include <vector>

#include "idsync/mapping/glob.h"

namespace idsync::mapping {

namespace {

inline bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }
inline char Fold(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

inline int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Characters that may follow '\' literally (RFC 4514 "special", plus ';'
// and '=' which RFC 2253 producers escape too).
inline bool IsEscapable(char c) {
  switch (c) {
    case ',':
    case '+':
    case '"':
    case '\\':
    case '<':
    case '>':
    case ';':
    case '=':
    case ' ':
    case '#':
      return true;
    default:
      return false;
  }
}

// A few attribute types written as OIDs by some producers; mapping them to
// their short names lets "2.5.4.3=x" and "cn=x" compare equal.
std::string_view OidToName(std::string_view oid) {
  struct Entry {
    std::string_view oid;
    std::string_view name;
  };
  static constexpr Entry kTable[] = {
      {"2.5.4.3", "cn"},
      {"2.5.4.6", "c"},
      {"2.5.4.7", "l"},
      {"2.5.4.8", "st"},
      {"2.5.4.9", "street"},
      {"2.5.4.10", "o"},
      {"2.5.4.11", "ou"},
      {"0.9.2342.19200300.100.1.1", "uid"},
      {"0.9.2342.19200300.100.1.25", "dc"},
  };
  for (const Entry& e : kTable) {
    if (e.oid == oid) return e.name;
  }
  return {};
}

class DnParser {
 public:
  DnParser(std::string_view in, std::string& out) : in_(in), out_(out) {}

  Status Parse() {
    SkipSpaces();
    if (pos_ == in_.size()) return Status::Ok();  // the root DN
    while (true) {
      RETURN_IF_ERROR(ParseRdn());
      if (pos_ == in_.size()) return Status::Ok();
      // ParseRdn stops only at the end or at ',' / ';'.
      ++pos_;
      out_.push_back(',');
      SkipSpaces();
      if (pos_ == in_.size()) return Error("empty RDN at the end");
    }
  }

 private:
  Status Error(const char* what) const {
    std::string msg = "invalid DN \"";
    msg.append(in_);
    msg += "\": ";
    msg += what;
    msg += " at offset ";
    msg += std::to_string(pos_);
    return InvalidArgumentError(std::move(msg));
  }

  void SkipSpaces() {
    while (pos_ < in_.size() && in_[pos_] == ' ') ++pos_;
  }

  // One RDN: attributeTypeAndValue *( '+' attributeTypeAndValue ). The parts
  // of a multi-valued RDN are sorted so their order does not matter.
  Status ParseRdn() {
    const std::size_t rdn_start = out_.size();
    std::size_t ava_count = 0;
    while (true) {
      const std::size_t ava_start = out_.size();
      RETURN_IF_ERROR(ParseAva());
      ++ava_count;
      if (ava_count > 1 || (pos_ < in_.size() && in_[pos_] == '+')) {
        bounds_.push_back({ava_start, out_.size()});
      }
      if (pos_ < in_.size() && in_[pos_] == '+') {
        ++pos_;
        out_.push_back('+');
        SkipSpaces();
        continue;
      }
      break;
    }
    if (ava_count > 1) SortAvas(rdn_start, ava_count);
    bounds_.clear();
    return Status::Ok();
  }

  void SortAvas(std::size_t rdn_start, std::size_t count) {
    std::vector<std::string> parts;
    parts.reserve(count);
    for (const auto& [b, e] : bounds_) parts.emplace_back(out_, b, e - b);
    std::sort(parts.begin(), parts.end());
    out_.resize(rdn_start);
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (i > 0) out_.push_back('+');
      out_ += parts[i];
    }
  }

  Status ParseAva() {
    RETURN_IF_ERROR(ParseType());
    SkipSpaces();
    if (pos_ == in_.size() || in_[pos_] != '=') return Error("expected '=' after attribute type");
    ++pos_;
    out_.push_back('=');
    SkipSpaces();
    if (pos_ < in_.size() && in_[pos_] == '#') return ParseHexValue();
    if (pos_ < in_.size() && in_[pos_] == '"') return ParseQuotedValue();
    return ParseStringValue();
  }

  // descr (ALPHA *(ALPHA / DIGIT / '-')) or numericoid, optionally prefixed
  // "OID." as RFC 2253 producers sometimes write it.
  Status ParseType() {
    if (in_.size() - pos_ >= 4 && Fold(in_[pos_]) == 'o' && Fold(in_[pos_ + 1]) == 'i' &&
        Fold(in_[pos_ + 2]) == 'd' && in_[pos_ + 3] == '.' && pos_ + 4 < in_.size() &&
        IsDigit(in_[pos_ + 4])) {
      pos_ += 4;
    }
    if (pos_ == in_.size()) return Error("missing attribute type");
    const char first = in_[pos_];
    const std::size_t start = pos_;
    if (IsAlpha(first)) {
      while (pos_ < in_.size() && (IsAlpha(in_[pos_]) || IsDigit(in_[pos_]) || in_[pos_] == '-')) {
        out_.push_back(Fold(in_[pos_]));
        ++pos_;
      }
      return Status::Ok();
    }
    if (IsDigit(first)) {
      bool last_dot = false;
      while (pos_ < in_.size() && (IsDigit(in_[pos_]) || in_[pos_] == '.')) {
        const bool dot = in_[pos_] == '.';
        if (dot && last_dot) return Error("malformed OID");
        last_dot = dot;
        ++pos_;
      }
      if (last_dot) return Error("malformed OID");
      std::string_view oid = in_.substr(start, pos_ - start);
      std::string_view name = OidToName(oid);
      out_.append(name.empty() ? oid : name);
      return Status::Ok();
    }
    return Error("missing attribute type");
  }

  // '#' followed by an even number of hex digits: a BER value, kept as
  // written but lower-cased.
  Status ParseHexValue() {
    out_.push_back('#');
    ++pos_;
    const std::size_t start = pos_;
    while (pos_ < in_.size() && HexValue(in_[pos_]) >= 0) {
      out_.push_back(Fold(in_[pos_]));
      ++pos_;
    }
    const std::size_t digits = pos_ - start;
    if (digits == 0 || digits % 2 != 0) return Error("malformed hex value");
    SkipSpaces();
    return EndOfValue();
  }

  Status EndOfValue() {
    if (pos_ == in_.size()) return Status::Ok();
    const char c = in_[pos_];
    if (c == ',' || c == ';' || c == '+') return Status::Ok();
    return Error("unexpected character after value");
  }

  // Reads one escape at in_[pos_] == '\\' and returns the byte it stands for.
  Status ReadEscape(char& byte) {
    ++pos_;
    if (pos_ == in_.size()) return Error("unterminated escape");
    const char c = in_[pos_];
    const int hi = HexValue(c);
    if (hi >= 0) {
      if (pos_ + 1 == in_.size()) return Error("bad hex escape");
      const int lo = HexValue(in_[pos_ + 1]);
      if (lo < 0) return Error("bad hex escape");
      byte = static_cast<char>(hi * 16 + lo);
      pos_ += 2;
      return Status::Ok();
    }
    if (!IsEscapable(c)) return Error("bad escape");
    byte = c;
    ++pos_;
    return Status::Ok();
  }

  // The RFC 2253 quoted form: "..." with '\' escapes inside.
  Status ParseQuotedValue() {
    ++pos_;
    const std::size_t value_start = out_.size();
    while (true) {
      if (pos_ == in_.size()) return Error("unterminated quoted value");
      char c = in_[pos_];
      if (c == '"') {
        ++pos_;
        break;
      }
      if (c == '\\') {
        RETURN_IF_ERROR(ReadEscape(c));
      } else {
        ++pos_;
      }
      if (c == '\0') return Error("NUL in value");
      out_.push_back(c);
    }
    SkipSpaces();
    RETURN_IF_ERROR(EndOfValue());
    FoldValue(value_start);
    Reescape(value_start);
    return Status::Ok();
  }

  Status ParseStringValue() {
    const std::size_t value_start = out_.size();
    // Output length after the last byte that is not an unescaped space:
    // unescaped trailing spaces are insignificant, escaped ones are kept.
    std::size_t significant_end = value_start;
    while (pos_ < in_.size()) {
      char c = in_[pos_];
      if (c == ',' || c == ';' || c == '+') break;
      if (c == '\\') {
        RETURN_IF_ERROR(ReadEscape(c));
        if (c == '\0') return Error("NUL in value");
        out_.push_back(c);
        significant_end = out_.size();
        continue;
      }
      if (c == '\0') return Error("NUL in value");
      ++pos_;
      out_.push_back(c);
      if (c != ' ') significant_end = out_.size();
    }
    out_.resize(significant_end);
    FoldValue(value_start);
    Reescape(value_start);
    return Status::Ok();
  }

  // out_[value_start..] holds a raw (unescaped) value; case-fold it. The
  // value is complete first because escapes can spell a code point byte by
  // byte ("\C3\89"). ASCII is folded in place; only from the first
  // non-ASCII byte on does the rest go through FoldCase, via scratch_.
  void FoldValue(std::size_t value_start) {
    const std::size_t end = out_.size();
    for (std::size_t i = value_start; i < end; ++i) {
      const char c = out_[i];
      if (static_cast<unsigned char>(c) >= 0x80) {
        scratch_.assign(out_, i, end - i);
        out_.resize(i);
        AppendFoldCase(scratch_, &out_);
        return;
      }
      out_[i] = Fold(c);
    }
  }

  static bool NeedsEscape(char c) {
    switch (c) {
      case ',':
      case '+':
      case '"':
      case '\\':
      case '<':
      case '>':
      case ';':
        return true;
      default:
        return false;
    }
  }

  // out_[value_start..] holds the raw (unescaped, case-folded) value; escape
  // it minimally: the RFC 4514 specials, a leading ' ' or '#', a trailing ' '.
  // Most values need nothing, so the common path only scans.
  void Reescape(std::size_t value_start) {
    const std::size_t end = out_.size();
    if (end == value_start) return;
    bool needed = out_[value_start] == ' ' || out_[value_start] == '#' || out_[end - 1] == ' ';
    for (std::size_t i = value_start; !needed && i < end; ++i) needed = NeedsEscape(out_[i]);
    if (!needed) return;
    scratch_.assign(out_, value_start, end - value_start);
    out_.resize(value_start);
    for (std::size_t i = 0; i < scratch_.size(); ++i) {
      const char c = scratch_[i];
      const bool edge =
          (i == 0 && (c == ' ' || c == '#')) || (i + 1 == scratch_.size() && c == ' ');
      if (edge || NeedsEscape(c)) out_.push_back('\\');
      out_.push_back(c);
    }
  }

  std::string_view in_;
  std::string& out_;
  std::size_t pos_ = 0;
  std::vector<std::pair<std::size_t, std::size_t>> bounds_;  // AVAs of a multi-valued RDN
  std::string scratch_;
};

}  // namespace

Result<std::string> NormalizeDn(std::string_view dn) {
  std::string out;
  out.reserve(dn.size());
  DnParser parser(dn, out);
  Status status = parser.Parse();
  if (!status.ok()) return status;
  return out;
}

bool DnEquals(std::string_view a, std::string_view b) {
  Result<std::string> na = NormalizeDn(a);
  if (!na.ok()) return false;
  Result<std::string> nb = NormalizeDn(b);
  if (!nb.ok()) return false;
  return *na == *nb;
}

bool LooksLikeDn(std::string_view text) { return text.find('=') != std::string_view::npos; }

}  // namespace idsync::mapping
