// Issue 13 through the generated stubs: a recall with a cadence and a cap on attempts, channels,
// do-not-contact, AssignTask, ClaimTask, CancelTask, their idempotency (also across a restart)
// and their access records. Their bad inputs: workflow_bad_input_test.cc.
#include <functional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "domain/validation.h"
#include "store/access_log.h"
#include "store/event_json.h"
#include "store/event_codec.h"
#include "tests/testing/server_fixture.h"

namespace outreach::server::testing {
namespace {

using ::testing::HasSubstr;

class WorkflowServiceTest : public ServerFixture {
 public:
  // For the replay table's calls.
  using ServerFixture::Assign;
  using ServerFixture::AssignRequest;
  using ServerFixture::Cancel;
  using ServerFixture::CancelRequest;
  using ServerFixture::Claim;
  using ServerFixture::ClaimRequest;

 protected:
  // A Log Contact without a follow-up date (the cadence or the cap decides).
  static v1::LogContactRequest CadenceContact(const std::string& task_id,
                                              v1::ContactOutcome outcome) {
    v1::LogContactRequest request = LogContactRequest(task_id);
    request.set_outcome(outcome);
    request.clear_follow_up_date();
    return request;
  }
  uint64_t AccessHead() { return store_->access_log()->HeadSequence(); }
};

// --- Practices, categories, cadence and attempts ------------------------------------------------

TEST_F(WorkflowServiceTest, RecallWithA1_7_21_60CadenceClosesAtItsFourthAttempt) {
  v1::CreateTaskRequest create = ManualRequest("recall-1");
  create.set_practice_id("north-clinic");
  create.set_category(v1::RECALL_OVERDUE);
  create.set_rule_id("recall.6mo");
  create.set_priority(v1::URGENT);
  for (int day : {1, 7, 21, 60}) create.add_cadence_days(day);
  create.set_max_attempts(4);
  create.set_assignee("group:front-desk");
  v1::Task task;
  ASSERT_TRUE(Create(create, &task).ok());
  EXPECT_EQ(task.practice_id(), "north-clinic");
  EXPECT_EQ(task.category(), v1::RECALL_OVERDUE);
  EXPECT_EQ(task.rule_id(), "recall.6mo");
  EXPECT_EQ(task.priority(), v1::URGENT);
  EXPECT_EQ(task.cadence_start_date(), kToday);
  EXPECT_EQ(task.follow_up_date(), "2025-03-11");  // today + 1

  ASSERT_TRUE(Claim(ClaimRequest("recall-1"), &task, "nurse.kim").ok());
  EXPECT_EQ(task.assignee(), "nurse.kim");
  // Each contact without a date gets the cadence's next step, counted from the creation date.
  const char* const expected[] = {"2025-03-17", "2025-03-31", "2025-05-09"};
  for (const char* follow_up : expected) {
    clock_.Advance(absl::Hours(24));
    grpc::Status status = Log(CadenceContact("recall-1", v1::NO_ANSWER), &task, "nurse.kim");
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(task.follow_up_date(), follow_up);
    EXPECT_EQ(task.status(), v1::IN_PROGRESS);
  }
  EXPECT_EQ(task.attempt_count(), 3);
  // The fourth attempt reaches max_attempts: logged, then closed, in one batch.
  const uint64_t head = Head();
  v1::LogContactRequest last = CadenceContact("recall-1", v1::LEFT_MESSAGE);
  last.set_channel(v1::SMS);
  ASSERT_TRUE(Log(last, &task, "nurse.kim").ok());
  EXPECT_EQ(task.status(), v1::CLOSED);
  EXPECT_EQ(task.close_reason(), v1::MAX_ATTEMPTS);
  EXPECT_EQ(task.closing_outcome(), v1::LEFT_MESSAGE);
  EXPECT_EQ(task.attempt_count(), 4);
  EXPECT_EQ(task.reached_count(), 0);
  EXPECT_EQ(task.last_outcome(), v1::LEFT_MESSAGE);
  EXPECT_EQ(task.contacts(3).channel(), v1::SMS);
  std::vector<v1::EventRecord> appended = ReadEvents(head + 1);
  ASSERT_EQ(appended.size(), 2u);
  EXPECT_FALSE(appended[0].contact_logged().close_task());
  EXPECT_EQ(appended[1].task_closed().reason(), v1::MAX_ATTEMPTS);
  EXPECT_EQ(appended[1].actor(), "nurse.kim");
  EXPECT_TRUE(Verify().ok());
}

TEST_F(WorkflowServiceTest, OldClientsGetTheDefaultPracticeCustomRoutineAndPhoneOutbound) {
  v1::Task task = CreateManual("task-1");
  EXPECT_EQ(task.practice_id(), "default");
  EXPECT_EQ(task.category(), v1::CUSTOM);
  EXPECT_EQ(task.priority(), v1::ROUTINE);
  ASSERT_TRUE(Log(LogContactRequest("task-1"), &task).ok());
  EXPECT_EQ(task.contacts(0).channel(), v1::PHONE);
  EXPECT_EQ(task.contacts(0).direction(), v1::OUTBOUND);
  EXPECT_EQ(task.attempt_count(), 1);
  std::vector<v1::EventRecord> events = ReadEvents();
  EXPECT_EQ(events[0].schema_version(), store::kEventSchemaVersion);
  EXPECT_EQ(events[0].task_created().practice_id(), "default");
  EXPECT_EQ(events[1].contact_logged().channel(), v1::PHONE);
}

TEST_F(WorkflowServiceTest, PastTheCadencesEndAFollowUpDateIsRequiredAgain) {
  v1::CreateTaskRequest create = ManualRequest("task-1");
  create.add_cadence_days(2);
  v1::Task task;
  ASSERT_TRUE(Create(create, &task).ok());
  EXPECT_EQ(task.follow_up_date(), "2025-03-12");
  const uint64_t head = Head();
  grpc::Status status = Log(CadenceContact("task-1", v1::NO_ANSWER), &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), ::testing::StartsWith("follow_up_date: required"));
  EXPECT_EQ(Head(), head);
}

TEST_F(WorkflowServiceTest, RequestedNoContactClosesWithDoNotContactAndCountsAsReached) {
  CreateManual("task-1");
  v1::LogContactRequest request = LogContactRequest("task-1");
  request.set_outcome(v1::REQUESTED_NO_CONTACT);
  request.clear_follow_up_date();
  request.set_close_task(true);
  request.set_channel(v1::PHONE);
  request.set_direction(v1::INBOUND);
  v1::Task task;
  ASSERT_TRUE(Log(request, &task).ok());
  EXPECT_EQ(task.status(), v1::CLOSED);
  EXPECT_EQ(task.close_reason(), v1::DO_NOT_CONTACT);
  EXPECT_EQ(task.closing_outcome(), v1::REQUESTED_NO_CONTACT);
  EXPECT_EQ(task.reached_count(), 1);
  EXPECT_EQ(task.contacts(0).direction(), v1::INBOUND);
}

// --- AssignTask ----------------------------------------------------------------------------------

TEST_F(WorkflowServiceTest, AssignTaskHandsTheTaskOverAndTheWorklistFollows) {
  CreateManual("task-1");
  v1::Task task;
  ASSERT_TRUE(Assign(AssignRequest("task-1", "nurse-1"), &task, "lead").ok());
  EXPECT_EQ(task.assignee(), "nurse-1");
  EXPECT_EQ(task.version(), 2);
  std::vector<v1::EventRecord> events = ReadEvents(2);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].task_assigned().assignee(), "nurse-1");
  EXPECT_EQ(events[0].task_assigned().previous_assignee(), "");
  EXPECT_EQ(events[0].actor(), "lead");
  v1::ListTasksRequest mine;
  mine.set_assignee("nurse-1");
  v1::ListTasksResponse list;
  ASSERT_TRUE(List(mine, &list).ok());
  ASSERT_EQ(list.tasks_size(), 1);

  // To a group, then to nobody: the worklist of nurse-1 empties.
  ASSERT_TRUE(Assign(AssignRequest("task-1", "group:front-desk"), &task).ok());
  ASSERT_TRUE(Assign(AssignRequest("task-1", ""), &task).ok());
  EXPECT_EQ(task.assignee(), "");
  EXPECT_EQ(task.version(), 4);
  ASSERT_TRUE(List(mine, &list).ok());
  EXPECT_EQ(list.tasks_size(), 0);
  EXPECT_TRUE(Verify().ok());
}

