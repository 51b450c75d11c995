// Issue 15 end to end, with the real binaries:
//  - a live backup (outreachctl backup --server -> AdminService.CreateBackup) taken while
//    clients write, restored with outreachctl restore into an empty directory, where outreachctl
//    verify passes and the log is the source's, event for event, up to the backup's head;
//  - scale-out by practice: three outreachd shards behind Debian's nginx with the project's
//    router configuration (deploy/router/), six practices driven through it, each practice's
//    events on its own shard only, the router's own refusals, and a shard's SIGKILL failing only
//    its own practices.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdio>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <google/protobuf/util/message_differencer.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "outreach/v1/event_log.grpc.pb.h"
#include "outreach/v1/task_service.grpc.pb.h"
#include "store/event_store.h"
#include "tests/e2e/nginx_process.h"
#include "tests/e2e/outreachd_process.h"
#include "tests/testing/temp_dir.h"

#ifndef OUTREACHCTL_PATH
#error "OUTREACHCTL_PATH must name the outreachctl binary"
#endif

extern char** environ;

namespace outreach::e2e {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;

struct ToolRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs outreachctl with `args`, waiting for it.
ToolRun RunCtl(std::vector<std::string> args, const std::string& scratch) {
  args.insert(args.begin(), OUTREACHCTL_PATH);
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const std::string out_path = scratch + "/ctl.out";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  ToolRun run;
  const int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) return run;
  int status = 0;
  waitpid(pid, &status, 0);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(out_path);
  std::stringstream text;
  text << in.rdbuf();
  run.output = text.str();
  return run;
}

// "key: value" from outreachctl's output ("" if absent).
std::string Field(const std::string& output, const std::string& key) {
  const std::string prefix = key + ": ";
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    if (absl::StartsWith(line, prefix)) return line.substr(prefix.size());
  }
  return "";
}

std::unique_ptr<grpc::ClientContext> Deadline(const std::string& practice = "") {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!practice.empty()) context->AddMetadata("x-practice-id", practice);
  return context;
}

v1::CreateTaskRequest TaskRequest(const std::string& task_id, const std::string& practice) {
  v1::CreateTaskRequest request;
  request.set_task_id(task_id);
  request.set_practice_id(practice);
  request.set_patient_id("patient-" + task_id);
  request.set_kind(v1::MANUAL);
  request.set_title("Book annual wellness visit");
  return request;
}

std::vector<v1::EventRecord> ReadAll(const store::EventStore& store) {
  absl::StatusOr<std::vector<v1::EventRecord>> events = store.ReadEvents(1, "", 0);
  EXPECT_TRUE(events.ok()) << events.status();
  return events.ok() ? *events : std::vector<v1::EventRecord>();
}

// ---- Live backup ------------------------------------------------------------------------------

TEST(LiveBackupE2eTest, ABackupUnderWriteLoadRestoresToTheSourcesLogUpToItsHead) {
  testing::TempDir temp("outreach_live_backup_");
  const std::string dir = temp.path();
  Daemon daemon(dir + "/db", FreePort(), dir + "/outreachd.log",
                {"--backup-dir=" + dir + "/backups", "--backup-keep=2"});
  ASSERT_NO_FATAL_FAILURE(daemon.Start());
  ASSERT_TRUE(daemon.WaitServing()) << daemon.Log();

  // Two clients create tasks until told to stop.
  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      auto tasks = v1::TaskService::NewStub(Connect(daemon.address()));
      for (int i = 0; !stop.load(); ++i) {
        v1::Task task;
        const std::string id = absl::StrCat("w", w, "-", i);
        if (tasks->CreateTask(Deadline().get(), TaskRequest(id, "riverside"), &task).ok()) {
          ++written;
        }
      }
    });
  }
  while (written.load() < 200) absl::SleepFor(absl::Milliseconds(10));
  const int before = written.load();
  const ToolRun backup = RunCtl({"backup", "--server", daemon.address()}, dir);
  const int after = written.load();
  absl::SleepFor(absl::Milliseconds(200));  // more writes after the backup
  stop = true;
  for (std::thread& writer : writers) writer.join();
  ASSERT_EQ(backup.exit_code, 0) << backup.output << daemon.Log();
  EXPECT_GT(after, before) << "no write completed while the backup ran";
  uint64_t covers = 0;
  ASSERT_TRUE(absl::SimpleAtoi(Field(backup.output, "covers_through_position"), &covers))
      << backup.output;
  EXPECT_GE(covers, static_cast<uint64_t>(before));

  // Restore into an empty directory; outreachctl verify passes on it.
  const ToolRun restore =
      RunCtl({"restore", "--from", dir + "/backups", "--db", dir + "/restored"}, dir);
  ASSERT_EQ(restore.exit_code, 0) << restore.output;
  uint64_t restored_head = 0;
  ASSERT_TRUE(absl::SimpleAtoi(Field(restore.output, "head_position"), &restored_head));
  EXPECT_GE(restored_head, covers);
  const ToolRun verify = RunCtl({"verify", "--db", dir + "/restored"}, dir);
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_THAT(verify.output, HasSubstr("projections: ok"));

  // The source, stopped, went on past the backup; up to the backup's head, the two logs are the
  // same events (the hash chain: the source's event there has the restored head's hash).
  ASSERT_TRUE(WIFEXITED(daemon.Stop(SIGTERM)));
  const ToolRun source = RunCtl({"verify", "--db", dir + "/db", "--to",
                                 std::to_string(restored_head), "--expect-hash",
                                 Field(restore.output, "head_hash")},
                                dir);
  EXPECT_EQ(source.exit_code, 0) << source.output;
  store::ReadOnlyOptions options;
  auto source_store = store::EventStore::OpenReadOnly(dir + "/db", options);
  auto restored_store = store::EventStore::OpenReadOnly(dir + "/restored", options);
  ASSERT_TRUE(source_store.ok() && restored_store.ok());
  const std::vector<v1::EventRecord> source_events = ReadAll(**source_store);
  const std::vector<v1::EventRecord> restored_events = ReadAll(**restored_store);
  ASSERT_EQ(restored_events.size(), restored_head);
  EXPECT_GT(source_events.size(), restored_events.size()) << "no write after the backup";
  std::printf("backup covers through %llu; restored head %llu; source head %zu\n",
              static_cast<unsigned long long>(covers),
              static_cast<unsigned long long>(restored_head), source_events.size());
  for (std::size_t i = 0; i < restored_events.size() && i < source_events.size(); ++i) {
    ASSERT_TRUE(MessageDifferencer::Equals(restored_events[i], source_events[i]))
        << "position " << i + 1;
  }
}

