// EventLog.SubscribeEvents through generated stubs: catch-up then live delivery, no loss and no
// repeat where catch-up turns live (with appends racing the catch-up), the task and event type
// filters, a slow subscriber, client cancellation and server shutdown.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/subscribe_events.h"
#include "tests/testing/server_fixture.h"

namespace outreach::server::testing {
namespace {

using ::testing::AnyOf;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

// One SubscribeEvents call, read on a thread of its own into a list the test can wait on.
class Subscriber {
 public:
  Subscriber(v1::EventLog::Stub* stub, const v1::SubscribeEventsRequest& request,
             absl::Duration read_delay = absl::ZeroDuration())
      : read_delay_(read_delay) {
    // A generous deadline: a stream that never ends fails the test instead of hanging it.
    context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    reader_ = stub->SubscribeEvents(&context_, request);
    thread_ = std::thread([this] { Run(); });
  }
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;
  ~Subscriber() {
    Cancel();
    thread_.join();
  }

  // True once at least `n` events have arrived (false after `timeout`, or if the stream ended).
  bool WaitFor(std::size_t n, absl::Duration timeout = absl::Seconds(20)) {
    absl::MutexLock lock(&mu_);
    auto ready = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return events_.size() >= n || finished_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    return events_.size() >= n;
  }

  // Waits for the stream to end; its status (DEADLINE_EXCEEDED-like UNKNOWN if it did not).
  grpc::Status WaitFinished(absl::Duration timeout = absl::Seconds(20)) {
    absl::MutexLock lock(&mu_);
    if (!mu_.AwaitWithTimeout(absl::Condition(&finished_), timeout)) {
      return grpc::Status(grpc::StatusCode::UNKNOWN, "the stream did not end");
    }
    return status_;
  }

  void Cancel() { context_.TryCancel(); }

  std::vector<v1::EventRecord> Events() {
    absl::MutexLock lock(&mu_);
    return events_;
  }
  std::vector<uint64_t> Positions() {
    std::vector<uint64_t> out;
    for (const v1::EventRecord& event : Events()) out.push_back(event.position());
    return out;
  }

 private:
  void Run() {
    v1::EventRecord record;
    while (reader_->Read(&record)) {
      {
        absl::MutexLock lock(&mu_);
        events_.push_back(record);
      }
      if (read_delay_ > absl::ZeroDuration()) absl::SleepFor(read_delay_);
    }
    grpc::Status status = reader_->Finish();
    absl::MutexLock lock(&mu_);
    status_ = status;
    finished_ = true;
  }

  const absl::Duration read_delay_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::EventRecord>> reader_;
  std::thread thread_;
  absl::Mutex mu_;
  std::vector<v1::EventRecord> events_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

class SubscribeEventsTest : public ServerFixture {
 protected:
  std::unique_ptr<Subscriber> Subscribe(uint64_t from_position = 0,
                                        const std::string& task_id = "",
                                        std::vector<v1::EventType> types = {},
                                        absl::Duration read_delay = absl::ZeroDuration()) {
    v1::SubscribeEventsRequest request;
    request.set_from_position(from_position);
    request.set_task_id(task_id);
    for (v1::EventType type : types) request.add_event_types(type);
    return std::make_unique<Subscriber>(events_.get(), request, read_delay);
  }

  // Log and Close on `task_id`: a ContactLogged and a TaskClosed.
  void Close(const std::string& task_id) {
    v1::LogContactRequest close;
    close.set_task_id(task_id);
    close.set_outcome(v1::LEFT_MESSAGE);
    close.set_close_task(true);
    v1::Task task;
    grpc::Status status = Log(close, &task);
    EXPECT_TRUE(status.ok()) << status.error_message();
  }

  // Creates `count` tasks "<prefix>-<i>" from `threads` threads at once.
  void CreateConcurrently(const std::string& prefix, int threads, int count) {
    std::vector<std::thread> writers;
    for (int t = 0; t < threads; ++t) {
      writers.emplace_back([this, &prefix, t, threads, count] {
        for (int i = t; i < count; i += threads) CreateManual(absl::StrCat(prefix, "-", i));
      });
    }
    for (std::thread& writer : writers) writer.join();
  }

  // Polls until the server has `n` open subscriptions (false after `timeout`): a call the client
  // has started may not have reached the server yet.
  bool WaitOpenSubscriptions(std::size_t n, absl::Duration timeout = absl::Seconds(10)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (server_->OpenSubscriptions() != n) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return true;
  }

