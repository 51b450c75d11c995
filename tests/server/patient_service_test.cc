// Issue 13 part 2 through the generated stubs: ResolveTasks (all or none, replayed), CreateTask's
// dedupe (ErrorInfo existing_task_id) and do-not-contact, SetContactPreference,
// GetPatientOutreach, and a contact with REQUESTED_NO_CONTACT closing the patient's other tasks.
// Every bad input is INVALID_ARGUMENT naming the field and appends nothing.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "domain/validation.h"
#include "outreach/v1/error_details.pb.h"
#include "tests/testing/server_fixture.h"

namespace outreach::server::testing {
namespace {

using ::testing::HasSubstr;

class PatientServiceTest : public ServerFixture {
 public:
  // For the bad-input table's calls.
  using ServerFixture::clock_;
  using ServerFixture::Context;
  using ServerFixture::patients_;
  using ServerFixture::tasks_;

 protected:
  v1::Task CreateFor(const std::string& task_id, const std::string& patient_id,
                     v1::TaskCategory category, const std::string& practice_id = "") {
    v1::CreateTaskRequest request = ManualRequest(task_id);
    request.set_patient_id(patient_id);
    request.set_category(category);
    request.set_practice_id(practice_id);
    v1::Task task;
    grpc::Status status = Create(request, &task);
    EXPECT_TRUE(status.ok()) << task_id << ": " << status.error_message();
    return task;
  }

