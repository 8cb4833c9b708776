// xsd:dateTime (RFC 7643 2.3.5) parsed to an instant, so that SCIM filters
// order meta.created and meta.lastModified chronologically whatever the
// offset and fraction precision of each side.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace idsync::scim {

struct Instant {
  int64_t seconds = 0;  // since 1970-01-01T00:00:00Z
  int64_t nanos = 0;    // 0..999999999; digits past the ninth are ignored
  friend auto operator<=>(const Instant&, const Instant&) = default;
};

// "YYYY-MM-DDThh:mm:ss[.fraction][Z|+hh:mm|-hh:mm]" (no offset means UTC);
// nullopt for anything else.
std::optional<Instant> ParseDateTime(std::string_view text);

// "YYYY-MM-DDThh:mm:ss.mmmZ" for `millis` milliseconds since the epoch, the
// form idsync writes in meta.created and meta.lastModified.
std::string FormatMillis(int64_t millis);

}  // namespace idsync::scim