  static std::vector<uint64_t> Range(uint64_t first, uint64_t last) {
    std::vector<uint64_t> out;
    for (uint64_t p = first; p <= last; ++p) out.push_back(p);
    return out;
  }
};

// --- Catch-up, then live --------------------------------------------------------------------

TEST_F(SubscribeEventsTest, CatchesUpFromTheLogThenDeliversNewEventsLive) {
  CreateManual("a");
  CreateManual("b");
  CreateManual("c");
  std::unique_ptr<Subscriber> subscriber = Subscribe();
  ASSERT_TRUE(subscriber->WaitFor(3));
  CreateManual("d");
  Close("a");
  ASSERT_TRUE(subscriber->WaitFor(6));
  EXPECT_THAT(subscriber->Positions(), ElementsAre(1, 2, 3, 4, 5, 6));
  std::vector<v1::EventRecord> events = subscriber->Events();
  EXPECT_EQ(events[3].task_id(), "d");
  EXPECT_TRUE(events[4].has_contact_logged());
  EXPECT_TRUE(events[5].has_task_closed());
  // The same records ReadEvents serves, hash chain and all.
  std::vector<v1::EventRecord> log = ReadEvents();
  ASSERT_EQ(log.size(), events.size());
  for (std::size_t i = 0; i < log.size(); ++i) {
    EXPECT_EQ(events[i].SerializeAsString(), log[i].SerializeAsString()) << "position " << i + 1;
  }
}

TEST_F(SubscribeEventsTest, EmptyLogDeliversTheFirstEventsLive) {
  std::unique_ptr<Subscriber> subscriber = Subscribe();
  CreateManual("a");
  CreateManual("b");
  ASSERT_TRUE(subscriber->WaitFor(2));
  EXPECT_THAT(subscriber->Positions(), ElementsAre(1, 2));
}

TEST_F(SubscribeEventsTest, FromPositionIsInclusiveAndMayLieBeyondTheHead) {
  for (const char* id : {"a", "b", "c", "d"}) CreateManual(id);
  std::unique_ptr<Subscriber> from_three = Subscribe(3);
  std::unique_ptr<Subscriber> from_six = Subscribe(6);  // the head is 4
  ASSERT_TRUE(from_three->WaitFor(2));
  CreateManual("e");
  CreateManual("f");
  CreateManual("g");
  ASSERT_TRUE(from_three->WaitFor(5));
  ASSERT_TRUE(from_six->WaitFor(2));
  EXPECT_THAT(from_three->Positions(), ElementsAre(3, 4, 5, 6, 7));
  EXPECT_THAT(from_six->Positions(), ElementsAre(6, 7));
}

// The switch-over: writers append from other threads while subscribers, started at different
// moments, are still catching up (several pages behind). Every position must arrive exactly once,
// in order, whichever way each subscriber's last catch-up read and the live head interleave.
TEST_F(SubscribeEventsTest, AppendsDuringCatchUpArriveExactlyOnceInOrder) {
  constexpr int kBefore = 3 * static_cast<int>(SubscriptionHub::kPageSize) + 17;
  constexpr int kDuring = 400;
  CreateConcurrently("before", 4, kBefore);

  std::vector<std::unique_ptr<Subscriber>> subscribers;
  std::atomic<bool> writing{true};
  std::thread writers([&] {
    CreateConcurrently("during", 4, kDuring);
    writing = false;
  });
  subscribers.push_back(Subscribe());
  subscribers.push_back(Subscribe(1, "", {}, absl::Microseconds(200)));  // a slow reader too
  for (int i = 0; i < 3 && writing; ++i) {
    absl::SleepFor(absl::Milliseconds(30));
    subscribers.push_back(Subscribe(static_cast<uint64_t>(i * 100)));
  }
  writers.join();

  const uint64_t head = kBefore + kDuring;
  ASSERT_EQ(store_->HeadPosition(), head);
  for (std::size_t s = 0; s < subscribers.size(); ++s) {
    Subscriber& subscriber = *subscribers[s];
    const uint64_t first = s < 2 ? 1 : std::max<uint64_t>((s - 2) * 100, 1);
    ASSERT_TRUE(subscriber.WaitFor(head - first + 1, absl::Seconds(30)))
        << "subscriber " << s << " got " << subscriber.Events().size();
    // Nothing beyond the head, nothing twice, nothing missing.
    absl::SleepFor(absl::Milliseconds(50));
    EXPECT_THAT(subscriber.Positions(), ElementsAreArray(Range(first, head)))
        << "subscriber " << s;
  }
}

TEST_F(SubscribeEventsTest, SlowSubscriberLagsThenReceivesEverythingInOrder) {
  // Reads one event per 2 ms while 600 are appended: it falls behind the log, and the server
  // reads its events from the log when it gets to them instead of holding them.
  std::unique_ptr<Subscriber> slow = Subscribe(0, "", {}, absl::Milliseconds(2));
  CreateConcurrently("t", 4, 600);
  ASSERT_TRUE(slow->WaitFor(600, absl::Seconds(30)));
  EXPECT_THAT(slow->Positions(), ElementsAreArray(Range(1, 600)));
}

// --- Filters ------------------------------------------------------------------------------------

TEST_F(SubscribeEventsTest, TaskIdFilterDeliversOnlyThatTasksEvents) {
  CreateManual("a");
  CreateManual("b");  // 2
  std::unique_ptr<Subscriber> subscriber = Subscribe(0, "b");
  ASSERT_TRUE(subscriber->WaitFor(1));
  Close("a");  // 3, 4
  CreateManual("c");
  v1::Task task;
  ASSERT_TRUE(Log(LogContactRequest("b"), &task).ok());  // 6
  Close("b");                                            // 7, 8
  ASSERT_TRUE(subscriber->WaitFor(4));
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_THAT(subscriber->Positions(), ElementsAre(2, 6, 7, 8));
  for (const v1::EventRecord& event : subscriber->Events()) EXPECT_EQ(event.task_id(), "b");
}

TEST_F(SubscribeEventsTest, TaskIdFilterFromAPositionSkipsEarlierEventsOfTheTask) {
  CreateManual("a");  // 1
  Close("a");         // 2, 3
  std::unique_ptr<Subscriber> subscriber = Subscribe(3, "a");
  ASSERT_TRUE(subscriber->WaitFor(1));
  CreateManual("b");
  std::unique_ptr<Subscriber> unknown = Subscribe(0, "not-yet");
  CreateManual("not-yet");  // 5
  ASSERT_TRUE(unknown->WaitFor(1));
  EXPECT_THAT(subscriber->Positions(), ElementsAre(3));
  EXPECT_THAT(unknown->Positions(), ElementsAre(5));
}

TEST_F(SubscribeEventsTest, EventTypeFilterDeliversOnlyThoseTypes) {
  CreateManual("a");  // 1
  Close("a");         // 2, 3
  std::unique_ptr<Subscriber> closed = Subscribe(0, "", {v1::TASK_CLOSED});
  std::unique_ptr<Subscriber> created_or_closed =
      Subscribe(0, "", {v1::TASK_CREATED, v1::TASK_CLOSED});
  CreateManual("b");  // 4
  Close("b");         // 5, 6
  ASSERT_TRUE(closed->WaitFor(2));
  ASSERT_TRUE(created_or_closed->WaitFor(4));
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_THAT(closed->Positions(), ElementsAre(3, 6));
  for (const v1::EventRecord& event : closed->Events()) EXPECT_TRUE(event.has_task_closed());
  EXPECT_THAT(created_or_closed->Positions(), ElementsAre(1, 3, 4, 6));
}

TEST_F(SubscribeEventsTest, TaskAndTypeFiltersCombine) {
  CreateManual("a");
  CreateManual("b");
  std::unique_ptr<Subscriber> subscriber = Subscribe(0, "b", {v1::CONTACT_LOGGED});
  Close("a");  // 3, 4
  Close("b");  // 5, 6
  ASSERT_TRUE(subscriber->WaitFor(1));
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_THAT(subscriber->Positions(), ElementsAre(5));
}

TEST_F(SubscribeEventsTest, UnknownEventTypeIsInvalidArgument) {
  v1::SubscribeEventsRequest request;
  request.add_event_types(v1::TASK_CREATED);
  request.add_event_types(static_cast<v1::EventType>(42));
  Subscriber subscriber(events_.get(), request);
  grpc::Status status = subscriber.WaitFinished();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("event_types[1]"));

