// The auditor's RPCs through generated stubs: GetTask as of a version or a time, GetTaskHistory,
// VerifyLog up to a position against a kept head hash, and a server started read-only for
// investigation.
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "domain/validation.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "server/task_service.h"
#include "tests/testing/server_fixture.h"

namespace outreach::server::testing {
namespace {

using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;

class AuditTest : public ServerFixture {
 protected:
  // One task through the article's whole workflow, an hour apart on the fake clock:
  //   created_at_       TaskCreated                      v1  OPEN
  //   contacted_at_     ContactLogged (follow up)        v2  IN_PROGRESS
  //   closed_at_        ContactLogged + TaskClosed       v3, v4  CLOSED
  void MakeWorkflow(const std::string& task_id) {
    created_at_ = clock_.Now();
    CreateManual(task_id);
    clock_.Advance(absl::Hours(1));
    contacted_at_ = clock_.Now();
    v1::Task task;
    ASSERT_TRUE(Log(LogContactRequest(task_id), &task).ok());
    clock_.Advance(absl::Hours(1));
    closed_at_ = clock_.Now();
    v1::LogContactRequest close;
    close.set_task_id(task_id);
    close.set_outcome(v1::SCHEDULED);
    close.set_notes("Booked for next Tuesday.");
    close.set_close_task(true);
    grpc::Status status = Log(close, &task);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(task.version(), 4);
    clock_.Advance(absl::Hours(1));
  }

  grpc::Status GetAsOfVersion(const std::string& task_id, int64_t version, v1::Task* task) {
    v1::GetTaskRequest request;
    request.set_task_id(task_id);
    request.set_as_of_version(version);
    return tasks_->GetTask(Context().get(), request, task);
  }
  grpc::Status GetAsOfTime(const std::string& task_id, const google::protobuf::Timestamp& time,
                           v1::Task* task) {
    v1::GetTaskRequest request;
    request.set_task_id(task_id);
    *request.mutable_as_of_time() = time;
    return tasks_->GetTask(Context().get(), request, task);
  }
  grpc::Status GetAsOfTime(const std::string& task_id, absl::Time time, v1::Task* task) {
    return GetAsOfTime(task_id, domain::ToProto(time), task);
  }

  grpc::Status History(const std::string& task_id, v1::GetTaskHistoryResponse* response) {
    v1::GetTaskHistoryRequest request;
    request.set_task_id(task_id);
    return events_->GetTaskHistory(Context().get(), request, response);
  }

  grpc::Status VerifyTo(uint64_t to_position, const std::string& expected_head_hash,
                        v1::VerifyLogResponse* response) {
    v1::VerifyLogRequest request;
    request.set_to_position(to_position);
    request.set_expected_head_hash(expected_head_hash);
    return events_->VerifyLog(Context().get(), request, response);
  }

