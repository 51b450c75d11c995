// Kill loop (issue 3): the real outreachd, SIGKILLed at random moments under concurrent writes.
//
// Each cycle: several client threads send CreateTask / LogContact / log-and-close calls, each
// with its own request_id, and record every acknowledged call in a ledger; the driver SIGKILLs
// the server at a random moment (sometimes also during start-up), restarts it, retries every
// unacknowledged call with its request_id, and checks the whole database over gRPC:
//  - positions are 1..N without gaps, and VerifyLog accepts the hash chain up to the head;
//  - every acknowledged request's events are in the log exactly once (events carry request_id),
//    ending at the version the client was told; no event belongs to a request nobody sent;
//  - an unacknowledged request is in the log either completely or not at all before its retry,
//    and exactly once after it (the retry replays the first result if it was applied);
//  - every task's projection (GetTask and ListTasks) equals the fold of its events read back with
//    ReadEvents, and the last response the ledger holds for it.
//
// The run is seeded; the seed is printed. Environment:
//   OUTREACH_KILL_SEED=<n>     rerun a given seed (the interleaving of threads still varies)
//   OUTREACH_SOAK_CYCLES=<n>   kill/restart cycles (default 20; a soak uses hundreds)
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "domain/task_rules.h"
#include "outreach/v1/event_log.grpc.pb.h"
#include "outreach/v1/storage.pb.h"
#include "outreach/v1/task_service.grpc.pb.h"
#include "tests/e2e/outreachd_process.h"

namespace outreach {
namespace {

using ::google::protobuf::util::MessageDifferencer;

constexpr int kDefaultCycles = 20;
constexpr int kClients = 4;
// The load runs this long (uniformly at random) before the SIGKILL.
constexpr int kMinLoadMillis = 20;
constexpr int kMaxLoadMillis = 250;
// Chance, per cycle, of an extra SIGKILL during start-up (recovery, checkpoint, binding).
constexpr double kStartupKillChance = 0.2;
constexpr int kMaxStartupKillMillis = 60;

uint64_t EnvNumber(const char* name, uint64_t fallback) {
  const char* text = getenv(name);
  uint64_t value = 0;
  if (text == nullptr || !absl::SimpleAtoi(text, &value)) return fallback;
  return value;
}

std::unique_ptr<grpc::ClientContext> Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  context->AddMetadata("x-actor", "kill-loop");
  return context;
}

// One write a client sends: exactly one of the requests is set.
struct Write {
  std::string request_id;
  std::string task_id;
  std::variant<v1::CreateTaskRequest, v1::LogContactRequest> request;

  // How many events it appends: TaskCreated; ContactLogged; or ContactLogged + TaskClosed.
  int events() const {
    if (const auto* log = std::get_if<v1::LogContactRequest>(&request)) {
      return log->close_task() ? 2 : 1;
    }
    return 1;
  }
  bool closes() const { return events() == 2; }
};

grpc::Status Send(v1::TaskService::Stub& stub, const Write& write, v1::Task* task) {
  if (const auto* create = std::get_if<v1::CreateTaskRequest>(&write.request)) {
    return stub.CreateTask(Context().get(), *create, task);
  }
  return stub.LogContact(Context().get(), std::get<v1::LogContactRequest>(write.request), task);
}

// What one client thread owns across cycles: its tasks (only it writes them, one call at a
// time, so it knows their versions) and at most one write left in doubt by a kill.
struct Client {
  int index = 0;
  std::mt19937_64 rng;
  int next_task = 0;
  int next_request = 0;
  std::map<std::string, int64_t> open_tasks;  // task_id -> acknowledged version
  std::optional<Write> in_doubt;

