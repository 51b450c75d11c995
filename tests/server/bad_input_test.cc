// SPEC §5: every bad input gets its exact code, a message naming the field, and appends nothing.
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "domain/validation.h"
#include "tests/testing/server_fixture.h"

namespace outreach::server::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string kTooLongId(65, 'x');

class BadInputTest : public ServerFixture {};

// --- CreateTask --------------------------------------------------------------------------------

struct BadCreate {
  std::string name;
  std::function<void(v1::CreateTaskRequest&, absl::Time now)> spoil;
  std::string field;  // the error message starts with it
  grpc::StatusCode code = grpc::StatusCode::INVALID_ARGUMENT;
};
// ctest lists the case by its name, not by its bytes.
void PrintTo(const BadCreate& c, std::ostream* os) { *os << c.name; }


class BadCreateTaskTest : public ServerFixture, public ::testing::WithParamInterface<BadCreate> {};

TEST_P(BadCreateTaskTest, IsRejectedNamingTheFieldAndAppendsNothing) {
  CreateManual("existing");
  const uint64_t head = Head();
  v1::CreateTaskRequest request = ManualRequest("task-new");
  GetParam().spoil(request, clock_.Now());
  v1::Task task;
  grpc::Status status = Create(request, &task);
  EXPECT_EQ(status.error_code(), GetParam().code) << status.error_message();
  EXPECT_THAT(status.error_message(), StartsWith(GetParam().field + ":"));
  EXPECT_EQ(Head(), head);
  EXPECT_EQ(Get("task-new", &task).error_code(), grpc::StatusCode::NOT_FOUND);
}

INSTANTIATE_TEST_SUITE_P(
    Spec5, BadCreateTaskTest,
    ::testing::Values(
        BadCreate{"TaskIdWithSpace",
                  [](auto& r, absl::Time) { r.set_task_id("bad id"); }, "task_id"},
        BadCreate{"TaskIdTooLong", [](auto& r, absl::Time) { r.set_task_id(kTooLongId); },
                  "task_id"},
        BadCreate{"TaskIdReservedForTheService",
                  [](auto& r, absl::Time) { r.set_task_id("system:expiry"); }, "task_id"},
        BadCreate{"TitleWithAnEscapeSequence",
                  [](auto& r, absl::Time) { r.set_title("Visit\x1b[2Jcleared"); }, "title"},
        BadCreate{"TaskIdWithSlash", [](auto& r, absl::Time) { r.set_task_id("a/b"); },
                  "task_id"},
        BadCreate{"TaskIdTaken", [](auto& r, absl::Time) { r.set_task_id("existing"); },
                  "task_id", grpc::StatusCode::ALREADY_EXISTS},
        BadCreate{"PatientIdMissing", [](auto& r, absl::Time) { r.clear_patient_id(); },
                  "patient_id"},
        BadCreate{"PatientIdTooLong", [](auto& r, absl::Time) { r.set_patient_id(kTooLongId); },
                  "patient_id"},
        BadCreate{"AssigneeWithBadCharacters",
                  [](auto& r, absl::Time) { r.set_assignee("kim@clinic"); }, "assignee"},
        BadCreate{"KindUnspecified",
                  [](auto& r, absl::Time) { r.set_kind(v1::TASK_KIND_UNSPECIFIED); }, "kind"},
        BadCreate{"KindUnknownNumber",
                  [](auto& r, absl::Time) { r.set_kind(static_cast<v1::TaskKind>(9)); }, "kind"},
        BadCreate{"TitleTooLong",
                  [](auto& r, absl::Time) { r.set_title(std::string(201, 't')); }, "title"},
        BadCreate{"FollowUpDateMalformed",
                  [](auto& r, absl::Time) { r.set_follow_up_date("2025-3-17"); },
                  "follow_up_date"},
        BadCreate{"FollowUpDateNotOnTheCalendar",
                  [](auto& r, absl::Time) { r.set_follow_up_date("2025-02-30"); },
                  "follow_up_date"},
        BadCreate{"FollowUpDateBeforeToday",
                  [](auto& r, absl::Time) { r.set_follow_up_date("2025-03-09"); },
                  "follow_up_date"},
        BadCreate{"ManualWithExpiresAt",
                  [](auto& r, absl::Time now) {
                    *r.mutable_expires_at() = domain::ToProto(now + absl::Hours(1));
                  },
                  "expires_at"},
        BadCreate{"AutomaticWithoutExpiresAt",
                  [](auto& r, absl::Time) { r.set_kind(v1::AUTOMATIC); }, "expires_at"},
        BadCreate{"AutomaticExpiringInThePast",
                  [](auto& r, absl::Time now) {
                    r.set_kind(v1::AUTOMATIC);
                    *r.mutable_expires_at() = domain::ToProto(now - absl::Seconds(1));
                  },
                  "expires_at"},
        BadCreate{"ExpiresAtOutOfTimestampRange",
                  [](auto& r, absl::Time) {
                    r.set_kind(v1::AUTOMATIC);
                    r.mutable_expires_at()->set_seconds(400000000000LL);
                  },
                  "expires_at"},
        BadCreate{"ExpiresAtWithInvalidNanos",
                  [](auto& r, absl::Time now) {
                    r.set_kind(v1::AUTOMATIC);
                    *r.mutable_expires_at() = domain::ToProto(now + absl::Hours(1));
                    r.mutable_expires_at()->set_nanos(-5);
                  },
                  "expires_at"},
        BadCreate{"RequestIdWithSpace",
                  [](auto& r, absl::Time) { r.set_request_id("req 1"); }, "request_id"},
        // Issue 13's fields.
        BadCreate{"PracticeIdWithSpace",
                  [](auto& r, absl::Time) { r.set_practice_id("north clinic"); }, "practice_id"},
        BadCreate{"PracticeIdTooLong",
                  [](auto& r, absl::Time) { r.set_practice_id(kTooLongId); }, "practice_id"},
        BadCreate{"RuleIdWithSlash", [](auto& r, absl::Time) { r.set_rule_id("recall/6mo"); },
                  "rule_id"},
        BadCreate{"CategoryUnknownNumber",
                  [](auto& r, absl::Time) { r.set_category(static_cast<v1::TaskCategory>(40)); },
                  "category"},
        BadCreate{"PriorityUnknownNumber",
                  [](auto& r, absl::Time) { r.set_priority(static_cast<v1::TaskPriority>(3)); },
                  "priority"},
        BadCreate{"CadenceNotIncreasing",
                  [](auto& r, absl::Time) {
                    r.add_cadence_days(7);
                    r.add_cadence_days(1);
                  },
                  "cadence_days"},
        BadCreate{"CadenceDayZero", [](auto& r, absl::Time) { r.add_cadence_days(0); },
                  "cadence_days"},
        BadCreate{"CadenceDay366", [](auto& r, absl::Time) { r.add_cadence_days(366); },
                  "cadence_days"},
        BadCreate{"CadenceOfThirteenSteps",
                  [](auto& r, absl::Time) {
                    for (int day = 1; day <= 13; ++day) r.add_cadence_days(day);
                  },
                  "cadence_days"},
        BadCreate{"MaxAttemptsNegative", [](auto& r, absl::Time) { r.set_max_attempts(-1); },
                  "max_attempts"},
        BadCreate{"MaxAttempts51", [](auto& r, absl::Time) { r.set_max_attempts(51); },
                  "max_attempts"}),
    [](const ::testing::TestParamInfo<BadCreate>& info) { return info.param.name; });