  absl::Time created_at_;
  absl::Time contacted_at_;
  absl::Time closed_at_;
};

// --- GetTask as_of_version ----------------------------------------------------------------------

TEST_F(AuditTest, AsOfVersionIsTheTaskAfterItsFirstNEvents) {
  ASSERT_NO_FATAL_FAILURE(MakeWorkflow("task-1"));
  v1::Task task;
  ASSERT_TRUE(GetAsOfVersion("task-1", 1, &task).ok());
  EXPECT_EQ(task.version(), 1);
  EXPECT_EQ(task.status(), v1::OPEN);
  EXPECT_EQ(task.contacts_size(), 0);

  ASSERT_TRUE(GetAsOfVersion("task-1", 2, &task).ok());
  EXPECT_EQ(task.version(), 2);
  EXPECT_EQ(task.status(), v1::IN_PROGRESS);
  EXPECT_EQ(task.follow_up_date(), kNextWeek);
  EXPECT_EQ(task.contacts_size(), 1);

  ASSERT_TRUE(GetAsOfVersion("task-1", 4, &task).ok());
  v1::Task now;
  ASSERT_TRUE(Get("task-1", &now).ok());
  EXPECT_EQ(task.SerializeAsString(), now.SerializeAsString());
  EXPECT_EQ(task.status(), v1::CLOSED);
}

TEST_F(AuditTest, AsOfVersionPastTheHeadIsOutOfRange) {
  ASSERT_NO_FATAL_FAILURE(MakeWorkflow("task-1"));
  v1::Task task;
  grpc::Status status = GetAsOfVersion("task-1", 5, &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::OUT_OF_RANGE) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("version 4"));
}

TEST_F(AuditTest, AsOfVersionBelowOneIsInvalidArgument) {
  ASSERT_NO_FATAL_FAILURE(MakeWorkflow("task-1"));
  v1::Task task;
  for (int64_t version : {int64_t{0}, int64_t{-1}}) {
    grpc::Status status = GetAsOfVersion("task-1", version, &task);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << version;
    EXPECT_THAT(status.error_message(), HasSubstr("as_of_version"));
  }
}

TEST_F(AuditTest, AsOfVersionOfAnUnknownTaskIsNotFound) {
  v1::Task task;
  EXPECT_EQ(GetAsOfVersion("no-such-task", 1, &task).error_code(), grpc::StatusCode::NOT_FOUND);
}

// --- GetTask as_of_time -------------------------------------------------------------------------

TEST_F(AuditTest, AsOfTimeIsTheTaskAfterEveryEventRecordedByThen) {
  ASSERT_NO_FATAL_FAILURE(MakeWorkflow("task-1"));
  v1::Task task;
  ASSERT_TRUE(GetAsOfTime("task-1", created_at_, &task).ok());
  EXPECT_EQ(task.version(), 1);
  EXPECT_EQ(task.status(), v1::OPEN);

  ASSERT_TRUE(GetAsOfTime("task-1", contacted_at_ - absl::Seconds(1), &task).ok());
  EXPECT_EQ(task.version(), 1);
  ASSERT_TRUE(GetAsOfTime("task-1", contacted_at_ + absl::Minutes(30), &task).ok());
  EXPECT_EQ(task.version(), 2);
  EXPECT_EQ(task.status(), v1::IN_PROGRESS);

  ASSERT_TRUE(GetAsOfTime("task-1", closed_at_, &task).ok());
  EXPECT_EQ(task.version(), 4);
  EXPECT_EQ(task.status(), v1::CLOSED);
  EXPECT_EQ(task.close_reason(), v1::CONTACT_OUTCOME);
}

TEST_F(AuditTest, AsOfTimeBeforeTheTaskExistedIsNotFound) {
  ASSERT_NO_FATAL_FAILURE(MakeWorkflow("task-1"));
  v1::Task task;
  grpc::Status status = GetAsOfTime("task-1", created_at_ - absl::Microseconds(1), &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("did not exist yet"));
  EXPECT_EQ(GetAsOfTime("no-such-task", closed_at_, &task).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(AuditTest, AsOfTimeOutsideTheTimestampRangeIsInvalidArgument) {
  ASSERT_NO_FATAL_FAILURE(MakeWorkflow("task-1"));
  v1::Task task;
  google::protobuf::Timestamp year_10000;
  year_10000.set_seconds(253402300800);  // 10000-01-01T00:00:00Z
  google::protobuf::Timestamp negative_nanos = domain::ToProto(closed_at_);
  negative_nanos.set_nanos(-1);
  google::protobuf::Timestamp too_many_nanos = domain::ToProto(closed_at_);
  too_many_nanos.set_nanos(1000000000);
  for (const auto& time : {year_10000, negative_nanos, too_many_nanos}) {
    grpc::Status status = GetAsOfTime("task-1", time, &task);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << time.DebugString();
    EXPECT_THAT(status.error_message(), HasSubstr("as_of_time"));
  }
}

// --- GetTaskHistory -----------------------------------------------------------------------------

TEST_F(AuditTest, HistoryShowsOpenThenInProgressThenClosedWithEachEvent) {
  CreateManual("other");  // interleaved, and not in task-1's history
  ASSERT_NO_FATAL_FAILURE(MakeWorkflow("task-1"));
  v1::GetTaskHistoryResponse history;
  grpc::Status status = History("task-1", &history);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(history.task_id(), "task-1");
  ASSERT_EQ(history.entries_size(), 4);

  const v1::TaskHistoryEntry& created = history.entries(0);
  EXPECT_TRUE(created.event().has_task_created());
  EXPECT_EQ(created.status_before(), v1::TASK_STATUS_UNSPECIFIED);
  EXPECT_EQ(created.status_after(), v1::OPEN);

  const v1::TaskHistoryEntry& contacted = history.entries(1);
  EXPECT_TRUE(contacted.event().has_contact_logged());
  EXPECT_EQ(contacted.event().contact_logged().outcome(), v1::NO_ANSWER);
  EXPECT_EQ(contacted.status_before(), v1::OPEN);
  EXPECT_EQ(contacted.status_after(), v1::IN_PROGRESS);

  // Log and Close: the contact, then the close that carries the reason.
  EXPECT_TRUE(history.entries(2).event().has_contact_logged());
  EXPECT_EQ(history.entries(2).status_before(), v1::IN_PROGRESS);
  const v1::TaskHistoryEntry& closed = history.entries(3);
  EXPECT_TRUE(closed.event().has_task_closed());
  EXPECT_EQ(closed.event().task_closed().reason(), v1::CONTACT_OUTCOME);
  EXPECT_EQ(closed.event().task_closed().outcome(), v1::SCHEDULED);
  EXPECT_EQ(closed.status_before(), history.entries(2).status_after());
  EXPECT_EQ(closed.status_after(), v1::CLOSED);

  for (int i = 0; i < history.entries_size(); ++i) {
    EXPECT_EQ(history.entries(i).event().task_id(), "task-1");
    EXPECT_EQ(history.entries(i).event().version(), i + 1);
    EXPECT_EQ(history.entries(i).event().hash().size(), 32u);
  }
}

TEST_F(AuditTest, HistoryOfAnUnknownTaskIsNotFound) {
  v1::GetTaskHistoryResponse history;
  EXPECT_EQ(History("no-such-task", &history).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(AuditTest, HistoryWithoutATaskIdIsInvalidArgument) {
  v1::GetTaskHistoryResponse history;
  grpc::Status status = History("", &history);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("task_id"));
}

// --- VerifyLog with a kept head hash ------------------------------------------------------------

TEST_F(AuditTest, VerifyLogWithTheKeptHeadHashIsOkAfterLaterWrites) {
  ASSERT_NO_FATAL_FAILURE(MakeWorkflow("task-1"));
  // The auditor keeps the head (position 4) and its hash...
  const v1::VerifyLogResponse kept = Verify();
  ASSERT_TRUE(kept.ok());
  ASSERT_EQ(kept.head_position(), 4u);
  // ...the log grows...
  CreateManual("task-2");
  CreateManual("task-3");
  // ...and the log up to the kept head is unchanged.
  v1::VerifyLogResponse verify;
  grpc::Status status = VerifyTo(4, kept.head_hash(), &verify);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(verify.ok()) << verify.problem();
  EXPECT_EQ(verify.events_checked(), 4u);
  EXPECT_EQ(verify.head_position(), 4u);
  EXPECT_EQ(verify.head_hash(), kept.head_hash());
  EXPECT_EQ(verify.first_bad_position(), 0u);

  // The whole log (to_position 0) against the current head's hash.
  const std::string head_hash = ReadEvents().back().hash();
  ASSERT_TRUE(VerifyTo(0, head_hash, &verify).ok());
  EXPECT_TRUE(verify.ok()) << verify.problem();
  EXPECT_EQ(verify.head_position(), 6u);
}

TEST_F(AuditTest, VerifyLogWithAnotherHashIsNotOkNamingThePosition) {
  ASSERT_NO_FATAL_FAILURE(MakeWorkflow("task-1"));
  std::string other_hash = Verify().head_hash();
  other_hash[0] = static_cast<char>(other_hash[0] ^ 0x01);
  v1::VerifyLogResponse verify;
  grpc::Status status = VerifyTo(3, ReadEvents(4).front().hash(), &verify);  // position 4's hash
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(verify.ok());
  EXPECT_EQ(verify.first_bad_position(), 3u);
  EXPECT_FALSE(verify.problem().empty());

  ASSERT_TRUE(VerifyTo(4, other_hash, &verify).ok());
  EXPECT_FALSE(verify.ok());
  EXPECT_EQ(verify.first_bad_position(), 4u);
}

TEST_F(AuditTest, VerifyLogWithAHashThatIsNot32BytesIsInvalidArgument) {
  ASSERT_NO_FATAL_FAILURE(MakeWorkflow("task-1"));
  v1::VerifyLogResponse verify;
  for (const std::string& hash : {std::string(31, 'x'), std::string(33, 'x'),
                                  std::string(64, 'a') /* hex, not bytes */}) {
    grpc::Status status = VerifyTo(4, hash, &verify);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << hash.size();
    EXPECT_THAT(status.error_message(), HasSubstr("expected_head_hash"));
  }
}

TEST_F(AuditTest, VerifyLogToAPositionPastTheHeadIsNotOk) {
  ASSERT_NO_FATAL_FAILURE(MakeWorkflow("task-1"));
  v1::VerifyLogResponse verify;
  ASSERT_TRUE(VerifyTo(9, "", &verify).ok());
  EXPECT_FALSE(verify.ok());
  EXPECT_EQ(verify.first_bad_position(), 5u);
}

// --- A server started read-only for investigation ----------------------------------------------

class ReadOnlyInvestigationTest : public ServerFixture {
 protected:
  // Writes one task through the normal server, then serves the same directory read-only.
  void RestartReadOnly() {
    CreateManual("task-1");
    v1::Task task;
    ASSERT_TRUE(Log(LogContactRequest("task-1"), &task).ok());
    tasks_.reset();
    events_.reset();
    channel_.reset();
    server_.reset();
    store_.reset();
    store::ReadOnlyOptions options;
    options.verify_on_open = false;
    absl::StatusOr<std::unique_ptr<store::EventStore>> store =
        store::EventStore::OpenReadOnly(dir_ + "/db", options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    ServerOptions server_options;
    server_options.listen_address = "127.0.0.1:0";
    server_options.read_only_investigation = true;
    absl::StatusOr<std::unique_ptr<OutreachServer>> server =
        OutreachServer::Start(server_options, store_.get());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    server_->SetServing(true);
    channel_ = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    tasks_ = v1::TaskService::NewStub(channel_);
    events_ = v1::EventLog::NewStub(channel_);
  }

  HealthCheckResponse::ServingStatus Health(const std::string& service) {
    HealthCheckRequest request;
    request.set_service(service);
    HealthCheckResponse response;
    grpc::Status status =
        grpc::health::v1::Health::NewStub(channel_)->Check(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << service << ": " << status.error_message();
    return response.status();
  }
};

TEST_F(ReadOnlyInvestigationTest, EveryMutationIsFailedPrecondition) {
  ASSERT_NO_FATAL_FAILURE(RestartReadOnly());
  v1::Task task;
  grpc::Status create = Create(ManualRequest("task-2"), &task);
  EXPECT_EQ(create.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(create.error_message(), kReadOnlyInvestigation);
  grpc::Status log = Log(LogContactRequest("task-1"), &task);
  EXPECT_EQ(log.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(log.error_message(), kReadOnlyInvestigation);
  // Issue 13's mutations too.
  for (const grpc::Status& status : {Assign(AssignRequest("task-1", "nurse-1"), &task),
                                     Claim(ClaimRequest("task-1"), &task, "nurse-1"),
                                     Cancel(CancelRequest("task-1"), &task)}) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(status.error_message(), kReadOnlyInvestigation);
  }
  // Even a malformed one: the server's state, not the request, is why.
  EXPECT_EQ(Create(v1::CreateTaskRequest(), &task).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ReadEvents().size(), 2u);
}

TEST_F(ReadOnlyInvestigationTest, ReadsAndAuditWork) {
  ASSERT_NO_FATAL_FAILURE(RestartReadOnly());
  v1::Task task;
  ASSERT_TRUE(Get("task-1", &task).ok());
  EXPECT_EQ(task.status(), v1::IN_PROGRESS);
  v1::ListTasksResponse list;
  ASSERT_TRUE(List(v1::ListTasksRequest(), &list).ok());
  EXPECT_EQ(list.tasks_size(), 1);
  v1::GetTaskRequest as_of;
  as_of.set_task_id("task-1");
  as_of.set_as_of_version(1);
  ASSERT_TRUE(tasks_->GetTask(Context().get(), as_of, &task).ok());
  EXPECT_EQ(task.status(), v1::OPEN);
  v1::GetTaskHistoryRequest history_request;
  history_request.set_task_id("task-1");
  v1::GetTaskHistoryResponse history;
  ASSERT_TRUE(events_->GetTaskHistory(Context().get(), history_request, &history).ok());
  EXPECT_EQ(history.entries_size(), 2);
  EXPECT_EQ(Head(), 2u);
}

TEST_F(ReadOnlyInvestigationTest, TaskServiceIsNotServingWhileReadsAreServing) {
  ASSERT_NO_FATAL_FAILURE(RestartReadOnly());
  EXPECT_EQ(Health(""), HealthCheckResponse::SERVING);
  EXPECT_EQ(Health("outreach.v1.EventLog"), HealthCheckResponse::SERVING);
  EXPECT_EQ(Health("outreach.v1.TaskService"), HealthCheckResponse::NOT_SERVING);
}

}  // namespace
}  // namespace outreach::server::testing