TEST_F(WorkflowServiceTest, AssignTaskToTheSameAssigneeAppendsNothingAndReturnsTheTask) {
  CreateManual("task-1");
  v1::Task task;
  ASSERT_TRUE(Assign(AssignRequest("task-1", "nurse-1"), &task).ok());
  const uint64_t head = Head();
  v1::Task again;
  ASSERT_TRUE(Assign(AssignRequest("task-1", "nurse-1"), &again).ok());
  EXPECT_EQ(again.SerializeAsString(), task.SerializeAsString());
  EXPECT_EQ(Head(), head);
}

TEST_F(WorkflowServiceTest, TaskAssignedIsServedAsJsonAndFilteredByItsType) {
  CreateManual("task-1");
  v1::Task task;
  ASSERT_TRUE(Log(LogContactRequest("task-1"), &task).ok());
  ASSERT_TRUE(Assign(AssignRequest("task-1", "nurse-1"), &task).ok());
  v1::SubscribeEventsRequest request;
  request.add_event_types(v1::TASK_ASSIGNED);
  auto context = Context();
  auto reader = events_->SubscribeEvents(context.get(), request);
  v1::EventRecord record;
  ASSERT_TRUE(reader->Read(&record));
  context->TryCancel();
  reader->Finish();
  EXPECT_EQ(record.position(), 3u);
  ASSERT_TRUE(record.has_task_assigned());
  absl::StatusOr<std::string> json = store::EventToJson(record);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_THAT(*json, HasSubstr("\"taskAssigned\":{\"assignee\":\"nurse-1\"}"));
}

