// Json: a parsed JSON document, the value SCIM resources and requests travel
// in. It is a small value type (copyable, movable) so that no JSON library
// type shows in idsync's public headers; code inside connectors/scim reaches
// the representation through src/json_internal.h.
//
// Thread-safety: like any value; concurrent const use is safe, mutation needs
// exclusive access.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "idsync/base/status.h"

namespace idsync::scim {

// Nesting deeper than this is refused by Json::Parse unless told otherwise.
inline constexpr int kDefaultMaxJsonDepth = 64;

class Json {
 public:
  // JSON null.
  Json();
  Json(const Json& other);
  Json& operator=(const Json& other);
  Json(Json&& other) noexcept;
  Json& operator=(Json&& other) noexcept;
  ~Json();

  // Parses one JSON text (RFC 8259). kInvalidArgument with scimType
  // invalidSyntax (see errors.h) naming the byte offset of the first problem,
  // or when arrays and objects nest deeper than `max_depth`.
  static Result<Json> Parse(std::string_view text, int max_depth = kDefaultMaxJsonDepth);

  // Compact JSON text; object members in name order. Invalid UTF-8 in strings
  // is replaced by U+FFFD.
  std::string Dump() const;

  bool IsNull() const;
  bool IsObject() const;

  // Structural equality (numbers compare by value, object member order is
  // irrelevant).
  friend bool operator==(const Json& a, const Json& b);

 private:
  struct Rep;
  friend struct JsonAccess;  // src/json_internal.h
  std::unique_ptr<Rep> rep_;
};

}  // namespace idsync::scim
