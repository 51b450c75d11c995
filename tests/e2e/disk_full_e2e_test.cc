// A full disk, as an operator meets it (issue 19): the real outreachd on a small tmpfs that this
// test mounts (root only, as CI runs; skipped otherwise), filled by 16 concurrent writers.
//  - The free-space reserve (--min-free-disk) refuses writes before the disk fills; reads go on.
//  - Without a reserve, ENOSPC refuses writes "disk full"; after the file system grows, writes
//    resume without a restart, and after a restart every acknowledged write is there once.
//  - SIGTERM while full exits 0, every time.
//  - No client-visible message holds a file path.
// A ballast file fills most of the tmpfs first, so that the writers reach the end in seconds.
#include <sys/resource.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
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

constexpr uint64_t kMiB = uint64_t{1} << 20;

uint64_t FreeBytes(const std::string& dir) {
  struct statvfs fs {};
  if (statvfs(dir.c_str(), &fs) != 0) return 0;
  return static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
}

// What the writers heard.
struct Ledger {
  absl::Mutex mu;
  std::set<std::string> acknowledged;
  std::vector<grpc::Status> refusals;  // the first refusal each writer got
};

// `writers` threads create tasks "<prefix>-w<i>-t<n>" until each is refused once.
void WriteUntilRefused(const std::string& address, const std::string& prefix, int writers,
                       Ledger* ledger) {
  auto channel = e2e::Connect(address);
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      auto stub = v1::TaskService::NewStub(channel);
      for (int n = 0;; ++n) {
        v1::CreateTaskRequest request;
        request.set_task_id(absl::StrCat(prefix, "-w", w, "-t", n));
        request.set_patient_id(absl::StrCat("p-", n));
        request.set_kind(v1::MANUAL);
        request.set_title(std::string(200, 'x'));  // a few hundred bytes per event
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        v1::Task task;
        const grpc::Status status = stub->CreateTask(&context, request, &task);
        absl::MutexLock lock(&ledger->mu);
        if (!status.ok()) {
          ledger->refusals.push_back(status);
          return;
        }
        ledger->acknowledged.insert(request.task_id());
      }
    });
  }
  for (std::thread& t : threads) t.join();
}

grpc::Status CreateOne(const std::string& address, const std::string& id) {
  auto stub = v1::TaskService::NewStub(e2e::Connect(address));
  v1::CreateTaskRequest request;
  request.set_task_id(id);
  request.set_patient_id("p-1");
  request.set_kind(v1::MANUAL);
  request.set_title("after the disk filled");
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::Task task;
  return stub->CreateTask(&context, request, &task);
}

HealthCheckResponse::ServingStatus TaskServiceHealth(const std::string& address) {
  auto stub = grpc::health::v1::Health::NewStub(e2e::Connect(address));
  HealthCheckRequest request;
  request.set_service("outreach.v1.TaskService");
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  HealthCheckResponse response;
  if (!stub->Check(&context, request, &response).ok()) return HealthCheckResponse::UNKNOWN;
  return response.status();
}

// Polls until TaskService health is `want` (true) or `timeout` passes.
bool WaitHealth(const std::string& address, HealthCheckResponse::ServingStatus want,
                absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (TaskServiceHealth(address) == want) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return false;
}

// Every TaskCreated in the log, counted by task id.
std::map<std::string, int> CreatedTasks(const std::string& address) {
  auto stub = v1::EventLog::NewStub(e2e::Connect(address));
  grpc::ClientContext context;
  v1::ReadEventsRequest request;
  auto reader = stub->ReadEvents(&context, request);
  std::map<std::string, int> created;
  v1::EventRecord event;
  while (reader->Read(&event)) {
    if (event.has_task_created()) ++created[event.task_id()];
  }
  EXPECT_TRUE(reader->Finish().ok());
  return created;
}

bool VerifyLogOk(const std::string& address) {
  auto stub = v1::EventLog::NewStub(e2e::Connect(address));
  grpc::ClientContext context;
  v1::VerifyLogResponse response;
  return stub->VerifyLog(&context, v1::VerifyLogRequest(), &response).ok() && response.ok();
}

void ExpectNoPath(const grpc::Status& status) {
  EXPECT_EQ(status.error_message().find('/'), std::string::npos) << status.error_message();
}