TEST(LiveBackupE2eTest, ARefusedBackupExitsOneWithTheServersCode) {
  testing::TempDir temp("outreach_live_backup_refused_");
  const std::string dir = temp.path();
  Daemon daemon(dir + "/db", FreePort(), dir + "/outreachd.log");  // no --backup-dir
  ASSERT_NO_FATAL_FAILURE(daemon.Start());
  ASSERT_TRUE(daemon.WaitServing()) << daemon.Log();
  const ToolRun refused = RunCtl({"backup", "--server", daemon.address()}, dir);
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_THAT(refused.output, HasSubstr("FAILED_PRECONDITION"));
  EXPECT_THAT(refused.output, HasSubstr("--backup-dir"));
  const ToolRun unreadable = RunCtl(
      {"backup", "--server", daemon.address(), "--token-file", dir + "/no-such-token"}, dir);
  EXPECT_EQ(unreadable.exit_code, 1) << unreadable.output;
  EXPECT_THAT(unreadable.output, HasSubstr("--token-file: cannot read"));
}

// ---- Scale-out by practice behind the router --------------------------------------------------

constexpr char kRouterTemplate[] = OUTREACH_SOURCE_DIR "/deploy/router/outreach-router.conf";

// Three shards, two practices each, and nginx routing by x-practice-id.
class RouterE2eTest : public ::testing::Test {
 protected:
  static constexpr int kShards = 3;

  void SetUp() override {
    std::string upstreams;
    std::string routes;
    for (int s = 0; s < kShards; ++s) {
      shards_.push_back(std::make_unique<Daemon>(
          absl::StrCat(dir_, "/shard", s), FreePort(), absl::StrCat(dir_, "/shard", s, ".log")));
      ASSERT_NO_FATAL_FAILURE(shards_.back()->Start());
      absl::StrAppend(&upstreams, "upstream shard_", s, " { server ", shards_.back()->address(),
                      "; keepalive 8; }\n");
    }
    for (const auto& [practice, shard] : ShardOf()) {
      // "default" is a keyword of nginx's map: the default practice is written \default.
      absl::StrAppend(&routes, practice == "default" ? "\\" : "", practice, " shard_", shard,
                      ";\n");
    }
    const std::string conf = dir_ + "/router";
    mkdir(conf.c_str(), 0755);
    std::ofstream(conf + "/shards.conf") << upstreams;
    std::ofstream(conf + "/routes.map") << routes;
    for (auto& shard : shards_) ASSERT_TRUE(shard->WaitServing()) << shard->Log();
    router_ = std::make_unique<NginxProxy>(conf, FreePort(), kRouterTemplate,
                                           std::vector<std::pair<std::string, std::string>>{
                                               {"@CONF_DIR@", conf}});
    std::string why;
    ASSERT_TRUE(router_->Start(&why)) << why;
    tasks_ = v1::TaskService::NewStub(Connect(router_->address()));
  }

  // The routing table: six practices, two per shard.
  static std::map<std::string, int> ShardOf() {
    return {{"riverside", 0}, {"hillcrest", 0}, {"lakeview", 1},
            {"north-clinic", 1}, {"south-clinic", 2}, {"default", 2}};
  }

  grpc::Status CreateVia(const std::string& route, const std::string& task_id,
                         const std::string& practice) {
    v1::Task task;
    return tasks_->CreateTask(Deadline(route).get(), TaskRequest(task_id, practice), &task);
  }

