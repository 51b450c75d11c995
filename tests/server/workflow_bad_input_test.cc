// SPEC §5 for issue 13's RPCs: every bad AssignTask, ClaimTask and CancelTask gets its exact
// code, a message naming the field (or, for a closed task, saying so), and appends nothing. The
// new CreateTask and LogContact fields are in bad_input_test.cc's tables.
#include <functional>
#include <ostream>
#include <string>
#include <utility>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testing/server_fixture.h"

namespace outreach::server::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string kTooLongId(65, 'x');

// One bad call: `call` spoils a valid request on "task-1" (open, assigned to nurse-1) or names
// "task-closed" (cancelled); the error is `code`, and its message starts with `field` + ":", or
// for a refusal that is about the task rather than a field, says `says`.
class BadWorkflowCallTest;
struct BadCall {
  std::string name;
  std::function<grpc::Status(BadWorkflowCallTest&, v1::Task*)> call;
  std::string field;
  grpc::StatusCode code = grpc::StatusCode::INVALID_ARGUMENT;
  std::string says = "is closed";
};
BadCall Saying(BadCall c, std::string says) {
  c.says = std::move(says);
  return c;
}
// ctest lists the case by its name, not by its bytes.
void PrintTo(const BadCall& c, std::ostream* os) { *os << c.name; }

class BadWorkflowCallTest : public ServerFixture, public ::testing::WithParamInterface<BadCall> {
 public:
  // For the table's calls.
  using ServerFixture::Assign;
  using ServerFixture::AssignRequest;
  using ServerFixture::Cancel;
  using ServerFixture::CancelRequest;
  using ServerFixture::Claim;
  using ServerFixture::ClaimRequest;
};

TEST_P(BadWorkflowCallTest, IsRefusedWithItsCodeNamingTheFieldAndAppendsNothing) {
  v1::CreateTaskRequest create = ManualRequest("task-1");
  create.set_assignee("nurse-1");
  v1::Task task;
  ASSERT_TRUE(Create(create, &task).ok());
  CreateManual("task-closed");
  ASSERT_TRUE(Cancel(CancelRequest("task-closed"), &task).ok());
  clock_.Advance(absl::Minutes(10));
  const uint64_t head = Head();
  grpc::Status status = GetParam().call(*this, &task);
  EXPECT_EQ(status.error_code(), GetParam().code) << status.error_message();
  if (GetParam().field.empty()) {
    EXPECT_THAT(status.error_message(), HasSubstr(GetParam().says));
  } else {
    EXPECT_THAT(status.error_message(), StartsWith(GetParam().field + ":"));
  }
  EXPECT_EQ(Head(), head);
  ASSERT_TRUE(Get("task-1", &task).ok());
  EXPECT_EQ(task.version(), 1);
  EXPECT_EQ(task.assignee(), "nurse-1");
}

// Builders: a valid request on "task-1", changed by `spoil`.
BadCall BadAssign(std::string name, std::function<void(v1::AssignTaskRequest&)> spoil,
                  std::string field, grpc::StatusCode code = grpc::StatusCode::INVALID_ARGUMENT) {
  return BadCall{"AssignTask" + name,
                 [spoil](BadWorkflowCallTest& t, v1::Task* task) {
                   v1::AssignTaskRequest r =
                       BadWorkflowCallTest::AssignRequest("task-1", "nurse-2");
                   spoil(r);
                   return t.Assign(r, task);
                 },
                 std::move(field), code};
}
BadCall BadClaim(std::string name, std::function<void(v1::ClaimTaskRequest&)> spoil,
                 std::string field, grpc::StatusCode code = grpc::StatusCode::INVALID_ARGUMENT,
                 std::string actor = "nurse-2") {
  return BadCall{"ClaimTask" + name,
                 [spoil, actor](BadWorkflowCallTest& t, v1::Task* task) {
                   v1::ClaimTaskRequest r = BadWorkflowCallTest::ClaimRequest("task-1");
                   spoil(r);
                   return t.Claim(r, task, actor);
                 },
                 std::move(field), code};
}
BadCall BadCancel(std::string name, std::function<void(v1::CancelTaskRequest&)> spoil,
                  std::string field, grpc::StatusCode code = grpc::StatusCode::INVALID_ARGUMENT) {
  return BadCall{"CancelTask" + name,
                 [spoil](BadWorkflowCallTest& t, v1::Task* task) {
                   v1::CancelTaskRequest r = BadWorkflowCallTest::CancelRequest("task-1");
                   spoil(r);
                   return t.Cancel(r, task);
                 },
                 std::move(field), code};
}

using grpc::StatusCode;

