// Security end to end in one process: a live OutreachServer with a principals file, called
// through the generated stubs with bearer tokens or client certificates. The role table
// (server/auth.cc MethodTable) is walked RPC x caller against the real handlers; x-on-behalf-of,
// the actor, the access log (records for every data-returning RPC, none for refused calls,
// ReadAccessLog), reflection behind authentication, TLS and mTLS, and the start-up rules of the
// security flags (server/startup_checks.h).
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "domain/validation.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1/reflection.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "openssl/sha.h"
#include "rocksdb/env.h"
#include "outreach/v1/admin_service.grpc.pb.h"
#include "outreach/v1/event_log.grpc.pb.h"
#include "outreach/v1/report_service.grpc.pb.h"
#include "outreach/v1/task_service.grpc.pb.h"
#include "server/auth.h"
#include "server/server.h"
#include "server/startup_checks.h"
#include "store/access_log.h"
#include "store/consumer_checkpoints.h"
#include "store/clock.h"
#include "store/event_store.h"
#include "store/privacy.h"
#include "tests/testing/server_fixture.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_ca.h"
#include "tests/store/fault_fs.h"

namespace outreach::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

using ::outreach::server::testing::kNextWeek;
using ::outreach::testing::PemPair;
using ::outreach::testing::TestCa;
using ::outreach::server::testing::ServerFixture;