// --- ClaimTask -----------------------------------------------------------------------------------

TEST_F(WorkflowServiceTest, ClaimTaskTakesAGroupsTaskAndRefusesAnotherUsers) {
  v1::CreateTaskRequest create = ManualRequest("task-1");
  create.set_assignee("group:front-desk");
  v1::Task task;
  ASSERT_TRUE(Create(create, &task).ok());
  ASSERT_TRUE(Claim(ClaimRequest("task-1"), &task, "nurse-1").ok());
  EXPECT_EQ(task.assignee(), "nurse-1");
  const uint64_t head = Head();
  grpc::Status other = Claim(ClaimRequest("task-1"), &task, "nurse-2");
  EXPECT_EQ(other.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(other.error_message(), HasSubstr("nurse-1"));
  // Already the caller's: nothing appended.
  ASSERT_TRUE(Claim(ClaimRequest("task-1"), &task, "nurse-1").ok());
  EXPECT_EQ(task.version(), 2);
  EXPECT_EQ(Head(), head);
}

// --- CancelTask ----------------------------------------------------------------------------------

TEST_F(WorkflowServiceTest, CancelTaskClosesWithTheReasonAndNotes) {
  CreateManual("task-1");
  v1::CancelTaskRequest request = CancelRequest("task-1");
  request.set_reason(v1::ENTERED_IN_ERROR);
  request.set_notes("Created for the wrong patient.");
  request.set_expected_version(1);
  v1::Task task;
  ASSERT_TRUE(Cancel(request, &task, "lead").ok());
  EXPECT_EQ(task.status(), v1::CLOSED);
  EXPECT_EQ(task.close_reason(), v1::ENTERED_IN_ERROR);
  EXPECT_EQ(task.close_notes(), "Created for the wrong patient.");
  EXPECT_EQ(task.closed_by(), "lead");
  std::vector<v1::EventRecord> events = ReadEvents(2);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].task_closed().reason(), v1::ENTERED_IN_ERROR);
  EXPECT_EQ(events[0].task_closed().notes(), "Created for the wrong patient.");
  // Closed: no contact, no second cancel, out of the open worklist.
  EXPECT_EQ(Log(LogContactRequest("task-1"), &task).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Cancel(CancelRequest("task-1"), &task).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  v1::ListTasksResponse list;
  ASSERT_TRUE(List(v1::ListTasksRequest(), &list).ok());
  EXPECT_EQ(list.tasks_size(), 0);
  EXPECT_EQ(Head(), 2u);
}

// --- Idempotency: the same request id returns the first result, across a restart ---------------

struct Replay {
  std::string name;
  // Sends the request with `request_id`, `variant` 0 (the first content) or 1 (other content).
  std::function<grpc::Status(WorkflowServiceTest&, const std::string& request_id, int variant,
                             v1::Task*)>
      call;
};
void PrintTo(const Replay& r, std::ostream* os) { *os << r.name; }

class ReplayTest : public WorkflowServiceTest, public ::testing::WithParamInterface<Replay> {};

