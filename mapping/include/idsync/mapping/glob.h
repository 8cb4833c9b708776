// Case folding and case-insensitive globs for group names (and match.email).
//
// FoldCase is locale-independent Unicode *simple* case folding (the C and S
// entries of Unicode's CaseFolding.txt) restricted to the scripts idsync
// folds: every code point below U+0590 (ASCII, Latin-1 Supplement, Latin
// Extended-A and -B, IPA, Greek and Coptic, Cyrillic and its Supplement,
// Armenian) and Latin Extended Additional (U+1E00-U+1EFF). Everything else,
// and every byte that is not part of well-formed UTF-8, is left unchanged.
// No full folding (U+00DF 'ß' stays as is; U+1E9E 'ẞ' folds to 'ß') and no
// Turkic rule (U+0130 'İ' stays as is, 'I' folds to 'i').
//
// GlobMatch: '*' matches any run of characters (also empty), '?' exactly one
// code point (or one byte that is not well-formed UTF-8); both sides are
// compared code point by code point after FoldCase. E-mail addresses as
// identities are compared after base::AsciiLower only (DESIGN.md, "Identity").
// Pure; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "idsync/base/ascii.h"

namespace idsync::mapping {

// True when `text` matches `pattern`, both compared after FoldCase.
bool GlobMatch(std::string_view pattern, std::string_view text);

// True when `pattern` contains '*' or '?'.
bool HasGlob(std::string_view pattern);

// `utf8` with every code point case-folded as the file comment says; bytes
// that are not well-formed UTF-8 are copied as they are. An ASCII-only input
// costs one allocation.
std::string FoldCase(std::string_view utf8);

// Appends FoldCase(utf8) to `*out`, reusing its capacity.
void AppendFoldCase(std::string_view utf8, std::string* out);

}  // namespace idsync::mapping