std::string HashHex(absl::string_view token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

// One principal per role (id = role name + "-1", token = role name +
// "-token-0123456789abcdef"), and a certificate-only coordinator for mTLS.
std::string TokenOf(Role role) { return absl::StrCat(RoleName(role), "-token-0123456789abcdef"); }

std::string PrincipalsFile() {
  return absl::StrCat(
      "# test principals\n",                                                          //
      "coordinator-1 coordinator ", HashHex(TokenOf(Role::kCoordinator)), "\n",       //
      "service-1     service     ", HashHex(TokenOf(Role::kService)), "\n",           //
      "auditor-1     auditor     ", HashHex(TokenOf(Role::kAuditor)), "\n",           //
      "admin-1       admin       ", HashHex(TokenOf(Role::kAdmin)), "\n",             //
      "nurse-cert    coordinator - nurse.kim.example\n");
}

// Who calls, in the matrix.
struct Credential {
  std::string name;   // for messages
  std::string token;  // empty: no authorization metadata
  std::optional<Role> role;
};

std::vector<Credential> EveryCredential() {
  std::vector<Credential> out = {
      {"no credentials", "", std::nullopt},
      {"unknown token", "not-a-known-token-0123456789abcdef", std::nullopt}};
  for (Role role : kEveryRole) out.push_back({std::string(RoleName(role)), TokenOf(role), role});
  return out;
}

struct CallOptions {
  std::string token;
  std::string on_behalf_of;
  std::string x_actor;
};

// The server fixture with a principals file; each test starts the server it needs.
class SecurityTest : public ServerFixture {
 protected:
  void SetUp() override {
    principals_path_ = dir_ + "/principals";
    WritePrincipals(PrincipalsFile());
    absl::StatusOr<std::unique_ptr<PrincipalRegistry>> registry =
        PrincipalRegistry::Load(principals_path_);
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = *std::move(registry);
    // Encrypted (README "Privacy"): the role matrix calls ErasePatient, and every other check
    // here holds for an encrypted store as for a plain one.
    store::StoreOptions options = TestStoreOptions();
    options.master_key = std::string(store::kMasterKeySize, 'm');
    ASSERT_NO_FATAL_FAILURE(OpenStore(options));
  }

  void WritePrincipals(const std::string& text) {
    std::ofstream out(principals_path_, std::ios::trunc);
    out << text;
  }

  // Starts the server (with principals unless `development`) and plaintext stubs.
  void StartPlaintext(bool development = false) {
    ServerOptions options;
    options.principals = development ? nullptr : registry_.get();
    options.backup_dir = dir_ + "/backups";  // AdminService.CreateBackup in the matrix
    StartServer(options);
  }

  static std::unique_ptr<grpc::ClientContext> Context(const CallOptions& call) {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!call.token.empty()) context->AddMetadata("authorization", "Bearer " + call.token);
    if (!call.on_behalf_of.empty()) context->AddMetadata("x-on-behalf-of", call.on_behalf_of);
    if (!call.x_actor.empty()) context->AddMetadata("x-actor", call.x_actor);
    return context;
  }
  static CallOptions As(Role role) { return CallOptions{TokenOf(role), "", ""}; }

  static v1::CreateTaskRequest CreateRequest(const std::string& task_id) {
    v1::CreateTaskRequest request;
    request.set_task_id(task_id);
    request.set_patient_id("patient-1");
    request.set_kind(v1::MANUAL);
    request.set_title("Book annual wellness visit");
    return request;
  }
  static v1::LogContactRequest LogRequest(const std::string& task_id) {
    v1::LogContactRequest request;
    request.set_task_id(task_id);
    request.set_outcome(v1::NO_ANSWER);
    request.set_notes("No answer.");
    request.set_follow_up_date(kNextWeek);
    return request;
  }

  grpc::Status Create(const CallOptions& call, const std::string& task_id,
                      v1::Task* task = nullptr) {
    v1::Task ignored;
    return tasks_->CreateTask(Context(call).get(), CreateRequest(task_id),
                              task != nullptr ? task : &ignored);
  }
  grpc::Status Get(const CallOptions& call, const v1::GetTaskRequest& request,
                   v1::Task* task = nullptr) {
    v1::Task ignored;
    return tasks_->GetTask(Context(call).get(), request, task != nullptr ? task : &ignored);
  }
  grpc::Status Get(const CallOptions& call, const std::string& task_id) {
    v1::GetTaskRequest request;
    request.set_task_id(task_id);
    return Get(call, request);
  }

  // Every event (or the status), read as the given caller.
  grpc::Status ReadAll(const CallOptions& call, std::vector<v1::EventRecord>* out,
                       const v1::ReadEventsRequest& request = v1::ReadEventsRequest()) {
    auto context = Context(call);
    auto reader = events_->ReadEvents(context.get(), request);
    v1::EventRecord record;
    while (reader->Read(&record)) {
      if (out != nullptr) out->push_back(record);
    }
    return reader->Finish();
  }

  // Subscribes from position 1 and takes `want` events, then cancels. OK when it got them.
  grpc::Status SubscribeTake(const CallOptions& call, int want,
                             const v1::SubscribeEventsRequest& request) {
    auto context = Context(call);
    auto reader = events_->SubscribeEvents(context.get(), request);
    v1::EventRecord record;
    int got = 0;
    while (got < want && reader->Read(&record)) ++got;
    if (got == want) {
      context->TryCancel();
      reader->Finish();
      return grpc::Status::OK;
    }
    return reader->Finish();
  }

  grpc::Status ReadAccess(const CallOptions& call, const v1::ReadAccessLogRequest& request,
                          std::vector<v1::AccessRecord>* out) {
    auto context = Context(call);
    auto reader = events_->ReadAccessLog(context.get(), request);
    v1::AccessRecord record;
    while (reader->Read(&record)) {
      if (out != nullptr) out->push_back(record);
    }
    return reader->Finish();
  }

  // The task a call of `method` works on: "seed", or for the RPCs that close or take a task
  // (CancelTask, ClaimTask), a fresh one, created before the call is judged.
  std::string TargetOf(const std::string& method) {
    if (!absl::EndsWith(method, "/CancelTask") && !absl::EndsWith(method, "/ClaimTask")) {
      return "seed";
    }
    const std::string task_id = absl::StrCat("target-", ++created_);
    EXPECT_TRUE(Create(As(Role::kAdmin), task_id).ok());
    return task_id;
  }

  // Calls the issue 13 TaskService RPCs (AssignTask, ClaimTask, CancelTask) on `task_id`.
  grpc::Status CallWorkflowRpc(const std::string& name, const CallOptions& call,
                               const std::string& task_id) {
    v1::Task task;
    if (name == "AssignTask") {
      v1::AssignTaskRequest request;
      request.set_task_id(task_id);
      request.set_assignee(absl::StrCat("nurse-", ++created_));
      return tasks_->AssignTask(Context(call).get(), request, &task);
    }
    if (name == "ClaimTask") {
      v1::ClaimTaskRequest request;
      request.set_task_id(task_id);
      return tasks_->ClaimTask(Context(call).get(), request, &task);
    }
    v1::CancelTaskRequest request;
    request.set_task_id(task_id);
    request.set_reason(v1::CANCELLED);
    request.set_notes("Duplicate of another recall.");
    return tasks_->CancelTask(Context(call).get(), request, &task);
  }

  // ResolveTasks and PatientService: on a patient of their own (no task to close).
  grpc::Status CallPatientRpc(const std::string& name, const CallOptions& call) {
    if (name == "ResolveTasks") {
      v1::ResolveTasksRequest request;
      request.set_patient_id("p-matrix");
      request.set_reason(v1::APPOINTMENT_SCHEDULED);
      v1::ResolveTasksResponse response;
      return tasks_->ResolveTasks(Context(call).get(), request, &response);
    }
    v1::PatientOutreach outreach;
    if (name == "SetContactPreference") {
      v1::SetContactPreferenceRequest request;
      request.set_patient_id(absl::StrCat("p-matrix-", ++created_));
      request.set_do_not_contact(true);
      return patients_->SetContactPreference(Context(call).get(), request, &outreach);
    }
    if (name == "ErasePatient") {
      // The patient of the test's "erase-me" task (erasing again is a no-op, also OK).
      v1::ErasePatientRequest request;
      request.set_patient_id("p-erase");
      request.set_reason("matrix");
      v1::ErasePatientResponse response;
      return patients_->ErasePatient(Context(call).get(), request, &response);
    }
    v1::GetPatientOutreachRequest request;
    request.set_patient_id("p-matrix");
    return patients_->GetPatientOutreach(Context(call).get(), request, &outreach);
  }

  // The durable consumers' RPCs: Follow takes its first message, AckEvents acks position 1.
  grpc::Status CallConsumerRpc(const std::string& name, const CallOptions& call) {
    if (name == "Follow") {
      auto context = Context(call);
      auto reader = events_->Follow(context.get(), v1::FollowRequest());
      v1::FollowMessage message;
      if (reader->Read(&message)) {
        context->TryCancel();
        reader->Finish();
        return grpc::Status::OK;
      }
      return reader->Finish();
    }
    if (name == "AckEvents") {
      v1::AckEventsRequest request;
      request.set_consumer(absl::StrCat("consumer-", ++created_));
      request.set_position(1);
      v1::AckEventsResponse response;
      return events_->AckEvents(Context(call).get(), request, &response);
    }
    v1::ListConsumersResponse response;
    return events_->ListConsumers(Context(call).get(), v1::ListConsumersRequest(), &response);
  }

  // Calls `method` (a full name from the role table) with a valid request as `call`, on
  // `task_id` (TargetOf) where it takes one.
  grpc::Status CallRpc(const std::string& method, const CallOptions& call,
                       const std::string& task_id = "seed") {
    const std::string name = method.substr(method.rfind('/') + 1);
    if (name == "AssignTask" || name == "ClaimTask" || name == "CancelTask") {
      return CallWorkflowRpc(name, call, task_id);
    }
    if (name == "ResolveTasks" || absl::StartsWith(method, "/outreach.v1.PatientService/")) {
      return CallPatientRpc(name, call);
    }
    if (absl::StartsWith(method, "/outreach.v1.TaskService/")) {
      if (name == "CreateTask") return Create(call, absl::StrCat("matrix-", ++created_));
      if (name == "GetTask") return Get(call, "seed");
      if (name == "ListTasks") {
        v1::ListTasksResponse response;
        return tasks_->ListTasks(Context(call).get(), v1::ListTasksRequest(), &response);
      }
      if (name == "LogContact") {
        v1::Task task;
        return tasks_->LogContact(Context(call).get(), LogRequest("seed"), &task);
      }
    } else if (absl::StartsWith(method, "/outreach.v1.EventLog/")) {
      if (name == "ReadEvents") return ReadAll(call, nullptr);
      if (name == "SubscribeEvents") return SubscribeTake(call, 1, v1::SubscribeEventsRequest());
      if (name == "VerifyLog") {
        v1::VerifyLogResponse response;
        return events_->VerifyLog(Context(call).get(), v1::VerifyLogRequest(), &response);
      }
      if (name == "GetTaskHistory") {
        v1::GetTaskHistoryRequest request;
        request.set_task_id("seed");
        v1::GetTaskHistoryResponse response;
        return events_->GetTaskHistory(Context(call).get(), request, &response);
      }
      if (name == "ReadAccessLog") return ReadAccess(call, v1::ReadAccessLogRequest(), nullptr);
      if (name == "Follow" || name == "AckEvents" || name == "ListConsumers") {
        return CallConsumerRpc(name, call);
      }
    } else if (method == "/outreach.v1.AdminService/CreateBackup") {
      v1::CreateBackupResponse response;
      auto admin = v1::AdminService::NewStub(channel_);
      return admin->CreateBackup(Context(call).get(), v1::CreateBackupRequest(), &response);
    }
    if (method == "/outreach.v1.ReportService/GetOutreachStats") {
      v1::GetOutreachStatsRequest request;
      request.set_from_date("2025-03-01");
      request.set_to_date("2025-03-31");
      v1::GetOutreachStatsResponse response;
      return v1::ReportService::NewStub(channel_)->GetOutreachStats(Context(call).get(), request,
                                                                    &response);
    }
    ADD_FAILURE() << method << " is in the role table but this test cannot call it";
    return grpc::Status(grpc::StatusCode::INTERNAL, "untested method");
  }

  std::vector<store::StoredAccessRecord> AccessRecords() {
    absl::StatusOr<std::vector<store::StoredAccessRecord>> records =
        store_->access_log()->Read(store::AccessQuery());
    EXPECT_TRUE(records.ok()) << records.status();
    return records.ok() ? *records : std::vector<store::StoredAccessRecord>();
  }
  uint64_t AccessHead() { return store_->access_log()->HeadSequence(); }

  std::string principals_path_;
  std::unique_ptr<PrincipalRegistry> registry_;
  int created_ = 0;
};

// ---- The role table, enforced by the live server -----------------------------------------