  Write NextWrite(const std::string& follow_up_date) {
    Write write;
    write.request_id = absl::StrCat("c", index, "-r", next_request++);
    std::uniform_real_distribution<double> coin(0.0, 1.0);
    if (open_tasks.size() < 2 || coin(rng) < 0.3) {
      v1::CreateTaskRequest create;
      write.task_id = absl::StrCat("c", index, "-t", next_task++);
      create.set_task_id(write.task_id);
      create.set_patient_id(absl::StrCat("patient-", index));
      create.set_kind(v1::MANUAL);
      create.set_title("Book annual wellness visit");
      create.set_request_id(write.request_id);
      write.request = create;
      return write;
    }
    auto task = open_tasks.begin();
    std::advance(task, std::uniform_int_distribution<std::size_t>(0, open_tasks.size() - 1)(rng));
    write.task_id = task->first;
    v1::LogContactRequest log;
    log.set_task_id(task->first);
    log.set_request_id(write.request_id);
    if (coin(rng) < 0.5) log.set_expected_version(task->second);
    if (coin(rng) < 0.25) {
      log.set_outcome(coin(rng) < 0.5 ? v1::SCHEDULED : v1::DID_NOT_SCHEDULE);
      log.set_notes("Reached; closing.");
      log.set_close_task(true);
    } else {
      log.set_outcome(coin(rng) < 0.5 ? v1::NO_ANSWER : v1::LEFT_MESSAGE);
      log.set_notes(absl::StrCat("Attempt ", write.request_id));
      log.set_follow_up_date(follow_up_date);
    }
    write.request = log;
    return write;
  }

  void Acknowledged(const Write& write, const v1::Task& task) {
    if (write.closes()) {
      open_tasks.erase(write.task_id);
    } else {
      open_tasks[write.task_id] = task.version();
    }
  }
};

// Every acknowledged write, and the last acknowledged state of every task. Thread-safe.
class Ledger {
 public:
  struct Entry {
    std::string task_id;
    int events = 0;
    int64_t version = 0;  // the task's version in the response
  };

  void Record(const Write& write, const v1::Task& task) {
    absl::MutexLock lock(&mu_);
    entries_[write.request_id] = Entry{write.task_id, write.events(), task.version()};
    v1::Task& last = tasks_[write.task_id];
    if (task.version() >= last.version()) last = task;
  }

  std::map<std::string, Entry> entries() const {
    absl::MutexLock lock(&mu_);
    return entries_;
  }
  std::map<std::string, v1::Task> tasks() const {
    absl::MutexLock lock(&mu_);
    return tasks_;
  }

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::Task> tasks_ ABSL_GUARDED_BY(mu_);
};

// The record as the store's fold takes it (the hashes are not part of the state).
storage::v1::StoredEvent ToStored(const v1::EventRecord& record) {
  storage::v1::StoredEvent event;
  event.set_schema_version(record.schema_version());
  event.set_position(record.position());
  event.set_task_id(record.task_id());
  event.set_version(record.version());
  event.set_event_id(record.event_id());
  *event.mutable_recorded_at() = record.recorded_at();
  *event.mutable_occurred_at() = record.occurred_at();
  event.set_actor(record.actor());
  event.set_request_id(record.request_id());
  switch (record.payload_case()) {
    case v1::EventRecord::kTaskCreated:
      *event.mutable_task_created() = record.task_created();
      break;
    case v1::EventRecord::kContactLogged:
      *event.mutable_contact_logged() = record.contact_logged();
      break;
    case v1::EventRecord::kTaskClosed:
      *event.mutable_task_closed() = record.task_closed();
      break;
    case v1::EventRecord::kTaskAssigned:
      *event.mutable_task_assigned() = record.task_assigned();
      break;
    case v1::EventRecord::kContactPreferenceSet:
      *event.mutable_contact_preference_set() = record.contact_preference_set();
      break;
    case v1::EventRecord::PAYLOAD_NOT_SET:
      break;
  }
  return event;
}

class KillLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_ = EnvNumber("OUTREACH_KILL_SEED", std::random_device()());
    cycles_ = static_cast<int>(EnvNumber("OUTREACH_SOAK_CYCLES", kDefaultCycles));
    std::cout << "kill_loop: seed " << seed_ << ", " << cycles_
              << " cycles (rerun: OUTREACH_KILL_SEED=" << seed_
              << " OUTREACH_SOAK_CYCLES=" << cycles_ << ")" << std::endl;
    RecordProperty("seed", std::to_string(seed_));
    rng_.seed(seed_);
    for (int c = 0; c < kClients; ++c) {
      clients_[c].index = c;
      clients_[c].rng.seed(seed_ * 1000003 + static_cast<uint64_t>(c));
    }
    follow_up_date_ = absl::FormatCivilTime(
        absl::ToCivilDay(absl::Now(), absl::UTCTimeZone()) + 7);