  static v1::ResolveTasksRequest ResolveRequest(const std::string& patient_id) {
    v1::ResolveTasksRequest request;
    request.set_patient_id(patient_id);
    request.set_reason(v1::APPOINTMENT_SCHEDULED);
    request.set_source_ref("appt-2025-0042");
    return request;
  }
  grpc::Status Resolve(const v1::ResolveTasksRequest& request,
                       v1::ResolveTasksResponse* response) {
    return tasks_->ResolveTasks(Context("scheduler").get(), request, response);
  }
  grpc::Status Prefer(const v1::SetContactPreferenceRequest& request,
                      v1::PatientOutreach* response) {
    return patients_->SetContactPreference(Context("coordinator-1").get(), request, response);
  }
  v1::PatientOutreach Outreach(const std::string& patient_id, const std::string& practice = "") {
    v1::GetPatientOutreachRequest request;
    request.set_practice_id(practice);
    request.set_patient_id(patient_id);
    v1::PatientOutreach outreach;
    grpc::Status status = patients_->GetPatientOutreach(Context().get(), request, &outreach);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return outreach;
  }
  v1::TaskStatus StatusOf(const std::string& task_id) {
    v1::Task task;
    EXPECT_TRUE(Get(task_id, &task).ok());
    return task.status();
  }
};

TEST_F(PatientServiceTest, ResolveTasksClosesEveryMatchingOpenTaskOfThePatientAtOnce) {
  CreateFor("recall", "p1", v1::RECALL_OVERDUE);
  CreateFor("treatment", "p1", v1::UNSCHEDULED_TREATMENT);
  CreateFor("balance", "p1", v1::PAST_DUE_BALANCE);
  CreateFor("elsewhere", "p1", v1::RECALL_OVERDUE, "practice-2");  // another practice
  CreateFor("other-patient", "p2", v1::RECALL_OVERDUE);
  v1::ResolveTasksRequest request = ResolveRequest("p1");
  request.add_categories(v1::RECALL_OVERDUE);
  request.add_categories(v1::UNSCHEDULED_TREATMENT);
  request.set_request_id("resolve-1");
  const uint64_t head = Head();
  v1::ResolveTasksResponse response;
  ASSERT_TRUE(Resolve(request, &response).ok());
  ASSERT_EQ(response.tasks_size(), 2);
  EXPECT_EQ(response.tasks(0).task_id(), "recall");  // by task id
  EXPECT_EQ(response.tasks(1).task_id(), "treatment");
  for (const v1::Task& task : response.tasks()) {
    EXPECT_EQ(task.status(), v1::CLOSED);
    EXPECT_EQ(task.close_reason(), v1::APPOINTMENT_SCHEDULED);
    EXPECT_EQ(task.close_source_ref(), "appt-2025-0042");
  }
  EXPECT_EQ(Head(), head + 2);  // two TaskClosed, one batch
  EXPECT_EQ(StatusOf("balance"), v1::OPEN);
  EXPECT_EQ(StatusOf("elsewhere"), v1::OPEN);
  EXPECT_EQ(StatusOf("other-patient"), v1::OPEN);

  // A retry returns the same list and appends nothing, also after a restart.
  ASSERT_NO_FATAL_FAILURE(Restart());
  v1::ResolveTasksResponse retried;
  ASSERT_TRUE(Resolve(request, &retried).ok());
  EXPECT_EQ(retried.SerializeAsString(), response.SerializeAsString());
  EXPECT_EQ(Head(), head + 2);
}

TEST_F(PatientServiceTest, ResolveTasksWithNoMatchReturnsNoTasksAndAppendsNothing) {
  CreateFor("recall", "p1", v1::RECALL_OVERDUE);
  v1::ResolveTasksRequest request = ResolveRequest("p1");
  request.add_categories(v1::REACTIVATION);
  const uint64_t head = Head();
  v1::ResolveTasksResponse response;
  ASSERT_TRUE(Resolve(request, &response).ok());
  EXPECT_EQ(response.tasks_size(), 0);
  ASSERT_TRUE(Resolve(ResolveRequest("never-seen"), &response).ok());
  EXPECT_EQ(response.tasks_size(), 0);
  EXPECT_EQ(Head(), head);
}

TEST_F(PatientServiceTest, CreateTaskWhileTheSameCategoryIsOpenIsAlreadyExistsNamingIt) {
  CreateFor("recall-1", "p1", v1::RECALL_OVERDUE);
  const uint64_t head = Head();
  v1::CreateTaskRequest again = ManualRequest("recall-2");
  again.set_patient_id("p1");
  again.set_category(v1::RECALL_OVERDUE);
  v1::Task task;
  grpc::Status status = Create(again, &task);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(status.error_message(), HasSubstr("\"recall-1\""));
  // google.rpc.Status with a google.rpc.ErrorInfo (wire-identical messages, their type URLs).
  v1::RpcStatus details;
  ASSERT_TRUE(details.ParseFromString(status.error_details()));
  ASSERT_EQ(details.details_size(), 1);
  EXPECT_EQ(details.details(0).type_url(), "type.googleapis.com/google.rpc.ErrorInfo");
  v1::ErrorInfo info;
  ASSERT_TRUE(info.ParseFromString(details.details(0).value()));
  EXPECT_EQ(info.reason(), "TASK_ALREADY_OPEN");
  EXPECT_EQ(info.metadata().at("existing_task_id"), "recall-1");
  EXPECT_EQ(Head(), head);

  // Another category, another practice, or CUSTOM: no dedupe.
  CreateFor("treatment", "p1", v1::UNSCHEDULED_TREATMENT);
  CreateFor("recall-elsewhere", "p1", v1::RECALL_OVERDUE, "practice-2");
  CreateFor("custom-1", "p1", v1::CUSTOM);
  CreateFor("custom-2", "p1", v1::CUSTOM);
  // Once the first is closed, a new one may open.
  v1::Task closed;
  ASSERT_TRUE(Cancel(CancelRequest("recall-1"), &closed).ok());
  CreateFor("recall-3", "p1", v1::RECALL_OVERDUE);
}

TEST_F(PatientServiceTest, DoNotContactClosesOpenTasksAndRefusesNewOnesUntilLifted) {
  CreateFor("recall", "p1", v1::RECALL_OVERDUE);
  CreateFor("treatment", "p1", v1::UNSCHEDULED_TREATMENT);
  CreateFor("elsewhere", "p1", v1::RECALL_OVERDUE, "practice-2");
  v1::SetContactPreferenceRequest request;
  request.set_patient_id("p1");
  request.set_do_not_contact(true);
  request.set_reason("Asked by phone not to be called.");
  const uint64_t head = Head();
  v1::PatientOutreach outreach;
  ASSERT_TRUE(Prefer(request, &outreach).ok());
  EXPECT_TRUE(outreach.do_not_contact());
  EXPECT_EQ(outreach.practice_id(), "default");
  EXPECT_EQ(outreach.open_tasks_size(), 0);
  EXPECT_EQ(Head(), head + 3);  // the preference, two closes
  v1::Task task;
  ASSERT_TRUE(Get("recall", &task).ok());
  EXPECT_EQ(task.close_reason(), v1::DO_NOT_CONTACT);
  EXPECT_EQ(StatusOf("elsewhere"), v1::OPEN);

  v1::CreateTaskRequest create = ManualRequest("new");
  create.set_patient_id("p1");
  grpc::Status refused = Create(create, &task);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(refused.error_message(), HasSubstr("do-not-contact"));
  // The same preference again: nothing appended.
  ASSERT_TRUE(Prefer(request, &outreach).ok());
  EXPECT_EQ(Head(), head + 3);

  request.set_do_not_contact(false);
  request.set_reason("");
  ASSERT_TRUE(Prefer(request, &outreach).ok());
  EXPECT_FALSE(outreach.do_not_contact());
  EXPECT_TRUE(Create(create, &task).ok());
}

TEST_F(PatientServiceTest, DoNotContactUntilADateHoldsBeforeThatDayOnly) {
  v1::SetContactPreferenceRequest request;
  request.set_patient_id("p1");
  request.set_do_not_contact(true);
  request.set_until_date("2025-03-12");  // today is 2025-03-10
  v1::PatientOutreach outreach;
  ASSERT_TRUE(Prefer(request, &outreach).ok());
  EXPECT_TRUE(outreach.do_not_contact());
  v1::CreateTaskRequest create = ManualRequest("t1");
  create.set_patient_id("p1");
  v1::Task task;
  EXPECT_EQ(Create(create, &task).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  clock_.Advance(absl::Hours(48));  // 2025-03-12
  EXPECT_FALSE(Outreach("p1").do_not_contact());
  EXPECT_TRUE(Create(create, &task).ok());
}

TEST_F(PatientServiceTest, OutreachOfAPatientNeverSeenIsAnEmptyRecord) {
  const v1::PatientOutreach outreach = Outreach("never-seen", "practice-9");
  EXPECT_EQ(outreach.patient_id(), "never-seen");
  EXPECT_EQ(outreach.practice_id(), "practice-9");
  EXPECT_FALSE(outreach.do_not_contact());
  EXPECT_EQ(outreach.open_tasks_size(), 0);
  EXPECT_EQ(outreach.total_attempts(), 0);
  EXPECT_FALSE(outreach.has_last_contacted_at());
}

TEST_F(PatientServiceTest, OutreachSumsAttemptsAndKeepsTheLatestContactAcrossTasks) {
  CreateFor("recall", "p1", v1::RECALL_OVERDUE);
  CreateFor("treatment", "p1", v1::UNSCHEDULED_TREATMENT);
  v1::Task task;
  ASSERT_TRUE(Log(LogContactRequest("recall"), &task).ok());
  clock_.Advance(absl::Hours(1));
  v1::LogContactRequest reached = LogContactRequest("treatment");
  reached.set_outcome(v1::DID_NOT_SCHEDULE);
  ASSERT_TRUE(Log(reached, &task).ok());
  const v1::PatientOutreach outreach = Outreach("p1");
  EXPECT_EQ(outreach.total_attempts(), 2);
  EXPECT_EQ(outreach.last_outcome(), v1::DID_NOT_SCHEDULE);
  EXPECT_EQ(domain::FromProto(outreach.last_contacted_at()), clock_.Now());
  ASSERT_EQ(outreach.open_tasks_size(), 2);
  EXPECT_EQ(outreach.open_tasks(0).task_id(), "recall");
}

TEST_F(PatientServiceTest, RequestedNoContactClosesThePatientsOtherTasksInThePractice) {
  CreateFor("recall", "p1", v1::RECALL_OVERDUE);
  CreateFor("treatment", "p1", v1::UNSCHEDULED_TREATMENT);
  CreateFor("elsewhere", "p1", v1::RECALL_OVERDUE, "practice-2");
  v1::LogContactRequest request = LogContactRequest("recall");
  request.set_outcome(v1::REQUESTED_NO_CONTACT);
  request.clear_follow_up_date();
  request.set_close_task(true);
  const uint64_t head = Head();
  v1::Task task;
  ASSERT_TRUE(Log(request, &task).ok());
  EXPECT_EQ(task.close_reason(), v1::DO_NOT_CONTACT);
  EXPECT_EQ(Head(), head + 4);  // contact, close, the patient's preference, the other close
  ASSERT_TRUE(Get("treatment", &task).ok());
  EXPECT_EQ(task.close_reason(), v1::DO_NOT_CONTACT);
  EXPECT_EQ(StatusOf("elsewhere"), v1::OPEN);
  EXPECT_TRUE(Outreach("p1").do_not_contact());
  EXPECT_FALSE(Outreach("p1", "practice-2").do_not_contact());
}

struct BadInput {
  std::string name;
  std::string field;
  std::function<grpc::Status(PatientServiceTest&)> call;
};

class PatientBadInputTest : public PatientServiceTest,
                            public ::testing::WithParamInterface<BadInput> {};

TEST_P(PatientBadInputTest, IsInvalidArgumentNamingTheFieldAndAppendsNothing) {
  CreateFor("recall", "p1", v1::RECALL_OVERDUE);
  const uint64_t head = Head();
  const grpc::Status status = GetParam().call(*this);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(status.error_message().rfind(GetParam().field + ": ", 0), 0u)
      << status.error_message();
  EXPECT_EQ(Head(), head);
  EXPECT_EQ(StatusOf("recall"), v1::OPEN);
}

grpc::Status ResolveWith(PatientServiceTest& t,
                         const std::function<void(v1::ResolveTasksRequest&)>& edit) {
  v1::ResolveTasksRequest request;
  request.set_patient_id("p1");
  request.set_reason(v1::APPOINTMENT_SCHEDULED);
  edit(request);
  v1::ResolveTasksResponse response;
  return t.tasks_->ResolveTasks(PatientServiceTest::Context("scheduler").get(), request, &response);
}

grpc::Status PreferWith(PatientServiceTest& t,
                        const std::function<void(v1::SetContactPreferenceRequest&)>& edit) {
  v1::SetContactPreferenceRequest request;
  request.set_patient_id("p1");
  request.set_do_not_contact(true);
  edit(request);
  v1::PatientOutreach response;
  return t.patients_->SetContactPreference(PatientServiceTest::Context("coordinator-1").get(),
                                           request, &response);
}

INSTANTIATE_TEST_SUITE_P(
    Issue13, PatientBadInputTest,
    ::testing::Values(
        BadInput{"ResolveWithoutPatient", "patient_id",
                 [](auto& t) { return ResolveWith(t, [](auto& r) { r.clear_patient_id(); }); }},
        BadInput{"ResolveWithAReasonOfAnotherKind", "reason",
                 [](auto& t) {
                   return ResolveWith(t, [](auto& r) { r.set_reason(v1::CANCELLED); });
                 }},
        BadInput{"ResolveWithoutReason", "reason",
                 [](auto& t) {
                   return ResolveWith(t, [](auto& r) { r.clear_reason(); });
                 }},
        BadInput{"ResolveWithALongSourceRef", "source_ref",
                 [](auto& t) {
                   return ResolveWith(t, [](auto& r) { r.set_source_ref(std::string(129, 'x')); });
                 }},
        BadInput{"ResolveInTheFuture", "occurred_at",
                 [](auto& t) {
                   return ResolveWith(t, [&](auto& r) {
                     *r.mutable_occurred_at() = domain::ToProto(t.clock_.Now() + absl::Hours(1));
                   });
                 }},
        BadInput{"ResolveAnUnknownCategory", "categories",
                 [](auto& t) {
                   return ResolveWith(
                       t, [](auto& r) { r.add_categories(static_cast<v1::TaskCategory>(99)); });
                 }},
        BadInput{"ResolveABadPracticeId", "practice_id",
                 [](auto& t) {
                   return ResolveWith(t, [](auto& r) { r.set_practice_id("no spaces"); });
                 }},
        BadInput{"PreferWithoutPatient", "patient_id",
                 [](auto& t) { return PreferWith(t, [](auto& r) { r.clear_patient_id(); }); }},
        BadInput{"PreferUntilToday", "until_date",
                 [](auto& t) {
                   return PreferWith(t, [](auto& r) { r.set_until_date(kToday); });
                 }},
        BadInput{"PreferUntilNotADate", "until_date",
                 [](auto& t) {
                   return PreferWith(t, [](auto& r) { r.set_until_date("2025-02-30"); });
                 }},
        BadInput{"PreferUntilWithoutDoNotContact", "until_date",
                 [](auto& t) {
                   return PreferWith(t, [](auto& r) {
                     r.set_do_not_contact(false);
                     r.set_until_date(kNextWeek);
                   });
                 }},
        BadInput{"PreferWithALongReason", "reason",
                 [](auto& t) {
                   return PreferWith(t, [](auto& r) { r.set_reason(std::string(501, 'x')); });
                 }}),
    [](const ::testing::TestParamInfo<BadInput>& info) { return info.param.name; });

}  // namespace
}  // namespace outreach::server::testing