TEST_P(ReplayTest, ReturnsTheFirstResultAppendsNothingAndRefusesOtherContent) {
  v1::CreateTaskRequest create = ManualRequest("task-1");
  create.set_assignee("group:front-desk");
  v1::Task task;
  ASSERT_TRUE(Create(create, &task).ok());
  v1::Task first;
  grpc::Status status = GetParam().call(*this, "req-1", 0, &first);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(first.version(), 2);
  const uint64_t head = Head();
  clock_.Advance(absl::Minutes(1));
  v1::Task again;
  ASSERT_TRUE(GetParam().call(*this, "req-1", 0, &again).ok());
  EXPECT_EQ(again.SerializeAsString(), first.SerializeAsString());
  ASSERT_NO_FATAL_FAILURE(Restart());
  ASSERT_TRUE(GetParam().call(*this, "req-1", 0, &again).ok());
  EXPECT_EQ(again.SerializeAsString(), first.SerializeAsString());
  status = GetParam().call(*this, "req-1", 1, &again);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS) << status.error_message();
  EXPECT_THAT(status.error_message(), ::testing::StartsWith("request_id:"));
  EXPECT_EQ(Head(), head);
}

INSTANTIATE_TEST_SUITE_P(
    Issue13, ReplayTest,
    ::testing::Values(
        Replay{"AssignTask",
               [](WorkflowServiceTest& t, const std::string& id, int variant, v1::Task* task) {
                 v1::AssignTaskRequest r = WorkflowServiceTest::AssignRequest(
                     "task-1", variant == 0 ? "nurse-1" : "nurse-2");
                 r.set_request_id(id);
                 return t.Assign(r, task, "lead");
               }},
        Replay{"ClaimTask",
               [](WorkflowServiceTest& t, const std::string& id, int variant, v1::Task* task) {
                 v1::ClaimTaskRequest r = WorkflowServiceTest::ClaimRequest("task-1");
                 r.set_expected_version(variant == 0 ? 1 : 0);
                 r.set_request_id(id);
                 return t.Claim(r, task, "nurse-1");
               }},
        Replay{"CancelTask",
               [](WorkflowServiceTest& t, const std::string& id, int variant, v1::Task* task) {
                 v1::CancelTaskRequest r = WorkflowServiceTest::CancelRequest("task-1");
                 if (variant == 1) r.set_notes("Another reason.");
                 r.set_request_id(id);
                 return t.Cancel(r, task, "lead");
               }}),
    [](const ::testing::TestParamInfo<Replay>& info) { return info.param.name; });

// --- Access records: each answers with the whole task, a read of patient data ------------------

TEST_F(WorkflowServiceTest, AssignClaimAndCancelEachAppendAnAccessRecord) {
  CreateManual("task-1");
  const uint64_t before = AccessHead();
  v1::Task task;
  ASSERT_TRUE(Assign(AssignRequest("task-1", "group:front-desk"), &task).ok());
  ASSERT_TRUE(Claim(ClaimRequest("task-1"), &task, "nurse-1").ok());
  ASSERT_TRUE(Cancel(CancelRequest("task-1"), &task, "nurse-1").ok());
  ASSERT_EQ(AccessHead(), before + 3);
  absl::StatusOr<std::vector<store::StoredAccessRecord>> records =
      store_->access_log()->Read(store::AccessQuery());
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_GE(records->size(), 3u);
  const std::vector<std::string> rpcs = {"/outreach.v1.TaskService/AssignTask",
                                         "/outreach.v1.TaskService/ClaimTask",
                                         "/outreach.v1.TaskService/CancelTask"};
  for (std::size_t i = 0; i < 3; ++i) {
    const storage::v1::AccessRecord& r = (*records)[records->size() - 3 + i].record;
    EXPECT_EQ(r.rpc(), rpcs[i]);
    EXPECT_THAT(r.task_ids(), ::testing::ElementsAre("task-1"));
  }
}

// --- Refused calls return no patient data, so they record nothing -----------------------------

TEST_F(WorkflowServiceTest, RefusedCallsAppendNoAccessRecord) {
  CreateManual("task-1");
  const uint64_t before = AccessHead();
  v1::Task task;
  EXPECT_EQ(Assign(AssignRequest("task-1", "nurse kim"), &task).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Claim(ClaimRequest("no-such-task"), &task).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(AccessHead(), before);
}

}  // namespace
}  // namespace outreach::server::testing