    std::string pattern =
        (std::filesystem::temp_directory_path() / "outreach_kill_loop_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    const int port = e2e::FreePort();
    ASSERT_NE(port, 0);
    daemon_ = std::make_unique<e2e::Daemon>(dir_ + "/db", port, dir_ + "/outreachd.log");
  }

  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "kill_loop: FAILED with seed " << seed_ << "; last outreachd log lines:\n";
      const std::string log = daemon_->Log();
      std::cerr << log.substr(log.size() > 4000 ? log.size() - 4000 : 0);
    }
    daemon_.reset();
    std::filesystem::remove_all(dir_);
  }

  void StartServing() {
    daemon_->Start();
    ASSERT_TRUE(daemon_->WaitServing()) << "outreachd did not come up";
    channel_ = e2e::Connect(daemon_->address());
    tasks_ = v1::TaskService::NewStub(channel_);
    events_ = v1::EventLog::NewStub(channel_);
  }

  // Sometimes kills the server again while it starts (recovering, checkpointing, binding).
  void MaybeKillDuringStartUp() {
    if (std::uniform_real_distribution<double>(0.0, 1.0)(rng_) >= kStartupKillChance) return;
    daemon_->Start();
    absl::SleepFor(absl::Milliseconds(
        std::uniform_int_distribution<int>(0, kMaxStartupKillMillis)(rng_)));
    daemon_->Stop(SIGKILL);
    ++startup_kills_;
  }

  // Runs every client until the SIGKILL makes its call fail.
  void LoadAndKill() {
    std::atomic<int> acknowledged{0};
    std::vector<std::thread> threads;
    for (Client& client : clients_) {
      threads.emplace_back([&client, &acknowledged, this] {
        auto stub = v1::TaskService::NewStub(channel_);
        while (true) {
          Write write = client.NextWrite(follow_up_date_);
          v1::Task task;
          grpc::Status status = Send(*stub, write, &task);
          if (!status.ok()) {
            // The kill: the call may or may not have been applied.
            EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
                << write.request_id << ": " << status.error_message();
            client.in_doubt = std::move(write);
            return;
          }
          ledger_.Record(write, task);
          client.Acknowledged(write, task);
          acknowledged.fetch_add(1);
        }
      });
    }
    absl::SleepFor(absl::Milliseconds(
        std::uniform_int_distribution<int>(kMinLoadMillis, kMaxLoadMillis)(rng_)));
    const int status = daemon_->Stop(SIGKILL);
    for (std::thread& thread : threads) thread.join();
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
    acknowledged_ += acknowledged.load();
    tasks_.reset();
    events_.reset();
    channel_.reset();
  }

  std::vector<v1::EventRecord> ReadAllEvents() {
    v1::ReadEventsRequest request;
    auto context = Context();
    auto reader = events_->ReadEvents(context.get(), request);
    std::vector<v1::EventRecord> out;
    v1::EventRecord record;
    while (reader->Read(&record)) out.push_back(record);
    grpc::Status status = reader->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    return out;
  }

  // How many events of the log carry `request_id`.
  static int CountOf(const std::vector<v1::EventRecord>& log, const std::string& request_id) {
    int count = 0;
    for (const v1::EventRecord& event : log) count += event.request_id() == request_id;
    return count;
  }

  // Retries every write a kill left in doubt, with its request_id: it must succeed, and the log
  // must hold its events exactly once afterwards, whether or not the first attempt had landed.
  void RetryInDoubt() {
    const std::vector<v1::EventRecord> before = ReadAllEvents();
    for (Client& client : clients_) {
      if (!client.in_doubt) continue;
      const Write write = *std::move(client.in_doubt);
      client.in_doubt.reset();
      const int landed = CountOf(before, write.request_id);
      ASSERT_TRUE(landed == 0 || landed == write.events())
          << write.request_id << " is in the log partly: " << landed << " of " << write.events()
          << " events";
      v1::Task task;
      grpc::Status status = Send(*tasks_, write, &task);
      ASSERT_TRUE(status.ok()) << "retrying " << write.request_id << ": "
                               << status.error_message();
      ledger_.Record(write, task);
      client.Acknowledged(write, task);
      ++retried_;
      if (landed > 0) ++retried_already_applied_;
    }
  }

  // The whole database against the ledger, over gRPC.
  void CheckDatabase(int cycle) {
    SCOPED_TRACE(absl::StrCat("after cycle ", cycle, " (seed ", seed_, ")"));
    const std::vector<v1::EventRecord> log = ReadAllEvents();
    for (std::size_t i = 0; i < log.size(); ++i) {
      ASSERT_EQ(log[i].position(), i + 1) << "positions must be gap-free from 1";
    }
    v1::VerifyLogResponse verify;
    grpc::Status status = events_->VerifyLog(Context().get(), v1::VerifyLogRequest(), &verify);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_TRUE(verify.ok()) << "position " << verify.first_bad_position() << ": "
                             << verify.problem();
    EXPECT_EQ(verify.head_position(), log.size());
    EXPECT_EQ(verify.events_checked(), log.size());
    if (!log.empty()) {
      EXPECT_EQ(verify.head_hash(), log.back().hash());
    }

    // Exactly once: every acknowledged request's events, and nothing else.
    std::map<std::string, std::vector<const v1::EventRecord*>> by_request;
    std::map<std::string, std::vector<const v1::EventRecord*>> by_task;
    for (const v1::EventRecord& event : log) {
      ASSERT_FALSE(event.request_id().empty()) << "position " << event.position();
      by_request[event.request_id()].push_back(&event);
      by_task[event.task_id()].push_back(&event);
    }
    const std::map<std::string, Ledger::Entry> entries = ledger_.entries();
    for (const auto& [request_id, entry] : entries) {
      auto found = by_request.find(request_id);
      ASSERT_NE(found, by_request.end()) << "acknowledged " << request_id << " is not in the log";
      const std::vector<const v1::EventRecord*>& events = found->second;
      ASSERT_EQ(static_cast<int>(events.size()), entry.events) << request_id;
      for (const v1::EventRecord* event : events) EXPECT_EQ(event->task_id(), entry.task_id);
      EXPECT_EQ(events.back()->version(), entry.version) << request_id;
      // A request's events are appended together: consecutive positions.
      EXPECT_EQ(events.back()->position() - events.front()->position() + 1, events.size());
    }
    for (const auto& [request_id, events] : by_request) {
      EXPECT_TRUE(entries.count(request_id)) << request_id << " is in the log ("
                                            << events.size() << " events) but was never acked";
    }

    // Projections: the fold of each task's events, the ledger's last response, GetTask, and
    // ListTasks all agree.
    const std::map<std::string, v1::Task> expected = ledger_.tasks();
    ASSERT_EQ(by_task.size(), expected.size());
    std::map<std::string, v1::Task> listed = ListEveryTask();
    ASSERT_EQ(listed.size(), expected.size());
    for (const auto& [task_id, events] : by_task) {
      v1::Task folded;
      for (const v1::EventRecord* event : events) {
        absl::Status applied = domain::Apply(folded, ToStored(*event));
        ASSERT_TRUE(applied.ok()) << applied;
      }
      auto last = expected.find(task_id);
      ASSERT_NE(last, expected.end()) << task_id;
      EXPECT_TRUE(MessageDifferencer::Equals(folded, last->second))
          << task_id << "\nfold of the log:\n" << folded.DebugString()
          << "last response:\n" << last->second.DebugString();
      EXPECT_TRUE(MessageDifferencer::Equals(folded, listed[task_id]))
          << task_id << "\nfold of the log:\n" << folded.DebugString()
          << "ListTasks:\n" << listed[task_id].DebugString();
      if (checked_by_get_.insert({task_id, folded.version()}).second) {
        // GetTask for every task state not checked before (the cost stays linear in a soak).
        v1::GetTaskRequest get;
        get.set_task_id(task_id);
        v1::Task projection;
        status = tasks_->GetTask(Context().get(), get, &projection);
        ASSERT_TRUE(status.ok()) << task_id << ": " << status.error_message();
        EXPECT_TRUE(MessageDifferencer::Equals(folded, projection))
            << task_id << "\nfold of the log:\n" << folded.DebugString()
            << "GetTask:\n" << projection.DebugString();
      }
    }
    events_total_ = log.size();
  }

  std::map<std::string, v1::Task> ListEveryTask() {
    std::map<std::string, v1::Task> out;
    v1::ListTasksRequest request;
    request.add_statuses(v1::OPEN);
    request.add_statuses(v1::IN_PROGRESS);
    request.add_statuses(v1::CLOSED);
    request.set_page_size(500);
    do {
      v1::ListTasksResponse page;
      grpc::Status status = tasks_->ListTasks(Context().get(), request, &page);
      EXPECT_TRUE(status.ok()) << status.error_message();
      if (!status.ok()) break;
      for (const v1::Task& task : page.tasks()) {
        EXPECT_TRUE(out.emplace(task.task_id(), task).second) << "listed twice: "
                                                              << task.task_id();
      }
      request.set_page_token(page.next_page_token());
    } while (!request.page_token().empty());
    return out;
  }

  uint64_t seed_ = 0;
  int cycles_ = 0;
  std::mt19937_64 rng_;
  Client clients_[kClients];
  Ledger ledger_;
  std::string follow_up_date_;
  std::set<std::pair<std::string, int64_t>> checked_by_get_;

  std::string dir_;
  std::unique_ptr<e2e::Daemon> daemon_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::TaskService::Stub> tasks_;
  std::unique_ptr<v1::EventLog::Stub> events_;

  int acknowledged_ = 0;
  int retried_ = 0;
  int retried_already_applied_ = 0;
  int startup_kills_ = 0;
  std::size_t events_total_ = 0;
};

