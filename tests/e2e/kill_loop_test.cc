// Kill loop (issues 3 and 13): the real outreachd, SIGKILLed at random moments under concurrent
// writes, some of which append to several streams in one batch.
//
// Each cycle: several client threads (tests/e2e/kill_loop_client.h) send CreateTask, LogContact
// (log-and-close, sometimes with REQUESTED_NO_CONTACT), ResolveTasks and SetContactPreference
// (do-not-contact set and lifted) for patients in two practices, each call with its own
// request_id. Each client owns its patients, so it predicts every answer (including the refusals
// CreateTask owes: ALREADY_EXISTS for a second open task of a category, FAILED_PRECONDITION for a
// do-not-contact patient) and every event a call appends; the ledger keeps what was acknowledged.
// The driver SIGKILLs the server at a random moment (sometimes also during start-up), restarts
// it, retries every call left in doubt with its request_id, re-sends one acknowledged
// ResolveTasks per client, and checks the whole database:
//  - positions are 1..N without gaps, and VerifyLog accepts the hash chain up to the head;
//  - all or none: every acknowledged request's events are in the log exactly once, on
//    consecutive positions, each as predicted (stream, version, payload: a resolve's closes carry
//    its reason and source_ref); no event belongs to a request nobody sent, and a refused or
//    no-op request appended nothing;
//  - a request left in doubt is in the log completely or not at all before its retry, and the
//    retry answers as predicted either way (a resolve: the same closed tasks, whether replayed or
//    run now); an acknowledged resolve re-sent after the restart answers its first answer again;
//  - every task's fold of its events (ReadEvents) equals the last answer the ledger holds for it
//    at that version, and GetTask and ListTasks now; every patient stream folds
//    (domain::ApplyPatient) to the preference its client last set;
//  - the clients' models agree with the log: the open tasks and their versions; no task is open
//    for a patient whose latest preference is do-not-contact; GetPatientOutreach reports each
//    patient's preference, its open tasks and its attempts as the log says;
//  - outreachctl verify beside the running server: the log, and every projection equal to a
//    replay of the log.
//
// The run is seeded; the seed is printed. Environment:
//   OUTREACH_KILL_SEED=<n>     rerun a given seed (the interleaving of threads still varies)
//   OUTREACH_SOAK_CYCLES=<n>   kill/restart cycles (default 20; a soak uses hundreds)
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "domain/events.h"
#include "domain/task_rules.h"
#include "outreach/v1/event_log.grpc.pb.h"
#include "outreach/v1/patient_service.grpc.pb.h"
#include "outreach/v1/storage.pb.h"
#include "outreach/v1/task_service.grpc.pb.h"
#include "tests/e2e/kill_loop_client.h"
#include "tests/e2e/outreachd_process.h"

#ifndef OUTREACHCTL_PATH
#error "OUTREACHCTL_PATH must name the outreachctl binary"
#endif

extern char** environ;

