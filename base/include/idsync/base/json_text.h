// JSON string literals for text written by hand rather than by a JSON
// library: error bodies, filter round trips, log fields, listing pages.
// Escapes '"', '\\' and every control character below 0x20 (\b \f \n \r \t
// in their short forms, the others as \u00XX); every other byte, UTF-8 or
// not, is copied as it is. Pure; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace idsync::base {

// Appends `text` as a JSON string literal, quotes included, to `*out`. Only
// `*out` may allocate, so a caller reusing its capacity pays nothing.
void AppendJsonString(std::string_view text, std::string* out);

// `text` as a JSON string literal, quotes included.
std::string JsonQuote(std::string_view text);

}  // namespace idsync::base