// --- LogContact --------------------------------------------------------------------------------

struct BadLog {
  std::string name;
  std::function<void(v1::LogContactRequest&, absl::Time now)> spoil;
  std::string field;  // the error message starts with it
  grpc::StatusCode code = grpc::StatusCode::INVALID_ARGUMENT;
};
// ctest lists the case by its name, not by its bytes.
void PrintTo(const BadLog& c, std::ostream* os) { *os << c.name; }


class BadLogContactTest : public ServerFixture, public ::testing::WithParamInterface<BadLog> {};

TEST_P(BadLogContactTest, IsRejectedNamingTheFieldAndAppendsNothing) {
  CreateManual("task-1");
  clock_.Advance(absl::Minutes(10));
  const uint64_t head = Head();
  v1::LogContactRequest request = LogContactRequest("task-1");
  GetParam().spoil(request, clock_.Now());
  v1::Task task;
  grpc::Status status = Log(request, &task);
  EXPECT_EQ(status.error_code(), GetParam().code) << status.error_message();
  EXPECT_THAT(status.error_message(), StartsWith(GetParam().field + ":"));
  EXPECT_EQ(Head(), head);
  ASSERT_TRUE(Get("task-1", &task).ok());
  EXPECT_EQ(task.status(), v1::OPEN);
  EXPECT_EQ(task.version(), 1);
}

