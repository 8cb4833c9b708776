#include "idsync/base/status.h"

#include <gtest/gtest.h>

#include "idsync/testing/status_matchers.h"

namespace idsync {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgumentError("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int half, Half(x));
  ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

Status CheckEven(int x) {
  RETURN_IF_ERROR(Half(x).status());
  return Status::Ok();
}

TEST(Status, OkByDefault) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(Status, CarriesCodeAndMessage) {
  Status s = NotFoundError("no such user");
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s, StatusIs(StatusCode::kNotFound));
  EXPECT_EQ(s.ToString(), "NOT_FOUND: no such user");
  EXPECT_EQ(s.WithContext("explain").message(), "explain: no such user");
}

TEST(Status, RetryAfterSurvivesContext) {
  Status s = ResourceExhaustedError("slow down");
  s.set_retry_after_seconds(2.5);
  EXPECT_EQ(s.WithContext("invite").retry_after_seconds(), 2.5);
}

TEST(Status, PayloadsAreFactsBesideTheMessage) {
  Status s = AlreadyExistsError("the address is in use");
  EXPECT_FALSE(s.GetPayload("user_id").has_value());
  s.SetPayload("user_id", "u_1").SetPayload(kStageKey, std::string(kStageAccount));
  EXPECT_EQ(s.GetPayload("user_id"), "u_1");
  EXPECT_TRUE(s.HasPayload(kStageKey, kStageAccount));
  EXPECT_FALSE(s.HasPayload(kStageKey, kStageStore));
  s.SetPayload("user_id", "u_2");  // replaced, not added
  EXPECT_EQ(s.GetPayload("user_id"), "u_2");
  // Context changes the message people read, never the facts.
  Status c = s.WithContext("invite ana").WithContext("run 7");
  EXPECT_EQ(c.message(), "run 7: invite ana: the address is in use");
  EXPECT_EQ(c.GetPayload("user_id"), "u_2");
  EXPECT_TRUE(c.HasPayload(kStageKey, kStageAccount));
}

TEST(Status, OkCarriesNoPayload) {
  Status ok;
  ok.SetPayload("k", "v");
  EXPECT_FALSE(ok.GetPayload("k").has_value());
}

TEST(Result, PropagatesThroughMacros) {
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r, StatusIs(StatusCode::kInvalidArgument));
  EXPECT_TRUE(CheckEven(4).ok());
  EXPECT_THAT(CheckEven(3), StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace idsync
