// gMock matchers for Status and Result<T>:
//
//   EXPECT_THAT(store.outbox().Complete(c), StatusIs(StatusCode::kNotFound));
//   EXPECT_THAT(Parse(text), StatusIs(StatusCode::kInvalidArgument, HasSubstr("line 3")));
//   EXPECT_THAT(client->Write(invite), IsOk());
//
// A failed match prints the whole status (code and message), which a bare
// EXPECT_EQ(s.code(), ...) does not.
#pragma once

#include <ostream>
#include <string>

#include <gmock/gmock.h>

#include "idsync/base/status.h"

namespace idsync {

// So that gtest prints a Status as "CODE: message".
inline void PrintTo(const Status& status, std::ostream* os) { *os << status.ToString(); }

namespace testing_internal {

inline const Status& GetStatus(const Status& status) { return status; }
template <typename T>
Status GetStatus(const Result<T>& result) {
  return result.status();
}

template <typename MessageMatcher>
class StatusIsMatcher {
 public:
  StatusIsMatcher(StatusCode code, MessageMatcher message)
      : code_(code), message_(std::move(message)) {}

  template <typename T>
  bool MatchAndExplain(const T& value, ::testing::MatchResultListener* listener) const {
    const Status status = GetStatus(value);
    *listener << "which is " << status.ToString();
    if (status.code() != code_) return false;
    return ::testing::SafeMatcherCast<const std::string&>(message_).MatchAndExplain(
        status.message(), listener);
  }

  void DescribeTo(std::ostream* os) const {
    *os << "has code " << StatusCodeName(code_) << " and a message that ";
    ::testing::SafeMatcherCast<const std::string&>(message_).DescribeTo(os);
  }
  void DescribeNegationTo(std::ostream* os) const {
    *os << "does not have code " << StatusCodeName(code_) << " or a message that ";
    ::testing::SafeMatcherCast<const std::string&>(message_).DescribeTo(os);
  }

 private:
  StatusCode code_;
  MessageMatcher message_;
};

}  // namespace testing_internal

// Matches a Status or Result<T> whose code is `code` and whose message
// matches `message` (anything when left out).
template <typename MessageMatcher>
::testing::PolymorphicMatcher<testing_internal::StatusIsMatcher<MessageMatcher>> StatusIs(
    StatusCode code, MessageMatcher message) {
  return ::testing::MakePolymorphicMatcher(
      testing_internal::StatusIsMatcher<MessageMatcher>(code, std::move(message)));
}
inline auto StatusIs(StatusCode code) { return StatusIs(code, ::testing::_); }

// Matches an OK Status or a Result<T> holding a value.
inline auto IsOk() { return StatusIs(StatusCode::kOk); }

}  // namespace idsync
