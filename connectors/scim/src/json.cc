#include "idsync/scim/json.h"

#include <string>

#include <nlohmann/json.hpp>

#include "idsync/scim/errors.h"

#include "json_internal.h"

namespace idsync::scim {
namespace {

// Depth of the deepest array/object nesting, found by a scan that skips
// string contents. Done before parsing so that hostile nesting is refused
// before any allocation for it.
int MaxNesting(std::string_view text) {
  int depth = 0, max_depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      max_depth = std::max(max_depth, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

}  // namespace

Json::Json() : rep_(std::make_unique<Rep>()) {}
Json::Json(const Json& other) : rep_(std::make_unique<Rep>(*other.rep_)) {}
Json& Json::operator=(const Json& other) {
  if (this != &other) rep_ = std::make_unique<Rep>(*other.rep_);
  return *this;
}
// A moved-from Json is null again rather than empty, so every Json is usable.
Json::Json(Json&& other) noexcept : rep_(std::make_unique<Rep>()) { rep_.swap(other.rep_); }
Json& Json::operator=(Json&& other) noexcept {
  rep_.swap(other.rep_);
  return *this;
}
Json::~Json() = default;

Result<Json> Json::Parse(std::string_view text, int max_depth) {
  if (MaxNesting(text) > max_depth) {
    return ScimError(ScimType::kInvalidSyntax,
                     "JSON nests deeper than " + std::to_string(max_depth) + " levels");
  }
  try {
    return JsonAccess::Make(nlohmann::json::parse(text));
  } catch (const nlohmann::json::parse_error& e) {
    return ScimError(ScimType::kInvalidSyntax, "malformed JSON at byte " + std::to_string(e.byte));
  } catch (const nlohmann::json::exception&) {
    // A number too large for any type (out_of_range, error 406), found by
    // fuzz/scim_json_fuzzer.cc: a bad request, not an internal error.
    return ScimError(ScimType::kInvalidSyntax, "a JSON number is out of range");
  }
}

std::string Json::Dump() const {
  return rep_->value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool Json::IsNull() const { return rep_->value.is_null(); }
bool Json::IsObject() const { return rep_->value.is_object(); }

bool operator==(const Json& a, const Json& b) { return a.rep_->value == b.rep_->value; }

}  // namespace idsync::scim
