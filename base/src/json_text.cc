#include "idsync/base/json_text.h"

namespace idsync::base {

namespace {

// The escape for one byte, or empty when it goes out as it is.
std::string_view Escape(unsigned char c, char (&buf)[6]) {
  switch (c) {
    case '"':
      return "\\\"";
    case '\\':
      return "\\\\";
    case '\b':
      return "\\b";
    case '\f':
      return "\\f";
    case '\n':
      return "\\n";
    case '\r':
      return "\\r";
    case '\t':
      return "\\t";
    default:
      break;
  }
  if (c >= 0x20) return {};
  static constexpr char kHex[] = "0123456789abcdef";
  buf[0] = '\\';
  buf[1] = 'u';
  buf[2] = '0';
  buf[3] = '0';
  buf[4] = kHex[c >> 4];
  buf[5] = kHex[c & 0xF];
  return {buf, sizeof buf};
}

}  // namespace

void AppendJsonString(std::string_view text, std::string* out) {
  out->push_back('"');
  // Plain bytes are copied in runs: listing pages are mostly plain text.
  std::size_t run = 0;
  char buf[6];
  for (std::size_t i = 0; i < text.size(); ++i) {
    const std::string_view escaped = Escape(static_cast<unsigned char>(text[i]), buf);
    if (escaped.empty()) continue;
    out->append(text.substr(run, i - run));
    out->append(escaped);
    run = i + 1;
  }
  out->append(text.substr(run));
  out->push_back('"');
}

std::string JsonQuote(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  AppendJsonString(text, &out);
  return out;
}

}  // namespace idsync::base