INSTANTIATE_TEST_SUITE_P(
    Spec5, BadWorkflowCallTest,
    ::testing::Values(
        BadAssign("TaskIdMissing", [](auto& r) { r.clear_task_id(); }, "task_id"),
        BadAssign("TaskIdTooLong", [](auto& r) { r.set_task_id(kTooLongId); }, "task_id"),
        BadAssign("TaskIdUnknown", [](auto& r) { r.set_task_id("ghost"); }, "task_id",
                  StatusCode::NOT_FOUND),
        BadAssign("TaskClosed", [](auto& r) { r.set_task_id("task-closed"); }, "",
                  StatusCode::FAILED_PRECONDITION),
        BadAssign("AssigneeWithSpace", [](auto& r) { r.set_assignee("nurse kim"); }, "assignee"),
        BadAssign("AssigneeTooLong", [](auto& r) { r.set_assignee(kTooLongId); }, "assignee"),
        BadAssign("AssigneeGroupWithoutId", [](auto& r) { r.set_assignee("group:"); },
                  "assignee"),
        BadAssign("AssigneeReservedForTheService",
                  [](auto& r) { r.set_assignee("system:expiry"); }, "assignee"),
        BadAssign("ExpectedVersionNegative", [](auto& r) { r.set_expected_version(-2); },
                  "expected_version"),
        BadAssign("ExpectedVersionStale", [](auto& r) { r.set_expected_version(7); },
                  "expected_version", StatusCode::ABORTED),
        BadAssign("RequestIdWithSlash", [](auto& r) { r.set_request_id("a/b"); }, "request_id"),
        BadClaim("TaskIdMissing", [](auto& r) { r.clear_task_id(); }, "task_id"),
        BadClaim("TaskIdUnknown", [](auto& r) { r.set_task_id("ghost"); }, "task_id",
                 StatusCode::NOT_FOUND),
        BadClaim("TaskClosed", [](auto& r) { r.set_task_id("task-closed"); }, "",
                 StatusCode::FAILED_PRECONDITION),
        Saying(BadClaim("AssignedToAnotherUser", [](auto&) {}, "",
                        StatusCode::FAILED_PRECONDITION),
               "is assigned to \"nurse-1\""),
        BadClaim("ByAGroup", [](auto&) {}, "actor", StatusCode::INVALID_ARGUMENT,
                 "group:front-desk"),
        BadClaim("ExpectedVersionNegative", [](auto& r) { r.set_expected_version(-1); },
                 "expected_version"),
        BadClaim("ExpectedVersionStale", [](auto& r) { r.set_expected_version(3); },
                 "expected_version", StatusCode::ABORTED),
        BadClaim("RequestIdTooLong", [](auto& r) { r.set_request_id(kTooLongId); },
                 "request_id"),
        BadCancel("TaskIdMissing", [](auto& r) { r.clear_task_id(); }, "task_id"),
        BadCancel("TaskIdUnknown", [](auto& r) { r.set_task_id("ghost"); }, "task_id",
                  StatusCode::NOT_FOUND),
        BadCancel("TaskClosed", [](auto& r) { r.set_task_id("task-closed"); }, "",
                  StatusCode::FAILED_PRECONDITION),
        BadCancel("ReasonUnspecified", [](auto& r) { r.clear_reason(); }, "reason"),
        BadCancel("ReasonExpired", [](auto& r) { r.set_reason(v1::EXPIRED); }, "reason"),
        BadCancel("ReasonMaxAttempts", [](auto& r) { r.set_reason(v1::MAX_ATTEMPTS); },
                  "reason"),
        BadCancel("ReasonUnknownNumber",
                  [](auto& r) { r.set_reason(static_cast<v1::CloseReason>(77)); }, "reason"),
        BadCancel("NotesMissing", [](auto& r) { r.clear_notes(); }, "notes"),
        BadCancel("NotesBlank", [](auto& r) { r.set_notes("  \n "); }, "notes"),
        BadCancel("NotesOver4000Characters", [](auto& r) { r.set_notes(std::string(4001, 'n')); },
                  "notes"),
        BadCancel("NotesWithAnEscapeSequence", [](auto& r) { r.set_notes("moved\x1b[2J"); },
                  "notes"),
        BadCancel("ExpectedVersionNegative", [](auto& r) { r.set_expected_version(-1); },
                  "expected_version"),
        BadCancel("ExpectedVersionStale", [](auto& r) { r.set_expected_version(2); },
                  "expected_version", StatusCode::ABORTED),
        BadCancel("RequestIdWithSpace", [](auto& r) { r.set_request_id("req 1"); },
                  "request_id")),
    [](const ::testing::TestParamInfo<BadCall>& info) { return info.param.name; });

}  // namespace
}  // namespace outreach::server::testing
