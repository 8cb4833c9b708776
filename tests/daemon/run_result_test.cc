// RunResultOf: the one word a run's report comes to, which the store's run
// log records and idsync_runs_total counts (docs/operations.md).
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "idsync/base/status.h"
#include "idsync/daemon/sync.h"

namespace idsync::daemon {
namespace {

struct Case {
  const char* name;
  ApplyReport report;
  Status error;
  const char* result;
};

ApplyReport With(void (*set)(ApplyReport&)) {
  ApplyReport r;
  set(r);
  return r;
}

TEST(RunResultOf, FirstThatAppliesWins) {
  const std::vector<Case> cases = {
      {"clean", {}, Status::Ok(), "ok"},
      {"error", {}, UnavailableError("store"), "failed"},
      {"error over everything", With([](ApplyReport& r) {
         r.blocked = true;
         r.failed = 2;
       }),
       InternalError("x"), "failed"},
      {"credentials refused", With([](ApplyReport& r) { r.stopped = true; }), Status::Ok(),
       "failed"},
      {"stopped over failed sources", With([](ApplyReport& r) {
         r.stopped = true;
         r.failed_sources = {"hr: down"};
       }),
       Status::Ok(), "failed"},
      {"blocked", With([](ApplyReport& r) { r.blocked = true; }), Status::Ok(), "blocked"},
      {"blocked with a failed source", With([](ApplyReport& r) {
         r.blocked = true;
         r.failed_sources = {"hr: down"};
       }),
       Status::Ok(), "blocked"},
      {"failed source", With([](ApplyReport& r) { r.failed_sources = {"hr: down"}; }), Status::Ok(),
       "source_failed"},
      {"failed source over rejected operations", With([](ApplyReport& r) {
         r.failed_sources = {"hr: down"};
         r.failed = 1;
       }),
       Status::Ok(), "source_failed"},
      {"rejected operation", With([](ApplyReport& r) { r.failed = 1; }), Status::Ok(),
       "operations_failed"},
      {"operation left pending", With([](ApplyReport& r) { r.pending = 3; }), Status::Ok(),
       "operations_failed"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(RunResultOf(c.report, c.error), c.result) << c.name;
    if (c.error.ok()) {
      EXPECT_EQ(RunResultOf(Result<ApplyReport>(c.report)), c.result) << c.name;
    }
  }
}

TEST(RunResultOf, AnErrorInsteadOfAReportIsFailed) {
  EXPECT_EQ(RunResultOf(Result<ApplyReport>(UnavailableError("account down"))), "failed");
}

}  // namespace
}  // namespace idsync::daemon
