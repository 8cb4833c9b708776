#include "idsync/ldif/ldif.h"

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "idsync/base/ascii.h"

namespace idsync::ldif {
namespace {

using base::AsciiLower;
using base::EqualsIgnoreCase;

Status LineError(int line, std::string_view what) {
  return InvalidArgumentError("line " + std::to_string(line) + ": " + std::string(what));
}

// RFC 4648 base64 as RFC 2849 uses it. Padding may be left out (some
// exporters do); anything else that is not the alphabet is an error.
std::optional<std::string> DecodeBase64(std::string_view in) {
  static const std::array<std::int8_t, 256> kTable = [] {
    std::array<std::int8_t, 256> t{};
    t.fill(-1);
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i)
      t[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
    return t;
  }();
  std::size_t padding = 0;
  while (!in.empty() && in.back() == '=' && padding < 2) {
    in.remove_suffix(1);
    ++padding;
  }
  if (padding > 0 && (in.size() + padding) % 4 != 0) return std::nullopt;
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    std::int8_t v = kTable[static_cast<unsigned char>(c)];
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // Leftover bits must be zero, or the text was not produced by an encoder.
  if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

// One logical line: physical lines joined where RFC 2849 folds them.
struct Line {
  std::string_view text;
  int number = 0;  // 1-based number of its first physical line
  bool blank = false;
  bool comment = false;
};

// Splits the input into logical lines. Unfolded lines are views into the
// input; folded ones are assembled in a buffer that lives until the next call,
// so most of a large file is never copied twice.
class LineReader {
 public:
  explicit LineReader(std::string_view text) : text_(text) {
    if (text_.starts_with("\xEF\xBB\xBF")) text_.remove_prefix(3);  // UTF-8 BOM
  }

  // False at the end of input; a Status when a continuation has nothing to
  // continue.
  Result<bool> Next(Line& line) {
    if (pos_ >= text_.size()) return false;
    std::string_view first = Physical();
    line.number = number_;
    line.comment = first.starts_with('#');
    if (first.starts_with(' ')) {
      // A folded line whose start is missing. A line of spaces alone (trailing
      // white space in a hand-edited file) is read as a blank line.
      if (first.find_first_not_of(' ') != std::string_view::npos) {
        return LineError(number_,
                         "continuation line (starting with a space) without a line to "
                         "continue");
      }
      first = {};
    }
    line.blank = first.empty();
    if (line.blank) {
      line.text = {};
      return true;
    }
    if (!NextIsContinuation()) {
      line.text = first;
      return true;
    }
    buffer_.assign(first);
    while (NextIsContinuation()) buffer_.append(Physical().substr(1));
    line.text = buffer_;
    return true;
  }

 private:
  // The next physical line without its line ending (LF or CRLF).
  std::string_view Physical() {
    std::size_t end = text_.find('\n', pos_);
    if (end == std::string_view::npos) end = text_.size();
    std::string_view line = text_.substr(pos_, end - pos_);
    pos_ = end < text_.size() ? end + 1 : end;
    ++number_;
    if (line.ends_with('\r')) line.remove_suffix(1);
    return line;
  }

  bool NextIsContinuation() const { return pos_ < text_.size() && text_[pos_] == ' '; }

  std::string_view text_;
  std::size_t pos_ = 0;
  int number_ = 0;
  std::string buffer_;
};

bool IsDescriptionChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == ';' || c == '.' || c == '_' || c == '=';
}

struct AttrValue {
  std::string_view name;
  std::string value;
};

// "name: value", "name:: base64" or "name:< url".
Result<AttrValue> ParseAttrValue(const Line& line) {
  std::size_t colon = line.text.find(':');
  if (colon == std::string_view::npos) {
    return LineError(line.number, "expected 'attribute: value'");
  }
  AttrValue out;
  out.name = line.text.substr(0, colon);
  if (out.name.empty()) return LineError(line.number, "missing attribute name before ':'");
  for (char c : out.name) {
    if (!IsDescriptionChar(c)) {
      return LineError(line.number, "invalid attribute name '" + std::string(out.name) + "'");
    }
  }
  std::string_view rest = line.text.substr(colon + 1);
  if (rest.starts_with(':')) {
    rest.remove_prefix(1);
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    while (!rest.empty() && rest.back() == ' ') rest.remove_suffix(1);
    std::optional<std::string> decoded = DecodeBase64(rest);
    if (!decoded) {
      return LineError(line.number, "invalid base64 value for '" + std::string(out.name) + "'");
    }
    out.value = std::move(*decoded);
    return out;
  }
  if (rest.starts_with('<')) {
    return LineError(line.number, "URL values ('" + std::string(out.name) +
                                      ":<') are not supported; inline the value");
  }
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  out.value = std::string(rest);
  return out;
}

// Adds a value to the attribute with this exact description (options
// included), compared case-insensitively; the first spelling is kept.
void AddValue(filter::Entry& entry, std::string_view name, std::string value,
              std::size_t& last_index) {
  auto& attributes = entry.attributes;
  // Consecutive values of one attribute are the common case (group members).
  if (last_index < attributes.size() && EqualsIgnoreCase(attributes[last_index].first, name)) {
    attributes[last_index].second.push_back(std::move(value));
    return;
  }
  for (std::size_t i = 0; i < attributes.size(); ++i) {
    if (EqualsIgnoreCase(attributes[i].first, name)) {
      attributes[i].second.push_back(std::move(value));
      last_index = i;
      return;
    }
  }
  attributes.emplace_back(std::string(name), std::vector<std::string>{std::move(value)});
  last_index = attributes.size() - 1;
}

}  // namespace

Result<std::vector<filter::Entry>> ParseLdif(std::string_view text) {
  std::vector<filter::Entry> entries;
  LineReader reader(text);
  Line line;
  bool in_record = false;
  bool seen_content = false;  // anything but comments and blanks so far
  filter::Entry entry;
  std::size_t last_index = 0;

  while (true) {
    ASSIGN_OR_RETURN(bool more, reader.Next(line));
    if (!more) break;
    if (line.comment) continue;
    if (line.blank) {
      if (in_record) {
        entries.push_back(std::move(entry));
        entry = filter::Entry{};
        in_record = false;
      }
      continue;
    }
    if (line.text == "-") {
      return LineError(line.number,
                       "'-' separates modifications in a modify record, which "
                       "idsync does not read");
    }
    ASSIGN_OR_RETURN(AttrValue av, ParseAttrValue(line));
    bool first_content = !seen_content;
    seen_content = true;
    if (!in_record) {
      if (first_content && EqualsIgnoreCase(av.name, "version")) {
        if (av.value != "1") {
          return LineError(line.number, "unsupported LDIF version '" + av.value + "'");
        }
        continue;
      }
      if (!EqualsIgnoreCase(av.name, "dn")) {
        return LineError(line.number,
                         "a record must start with 'dn:', found '" + std::string(av.name) + ":'");
      }
      entry.dn = std::move(av.value);
      in_record = true;
      last_index = 0;
      continue;
    }
    if (EqualsIgnoreCase(av.name, "dn")) {
      return LineError(line.number,
                       "second 'dn:' in one record (records are separated by a "
                       "blank line)");
    }
    if (EqualsIgnoreCase(av.name, "changetype")) {
      // An add record carries the same attributes as a content record; every
      // other change needs an existing directory to apply to.
      if (av.value != "add") {
        return LineError(line.number, "changetype '" + av.value +
                                          "' is not supported (only content and add records)");
      }
      continue;
    }
    if (EqualsIgnoreCase(av.name, "control") && entry.attributes.empty()) {
      return LineError(line.number, "controls in change records are not supported");
    }
    AddValue(entry, av.name, std::move(av.value), last_index);
  }
  if (in_record) entries.push_back(std::move(entry));
  return entries;
}

}  // namespace idsync::ldif
