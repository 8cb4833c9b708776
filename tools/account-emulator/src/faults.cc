// Faults: their JSON form and the injector that draws them.
#include <algorithm>
#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "idsync/emulator/emulator.h"

#include "fault_injector.h"

namespace idsync::emulator {
namespace {

using Json = nlohmann::ordered_json;

const std::set<std::string, std::less<>>& EndpointKeys() {
  static const auto* const kKeys = new std::set<std::string, std::less<>>{
      "*",
      "GET *",
      "POST *",
      "PATCH *",
      "DELETE *",
      "GET /catalog",
      "GET /projects",
      "GET /users",
      "GET /users/{id}",
      "POST /users",
      "PATCH /users/{id}",
      "DELETE /users/{id}",
      "GET /audit",
  };
  return *kKeys;
}

// A rate table: a number (every endpoint) or an object of endpoint -> rate.
Status ParseRates(const Json& value, const std::string& field, RateTable* out) {
  out->clear();
  auto check = [&](const std::string& key, const Json& rate) -> Status {
    if (!rate.is_number()) {
      return InvalidArgumentError("faults: " + field + "[\"" + key + "\"] must be a number");
    }
    double r = rate.get<double>();
    if (!(r >= 0 && r <= 1)) {
      return InvalidArgumentError("faults: " + field + "[\"" + key + "\"] must be within 0..1");
    }
    (*out)[key] = r;
    return Status::Ok();
  };
  if (value.is_number()) return check("*", value);
  if (!value.is_object()) {
    return InvalidArgumentError("faults: " + field + " must be a number or an object");
  }
  for (const auto& [key, rate] : value.items()) {
    if (!EndpointKeys().contains(key)) {
      return InvalidArgumentError("faults: " + field + ": unknown endpoint \"" + key +
                                  "\" (e.g. \"POST /users\", \"GET *\", \"*\")");
    }
    RETURN_IF_ERROR(check(key, rate));
  }
  return Status::Ok();
}

Status ParseNonNegative(const Json& value, const std::string& field, double* out) {
  if (!value.is_number() || value.get<double>() < 0) {
    return InvalidArgumentError("faults: " + field + " must be a non-negative number");
  }
  *out = value.get<double>();
  return Status::Ok();
}

}  // namespace

Result<Faults> ParseFaults(std::string_view json) {
  Json doc = Json::parse(json, nullptr, false);
  if (doc.is_discarded()) return InvalidArgumentError("faults: not well-formed JSON");
  if (!doc.is_object()) return InvalidArgumentError("faults: must be a JSON object");
  Faults f;
  for (const auto& [key, value] : doc.items()) {
    double number = 0;
    if (key == "error_rate") {
      RETURN_IF_ERROR(ParseRates(value, key, &f.error_rate));
    } else if (key == "throttle_rate") {
      RETURN_IF_ERROR(ParseRates(value, key, &f.throttle_rate));
    } else if (key == "drop_before_rate") {
      RETURN_IF_ERROR(ParseRates(value, key, &f.drop_before_rate));
    } else if (key == "drop_after_rate") {
      RETURN_IF_ERROR(ParseRates(value, key, &f.drop_after_rate));
    } else if (key == "error_statuses") {
      if (!value.is_array() || value.empty()) {
        return InvalidArgumentError("faults: error_statuses must be a non-empty array");
      }
      f.error_statuses.clear();
      for (const Json& s : value) {
        if (!s.is_number_integer() || s.get<int>() < 500 || s.get<int>() > 599) {
          return InvalidArgumentError("faults: error_statuses must hold 5xx codes");
        }
        f.error_statuses.push_back(s.get<int>());
      }
    } else if (key == "retry_after_seconds") {
      if (!value.is_number_integer() || value.get<int>() < 0) {
        return InvalidArgumentError("faults: retry_after_seconds must be a non-negative integer");
      }
      f.retry_after_seconds = value.get<int>();
    } else if (key == "latency_ms") {
      double lo = 0, hi = 0;
      if (value.is_object()) {
        for (const auto& [k, v] : value.items()) {
          if (k != "min" && k != "max") {
            return InvalidArgumentError("faults: latency_ms takes \"min\" and \"max\"");
          }
          RETURN_IF_ERROR(ParseNonNegative(v, "latency_ms." + k, k == "min" ? &lo : &hi));
        }
        if (!value.contains("max")) hi = lo;
        if (!value.contains("min")) lo = hi;
        if (hi < lo) return InvalidArgumentError("faults: latency_ms.max is below min");
      } else {
        RETURN_IF_ERROR(ParseNonNegative(value, "latency_ms", &lo));
        hi = lo;
      }
      f.latency.min = std::chrono::milliseconds(static_cast<std::int64_t>(lo));
      f.latency.max = std::chrono::milliseconds(static_cast<std::int64_t>(hi));
    } else if (key == "rate_limit_per_second") {
      RETURN_IF_ERROR(ParseNonNegative(value, key, &number));
      f.rate_limit_per_second = number;
    } else if (key == "rate_limit_burst") {
      RETURN_IF_ERROR(ParseNonNegative(value, key, &number));
      f.rate_limit_burst = number;
    } else {
      return InvalidArgumentError("faults: unknown field \"" + key + "\"");
    }
  }
  return f;
}

std::string FaultsToJson(const Faults& f) {
  auto rates = [](const RateTable& t) {
    Json o = Json::object();
    for (const auto& [k, v] : t) o[k] = v;
    return o;
  };
  Json doc = {{"error_rate", rates(f.error_rate)},
              {"error_statuses", f.error_statuses},
              {"throttle_rate", rates(f.throttle_rate)},
              {"retry_after_seconds", f.retry_after_seconds},
              {"latency_ms", {{"min", f.latency.min.count()}, {"max", f.latency.max.count()}}},
              {"drop_before_rate", rates(f.drop_before_rate)},
              {"drop_after_rate", rates(f.drop_after_rate)},
              {"rate_limit_per_second", f.rate_limit_per_second},
              {"rate_limit_burst", f.rate_limit_burst}};
  return doc.dump();
}

double RateFor(const RateTable& table, const std::string& endpoint) {
  if (table.empty()) return 0;
  if (auto it = table.find(endpoint); it != table.end()) return it->second;
  std::string method = endpoint.substr(0, endpoint.find(' '));
  if (auto it = table.find(method + " *"); it != table.end()) return it->second;
  if (auto it = table.find("*"); it != table.end()) return it->second;
  return 0;
}

FaultInjector::FaultInjector(const Faults& faults, std::uint64_t seed) : rng_(seed) { Set(faults); }

Faults FaultInjector::faults() const {
  std::lock_guard lock(mu_);
  return faults_;
}

void FaultInjector::Set(const Faults& faults) {
  std::lock_guard lock(mu_);
  faults_ = faults;
  double burst = faults_.rate_limit_burst > 0 ? faults_.rate_limit_burst
                                              : std::max(1.0, faults_.rate_limit_per_second);
  tokens_ = burst;
  refilled_ = std::chrono::steady_clock::now();
}

bool FaultInjector::Draw(double probability) {
  if (probability <= 0) return false;
  if (probability >= 1) return true;
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng_) < probability;
}