TEST_F(KillLoopTest, AcknowledgedWritesSurviveSigkillExactlyOnce) {
  const absl::Time start = absl::Now();
  ASSERT_NO_FATAL_FAILURE(StartServing());
  for (int cycle = 1; cycle <= cycles_; ++cycle) {
    ASSERT_NO_FATAL_FAILURE(LoadAndKill());
    MaybeKillDuringStartUp();
    ASSERT_NO_FATAL_FAILURE(StartServing());
    ASSERT_NO_FATAL_FAILURE(RetryInDoubt());
    ASSERT_NO_FATAL_FAILURE(CheckDatabase(cycle));
  }
  tasks_.reset();
  events_.reset();
  channel_.reset();
  const int status = daemon_->Stop(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

  std::cout << absl::StrFormat(
                   "kill_loop: seed %d: %d cycles (+%d kills during start-up) in %s: %d writes "
                   "acknowledged under load, %d retried after a kill (%d of them had landed "
                   "before the kill), %d events in the log\n",
                   seed_, cycles_, startup_kills_, absl::FormatDuration(absl::Now() - start),
                   acknowledged_, retried_, retried_already_applied_, events_total_)
            << std::flush;
  // A run in which nothing was written proves nothing.
  EXPECT_GT(acknowledged_, cycles_);
  EXPECT_EQ(retried_, cycles_ * kClients);
}

}  // namespace
}  // namespace outreach
