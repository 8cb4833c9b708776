// Access to the nlohmann::json inside idsync::scim::Json, for the sources of
// connectors/scim only (never installed, never included by other components).
#pragma once

#include <utility>

#include <nlohmann/json.hpp>

#include "idsync/scim/json.h"

namespace idsync::scim {

struct Json::Rep {
  nlohmann::json value;
};

struct JsonAccess {
  static nlohmann::json& Get(Json& j) { return j.rep_->value; }
  static const nlohmann::json& Get(const Json& j) { return j.rep_->value; }
  static Json Make(nlohmann::json value) {
    Json j;
    j.rep_->value = std::move(value);
    return j;
  }
};

}  // namespace idsync::scim
