// Case-insensitive globs for group names and e-mail addresses: '*' matches any
// run of characters (also empty), '?' exactly one character (one UTF-8 code
// point). Case folding is ASCII. Pure; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace idsync::mapping {

// True when `text` matches `pattern`.
bool GlobMatch(std::string_view pattern, std::string_view text);

// True when `pattern` contains '*' or '?'.
bool HasGlob(std::string_view pattern);

// ASCII lower-casing, as used for e-mail addresses and names.
std::string AsciiLower(std::string_view text);

}  // namespace idsync::mapping