std::chrono::milliseconds FaultInjector::Latency() {
  std::lock_guard lock(mu_);
  auto [lo, hi] = std::pair(faults_.latency.min.count(), faults_.latency.max.count());
  if (hi <= lo) return std::chrono::milliseconds(lo);
  return std::chrono::milliseconds(std::uniform_int_distribution<std::int64_t>(lo, hi)(rng_));
}

FaultInjector::Decision FaultInjector::Decide(const std::string& endpoint,
                                              std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mu_);
  Decision d;
  if (Draw(RateFor(faults_.drop_before_rate, endpoint))) {
    d.kind = Kind::kDropBefore;
    return d;
  }
  if (faults_.rate_limit_per_second > 0) {
    // A token bucket: refilled at the limit, holding at most one burst.
    double rate = faults_.rate_limit_per_second;
    double burst = faults_.rate_limit_burst > 0 ? faults_.rate_limit_burst : std::max(1.0, rate);
    double elapsed = std::chrono::duration<double>(now - refilled_).count();
    if (elapsed > 0) {
      tokens_ = std::min(burst, tokens_ + elapsed * rate);
      refilled_ = now;
    }
    if (tokens_ >= 1) {
      tokens_ -= 1;
    } else {
      d.kind = Kind::kRateLimit;
      d.status = 429;
      // Retry-After carries whole seconds; never 0, which would invite a hot loop.
      d.retry_after_seconds = std::max(1, static_cast<int>(std::ceil((1 - tokens_) / rate)));
      return d;
    }
  }
  if (Draw(RateFor(faults_.throttle_rate, endpoint))) {
    d.kind = Kind::kThrottle;
    d.status = 429;
    d.retry_after_seconds = faults_.retry_after_seconds;
    return d;
  }
  if (Draw(RateFor(faults_.error_rate, endpoint))) {
    d.kind = Kind::kError;
    const std::vector<int>& statuses = faults_.error_statuses;
    d.status =
        statuses.empty()
            ? 503
            : statuses[std::uniform_int_distribution<std::size_t>(0, statuses.size() - 1)(rng_)];
    return d;
  }
  d.drop_after = Draw(RateFor(faults_.drop_after_rate, endpoint));
  return d;
}

}  // namespace idsync::emulator
