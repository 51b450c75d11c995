// ErasePatient across SIGKILLs of the real outreachd (issue 17): an erasure is one synced batch
// (the closes, PatientErased and the key's deletion), so after a kill -9 at any moment each
// patient is either wholly erased or not at all, and the log still verifies.
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "outreach/v1/event_log.grpc.pb.h"
#include "outreach/v1/patient_service.grpc.pb.h"
#include "outreach/v1/task_service.grpc.pb.h"
#include "tests/e2e/outreachd_process.h"

namespace outreach {
namespace {

constexpr int kPatients = 24;
constexpr int kCycles = 3;

std::unique_ptr<grpc::ClientContext> Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  context->AddMetadata("x-actor", "erase-test");
  return context;
}

std::string Patient(int i) { return absl::StrCat("mrn-", i); }
std::string Title(int i) { return absl::StrCat("title of patient ", i); }

class EraseKillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "outreach_erase_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    const std::string key = dir_ + "/master.key";
    {
      std::ofstream out(key, std::ios::binary);
      std::mt19937 rng(7);
      for (int i = 0; i < 32; ++i) out.put(static_cast<char>(rng()));
    }
    ASSERT_EQ(chmod(key.c_str(), 0600), 0);
    daemon_ = std::make_unique<e2e::Daemon>(
        dir_ + "/db", e2e::FreePort(), dir_ + "/log",
        std::vector<std::string>{"--master-key-file=" + key,
                                 "--erasure-list=" + dir_ + "/erasures"});
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << "--- outreachd log ---\n" << daemon_->Log();
    daemon_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Each patient's two tasks, as GetTask shows them.
  std::vector<v1::Task> TasksOf(int i) {
    auto stub = v1::TaskService::NewStub(e2e::Connect(daemon_->address()));
    std::vector<v1::Task> tasks;
    for (const char* suffix : {"-a", "-b"}) {
      v1::GetTaskRequest request;
      request.set_task_id(absl::StrCat("t", i, suffix));
      v1::Task task;
      EXPECT_TRUE(stub->GetTask(Context().get(), request, &task).ok());
      tasks.push_back(task);
    }
    return tasks;
  }

  std::string dir_;
  std::unique_ptr<e2e::Daemon> daemon_;
};

TEST_F(EraseKillTest, AfterSigkillDuringErasePatientEachPatientIsWhollyErasedOrNotAtAll) {
  daemon_->Start();
  ASSERT_TRUE(daemon_->WaitServing());
  {
    auto tasks = v1::TaskService::NewStub(e2e::Connect(daemon_->address()));
    for (int i = 0; i < kPatients; ++i) {
      for (const char* suffix : {"-a", "-b"}) {
        v1::CreateTaskRequest create;
        create.set_task_id(absl::StrCat("t", i, suffix));
        create.set_patient_id(Patient(i));
        create.set_kind(v1::MANUAL);
        create.set_title(Title(i));
        v1::Task task;
        ASSERT_TRUE(tasks->CreateTask(Context().get(), create, &task).ok());
      }
      v1::LogContactRequest log;
      log.set_task_id(absl::StrCat("t", i, "-a"));
      log.set_outcome(v1::LEFT_MESSAGE);
      log.set_notes(absl::StrCat("notes of patient ", i));
      log.set_follow_up_date(absl::FormatCivilTime(
          absl::ToCivilDay(absl::Now() + absl::Hours(24 * 30), absl::UTCTimeZone())));
      v1::Task task;
      ASSERT_TRUE(tasks->LogContact(Context().get(), log, &task).ok());
    }
  }
  std::mt19937 rng(std::random_device{}());
  const int per_cycle = kPatients / kCycles;
  int wholly = 0;
  int untouched = 0;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    std::atomic<bool> stop{false};
    std::thread eraser([&] {
      auto patients = v1::PatientService::NewStub(e2e::Connect(daemon_->address()));
      for (int i = cycle * per_cycle; i < (cycle + 1) * per_cycle && !stop.load(); ++i) {
        v1::ErasePatientRequest request;
        request.set_patient_id(Patient(i));
        request.set_reason("retention ended");
        v1::ErasePatientResponse response;
        patients->ErasePatient(Context().get(), request, &response);  // may die mid-call
      }
    });
    absl::SleepFor(absl::Milliseconds(std::uniform_int_distribution<int>(0, 40)(rng)));
    daemon_->Stop(SIGKILL);
    stop.store(true);
    eraser.join();
    daemon_->Start();
    ASSERT_TRUE(daemon_->WaitServing());
    for (int i = cycle * per_cycle; i < (cycle + 1) * per_cycle; ++i) {
      const std::vector<v1::Task> tasks = TasksOf(i);
      ASSERT_EQ(tasks.size(), 2u);
      const bool erased = tasks[0].personal_data_erased();
      for (const v1::Task& task : tasks) {
        EXPECT_EQ(task.personal_data_erased(), erased) << task.task_id() << ": half erased";
        if (erased) {
          EXPECT_EQ(task.title(), "[erased]");
          EXPECT_EQ(task.patient_id(), "[erased]");
          EXPECT_EQ(task.close_reason(), v1::PATIENT_DATA_ERASED) << task.task_id();
        } else {
          EXPECT_EQ(task.title(), Title(i));
          EXPECT_EQ(task.patient_id(), Patient(i));
          EXPECT_NE(task.status(), v1::CLOSED) << task.task_id();
        }
      }
      if (erased) {
        EXPECT_EQ(tasks[0].contacts(0).notes(), "[erased]");
        ++wholly;
      } else {
        EXPECT_EQ(tasks[0].contacts(0).notes(), absl::StrCat("notes of patient ", i));
        ++untouched;
      }
    }
  }
  auto events = v1::EventLog::NewStub(e2e::Connect(daemon_->address()));
  v1::VerifyLogResponse verified;
  ASSERT_TRUE(events->VerifyLog(Context().get(), v1::VerifyLogRequest(), &verified).ok());
  EXPECT_TRUE(verified.ok()) << verified.problem();
  // What the kills interrupted can be finished: every patient ends erased.
  auto patients = v1::PatientService::NewStub(e2e::Connect(daemon_->address()));
  for (int i = 0; i < kPatients; ++i) {
    v1::ErasePatientRequest request;
    request.set_patient_id(Patient(i));
    request.set_reason("retention ended");
    v1::ErasePatientResponse response;
    ASSERT_TRUE(patients->ErasePatient(Context().get(), request, &response).ok()) << i;
    EXPECT_TRUE(TasksOf(i)[1].personal_data_erased()) << i;
  }
  std::cout << "patients wholly erased before a kill: " << wholly << ", untouched: " << untouched
            << "\n";
}

}  // namespace
}  // namespace outreach
