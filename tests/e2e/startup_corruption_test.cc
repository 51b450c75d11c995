// End-to-end corruption checks at start-up: a real database written by outreachd, stopped, then
// damaged with the RocksDB API directly (valid RocksDB writes, so only the store's own checks can
// notice). outreachd must refuse to serve, exit non-zero, and name the first bad position.
//
// Start-up verifies the log from the checkpoint that the previous start recorded (at its head)
// onward. The fixture therefore writes positions 1-3, restarts (checkpoint at 3) and writes 4-6:
// damage after the checkpoint, or to the checkpointed event itself, stops the start; damage
// before it is VerifyLog's to find, on a server that is running.
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "outreach/v1/event_log.grpc.pb.h"
#include "outreach/v1/task_service.grpc.pb.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "store/keys.h"
#include "tests/e2e/outreachd_process.h"
#include "tests/testing/raw_db.h"

namespace outreach {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The events' value layout (store/event_codec.h): format_version u8 | prev_hash[32] | hash[32] |
// body. Damage goes into the body, which the hash covers.
constexpr std::size_t kBodyOffset = 1 + 32 + 32;

// Opens `db` with the store's column families and lets `change` rewrite the "events" family.
// Fails the test if RocksDB does.
void EditEvents(const std::string& db,
                const std::function<void(rocksdb::DB*, rocksdb::ColumnFamilyHandle*)>& change) {
  testing::RawDbEdit edit_events = [&](rocksdb::DB* rocks,
                                       std::vector<rocksdb::ColumnFamilyHandle*>& cfs) {
    change(rocks, cfs[store::keys::kEvents]);
  };
  testing::EditRawDb(db, edit_events);
}

rocksdb::WriteOptions Synced() {
  rocksdb::WriteOptions options;
  options.sync = true;
  return options;
}

class StartupCorruptionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "outreach_corrupt_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    db_ = dir_ + "/db";
    const int port = e2e::FreePort();
    ASSERT_NE(port, 0);
    daemon_ = std::make_unique<e2e::Daemon>(db_, port, dir_ + "/outreachd.log");