namespace outreach {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using e2e::Answer;
using e2e::Client;
using e2e::ExpectedEvent;
using e2e::KillLoopContext;
using e2e::Write;

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

std::string Describe(const std::vector<ExpectedEvent>& events) {
  std::string out;
  for (const ExpectedEvent& event : events) {
    absl::StrAppend(&out, "  ", event.stream, " v", event.version, ": ", event.summary, "\n");
  }
  return out.empty() ? "  (none)\n" : out;
}

// The events of `request_id` in `log`, as the clients predict them (sorted).
std::vector<ExpectedEvent> EventsOf(const std::vector<v1::EventRecord>& log,
                                    const std::string& request_id) {
  std::vector<ExpectedEvent> out;
  for (const v1::EventRecord& event : log) {
    if (event.request_id() == request_id) out.push_back(e2e::ExpectedOf(event));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// What kind of answer an acknowledged call got, for the run's summary.
std::string Outcome(const Write& write) {
  if (write.code == grpc::StatusCode::ALREADY_EXISTS) return "create refused (category open)";
  if (write.code == grpc::StatusCode::FAILED_PRECONDITION) return "create refused (do-not-contact)";
  std::set<std::string> streams;
  for (const ExpectedEvent& event : write.events) streams.insert(event.stream);
  if (write.events.empty()) return absl::StrCat(write.kind(), " appending nothing");
  if (streams.size() == 1) return absl::StrCat(write.kind(), " on one stream");
  return absl::StrCat(write.kind(), " over several streams");
}

// Every acknowledged call (its predicted events, which the client checked against the answer),
// the last answered state of every task, and a tally of the answers. Thread-safe.
class Ledger {
 public:
  void Record(const Write& write, const Answer& answer) {
    absl::MutexLock lock(&mu_);
    entries_[write.request_id] = write.events;
    for (const v1::Task& task : answer.tasks) {
      v1::Task& last = tasks_[task.task_id()];
      if (task.version() >= last.version()) last = task;
    }
    ++tally_[Outcome(write)];
  }

  std::map<std::string, std::vector<ExpectedEvent>> entries() const {
    absl::MutexLock lock(&mu_);
    return entries_;
  }
  std::map<std::string, v1::Task> tasks() const {
    absl::MutexLock lock(&mu_);
    return tasks_;
  }
  std::map<std::string, int> tally() const {
    absl::MutexLock lock(&mu_);
    return tally_;
  }

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::vector<ExpectedEvent>> entries_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::Task> tasks_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> tally_ ABSL_GUARDED_BY(mu_);
};


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
      clients_[c].Init(c, seed_ * 1000003 + static_cast<uint64_t>(c));
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
    stubs_ = e2e::NewStubs(channel_);
    events_ = v1::EventLog::NewStub(channel_);
  }

  void Disconnect() {
    stubs_ = e2e::Stubs();
    events_.reset();
    channel_.reset();
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

  // An answered call: into the ledger; a resolve that closed tasks is re-sent after the restart.
  void Acknowledged(Client& client, const Write& write, const Answer& answer) {
    ledger_.Record(write, answer);
    if (std::holds_alternative<v1::ResolveTasksRequest>(write.request) && !write.closed.empty()) {
      client.resolved = {write, answer};
    }
  }

  // Runs every client until the SIGKILL makes its call fail (UNAVAILABLE: the call may or may
  // not have been applied). Any other answer must be the predicted one.
  void LoadAndKill() {
    std::atomic<int> acknowledged{0};
    std::vector<std::thread> threads;
    for (Client& client : clients_) {
      threads.emplace_back([&client, &acknowledged, this] {
        const e2e::Stubs stubs = e2e::NewStubs(channel_);
        while (true) {
          Write write = client.NextWrite(follow_up_date_);
          const Answer answer = e2e::Send(stubs, write);
          if (answer.status.error_code() == grpc::StatusCode::UNAVAILABLE) {
            client.in_doubt = std::move(write);
            return;
          }
          if (!client.Accept(write, answer)) return;  // the failure names the request
          Acknowledged(client, write, answer);
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
    Disconnect();
  }

  std::vector<v1::EventRecord> ReadAllEvents() {
    v1::ReadEventsRequest request;
    auto context = KillLoopContext();
    auto reader = events_->ReadEvents(context.get(), request);
    std::vector<v1::EventRecord> out;
    v1::EventRecord record;
    while (reader->Read(&record)) out.push_back(record);
    grpc::Status status = reader->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    return out;
  }

  // Retries every call a kill left in doubt, with its request_id. All or none: before the retry
  // the log holds every event the call would append or none of them; the retry answers as
  // predicted whether it replays the first attempt or runs now (nothing else wrote those streams
  // in between).
  void RetryInDoubt() {
    const std::vector<v1::EventRecord> before = ReadAllEvents();
    for (Client& client : clients_) {
      if (!client.in_doubt) continue;
      const Write write = *std::move(client.in_doubt);
      client.in_doubt.reset();
      const std::vector<ExpectedEvent> landed = EventsOf(before, write.request_id);
      ASSERT_TRUE(landed.empty() || landed == write.events)
          << write.request_id << " (" << write.kind() << ") is in the log partly or otherwise:\n"
          << Describe(landed) << "predicted:\n" << Describe(write.events);
      const Answer answer = e2e::Send(stubs_, write);
      ASSERT_TRUE(client.Accept(write, answer)) << "retrying " << write.request_id;
      Acknowledged(client, write, answer);
      ++retried_;
      if (!landed.empty()) ++retried_already_applied_;
      if (!write.events.empty() && write.events.front().stream != write.events.back().stream) {
        ++retried_over_streams_;
        if (!landed.empty()) ++retried_over_streams_landed_;
      }
    }
  }

  // Re-sends each client's latest acknowledged ResolveTasks that closed tasks: the answer is the
  // first one again (the tasks as right after it), and nothing is appended (CheckRequests counts
  // its events).
  void ReplayResolves() {
    for (Client& client : clients_) {
      if (!client.resolved) continue;
      const auto [write, first] = *std::move(client.resolved);
      client.resolved.reset();
      const Answer again = e2e::Send(stubs_, write);
      ASSERT_TRUE(again.status.ok()) << write.request_id << ": " << again.status.error_message();
      ASSERT_EQ(again.tasks.size(), first.tasks.size()) << write.request_id;
      for (std::size_t i = 0; i < again.tasks.size(); ++i) {
        EXPECT_TRUE(MessageDifferencer::Equals(again.tasks[i], first.tasks[i]))
            << write.request_id << " replayed:\n" << again.tasks[i].DebugString()
            << "first answer:\n" << first.tasks[i].DebugString();
      }
      ++replayed_resolves_;
    }
  }

  // The whole database against the ledger and the clients' models.
  void CheckDatabase(int cycle) {
    SCOPED_TRACE(absl::StrCat("after cycle ", cycle, " (seed ", seed_, ")"));
    const std::vector<v1::EventRecord> log = ReadAllEvents();
    ASSERT_NO_FATAL_FAILURE(CheckLogVerifies(log));
    ASSERT_NO_FATAL_FAILURE(CheckRequests(log));
    std::map<std::string, v1::Task> tasks;
    std::map<std::string, storage::v1::PatientRow> patients;
    ASSERT_NO_FATAL_FAILURE(FoldLog(log, tasks, patients));
    ASSERT_NO_FATAL_FAILURE(CheckTaskProjections(tasks));
    ASSERT_NO_FATAL_FAILURE(CheckModels(tasks, patients));
    ASSERT_NO_FATAL_FAILURE(CheckPatientOutreach(tasks));
    ASSERT_NO_FATAL_FAILURE(CheckWithOutreachctl());
    events_total_ = log.size();
  }

  void CheckLogVerifies(const std::vector<v1::EventRecord>& log) {
    for (std::size_t i = 0; i < log.size(); ++i) {
      ASSERT_EQ(log[i].position(), i + 1) << "positions must be gap-free from 1";
    }
    v1::VerifyLogResponse verify;
    grpc::Status status =
        events_->VerifyLog(KillLoopContext().get(), v1::VerifyLogRequest(), &verify);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_TRUE(verify.ok()) << "position " << verify.first_bad_position() << ": "
                             << verify.problem();
    EXPECT_EQ(verify.head_position(), log.size());
    EXPECT_EQ(verify.events_checked(), log.size());
    if (!log.empty()) {
      EXPECT_EQ(verify.head_hash(), log.back().hash());
    }
  }

  // All or none, exactly once: every acknowledged request's events as predicted, on consecutive
  // positions; nothing from a request nobody acknowledged.
  void CheckRequests(const std::vector<v1::EventRecord>& log) {
    std::map<std::string, std::vector<const v1::EventRecord*>> by_request;
    for (const v1::EventRecord& event : log) {
      ASSERT_FALSE(event.request_id().empty()) << "position " << event.position();
      EXPECT_EQ(event.actor(), e2e::kKillLoopActor) << "position " << event.position();
      by_request[event.request_id()].push_back(&event);
    }
    const std::map<std::string, std::vector<ExpectedEvent>> entries = ledger_.entries();
    for (const auto& [request_id, expected] : entries) {
      auto found = by_request.find(request_id);
      std::vector<ExpectedEvent> landed;
      if (found != by_request.end()) {
        for (const v1::EventRecord* event : found->second) {
          landed.push_back(e2e::ExpectedOf(*event));
        }
        std::sort(landed.begin(), landed.end());
      }
      ASSERT_TRUE(landed == expected)
          << "acknowledged " << request_id << ", in the log:\n" << Describe(landed)
          << "acknowledged as:\n" << Describe(expected);
      if (landed.empty()) continue;
      const std::vector<const v1::EventRecord*>& events = found->second;
      EXPECT_EQ(events.back()->position() - events.front()->position() + 1, events.size())
          << request_id << ": a request's events are appended together";
    }
    for (const auto& [request_id, events] : by_request) {
      EXPECT_TRUE(entries.count(request_id)) << request_id << " is in the log ("
                                            << events.size() << " events) but was never acked";
    }
  }

  // Folds every stream of the log: tasks with domain::Apply, patients with domain::ApplyPatient.
  // A task's fold at the version of the last answer about it equals that answer (later events
  // come from acknowledged requests that answered about other streams: a do-not-contact).
  void FoldLog(const std::vector<v1::EventRecord>& log, std::map<std::string, v1::Task>& tasks,
               std::map<std::string, storage::v1::PatientRow>& patients) {
    const std::map<std::string, v1::Task> answered = ledger_.tasks();
    for (const v1::EventRecord& event : log) {
      if (domain::IsPatientStream(event.task_id())) {
        absl::Status applied =
            domain::ApplyPatient(patients[event.task_id()], domain::ToStoredEvent(event));
        ASSERT_TRUE(applied.ok()) << applied;
        continue;
      }
      v1::Task& folded = tasks[event.task_id()];
      absl::Status applied = domain::Apply(folded, domain::ToStoredEvent(event));
      ASSERT_TRUE(applied.ok()) << applied;
      auto last = answered.find(event.task_id());
      ASSERT_NE(last, answered.end()) << event.task_id() << " was never in an answer";
      if (folded.version() != last->second.version()) continue;
      EXPECT_TRUE(MessageDifferencer::Equals(folded, last->second))
          << event.task_id() << "\nfold of the log:\n" << folded.DebugString()
          << "last answer:\n" << last->second.DebugString();
    }
    ASSERT_EQ(tasks.size(), answered.size());
  }

  // GetTask and ListTasks equal the fold of the log.
  void CheckTaskProjections(const std::map<std::string, v1::Task>& tasks) {
    std::map<std::string, v1::Task> listed = ListEveryTask();
    ASSERT_EQ(listed.size(), tasks.size());
    for (const auto& [task_id, folded] : tasks) {
      EXPECT_TRUE(MessageDifferencer::Equals(folded, listed[task_id]))
          << task_id << "\nfold of the log:\n" << folded.DebugString()
          << "ListTasks:\n" << listed[task_id].DebugString();
      if (!checked_by_get_.insert({task_id, folded.version()}).second) continue;
      // GetTask for every task state not checked before (the cost stays linear in a soak).
      v1::GetTaskRequest get;
      get.set_task_id(task_id);
      v1::Task projection;
      grpc::Status status = stubs_.tasks->GetTask(KillLoopContext().get(), get, &projection);
      ASSERT_TRUE(status.ok()) << task_id << ": " << status.error_message();
      EXPECT_TRUE(MessageDifferencer::Equals(folded, projection))
          << task_id << "\nfold of the log:\n" << folded.DebugString()
          << "GetTask:\n" << projection.DebugString();
    }
  }

  // The clients' models against the log: the open tasks at their versions, the preferences; and
  // no task open for a patient whose latest preference is do-not-contact (setting it closes the
  // patient's open tasks in that practice; creating one is refused until it is lifted).
  void CheckModels(const std::map<std::string, v1::Task>& tasks,
                   const std::map<std::string, storage::v1::PatientRow>& patients) {
    std::set<std::string> open;
    for (const Client& client : clients_) {
      for (const auto& [task_id, model] : client.open_tasks()) {
        open.insert(task_id);
        auto folded = tasks.find(task_id);
        ASSERT_NE(folded, tasks.end()) << task_id;
        EXPECT_NE(folded->second.status(), v1::CLOSED) << task_id;
        EXPECT_EQ(folded->second.version(), model.version) << task_id;
      }
      for (const auto& [stream, model] : client.preferences()) {
        auto row = patients.find(stream);
        ASSERT_NE(row, patients.end()) << stream;
        EXPECT_EQ(row->second.version(), model.version) << stream;
        EXPECT_EQ(row->second.do_not_contact(), model.do_not_contact) << stream;
        EXPECT_EQ(row->second.reason(), model.reason) << stream;
      }
    }
    for (const auto& [task_id, task] : tasks) {
      if (task.status() == v1::CLOSED) continue;
      EXPECT_TRUE(open.count(task_id)) << task_id << " is open in the log, not for its client";
      auto row = patients.find(
          domain::PatientStreamId(domain::PatientKey{task.practice_id(), task.patient_id()}));
      EXPECT_FALSE(row != patients.end() && row->second.do_not_contact())
          << task_id << " is open for a do-not-contact patient:\n" << task.DebugString();
    }
    std::size_t preferences = 0;
    for (const Client& client : clients_) preferences += client.preferences().size();
    EXPECT_EQ(patients.size(), preferences) << "a patient stream no client wrote";
  }

  // GetPatientOutreach for every patient of every client: its preference, its open tasks (as
  // the log folds them) and its attempts (every contact on its tasks in the practice).
  void CheckPatientOutreach(const std::map<std::string, v1::Task>& tasks) {
    for (const Client& client : clients_) {
      for (const domain::PatientKey& patient : client.patients()) {
        v1::GetPatientOutreachRequest request;
        request.set_practice_id(patient.practice_id);
        request.set_patient_id(patient.patient_id);
        v1::PatientOutreach outreach;
        grpc::Status status =
            stubs_.patients->GetPatientOutreach(KillLoopContext().get(), request, &outreach);
        ASSERT_TRUE(status.ok()) << patient.patient_id << ": " << status.error_message();
        const std::string stream = domain::PatientStreamId(patient);
        auto model = client.preferences().find(stream);
        EXPECT_EQ(outreach.do_not_contact(), client.DoNotContact(patient)) << stream;
        EXPECT_EQ(outreach.reason(),
                  model == client.preferences().end() ? "" : model->second.reason)
            << stream;
        std::vector<const v1::Task*> open;
        int attempts = 0;
        for (const auto& [task_id, task] : tasks) {
          if (task.practice_id() != patient.practice_id ||
              task.patient_id() != patient.patient_id) {
            continue;
          }
          attempts += task.attempt_count();
          if (task.status() != v1::CLOSED) open.push_back(&task);
        }
        EXPECT_EQ(outreach.total_attempts(), attempts) << stream;
        ASSERT_EQ(outreach.open_tasks_size(), static_cast<int>(open.size())) << stream;
        for (std::size_t i = 0; i < open.size(); ++i) {
          EXPECT_TRUE(MessageDifferencer::Equals(outreach.open_tasks(static_cast<int>(i)),
                                                 *open[i]))
              << stream << "\nGetPatientOutreach:\n" << outreach.open_tasks(i).DebugString()
              << "fold of the log:\n" << open[i]->DebugString();
        }
      }
    }
  }

  // outreachctl verify, beside the running server (a RocksDB secondary): the log verifies, and
  // every projection equals a replay of the log.
  void CheckWithOutreachctl() {
    const std::string out_path = dir_ + "/outreachctl.out";
    std::vector<std::string> args = {OUTREACHCTL_PATH, "verify", "--db", dir_ + "/db"};
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    pid_t pid = 0;
    const int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ASSERT_EQ(spawned, 0) << "cannot run " << argv[0];
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    std::ifstream in(out_path);
    std::stringstream out;
    out << in.rdbuf();
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "outreachctl verify: " << status << "\n" << out.str();
    EXPECT_TRUE(absl::StrContains(out.str(), "projections: ok")) << out.str();
    ++ctl_verified_;
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
      grpc::Status status = stubs_.tasks->ListTasks(KillLoopContext().get(), request, &page);
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
  e2e::Stubs stubs_;
  std::unique_ptr<v1::EventLog::Stub> events_;

  int acknowledged_ = 0;
  int retried_ = 0;
  int retried_already_applied_ = 0;
  int retried_over_streams_ = 0;
  int retried_over_streams_landed_ = 0;
  int replayed_resolves_ = 0;
  int ctl_verified_ = 0;
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
    ASSERT_NO_FATAL_FAILURE(ReplayResolves());
    ASSERT_NO_FATAL_FAILURE(CheckDatabase(cycle));
  }
  Disconnect();
  const int status = daemon_->Stop(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

  std::map<std::string, int> tally = ledger_.tally();
  std::cout << absl::StrFormat(
                   "kill_loop: seed %d: %d cycles (+%d kills during start-up) in %s: %d calls "
                   "acknowledged under load, %d retried after a kill (%d of them had landed "
                   "before the kill; %d over several streams, %d of them landed), %d resolves "
                   "replayed, %d outreachctl verifies, %d events in the log\n"
                   "kill_loop: answers: %s\n",
                   seed_, cycles_, startup_kills_, absl::FormatDuration(absl::Now() - start),
                   acknowledged_, retried_, retried_already_applied_, retried_over_streams_,
                   retried_over_streams_landed_, replayed_resolves_, ctl_verified_, events_total_,
                   absl::StrJoin(tally, ", ", absl::PairFormatter(": ")))
            << std::flush;
  // A run in which nothing was written proves nothing.
  EXPECT_GT(acknowledged_, cycles_);
  EXPECT_EQ(retried_, cycles_ * kClients);
  if (cycles_ >= kDefaultCycles) {
    // Nor one without batches over several streams (a full run acknowledges dozens of each).
    EXPECT_GT(tally["resolve over several streams"], 0);
    EXPECT_GT(tally["preference over several streams"], 0);
  }
}

}  // namespace
}  // namespace outreach
