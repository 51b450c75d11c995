// The server's explicit gRPC limits (message size, concurrent streams, keepalive enforcement) and
// its health for writes: once the store refuses writes after a failed sync, outreach.v1.TaskService
// reports NOT_SERVING while reads keep working.
#include <chrono>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "rocksdb/env.h"
#include "tests/server/raw_http2.h"
#include "tests/testing/server_fixture.h"
#include "tests/store/fault_fs.h"

namespace outreach::server::testing {
namespace {

using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;

HealthCheckResponse::ServingStatus Health(const std::shared_ptr<grpc::Channel>& channel,
                                          const std::string& service) {
  HealthCheckRequest request;
  request.set_service(service);
  HealthCheckResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::Status status =
      grpc::health::v1::Health::NewStub(channel)->Check(&context, request, &response);
  EXPECT_TRUE(status.ok()) << service << ": " << status.error_message();
  return response.status();
}

// A channel of its own (no shared subchannel), so that its connection's fate is its own.
std::shared_ptr<grpc::Channel> OwnChannel(const std::string& address,
                                          grpc::ChannelArguments args = {}) {
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

// --- Limits ------------------------------------------------------------------------------------

class LimitsTest : public ServerFixture {
 protected:
  // A second server over the same store, for options other than the default.
  std::unique_ptr<OutreachServer> StartAnotherServer(const ServerOptions& options) {
    absl::StatusOr<std::unique_ptr<OutreachServer>> server =
        OutreachServer::Start(options, store_.get());
    EXPECT_TRUE(server.ok()) << server.status();
    if (!server.ok()) return nullptr;
    (*server)->SetServing(true);
    return *std::move(server);
  }

  // A client that pings every 20ms whether or not it has calls: abusive by any server's rules.
  static grpc::ChannelArguments PingingClient() {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 1000);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    args.SetInt(GRPC_ARG_HTTP2_MIN_SENT_PING_INTERVAL_WITHOUT_DATA_MS, 0);
    return args;
  }

  // Connects `channel` and reports whether the connection left READY within `wait`.
  static bool DroppedWithin(const std::shared_ptr<grpc::Channel>& channel, absl::Duration wait) {
    EXPECT_TRUE(channel->WaitForConnected(std::chrono::system_clock::now() +
                                          std::chrono::seconds(5)));
    return channel->WaitForStateChange(GRPC_CHANNEL_READY, absl::ToChronoTime(absl::Now() + wait));
  }
};

TEST_F(LimitsTest, OversizedRequestIsResourceExhaustedAndAppendsNothing) {
  CreateManual("task-1");
  const uint64_t head = Head();
  v1::LogContactRequest log = LogContactRequest("task-1");
  log.set_notes(std::string(5 << 20, 'n'));  // 5 MiB > the 4 MiB limit
  v1::Task task;
  grpc::Status status = Log(log, &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  v1::CreateTaskRequest create = ManualRequest("task-2");
  create.set_title(std::string(5 << 20, 't'));
  status = Create(create, &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_EQ(Head(), head);
  EXPECT_EQ(Get("task-2", &task).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(LimitsTest, RequestJustUnderTheSizeLimitReachesValidation) {
  // 4 MiB minus framing is accepted by the transport, and refused by the notes rule instead.
  v1::LogContactRequest log = LogContactRequest("task-1");
  log.set_notes(std::string((4 << 20) - 1024, 'n'));
  v1::Task task;
  grpc::Status status = Log(log, &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("notes"));
}

TEST_F(LimitsTest, CallsBeyondMaxConcurrentStreamsWaitForAFreeStream) {
  ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.max_concurrent_streams = 1;
  std::unique_ptr<OutreachServer> server = StartAnotherServer(options);
  ASSERT_NE(server, nullptr);
  auto channel = OwnChannel(server->address());
  auto tasks = v1::TaskService::NewStub(channel);
  v1::GetTaskRequest get;
  get.set_task_id("no-such-task");
  v1::Task task;
  auto short_context = [] {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    return context;
  };
  ASSERT_EQ(tasks->GetTask(short_context().get(), get, &task).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // A health Watch holds the connection's only stream open...
  grpc::ClientContext watch_context;
  HealthCheckRequest watch_request;
  auto watch = grpc::health::v1::Health::NewStub(channel)->Watch(&watch_context, watch_request);
  HealthCheckResponse update;
  ASSERT_TRUE(watch->Read(&update));
  EXPECT_EQ(update.status(), HealthCheckResponse::SERVING);
  // ...so the next call on that connection waits for a stream, until its deadline.
  EXPECT_EQ(tasks->GetTask(short_context().get(), get, &task).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  watch_context.TryCancel();
  EXPECT_EQ(watch->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(tasks->GetTask(short_context().get(), get, &task).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(LimitsTest, ServerAdvertisesTheMetadataLimit) {
  absl::StatusOr<std::unique_ptr<outreach::testing::RawHttp2>> connection =
      outreach::testing::RawHttp2::Connect(server_->port());
  ASSERT_TRUE(connection.ok()) << connection.status();
  (*connection)->Pump(absl::Milliseconds(500));
  const auto& settings = (*connection)->peer_settings();
  ASSERT_EQ(settings.count(0x6), 1u) << "no SETTINGS_MAX_HEADER_LIST_SIZE";
  EXPECT_EQ(settings.at(0x6), static_cast<uint32_t>(ServerOptions().max_metadata_bytes));
  EXPECT_EQ(ServerOptions().max_metadata_bytes, 8 << 10);
}

TEST_F(LimitsTest, ConnectionThatNeverStartsHttp2IsClosedAfterTheHandshakeTimeout) {
  ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.handshake_timeout = absl::Milliseconds(300);
  std::unique_ptr<OutreachServer> server = StartAnotherServer(options);
  ASSERT_NE(server, nullptr);
  absl::StatusOr<std::unique_ptr<outreach::testing::RawHttp2>> silent =
      outreach::testing::RawHttp2::Connect(server->port(), /*send_preface=*/false);
  ASSERT_TRUE(silent.ok()) << silent.status();
  (*silent)->Pump(absl::Seconds(20));  // returns as soon as the server closes it
  EXPECT_TRUE((*silent)->closed());
}

TEST_F(LimitsTest, ClientThatPingsTooOftenIsDisconnected) {
  EXPECT_TRUE(DroppedWithin(OwnChannel(server_->address(), PingingClient()), absl::Seconds(5)));
}

TEST_F(LimitsTest, PingEnforcementComesFromTheServerOptions) {
  // The same client stays connected to a server that counts no strikes...
  ServerOptions lenient;
  lenient.listen_address = "127.0.0.1:0";
  lenient.max_ping_strikes = 0;  // gRPC: 0 = never close for pings
  std::unique_ptr<OutreachServer> server = StartAnotherServer(lenient);
  ASSERT_NE(server, nullptr);
  EXPECT_FALSE(DroppedWithin(OwnChannel(server->address(), PingingClient()), absl::Seconds(1)));
  // ...and a client that does not ping stays connected to the default server.
  EXPECT_FALSE(DroppedWithin(OwnChannel(server_->address()), absl::Seconds(1)));
}

// --- Health for writes -------------------------------------------------------------------------

// An in-process server over a store whose file system can be made to fail every sync.
class WriteHealthTest : public ServerFixture {
 protected:
  void SetUp() override {
    fs_ = std::make_shared<store::faults::FaultFs>();
    env_ = rocksdb::NewCompositeEnv(fs_);
    store::StoreOptions options = TestStoreOptions();
    options.env = env_.get();
    ASSERT_NO_FATAL_FAILURE(OpenStore(options));
  }

  void TearDown() override {
    ServerFixture::TearDown();  // the store before the file system it writes through
    env_.reset();
    fs_.reset();
  }

  void StartServer(absl::Duration write_health_poll) {
    ServerOptions options;
    options.write_health_poll = write_health_poll;
    ASSERT_NO_FATAL_FAILURE(ServerFixture::StartServer(options));
    Connect(OwnChannel(server_->address()));
  }

  grpc::Status Create(const std::string& task_id, v1::Task* task) {
    return ServerFixture::Create(ManualRequest(task_id), task);
  }

  // After a failed write or sync: VerifyLog keeps working, while the reads that return patient
  // data (GetTask, ListTasks, ReadEvents) are UNAVAILABLE, because their access records cannot
  // be made durable on this disk either (a read that cannot be audited is not served).
  void ExpectOnlyUnauditedReadsWork(const std::string& task_id, uint64_t events) {
    grpc::ClientContext get_context;
    v1::GetTaskRequest get;
    get.set_task_id(task_id);
    v1::Task task;
    grpc::Status status = tasks_->GetTask(&get_context, get, &task);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr("access log"));
    EXPECT_EQ(task.task_id(), "");

    grpc::ClientContext list_context;
    v1::ListTasksResponse list;
    status = tasks_->ListTasks(&list_context, v1::ListTasksRequest(), &list);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
    EXPECT_EQ(list.tasks_size(), 0);

    auto event_log = v1::EventLog::NewStub(channel_);
    grpc::ClientContext read_context;
    auto reader = event_log->ReadEvents(&read_context, v1::ReadEventsRequest());
    uint64_t read = 0;
    v1::EventRecord record;
    while (reader->Read(&record)) ++read;
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_EQ(read, 0u);

    grpc::ClientContext verify_context;
    v1::VerifyLogResponse verify;
    status = event_log->VerifyLog(&verify_context, v1::VerifyLogRequest(), &verify);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_TRUE(verify.ok()) << verify.problem();
    EXPECT_EQ(verify.head_position(), events);
  }

  std::shared_ptr<store::faults::FaultFs> fs_;
  std::unique_ptr<rocksdb::Env> env_;
};

TEST_F(WriteHealthTest, RefusedWriteMakesTaskServiceNotServingWhileVerifyLogContinues) {
  StartServer(/*write_health_poll=*/absl::ZeroDuration());  // the call path alone
  v1::Task task;
  ASSERT_TRUE(Create("task-1", &task).ok());
  EXPECT_EQ(Health(channel_, "outreach.v1.TaskService"), HealthCheckResponse::SERVING);

  fs_->FailSyncs(true);
  grpc::Status status = Create("task-2", &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  // Already flipped when the refused call finished: no wait, no poll.
  EXPECT_EQ(Health(channel_, "outreach.v1.TaskService"), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Health(channel_, "outreach.v1.EventLog"), HealthCheckResponse::SERVING);
  EXPECT_EQ(Health(channel_, ""), HealthCheckResponse::SERVING);
  ExpectOnlyUnauditedReadsWork("task-1", 1);

  // The refusal is latched: a healthy disk again changes nothing until a restart, and neither
  // does the owner reporting SERVING.
  fs_->FailSyncs(false);
  status = Create("task-3", &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  server_->SetServing(true);
  EXPECT_EQ(Health(channel_, "outreach.v1.TaskService"), HealthCheckResponse::NOT_SERVING);
  ExpectOnlyUnauditedReadsWork("task-1", 1);
}

TEST_F(WriteHealthTest, WriteRefusedOutsideAnyCallIsNoticedByTheWatcher) {
  StartServer(/*write_health_poll=*/absl::Milliseconds(20));
  v1::Task task;
  ASSERT_TRUE(Create("task-1", &task).ok());
  fs_->FailSyncs(true);
  // A write that is no TaskService call (as the expiry closer's are).
  domain::CreateTaskCommand command;
  command.task_id = "task-2";
  command.patient_id = "patient-1";
  command.kind = v1::MANUAL;
  command.title = "Written by the store's own caller";
  command.meta.actor = "test";
  absl::StatusOr<store::CommandResult> result = store_->Execute(command, "fingerprint");
  ASSERT_EQ(result.status().code(), absl::StatusCode::kUnavailable) << result.status();

  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (Health(channel_, "outreach.v1.TaskService") != HealthCheckResponse::NOT_SERVING &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(Health(channel_, "outreach.v1.TaskService"), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Health(channel_, "outreach.v1.EventLog"), HealthCheckResponse::SERVING);
  ExpectOnlyUnauditedReadsWork("task-1", 1);
}

TEST_F(WriteHealthTest, ServerStartedOnAStoreThatRefusesWritesNeverReportsTaskServiceServing) {
  fs_->FailSyncs(true);
  domain::CreateTaskCommand command;
  command.task_id = "task-1";
  command.patient_id = "patient-1";
  command.kind = v1::MANUAL;
  command.meta.actor = "test";
  ASSERT_EQ(store_->Execute(command, "fingerprint").status().code(),
            absl::StatusCode::kUnavailable);
  StartServer(/*write_health_poll=*/absl::ZeroDuration());
  EXPECT_EQ(Health(channel_, "outreach.v1.TaskService"), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Health(channel_, "outreach.v1.EventLog"), HealthCheckResponse::SERVING);
}

}  // namespace
}  // namespace outreach::server::testing
