// Issue 15 through the live server: AdminService.CreateBackup (a verified BackupEngine backup of
// the live store, the newest --backup-keep kept, restorable) and its refusals; the x-practice-id
// route check (a call routed for one practice whose request names another is INVALID_ARGUMENT
// and writes nothing); the plaintext health-only listener for probes.
#include <chrono>
#include <memory>
#include <string>
#include <utility>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "grpc/health/v1/health.grpc.pb.h"
#include "outreach/v1/admin_service.grpc.pb.h"
#include "store/event_store.h"
#include "tests/testing/server_fixture.h"

namespace outreach::server::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// ---- AdminService.CreateBackup ---------------------------------------------------------------

class CreateBackupTest : public ServerFixture {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(OpenStore(TestStoreOptions())); }

  void StartWithBackups(uint32_t keep) {
    ServerOptions options;
    options.backup_dir = backups_;
    options.backup_keep = keep;
    ASSERT_NO_FATAL_FAILURE(StartServer(options));
  }

  grpc::Status Backup(v1::CreateBackupResponse* response) {
    auto admin = v1::AdminService::NewStub(channel_);
    return admin->CreateBackup(Context().get(), v1::CreateBackupRequest(), response);
  }

  const std::string backups_ = dir_ + "/backups";
};

TEST_F(CreateBackupTest, KeepsTheNewestBackupsAndTheLatestRestoresVerified) {
  ASSERT_NO_FATAL_FAILURE(StartWithBackups(/*keep=*/2));
  v1::CreateBackupResponse response;
  for (int i = 1; i <= 3; ++i) {
    CreateManual("t" + std::to_string(i));
    ASSERT_TRUE(Backup(&response).ok());
    EXPECT_EQ(response.backup_id(), static_cast<uint32_t>(i));
    EXPECT_EQ(response.covers_through_position(), store_->HeadPosition());
    EXPECT_GT(response.size_bytes(), 0u);
    EXPECT_GT(response.file_count(), 0u);
    EXPECT_GT(response.created_at().seconds(), 0);
  }
  EXPECT_THAT(response.kept_backup_ids(), ElementsAre(2u, 3u));

  const std::string restored = dir_ + "/restored";
  ASSERT_TRUE(store::EventStore::RestoreFrom(backups_, restored).ok());
  store::ReadOnlyOptions options;
  absl::StatusOr<std::unique_ptr<store::EventStore>> copy =
      store::EventStore::OpenReadOnly(restored, options);
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_EQ((*copy)->HeadPosition(), store_->HeadPosition());
  EXPECT_TRUE((*copy)->GetTask("t3").ok());
}

TEST_F(CreateBackupTest, WithoutABackupDirectoryIsFailedPrecondition) {
  ASSERT_NO_FATAL_FAILURE(StartServer(ServerOptions()));
  v1::CreateBackupResponse response;
  const grpc::Status status = Backup(&response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("--backup-dir"));
}

TEST_F(CreateBackupTest, AReadOnlyInvestigationIsFailedPrecondition) {
  store_.reset();
  store::ReadOnlyOptions read_only;
  absl::StatusOr<std::unique_ptr<store::EventStore>> opened =
      store::EventStore::OpenReadOnly(dir_ + "/db", read_only);
  ASSERT_TRUE(opened.ok()) << opened.status();
  store_ = *std::move(opened);
  ServerOptions options;
  options.backup_dir = backups_;
  options.read_only_investigation = true;
  ASSERT_NO_FATAL_FAILURE(StartServer(options));
  v1::CreateBackupResponse response;
  const grpc::Status status = Backup(&response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("read-only"));
}

// ---- x-practice-id: the route a router took must match the request -------------------------

class RoutedPracticeTest : public ServerFixture {
 protected:
  static std::unique_ptr<grpc::ClientContext> Routed(const std::string& practice) {
    auto context = Context();
    context->AddMetadata("x-practice-id", practice);
    return context;
  }
  static v1::CreateTaskRequest InPractice(const std::string& task_id, const std::string& practice) {
    v1::CreateTaskRequest request = ManualRequest(task_id);
    request.set_practice_id(practice);
    return request;
  }
};

TEST_F(RoutedPracticeTest, CreateTaskRoutedForItsOwnPracticeIsServed) {
  v1::Task task;
  ASSERT_TRUE(tasks_->CreateTask(Routed("north").get(), InPractice("t1", "north"), &task).ok());
  EXPECT_EQ(task.practice_id(), "north");
  // No practice_id is the "default" practice.
  ASSERT_TRUE(tasks_->CreateTask(Routed("default").get(), ManualRequest("t2"), &task).ok());
}

