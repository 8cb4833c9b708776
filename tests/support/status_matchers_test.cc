#include "idsync/testing/status_matchers.h"

#include <gtest/gtest.h>

namespace idsync {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

Result<int> Parsed(bool ok) {
  if (!ok) return InvalidArgumentError("line 3: expected a colon");
  return 7;
}

TEST(StatusIs, MatchesCodeAndMessage) {
  EXPECT_THAT(NotFoundError("no such user"), StatusIs(StatusCode::kNotFound));
  EXPECT_THAT(NotFoundError("no such user"), StatusIs(StatusCode::kNotFound, "no such user"));
  EXPECT_THAT(Parsed(false), StatusIs(StatusCode::kInvalidArgument, HasSubstr("line 3")));
  EXPECT_THAT(Parsed(false), Not(StatusIs(StatusCode::kNotFound)));
  EXPECT_THAT(Parsed(false), Not(StatusIs(StatusCode::kInvalidArgument, HasSubstr("line 4"))));
}

TEST(IsOk, MatchesOkStatusAndValues) {
  EXPECT_THAT(Status::Ok(), IsOk());
  EXPECT_THAT(Parsed(true), IsOk());
  EXPECT_THAT(Parsed(false), Not(IsOk()));
}

TEST(StatusIs, ExplainsWhatItGot) {
  ::testing::StringMatchResultListener listener;
  auto matcher = ::testing::SafeMatcherCast<const Status&>(StatusIs(StatusCode::kNotFound));
  EXPECT_FALSE(matcher.MatchAndExplain(InternalError("boom"), &listener));
  EXPECT_THAT(listener.str(), HasSubstr("INTERNAL: boom"));
}

}  // namespace
}  // namespace idsync
