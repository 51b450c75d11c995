// The group-commit queue (store/group_commit.h): batching, results in order, callbacks on the
// completion thread, the tick, Pause/Unpause, RunOnWriter and Stop.
#include "store/group_commit.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/clock.h"
#include "tests/testing/writer_gate.h"

namespace outreach::store {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

using IntCommit = GroupCommit<int, absl::StatusOr<int>>;

// A generous bound for a wait that only a bug makes long: the test fails instead of hanging.
constexpr absl::Duration kStuck = absl::Seconds(60);

// What the writer and the callbacks did, in the order they did it. Thread-safe.
class CommitTrace {
 public:
  // A `process` that notes each batch and the writer's thread, and answers item * 10.
  IntCommit::Process Process() {
    return [this](std::vector<int>& items) {
      std::vector<absl::StatusOr<int>> results;
      absl::MutexLock lock(&mu_);
      writer_ = std::this_thread::get_id();
      batches_.push_back(items);
      for (int item : items) {
        events_.push_back(absl::StrCat("process ", item));
        results.emplace_back(item * 10);
      }
      return results;
    };
  }
  // A `done` that notes its item, its result and its thread.
  IntCommit::Done Done(int item) {
    return [this, item](absl::StatusOr<int> result) {
      absl::MutexLock lock(&mu_);
      done_threads_.push_back(std::this_thread::get_id());
      events_.push_back(
          result.ok() ? absl::StrCat("done ", item, " = ", *result)
                      : absl::StrCat("done ", item, ": ",
                                     absl::StatusCodeToString(result.status().code())));
    };
  }
  void Note(std::string event) {
    absl::MutexLock lock(&mu_);
    events_.push_back(std::move(event));
  }

