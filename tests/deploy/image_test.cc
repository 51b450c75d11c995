// The container image (`make image`, deploy/image/) run for real with podman: non-root, read-only
// root, no capabilities, no new privileges, a volume for /data, health SERVING through a
// published loopback port, SIGTERM within 5 s with exit 0, and the data surviving a new
// container on the same volume. Needs OUTREACH_IMAGE (set by `make test-deploy`).
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "outreach/v1/task_service.grpc.pb.h"
#include "tests/deploy/deploy_support.h"
#include "tests/e2e/outreachd_process.h"
#include "tests/testing/temp_dir.h"

namespace outreach::deploy {
namespace {

using ::testing::HasSubstr;

constexpr char kImageToken[] = "image-test-admin-token-0123456789";

// A field of /proc/PID/status ("Uid", "CapEff", "NoNewPrivs"), its first value.
std::string ProcStatus(const std::string& pid, const std::string& field) {
  std::ifstream in("/proc/" + pid + "/status");
  for (std::string line; std::getline(in, line);) {
    if (!absl::StartsWith(line, field + ":")) continue;
    std::vector<std::string> values =
        absl::StrSplit(line.substr(field.size() + 1), absl::ByAnyChar(" \t"), absl::SkipEmpty());
    return values.empty() ? "" : values.front();
  }
  return "";
}

class ImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    image_ = ImageUnderTest();
    if (image_.empty()) GTEST_SKIP() << "OUTREACH_IMAGE is not set: `make test-deploy` sets it";
    ConfigurePodman(dir_);
    const std::string config = dir_ + "/config";
    mkdir(config.c_str(), 0755);
    chmod(dir_.c_str(), 0755);
    std::ofstream(config + "/principals") << "admin-1 admin " << Sha256Hex(kImageToken) << "\n";
    chmod((config + "/principals").c_str(), 0644);
  }

  void TearDown() override {
    if (image_.empty()) return;
    for (const std::string& name : containers_) Podman({"rm", "-f", "-t", "0", name});
    Podman({"volume", "rm", "-f", volume_});
  }

  ToolRun Podman(std::vector<std::string> args) {
    args.insert(args.begin(), "podman");
    ToolRun run = RunTool(args, dir_);
    last_ = run.Describe(args);
    return run;
  }
  std::string Inspect(const std::string& name, const std::string& format) {
    return Trimmed(Podman({"inspect", "--format", format, name}).output);
  }

  // Starts a container of the image as the issue asks, publishing 50051 on 127.0.0.1:`port`.
  void Run(const std::string& name, int port) {
    containers_.push_back(name);
    const ToolRun run = Podman(
        {"run", "-d", "--name", name, "--read-only", "--cap-drop=ALL",
         "--security-opt=no-new-privileges", "-v", volume_ + ":/data", "-v",
         dir_ + "/config:/config:ro", "-p", absl::StrCat("127.0.0.1:", port, ":50051"), image_,
         "--db=/data/db", "--backup-dir=/data/backups", "--listen=0.0.0.0:50051",
         "--principals=/config/principals", "--insecure-listen"});
    ASSERT_EQ(run.exit_code, 0) << last_;
    ASSERT_TRUE(WaitServing(absl::StrCat("127.0.0.1:", port), "outreach.v1.TaskService",
                            absl::Seconds(30)))
        << Podman({"logs", name}).output;
  }

  std::unique_ptr<v1::TaskService::Stub> Tasks(int port) {
    return v1::TaskService::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                                        grpc::InsecureChannelCredentials()));
  }
  static std::unique_ptr<grpc::ClientContext> Authorized() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    context->AddMetadata("authorization", absl::StrCat("Bearer ", kImageToken));
    return context;
  }

  testing::TempDir temp_{"outreach_image_"};
  const std::string dir_ = temp_.path();
  const std::string volume_ = absl::StrCat("outreach-image-test-", getpid());
  std::string image_;
  std::vector<std::string> containers_;
  std::string last_;
};

TEST_F(ImageTest, RunsAsANonRootUserWithoutCapabilitiesOnAReadOnlyRoot) {
  const std::string name = absl::StrCat("outreach-image-test-a-", getpid());
  ASSERT_NO_FATAL_FAILURE(Run(name, e2e::FreePort()));
  EXPECT_EQ(Inspect(name, "{{.Config.User}}"), "10001:10001");
  EXPECT_EQ(Inspect(name, "{{.HostConfig.ReadonlyRootfs}}"), "true");
  // What the kernel says of the running outreachd (rootful podman: no user namespace).
  const std::string pid = Inspect(name, "{{.State.Pid}}");
  EXPECT_EQ(ProcStatus(pid, "Uid"), "10001") << pid;
  EXPECT_EQ(ProcStatus(pid, "CapEff"), "0000000000000000");
  EXPECT_EQ(ProcStatus(pid, "CapBnd"), "0000000000000000");
  EXPECT_EQ(ProcStatus(pid, "NoNewPrivs"), "1");
  uint64_t size = 0;
  ASSERT_TRUE(absl::SimpleAtoi(
      Trimmed(Podman({"image", "inspect", "--format", "{{.Size}}", image_}).output), &size))
      << last_;
  std::printf("image %s: %llu bytes (%.1f MiB)\n", image_.c_str(),
              static_cast<unsigned long long>(size), size / 1048576.0);
  EXPECT_LT(size, 100u << 20);
}

TEST_F(ImageTest, StopsOnSigtermWithinFiveSecondsAndItsDataSurvivesANewContainer) {
  const std::string first = absl::StrCat("outreach-image-test-b-", getpid());
  const int port = e2e::FreePort();
  ASSERT_NO_FATAL_FAILURE(Run(first, port));
  v1::CreateTaskRequest create;
  create.set_task_id("kept-1");
  create.set_patient_id("patient-1");
  create.set_kind(v1::MANUAL);
  create.set_title("Book annual wellness visit");
  v1::Task task;
  const grpc::Status created = Tasks(port)->CreateTask(Authorized().get(), create, &task);
  ASSERT_TRUE(created.ok()) << created.error_message();

  const absl::Time start = absl::Now();
  ASSERT_EQ(Podman({"stop", "-t", "10", first}).exit_code, 0) << last_;  // SIGTERM, then 10 s
  const absl::Duration took = absl::Now() - start;
  EXPECT_LT(took, absl::Seconds(5));
  std::printf("podman stop (SIGTERM) took %s\n", absl::FormatDuration(took).c_str());
  EXPECT_EQ(Inspect(first, "{{.State.ExitCode}}"), "0");
  const std::string logs = Podman({"logs", first}).output;
  EXPECT_THAT(logs, HasSubstr("SIGTERM received, draining"));
  EXPECT_THAT(logs, HasSubstr("\"msg\":\"stopped\""));  // JSON: not a terminal

  // Another container on the same volume has the task.
  const std::string second = absl::StrCat("outreach-image-test-c-", getpid());
  const int port2 = e2e::FreePort();
  ASSERT_NO_FATAL_FAILURE(Run(second, port2));
  v1::GetTaskRequest get;
  get.set_task_id("kept-1");
  const grpc::Status got = Tasks(port2)->GetTask(Authorized().get(), get, &task);
  ASSERT_TRUE(got.ok()) << got.error_message();
  EXPECT_EQ(task.title(), "Book annual wellness visit");
}

}  // namespace
}  // namespace outreach::deploy
