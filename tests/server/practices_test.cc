// Issue 13's practices through the live server: the worklist's new filters (practice_id,
// categories, unassigned) and its order (URGENT before ROUTINE on one follow-up day) with paging;
// "today" in each practice's zone (StoreOptions::practice_zones, replaced as a SIGHUP would); and
// principals limited to practices, RPC by RPC.
#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "openssl/sha.h"
#include "server/auth.h"
#include "store/practice_zones.h"
#include "tests/testing/server_fixture.h"

namespace outreach::server::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

std::vector<std::string> Ids(const v1::ListTasksResponse& response) {
  std::vector<std::string> ids;
  for (const v1::Task& task : response.tasks()) ids.push_back(task.task_id());
  return ids;
}

// ---- The worklist's filters and order --------------------------------------------------------

class WorklistFiltersTest : public ServerFixture {
 protected:
  void SetUp() override {
    ServerFixture::SetUp();
    // id, practice, category, priority, follow-up, assignee, patient (one open task per
    // practice, patient and category: CreateTask dedupes them)
    Add("a", "north", v1::RECALL_OVERDUE, v1::ROUTINE, "2025-03-12", "", "patient-1");
    Add("b", "north", v1::RECALL_OVERDUE, v1::URGENT, "2025-03-12", "nurse-1", "patient-3");
    Add("c", "north", v1::PAST_DUE_BALANCE, v1::URGENT, "2025-03-11", "", "patient-1");
    Add("d", "south", v1::RECALL_OVERDUE, v1::URGENT, "2025-03-12", "", "patient-1");
    Add("e", "south", v1::TASK_CATEGORY_UNSPECIFIED, v1::TASK_PRIORITY_UNSPECIFIED,
        "2025-03-11", "", "patient-1");
    Add("f", "", v1::REACTIVATION, v1::URGENT, "", "", "patient-1");
    Add("g", "north", v1::RECALL_OVERDUE, v1::ROUTINE, "2025-03-12", "", "patient-2");
  }

