// The head as followers see it (store/head_publisher.h): waiters wake on a publish past their
// position or at Close, listeners are called on each publish and never after their removal.
#include "store/head_publisher.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace outreach::store {
namespace {

TEST(HeadPublisherTest, AWaiterWakesOnlyOnceTheHeadPassesItsPosition) {
  HeadPublisher head;
  EXPECT_EQ(head.Head(), 0u);
  EXPECT_FALSE(head.WaitForHeadAbove(0, absl::Milliseconds(1)));
  std::atomic<bool> woke{false};
  std::thread waiter([&] { woke = head.WaitForHeadAbove(5, absl::Seconds(60)); });
  head.Publish(5);  // not above 5: the waiter keeps waiting
  head.Publish(6);
  waiter.join();
  EXPECT_TRUE(woke);
  EXPECT_EQ(head.Head(), 6u);
  EXPECT_TRUE(head.WaitForHeadAbove(5, absl::ZeroDuration()));
}

TEST(HeadPublisherTest, ListenersHearEveryPublishUntilRemoved) {
  HeadPublisher head;
  std::vector<uint64_t> heard;
  const HeadPublisher::ListenerId id = head.AddListener([&](uint64_t h) { heard.push_back(h); });
  head.Publish(1);
  head.Publish(3);
  head.RemoveListener(id);
  head.Publish(4);
  EXPECT_EQ(heard, (std::vector<uint64_t>{1, 3}));
}

TEST(HeadPublisherTest, CloseWakesEveryWaiterAndLaterWaitsReturnAtOnce) {
  HeadPublisher head;
  head.Publish(2);
  std::vector<std::thread> waiters;
  std::atomic<int> returned{0};
  for (int i = 0; i < 4; ++i) {
    waiters.emplace_back([&] {
      EXPECT_FALSE(head.WaitForHeadAbove(10, absl::Hours(1)));
      ++returned;
    });
  }
  absl::SleepFor(absl::Milliseconds(50));  // (a waiter not yet waiting returns at once too)
  head.Close();
  for (std::thread& t : waiters) t.join();  // none waits out its hour
  EXPECT_EQ(returned.load(), 4);
  EXPECT_FALSE(head.WaitForHeadAbove(10, absl::Hours(1)));
  EXPECT_TRUE(head.WaitForHeadAbove(1, absl::Hours(1)));
}

}  // namespace
}  // namespace outreach::store