TEST_F(SecurityTest, EveryRpcByEveryCallerGetsExactlyWhatTheRoleTableSays) {
  StartPlaintext();
  ASSERT_TRUE(Create(As(Role::kAdmin), "seed").ok());
  v1::CreateTaskRequest erase_me = CreateRequest("erase-me");
  erase_me.set_patient_id("p-erase");
  v1::Task created;
  ASSERT_TRUE(tasks_->CreateTask(Context(As(Role::kAdmin)).get(), erase_me, &created).ok());
  int checked = 0;
  for (const MethodRule& rule : MethodTable()) {
    const std::string method(rule.method);
    if (!absl::StartsWith(method, "/outreach.")) continue;
    for (const Credential& credential : EveryCredential()) {
      const std::string task_id = TargetOf(method);
      const uint64_t head = store_->HeadPosition();
      const uint64_t access_head = AccessHead();
      const std::size_t consumers = store_->consumers()->List()->size();
      const grpc::Status status =
          CallRpc(method, CallOptions{credential.token, "", ""}, task_id);
      grpc::StatusCode want = grpc::StatusCode::UNAUTHENTICATED;
      if (credential.role.has_value()) {
        want = Allowed(method, Roles(*credential.role)) ? grpc::StatusCode::OK
                                                        : grpc::StatusCode::PERMISSION_DENIED;
      }
      EXPECT_EQ(status.error_code(), want)
          << method << " by " << credential.name << ": " << status.error_message();
      if (want != grpc::StatusCode::OK) {
        EXPECT_EQ(store_->HeadPosition(), head)
            << method << " by " << credential.name << " appended an event";
        EXPECT_EQ(AccessHead(), access_head)
            << method << " by " << credential.name << " appended an access record";
        EXPECT_EQ(store_->consumers()->List()->size(), consumers)
            << method << " by " << credential.name << " stored a checkpoint";
      }
      ++checked;
    }
  }
  // 21 outreach RPCs (16, and Follow, AckEvents, ListConsumers, GetOutreachStats, ErasePatient)
  // x 6 callers.
  EXPECT_EQ(checked, 21 * 6);
}