  // Every task id on shard `s`, read from the shard directly, with its practice.
  std::map<std::string, std::string> TasksOnShard(int s) {
    auto direct = v1::TaskService::NewStub(Connect(shards_[s]->address()));
    v1::ListTasksRequest request;
    request.set_page_size(500);
    v1::ListTasksResponse response;
    const grpc::Status status = direct->ListTasks(Deadline().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::map<std::string, std::string> out;
    for (const v1::Task& task : response.tasks()) out[task.task_id()] = task.practice_id();
    return out;
  }

  testing::TempDir temp_{"outreach_router_"};
  const std::string dir_ = temp_.path();
  std::vector<std::unique_ptr<Daemon>> shards_;
  std::unique_ptr<NginxProxy> router_;
  std::unique_ptr<v1::TaskService::Stub> tasks_;
};

TEST_F(RouterE2eTest, EachPracticesEventsLandOnItsShardOnly) {
  constexpr int kTasksPerPractice = 5;
  for (const auto& [practice, shard] : ShardOf()) {
    for (int i = 0; i < kTasksPerPractice; ++i) {
      const grpc::Status status = CreateVia(practice, absl::StrCat(practice, "-", i), practice);
      ASSERT_TRUE(status.ok()) << practice << ": " << status.error_message();
    }
    v1::LogContactRequest contact;
    contact.set_task_id(absl::StrCat(practice, "-0"));
    contact.set_outcome(v1::NO_ANSWER);
    contact.set_notes("No answer.");
    contact.set_follow_up_date(absl::FormatCivilTime(
        absl::ToCivilDay(absl::Now() + absl::Hours(24 * 7), absl::UTCTimeZone())));
    v1::Task task;
    const grpc::Status logged = tasks_->LogContact(Deadline(practice).get(), contact, &task);
    ASSERT_TRUE(logged.ok()) << practice << ": " << logged.error_message();
  }
  for (int s = 0; s < kShards; ++s) {
    std::set<std::string> want;
    for (const auto& [practice, shard] : ShardOf()) {
      if (shard == s) want.insert(practice);
    }
    const std::map<std::string, std::string> tasks = TasksOnShard(s);
    EXPECT_EQ(tasks.size(), want.size() * kTasksPerPractice) << "shard " << s;
    for (const auto& [task_id, practice] : tasks) {
      EXPECT_EQ(want.count(practice), 1u) << task_id << " of " << practice << " on shard " << s;
    }
    // The shard's log: each practice's creates and its one contact, nothing else.
    auto events = v1::EventLog::NewStub(Connect(shards_[s]->address()));
    v1::VerifyLogResponse verified;
    ASSERT_TRUE(
        events->VerifyLog(Deadline().get(), v1::VerifyLogRequest(), &verified).ok());
    EXPECT_TRUE(verified.ok());
    EXPECT_EQ(verified.head_position(), want.size() * (kTasksPerPractice + 1)) << "shard " << s;
  }
}

TEST_F(RouterE2eTest, TheRouterAndTheShardsRefuseCallsThatCannotBeRouted) {
  // No x-practice-id, or a practice the table does not list: the router answers itself.
  grpc::Status status = CreateVia("", "t1", "riverside");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("x-practice-id"));
  status = CreateVia("elsewhere", "t1", "elsewhere");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  // Routed for riverside (shard 0) while the request is lakeview's (shard 1): the shard refuses.
  status = CreateVia("riverside", "t1", "lakeview");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("x-practice-id"));
  for (int s = 0; s < kShards; ++s) EXPECT_TRUE(TasksOnShard(s).empty()) << "shard " << s;
}

TEST_F(RouterE2eTest, AShardsKillFailsOnlyItsOwnPractices) {
  for (const auto& [practice, shard] : ShardOf()) {
    ASSERT_TRUE(CreateVia(practice, practice + "-before", practice).ok()) << practice;
  }
  const int stopped = shards_[1]->Stop(SIGKILL);
  ASSERT_TRUE(WIFSIGNALED(stopped) && WTERMSIG(stopped) == SIGKILL);
  for (const auto& [practice, shard] : ShardOf()) {
    const grpc::Status status = CreateVia(practice, practice + "-after", practice);
    if (shard == 1) {
      EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
          << practice << ": " << status.error_message();
    } else {
      EXPECT_TRUE(status.ok()) << practice << ": " << status.error_message();
    }
  }
  // Restarted on its volume, the shard serves its practices again, with what it had.
  ASSERT_NO_FATAL_FAILURE(shards_[1]->Start());
  ASSERT_TRUE(shards_[1]->WaitServing()) << shards_[1]->Log();
  EXPECT_EQ(TasksOnShard(1).size(), 2u);
  // nginx may hold the failed upstream down for a moment (max_fails, fail_timeout 10 s).
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  grpc::Status again = CreateVia("lakeview", "lakeview-again", "lakeview");
  while (!again.ok() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(200));
    again = CreateVia("lakeview", "lakeview-again", "lakeview");
  }
  EXPECT_TRUE(again.ok()) << again.error_message();
}

}  // namespace
}  // namespace outreach::e2e