  v1::SubscribeEventsRequest unspecified;
  unspecified.add_event_types(v1::EVENT_TYPE_UNSPECIFIED);
  Subscriber second(events_.get(), unspecified);
  EXPECT_EQ(second.WaitFinished().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// The list of types comes from domain/events.h; the message reads as it always has.
TEST_F(SubscribeEventsTest, UnknownEventTypeMessageListsEveryType) {
  v1::SubscribeEventsRequest request;
  request.add_event_types(static_cast<v1::EventType>(42));
  Subscriber subscriber(events_.get(), request);
  grpc::Status status = subscriber.WaitFinished();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "event_types[0]: 42 is not an event type (TASK_CREATED, CONTACT_LOGGED, TASK_CLOSED, "
            "TASK_ASSIGNED, CONTACT_PREFERENCE_SET or PATIENT_ERASED)");
}

TEST_F(SubscribeEventsTest, MalformedTaskIdIsInvalidArgument) {
  v1::SubscribeEventsRequest request;
  request.set_task_id("no spaces allowed");
  Subscriber subscriber(events_.get(), request);
  grpc::Status status = subscriber.WaitFinished();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("task_id"));
}

// --- Ending -------------------------------------------------------------------------------------

TEST_F(SubscribeEventsTest, CancelEndsAnIdleStream) {
  CreateManual("a");
  std::unique_ptr<Subscriber> subscriber = Subscribe();
  ASSERT_TRUE(subscriber->WaitFor(1));
  EXPECT_EQ(server_->OpenSubscriptions(), 1u);
  subscriber->Cancel();
  EXPECT_EQ(subscriber->WaitFinished(absl::Seconds(5)).error_code(), grpc::StatusCode::CANCELLED);
  // The server let go of it (listener removed, reactor done), and keeps serving.
  EXPECT_TRUE(WaitOpenSubscriptions(0));
  CreateManual("b");
  EXPECT_EQ(ReadEvents().size(), 2u);
}

TEST_F(SubscribeEventsTest, CancelEndsAStreamThatIsCatchingUp) {
  CreateConcurrently("t", 4, 300);
  std::unique_ptr<Subscriber> subscriber = Subscribe(0, "", {}, absl::Milliseconds(5));
  ASSERT_TRUE(subscriber->WaitFor(1));
  subscriber->Cancel();
  EXPECT_EQ(subscriber->WaitFinished(absl::Seconds(5)).error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(WaitOpenSubscriptions(0));
  EXPECT_LT(subscriber->Events().size(), 300u);
}

TEST_F(SubscribeEventsTest, ServerShutdownEndsOpenStreamsPromptly) {
  CreateManual("a");
  std::vector<std::unique_ptr<Subscriber>> subscribers;
  for (int i = 0; i < 3; ++i) subscribers.push_back(Subscribe());
  subscribers.push_back(Subscribe(0, "a", {v1::TASK_CLOSED}));  // idle, nothing delivered yet
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(subscribers[i]->WaitFor(1));
  ASSERT_TRUE(WaitOpenSubscriptions(4));

  const absl::Time start = absl::Now();
  server_->Shutdown(absl::Seconds(30));
  const absl::Duration took = absl::Now() - start;
  // Well before the deadline: the streams were ended, not cancelled at the deadline.
  EXPECT_LT(took, absl::Seconds(3));
  for (std::unique_ptr<Subscriber>& subscriber : subscribers) {
    grpc::Status status = subscriber->WaitFinished(absl::Seconds(5));
    EXPECT_THAT(status.error_code(), AnyOf(grpc::StatusCode::UNAVAILABLE, grpc::StatusCode::OK))
        << status.error_message();
    if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
      EXPECT_THAT(status.error_message(), HasSubstr("resubscribe from_position"));
    }
  }
  EXPECT_EQ(server_->OpenSubscriptions(), 0u);
}

TEST_F(SubscribeEventsTest, ShutdownNamesThePositionToResubscribeFrom) {
  CreateManual("a");
  CreateManual("b");
  std::unique_ptr<Subscriber> subscriber = Subscribe();
  ASSERT_TRUE(subscriber->WaitFor(2));
  server_->Shutdown(absl::Seconds(30));
  grpc::Status status = subscriber->WaitFinished(absl::Seconds(5));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("resubscribe from_position 3"));
}

}  // namespace
}  // namespace outreach::server::testing