    // Positions 1-3, then a restart (which checkpoints position 3), then positions 4-6.
    ASSERT_NO_FATAL_FAILURE(StartServing());
    ASSERT_NO_FATAL_FAILURE(WriteTask("before-checkpoint"));
    ASSERT_NO_FATAL_FAILURE(StopGracefully());
    ASSERT_NO_FATAL_FAILURE(StartServing());
    ASSERT_NO_FATAL_FAILURE(WriteTask("after-checkpoint"));
    ASSERT_NO_FATAL_FAILURE(StopGracefully());
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << "--- outreachd log ---\n" << daemon_->Log();
    read_only_.reset();
    daemon_.reset();
    std::filesystem::remove_all(dir_);
  }

  void StartServing() {
    daemon_->Start();
    ASSERT_TRUE(daemon_->WaitServing()) << daemon_->Log();
    channel_ = e2e::Connect(daemon_->address());
  }

  void StopGracefully() {
    channel_.reset();
    const int status = daemon_->Stop(SIGTERM);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }

  static std::unique_ptr<grpc::ClientContext> Context() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return context;
  }

  // Three events: the task, a contact, and a contact that closes it.
  void WriteTask(const std::string& task_id) {
    auto tasks = v1::TaskService::NewStub(channel_);
    v1::CreateTaskRequest create;
    create.set_task_id(task_id);
    create.set_patient_id("patient-1");
    create.set_kind(v1::MANUAL);
    create.set_title("Book annual wellness visit");
    v1::Task task;
    grpc::Status status = tasks->CreateTask(Context().get(), create, &task);
    ASSERT_TRUE(status.ok()) << status.error_message();
    v1::LogContactRequest contact;
    contact.set_task_id(task_id);
    contact.set_outcome(v1::LEFT_MESSAGE);
    contact.set_notes("Left a voicemail.");
    contact.set_close_task(true);
    status = tasks->LogContact(Context().get(), contact, &task);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(task.version(), 3);
  }

  // Starts outreachd on the damaged database and expects it to refuse: non-zero exit, and a log
  // that says "position <bad_position>:".
  void ExpectStartRefused(uint64_t bad_position) {
    const std::string before = daemon_->Log();
    daemon_->Start();
    const int status = daemon_->WaitExit(absl::Seconds(20));
    ASSERT_NE(status, -1) << "outreachd kept running on a corrupt database";
    ASSERT_TRUE(WIFEXITED(status)) << status;
    EXPECT_NE(WEXITSTATUS(status), 0);
    const std::string log = daemon_->Log().substr(before.size());
    EXPECT_THAT(log, HasSubstr(absl::StrCat("position ", bad_position, ":"))) << log;
    EXPECT_THAT(log, HasSubstr("DATA_LOSS")) << log;
    EXPECT_THAT(log, Not(HasSubstr("serving on"))) << log;
    EXPECT_THAT(log, HasSubstr("--read-only-investigation")) << log;
    EXPECT_THAT(log, HasSubstr(absl::StrCat("outreachctl verify --db ", db_))) << log;
  }

  // Starts a second outreachd, read-only for investigation, on the same database and log.
  void StartReadOnly() {
    const int port = e2e::FreePort();
    ASSERT_NE(port, 0);
    read_only_ = std::make_unique<e2e::Daemon>(
        db_, port, dir_ + "/outreachd.log", std::vector<std::string>{"--read-only-investigation"});
    read_only_->Start();
    // Daemon::WaitServing checks the overall health (""), which a read-only server reports.
    ASSERT_TRUE(read_only_->WaitServing()) << read_only_->Log();
    channel_ = e2e::Connect(read_only_->address());
  }

  // Flips one bit of the last byte of the event body at `position`.
  void FlipByteOfEvent(uint64_t position) {
    EditEvents(db_, [&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* events) {
      std::string value;
      rocksdb::Status s =
          db->Get(rocksdb::ReadOptions(), events, store::keys::EventKey(position), &value);
      ASSERT_TRUE(s.ok()) << s.ToString();
      ASSERT_GT(value.size(), kBodyOffset);
      value.back() = static_cast<char>(value.back() ^ 0x01);
      s = db->Put(Synced(), events, store::keys::EventKey(position), value);
      ASSERT_TRUE(s.ok()) << s.ToString();
    });
  }

  std::string dir_;
  std::string db_;
  std::unique_ptr<e2e::Daemon> daemon_;
  std::unique_ptr<e2e::Daemon> read_only_;  // --read-only-investigation
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(StartupCorruptionTest, FlippedByteAfterTheCheckpointStopsStartUpNamingItsPosition) {
  ASSERT_NO_FATAL_FAILURE(FlipByteOfEvent(5));
  ExpectStartRefused(5);
}

TEST_F(StartupCorruptionTest, DeletedEventAfterTheCheckpointStopsStartUpNamingItsPosition) {
  EditEvents(db_, [](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* events) {
    rocksdb::Status s = db->Delete(Synced(), events, store::keys::EventKey(5));
    ASSERT_TRUE(s.ok()) << s.ToString();
  });
  ExpectStartRefused(5);
}

TEST_F(StartupCorruptionTest, DeletedHeadEventStopsStartUpNamingItsPosition) {
  EditEvents(db_, [](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* events) {
    rocksdb::Status s = db->Delete(Synced(), events, store::keys::EventKey(6));
    ASSERT_TRUE(s.ok()) << s.ToString();
  });
  ExpectStartRefused(6);
}

TEST_F(StartupCorruptionTest, FlippedByteInTheCheckpointedEventStopsStartUpNamingItsPosition) {
  ASSERT_NO_FATAL_FAILURE(FlipByteOfEvent(3));
  ExpectStartRefused(3);
}

TEST_F(StartupCorruptionTest, FlippedByteBeforeTheCheckpointIsFoundByVerifyLog) {
  ASSERT_NO_FATAL_FAILURE(FlipByteOfEvent(2));
  // Start-up checks from the checkpoint on (fast), so the server starts...
  ASSERT_NO_FATAL_FAILURE(StartServing());
  // ...and the full check names the damaged position.
  v1::VerifyLogResponse verify;
  grpc::Status status = v1::EventLog::NewStub(channel_)->VerifyLog(
      Context().get(), v1::VerifyLogRequest(), &verify);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(verify.ok());
  EXPECT_EQ(verify.first_bad_position(), 2u);
  EXPECT_EQ(verify.events_checked(), 1u);
  ASSERT_NO_FATAL_FAILURE(StopGracefully());
}

