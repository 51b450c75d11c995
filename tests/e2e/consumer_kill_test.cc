// A durable consumer across SIGKILLs of the real outreachd (issue 16): the consumer follows the
// log with EventLog.Follow under its name and acks every 10 events (AckEvents); a writer appends
// meanwhile; the driver SIGKILLs the server at random moments and restarts it. The consumer
// reconnects with from_position 0 each time, so the server resumes it after its stored
// checkpoint. Checked: every position 1..head was handled (nothing skipped); each resume starts
// at most one past the last position handled and never before the last ack the server confirmed
// (at most the unacked tail is repeated, never an acked event); at the end a caught_up names the
// head and ListConsumers shows the final checkpoint with lag 0.
#include <stdlib.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "outreach/v1/event_log.grpc.pb.h"
#include "outreach/v1/task_service.grpc.pb.h"
#include "tests/e2e/outreachd_process.h"

namespace outreach {
namespace {

constexpr char kConsumer[] = "billing-sync";
constexpr uint64_t kAckEvery = 10;

std::unique_ptr<grpc::ClientContext> Context(absl::Duration deadline = absl::Seconds(5)) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() +
                        absl::ToChronoMilliseconds(deadline));
  context->AddMetadata("x-actor", "consumer-test");
  return context;
}

// What the consumer saw: each (re)connection's first position, and what it had handled and
// had confirmed acked just before it.
struct Resume {
  uint64_t first = 0;
  uint64_t handled_before = 0;
  uint64_t confirmed_ack_before = 0;
};

// The consumer: follows under kConsumer, handles events in order (a position it has handled
// already is a repeat), acks every kAckEvery handled events, reconnects after any error.
class Consumer {
 public:
  explicit Consumer(std::string address) : address_(std::move(address)) {}

