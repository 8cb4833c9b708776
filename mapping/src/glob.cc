#include "idsync/mapping/glob.h"

namespace idsync::mapping {

namespace {

inline char Fold(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// Length in bytes of the UTF-8 code point starting at text[i]. Continuation
// bytes after the lead are taken as long as they are present, so malformed
// input still advances by at least one byte.
inline std::size_t CodePointLength(std::string_view text, std::size_t i) {
  std::size_t n = 1;
  while (i + n < text.size() && n < 4 && (static_cast<unsigned char>(text[i + n]) & 0xC0) == 0x80) {
    ++n;
  }
  return n;
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view text) {
  // Greedy matching with one remembered '*': on a mismatch the last '*'
  // swallows one more code point and matching resumes after it. Only the
  // latest '*' needs remembering, so the cost is O(|pattern| * |text|) at
  // worst, never exponential.
  std::size_t p = 0;
  std::size_t t = 0;
  std::size_t star_p = std::string_view::npos;  // pattern index just after the last '*'
  std::size_t star_t = 0;                       // text index that '*' would swallow next
  while (t < text.size()) {
    if (p < pattern.size()) {
      const char pc = pattern[p];
      if (pc == '*') {
        while (p < pattern.size() && pattern[p] == '*') ++p;
        if (p == pattern.size()) return true;  // a trailing '*' takes the rest
        star_p = p;
        star_t = t;
        continue;
      }
      if (pc == '?') {
        ++p;
        t += CodePointLength(text, t);
        continue;
      }
      if (Fold(pc) == Fold(text[t])) {
        ++p;
        ++t;
        continue;
      }
    }
    if (star_p == std::string_view::npos) return false;
    star_t += CodePointLength(text, star_t);
    t = star_t;
    p = star_p;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool HasGlob(std::string_view pattern) {
  return pattern.find_first_of("*?") != std::string_view::npos;
}

std::string AsciiLower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = Fold(c);
  return out;
}

}  // namespace idsync::mapping