TEST_F(StartupCorruptionTest, ReadOnlyInvestigationServesADamagedDatabaseAndRefusesWrites) {
  ASSERT_NO_FATAL_FAILURE(FlipByteOfEvent(5));
  ExpectStartRefused(5);
  const std::string before = daemon_->Log();
  ASSERT_NO_FATAL_FAILURE(StartReadOnly());
  const std::string log = read_only_->Log().substr(before.size());
  EXPECT_THAT(log, HasSubstr("WARNING: READ-ONLY INVESTIGATION MODE")) << log;
  auto tasks = v1::TaskService::NewStub(channel_);
  auto events = v1::EventLog::NewStub(channel_);

  // Reads: the projections...
  v1::GetTaskRequest get;
  get.set_task_id("before-checkpoint");
  v1::Task task;
  grpc::Status status = tasks->GetTask(Context().get(), get, &task);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(task.status(), v1::CLOSED);
  get.set_task_id("after-checkpoint");
  ASSERT_TRUE(tasks->GetTask(Context().get(), get, &task).ok());
  EXPECT_EQ(task.version(), 3);

  // ...the log up to the damage...
  v1::ReadEventsRequest read;
  read.set_max_count(4);
  auto context = Context();
  auto reader = events->ReadEvents(context.get(), read);
  std::vector<uint64_t> positions;
  v1::EventRecord record;
  while (reader->Read(&record)) positions.push_back(record.position());
  status = reader->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(positions, (std::vector<uint64_t>{1, 2, 3, 4}));

  // ...and VerifyLog, which names the damaged position.
  v1::VerifyLogResponse verify;
  status = events->VerifyLog(Context().get(), v1::VerifyLogRequest(), &verify);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(verify.ok());
  EXPECT_EQ(verify.first_bad_position(), 5u);
  EXPECT_EQ(verify.events_checked(), 4u);

  // The database takes no access record, so each read of patient data went to the server's log.
  const std::string access_log = read_only_->Log().substr(before.size());
  for (const char* task_id : {"before-checkpoint", "after-checkpoint"}) {
    EXPECT_THAT(access_log,
                HasSubstr(absl::StrCat("rpc=/outreach.v1.TaskService/GetTask tasks=", task_id, " ")))
        << access_log;
  }
  EXPECT_THAT(access_log, HasSubstr("rpc=/outreach.v1.EventLog/ReadEvents tasks="))
      << access_log;
  EXPECT_THAT(access_log, Not(HasSubstr("rpc=/outreach.v1.EventLog/VerifyLog"))) << access_log;

  // Writes are refused, and health says so for the writing service.
  v1::LogContactRequest contact;
  contact.set_task_id("after-checkpoint");
  contact.set_outcome(v1::NO_ANSWER);
  contact.set_follow_up_date("2099-01-01");
  status = tasks->LogContact(Context().get(), contact, &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(status.error_message(), "server started read-only for investigation");
  v1::CreateTaskRequest create;
  create.set_patient_id("patient-1");
  create.set_kind(v1::MANUAL);
  EXPECT_EQ(tasks->CreateTask(Context().get(), create, &task).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  grpc::health::v1::HealthCheckRequest health_request;
  health_request.set_service("outreach.v1.TaskService");
  grpc::health::v1::HealthCheckResponse health;
  ASSERT_TRUE(grpc::health::v1::Health::NewStub(channel_)
                  ->Check(Context().get(), health_request, &health)
                  .ok());
  EXPECT_EQ(health.status(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);

  // It stops cleanly, and wrote nothing: a normal start still refuses, naming the same position.
  // (Every client object lets go of the connection first: the drain waits for open connections.)
  reader.reset();
  context.reset();
  tasks.reset();
  events.reset();
  channel_.reset();
  const int exit_status = read_only_->Stop(SIGTERM);
  EXPECT_TRUE(WIFEXITED(exit_status) && WEXITSTATUS(exit_status) == 0) << exit_status;
  ExpectStartRefused(5);
}

}  // namespace
}  // namespace outreach
