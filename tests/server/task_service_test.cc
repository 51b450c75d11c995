// TaskService through generated stubs: the article's workflow, idempotency, concurrency control,
// actors, and the worklist.
#include <string>
#include <tuple>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "domain/validation.h"
#include "store/expiry_scheduler.h"
#include "tests/testing/server_fixture.h"

namespace outreach::server::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class TaskServiceTest : public ServerFixture {};

// --- The article's four outcomes, on both of its buttons -----------------------------------

class ArticleOutcomeTest
    : public ServerFixture,
      public ::testing::WithParamInterface<std::tuple<v1::ContactOutcome, bool>> {};

TEST_P(ArticleOutcomeTest, ActionDecidesTheStatus) {
  const auto [outcome, close] = GetParam();
  CreateManual("task-1");
  const uint64_t head = Head();

  v1::LogContactRequest request;
  request.set_task_id("task-1");
  request.set_outcome(outcome);
  request.set_notes("Called the patient.");
  request.set_close_task(close);
  if (!close) request.set_follow_up_date(kNextWeek);
  v1::Task task;
  grpc::Status status = Log(request, &task);
  ASSERT_TRUE(status.ok()) << status.error_message();

  ASSERT_EQ(task.contacts_size(), 1);
  EXPECT_EQ(task.contacts(0).outcome(), outcome);
  EXPECT_EQ(task.contacts(0).notes(), "Called the patient.");
  EXPECT_EQ(task.contacts(0).logged_by(), "anonymous");
  std::vector<v1::EventRecord> appended = ReadEvents(head + 1);
  if (close) {
    // Log and Close: CLOSED with reason CONTACT_OUTCOME; ContactLogged + TaskClosed adjacent.
    EXPECT_EQ(task.status(), v1::CLOSED);
    EXPECT_EQ(task.close_reason(), v1::CONTACT_OUTCOME);
    EXPECT_EQ(task.closing_outcome(), outcome);
    EXPECT_EQ(task.follow_up_date(), "");
    EXPECT_EQ(task.version(), 3);
    ASSERT_EQ(appended.size(), 2u);
    EXPECT_TRUE(appended[0].has_contact_logged());
    EXPECT_TRUE(appended[0].contact_logged().close_task());
    EXPECT_TRUE(appended[1].has_task_closed());
    EXPECT_EQ(appended[1].task_closed().reason(), v1::CONTACT_OUTCOME);
    EXPECT_EQ(appended[1].task_closed().outcome(), outcome);
    EXPECT_EQ(appended[1].position(), appended[0].position() + 1);
  } else {
    // Log Contact: IN_PROGRESS with the new follow-up date, whatever the outcome.
    EXPECT_EQ(task.status(), v1::IN_PROGRESS);
    EXPECT_EQ(task.follow_up_date(), kNextWeek);
    EXPECT_EQ(task.contacts(0).follow_up_date(), kNextWeek);
    EXPECT_EQ(task.close_reason(), v1::CLOSE_REASON_UNSPECIFIED);
    EXPECT_EQ(task.version(), 2);
    ASSERT_EQ(appended.size(), 1u);
    EXPECT_EQ(appended[0].contact_logged().outcome(), outcome);
    EXPECT_EQ(appended[0].contact_logged().follow_up_date(), kNextWeek);
  }
  v1::Task read;
  ASSERT_TRUE(Get("task-1", &read).ok());
  EXPECT_EQ(read.SerializeAsString(), task.SerializeAsString());
  EXPECT_TRUE(Verify().ok());
}

INSTANTIATE_TEST_SUITE_P(
    AllOutcomesBothButtons, ArticleOutcomeTest,
    ::testing::Combine(::testing::Values(v1::NO_ANSWER, v1::LEFT_MESSAGE, v1::DID_NOT_SCHEDULE,
                                         v1::SCHEDULED),
                       ::testing::Bool()),
    [](const ::testing::TestParamInfo<ArticleOutcomeTest::ParamType>& info) {
      return v1::ContactOutcome_Name(std::get<0>(info.param)) +
             (std::get<1>(info.param) ? "_LogAndCloseTask" : "_LogContact");
    });