  void Add(const std::string& id, const std::string& practice, v1::TaskCategory category,
           v1::TaskPriority priority, const std::string& follow_up, const std::string& assignee,
           const std::string& patient) {
    v1::CreateTaskRequest request = ManualRequest(id);
    request.set_practice_id(practice);
    request.set_category(category);
    request.set_priority(priority);
    request.set_follow_up_date(follow_up);
    request.set_assignee(assignee);
    request.set_patient_id(patient);
    v1::Task task;
    grpc::Status status = Create(request, &task);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  // Every page of `request`, `page_size` at a time, concatenated.
  std::vector<std::string> AllPages(v1::ListTasksRequest request, int page_size) {
    request.set_page_size(page_size);
    std::vector<std::string> ids;
    for (int pages = 0; pages < 100; ++pages) {
      v1::ListTasksResponse response;
      grpc::Status status = List(request, &response);
      EXPECT_TRUE(status.ok()) << status.error_message();
      if (!status.ok()) break;
      EXPECT_LE(response.tasks_size(), page_size);
      for (const std::string& id : Ids(response)) ids.push_back(id);
      if (response.next_page_token().empty()) break;
      request.set_page_token(response.next_page_token());
    }
    return ids;
  }

  std::vector<std::string> ListIds(const v1::ListTasksRequest& request) {
    v1::ListTasksResponse response;
    grpc::Status status = List(request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return Ids(response);
  }
};

TEST_F(WorklistFiltersTest, UrgentComesBeforeRoutineOnTheSameFollowUpDate) {
  // 03-11: c (URGENT), e (unset = ROUTINE); 03-12: b, d (URGENT), a, g (ROUTINE); none: f.
  EXPECT_THAT(ListIds(v1::ListTasksRequest()), ElementsAre("c", "e", "b", "d", "a", "g", "f"));
}

TEST_F(WorklistFiltersTest, PagesOfOneOrThreeGiveTheSameOrder) {
  const std::vector<std::string> want = {"c", "e", "b", "d", "a", "g", "f"};
  EXPECT_EQ(AllPages(v1::ListTasksRequest(), 1), want);
  EXPECT_EQ(AllPages(v1::ListTasksRequest(), 3), want);
  v1::ListTasksRequest north;
  north.set_practice_id("north");
  north.set_unassigned(true);
  EXPECT_THAT(AllPages(north, 1), ElementsAre("c", "a", "g"));
}

TEST_F(WorklistFiltersTest, PracticeIdListsThatPracticeOnlyAndDefaultIsAPractice) {
  v1::ListTasksRequest request;
  request.set_practice_id("north");
  EXPECT_THAT(ListIds(request), ElementsAre("c", "b", "a", "g"));
  request.set_practice_id("south");
  EXPECT_THAT(ListIds(request), ElementsAre("e", "d"));
  request.set_practice_id("default");
  EXPECT_THAT(ListIds(request), ElementsAre("f"));
  request.set_practice_id("nowhere");
  EXPECT_THAT(ListIds(request), IsEmpty());
}

TEST_F(WorklistFiltersTest, CategoriesListTasksOfAnyOfThem) {
  v1::ListTasksRequest request;
  request.add_categories(v1::RECALL_OVERDUE);
  EXPECT_THAT(ListIds(request), ElementsAre("b", "d", "a", "g"));
  request.add_categories(v1::PAST_DUE_BALANCE);
  EXPECT_THAT(ListIds(request), ElementsAre("c", "b", "d", "a", "g"));
  v1::ListTasksRequest custom;
  custom.add_categories(v1::CUSTOM);  // "e" was created without one
  EXPECT_THAT(ListIds(custom), ElementsAre("e"));
}

TEST_F(WorklistFiltersTest, UnassignedListsTasksWithoutAnAssignee) {
  v1::ListTasksRequest request;
  request.set_unassigned(true);
  EXPECT_THAT(ListIds(request), ElementsAre("c", "e", "d", "a", "g", "f"));
  v1::Task task;
  ASSERT_TRUE(Assign(AssignRequest("a", "group:front-desk"), &task).ok());
  ASSERT_TRUE(Assign(AssignRequest("b", ""), &task).ok());
  EXPECT_THAT(ListIds(request), ElementsAre("c", "e", "b", "d", "g", "f"));
}

TEST_F(WorklistFiltersTest, FiltersCombineWithEachOtherAndTheOlderOnes) {
  v1::ListTasksRequest request;
  request.set_practice_id("north");
  request.set_unassigned(true);
  request.add_categories(v1::RECALL_OVERDUE);
  EXPECT_THAT(ListIds(request), ElementsAre("a", "g"));
  request.set_patient_id("patient-2");
  EXPECT_THAT(ListIds(request), ElementsAre("g"));
  request.set_practice_id("south");
  EXPECT_THAT(ListIds(request), IsEmpty());
  v1::ListTasksRequest due;
  due.set_practice_id("north");
  due.set_follow_up_on_or_before("2025-03-11");
  EXPECT_THAT(ListIds(due), ElementsAre("c"));
  v1::ListTasksRequest mine;
  mine.set_assignee("nurse-1");
  mine.set_practice_id("north");
  EXPECT_THAT(ListIds(mine), ElementsAre("b"));
  v1::Task task;
  ASSERT_TRUE(Cancel(CancelRequest("c"), &task).ok());
  v1::ListTasksRequest closed;
  closed.add_statuses(v1::CLOSED);
  closed.set_practice_id("north");
  EXPECT_THAT(ListIds(closed), ElementsAre("c"));
  closed.set_practice_id("south");
  EXPECT_THAT(ListIds(closed), IsEmpty());
}

TEST_F(WorklistFiltersTest, APageTokenHoldsOnlyForTheSameFilters) {
  v1::ListTasksRequest request;
  request.set_page_size(1);
  request.set_practice_id("north");
  request.add_categories(v1::RECALL_OVERDUE);
  request.add_categories(v1::PAST_DUE_BALANCE);
  v1::ListTasksResponse first;
  ASSERT_TRUE(List(request, &first).ok());
  ASSERT_FALSE(first.next_page_token().empty());
  // The same set of categories in another order is the same query.
  v1::ListTasksRequest same = request;
  same.clear_categories();
  same.add_categories(v1::PAST_DUE_BALANCE);
  same.add_categories(v1::RECALL_OVERDUE);
  same.set_page_token(first.next_page_token());
  v1::ListTasksResponse next;
  ASSERT_TRUE(List(same, &next).ok());
  EXPECT_THAT(Ids(next), ElementsAre("b"));
  const std::vector<std::function<void(v1::ListTasksRequest&)>> others = {
      [](auto& r) { r.set_practice_id("south"); },
      [](auto& r) { r.clear_practice_id(); },
      [](auto& r) { r.add_categories(v1::CUSTOM); },
      [](auto& r) { r.set_unassigned(true); },
  };
  for (const auto& change : others) {
    v1::ListTasksRequest other = request;
    change(other);
    other.set_page_token(first.next_page_token());
    grpc::Status status = List(other, &next);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), StartsWith("page_token:"));
  }
}