class DiskFull : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root (CI runs as root)";
    char pattern[] = "/tmp/outreach-diskfull.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    work_ = pattern;
    mount_ = work_ + "/fs";
    std::filesystem::create_directories(mount_);
    if (mount("tmpfs", mount_.c_str(), "tmpfs", 0, "size=32m") != 0) {
      const std::string why = strerror(errno);
      std::filesystem::remove_all(work_);
      work_.clear();
      GTEST_SKIP() << "cannot mount a tmpfs here: " << why;
    }
    mounted_ = true;
    db_ = mount_ + "/db";
    log_ = work_ + "/outreachd.log";  // off the tmpfs: the log must not take its space
  }

  void TearDown() override {
    daemon_.reset();
    if (mounted_) umount2(mount_.c_str(), MNT_DETACH);
    if (!work_.empty()) std::filesystem::remove_all(work_);
  }

  // Fills the tmpfs with a ballast file until about `leave` bytes are free.
  void FillLeaving(uint64_t leave) {
    std::ofstream ballast(mount_ + "/ballast", std::ios::binary | std::ios::app);
    const std::string chunk(kMiB, '\0');
    while (FreeBytes(mount_) > leave + kMiB && ballast.write(chunk.data(), chunk.size())) {
      ballast.flush();
    }
  }
  void DropBallast() { std::filesystem::remove(mount_ + "/ballast"); }
  // Grows the tmpfs: what an operator does by adding space.
  void Grow(const char* size) {
    ASSERT_EQ(mount(nullptr, mount_.c_str(), nullptr, MS_REMOUNT, size), 0) << strerror(errno);
  }

  void StartDaemon(std::vector<std::string> flags) {
    if (port_ == 0) port_ = e2e::FreePort();
    daemon_ = std::make_unique<e2e::Daemon>(db_, port_, log_, std::move(flags));
    daemon_->Start();
    ASSERT_TRUE(daemon_->WaitServing()) << daemon_->Log();
  }

  // SIGTERM: "stopped" and exit 0.
  void ExpectCleanStop() {
    const int status = daemon_->Stop(SIGTERM);
    ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status) << "\n"
                                   << daemon_->Log();
    EXPECT_EQ(WEXITSTATUS(status), 0) << daemon_->Log();
  }

  std::string work_, mount_, db_, log_;
  bool mounted_ = false;
  int port_ = 0;
  std::unique_ptr<e2e::Daemon> daemon_;
};

TEST_F(DiskFull, ReserveRefusesWritesBeforeTheDiskFillsWhileReadsGoOn) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon({"--min-free-disk=6"}));
  FillLeaving(12 * kMiB);
  Ledger ledger;
  WriteUntilRefused(daemon_->address(), "r", 16, &ledger);
  ASSERT_FALSE(ledger.acknowledged.empty());
  for (const grpc::Status& refused : ledger.refusals) {
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_THAT(refused.error_message(), HasSubstr("disk almost full"));
    ExpectNoPath(refused);
  }
  EXPECT_GT(FreeBytes(mount_), 0u) << "the reserve let the disk fill";
  EXPECT_TRUE(WaitHealth(daemon_->address(), HealthCheckResponse::NOT_SERVING, absl::Seconds(5)));
  // Reads (and their access records) go on.
  {
    auto stub = v1::TaskService::NewStub(e2e::Connect(daemon_->address()));
    grpc::ClientContext context;
    v1::GetTaskRequest request;
    request.set_task_id(*ledger.acknowledged.begin());
    v1::Task task;
    EXPECT_TRUE(stub->GetTask(&context, request, &task).ok());
  }
  EXPECT_TRUE(VerifyLogOk(daemon_->address()));

  // Room again: writes are accepted at once (nothing was latched), health comes back.
  DropBallast();
  const absl::Time freed = absl::Now();
  grpc::Status created;
  while (!(created = CreateOne(daemon_->address(), "after")).ok() &&
         absl::Now() - freed < absl::Seconds(10)) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(created.ok()) << created.error_message();
  std::cerr << "[ figure   ] reserve: writes accepted " << absl::Now() - freed
            << " after space was freed\n";
  EXPECT_TRUE(WaitHealth(daemon_->address(), HealthCheckResponse::SERVING, absl::Seconds(5)));
  ExpectCleanStop();
}