TEST_F(TaskServiceTest, ArticleWorkflowNoAnswerThenScheduledAndClosed) {
  v1::CreateTaskRequest create = ManualRequest("visit-42");
  create.set_assignee("coordinator-7");
  v1::Task task;
  ASSERT_TRUE(Create(create, &task, "coordinator-7").ok());
  EXPECT_EQ(task.status(), v1::OPEN);
  EXPECT_EQ(task.version(), 1);
  EXPECT_EQ(task.created_by(), "coordinator-7");
  EXPECT_EQ(domain::FromProto(task.created_at()), TestStart());

  v1::LogContactRequest first = LogContactRequest("visit-42");
  first.set_expected_version(1);
  ASSERT_TRUE(Log(first, &task, "coordinator-7").ok());
  EXPECT_EQ(task.status(), v1::IN_PROGRESS);

  clock_.Advance(absl::Hours(24 * 7));
  v1::LogContactRequest second;
  second.set_task_id("visit-42");
  second.set_outcome(v1::SCHEDULED);
  second.set_notes("Booked for April 2.");
  second.set_close_task(true);
  second.set_expected_version(2);
  ASSERT_TRUE(Log(second, &task, "coordinator-7").ok());
  EXPECT_EQ(task.status(), v1::CLOSED);
  EXPECT_EQ(task.close_reason(), v1::CONTACT_OUTCOME);
  EXPECT_EQ(task.closed_by(), "coordinator-7");
  EXPECT_EQ(task.version(), 4);
  ASSERT_EQ(task.contacts_size(), 2);

  std::vector<v1::EventRecord> events = ReadEvents(0, "visit-42");
  ASSERT_EQ(events.size(), 4u);
  for (const v1::EventRecord& e : events) EXPECT_EQ(e.actor(), "coordinator-7");
  EXPECT_TRUE(events[0].has_task_created());
  EXPECT_TRUE(events[1].has_contact_logged());
  EXPECT_TRUE(events[2].has_contact_logged());
  EXPECT_TRUE(events[3].has_task_closed());
}

// --- Ids and actors --------------------------------------------------------------------------

TEST_F(TaskServiceTest, CreateTaskWithoutIdGeneratesAValidUniqueId) {
  v1::Task a;
  v1::Task b;
  ASSERT_TRUE(Create(ManualRequest(""), &a).ok());
  ASSERT_TRUE(Create(ManualRequest(""), &b).ok());
  EXPECT_TRUE(domain::IsValidId(a.task_id())) << a.task_id();
  EXPECT_EQ(a.task_id().size(), 36u);
  EXPECT_NE(a.task_id(), b.task_id());
  v1::Task read;
  ASSERT_TRUE(Get(a.task_id(), &read).ok());
  EXPECT_EQ(read.patient_id(), "patient-1");
}

TEST_F(TaskServiceTest, ActorIsAnonymousWithoutMetadata) {
  v1::Task task = CreateManual("task-1");
  EXPECT_EQ(task.created_by(), "anonymous");
  EXPECT_EQ(ReadEvents(0, "task-1").at(0).actor(), "anonymous");
}

TEST_F(TaskServiceTest, ActorComesFromXActorMetadata) {
  v1::Task task;
  ASSERT_TRUE(Create(ManualRequest("task-1"), &task, "care-engine:v2").ok());
  EXPECT_EQ(task.created_by(), "care-engine:v2");
  ASSERT_TRUE(Log(LogContactRequest("task-1"), &task, "nurse.kim").ok());
  EXPECT_EQ(task.contacts(0).logged_by(), "nurse.kim");
  std::vector<v1::EventRecord> events = ReadEvents(0, "task-1");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].actor(), "care-engine:v2");
  EXPECT_EQ(events[1].actor(), "nurse.kim");
}