INSTANTIATE_TEST_SUITE_P(
    Spec5, BadLogContactTest,
    ::testing::Values(
        BadLog{"TaskIdMissing", [](auto& r, absl::Time) { r.clear_task_id(); }, "task_id"},
        BadLog{"TaskIdTooLong", [](auto& r, absl::Time) { r.set_task_id(kTooLongId); },
               "task_id"},
        BadLog{"TaskIdUnknown", [](auto& r, absl::Time) { r.set_task_id("ghost"); }, "task_id",
               grpc::StatusCode::NOT_FOUND},
        BadLog{"OutcomeUnspecified",
               [](auto& r, absl::Time) { r.set_outcome(v1::CONTACT_OUTCOME_UNSPECIFIED); },
               "outcome"},
        BadLog{"OutcomeUnknownNumber",
               [](auto& r, absl::Time) { r.set_outcome(static_cast<v1::ContactOutcome>(42)); },
               "outcome"},
        BadLog{"NotesOver4000Characters",
               [](auto& r, absl::Time) { r.set_notes(std::string(4001, 'n')); }, "notes"},
        BadLog{"NotesWithACarriageReturn",
               [](auto& r, absl::Time) { r.set_notes("rang\rSCHEDULED by admin"); }, "notes"},
        BadLog{"FollowUpDateMissingOnLogContact",
               [](auto& r, absl::Time) { r.clear_follow_up_date(); }, "follow_up_date"},
        BadLog{"FollowUpDateWithClose", [](auto& r, absl::Time) { r.set_close_task(true); },
               "follow_up_date"},
        BadLog{"FollowUpDateMalformed",
               [](auto& r, absl::Time) { r.set_follow_up_date("17/03/2025"); },
               "follow_up_date"},
        BadLog{"FollowUpDateNotOnTheCalendar",
               [](auto& r, absl::Time) { r.set_follow_up_date("2025-02-30"); },
               "follow_up_date"},
        BadLog{"FollowUpDateBeforeToday",
               [](auto& r, absl::Time) { r.set_follow_up_date("2025-03-09"); },
               "follow_up_date"},
        BadLog{"ContactedAtInTheFuture",
               [](auto& r, absl::Time now) {
                 *r.mutable_contacted_at() = domain::ToProto(now + absl::Hours(1));
               },
               "contacted_at"},
        BadLog{"ContactedAtBeforeTheTaskWasCreated",
               [](auto& r, absl::Time now) {
                 *r.mutable_contacted_at() = domain::ToProto(now - absl::Hours(24));
               },
               "contacted_at"},
        BadLog{"ContactedAtOutOfTimestampRange",
               [](auto& r, absl::Time) { r.mutable_contacted_at()->set_seconds(-70000000000LL); },
               "contacted_at"},
        BadLog{"ExpectedVersionNegative",
               [](auto& r, absl::Time) { r.set_expected_version(-1); }, "expected_version"},
        BadLog{"ExpectedVersionStale", [](auto& r, absl::Time) { r.set_expected_version(5); },
               "expected_version", grpc::StatusCode::ABORTED},
        BadLog{"RequestIdTooLong", [](auto& r, absl::Time) { r.set_request_id(kTooLongId); },
               "request_id"},
        // Issue 13's fields and outcomes.
        BadLog{"ChannelUnknownNumber",
               [](auto& r, absl::Time) { r.set_channel(static_cast<v1::ContactChannel>(6)); },
               "channel"},
        BadLog{"DirectionUnknownNumber",
               [](auto& r, absl::Time) { r.set_direction(static_cast<v1::ContactDirection>(3)); },
               "direction"},
        BadLog{"RequestedNoContactWithoutClose",
               [](auto& r, absl::Time) { r.set_outcome(v1::REQUESTED_NO_CONTACT); },
               "close_task"}),
    [](const ::testing::TestParamInfo<BadLog>& info) { return info.param.name; });

// --- The caller's identity ----------------------------------------------------------------------

class BadActorTest : public ServerFixture,
                     public ::testing::WithParamInterface<std::pair<std::string, std::string>> {};