// ---- "Today" in the practice's zone -----------------------------------------------------------

absl::TimeZone Zone(const char* name) {
  absl::TimeZone zone;
  EXPECT_TRUE(absl::LoadTimeZone(name, &zone)) << name;
  return zone;
}

// "east" on Kiritimati (UTC+14), "west" in Los Angeles; the others in UTC (--time-zone).
class PracticeZonesServerTest : public ServerFixture {
 protected:
  void SetUp() override {
    zones_ = std::make_shared<store::PracticeZoneTable>(domain::PracticeZones{
        {"east", Zone("Pacific/Kiritimati")}, {"west", Zone("America/Los_Angeles")}});
    store::StoreOptions options = TestStoreOptions();
    options.practice_zones = zones_;
    ASSERT_NO_FATAL_FAILURE(OpenStore(options));
    ASSERT_NO_FATAL_FAILURE(StartServer(ServerOptions()));
  }

  grpc::Status CreateIn(const std::string& id, const std::string& practice,
                        const std::string& follow_up) {
    v1::CreateTaskRequest request = ManualRequest(id);
    request.set_practice_id(practice);
    request.set_follow_up_date(follow_up);
    v1::Task task;
    return Create(request, &task);
  }

  std::shared_ptr<store::PracticeZoneTable> zones_;
};