  std::vector<std::vector<int>> batches() const {
    absl::MutexLock lock(&mu_);
    return batches_;
  }
  std::vector<std::string> events() const {
    absl::MutexLock lock(&mu_);
    return events_;
  }
  std::thread::id writer() const {
    absl::MutexLock lock(&mu_);
    return writer_;
  }
  std::vector<std::thread::id> done_threads() const {
    absl::MutexLock lock(&mu_);
    return done_threads_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::vector<int>> batches_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> events_ ABSL_GUARDED_BY(mu_);
  std::thread::id writer_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread::id> done_threads_ ABSL_GUARDED_BY(mu_);
};

GroupCommitOptions GatedOptions(outreach::testing::WriterGate& gate) {
  GroupCommitOptions options;
  options.before_batch = gate.Hook();
  return options;
}

TEST(GroupCommitTest, ItemsQueuedWhileTheWriterIsHeldMakeOneBatch) {
  CommitTrace trace;
  outreach::testing::WriterGate gate;
  IntCommit commit(trace.Process(), GatedOptions(gate));
  gate.HoldNextBatch();
  commit.Submit(1, trace.Done(1));
  gate.WaitUntilHeld();  // the writer has taken {1} and waits before processing it
  commit.Submit(2, trace.Done(2));
  commit.Submit(3, trace.Done(3));
  std::vector<std::pair<int, IntCommit::Done>> two;
  two.emplace_back(4, trace.Done(4));
  two.emplace_back(5, trace.Done(5));
  commit.Submit(std::move(two));
  gate.Release();
  commit.Stop();
  EXPECT_THAT(gate.batch_sizes(), ElementsAre(1, 4));
  EXPECT_THAT(trace.batches(), ElementsAre(ElementsAre(1), ElementsAre(2, 3, 4, 5)));
}

TEST(GroupCommitTest, ABatchHoldsAtMostMaxBatchItems) {
  CommitTrace trace;
  outreach::testing::WriterGate gate;
  GroupCommitOptions options = GatedOptions(gate);
  options.max_batch = 2;
  IntCommit commit(trace.Process(), std::move(options));
  gate.HoldNextBatch();
  commit.Submit(1, trace.Done(1));
  gate.WaitUntilHeld();
  for (int item = 2; item <= 6; ++item) commit.Submit(item, trace.Done(item));
  gate.Release();
  commit.Stop();
  EXPECT_THAT(trace.batches(),
              ElementsAre(ElementsAre(1), ElementsAre(2, 3), ElementsAre(4, 5), ElementsAre(6)));
}

TEST(GroupCommitTest, EachDoneGetsItsOwnResultInSubmissionOrder) {
  // Odd items fail, so that a result handed to the wrong `done` shows.
  IntCommit commit(
      [](std::vector<int>& items) {
        std::vector<absl::StatusOr<int>> results;
        for (int item : items) {
          if (item % 2 == 1) {
            results.emplace_back(absl::AbortedError(absl::StrCat("odd ", item)));
          } else {
            results.emplace_back(item * 10);
          }
        }
        return results;
      },
      GroupCommitOptions{.max_batch = 7});
  absl::Mutex mu;
  std::vector<std::string> answers;
  std::vector<std::string> expected;
  for (int item = 0; item < 200; ++item) {
    commit.Submit(item, [&mu, &answers, item](absl::StatusOr<int> result) {
      absl::MutexLock lock(&mu);
      answers.push_back(result.ok() ? absl::StrCat(item, " = ", *result)
                                    : absl::StrCat(item, ": ", result.status().message()));
    });
    expected.push_back(item % 2 == 1 ? absl::StrCat(item, ": odd ", item)
                                     : absl::StrCat(item, " = ", item * 10));
  }
  commit.Stop();
  absl::MutexLock lock(&mu);
  EXPECT_EQ(answers, expected);
}

TEST(GroupCommitTest, DonesRunOffTheWriterWhichGoesOnWhileOneBlocks) {
  CommitTrace trace;
  absl::Notification first_done_started;
  absl::Notification release_first_done;
  absl::Notification second_processed;
  IntCommit::Process process = trace.Process();
  IntCommit commit(
      [&](std::vector<int>& items) {
        std::vector<absl::StatusOr<int>> results = process(items);
        if (items.back() == 2) second_processed.Notify();
        return results;
      },
      GroupCommitOptions{});
  IntCommit::Done first = trace.Done(1);
  commit.Submit(1, [&, first = std::move(first)](absl::StatusOr<int> result) mutable {
    first_done_started.Notify();
    release_first_done.WaitForNotification();
    std::move(first)(std::move(result));
  });
  ASSERT_TRUE(first_done_started.WaitForNotificationWithTimeout(kStuck));
  commit.Submit(2, trace.Done(2));
  // Item 1's `done` still blocks: the writer processes item 2 all the same.
  const bool went_on = second_processed.WaitForNotificationWithTimeout(kStuck);
  release_first_done.Notify();
  commit.Stop();
  EXPECT_TRUE(went_on);
  EXPECT_THAT(trace.events(), ElementsAre("process 1", "process 2", "done 1 = 10", "done 2 = 20"));
  ASSERT_EQ(trace.done_threads().size(), 2u);
  EXPECT_NE(trace.done_threads()[0], trace.writer());
  EXPECT_EQ(trace.done_threads()[0], trace.done_threads()[1]);
}

TEST(GroupCommitTest, TickRunsOnTheWriterWhileIdle) {
  CommitTrace trace;
  absl::Mutex mu;
  int ticks = 0;
  std::thread::id tick_thread;
  GroupCommitOptions options;
  options.tick_every = absl::Milliseconds(1);
  options.tick = [&] {
    absl::MutexLock lock(&mu);
    ++ticks;
    tick_thread = std::this_thread::get_id();
  };
  IntCommit commit(trace.Process(), std::move(options));
  {
    absl::MutexLock lock(&mu);
    // Nothing is submitted: only the writer's wake-ups run the tick.
    EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(+[](int* n) { return *n >= 3; }, &ticks),
                                    kStuck));
  }
  std::thread::id writer;
  ASSERT_TRUE(commit.RunOnWriter([&] { writer = std::this_thread::get_id(); }).ok());
  commit.Stop();
  absl::MutexLock lock(&mu);
  EXPECT_EQ(tick_thread, writer);
  EXPECT_THAT(trace.batches(), IsEmpty());
}

TEST(GroupCommitTest, TickRunsAtStartThenOnlyOnceTheClockHasMovedTickEvery) {
  FakeClock clock(absl::FromUnixSeconds(1767225600));
  std::atomic<int> ticks{0};
  absl::Notification second_tick;
  GroupCommitOptions options;
  options.clock = &clock;
  options.tick_every = absl::Milliseconds(1);
  options.tick = [&] {
    if (++ticks == 2) second_tick.Notify();
  };
  CommitTrace trace;
  IntCommit commit(trace.Process(), std::move(options));
  // Each RunOnWriter returns after its round began; the second's round follows the first's whole
  // round, tick included.
  ASSERT_TRUE(commit.RunOnWriter([] {}).ok());
  ASSERT_TRUE(commit.RunOnWriter([] {}).ok());
  ASSERT_TRUE(commit.RunOnWriter([] {}).ok());
  EXPECT_EQ(ticks.load(), 1);  // at start; the fake clock has not moved since
  clock.Advance(absl::Milliseconds(1));
  EXPECT_TRUE(second_tick.WaitForNotificationWithTimeout(kStuck));
  commit.Stop();
  EXPECT_EQ(ticks.load(), 2);
}