TEST_F(SecurityTest, RepeatedCredentialsOrOnBehalfOfAreRefused) {
  StartPlaintext();
  ASSERT_TRUE(Create(As(Role::kService), "t1").ok());
  v1::GetTaskRequest request;
  request.set_task_id("t1");
  v1::Task task;
  auto two_tokens = Context(As(Role::kCoordinator));
  two_tokens->AddMetadata("authorization", "Bearer " + TokenOf(Role::kAdmin));
  EXPECT_EQ(tasks_->GetTask(two_tokens.get(), request, &task).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  auto malformed = Context(CallOptions{});
  malformed->AddMetadata("authorization", "Basic " + TokenOf(Role::kAdmin));
  EXPECT_EQ(tasks_->GetTask(malformed.get(), request, &task).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  CallOptions service = As(Role::kService);
  service.on_behalf_of = "dr.jones";
  auto two_people = Context(service);
  two_people->AddMetadata("x-on-behalf-of", "dr.smith");
  EXPECT_EQ(tasks_->GetTask(two_people.get(), request, &task).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(AccessRecords(), IsEmpty());
}

TEST_F(SecurityTest, HealthIsOpenWithoutCredentials) {
  StartPlaintext();
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status =
      health->Check(Context(CallOptions{}).get(), grpc::health::v1::HealthCheckRequest(),
                    &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

// One list_services exchange on a reflection stub as `call`: the names, and the stream's status.
template <typename Request, typename Response, typename Stub>
grpc::Status ListServices(Stub* stub, const CallOptions& call, std::set<std::string>* names) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!call.token.empty()) context->AddMetadata("authorization", "Bearer " + call.token);
  auto stream = stub->ServerReflectionInfo(context.get());
  Request request;
  request.set_list_services("");
  stream->Write(request);
  stream->WritesDone();
  Response response;
  while (stream->Read(&response)) {
    for (const auto& service : response.list_services_response().service()) {
      names->insert(service.name());
    }
  }
  return stream->Finish();
}

TEST_F(SecurityTest, ReflectionNeedsAnyAuthenticatedPrincipal) {
  StartPlaintext();
  auto v1alpha = grpc::reflection::v1alpha::ServerReflection::NewStub(channel_);
  auto v1 = grpc::reflection::v1::ServerReflection::NewStub(channel_);
  using AlphaRequest = grpc::reflection::v1alpha::ServerReflectionRequest;
  using AlphaResponse = grpc::reflection::v1alpha::ServerReflectionResponse;
  using V1Request = grpc::reflection::v1::ServerReflectionRequest;
  using V1Response = grpc::reflection::v1::ServerReflectionResponse;
  for (const Credential& credential : EveryCredential()) {
    std::set<std::string> alpha_names;
    std::set<std::string> v1_names;
    const grpc::Status alpha = ListServices<AlphaRequest, AlphaResponse>(
        v1alpha.get(), CallOptions{credential.token, "", ""}, &alpha_names);
    const grpc::Status v1_status = ListServices<V1Request, V1Response>(
        v1.get(), CallOptions{credential.token, "", ""}, &v1_names);
    const grpc::StatusCode want = credential.role.has_value() ? grpc::StatusCode::OK
                                                              : grpc::StatusCode::UNAUTHENTICATED;
    EXPECT_EQ(alpha.error_code(), want) << credential.name << ": " << alpha.error_message();
    EXPECT_EQ(v1_status.error_code(), want) << credential.name << ": " << v1_status.error_message();
    if (want == grpc::StatusCode::OK) {
      EXPECT_TRUE(alpha_names.count("outreach.v1.TaskService")) << credential.name;
      EXPECT_TRUE(v1_names.count("outreach.v1.EventLog")) << credential.name;
    } else {
      EXPECT_THAT(alpha_names, IsEmpty()) << credential.name;
    }
  }
}

TEST_F(SecurityTest, ReflectionDescribesASymbolWithItsDependencies) {
  StartPlaintext();
  auto stub = grpc::reflection::v1alpha::ServerReflection::NewStub(channel_);
  auto context = Context(As(Role::kCoordinator));
  auto stream = stub->ServerReflectionInfo(context.get());
  grpc::reflection::v1alpha::ServerReflectionRequest request;
  request.set_file_containing_symbol("outreach.v1.EventLog");
  ASSERT_TRUE(stream->Write(request));
  grpc::reflection::v1alpha::ServerReflectionResponse response;
  ASSERT_TRUE(stream->Read(&response));
  std::set<std::string> files;
  for (const std::string& bytes : response.file_descriptor_response().file_descriptor_proto()) {
    google::protobuf::FileDescriptorProto file;
    ASSERT_TRUE(file.ParseFromString(bytes));
    files.insert(file.name());
  }
  EXPECT_TRUE(files.count("outreach/v1/event_log.proto"));
  EXPECT_TRUE(files.count("outreach/v1/events.proto"));
  EXPECT_TRUE(files.count("google/protobuf/timestamp.proto"));
  request.set_file_containing_symbol("no.such.Symbol");
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.error_response().error_code(), grpc::StatusCode::NOT_FOUND);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

// ---- The actor and x-on-behalf-of ---------------------------------------------------------

TEST_F(SecurityTest, TheActorIsThePrincipalAndXActorIsRefused) {
  StartPlaintext();
  ASSERT_TRUE(Create(As(Role::kCoordinator), "t1").error_code() ==
              grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(Create(As(Role::kService), "t1").ok());
  v1::Task task;
  ASSERT_TRUE(tasks_->LogContact(Context(As(Role::kCoordinator)).get(), LogRequest("t1"), &task)
                  .ok());
  EXPECT_EQ(task.created_by(), "service-1");
  EXPECT_EQ(task.contacts(0).logged_by(), "coordinator-1");

  const uint64_t head = store_->HeadPosition();
  CallOptions spoof = As(Role::kCoordinator);
  spoof.x_actor = "admin-1";
  const grpc::Status status = tasks_->LogContact(Context(spoof).get(), LogRequest("t1"), &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("x-actor"));
  EXPECT_EQ(store_->HeadPosition(), head);

  std::vector<v1::EventRecord> events;
  ASSERT_TRUE(ReadAll(As(Role::kAuditor), &events).ok());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].actor(), "service-1");
  EXPECT_EQ(events[1].actor(), "coordinator-1");
}

TEST_F(SecurityTest, OnlyAServicePrincipalMayActOnBehalfOfSomeoneAndItIsRecorded) {
  StartPlaintext();
  CallOptions service = As(Role::kService);
  service.on_behalf_of = "dr.jones";
  ASSERT_TRUE(Create(service, "t1").ok());
  v1::Task task;
  ASSERT_TRUE(tasks_->LogContact(Context(service).get(), LogRequest("t1"), &task).ok());

  for (Role role : {Role::kCoordinator, Role::kAuditor, Role::kAdmin}) {
    CallOptions other = As(role);
    other.on_behalf_of = "dr.jones";
    const uint64_t head = store_->HeadPosition();
    const uint64_t access_head = AccessHead();
    EXPECT_EQ(tasks_->LogContact(Context(other).get(), LogRequest("t1"), &task).error_code(),
              grpc::StatusCode::PERMISSION_DENIED)
        << RoleName(role);
    EXPECT_EQ(Get(other, "t1").error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << RoleName(role);
    EXPECT_EQ(store_->HeadPosition(), head) << RoleName(role);
    EXPECT_EQ(AccessHead(), access_head) << RoleName(role);
  }
  const uint64_t head = store_->HeadPosition();
  for (const char* bad : {"not an id!", "system:expiry"}) {
    CallOptions malformed = As(Role::kService);
    malformed.on_behalf_of = bad;
    EXPECT_EQ(tasks_->LogContact(Context(malformed).get(), LogRequest("t1"), &task).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT)
        << bad;
  }
  EXPECT_EQ(store_->HeadPosition(), head);

  std::vector<v1::EventRecord> events;
  ASSERT_TRUE(ReadAll(As(Role::kAuditor), &events).ok());
  ASSERT_EQ(events.size(), 2u);
  for (const v1::EventRecord& event : events) {
    EXPECT_EQ(event.actor(), "service-1");
    EXPECT_EQ(event.on_behalf_of(), "dr.jones");
  }
  // A read on someone's behalf is recorded so.
  ASSERT_TRUE(Get(service, "t1").ok());
  std::vector<store::StoredAccessRecord> records = AccessRecords();
  ASSERT_FALSE(records.empty());
  EXPECT_EQ(records.back().record.principal(), "service-1");
  EXPECT_EQ(records.back().record.on_behalf_of(), "dr.jones");
}

TEST_F(SecurityTest, ARetryOnBehalfOfSomeoneElseIsAnotherRequest) {
  StartPlaintext();
  CallOptions service = As(Role::kService);
  service.on_behalf_of = "dr.jones";
  ASSERT_TRUE(Create(service, "t1").ok());
  v1::LogContactRequest request = LogRequest("t1");
  request.set_request_id("call-1");
  v1::Task task;
  ASSERT_TRUE(tasks_->LogContact(Context(service).get(), request, &task).ok());
  const uint64_t head = store_->HeadPosition();
  // The same request for the same person: the first result, nothing appended.
  ASSERT_TRUE(tasks_->LogContact(Context(service).get(), request, &task).ok());
  EXPECT_EQ(store_->HeadPosition(), head);
  // The same request id for another person: ALREADY_EXISTS.
  service.on_behalf_of = "dr.smith";
  EXPECT_EQ(tasks_->LogContact(Context(service).get(), request, &task).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(store_->HeadPosition(), head);
}

// ---- The access log -----------------------------------------------------------------------

TEST_F(SecurityTest, EveryDataReturningRpcAppendsOneAccessRecordBeforeAnswering) {
  StartPlaintext();
  ASSERT_TRUE(Create(As(Role::kService), "t1").ok());
  ASSERT_TRUE(Create(As(Role::kService), "t2").ok());
  ASSERT_THAT(AccessRecords(), IsEmpty());  // writes return the written task: not a read

  ASSERT_TRUE(Get(As(Role::kCoordinator), "t1").ok());
  v1::GetTaskRequest as_of;
  as_of.set_task_id("t2");
  as_of.set_as_of_version(1);
  ASSERT_TRUE(Get(As(Role::kAuditor), as_of).ok());
  v1::ListTasksRequest list;
  list.set_patient_id("patient-1");
  v1::ListTasksResponse page;
  ASSERT_TRUE(tasks_->ListTasks(Context(As(Role::kCoordinator)).get(), list, &page).ok());
  ASSERT_EQ(page.tasks_size(), 2);
  std::vector<v1::EventRecord> events;
  ASSERT_TRUE(ReadAll(As(Role::kAuditor), &events).ok());
  v1::SubscribeEventsRequest subscribe;
  subscribe.set_task_id("t2");
  ASSERT_TRUE(SubscribeTake(As(Role::kAdmin), 1, subscribe).ok());
  v1::GetTaskHistoryRequest history_request;
  history_request.set_task_id("t1");
  v1::GetTaskHistoryResponse history;
  ASSERT_TRUE(
      events_->GetTaskHistory(Context(As(Role::kAuditor)).get(), history_request, &history).ok());

  const std::vector<store::StoredAccessRecord> records = AccessRecords();
  ASSERT_EQ(records.size(), 6u);
  auto check = [&](std::size_t i, const std::string& principal, const std::string& rpc,
                   const std::vector<std::string>& task_ids, uint64_t count) {
    const storage::v1::AccessRecord& r = records[i].record;
    EXPECT_EQ(r.principal(), principal) << i;
    EXPECT_EQ(r.rpc(), rpc) << i;
    EXPECT_THAT(std::vector<std::string>(r.task_ids().begin(), r.task_ids().end()),
                ::testing::ElementsAreArray(task_ids))
        << i;
    EXPECT_EQ(r.count(), count) << i;
    EXPECT_THAT(r.peer(), HasSubstr("127.0.0.1")) << i;
    EXPECT_EQ(r.on_behalf_of(), "") << i;
  };
  check(0, "coordinator-1", "/outreach.v1.TaskService/GetTask", {"t1"}, 1);
  check(1, "auditor-1", "/outreach.v1.TaskService/GetTask", {"t2"}, 1);
  EXPECT_THAT(records[1].record.filter(), HasSubstr("as_of_version: 1"));
  check(2, "coordinator-1", "/outreach.v1.TaskService/ListTasks", {"t1", "t2"}, 2);
  // The store is encrypted: the query names the patient by pseudonym (README "Privacy").
  EXPECT_THAT(records[2].record.filter(),
              HasSubstr(absl::StrCat("patient_id: \"", *store_->Pseudonym("patient-1"), "\"")));
  EXPECT_THAT(records[2].record.filter(), Not(HasSubstr("patient-1")));
  check(3, "auditor-1", "/outreach.v1.EventLog/ReadEvents", {"t1", "t2"}, 2);
  EXPECT_THAT(records[3].record.filter(), HasSubstr("positions 1..2"));
  check(4, "admin-1", "/outreach.v1.EventLog/SubscribeEvents", {"t2"}, 1);
  EXPECT_THAT(records[4].record.filter(), HasSubstr("task_id: \"t2\""));
  check(5, "auditor-1", "/outreach.v1.EventLog/GetTaskHistory", {"t1"}, 1);

  // LogContact answers with the whole task, earlier contacts' notes included: a read too.
  v1::Task logged;
  ASSERT_TRUE(
      tasks_->LogContact(Context(As(Role::kCoordinator)).get(), LogRequest("t1"), &logged).ok());
  const std::vector<store::StoredAccessRecord> after_log = AccessRecords();
  ASSERT_EQ(after_log.size(), 7u);
  EXPECT_EQ(after_log[6].record.principal(), "coordinator-1");
  EXPECT_EQ(after_log[6].record.rpc(), "/outreach.v1.TaskService/LogContact");
  EXPECT_THAT(after_log[6].record.task_ids(), ElementsAre("t1"));
  EXPECT_TRUE(store_->access_log()->Verify().ok);
}

TEST_F(SecurityTest, RefusedOrFailedCallsAppendNoAccessRecord) {
  StartPlaintext();
  ASSERT_TRUE(Create(As(Role::kService), "t1").ok());
  EXPECT_EQ(Get(CallOptions{}, "t1").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Get(CallOptions{"wrong", "", ""}, "t1").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  v1::ListTasksResponse page;
  EXPECT_EQ(tasks_->ListTasks(Context(As(Role::kAuditor)).get(), v1::ListTasksRequest(), &page)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Get(As(Role::kCoordinator), "bad id!").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Get(As(Role::kCoordinator), "missing").error_code(), grpc::StatusCode::NOT_FOUND);
  std::vector<v1::EventRecord> events;
  EXPECT_EQ(ReadAll(As(Role::kCoordinator), &events).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  v1::GetTaskHistoryRequest history_request;
  history_request.set_task_id("missing");
  v1::GetTaskHistoryResponse history;
  EXPECT_EQ(events_->GetTaskHistory(Context(As(Role::kAuditor)).get(), history_request, &history)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::SubscribeEventsRequest subscribe;
  subscribe.set_task_id("bad id!");
  EXPECT_EQ(SubscribeTake(As(Role::kAuditor), 1, subscribe).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(AccessRecords(), IsEmpty());
}

TEST_F(SecurityTest, DevelopmentModeRecordsReadsAsTheClaimedActorOrAnonymous) {
  StartPlaintext(/*development=*/true);
  v1::Task task;
  ASSERT_TRUE(tasks_->CreateTask(Context(CallOptions{}).get(), CreateRequest("t1"), &task).ok());
  EXPECT_EQ(task.created_by(), "anonymous");
  ASSERT_TRUE(Get(CallOptions{}, "t1").ok());
  ASSERT_TRUE(Get(CallOptions{"", "", "nurse.kim"}, "t1").ok());
  const std::vector<store::StoredAccessRecord> records = AccessRecords();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].record.principal(), "anonymous");
  EXPECT_EQ(records[1].record.principal(), "nurse.kim");
}

TEST_F(SecurityTest, ReadAccessLogFiltersByTimeAndPrincipalForAuditorsAndAdminsOnly) {
  StartPlaintext();
  ASSERT_TRUE(Create(As(Role::kService), "t1").ok());
  const absl::Time t0 = clock_.Now();
  ASSERT_TRUE(Get(As(Role::kCoordinator), "t1").ok());  // at t0
  clock_.Advance(absl::Hours(1));
  ASSERT_TRUE(Get(As(Role::kService), "t1").ok());  // at t0 + 1h
  clock_.Advance(absl::Hours(1));
  ASSERT_TRUE(Get(As(Role::kCoordinator), "t1").ok());  // at t0 + 2h

  std::vector<v1::AccessRecord> all;
  ASSERT_TRUE(ReadAccess(As(Role::kAuditor), v1::ReadAccessLogRequest(), &all).ok());
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].sequence(), 1u);
  EXPECT_EQ(all[0].principal(), "coordinator-1");
  EXPECT_EQ(all[0].rpc(), "/outreach.v1.TaskService/GetTask");
  EXPECT_THAT(all[0].task_ids(), ElementsAre("t1"));
  EXPECT_EQ(all[0].hash().size(), 32u);
  EXPECT_EQ(domain::FromProto(all[0].time()), t0);

  v1::ReadAccessLogRequest by_principal;
  by_principal.set_principal("coordinator-1");
  std::vector<v1::AccessRecord> coordinator;
  ASSERT_TRUE(ReadAccess(As(Role::kAdmin), by_principal, &coordinator).ok());
  ASSERT_EQ(coordinator.size(), 2u);
  EXPECT_EQ(coordinator[0].sequence(), 1u);
  EXPECT_EQ(coordinator[1].sequence(), 3u);

  v1::ReadAccessLogRequest window;
  *window.mutable_from_time() = domain::ToProto(t0 + absl::Minutes(30));
  *window.mutable_to_time() = domain::ToProto(t0 + absl::Hours(2));  // exclusive
  std::vector<v1::AccessRecord> middle;
  ASSERT_TRUE(ReadAccess(As(Role::kAuditor), window, &middle).ok());
  ASSERT_EQ(middle.size(), 1u);
  EXPECT_EQ(middle[0].principal(), "service-1");

  v1::ReadAccessLogRequest limited;
  limited.set_max_count(2);
  std::vector<v1::AccessRecord> two;
  ASSERT_TRUE(ReadAccess(As(Role::kAuditor), limited, &two).ok());
  EXPECT_EQ(two.size(), 2u);

  v1::ReadAccessLogRequest backwards;
  *backwards.mutable_from_time() = domain::ToProto(t0 + absl::Hours(2));
  *backwards.mutable_to_time() = domain::ToProto(t0);
  EXPECT_EQ(ReadAccess(As(Role::kAuditor), backwards, nullptr).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  for (Role role : {Role::kCoordinator, Role::kService}) {
    EXPECT_EQ(ReadAccess(As(role), v1::ReadAccessLogRequest(), nullptr).error_code(),
              grpc::StatusCode::PERMISSION_DENIED)
        << RoleName(role);
  }
  EXPECT_EQ(ReadAccess(CallOptions{}, v1::ReadAccessLogRequest(), nullptr).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(SecurityTest, ReadAccessLogStreamsMoreRecordsThanOnePageWithoutGapOrRepeat) {
  StartPlaintext();
  ASSERT_TRUE(Create(As(Role::kService), "t1").ok());
  // More records than a page (256) at one instant: paging by time must not repeat or skip.
  constexpr int kReads = 600;
  for (int i = 0; i < kReads; ++i) {
    ASSERT_TRUE(Get(As(i % 2 == 0 ? Role::kCoordinator : Role::kAuditor), "t1").ok()) << i;
  }
  std::vector<v1::AccessRecord> all;
  ASSERT_TRUE(ReadAccess(As(Role::kAuditor), v1::ReadAccessLogRequest(), &all).ok());
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kReads));
  for (int i = 0; i < kReads; ++i) EXPECT_EQ(all[i].sequence(), static_cast<uint64_t>(i + 1));
  v1::ReadAccessLogRequest by_principal;
  by_principal.set_principal("auditor-1");
  std::vector<v1::AccessRecord> auditor;
  ASSERT_TRUE(ReadAccess(As(Role::kAuditor), by_principal, &auditor).ok());
  // The auditor's reads, then the first ReadAccessLog's own records: one per page of 256.
  ASSERT_EQ(auditor.size(), static_cast<std::size_t>(kReads / 2 + 3));
  for (int i = 0; i < kReads / 2; ++i) {
    EXPECT_EQ(auditor[i].sequence(), static_cast<uint64_t>(2 * i + 2));
    EXPECT_EQ(auditor[i].rpc(), "/outreach.v1.TaskService/GetTask");
  }
  for (int page = 0; page < 3; ++page) {
    const v1::AccessRecord& own = auditor[kReads / 2 + page];
    EXPECT_EQ(own.sequence(), static_cast<uint64_t>(kReads + 1 + page));
    EXPECT_EQ(own.rpc(), "/outreach.v1.EventLog/ReadAccessLog");
    EXPECT_EQ(own.count(), page < 2 ? 256u : static_cast<uint64_t>(kReads - 512));
  }
}

// A read whose access record cannot be made durable is not served: every data-returning RPC is
// UNAVAILABLE and sends nothing once the disk refuses syncs.
TEST_F(SecurityTest, AReadThatCannotBeRecordedFailsUnavailableAndReturnsNothing) {
  store_.reset();
  auto fs = std::make_shared<store::faults::FaultFs>();
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  store::StoreOptions options;
  options.clock = &clock_;
  options.env = env.get();
  absl::StatusOr<std::unique_ptr<store::EventStore>> store =
      store::EventStore::Open(dir_ + "/faulty-db", options);
  ASSERT_TRUE(store.ok()) << store.status();
  store_ = *std::move(store);
  StartPlaintext();
  ASSERT_TRUE(Create(As(Role::kService), "t1").ok());
  fs->FailSyncs(true);

  v1::Task task;
  v1::GetTaskRequest get;
  get.set_task_id("t1");
  grpc::Status status = Get(As(Role::kCoordinator), get, &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("access log"));
  EXPECT_EQ(task.task_id(), "");
  v1::ListTasksResponse page;
  EXPECT_EQ(tasks_->ListTasks(Context(As(Role::kCoordinator)).get(), v1::ListTasksRequest(),
                              &page)
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(page.tasks_size(), 0);
  v1::GetTaskHistoryRequest history_request;
  history_request.set_task_id("t1");
  v1::GetTaskHistoryResponse history;
  EXPECT_EQ(events_->GetTaskHistory(Context(As(Role::kAuditor)).get(), history_request, &history)
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(history.entries_size(), 0);
  std::vector<v1::EventRecord> events;
  EXPECT_EQ(ReadAll(As(Role::kAuditor), &events).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(events, IsEmpty());
  EXPECT_EQ(SubscribeTake(As(Role::kAuditor), 1, v1::SubscribeEventsRequest()).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(AccessHead(), 0u);

  tasks_.reset();
  events_.reset();
  channel_.reset();
  server_.reset();
  store_.reset();  // before the file system it writes through
}

// ---- TLS and mTLS -------------------------------------------------------------------------

class TlsServerTest : public SecurityTest {
 protected:
  void SetUp() override {
    SecurityTest::SetUp();
    absl::StatusOr<TestCa> ca = TestCa::Create("outreach test CA");
    absl::StatusOr<TestCa> other = TestCa::Create("someone else's CA");
    ASSERT_TRUE(ca.ok()) << ca.status();
    ASSERT_TRUE(other.ok()) << other.status();
    ca_.emplace(*std::move(ca));
    other_ca_.emplace(*std::move(other));
    absl::StatusOr<PemPair> server =
        ca_->Issue("localhost", {"DNS:localhost", "IP:127.0.0.1"}, /*server=*/true);
    ASSERT_TRUE(server.ok()) << server.status();
    server_pem_ = *std::move(server);
  }

  // Starts the server with principals over TLS (mTLS: client certificates of ca_ required).
  void StartTls(bool mtls) {
    ServerOptions options;
    options.principals = registry_.get();
    options.credentials = TlsCredentials(
        TlsPem{server_pem_.cert, server_pem_.key, mtls ? ca_->root().cert : std::string()});
    StartServer(options);
  }

  // Connects over TLS trusting `roots`, presenting `client` when not null.
  void ConnectTls(const std::string& roots, const PemPair* client) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = roots;
    if (client != nullptr) {
      options.pem_private_key = client->key;
      options.pem_cert_chain = client->cert;
    }
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    Connect(grpc::CreateCustomChannel(server_->address(), grpc::SslCredentials(options), args));
  }

  std::optional<TestCa> ca_;
  std::optional<TestCa> other_ca_;
  PemPair server_pem_;
};

TEST_F(TlsServerTest, TlsServesTokensAndRefusesAnUntrustedServer) {
  StartTls(/*mtls=*/false);
  ConnectTls(ca_->root().cert, nullptr);
  v1::Task task;
  ASSERT_TRUE(Create(As(Role::kService), "t1", &task).ok());
  EXPECT_EQ(task.created_by(), "service-1");
  EXPECT_EQ(Get(CallOptions{}, "t1").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // A client that trusts another CA fails the handshake.
  ConnectTls(other_ca_->root().cert, nullptr);
  EXPECT_EQ(Get(As(Role::kAdmin), "t1").error_code(), grpc::StatusCode::UNAVAILABLE);
  // A plaintext client cannot talk to a TLS server.
  Connect(grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials()));
  EXPECT_EQ(Get(As(Role::kAdmin), "t1").error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsServerTest, MutualTlsMapsTheCertificateSubjectToItsPrincipal) {
  StartTls(/*mtls=*/true);
  absl::StatusOr<PemPair> nurse =
      ca_->Issue("Nurse Kim", {"DNS:nurse.kim.example"}, /*server=*/false);
  ASSERT_TRUE(nurse.ok()) << nurse.status();
  ConnectTls(ca_->root().cert, &*nurse);
  // The certificate authenticates without a token: nurse-cert is a coordinator.
  EXPECT_EQ(Create(CallOptions{}, "t1").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(Create(As(Role::kService), "t1").ok());  // a token wins over the certificate
  v1::Task task;
  ASSERT_TRUE(tasks_->LogContact(Context(CallOptions{}).get(), LogRequest("t1"), &task).ok());
  EXPECT_EQ(task.contacts(0).logged_by(), "nurse-cert");
  std::vector<store::StoredAccessRecord> before = AccessRecords();
  ASSERT_TRUE(Get(CallOptions{}, "t1").ok());
  std::vector<store::StoredAccessRecord> after = AccessRecords();
  ASSERT_EQ(after.size(), before.size() + 1);
  EXPECT_EQ(after.back().record.principal(), "nurse-cert");

  // A certificate from the right CA whose subject names nobody: UNAUTHENTICATED.
  absl::StatusOr<PemPair> stranger =
      ca_->Issue("stranger", {"DNS:stranger.example"}, /*server=*/false);
  ASSERT_TRUE(stranger.ok()) << stranger.status();
  ConnectTls(ca_->root().cert, &*stranger);
  EXPECT_EQ(Get(CallOptions{}, "t1").error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

// Only the subject CN and DNS names map to principals: an email or URI SAN that spells a
// principal's subject does not authenticate.
TEST_F(TlsServerTest, OnlyCommonNamesAndDnsNamesMapToPrincipals) {
  StartTls(/*mtls=*/true);
  absl::StatusOr<PemPair> by_cn = ca_->Issue("nurse.kim.example", {}, /*server=*/false);
  ASSERT_TRUE(by_cn.ok()) << by_cn.status();
  ConnectTls(ca_->root().cert, &*by_cn);
  ASSERT_TRUE(Create(As(Role::kService), "t1").ok());
  EXPECT_TRUE(Get(CallOptions{}, "t1").ok());
  for (const std::string& san : {std::string("email:nurse.kim.example"),
                                 std::string("URI:nurse.kim.example")}) {
    absl::StatusOr<PemPair> other = ca_->Issue("someone else", {san}, /*server=*/false);
    ASSERT_TRUE(other.ok()) << other.status();
    ConnectTls(ca_->root().cert, &*other);
    EXPECT_EQ(Get(CallOptions{}, "t1").error_code(), grpc::StatusCode::UNAUTHENTICATED) << san;
  }
}

TEST_F(TlsServerTest, MutualTlsRefusesAClientWithoutACertificateOrFromAnotherCa) {
  StartTls(/*mtls=*/true);
  ConnectTls(ca_->root().cert, nullptr);
  EXPECT_EQ(Get(As(Role::kAdmin), "t1").error_code(), grpc::StatusCode::UNAVAILABLE);
  absl::StatusOr<PemPair> forged =
      other_ca_->Issue("Nurse Kim", {"DNS:nurse.kim.example"}, /*server=*/false);
  ASSERT_TRUE(forged.ok()) << forged.status();
  ConnectTls(ca_->root().cert, &*forged);
  EXPECT_EQ(Get(As(Role::kAdmin), "t1").error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(store_->HeadPosition(), 0u);
  EXPECT_THAT(AccessRecords(), IsEmpty());
}

// ---- Hardening: what an attacker with a token or a socket could still do --------------------

// Unknown fields a client adds to a request are neither copied into the access record (no text
// planted in the audit trail, no bulk) nor able to make a record unreadable.
TEST_F(SecurityTest, UnknownFieldsOfARequestNeverReachTheAccessRecord) {
  StartPlaintext();
  ASSERT_TRUE(Create(As(Role::kService), "t1").ok());
  const std::string planted = "principal: \"admin-1\" FORGED";
  v1::ListTasksRequest list;
  list.set_patient_id("patient-1");
  list.GetReflection()->MutableUnknownFields(&list)->AddLengthDelimited(900, planted);
  list.GetReflection()->MutableUnknownFields(&list)->AddLengthDelimited(
      901, std::string(2 << 20, 'x'));
  v1::ListTasksResponse page;
  ASSERT_TRUE(tasks_->ListTasks(Context(As(Role::kCoordinator)).get(), list, &page).ok());
  v1::GetTaskRequest as_of;
  as_of.set_task_id("t1");
  as_of.set_as_of_version(1);
  as_of.GetReflection()->MutableUnknownFields(&as_of)->AddLengthDelimited(902, planted);
  ASSERT_TRUE(Get(As(Role::kAuditor), as_of).ok());

  const std::vector<store::StoredAccessRecord> records = AccessRecords();
  ASSERT_EQ(records.size(), 2u);
  for (const store::StoredAccessRecord& stored : records) {
    EXPECT_THAT(stored.record.filter(), Not(HasSubstr("FORGED")));
    EXPECT_THAT(stored.record.filter(), Not(HasSubstr("xxxx")));
    EXPECT_THAT(stored.record.filter(), Not(HasSubstr("900")));
    EXPECT_LE(stored.record.ByteSizeLong(), 4096u);
  }
  EXPECT_EQ(records[0].record.filter(),
            absl::StrCat("patient_id: \"", *store_->Pseudonym("patient-1"), "\""));
  EXPECT_EQ(records[1].record.filter(), "task_id: \"t1\" as_of_version: 1");
  std::vector<v1::AccessRecord> read;
  ASSERT_TRUE(ReadAccess(As(Role::kAuditor), v1::ReadAccessLogRequest(), &read).ok());
  EXPECT_EQ(read.size(), 2u);
}

// Reading the audit trail leaves a trace in it: who read it, with what query, how many records.
TEST_F(SecurityTest, ReadAccessLogIsItselfRecorded) {
  StartPlaintext();
  ASSERT_TRUE(Create(As(Role::kService), "t1").ok());
  ASSERT_TRUE(Get(As(Role::kCoordinator), "t1").ok());
  v1::ReadAccessLogRequest by_principal;
  by_principal.set_principal("coordinator-1");
  std::vector<v1::AccessRecord> read;
  ASSERT_TRUE(ReadAccess(As(Role::kAuditor), by_principal, &read).ok());
  ASSERT_EQ(read.size(), 1u);  // the stream ends at the head it started from
  const std::vector<store::StoredAccessRecord> records = AccessRecords();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[1].record.principal(), "auditor-1");
  EXPECT_EQ(records[1].record.rpc(), "/outreach.v1.EventLog/ReadAccessLog");
  EXPECT_EQ(records[1].record.count(), 1u);
  EXPECT_THAT(records[1].record.filter(), HasSubstr("principal: \"coordinator-1\""));
  EXPECT_THAT(records[1].record.filter(), HasSubstr("sequences 1..1"));
}

// A SIGHUP that removes a principal, or takes away the role, ends its open streams at once
// (not at their next event), with the code a new call would get.
TEST_F(SecurityTest, AReloadEndsOpenStreamsOfRemovedOrDemotedPrincipals) {
  StartPlaintext();
  ASSERT_TRUE(Create(As(Role::kService), "t1").ok());
  auto removed_context = Context(As(Role::kAuditor));
  auto demoted_context = Context(As(Role::kAdmin));
  v1::SubscribeEventsRequest from_start;
  from_start.set_from_position(1);
  auto removed = events_->SubscribeEvents(removed_context.get(), from_start);
  auto demoted = events_->SubscribeEvents(demoted_context.get(), from_start);
  v1::EventRecord event;
  ASSERT_TRUE(removed->Read(&event));  // both caught up and idle
  ASSERT_TRUE(demoted->Read(&event));
  const uint64_t records_before = AccessHead();

  WritePrincipals(absl::StrCat(
      "service-1 service ", HashHex(TokenOf(Role::kService)), "\n",        //
      "admin-1   coordinator ", HashHex(TokenOf(Role::kAdmin)), "\n"));  // auditor-1 is gone
  ASSERT_TRUE(registry_->Reload().ok());
  server_->PrincipalsReloaded();
  EXPECT_FALSE(removed->Read(&event));
  EXPECT_EQ(removed->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_FALSE(demoted->Read(&event));
  EXPECT_EQ(demoted->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // Nothing more was read under the revoked principals.
  ASSERT_TRUE(Create(As(Role::kService), "t2").ok());
  EXPECT_EQ(AccessHead(), records_before);
}

// A token rotated in the principals file (same id, new hash) ends the streams opened with the
// old one.
TEST_F(SecurityTest, AReloadThatRotatesATokenEndsStreamsOpenedWithTheOldOne) {
  StartPlaintext();
  ASSERT_TRUE(Create(As(Role::kService), "t1").ok());
  auto context = Context(As(Role::kAuditor));
  auto stream = events_->SubscribeEvents(context.get(), v1::SubscribeEventsRequest());
  v1::EventRecord event;
  ASSERT_TRUE(stream->Read(&event));
  WritePrincipals(absl::StrReplaceAll(
      PrincipalsFile(),
      {{HashHex(TokenOf(Role::kAuditor)), HashHex("rotated-token-0123456789")}}));
  ASSERT_TRUE(registry_->Reload().ok());
  server_->PrincipalsReloaded();
  EXPECT_FALSE(stream->Read(&event));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

// Every refused call is counted by reason (and logged, rate-limited: refusal_log_test).
TEST_F(SecurityTest, RefusedCallsAreCountedByReason) {
  StartPlaintext();
  ASSERT_TRUE(Create(As(Role::kService), "t1").ok());
  for (int i = 0; i < 50; ++i) {
    CallOptions wrong{absl::StrCat("wrong-token-", i, "-0123456789abcdef"), "", ""};
    ASSERT_EQ(Get(wrong, "t1").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(Create(As(Role::kCoordinator), absl::StrCat("denied-", i)).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  const RefusalLog::Counts counts = server_->Refusals();
  EXPECT_EQ(counts.unauthenticated, 50u);
  EXPECT_EQ(counts.permission_denied, 10u);
  EXPECT_EQ(counts.invalid_metadata, 0u);
  EXPECT_EQ(store_->HeadPosition(), 1u);
}

// Credentials are judged before anything else a call carries: without a (valid) token, malformed
// metadata gets UNAUTHENTICATED, and says nothing about what else was wrong.
TEST_F(SecurityTest, CredentialsAreCheckedBeforeOtherMetadata) {
  StartPlaintext();
  ASSERT_TRUE(Create(As(Role::kService), "t1").ok());
  EXPECT_EQ(Get(CallOptions{"", "not a valid id!", ""}, "t1").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Get(CallOptions{"", "", "some-actor"}, "t1").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  auto repeated = Context(CallOptions{});
  repeated->AddMetadata("x-on-behalf-of", "a");
  repeated->AddMetadata("x-on-behalf-of", "b");
  v1::GetTaskRequest request;
  request.set_task_id("t1");
  v1::Task task;
  EXPECT_EQ(tasks_->GetTask(repeated.get(), request, &task).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // With a valid service token the same metadata is INVALID_ARGUMENT.
  EXPECT_EQ(Get(CallOptions{TokenOf(Role::kService), "not a valid id!", ""}, "t1").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

// Request ids belong to the principal that sent them: another principal's request with the same
// id is a new request, neither blocked nor told that the id was used.
TEST_F(SecurityTest, RequestIdsAreScopedByPrincipal) {
  StartPlaintext();
  auto create = [&](Role role, const std::string& task_id) {
    v1::CreateTaskRequest request = CreateRequest(task_id);
    request.set_request_id("shared-id");
    v1::Task task;
    return tasks_->CreateTask(Context(As(role)).get(), request, &task).error_code();
  };
  ASSERT_EQ(create(Role::kService, "t1"), grpc::StatusCode::OK);
  ASSERT_EQ(create(Role::kAdmin, "t2"), grpc::StatusCode::OK);
  EXPECT_EQ(store_->HeadPosition(), 2u);
  // Each principal's retry still replays its own first result and appends nothing.
  ASSERT_EQ(create(Role::kService, "t1"), grpc::StatusCode::OK);
  ASSERT_EQ(create(Role::kAdmin, "t2"), grpc::StatusCode::OK);
  EXPECT_EQ(store_->HeadPosition(), 2u);
  EXPECT_EQ(create(Role::kAdmin, "t3"), grpc::StatusCode::ALREADY_EXISTS);
}

// Reflection describes the API, not the storage schema that happens to be linked in.
TEST_F(SecurityTest, ReflectionDoesNotDescribeTheStorageSchema) {
  StartPlaintext();
  auto stub = grpc::reflection::v1::ServerReflection::NewStub(channel_);
  auto context = Context(As(Role::kCoordinator));
  auto stream = stub->ServerReflectionInfo(context.get());
  grpc::reflection::v1::ServerReflectionRequest request;
  grpc::reflection::v1::ServerReflectionResponse response;
  for (const std::string& symbol :
       {std::string("outreach.storage.v1.StoredEvent"), std::string("outreach.storage.v1")}) {
    request.set_file_containing_symbol(symbol);
    ASSERT_TRUE(stream->Write(request));
    ASSERT_TRUE(stream->Read(&response));
    EXPECT_EQ(response.error_response().error_code(), grpc::StatusCode::NOT_FOUND) << symbol;
  }
  request.set_file_by_filename("outreach/v1/storage.proto");
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.error_response().error_code(), grpc::StatusCode::NOT_FOUND);
  request.set_file_by_filename("outreach/v1/task_service.proto");
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_GT(response.file_descriptor_response().file_descriptor_proto_size(), 0);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

// ---- Start-up rules of the security flags --------------------------------------------------

TEST(StartupChecksTest, PlaintextOffLoopbackNeedsInsecureListenAndDevelopmentModeNeedsLoopback) {
  auto check = [](const std::string& address, bool tls, bool insecure, bool principals) {
    return CheckListenSecurity(ListenSecurity{address, tls, insecure, principals}).code();
  };
  // Loopback: anything goes, development mode included.
  EXPECT_EQ(check("127.0.0.1:50051", false, false, false), absl::StatusCode::kOk);
  EXPECT_EQ(check("[::1]:50051", false, false, true), absl::StatusCode::kOk);
  // Off loopback: principals, and TLS or an explicit --insecure-listen.
  EXPECT_EQ(check("0.0.0.0:50051", true, false, true), absl::StatusCode::kOk);
  EXPECT_EQ(check("0.0.0.0:50051", false, true, true), absl::StatusCode::kOk);
  EXPECT_EQ(check("0.0.0.0:50051", false, false, true), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(check("10.0.0.5:50051", true, true, false), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(check("0.0.0.0:50051", false, true, false), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(InsecureListenWarning(ListenSecurity{"0.0.0.0:1", false, true, true}));
  EXPECT_FALSE(InsecureListenWarning(ListenSecurity{"0.0.0.0:1", true, false, true}));
  EXPECT_FALSE(InsecureListenWarning(ListenSecurity{"127.0.0.1:1", false, false, false}));
}

TEST(StartupChecksTest, RetentionIsAWholeNumberAndAUnit) {
  EXPECT_EQ(*ParseRetention("6y"), absl::Hours(24 * 365 * 6));
  EXPECT_EQ(*ParseRetention("30d"), absl::Hours(24 * 30));
  EXPECT_EQ(*ParseRetention("12h"), absl::Hours(12));
  EXPECT_EQ(*ParseRetention("90m"), absl::Minutes(90));
  EXPECT_EQ(*ParseRetention("45s"), absl::Seconds(45));
  EXPECT_EQ(*ParseRetention("0"), absl::ZeroDuration());
  for (const char* bad : {"", "y", "6", "6w", "-1d", "0d", "1.5y", "99999999999999y", "6 y"}) {
    EXPECT_EQ(ParseRetention(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

// --db holds call notes and the access log: created private, and refused when others can read it.
TEST(StartupChecksTest, TheDatabaseDirectoryIsCreatedPrivateAndRefusedWhenOthersCanReadIt) {
  const outreach::testing::TempDir temp("outreach_db_dir_");
  const std::string root = temp.path();
  const mode_t old_umask = umask(022);
  const std::string fresh = root + "/a/b/db";
  EXPECT_TRUE(PrepareDbDirectory(fresh, false).ok());
  struct stat info {};
  ASSERT_EQ(stat(fresh.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0700u);

  const std::string shared = root + "/shared";
  ASSERT_EQ(mkdir(shared.c_str(), 0755), 0);
  const absl::Status refused = PrepareDbDirectory(shared, false);
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.message(), HasSubstr(shared));
  EXPECT_THAT(refused.message(), HasSubstr("0755"));
  EXPECT_THAT(refused.message(), HasSubstr("--insecure-db-permissions"));
  EXPECT_TRUE(PrepareDbDirectory(shared, true).ok());
  ASSERT_EQ(chmod(shared.c_str(), 0701), 0);  // even search permission for others is refused
  EXPECT_EQ(PrepareDbDirectory(shared, false).code(), absl::StatusCode::kFailedPrecondition);

  const std::string file = root + "/file";
  std::ofstream(file) << "x";
  EXPECT_EQ(PrepareDbDirectory(file, true).code(), absl::StatusCode::kFailedPrecondition);
  umask(old_umask);
}

TEST(StartupChecksTest, ATlsKeyMustBeItsCertificatesKey) {
  absl::StatusOr<TestCa> ca = TestCa::Create("startup CA");
  ASSERT_TRUE(ca.ok()) << ca.status();
  absl::StatusOr<PemPair> one = ca->Issue("one", {"DNS:localhost"}, /*server=*/true);
  absl::StatusOr<PemPair> two = ca->Issue("two", {"DNS:localhost"}, /*server=*/true);
  ASSERT_TRUE(one.ok() && two.ok());
  EXPECT_TRUE(CheckKeyMatchesCertificate(one->cert, one->key).ok());
  const absl::Status mismatch = CheckKeyMatchesCertificate(one->cert, two->key);
  EXPECT_EQ(mismatch.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(mismatch.message(), HasSubstr("--tls-key"));
  EXPECT_EQ(CheckKeyMatchesCertificate("not a certificate", one->key).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CheckKeyMatchesCertificate(one->cert, "not a key").code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace outreach::server
