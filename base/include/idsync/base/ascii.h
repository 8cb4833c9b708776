// ASCII helpers: the case rules idsync applies to e-mail addresses, protocol
// keywords, header names and attribute names, which compare after folding
// 'A'-'Z' only (DESIGN.md, "Identity"); every other byte, UTF-8 or not, is
// left as it is. Unicode-aware folding for group names is mapping/glob.h's
// FoldCase. Pure; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace idsync::base {

// `c` lower-cased when it is 'A'-'Z'; every other byte as it is.
constexpr char AsciiLower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// `text` with AsciiLower applied to every byte.
std::string AsciiLower(std::string_view text);

// True when `a` and `b` are equal after AsciiLower.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// True when `text` begins with `prefix`, compared after AsciiLower.
bool StartsWithIgnoreCase(std::string_view text, std::string_view prefix);

}  // namespace idsync::base