TEST(GroupCommitTest, PauseWaitsForEarlierItemsAndHoldsLaterOnesUntilUnpause) {
  CommitTrace trace;
  outreach::testing::WriterGate gate;
  IntCommit commit(trace.Process(), GatedOptions(gate));
  gate.HoldNextBatch();
  commit.Submit(1, trace.Done(1));
  gate.WaitUntilHeld();  // item 1 is taken, not yet processed
  absl::Notification pausing;
  std::thread pauser([&] {
    pausing.Notify();
    commit.Pause();
    trace.Note("paused");
  });
  pausing.WaitForNotification();
  gate.Release();
  pauser.join();
  commit.Submit(2, trace.Done(2));
  // Two whole writer rounds: had item 2 been free to take, the first would have processed it.
  ASSERT_TRUE(commit.RunOnWriter([] {}).ok());
  ASSERT_TRUE(commit.RunOnWriter([] {}).ok());
  EXPECT_THAT(trace.events(), ElementsAre("process 1", "done 1 = 10", "paused"));
  commit.Unpause();
  commit.Stop();
  EXPECT_THAT(trace.events(), ElementsAre("process 1", "done 1 = 10", "paused", "process 2",
                                          "done 2 = 20"));
}

TEST(GroupCommitTest, RunOnWriterRunsOnTheWriterWhilePaused) {
  CommitTrace trace;
  IntCommit commit(trace.Process(), GroupCommitOptions{});
  commit.Submit(1, trace.Done(1));
  commit.Pause();  // item 1 is processed: trace.writer() is known
  std::thread::id ran_on;
  EXPECT_TRUE(commit.RunOnWriter([&] { ran_on = std::this_thread::get_id(); }).ok());
  EXPECT_EQ(ran_on, trace.writer());
  commit.Unpause();
}

TEST(GroupCommitTest, StopAnswersEveryQueuedItemAndRefusesLaterOnes) {
  CommitTrace trace;
  outreach::testing::WriterGate gate;
  GroupCommitOptions options = GatedOptions(gate);
  options.refusal = absl::FailedPreconditionError("closed");
  IntCommit commit(trace.Process(), std::move(options));
  gate.HoldNextBatch();
  commit.Submit(1, trace.Done(1));
  gate.WaitUntilHeld();
  commit.Submit(2, trace.Done(2));
  std::thread stopper([&] { commit.Stop(); });
  // Submit until Stop() has begun: the writer is held, so only a refusal answers at once.
  int accepted = 0;
  for (int item = 100;; ++item) {
    const std::size_t before = trace.events().size();
    commit.Submit(item, trace.Done(item));
    if (trace.events().size() > before) {
      EXPECT_EQ(trace.events().back(),
                absl::StrCat("done ", item, ": ",
                             absl::StatusCodeToString(absl::StatusCode::kFailedPrecondition)));
      break;
    }
    ++accepted;
    std::this_thread::yield();
  }
  gate.Release();
  stopper.join();
  // Every item queued before Stop() was processed and answered by the time it returned.
  const std::vector<std::string> events = trace.events();
  EXPECT_EQ(events.size(), 1 + 2 * (2 + static_cast<std::size_t>(accepted)));
  EXPECT_EQ(trace.done_threads().size(), 1 + 2 + static_cast<std::size_t>(accepted));
  // Later calls are refused at once; a second Stop() (and the destructor's) does nothing.
  absl::StatusOr<int> late = 0;
  commit.Submit(7, [&late](absl::StatusOr<int> result) { late = std::move(result); });
  EXPECT_EQ(late.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(late.status().message(), "closed");
  EXPECT_EQ(commit.RunOnWriter([] {}).code(), absl::StatusCode::kFailedPrecondition);
  commit.Stop();
}

TEST(GroupCommitTest, ADoneMaySubmitAgain) {
  CommitTrace trace;
  IntCommit commit(trace.Process(), GroupCommitOptions{});
  absl::Notification second_answered;
  commit.Submit(1, [&](absl::StatusOr<int> result) {
    EXPECT_EQ(*result, 10);
    commit.Submit(2, [&](absl::StatusOr<int> again) {
      EXPECT_EQ(*again, 20);
      second_answered.Notify();
    });
  });
  EXPECT_TRUE(second_answered.WaitForNotificationWithTimeout(kStuck));
}

TEST(GroupCommitTest, AWrongResultCountFailsTheWholeBatch) {
  IntCommit commit([](std::vector<int>&) { return std::vector<absl::StatusOr<int>>(); },
                   GroupCommitOptions{});
  absl::StatusOr<int> result = 0;
  absl::Notification answered;
  commit.Submit(1, [&](absl::StatusOr<int> r) {
    result = std::move(r);
    answered.Notify();
  });
  ASSERT_TRUE(answered.WaitForNotificationWithTimeout(kStuck));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInternal);
}

TEST(GroupCommitTest, UnsharedCopyKeepsCodeMessageAndPayloads) {
  absl::Status status = absl::UnavailableError("disk full");
  status.SetPayload("type.test/detail", absl::Cord("raw cause"));
  const absl::Status copy = UnsharedCopy(status);
  EXPECT_EQ(copy, status);
  EXPECT_TRUE(UnsharedCopy(absl::OkStatus()).ok());
}

}  // namespace
}  // namespace outreach::store