TEST_P(BadActorTest, IsInvalidArgumentNamingXActorOnEveryMutation) {
  CreateManual("task-1");
  const uint64_t head = Head();
  v1::Task task;
  grpc::Status create = Create(ManualRequest("task-2"), &task, GetParam().second);
  EXPECT_EQ(create.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(create.error_message(), StartsWith("x-actor:"));
  grpc::Status log = Log(LogContactRequest("task-1"), &task, GetParam().second);
  EXPECT_EQ(log.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(log.error_message(), StartsWith("x-actor:"));
  EXPECT_EQ(Head(), head);
}

INSTANTIATE_TEST_SUITE_P(
    Spec5, BadActorTest,
    ::testing::Values(std::make_pair("WithSpace", "nurse kim"),
                      std::make_pair("TooLong", std::string(65, 'a')),
                      std::make_pair("ImpersonatingTheExpiryCloser", "system:expiry")),
    [](const auto& info) { return info.param.first; });

TEST_F(BadInputTest, XActorSentTwiceIsInvalidArgument) {
  const uint64_t head = Head();
  grpc::ClientContext context;
  context.AddMetadata("x-actor", "alice");
  context.AddMetadata("x-actor", "bob");
  v1::Task task;
  grpc::Status status = tasks_->CreateTask(&context, ManualRequest("task-1"), &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), StartsWith("x-actor:"));
  EXPECT_EQ(Head(), head);
}

// --- Reads ---------------------------------------------------------------------------------------

TEST_F(BadInputTest, GetTaskWithBadIdIsInvalidArgument) {
  v1::Task task;
  for (const std::string& id : {std::string(""), std::string("bad id"), kTooLongId}) {
    grpc::Status status = Get(id, &task);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << id;
    EXPECT_THAT(status.error_message(), StartsWith("task_id:"));
  }
}

struct BadList {
  std::string name;
  std::function<void(v1::ListTasksRequest&)> spoil;
  std::string field;
};
// ctest lists the case by its name, not by its bytes.
void PrintTo(const BadList& c, std::ostream* os) { *os << c.name; }


class BadListTasksTest : public ServerFixture, public ::testing::WithParamInterface<BadList> {};

TEST_P(BadListTasksTest, IsInvalidArgumentNamingTheField) {
  CreateManual("task-1");
  v1::ListTasksRequest request;
  GetParam().spoil(request);
  v1::ListTasksResponse response;
  grpc::Status status = List(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_THAT(status.error_message(), StartsWith(GetParam().field + ":"));
}

INSTANTIATE_TEST_SUITE_P(
    Spec5, BadListTasksTest,
    ::testing::Values(
        BadList{"PageSize501", [](auto& r) { r.set_page_size(501); }, "page_size"},
        BadList{"PageSizeNegative", [](auto& r) { r.set_page_size(-1); }, "page_size"},
        BadList{"PageTokenGarbage", [](auto& r) { r.set_page_token("not-a-token"); },
                "page_token"},
        BadList{"StatusUnspecified",
                [](auto& r) {
                  r.add_statuses(v1::OPEN);
                  r.add_statuses(v1::TASK_STATUS_UNSPECIFIED);
                },
                "statuses"},
        BadList{"StatusUnknownNumber",
                [](auto& r) { r.add_statuses(static_cast<v1::TaskStatus>(17)); }, "statuses"},
        BadList{"KindUnknownNumber",
                [](auto& r) { r.set_kind(static_cast<v1::TaskKind>(5)); }, "kind"},
        BadList{"PatientIdWithSpace", [](auto& r) { r.set_patient_id("patient 1"); },
                "patient_id"},
        BadList{"AssigneeTooLong", [](auto& r) { r.set_assignee(kTooLongId); }, "assignee"},
        BadList{"FollowUpOnOrBeforeNotOnTheCalendar",
                [](auto& r) { r.set_follow_up_on_or_before("2025-02-30"); },
                "follow_up_on_or_before"},
        // Issue 13's filters.
        BadList{"PracticeIdWithSpace", [](auto& r) { r.set_practice_id("north clinic"); },
                "practice_id"},
        BadList{"PracticeIdTooLong", [](auto& r) { r.set_practice_id(kTooLongId); },
                "practice_id"},
        BadList{"CategoryUnspecified",
                [](auto& r) {
                  r.add_categories(v1::RECALL_OVERDUE);
                  r.add_categories(v1::TASK_CATEGORY_UNSPECIFIED);
                },
                "categories"},
        BadList{"CategoryUnknownNumber",
                [](auto& r) { r.add_categories(static_cast<v1::TaskCategory>(42)); },
                "categories"},
        BadList{"UnassignedWithAnAssignee",
                [](auto& r) {
                  r.set_unassigned(true);
                  r.set_assignee("nurse-1");
                },
                "unassigned"}),
    [](const ::testing::TestParamInfo<BadList>& info) { return info.param.name; });

TEST_F(BadInputTest, PageTokenFromAnotherQueryIsInvalidArgument) {
  for (int i = 0; i < 3; ++i) CreateManual("task-" + std::to_string(i));
  v1::ListTasksRequest request;
  request.set_page_size(1);
  v1::ListTasksResponse response;
  ASSERT_TRUE(List(request, &response).ok());
  ASSERT_FALSE(response.next_page_token().empty());
  v1::ListTasksRequest other;
  other.set_page_size(1);
  other.add_statuses(v1::CLOSED);
  other.set_page_token(response.next_page_token());
  grpc::Status status = List(other, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), StartsWith("page_token:"));
}

TEST_F(BadInputTest, ReadEventsWithBadTaskIdIsInvalidArgument) {
  CreateManual("task-1");
  grpc::Status status;
  std::vector<v1::EventRecord> events = ReadEvents(0, "bad id", 0, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), StartsWith("task_id:"));
  EXPECT_TRUE(events.empty());
}

}  // namespace
}  // namespace outreach::server::testing