TEST_F(TaskServiceTest, GetUnknownTaskIsNotFound) {
  v1::Task task;
  grpc::Status status = Get("no-such-task", &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("no-such-task"));
}

// --- Idempotency -----------------------------------------------------------------------------

TEST_F(TaskServiceTest, CreateTaskReplayedRequestIdReturnsTheFirstTaskAndAppendsNothing) {
  v1::CreateTaskRequest request = ManualRequest("task-1");
  request.set_request_id("req-1");
  v1::Task first;
  ASSERT_TRUE(Create(request, &first).ok());
  const uint64_t head = Head();

  clock_.Advance(absl::Minutes(1));
  v1::Task again;
  grpc::Status status = Create(request, &again);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(again.SerializeAsString(), first.SerializeAsString());
  EXPECT_EQ(Head(), head);
}

TEST_F(TaskServiceTest, CreateTaskReplayWithoutTaskIdReturnsTheSameGeneratedId) {
  v1::CreateTaskRequest request = ManualRequest("");
  request.set_request_id("req-gen");
  v1::Task first;
  ASSERT_TRUE(Create(request, &first).ok());
  const uint64_t head = Head();
  v1::Task again;
  ASSERT_TRUE(Create(request, &again).ok());
  EXPECT_EQ(again.task_id(), first.task_id());
  EXPECT_EQ(Head(), head);
}

TEST_F(TaskServiceTest, LogContactReplayedRequestIdReturnsTheFirstResultAndAppendsNothing) {
  CreateManual("task-1");
  v1::LogContactRequest request = LogContactRequest("task-1");
  request.set_request_id("req-log-1");
  v1::Task first;
  ASSERT_TRUE(Log(request, &first).ok());
  const uint64_t head = Head();
  v1::Task again;
  grpc::Status status = Log(request, &again);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(again.version(), first.version());
  EXPECT_EQ(again.contacts_size(), 1);
  EXPECT_EQ(Head(), head);
}