TEST_F(RoutedPracticeTest, CreateTaskRoutedForAnotherPracticeIsInvalidArgumentAndWritesNothing) {
  const uint64_t head = store_->HeadPosition();
  v1::Task task;
  grpc::Status status = tasks_->CreateTask(Routed("south").get(), InPractice("t1", "north"), &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("x-practice-id"));
  status = tasks_->CreateTask(Routed("south").get(), ManualRequest("t2"), &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(store_->HeadPosition(), head);
  EXPECT_EQ(Get("t1", &task).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(RoutedPracticeTest, CallsOnAnotherPracticesTaskAreInvalidArgumentBeforeAnyWrite) {
  v1::Task task;
  ASSERT_TRUE(tasks_->CreateTask(Routed("north").get(), InPractice("t1", "north"), &task).ok());
  const uint64_t head = store_->HeadPosition();
  EXPECT_EQ(tasks_->LogContact(Routed("south").get(), LogContactRequest("t1"), &task).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(tasks_->AssignTask(Routed("south").get(), AssignRequest("t1", "nurse-2"), &task)
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(tasks_->CancelTask(Routed("south").get(), CancelRequest("t1"), &task).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::GetTaskRequest get;
  get.set_task_id("t1");
  EXPECT_EQ(tasks_->GetTask(Routed("south").get(), get, &task).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(store_->HeadPosition(), head);
  // Routed right, the same calls are served.
  EXPECT_TRUE(tasks_->LogContact(Routed("north").get(), LogContactRequest("t1"), &task).ok());
  EXPECT_EQ(store_->HeadPosition(), head + 1);
}

TEST_F(RoutedPracticeTest, PatientCallsAndListsNamingAnotherPracticeAreInvalidArgument) {
  v1::SetContactPreferenceRequest preference;
  preference.set_practice_id("north");
  preference.set_patient_id("patient-1");
  preference.set_do_not_contact(true);
  v1::PatientOutreach outreach;
  EXPECT_EQ(patients_->SetContactPreference(Routed("south").get(), preference, &outreach)
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::ResolveTasksRequest resolve;
  resolve.set_practice_id("north");
  resolve.set_patient_id("patient-1");
  resolve.set_reason(v1::APPOINTMENT_SCHEDULED);
  v1::ResolveTasksResponse resolved;
  EXPECT_EQ(tasks_->ResolveTasks(Routed("south").get(), resolve, &resolved).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::ListTasksRequest list;
  list.set_practice_id("north");
  v1::ListTasksResponse listed;
  EXPECT_EQ(tasks_->ListTasks(Routed("south").get(), list, &listed).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(store_->HeadPosition(), 0u);
}

TEST_F(RoutedPracticeTest, AMalformedOrRepeatedRouteIsInvalidArgument) {
  v1::Task task;
  grpc::Status status =
      tasks_->CreateTask(Routed("no spaces!").get(), InPractice("t1", "north"), &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("x-practice-id"));
  auto twice = Routed("north");
  twice->AddMetadata("x-practice-id", "north");
  EXPECT_EQ(tasks_->CreateTask(twice.get(), InPractice("t1", "north"), &task).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(store_->HeadPosition(), 0u);
}

// ---- The health-only listener (--health-listen) ------------------------------------------------

class HealthListenerTest : public ServerFixture {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(OpenStore(TestStoreOptions()));
    ServerOptions options;
    options.health_listen_address = "127.0.0.1:0";
    options.write_health_poll = absl::ZeroDuration();  // no watcher undoing WritesRefused
    ASSERT_NO_FATAL_FAILURE(StartServer(options));
    ASSERT_GT(server_->health_port(), 0);
    health_channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->health_port()),
                                          grpc::InsecureChannelCredentials());
  }
  grpc::health::v1::HealthCheckResponse::ServingStatus Status(const std::string& service) {
    auto health = grpc::health::v1::Health::NewStub(health_channel_);
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    const grpc::Status status = health->Check(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.status();
  }
  std::shared_ptr<grpc::Channel> health_channel_;
};

TEST_F(HealthListenerTest, ReportsTheMainServersStatusesAndServesNothingElse) {
  using Health = grpc::health::v1::HealthCheckResponse;
  EXPECT_EQ(Status(""), Health::SERVING);
  EXPECT_EQ(Status("outreach.v1.TaskService"), Health::SERVING);
  server_->WritesRefused(absl::UnavailableError("disk almost full: test"));
  EXPECT_EQ(Status("outreach.v1.TaskService"), Health::NOT_SERVING);
  EXPECT_EQ(Status("outreach.v1.EventLog"), Health::SERVING);
  server_->SetServing(false);
  EXPECT_EQ(Status(""), Health::NOT_SERVING);
  // The task service is not there: the listener serves health alone.
  auto tasks = v1::TaskService::NewStub(health_channel_);
  v1::Task task;
  EXPECT_EQ(tasks->CreateTask(Context().get(), ManualRequest("t1"), &task).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(store_->HeadPosition(), 0u);
}

}  // namespace
}  // namespace outreach::server::testing
