// The log of refused calls (server/refusal_log.h): counted by reason, one line each at a limited
// rate with a note of what was left out, and never a credential.
#include "server/refusal_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "logging/log.h"

namespace outreach::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class RefusalLogTest : public ::testing::Test {
 protected:
  RefusalLog log_{[this](absl::string_view line) { lines_.emplace_back(line); },
                  [this] { return now_; }};
  std::vector<std::string> lines_;
  absl::Time now_ = absl::FromUnixSeconds(1767225600);
};

TEST_F(RefusalLogTest, EveryRefusalIsCountedByReason) {
  for (int i = 0; i < 50; ++i) {
    log_.Refused(absl::UnauthenticatedError("unknown bearer token"), "", "/m", "ipv4:1.2.3.4:5");
  }
  for (int i = 0; i < 10; ++i) {
    log_.Refused(absl::PermissionDeniedError("may not call"), "nurse.kim", "/m", "peer");
  }
  log_.Refused(absl::InvalidArgumentError("x-on-behalf-of: send one id"), "svc", "/m", "peer");
  const RefusalLog::Counts counts = log_.counts();
  EXPECT_EQ(counts.unauthenticated, 50u);
  EXPECT_EQ(counts.permission_denied, 10u);
  EXPECT_EQ(counts.invalid_metadata, 1u);
  EXPECT_EQ(counts.lines_suppressed + lines_.size(), 61u);
}

TEST_F(RefusalLogTest, ALineNamesCodePrincipalMethodAndPeer) {
  log_.Refused(absl::UnauthenticatedError("unknown bearer token"), "",
               "/outreach.v1.TaskService/GetTask", "ipv4:127.0.0.1:5555");
  log_.Refused(absl::PermissionDeniedError("principal nurse.kim (coordinator) may not call"),
               "nurse.kim", "/outreach.v1.TaskService/CreateTask", "ipv6:[::1]:4");
  ASSERT_EQ(lines_.size(), 2u);
  EXPECT_EQ(lines_[0],
            "outreachd: refused: code=UNAUTHENTICATED principal=unknown "
            "method=/outreach.v1.TaskService/GetTask peer=ipv4:127.0.0.1:5555 "
            "reason=\"unknown bearer token\"");
  EXPECT_THAT(lines_[1], HasSubstr("code=PERMISSION_DENIED principal=nurse.kim "));
}

TEST_F(RefusalLogTest, AFloodIsRateLimitedAndTheNextLineSaysHowManyWereLeftOut) {
  for (int i = 0; i < 1000; ++i) {
    log_.Refused(absl::UnauthenticatedError("unknown bearer token"), "", "/m", "peer");
  }
  EXPECT_EQ(lines_.size(), static_cast<std::size_t>(RefusalLog::kBurst));
  EXPECT_EQ(log_.counts().lines_suppressed, 1000u - RefusalLog::kBurst);
  now_ += absl::Seconds(1);
  log_.Refused(absl::UnauthenticatedError("unknown bearer token"), "", "/m", "peer");
  ASSERT_EQ(lines_.size(), static_cast<std::size_t>(RefusalLog::kBurst) + 1);
  EXPECT_THAT(lines_.back(),
              HasSubstr(absl::StrCat("(", 1000 - RefusalLog::kBurst,
                                     " refused call(s) before this one not logged)")));
  EXPECT_EQ(log_.counts().unauthenticated, 1001u);
}

TEST_F(RefusalLogTest, AReasonStaysOnOneLine) {
  log_.Refused(absl::InvalidArgumentError("x-actor: \"a\nforged line\""), "", "/m", "peer");
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_THAT(lines_[0], Not(HasSubstr("\n")));
}

}  // namespace
}  // namespace outreach::server

namespace outreach::server {
namespace {

// Without a sink of its own a refusal is a warning record of the process's log (logging/log.h),
// with the same fields.
TEST(RefusalLogDefaultSinkTest, ARefusalIsAJsonWarningWithItsFields) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_NONBLOCK), 0);
  logging::Configure({.format = logging::Format::kJson, .fd = fds[1]});
  RefusalLog log;
  log.Refused(absl::PermissionDeniedError("principal nurse.kim (coordinator) may not call"),
              "nurse.kim", "/outreach.v1.TaskService/CreateTask", "ipv4:127.0.0.1:4");
  logging::Configure(logging::Options());
  char buffer[4096];
  const ssize_t n = read(fds[0], buffer, sizeof(buffer));
  close(fds[0]);
  close(fds[1]);
  ASSERT_GT(n, 0);
  const std::string line(buffer, static_cast<std::size_t>(n));
  EXPECT_THAT(line, HasSubstr("\"level\":\"warning\",\"msg\":\"refused:\""));
  EXPECT_THAT(line, HasSubstr("\"code\":\"PERMISSION_DENIED\",\"principal\":\"nurse.kim\","
                              "\"method\":\"/outreach.v1.TaskService/CreateTask\","
                              "\"peer\":\"ipv4:127.0.0.1:4\","
                              "\"reason\":\"principal nurse.kim (coordinator) may not call\","
                              "\"not_logged_before\":0}\n"));
  EXPECT_EQ(log.counts().permission_denied, 1u);
}

}  // namespace
}  // namespace outreach::server