TEST_F(TaskServiceTest, RequestIdReusedWithOtherContentIsAlreadyExists) {
  v1::CreateTaskRequest request = ManualRequest("task-1");
  request.set_request_id("req-1");
  v1::Task task;
  ASSERT_TRUE(Create(request, &task).ok());
  const uint64_t head = Head();

  request.set_title("Something else");
  grpc::Status status = Create(request, &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(status.error_message(), HasSubstr("request_id"));
  EXPECT_EQ(Head(), head);
}

TEST_F(TaskServiceTest, RequestIdReusedByAnotherActorIsAlreadyExists) {
  v1::CreateTaskRequest request = ManualRequest("task-1");
  request.set_request_id("req-1");
  v1::Task task;
  ASSERT_TRUE(Create(request, &task, "alice").ok());
  const uint64_t head = Head();
  grpc::Status status = Create(request, &task, "bob");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(Head(), head);
}

TEST_F(TaskServiceTest, RequestIdReusedForAnotherMethodIsAlreadyExists) {
  CreateManual("task-1");
  v1::LogContactRequest log = LogContactRequest("task-1");
  log.set_request_id("req-shared");
  v1::Task task;
  ASSERT_TRUE(Log(log, &task).ok());
  const uint64_t head = Head();
  v1::CreateTaskRequest create = ManualRequest("task-2");
  create.set_request_id("req-shared");
  grpc::Status status = Create(create, &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(Head(), head);
}

// --- Rules that depend on the task's state ---------------------------------------------------

TEST_F(TaskServiceTest, CreateTaskWithTakenIdIsAlreadyExists) {
  CreateManual("task-1");
  const uint64_t head = Head();
  v1::Task task;
  grpc::Status status = Create(ManualRequest("task-1"), &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(status.error_message(), HasSubstr("task_id"));
  EXPECT_EQ(Head(), head);
}

TEST_F(TaskServiceTest, LogContactOnClosedTaskIsFailedPrecondition) {
  CreateManual("task-1");
  v1::LogContactRequest close;
  close.set_task_id("task-1");
  close.set_outcome(v1::DID_NOT_SCHEDULE);
  close.set_close_task(true);
  v1::Task task;
  ASSERT_TRUE(Log(close, &task).ok());
  const uint64_t head = Head();
  grpc::Status status = Log(LogContactRequest("task-1"), &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("closed"));
  EXPECT_EQ(Head(), head);
}

TEST_F(TaskServiceTest, LogContactOnExpiredTaskIsFailedPreconditionBeforeTheExpiryEvent) {
  v1::Task task;
  ASSERT_TRUE(Create(AutomaticRequest("auto-1", absl::Hours(1)), &task).ok());
  clock_.Advance(absl::Hours(1));  // exactly at expires_at; no expiry event written yet
  const uint64_t head = Head();
  grpc::Status status = Log(LogContactRequest("auto-1"), &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("expired"));
  EXPECT_EQ(Head(), head);
}

TEST_F(TaskServiceTest, ExpiredAutomaticTaskIsClosedBySystemExpiry) {
  v1::Task task;
  ASSERT_TRUE(Create(AutomaticRequest("auto-1", absl::Minutes(30)), &task).ok());
  const absl::Time expires_at = domain::FromProto(task.expires_at());
  clock_.Advance(absl::Hours(1));
  absl::StatusOr<int> closed = ExpireDue(*store_, clock_.Now());
  ASSERT_TRUE(closed.ok()) << closed.status();
  EXPECT_EQ(*closed, 1);
  ASSERT_TRUE(Get("auto-1", &task).ok());
  EXPECT_EQ(task.status(), v1::CLOSED);
  EXPECT_EQ(task.close_reason(), v1::EXPIRED);
  std::vector<v1::EventRecord> events = ReadEvents(0, "auto-1");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].actor(), "system:expiry");
  EXPECT_EQ(events[1].task_closed().reason(), v1::EXPIRED);
  EXPECT_EQ(domain::FromProto(events[1].occurred_at()), expires_at);
}

TEST_F(TaskServiceTest, ExpectedVersionMismatchIsAbortedAndSaysTheCurrentVersion) {
  CreateManual("task-1");
  v1::Task task;
  ASSERT_TRUE(Log(LogContactRequest("task-1"), &task).ok());
  ASSERT_EQ(task.version(), 2);
  const uint64_t head = Head();
  v1::LogContactRequest stale = LogContactRequest("task-1");
  stale.set_expected_version(1);
  grpc::Status status = Log(stale, &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_THAT(status.error_message(), HasSubstr("expected_version"));
  EXPECT_THAT(status.error_message(), HasSubstr("version 2"));
  EXPECT_EQ(Head(), head);
}

TEST_F(TaskServiceTest, LogContactOnUnknownTaskIsNotFound) {
  const uint64_t head = Head();
  v1::Task task;
  grpc::Status status = Log(LogContactRequest("ghost"), &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("task_id"));
  EXPECT_EQ(Head(), head);
}

TEST_F(TaskServiceTest, NotesOfExactly4000CharactersAreAccepted) {
  CreateManual("task-1");
  v1::LogContactRequest request = LogContactRequest("task-1");
  request.set_notes(std::string(4000, 'n'));
  v1::Task task;
  grpc::Status status = Log(request, &task);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(TaskServiceTest, ContactedAtEarlierThanLoggingIsKept) {
  CreateManual("task-1");
  clock_.Advance(absl::Hours(2));
  v1::LogContactRequest request = LogContactRequest("task-1");
  const absl::Time contacted_at = clock_.Now() - absl::Hours(1);
  *request.mutable_contacted_at() = domain::ToProto(contacted_at);
  v1::Task task;
  ASSERT_TRUE(Log(request, &task).ok());
  EXPECT_EQ(domain::FromProto(task.contacts(0).contacted_at()), contacted_at);
  EXPECT_EQ(domain::FromProto(task.contacts(0).logged_at()), clock_.Now());
}

// --- The worklist ----------------------------------------------------------------------------

std::vector<std::string> Ids(const v1::ListTasksResponse& response) {
  std::vector<std::string> ids;
  for (const v1::Task& task : response.tasks()) ids.push_back(task.task_id());
  return ids;
}

TEST_F(TaskServiceTest, ListTasksDefaultsToOpenTasksOrderedByFollowUpDateThenId) {
  v1::CreateTaskRequest later = ManualRequest("b-later");
  later.set_follow_up_date("2025-04-01");
  v1::CreateTaskRequest sooner = ManualRequest("c-sooner");
  sooner.set_follow_up_date("2025-03-12");
  v1::CreateTaskRequest none = ManualRequest("a-none");
  v1::CreateTaskRequest closed = ManualRequest("d-closed");
  v1::Task task;
  for (const auto* request : {&later, &sooner, &none, &closed}) {
    ASSERT_TRUE(Create(*request, &task).ok());
  }
  v1::LogContactRequest close;
  close.set_task_id("d-closed");
  close.set_outcome(v1::SCHEDULED);
  close.set_close_task(true);
  ASSERT_TRUE(Log(close, &task).ok());

  v1::ListTasksResponse response;
  ASSERT_TRUE(List(v1::ListTasksRequest(), &response).ok());
  EXPECT_THAT(Ids(response), ElementsAre("c-sooner", "b-later", "a-none"));
  EXPECT_EQ(response.next_page_token(), "");

  v1::ListTasksRequest closed_only;
  closed_only.add_statuses(v1::CLOSED);
  ASSERT_TRUE(List(closed_only, &response).ok());
  EXPECT_THAT(Ids(response), ElementsAre("d-closed"));

  v1::ListTasksRequest due;
  due.set_follow_up_on_or_before("2025-03-31");
  ASSERT_TRUE(List(due, &response).ok());
  EXPECT_THAT(Ids(response), ElementsAre("c-sooner"));
}

TEST_F(TaskServiceTest, ListTasksPagesThroughEveryTaskOnce) {
  for (int i = 0; i < 7; ++i) CreateManual("task-" + std::to_string(i));
  v1::ListTasksRequest request;
  request.set_page_size(3);
  std::vector<std::string> seen;
  int pages = 0;
  for (;;) {
    v1::ListTasksResponse response;
    grpc::Status status = List(request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ++pages;
    for (const v1::Task& task : response.tasks()) seen.push_back(task.task_id());
    if (response.next_page_token().empty()) break;
    request.set_page_token(response.next_page_token());
    ASSERT_LT(pages, 10);
  }
  EXPECT_EQ(pages, 3);
  EXPECT_THAT(seen, ElementsAre("task-0", "task-1", "task-2", "task-3", "task-4", "task-5",
                                "task-6"));
}

TEST_F(TaskServiceTest, ListTasksFiltersByKindPatientAndAssignee) {
  v1::CreateTaskRequest mine = ManualRequest("mine");
  mine.set_assignee("nurse.kim");
  mine.set_patient_id("patient-9");
  v1::Task task;
  ASSERT_TRUE(Create(mine, &task).ok());
  ASSERT_TRUE(Create(AutomaticRequest("auto", absl::Hours(5)), &task).ok());

  v1::ListTasksRequest by_assignee;
  by_assignee.set_assignee("nurse.kim");
  v1::ListTasksResponse response;
  ASSERT_TRUE(List(by_assignee, &response).ok());
  EXPECT_THAT(Ids(response), ElementsAre("mine"));

  v1::ListTasksRequest by_patient;
  by_patient.set_patient_id("patient-9");
  ASSERT_TRUE(List(by_patient, &response).ok());
  EXPECT_THAT(Ids(response), ElementsAre("mine"));

  v1::ListTasksRequest by_kind;
  by_kind.set_kind(v1::AUTOMATIC);
  ASSERT_TRUE(List(by_kind, &response).ok());
  EXPECT_THAT(Ids(response), ElementsAre("auto"));
}

}  // namespace
}  // namespace outreach::server::testing
