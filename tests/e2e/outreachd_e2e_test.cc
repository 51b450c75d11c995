// End-to-end: runs the real outreachd binary (fork/exec) on a temporary database and a free port,
// and drives it over gRPC like a client would: the article's workflow, crash safety (SIGKILL right
// after an acknowledged write), graceful SIGTERM, and expiry while running and while down.
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "outreach/v1/event_log.grpc.pb.h"
#include "outreach/v1/task_service.grpc.pb.h"
#include "tests/e2e/outreachd_process.h"

namespace outreach {
namespace {

using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  const absl::Duration since_epoch = t - absl::UnixEpoch();
  google::protobuf::Timestamp ts;
  ts.set_seconds(absl::ToInt64Seconds(since_epoch));
  ts.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(
      since_epoch - absl::Seconds(ts.seconds()))));
  return ts;
}

absl::Time FromTimestamp(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

using e2e::Connect;
using e2e::Daemon;
using e2e::FreePort;

class OutreachdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "outreach_e2e_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    const int port = FreePort();
    ASSERT_NE(port, 0);
    daemon_ = std::make_unique<Daemon>(dir_ + "/db", port, dir_ + "/outreachd.log");
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << "--- outreachd log ---\n" << daemon_->Log();
    daemon_.reset();
    std::filesystem::remove_all(dir_);
  }

  // (Re)starts the daemon and connects fresh stubs once it is SERVING.
  void StartServing() {
    daemon_->Start();
    ASSERT_TRUE(daemon_->WaitServing()) << daemon_->Log();
    auto channel = Connect(daemon_->address());
    tasks_ = v1::TaskService::NewStub(channel);
    events_ = v1::EventLog::NewStub(channel);
  }

  // Closes the client's connection, as a client that is done would. The server's drain waits
  // (up to its deadline) for open connections, and an idle synchronous client only notices the
  // server's GOAWAY on its next call.
  void Disconnect() {
    tasks_.reset();
    events_.reset();
  }

  // A graceful stop; expects exit status 0.
  void StopGracefully(int signal = SIGTERM) {
    Disconnect();
    const int status = daemon_->Stop(signal);
    ASSERT_TRUE(WIFEXITED(status)) << status;
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }

  static std::unique_ptr<grpc::ClientContext> Context(const std::string& actor = "") {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!actor.empty()) context->AddMetadata("x-actor", actor);
    return context;
  }

  v1::Task GetTask(const std::string& task_id) {
    v1::GetTaskRequest request;
    request.set_task_id(task_id);
    v1::Task task;
    grpc::Status status = tasks_->GetTask(Context().get(), request, &task);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return task;
  }

  std::vector<v1::EventRecord> ReadEvents(const std::string& task_id = "") {
    v1::ReadEventsRequest request;
    request.set_task_id(task_id);
    auto context = Context();
    auto reader = events_->ReadEvents(context.get(), request);
    std::vector<v1::EventRecord> out;
    v1::EventRecord record;
    while (reader->Read(&record)) out.push_back(record);
    grpc::Status status = reader->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    return out;
  }

  v1::VerifyLogResponse Verify() {
    v1::VerifyLogResponse response;
    grpc::Status status = events_->VerifyLog(Context().get(), v1::VerifyLogRequest(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  // Creates an AUTOMATIC task expiring `ttl` from now; returns its expires_at.
  absl::Time CreateAutomatic(const std::string& task_id, absl::Duration ttl) {
    v1::CreateTaskRequest request;
    request.set_task_id(task_id);
    request.set_patient_id("patient-7");
    request.set_kind(v1::AUTOMATIC);
    request.set_title("Closes itself");
    const absl::Time expires_at = absl::Now() + ttl;
    *request.mutable_expires_at() = ToTimestamp(expires_at);
    v1::Task task;
    grpc::Status status = tasks_->CreateTask(Context("care-gap-engine").get(), request, &task);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return FromTimestamp(task.expires_at());
  }

  // Checks the expiry close of `task_id`: reason EXPIRED by system:expiry at expires_at.
  v1::EventRecord ExpectClosedByExpiry(const std::string& task_id, absl::Time expires_at) {
    v1::Task task = GetTask(task_id);
    EXPECT_EQ(task.status(), v1::CLOSED);
    EXPECT_EQ(task.close_reason(), v1::EXPIRED);
    std::vector<v1::EventRecord> events = ReadEvents(task_id);
    EXPECT_EQ(events.size(), 2u);
    if (events.size() != 2) return v1::EventRecord();
    const v1::EventRecord& closed = events[1];
    EXPECT_TRUE(closed.has_task_closed());
    EXPECT_EQ(closed.task_closed().reason(), v1::EXPIRED);
    EXPECT_EQ(closed.actor(), "system:expiry");
    EXPECT_EQ(FromTimestamp(closed.occurred_at()), expires_at);
    return closed;
  }

  std::string dir_;
  std::unique_ptr<Daemon> daemon_;
  std::unique_ptr<v1::TaskService::Stub> tasks_;
  std::unique_ptr<v1::EventLog::Stub> events_;
};

TEST_F(OutreachdTest, WorkflowSurvivesSigkillRightAfterAnAcknowledgedWrite) {
  StartServing();
  v1::CreateTaskRequest create;
  create.set_task_id("visit-1");
  create.set_patient_id("patient-1");
  create.set_kind(v1::MANUAL);
  create.set_title("Book annual wellness visit");
  v1::Task task;
  ASSERT_TRUE(tasks_->CreateTask(Context("coordinator-1").get(), create, &task).ok());

  v1::LogContactRequest no_answer;
  no_answer.set_task_id("visit-1");
  no_answer.set_outcome(v1::NO_ANSWER);
  no_answer.set_notes("Rang out, no voicemail.");
  no_answer.set_follow_up_date(
      absl::FormatTime("%Y-%m-%d", absl::Now() + absl::Hours(24 * 7), absl::UTCTimeZone()));
  ASSERT_TRUE(tasks_->LogContact(Context("coordinator-1").get(), no_answer, &task).ok());
  EXPECT_EQ(task.status(), v1::IN_PROGRESS);

  v1::LogContactRequest scheduled;
  scheduled.set_task_id("visit-1");
  scheduled.set_outcome(v1::SCHEDULED);
  scheduled.set_notes("Booked.");
  scheduled.set_close_task(true);
  scheduled.set_request_id("close-visit-1");
  grpc::Status status = tasks_->LogContact(Context("coordinator-1").get(), scheduled, &task);
  // The acknowledged write, then an immediate crash.
  const int killed = daemon_->Stop(SIGKILL);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(WIFSIGNALED(killed));
  EXPECT_EQ(task.status(), v1::CLOSED);

  StartServing();
  v1::Task after = GetTask("visit-1");
  EXPECT_EQ(after.status(), v1::CLOSED);
  EXPECT_EQ(after.close_reason(), v1::CONTACT_OUTCOME);
  EXPECT_EQ(after.closing_outcome(), v1::SCHEDULED);
  EXPECT_EQ(after.version(), 4);
  EXPECT_EQ(after.SerializeAsString(), task.SerializeAsString());
  std::vector<v1::EventRecord> events = ReadEvents("visit-1");
  ASSERT_EQ(events.size(), 4u);
  EXPECT_TRUE(events[3].has_task_closed());
  EXPECT_EQ(events[3].actor(), "coordinator-1");
  v1::VerifyLogResponse verify = Verify();
  EXPECT_TRUE(verify.ok()) << verify.problem();
  EXPECT_EQ(verify.head_position(), 4u);
  EXPECT_EQ(verify.head_hash(), events[3].hash());

  // The retried close, after the crash, returns the first result and appends nothing.
  v1::Task retried;
  ASSERT_TRUE(tasks_->LogContact(Context("coordinator-1").get(), scheduled, &retried).ok());
  EXPECT_EQ(retried.version(), 4);
  EXPECT_EQ(Verify().head_position(), 4u);

  StopGracefully(SIGTERM);
}

TEST_F(OutreachdTest, SigtermAndSigintExitZero) {
  StartServing();
  StopGracefully(SIGTERM);
  StartServing();
  StopGracefully(SIGINT);
  EXPECT_THAT(daemon_->Log(), HasSubstr("serving on"));
}

TEST_F(OutreachdTest, RunningServerClosesAnAutomaticTaskWithinASecondOfExpiry) {
  StartServing();
  const absl::Time expires_at = CreateAutomatic("auto-1", absl::Milliseconds(1500));
  EXPECT_EQ(GetTask("auto-1").status(), v1::OPEN);
  while (absl::Now() < expires_at + absl::Seconds(3) &&
         GetTask("auto-1").status() != v1::CLOSED) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  const v1::EventRecord closed = ExpectClosedByExpiry("auto-1", expires_at);
  EXPECT_LE(FromTimestamp(closed.recorded_at()), expires_at + absl::Seconds(1));
  EXPECT_GE(FromTimestamp(closed.recorded_at()), expires_at);
  EXPECT_TRUE(Verify().ok());
}

TEST_F(OutreachdTest, TaskThatExpiredWhileDownIsClosedAtStartUpBeforeServing) {
  StartServing();
  const absl::Time expires_at = CreateAutomatic("auto-down", absl::Milliseconds(1500));
  StopGracefully(SIGTERM);
  ASSERT_LT(absl::Now(), expires_at) << "stopping took too long to test expiry while down";
  absl::SleepFor(expires_at - absl::Now() + absl::Milliseconds(300));

  StartServing();
  // Closed before SERVING was reported: the very first read sees it.
  ExpectClosedByExpiry("auto-down", expires_at);
  EXPECT_THAT(daemon_->Log(), HasSubstr("1 task(s) expired while down"));
  EXPECT_TRUE(Verify().ok());
}

TEST_F(OutreachdTest, UnknownTimeZoneIsAClearStartUpError) {
  const int port = FreePort();
  Daemon bad(dir_ + "/db-tz", port, dir_ + "/outreachd-tz.log", {"--time-zone=Mars/Olympus"});
  bad.Start();
  const int status = bad.WaitExit(absl::Seconds(10));
  ASSERT_NE(status, -1) << "outreachd kept running with a bad time zone";
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_NE(WEXITSTATUS(status), 0);
  EXPECT_THAT(bad.Log(), HasSubstr("Mars/Olympus"));
  EXPECT_THAT(bad.Log(), HasSubstr("time-zone"));
}

TEST_F(OutreachdTest, TimeZoneDecidesToday) {
  // Kiritimati is UTC+14, so its "today" is usually not UTC's: yesterday there is refused (and
  // the message names the zone), today there is accepted.
  daemon_ = std::make_unique<Daemon>(dir_ + "/db-kiritimati", FreePort(),
                                     dir_ + "/outreachd.log",
                                     std::vector<std::string>{"--time-zone=Pacific/Kiritimati"});
  StartServing();
  absl::TimeZone zone;
  ASSERT_TRUE(absl::LoadTimeZone("Pacific/Kiritimati", &zone));
  const absl::CivilDay today = absl::ToCivilDay(absl::Now(), zone);
  v1::CreateTaskRequest create;
  create.set_patient_id("patient-1");
  create.set_kind(v1::MANUAL);
  create.set_follow_up_date(absl::FormatCivilTime(today - 1));
  v1::Task task;
  grpc::Status status = tasks_->CreateTask(Context().get(), create, &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("Pacific/Kiritimati"));
  create.set_follow_up_date(absl::FormatCivilTime(today));
  status = tasks_->CreateTask(Context().get(), create, &task);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

// --practice-time-zones: a file that does not parse stops the start (exit 2) naming FILE:LINE,
// before the database is opened; so does one that cannot be read.
TEST_F(OutreachdTest, ABadPracticeTimeZonesFileStopsTheStartNamingFileAndLine) {
  const std::string zones = dir_ + "/zones.txt";
  {
    std::ofstream out(zones);
    out << "# practice  zone\n"
           "north America/Chicago\n"
           "south Mars/Olympus\n";
  }
  Daemon bad(dir_ + "/db-zones", FreePort(), dir_ + "/outreachd-zones.log",
             {"--practice-time-zones=" + zones});
  bad.Start();
  int status = bad.WaitExit(absl::Seconds(10));
  ASSERT_NE(status, -1) << "outreachd kept running with a bad zones file";
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_THAT(bad.Log(), HasSubstr("--practice-time-zones: " + zones + ":3: unknown IANA time "
                                   "zone \"Mars/Olympus\" for practice south"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/db-zones"));

  Daemon missing(dir_ + "/db-zones", FreePort(), dir_ + "/outreachd-zones-missing.log",
                 {"--practice-time-zones=" + dir_ + "/no-such-file"});
  missing.Start();
  status = missing.WaitExit(absl::Seconds(10));
  ASSERT_NE(status, -1);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_THAT(missing.Log(), HasSubstr(dir_ + "/no-such-file"));
}

// "Today" per practice from the file, and SIGHUP re-reads it: Kiritimati (UTC+14) is always a
// day or two ahead of Pago Pago (UTC-11), so Pago Pago's today is always Kiritimati's past.
TEST_F(OutreachdTest, PracticeTimeZonesDecideTodayPerPracticeAndSighupRereadsThem) {
  const std::string zones = dir_ + "/zones.txt";
  auto write = [&](const std::string& text) {
    std::ofstream out(zones, std::ios::trunc);
    out << text;
  };
  write("east Pacific/Kiritimati\nwest Pacific/Pago_Pago  # the far side\n");
  daemon_ = std::make_unique<Daemon>(dir_ + "/db-practices", FreePort(), dir_ + "/outreachd.log",
                                     std::vector<std::string>{"--practice-time-zones=" + zones});
  StartServing();
  EXPECT_THAT(daemon_->Log(), HasSubstr("2 practice(s)"));
  absl::TimeZone pago;
  ASSERT_TRUE(absl::LoadTimeZone("Pacific/Pago_Pago", &pago));
  const std::string date = absl::FormatCivilTime(absl::ToCivilDay(absl::Now(), pago));
  auto create = [&](const std::string& id, const std::string& practice) {
    v1::CreateTaskRequest request;
    request.set_task_id(id);
    request.set_patient_id("patient-1");
    request.set_kind(v1::MANUAL);
    request.set_practice_id(practice);
    request.set_follow_up_date(date);
    v1::Task task;
    return tasks_->CreateTask(Context().get(), request, &task);
  };
  grpc::Status east = create("e1", "east");
  EXPECT_EQ(east.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(east.error_message(), HasSubstr("Pacific/Kiritimati"));
  EXPECT_TRUE(create("w1", "west").ok());

  write("east Pacific/Pago_Pago\n");
  daemon_->Signal(SIGHUP);
  ASSERT_TRUE(daemon_->WaitForLog("practice time zones reloaded from " + zones));
  EXPECT_TRUE(create("e2", "east").ok());

  // A bad file keeps the zones in use.
  write("east Pacific/Kiritimati\nwest\n");
  daemon_->Signal(SIGHUP);
  ASSERT_TRUE(daemon_->WaitForLog("practice time zones NOT reloaded"));
  EXPECT_THAT(daemon_->Log(), HasSubstr(zones + ":2: want: practice_id IANA-zone"));
  EXPECT_TRUE(create("e3", "east").ok());
  StopGracefully();
}

}  // namespace
}  // namespace outreach