  void Run() {
    while (!stop_.load()) {
      auto stub = v1::EventLog::NewStub(e2e::Connect(address_));
      FollowOnce(stub.get());
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  // Ends the stream in progress too (an idle Follow waits for events that no longer come).
  void Stop() {
    stop_.store(true);
    absl::MutexLock lock(&context_mu_);
    if (context_ != nullptr) context_->TryCancel();
  }

  // Waits until a caught_up names `head` (after the last write). False after `timeout`.
  bool WaitCaughtUp(uint64_t head, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto done = [this, head]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return caught_up_ >= head;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  }

  absl::Mutex mu_;
  std::set<uint64_t> handled_ ABSL_GUARDED_BY(mu_);
  std::vector<Resume> resumes_ ABSL_GUARDED_BY(mu_);
  uint64_t repeats_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t last_handled_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t confirmed_ack_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t caught_up_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> problems_ ABSL_GUARDED_BY(mu_);

 private:
  void FollowOnce(v1::EventLog::Stub* stub) {
    v1::FollowRequest request;
    request.set_consumer(kConsumer);
    std::unique_ptr<grpc::ClientContext> context = Context(absl::Seconds(60));
    {
      absl::MutexLock lock(&context_mu_);
      if (stop_.load()) return;
      context_ = context.get();
    }
    auto reader = stub->Follow(context.get(), request);
    v1::FollowMessage message;
    bool first = true;
    while (!stop_.load() && reader->Read(&message)) {
      if (message.has_caught_up()) {
        absl::MutexLock lock(&mu_);
        caught_up_ = std::max(caught_up_, message.caught_up().head_position());
        continue;
      }
      const uint64_t position = message.event().position();
      if (first) NoteResume(position);
      first = false;
      if (!Handle(position)) break;
      if (position % kAckEvery == 0) AckThrough(stub, position);
    }
    context->TryCancel();
    reader->Finish();
    absl::MutexLock lock(&context_mu_);
    context_ = nullptr;
  }

  void NoteResume(uint64_t position) {
    absl::MutexLock lock(&mu_);
    resumes_.push_back(Resume{position, last_handled_, confirmed_ack_});
  }

  // False (and a problem noted) on an event out of order.
  bool Handle(uint64_t position) {
    absl::MutexLock lock(&mu_);
    if (position > last_handled_ + 1) {
      problems_.push_back(absl::StrCat("skipped: got ", position, " after ", last_handled_));
      return false;
    }
    if (!handled_.insert(position).second) ++repeats_;
    last_handled_ = position;
    return true;
  }

  void AckThrough(v1::EventLog::Stub* stub, uint64_t position) {
    v1::AckEventsRequest ack;
    ack.set_consumer(kConsumer);
    ack.set_position(position);
    v1::AckEventsResponse response;
    if (stub->AckEvents(Context().get(), ack, &response).ok()) {
      absl::MutexLock lock(&mu_);
      confirmed_ack_ = std::max(confirmed_ack_, response.checkpoint());
    }
  }

  const std::string address_;
  std::atomic<bool> stop_{false};
  absl::Mutex context_mu_;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(context_mu_) = nullptr;  // the stream's
};

// What the consumer saw, against the head it reached.
void CheckConsumer(const Consumer& consumer, uint64_t head)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(consumer.mu_) {
  EXPECT_TRUE(consumer.problems_.empty()) << consumer.problems_.front();
  ASSERT_GT(head, 50u) << "too few events to mean anything";
  ASSERT_EQ(consumer.handled_.size(), head);
  EXPECT_EQ(*consumer.handled_.begin(), 1u);
  EXPECT_EQ(*consumer.handled_.rbegin(), head);
  EXPECT_GE(consumer.resumes_.size(), 2u) << "the consumer never had to resume";
  uint64_t max_tail = 0;
  for (const Resume& resume : consumer.resumes_) {
    // Resumed right after a stored checkpoint: never past what it handled (nothing skipped),
    // never before an ack the server confirmed (no acked event repeated).
    EXPECT_LE(resume.first, resume.handled_before + 1);
    EXPECT_GT(resume.first, resume.confirmed_ack_before);
    EXPECT_EQ((resume.first - 1) % kAckEvery, 0u) << "resumed off an ack boundary";
    max_tail = std::max(max_tail, resume.handled_before + 1 - resume.first);
  }
  std::cout << "events " << head << ", resumes " << consumer.resumes_.size() << ", repeated "
            << consumer.repeats_ << ", largest repeated tail " << max_tail << "\n";
}

class ConsumerKillTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "outreach_consumer_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    daemon_ = std::make_unique<e2e::Daemon>(dir_ + "/db", e2e::FreePort(), dir_ + "/log");
  }
  void TearDown() override {
    if (HasFailure()) std::cerr << "--- outreachd log ---\n" << daemon_->Log();
    daemon_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Creates tasks until told to stop, ignoring refusals while the server is down.
  void Write(std::atomic<bool>* stop) {
    int next = 0;
    while (!stop->load()) {
      auto stub = v1::TaskService::NewStub(e2e::Connect(daemon_->address()));
      while (!stop->load()) {
        v1::CreateTaskRequest request;
        request.set_task_id(absl::StrCat("t-", next));
        request.set_patient_id(absl::StrCat("p-", next));
        request.set_kind(v1::MANUAL);
        request.set_title("Recall");
        v1::Task task;
        grpc::Status status = stub->CreateTask(Context().get(), request, &task);
        if (status.ok() || status.error_code() == grpc::StatusCode::ALREADY_EXISTS) ++next;
        if (status.error_code() == grpc::StatusCode::UNAVAILABLE) break;
        absl::SleepFor(absl::Milliseconds(2));
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
  }

  std::string dir_;
  std::unique_ptr<e2e::Daemon> daemon_;
};

TEST_F(ConsumerKillTest, AConsumerAckingEveryTenEventsResumesAfterSigkillWithNothingSkipped) {
  std::mt19937 rng(std::random_device{}());
  daemon_->Start();
  ASSERT_TRUE(daemon_->WaitServing());
  Consumer consumer(daemon_->address());
  std::atomic<bool> stop_writing{false};
  std::thread writer([&] { Write(&stop_writing); });
  std::thread follower([&] { consumer.Run(); });
  for (int cycle = 0; cycle < 5; ++cycle) {
    absl::SleepFor(absl::Milliseconds(std::uniform_int_distribution<int>(300, 900)(rng)));
    daemon_->Stop(SIGKILL);
    daemon_->Start();
    ASSERT_TRUE(daemon_->WaitServing());
  }
  absl::SleepFor(absl::Milliseconds(300));
  stop_writing.store(true);
  writer.join();
  // The head after the last write: the consumer must reach it.
  auto events = v1::EventLog::NewStub(e2e::Connect(daemon_->address()));
  v1::ListConsumersResponse before;
  ASSERT_TRUE(events->ListConsumers(Context().get(), {}, &before).ok());
  const uint64_t head = before.head_position();
  const bool caught_up = consumer.WaitCaughtUp(head, absl::Seconds(20));
  consumer.Stop();
  follower.join();
  ASSERT_TRUE(caught_up) << "the consumer never reported caught up at " << head;

  {
    absl::MutexLock lock(&consumer.mu_);
    CheckConsumer(consumer, head);
  }
  v1::ListConsumersResponse after;
  ASSERT_TRUE(events->ListConsumers(Context().get(), {}, &after).ok());
  ASSERT_EQ(after.consumers_size(), 1);
  EXPECT_EQ(after.consumers(0).checkpoint(), head / kAckEvery * kAckEvery);
  EXPECT_EQ(after.consumers(0).lag(), head % kAckEvery);
}

}  // namespace
}  // namespace outreach
