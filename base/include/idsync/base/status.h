// Status and Result<T>: how every idsync call that can fail reports it.
//
// A Status is a canonical code plus a message for people. Code decides (retry,
// exit status); the message is only shown and never parsed. Facts a program
// acts on travel as payloads beside the message: a SCIM error's scimType,
// the id of the account user a 409 names, the stage that failed. A payload
// key is a constant declared by the component that owns the fact (e.g.
// kStageKey below, scim::kScimTypeKey); its value is a short string whose
// meaning the key defines. WithContext keeps the payloads. Result<T> holds either a value or a
// non-OK Status. Both are values, cheap to move, and not thread-safe to mutate
// concurrently (like any value type).
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace idsync {

// Canonical error codes, in the Abseil sense.
enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // bad input: configuration, filter, LDIF, request body
  kNotFound,            // the thing asked for does not exist
  kAlreadyExists,       // creating something that exists
  kFailedPrecondition,  // the system is not in a state to do this (e.g. blocked plan)
  kPermissionDenied,    // authenticated but not allowed
  kUnauthenticated,     // no or wrong credentials
  kResourceExhausted,   // rate or size limit
  kUnavailable,         // transient: retry may succeed
  kDeadlineExceeded,    // timed out
  kInternal,            // a bug or an unexpected failure below us
  kDataLoss,            // stored data is unreadable or inconsistent: nothing is served from it
  kAborted,             // another writer changed the thing first: read it again and retry
};

// The code's stable name, e.g. "INVALID_ARGUMENT".
std::string_view StatusCodeName(StatusCode code);

// Payload key: the stage whose failure this is, when it matters to the
// caller: kStageStore for the durable store (the daemon is not ready while
// the store cannot be written), kStageAccount, kStageSource.
inline constexpr std::string_view kStageKey = "idsync.stage";
inline constexpr std::string_view kStageStore = "store";
inline constexpr std::string_view kStageAccount = "account";
inline constexpr std::string_view kStageSource = "source";

class [[nodiscard]] Status {
 public:
  // An OK status.
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Seconds the caller should wait before retrying, when the failure said so
  // (an HTTP 429 Retry-After, for instance).
  std::optional<double> retry_after_seconds() const { return retry_after_seconds_; }
  Status& set_retry_after_seconds(double s) {
    retry_after_seconds_ = s;
    return *this;
  }

  // Attaches (or replaces) the payload under `key`; ignored on an OK status,
  // which carries nothing.
  Status& SetPayload(std::string_view key, std::string value);
  // The payload under `key`, or nullopt.
  std::optional<std::string_view> GetPayload(std::string_view key) const;
  // True when the payload under `key` is `value`.
  bool HasPayload(std::string_view key, std::string_view value) const {
    auto v = GetPayload(key);
    return v.has_value() && *v == value;
  }

  // "CODE: message", or "OK".
  std::string ToString() const;

  // Returns a copy whose message is "context: message". OK stays OK.
  Status WithContext(std::string_view context) const;

  // Marks a status as deliberately ignored.
  void IgnoreError() const {}

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::optional<double> retry_after_seconds_;
  std::vector<std::pair<std::string, std::string>> payloads_;  // few; searched in order
};

Status InvalidArgumentError(std::string message);
Status NotFoundError(std::string message);
Status AlreadyExistsError(std::string message);
Status FailedPreconditionError(std::string message);
Status PermissionDeniedError(std::string message);
Status UnauthenticatedError(std::string message);
Status ResourceExhaustedError(std::string message);
Status UnavailableError(std::string message);
Status DeadlineExceededError(std::string message);
Status InternalError(std::string message);
Status DataLossError(std::string message);
Status AbortedError(std::string message);

// Either a T or a non-OK Status. Accessing value() on an error is a bug (asserts).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(v_).ok() && "Result built from an OK Status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }

  // The error, or OK when a value is held.
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }

  const T& value() const& {
    assert(ok());
    return std::get<T>(v_);
  }
  T& value() & {
    assert(ok());
    return std::get<T>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<T>(std::move(v_));
  }

  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace idsync

#define IDSYNC_CONCAT_INNER_(a, b) a##b
#define IDSYNC_CONCAT_(a, b) IDSYNC_CONCAT_INNER_(a, b)

// Returns the Status from the enclosing function when `expr` is not OK.
#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    ::idsync::Status idsync_status_ = (expr);        \
    if (!idsync_status_.ok()) return idsync_status_; \
  } while (0)

// `lhs = value of expr`, or returns its Status from the enclosing function.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(IDSYNC_CONCAT_(idsync_result_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.status();          \
  lhs = std::move(tmp).value()
