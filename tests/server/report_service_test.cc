// ReportService.GetOutreachStats through generated stubs: a worked history with every figure
// checked by hand (NONE, ASSIGNEE, CATEGORY, DAY), the range bounds, and bad input with its
// exact code (nothing appended). The property test (tests/store/property_test.cc) compares the
// report with a plain computation from the log over random histories.
#include <memory>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "outreach/v1/report_service.grpc.pb.h"
#include "tests/testing/server_fixture.h"

namespace outreach::server::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

class ReportServiceTest : public ServerFixture {
 protected:
  grpc::Status Stats(const std::string& from, const std::string& to,
                     v1::GetOutreachStatsRequest::GroupBy group_by,
                     v1::GetOutreachStatsResponse* response, const std::string& practice = "") {
    v1::GetOutreachStatsRequest request;
    request.set_practice_id(practice);
    request.set_from_date(from);
    request.set_to_date(to);
    request.set_group_by(group_by);
    return v1::ReportService::NewStub(channel_)->GetOutreachStats(Context().get(), request,
                                                                  response);
  }

  void Contact(const std::string& task_id, v1::ContactOutcome outcome, bool close) {
    v1::LogContactRequest request = LogContactRequest(task_id);
    request.set_outcome(outcome);
    if (close) request.clear_follow_up_date();
    request.set_close_task(close);
    v1::Task task;
    grpc::Status status = Log(request, &task);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  // 2025-03-10 15:00: a (nurse-1, RECALL_OVERDUE) and b (unassigned, CUSTOM) created.
  // 17:00 a NO_ANSWER; 21:00 a SCHEDULED and closed; b LEFT_MESSAGE.
  // 2025-03-11 21:00: b cancelled ENTERED_IN_ERROR; c created (nurse-1).
  void WorkedHistory() {
    v1::CreateTaskRequest a = ManualRequest("a");
    a.set_assignee("nurse-1");
    a.set_category(v1::RECALL_OVERDUE);
    v1::Task task;
    ASSERT_TRUE(Create(a, &task).ok());
    v1::CreateTaskRequest b = ManualRequest("b");
    b.set_patient_id("patient-2");
    ASSERT_TRUE(Create(b, &task).ok());
    clock_.Advance(absl::Hours(2));
    ASSERT_NO_FATAL_FAILURE(Contact("a", v1::NO_ANSWER, false));
    clock_.Advance(absl::Hours(4));
    ASSERT_NO_FATAL_FAILURE(Contact("a", v1::SCHEDULED, true));
    ASSERT_NO_FATAL_FAILURE(Contact("b", v1::LEFT_MESSAGE, false));
    clock_.Advance(absl::Hours(24));
    v1::CancelTaskRequest cancel = CancelRequest("b");
    cancel.set_reason(v1::ENTERED_IN_ERROR);
    ASSERT_TRUE(Cancel(cancel, &task).ok());
    v1::CreateTaskRequest c = ManualRequest("c");
    c.set_patient_id("patient-3");
    c.set_assignee("nurse-1");
    ASSERT_TRUE(Create(c, &task).ok());
  }
};

TEST_F(ReportServiceTest, AWorkedHistoryGivesEveryFigure) {
  ASSERT_NO_FATAL_FAILURE(WorkedHistory());
  v1::GetOutreachStatsResponse all;
  ASSERT_TRUE(Stats("2025-03-01", "2025-03-31", v1::GetOutreachStatsRequest::NONE, &all).ok());
  ASSERT_EQ(all.rows_size(), 1);
  const v1::OutreachStats& row = all.rows(0);
  EXPECT_EQ(row.key(), "");
  EXPECT_EQ(row.tasks_created(), 3u);
  EXPECT_EQ(row.tasks_contacted(), 2u);
  EXPECT_EQ(row.contacts(), 3u);
  EXPECT_THAT(row.contacts_by_outcome(),
              UnorderedElementsAre(Pair("NO_ANSWER", 1), Pair("SCHEDULED", 1),
                                   Pair("LEFT_MESSAGE", 1)));
  EXPECT_EQ(row.reached(), 1u);
  EXPECT_EQ(row.closed(), 2u);
  EXPECT_THAT(row.closed_by_reason(),
              UnorderedElementsAre(Pair("CONTACT_OUTCOME", 1), Pair("ENTERED_IN_ERROR", 1)));
  EXPECT_EQ(row.scheduled(), 1u);
  EXPECT_DOUBLE_EQ(row.conversion_rate(), 1.0);  // 1 / (2 - ENTERED_IN_ERROR)
  EXPECT_DOUBLE_EQ(row.median_hours_to_first_contact(), 4.0);  // a: 2 h, b: 6 h
  EXPECT_DOUBLE_EQ(row.median_days_to_scheduled(), 0.25);      // a: 6 h
  EXPECT_DOUBLE_EQ(row.attempts_per_scheduled(), 3.0);

  v1::GetOutreachStatsResponse by_assignee;
  ASSERT_TRUE(
      Stats("2025-03-10", "2025-03-11", v1::GetOutreachStatsRequest::ASSIGNEE, &by_assignee)
          .ok());
  ASSERT_EQ(by_assignee.rows_size(), 2);
  EXPECT_EQ(by_assignee.rows(0).key(), "");  // b, unassigned
  EXPECT_EQ(by_assignee.rows(0).contacts(), 1u);
  EXPECT_EQ(by_assignee.rows(1).key(), "nurse-1");
  EXPECT_EQ(by_assignee.rows(1).tasks_created(), 2u);
  EXPECT_EQ(by_assignee.rows(1).tasks_contacted(), 1u);
  EXPECT_EQ(by_assignee.rows(1).contacts(), 2u);

  v1::GetOutreachStatsResponse by_category;
  ASSERT_TRUE(
      Stats("2025-03-10", "2025-03-11", v1::GetOutreachStatsRequest::CATEGORY, &by_category)
          .ok());
  ASSERT_EQ(by_category.rows_size(), 2);
  EXPECT_EQ(by_category.rows(0).key(), "CUSTOM");
  EXPECT_EQ(by_category.rows(0).tasks_created(), 2u);
  EXPECT_EQ(by_category.rows(1).key(), "RECALL_OVERDUE");
  EXPECT_EQ(by_category.rows(1).scheduled(), 1u);

  v1::GetOutreachStatsResponse by_day;
  ASSERT_TRUE(Stats("2025-03-10", "2025-03-11", v1::GetOutreachStatsRequest::DAY, &by_day).ok());
  ASSERT_EQ(by_day.rows_size(), 2);
  EXPECT_EQ(by_day.rows(0).key(), "2025-03-10");
  EXPECT_EQ(by_day.rows(0).tasks_created(), 2u);
  EXPECT_EQ(by_day.rows(0).contacts(), 3u);
  EXPECT_EQ(by_day.rows(1).key(), "2025-03-11");
  EXPECT_EQ(by_day.rows(1).closed(), 1u);
  EXPECT_EQ(by_day.rows(1).conversion_rate(), 0);  // its only close is ENTERED_IN_ERROR

  // The range is inclusive and counts each figure on its own day.
  v1::GetOutreachStatsResponse second_day;
  ASSERT_TRUE(
      Stats("2025-03-11", "2025-03-11", v1::GetOutreachStatsRequest::NONE, &second_day).ok());
  EXPECT_EQ(second_day.rows(0).tasks_created(), 1u);
  EXPECT_EQ(second_day.rows(0).contacts(), 0u);
  EXPECT_EQ(second_day.rows(0).closed(), 1u);
  v1::GetOutreachStatsResponse other_practice;
  ASSERT_TRUE(Stats("2025-03-01", "2025-03-31", v1::GetOutreachStatsRequest::NONE,
                    &other_practice, "practice-9")
                  .ok());
  EXPECT_EQ(other_practice.rows(0).tasks_created(), 0u);
}

TEST_F(ReportServiceTest, BadRequestsAreInvalidArgumentNamingTheField) {
  CreateManual("a");
  const uint64_t head = store_->HeadPosition();
  struct Case {
    std::string practice, from, to;
    int group_by;
    std::string field;
  };
  const Case cases[] = {
      {"", "", "2025-03-10", 0, "from_date"},
      {"", "2025-03-10", "", 0, "to_date"},
      {"", "2025-02-30", "2025-03-10", 0, "from_date"},
      {"", "10/03/2025", "2025-03-10", 0, "from_date"},
      {"", "2025-03-10", "2025-03-09", 0, "to_date"},
      {"", "2025-01-01", "2026-01-02", 0, "to_date"},  // 367 days
      {"", "2025-03-10", "2025-03-10", 9, "group_by"},
      {"bad practice", "2025-03-10", "2025-03-10", 0, "practice_id"},
  };
  for (const Case& c : cases) {
    v1::GetOutreachStatsResponse response;
    grpc::Status status = Stats(c.from, c.to, static_cast<v1::GetOutreachStatsRequest::GroupBy>(
                                                  c.group_by),
                                &response, c.practice);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.field;
    EXPECT_THAT(status.error_message(), HasSubstr(c.field));
  }
  v1::GetOutreachStatsResponse longest;
  EXPECT_TRUE(
      Stats("2025-01-01", "2026-01-01", v1::GetOutreachStatsRequest::NONE, &longest).ok());
  EXPECT_EQ(store_->HeadPosition(), head);
}

}  // namespace
}  // namespace outreach::server::testing
