// ServerFixture: runs an in-process outreach server on a free port, over an EventStore in a
// fresh temporary directory with a FakeClock, and calls it through the generated stubs. Used by
// every in-process server test (tests/server).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "domain/validation.h"
#include "outreach/v1/event_log.grpc.pb.h"
#include "outreach/v1/patient_service.grpc.pb.h"
#include "outreach/v1/task_service.grpc.pb.h"
#include "server/server.h"
#include "store/clock.h"
#include "store/event_store.h"
#include "tests/testing/temp_dir.h"

namespace outreach::server::testing {

// "Now" for every server test: 2025-03-10 15:00:00 UTC, so "today" is 2025-03-10.
inline absl::Time TestStart() {
  return absl::FromCivil(absl::CivilSecond(2025, 3, 10, 15, 0, 0), absl::UTCTimeZone());
}
inline constexpr char kToday[] = "2025-03-10";
inline constexpr char kNextWeek[] = "2025-03-17";

// Subclasses that need another store or server (principals, TLS, a failing file system) override
// SetUp with their own OpenStore / StartServer calls; TearDown closes whatever was opened.
class ServerFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(OpenStore(TestStoreOptions()));
    ASSERT_NO_FATAL_FAILURE(StartServer(ServerOptions()));
  }

  void TearDown() override {
    tasks_.reset();
    patients_.reset();
    events_.reset();
    channel_.reset();
    server_.reset();
    store_.reset();
  }

  // The store on the fake clock, "today" taken in UTC.
  store::StoreOptions TestStoreOptions() {
    store::StoreOptions options;
    options.clock = &clock_;
    options.time_zone = absl::UTCTimeZone();
    return options;
  }

  // Opens store_ in `dir_`/db (closing the one open).
  void OpenStore(const store::StoreOptions& options) {
    store_.reset();
    absl::StatusOr<std::unique_ptr<store::EventStore>> store =
        store::EventStore::Open(dir_ + "/db", options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  // Starts server_ over store_ on a free loopback port, serving, and connects the stubs to it
  // in plaintext.
  void StartServer(ServerOptions options) {
    options.listen_address = "127.0.0.1:0";
    absl::StatusOr<std::unique_ptr<OutreachServer>> server =
        OutreachServer::Start(options, store_.get());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    server_->SetServing(true);
    Connect(grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
  }

  // Points the stubs at `channel`.
  void Connect(std::shared_ptr<grpc::Channel> channel) {
    channel_ = std::move(channel);
    tasks_ = v1::TaskService::NewStub(channel_);
    events_ = v1::EventLog::NewStub(channel_);
    patients_ = v1::PatientService::NewStub(channel_);
  }

  // A context with a short deadline and, when `actor` is not empty, x-actor metadata.
  static std::unique_ptr<grpc::ClientContext> Context(const std::string& actor = "") {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!actor.empty()) context->AddMetadata("x-actor", actor);
    return context;
  }

  grpc::Status Create(const v1::CreateTaskRequest& request, v1::Task* task,
                      const std::string& actor = "") {
    return tasks_->CreateTask(Context(actor).get(), request, task);
  }
  grpc::Status Log(const v1::LogContactRequest& request, v1::Task* task,
                   const std::string& actor = "") {
    return tasks_->LogContact(Context(actor).get(), request, task);
  }
  grpc::Status Get(const std::string& task_id, v1::Task* task) {
    v1::GetTaskRequest request;
    request.set_task_id(task_id);
    return tasks_->GetTask(Context().get(), request, task);
  }
  grpc::Status List(const v1::ListTasksRequest& request, v1::ListTasksResponse* response) {
    return tasks_->ListTasks(Context().get(), request, response);
  }
  grpc::Status Assign(const v1::AssignTaskRequest& request, v1::Task* task,
                      const std::string& actor = "") {
    return tasks_->AssignTask(Context(actor).get(), request, task);
  }
  grpc::Status Claim(const v1::ClaimTaskRequest& request, v1::Task* task,
                     const std::string& actor = "") {
    return tasks_->ClaimTask(Context(actor).get(), request, task);
  }
  grpc::Status Cancel(const v1::CancelTaskRequest& request, v1::Task* task,
                      const std::string& actor = "") {
    return tasks_->CancelTask(Context(actor).get(), request, task);
  }

  // Stops the server and the store, and starts both again on the same directory.
  void Restart() {
    tasks_.reset();
    events_.reset();
    channel_.reset();
    server_.reset();
    ASSERT_NO_FATAL_FAILURE(OpenStore(TestStoreOptions()));
    ASSERT_NO_FATAL_FAILURE(StartServer(ServerOptions()));
  }

  // A valid MANUAL task request.
  static v1::CreateTaskRequest ManualRequest(const std::string& task_id) {
    v1::CreateTaskRequest request;
    request.set_task_id(task_id);
    request.set_patient_id("patient-1");
    request.set_kind(v1::MANUAL);
    request.set_title("Book annual wellness visit");
    return request;
  }
  // A valid AUTOMATIC task request expiring `ttl` after the fake now.
  v1::CreateTaskRequest AutomaticRequest(const std::string& task_id, absl::Duration ttl) {
    v1::CreateTaskRequest request = ManualRequest(task_id);
    request.set_kind(v1::AUTOMATIC);
    *request.mutable_expires_at() = domain::ToProto(clock_.Now() + ttl);
    return request;
  }
  // A valid "Log Contact" request: NO_ANSWER with a follow-up next week.
  static v1::LogContactRequest LogContactRequest(const std::string& task_id) {
    v1::LogContactRequest request;
    request.set_task_id(task_id);
    request.set_outcome(v1::NO_ANSWER);
    request.set_notes("No answer; will try again.");
    request.set_follow_up_date(kNextWeek);
    return request;
  }

  static v1::AssignTaskRequest AssignRequest(const std::string& task_id,
                                             const std::string& assignee) {
    v1::AssignTaskRequest request;
    request.set_task_id(task_id);
    request.set_assignee(assignee);
    return request;
  }
  static v1::ClaimTaskRequest ClaimRequest(const std::string& task_id) {
    v1::ClaimTaskRequest request;
    request.set_task_id(task_id);
    return request;
  }
  // A valid CancelTask request: CANCELLED, with notes.
  static v1::CancelTaskRequest CancelRequest(const std::string& task_id) {
    v1::CancelTaskRequest request;
    request.set_task_id(task_id);
    request.set_reason(v1::CANCELLED);
    request.set_notes("The patient moved away.");
    return request;
  }

  // Creates a manual task, failing the test if that fails.
  v1::Task CreateManual(const std::string& task_id) {
    v1::Task task;
    grpc::Status status = Create(ManualRequest(task_id), &task);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return task;
  }

  // Every event with position >= from, optionally of one task, at most max_count (0 = all).
  std::vector<v1::EventRecord> ReadEvents(uint64_t from = 0, const std::string& task_id = "",
                                          uint64_t max_count = 0, grpc::Status* status = nullptr) {
    v1::ReadEventsRequest request;
    request.set_from_position(from);
    request.set_task_id(task_id);
    request.set_max_count(max_count);
    auto context = Context();
    std::unique_ptr<grpc::ClientReader<v1::EventRecord>> reader =
        events_->ReadEvents(context.get(), request);
    std::vector<v1::EventRecord> out;
    v1::EventRecord record;
    while (reader->Read(&record)) out.push_back(record);
    grpc::Status finish = reader->Finish();
    if (status != nullptr) {
      *status = finish;
    } else {
      EXPECT_TRUE(finish.ok()) << finish.error_message();
    }
    return out;
  }

  v1::VerifyLogResponse Verify() {
    v1::VerifyLogResponse response;
    grpc::Status status = events_->VerifyLog(Context().get(), v1::VerifyLogRequest(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  // The head of the log as the server reports it, checked two ways (VerifyLog and ReadEvents).
  uint64_t Head() {
    v1::VerifyLogResponse verify = Verify();
    EXPECT_TRUE(verify.ok()) << verify.problem();
    EXPECT_EQ(ReadEvents().size(), verify.head_position());
    return verify.head_position();
  }

  store::FakeClock clock_{TestStart()};
  ::outreach::testing::TempDir temp_{"outreach_server_test_"};
  const std::string dir_ = temp_.path();
  std::unique_ptr<store::EventStore> store_;
  std::unique_ptr<OutreachServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::TaskService::Stub> tasks_;
  std::unique_ptr<v1::EventLog::Stub> events_;
  std::unique_ptr<v1::PatientService::Stub> patients_;
};

}  // namespace outreach::server::testing