TEST_F(PracticeZonesServerTest, TodayInUtcIsYesterdayOnKiritimati) {
  // 2025-03-10 15:00 UTC = 2025-03-11 05:00 on Kiritimati.
  grpc::Status east = CreateIn("t-east", "east", kToday);
  EXPECT_EQ(east.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(east.error_message(),
            "follow_up_date: 2025-03-10 is before today (2025-03-11 in Pacific/Kiritimati)");
  EXPECT_TRUE(CreateIn("t-north", "north", kToday).ok());
  ASSERT_TRUE(CreateIn("t-east", "east", "2025-03-11").ok());
  v1::LogContactRequest log = LogContactRequest("t-east");
  log.set_follow_up_date(kToday);
  v1::Task task;
  grpc::Status logged = Log(log, &task);
  EXPECT_EQ(logged.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(logged.error_message(), StartsWith("follow_up_date:"));
  log.set_follow_up_date("2025-03-11");
  EXPECT_TRUE(Log(log, &task).ok());
}

TEST_F(PracticeZonesServerTest, TodayInLosAngelesIsYesterdayInUtc) {
  clock_.Advance(absl::Hours(10));  // 2025-03-11 01:00 UTC = 2025-03-10 18:00 in Los Angeles
  EXPECT_TRUE(CreateIn("t-west", "west", kToday).ok());
  EXPECT_EQ(CreateIn("t-north", "north", kToday).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::CreateTaskRequest cadence = ManualRequest("t-cadence");
  cadence.set_practice_id("west");
  cadence.add_cadence_days(1);
  v1::Task task;
  ASSERT_TRUE(Create(cadence, &task).ok());
  EXPECT_EQ(task.cadence_start_date(), kToday);
  EXPECT_EQ(task.follow_up_date(), "2025-03-11");
}

TEST_F(PracticeZonesServerTest, ReplacedZonesApplyToTheNextCommand) {
  EXPECT_EQ(CreateIn("t1", "east", kToday).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  zones_->Replace(domain::PracticeZones{{"north", Zone("Pacific/Kiritimati")}});
  EXPECT_TRUE(CreateIn("t1", "east", kToday).ok());
  EXPECT_EQ(CreateIn("t2", "north", kToday).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// ---- Principals limited to practices ----------------------------------------------------------

std::string HashHex(absl::string_view token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}
std::string TokenOf(const std::string& id) { return id + "-token-0123456789abcdef"; }

std::string PrincipalLine(const std::string& id, const std::string& roles,
                          const std::string& practices) {
  return absl::StrCat(id, " ", roles, " ", HashHex(TokenOf(id)), " ", practices, "\n");
}

std::string PrincipalsFile(const std::string& multi_practices = "practices=north,south") {
  return absl::StrCat(PrincipalLine("admin-all", "admin", ""),
                      PrincipalLine("svc-north", "service", "practices=north"),
                      PrincipalLine("nurse-north", "coordinator", "practices=north"),
                      PrincipalLine("auditor-north", "auditor", "practices=north"),
                      PrincipalLine("nurse-multi", "coordinator", multi_practices));
}

// Tasks "n1", "n2" (north), "s1", "s2" (south), "d1" (default) of one patient; every call as a
// principal of the file above.
class LimitedPrincipalTest : public ServerFixture {
 protected:
  void SetUp() override {
    path_ = dir_ + "/principals";
    Write(PrincipalsFile());
    absl::StatusOr<std::unique_ptr<PrincipalRegistry>> registry = PrincipalRegistry::Load(path_);
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = *std::move(registry);
    ASSERT_NO_FATAL_FAILURE(OpenStore(TestStoreOptions()));
    ServerOptions options;
    options.principals = registry_.get();
    ASSERT_NO_FATAL_FAILURE(StartServer(options));
    for (const auto& [id, practice] : std::vector<std::pair<std::string, std::string>>{
             {"n1", "north"}, {"n2", "north"}, {"s1", "south"}, {"s2", "south"}, {"d1", ""}}) {
      v1::CreateTaskRequest request = ManualRequest(id);
      request.set_practice_id(practice);
      v1::Task task;
      grpc::Status status = tasks_->CreateTask(As("admin-all").get(), request, &task);
      ASSERT_TRUE(status.ok()) << status.error_message();
    }
  }

  void Write(const std::string& text) {
    std::ofstream out(path_, std::ios::trunc);
    out << text;
  }

  static std::unique_ptr<grpc::ClientContext> As(const std::string& id) {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    context->AddMetadata("authorization", "Bearer " + TokenOf(id));
    return context;
  }

  // The log's head, as an unlimited auditor sees it.
  uint64_t LogHead() {
    v1::VerifyLogResponse response;
    EXPECT_TRUE(events_->VerifyLog(As("admin-all").get(), v1::VerifyLogRequest(), &response).ok());
    return response.head_position();
  }

  std::vector<std::string> ListAs(const std::string& id, const v1::ListTasksRequest& request,
                                  grpc::Status* status = nullptr) {
    v1::ListTasksResponse response;
    grpc::Status got = tasks_->ListTasks(As(id).get(), request, &response);
    if (status != nullptr) *status = got;
    else EXPECT_TRUE(got.ok()) << got.error_message();
    return Ids(response);
  }

  grpc::Status ReadEventsAs(const std::string& id, const std::string& task_id, int* count) {
    v1::ReadEventsRequest request;
    request.set_task_id(task_id);
    auto context = As(id);
    auto reader = events_->ReadEvents(context.get(), request);
    v1::EventRecord record;
    *count = 0;
    while (reader->Read(&record)) ++*count;
    return reader->Finish();
  }

  // Subscribes to `task_id` from the start: OK once it got the task's first event.
  grpc::Status SubscribeAs(const std::string& id, const std::string& task_id) {
    v1::SubscribeEventsRequest request;
    request.set_task_id(task_id);
    auto context = As(id);
    auto reader = events_->SubscribeEvents(context.get(), request);
    v1::EventRecord record;
    if (reader->Read(&record)) {
      EXPECT_EQ(record.task_id(), task_id);
      context->TryCancel();
      reader->Finish();
      return grpc::Status::OK;
    }
    return reader->Finish();
  }

  std::string path_;
  std::unique_ptr<PrincipalRegistry> registry_;
};

void ExpectDenied(const grpc::Status& status, const std::string& what) {
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << what << ": " << status.error_message();
}

TEST_F(LimitedPrincipalTest, CreateTaskOnlyInItsPracticesAndNothingAppendedOtherwise) {
  const uint64_t head = LogHead();
  v1::Task task;
  v1::CreateTaskRequest south = ManualRequest("new-south");
  south.set_practice_id("south");
  grpc::Status status = tasks_->CreateTask(As("svc-north").get(), south, &task);
  ExpectDenied(status, "CreateTask in south");
  EXPECT_THAT(status.error_message(), StartsWith("practice_id:"));
  ExpectDenied(tasks_->CreateTask(As("svc-north").get(), ManualRequest("new-default"), &task),
               "CreateTask in the default practice");
  EXPECT_EQ(LogHead(), head);
  v1::CreateTaskRequest north = ManualRequest("new-north");
  north.set_practice_id("north");
  EXPECT_TRUE(tasks_->CreateTask(As("svc-north").get(), north, &task).ok());
}

TEST_F(LimitedPrincipalTest, GetTaskOfAnotherPracticeIsDeniedAlsoAsOfAVersion) {
  v1::GetTaskRequest request;
  request.set_task_id("s1");
  v1::Task task;
  grpc::Status status = tasks_->GetTask(As("nurse-north").get(), request, &task);
  ExpectDenied(status, "GetTask s1");
  EXPECT_THAT(status.error_message(), HasSubstr("limited to practices north"));
  request.set_as_of_version(1);
  ExpectDenied(tasks_->GetTask(As("nurse-north").get(), request, &task), "GetTask s1 as of 1");
  request.set_task_id("n1");
  EXPECT_TRUE(tasks_->GetTask(As("nurse-north").get(), request, &task).ok());
  request.set_task_id("ghost");
  EXPECT_EQ(tasks_->GetTask(As("nurse-north").get(), request, &task).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(LimitedPrincipalTest, ListTasksSeesOnlyItsPractices) {
  v1::ListTasksRequest request;
  EXPECT_THAT(ListAs("nurse-north", request), ElementsAre("n1", "n2"));
  EXPECT_THAT(ListAs("nurse-multi", request), ElementsAre("n1", "n2", "s1", "s2"));
  EXPECT_THAT(ListAs("admin-all", request), ElementsAre("d1", "n1", "n2", "s1", "s2"));
  request.set_patient_id("patient-1");  // the patient scope, checked per row
  EXPECT_THAT(ListAs("nurse-north", request), ElementsAre("n1", "n2"));
  request.set_practice_id("north");
  EXPECT_THAT(ListAs("nurse-north", request), ElementsAre("n1", "n2"));
  request.set_practice_id("south");
  grpc::Status status;
  EXPECT_THAT(ListAs("nurse-north", request, &status), IsEmpty());
  ExpectDenied(status, "ListTasks practice_id south");
  request.set_practice_id("default");
  ListAs("nurse-multi", request, &status);
  ExpectDenied(status, "ListTasks practice_id default");
}

TEST_F(LimitedPrincipalTest, EveryMutationOfAnotherPracticesTaskIsDeniedAndAppendsNothing) {
  const uint64_t head = LogHead();
  v1::Task task;
  const std::string as = "nurse-north";
  ExpectDenied(tasks_->LogContact(As(as).get(), LogContactRequest("s1"), &task), "LogContact");
  ExpectDenied(tasks_->AssignTask(As(as).get(), AssignRequest("s1", "nurse-north"), &task),
               "AssignTask");
  ExpectDenied(tasks_->ClaimTask(As(as).get(), ClaimRequest("s1"), &task), "ClaimTask");
  ExpectDenied(tasks_->CancelTask(As(as).get(), CancelRequest("s1"), &task), "CancelTask");
  ExpectDenied(tasks_->LogContact(As(as).get(), LogContactRequest("d1"), &task),
               "LogContact on the default practice");
  EXPECT_EQ(LogHead(), head);
  // A task that does not exist is NOT_FOUND, as for anyone.
  EXPECT_EQ(tasks_->LogContact(As(as).get(), LogContactRequest("ghost"), &task).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // Its own practice's tasks: allowed.
  EXPECT_TRUE(tasks_->LogContact(As(as).get(), LogContactRequest("n1"), &task).ok());
  EXPECT_TRUE(tasks_->AssignTask(As(as).get(), AssignRequest("n1", "nurse-2"), &task).ok());
  EXPECT_TRUE(tasks_->ClaimTask(As(as).get(), ClaimRequest("n2"), &task).ok());
  EXPECT_EQ(task.assignee(), "nurse-north");
  EXPECT_TRUE(tasks_->CancelTask(As(as).get(), CancelRequest("n2"), &task).ok());
  // Unlimited principals change any practice's tasks.
  EXPECT_TRUE(tasks_->CancelTask(As("admin-all").get(), CancelRequest("s1"), &task).ok());
}

TEST_F(LimitedPrincipalTest, PatientRpcsNameOnlyItsPractices) {
  const uint64_t head = LogHead();
  v1::ResolveTasksRequest resolve;
  resolve.set_practice_id("south");
  resolve.set_patient_id("patient-1");
  resolve.set_reason(v1::APPOINTMENT_SCHEDULED);
  v1::ResolveTasksResponse resolved;
  ExpectDenied(tasks_->ResolveTasks(As("svc-north").get(), resolve, &resolved), "ResolveTasks");
  resolve.clear_practice_id();  // the default practice
  ExpectDenied(tasks_->ResolveTasks(As("svc-north").get(), resolve, &resolved),
               "ResolveTasks in the default practice");
  v1::SetContactPreferenceRequest preference;
  preference.set_practice_id("south");
  preference.set_patient_id("patient-1");
  preference.set_do_not_contact(true);
  v1::PatientOutreach outreach;
  ExpectDenied(patients_->SetContactPreference(As("nurse-north").get(), preference, &outreach),
               "SetContactPreference");
  EXPECT_EQ(LogHead(), head);
  v1::GetPatientOutreachRequest get;
  get.set_practice_id("south");
  get.set_patient_id("patient-1");
  ExpectDenied(patients_->GetPatientOutreach(As("nurse-north").get(), get, &outreach),
               "GetPatientOutreach");
  // In its own practice: allowed.
  get.set_practice_id("north");
  ASSERT_TRUE(patients_->GetPatientOutreach(As("nurse-north").get(), get, &outreach).ok());
  EXPECT_EQ(outreach.open_tasks_size(), 2);
  resolve.set_practice_id("north");
  ASSERT_TRUE(tasks_->ResolveTasks(As("svc-north").get(), resolve, &resolved).ok());
  EXPECT_EQ(resolved.tasks_size(), 2);
}

TEST_F(LimitedPrincipalTest, TheLogIsReadOneTaskOfItsPracticesAtATime) {
  int count = 0;
  ExpectDenied(ReadEventsAs("auditor-north", "s1", &count), "ReadEvents s1");
  EXPECT_EQ(count, 0);
  ExpectDenied(ReadEventsAs("auditor-north", "", &count), "ReadEvents of the whole log");
  EXPECT_EQ(ReadEventsAs("auditor-north", "ghost", &count).error_code(),
            grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(ReadEventsAs("auditor-north", "n1", &count).ok());
  EXPECT_EQ(count, 1);
  ASSERT_TRUE(ReadEventsAs("admin-all", "", &count).ok());
  EXPECT_EQ(count, 5);

  ExpectDenied(SubscribeAs("auditor-north", "s1"), "SubscribeEvents s1");
  ExpectDenied(SubscribeAs("auditor-north", ""), "SubscribeEvents to the whole log");
  EXPECT_EQ(SubscribeAs("auditor-north", "ghost").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(SubscribeAs("auditor-north", "n1").ok());

  v1::GetTaskHistoryRequest history;
  history.set_task_id("s1");
  v1::GetTaskHistoryResponse response;
  ExpectDenied(events_->GetTaskHistory(As("auditor-north").get(), history, &response),
               "GetTaskHistory s1");
  history.set_task_id("n1");
  EXPECT_TRUE(events_->GetTaskHistory(As("auditor-north").get(), history, &response).ok());

  auto context = As("auditor-north");
  auto access = events_->ReadAccessLog(context.get(), v1::ReadAccessLogRequest());
  v1::AccessRecord record;
  EXPECT_FALSE(access->Read(&record));
  ExpectDenied(access->Finish(), "ReadAccessLog");
  v1::VerifyLogResponse verify;
  EXPECT_TRUE(events_->VerifyLog(As("auditor-north").get(), v1::VerifyLogRequest(), &verify).ok());
}

TEST_F(LimitedPrincipalTest, AReplayAfterThePrincipalLostThePracticeIsDenied) {
  v1::LogContactRequest log = LogContactRequest("s1");
  log.set_request_id("call-1");
  v1::Task task;
  ASSERT_TRUE(tasks_->LogContact(As("nurse-multi").get(), log, &task).ok());
  ASSERT_TRUE(tasks_->LogContact(As("nurse-multi").get(), log, &task).ok());  // a replay
  Write(PrincipalsFile("practices=north"));
  ASSERT_TRUE(registry_->Reload().ok());
  const uint64_t head = LogHead();
  ExpectDenied(tasks_->LogContact(As("nurse-multi").get(), log, &task), "the replay");
  EXPECT_EQ(LogHead(), head);
}

}  // namespace
}  // namespace outreach::server::testing