TEST_F(DiskFull, FullDiskRefusesInWordsResumesWithoutRestartAndKeepsEveryAcknowledgedWrite) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon({"--min-free-disk=0"}));
  FillLeaving(6 * kMiB);
  Ledger ledger;
  WriteUntilRefused(daemon_->address(), "f", 16, &ledger);
  ASSERT_FALSE(ledger.acknowledged.empty());
  bool saw_disk_full = false;
  for (const grpc::Status& refused : ledger.refusals) {
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
    saw_disk_full |= refused.error_message().find("disk full") != std::string::npos;
    ExpectNoPath(refused);
  }
  EXPECT_TRUE(saw_disk_full);
  EXPECT_TRUE(WaitHealth(daemon_->address(), HealthCheckResponse::NOT_SERVING, absl::Seconds(5)));
  EXPECT_TRUE(VerifyLogOk(daemon_->address()));
  EXPECT_THAT(daemon_->Log(), HasSubstr("No space left on device"));  // the cause, server-side

  // The file system grows (RocksDB resumes once its largest memtable, 64 MiB, fits).
  ASSERT_NO_FATAL_FAILURE(Grow("size=160m"));
  const absl::Time grown = absl::Now();
  grpc::Status created;
  while (!(created = CreateOne(daemon_->address(), "after")).ok() &&
         absl::Now() - grown < absl::Seconds(15)) {
    ExpectNoPath(created);
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_TRUE(created.ok()) << created.error_message() << "\n" << daemon_->Log();
  ledger.acknowledged.insert("after");
  std::cerr << "[ figure   ] full disk: writes resumed " << absl::Now() - grown
            << " after the file system grew, without a restart\n";
  EXPECT_TRUE(WaitHealth(daemon_->address(), HealthCheckResponse::SERVING, absl::Seconds(5)));
  ExpectCleanStop();

  ASSERT_NO_FATAL_FAILURE(StartDaemon({"--min-free-disk=0"}));
  const std::map<std::string, int> created_tasks = CreatedTasks(daemon_->address());
  for (const std::string& id : ledger.acknowledged) {
    const auto it = created_tasks.find(id);
    EXPECT_TRUE(it != created_tasks.end() && it->second == 1) << id;
  }
  for (const auto& [id, count] : created_tasks) EXPECT_EQ(count, 1) << id;
  EXPECT_TRUE(VerifyLogOk(daemon_->address()));
  ExpectCleanStop();
}

// Issue 19 saw an abort inside RocksDB in 1 SIGTERM of 4 after the disk filled: 8 rounds would
// miss such a rate with probability (3/4)^8 = 10%.
TEST_F(DiskFull, SigtermWhileFullExitsZero) {
  constexpr int kRounds = 8;
  Ledger ledger;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    ASSERT_NO_FATAL_FAILURE(StartDaemon({"--min-free-disk=0"}));
    FillLeaving(3 * kMiB);
    WriteUntilRefused(daemon_->address(), absl::StrCat("s", round), 16, &ledger);
    ASSERT_NO_FATAL_FAILURE(ExpectCleanStop());
    ASSERT_THAT(daemon_->Log(), HasSubstr("stopped"));
    DropBallast();
  }
  ASSERT_NO_FATAL_FAILURE(StartDaemon({"--min-free-disk=0"}));
  const std::map<std::string, int> created = CreatedTasks(daemon_->address());
  for (const std::string& id : ledger.acknowledged) EXPECT_EQ(created.count(id), 1u) << id;
  EXPECT_TRUE(VerifyLogOk(daemon_->address()));
  ExpectCleanStop();
}

// The neighbour of a full disk: too few file descriptors. The store sizes RocksDB's open table
// files from the limit, and under 128 it refuses to start, saying which limit and how to raise
// it, instead of failing later in a flush or a compaction.
TEST(OpenFileLimit, BelowTheMinimumRefusesToStartSayingSoAndAModestOneServes) {
  std::string pattern =
      (std::filesystem::temp_directory_path() / "outreach_nofile_XXXXXX").string();
  ASSERT_NE(mkdtemp(pattern.data()), nullptr);
  const std::string dir = pattern;
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  auto start_with_limit = [&](rlim_t limit, e2e::Daemon& daemon) {
    rlimit lowered = saved;
    lowered.rlim_cur = std::min<rlim_t>(limit, saved.rlim_max);
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
    daemon.Start();  // the child inherits the limit
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  };
  {
    e2e::Daemon daemon(dir + "/db", e2e::FreePort(), dir + "/low.log");
    ASSERT_NO_FATAL_FAILURE(start_with_limit(100, daemon));
    const int status = daemon.WaitExit(absl::Seconds(20));
    ASSERT_NE(status, -1) << "outreachd kept running with 100 descriptors";
    EXPECT_NE(WEXITSTATUS(status), 0);
    EXPECT_THAT(daemon.Log(), ::testing::HasSubstr("the open-file limit (ulimit -n) is 100"));
  }
  {
    e2e::Daemon daemon(dir + "/db", e2e::FreePort(), dir + "/modest.log");
    ASSERT_NO_FATAL_FAILURE(start_with_limit(256, daemon));
    EXPECT_TRUE(daemon.WaitServing()) << daemon.Log();
    EXPECT_EQ(daemon.Stop(SIGTERM), 0) << daemon.Log();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace outreach
