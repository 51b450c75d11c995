// Durable consumers through generated stubs: EventLog.Follow (events, then caught_up each time
// it reaches the head; resuming after a named consumer's checkpoint), AckEvents (monotonic,
// bounded by the head) and ListConsumers (checkpoint, lag, last ack); the checkpoints survive a
// restart and a rebuild of the projections; bad input with its exact code and nothing written.
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "store/consumer_checkpoints.h"
#include "tests/testing/server_fixture.h"

namespace outreach::server::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// One Follow call read on a thread of its own: what it has received, in order, as text
// ("e<position>" for an event, "c<head>" for a caught_up).
class Follower {
 public:
  Follower(v1::EventLog::Stub* stub, const v1::FollowRequest& request) {
    context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    reader_ = stub->Follow(&context_, request);
    thread_ = std::thread([this] { Run(); });
  }
  Follower(const Follower&) = delete;
  Follower& operator=(const Follower&) = delete;
  ~Follower() {
    context_.TryCancel();
    thread_.join();
  }

  // True once `n` messages arrived (false after `timeout` or if the stream ended).
  bool WaitFor(std::size_t n, absl::Duration timeout = absl::Seconds(20)) {
    absl::MutexLock lock(&mu_);
    auto ready = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return got_.size() >= n || finished_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    return got_.size() >= n;
  }
  grpc::Status WaitFinished() {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&finished_), absl::Seconds(20));
    return finished_ ? status_ : grpc::Status(grpc::StatusCode::UNKNOWN, "did not end");
  }
  std::vector<std::string> Got() {
    absl::MutexLock lock(&mu_);
    return got_;
  }

 private:
  void Run() {
    v1::FollowMessage message;
    while (reader_->Read(&message)) {
      absl::MutexLock lock(&mu_);
      got_.push_back(message.has_event()
                         ? "e" + std::to_string(message.event().position())
                         : "c" + std::to_string(message.caught_up().head_position()));
    }
    grpc::Status status = reader_->Finish();
    absl::MutexLock lock(&mu_);
    status_ = status;
    finished_ = true;
  }

  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::FollowMessage>> reader_;
  std::thread thread_;
  absl::Mutex mu_;
  std::vector<std::string> got_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

class FollowTest : public ServerFixture {
 protected:
  std::unique_ptr<Follower> Follow(const std::string& consumer, uint64_t from_position = 0,
                                   const std::string& task_id = "") {
    v1::FollowRequest request;
    request.set_consumer(consumer);
    request.set_from_position(from_position);
    request.set_task_id(task_id);
    return std::make_unique<Follower>(events_.get(), request);
  }

  grpc::Status Ack(const std::string& consumer, uint64_t position,
                   v1::AckEventsResponse* response = nullptr) {
    v1::AckEventsRequest request;
    request.set_consumer(consumer);
    request.set_position(position);
    v1::AckEventsResponse ignored;
    return events_->AckEvents(Context().get(), request, response ? response : &ignored);
  }

  v1::ListConsumersResponse Consumers() {
    v1::ListConsumersResponse response;
    grpc::Status status =
        events_->ListConsumers(Context().get(), v1::ListConsumersRequest(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  // The stream's first message's status after a bad request (it ends at once).
  grpc::Status FollowStatus(const v1::FollowRequest& request) {
    Follower follower(events_.get(), request);
    return follower.WaitFinished();
  }
};

TEST_F(FollowTest, DeliversTheLogThenCaughtUpThenLiveEventsThenCaughtUpAgain) {
  CreateManual("a");
  CreateManual("b");
  std::unique_ptr<Follower> follower = Follow("");
  ASSERT_TRUE(follower->WaitFor(3));
  EXPECT_THAT(follower->Got(), ElementsAre("e1", "e2", "c2"));
  CreateManual("c");
  ASSERT_TRUE(follower->WaitFor(5));
  EXPECT_THAT(follower->Got(), ElementsAre("e1", "e2", "c2", "e3", "c3"));
}

TEST_F(FollowTest, CaughtUpComesOncePerHeadEvenWhenTheFilterSkipsNewEvents) {
  CreateManual("a");
  CreateManual("b");
  std::unique_ptr<Follower> follower = Follow("", 0, "a");
  ASSERT_TRUE(follower->WaitFor(2));
  CreateManual("c");  // not task a: nothing to deliver, but the head moved: caught up at 3
  ASSERT_TRUE(follower->WaitFor(3));
  EXPECT_THAT(follower->Got(), ElementsAre("e1", "c2", "c3"));
}

TEST_F(FollowTest, AckIsMonotonicAndListConsumersShowsCheckpointLagAndAckTime) {
  for (const char* id : {"a", "b", "c", "d"}) CreateManual(id);
  v1::AckEventsResponse response;
  ASSERT_TRUE(Ack("billing", 3, &response).ok());
  EXPECT_EQ(response.checkpoint(), 3u);
  EXPECT_TRUE(response.advanced());
  ASSERT_TRUE(Ack("billing", 2, &response).ok());  // lower: ignored
  EXPECT_EQ(response.checkpoint(), 3u);
  EXPECT_FALSE(response.advanced());
  ASSERT_TRUE(Ack("analytics", 1).ok());
  v1::ListConsumersResponse listed = Consumers();
  EXPECT_EQ(listed.head_position(), 4u);
  ASSERT_EQ(listed.consumers_size(), 2);
  EXPECT_EQ(listed.consumers(0).name(), "analytics");
  EXPECT_EQ(listed.consumers(0).lag(), 3u);
  EXPECT_EQ(listed.consumers(1).name(), "billing");
  EXPECT_EQ(listed.consumers(1).checkpoint(), 3u);
  EXPECT_EQ(listed.consumers(1).lag(), 1u);
  EXPECT_EQ(domain::FromProto(listed.consumers(1).last_ack_time()), clock_.Now());
}

TEST_F(FollowTest, ANamedConsumerResumesAfterItsCheckpoint) {
  for (const char* id : {"a", "b", "c", "d"}) CreateManual(id);
  ASSERT_TRUE(Ack("billing", 2).ok());
  std::unique_ptr<Follower> follower = Follow("billing");
  ASSERT_TRUE(follower->WaitFor(3));
  EXPECT_THAT(follower->Got(), ElementsAre("e3", "e4", "c4"));
  // A consumer that never acked starts at 1; an explicit from_position wins over a checkpoint.
  std::unique_ptr<Follower> fresh = Follow("new-consumer");
  ASSERT_TRUE(fresh->WaitFor(5));
  EXPECT_THAT(fresh->Got(), ElementsAre("e1", "e2", "e3", "e4", "c4"));
  std::unique_ptr<Follower> explicit_start = Follow("billing", 4);
  ASSERT_TRUE(explicit_start->WaitFor(2));
  EXPECT_THAT(explicit_start->Got(), ElementsAre("e4", "c4"));
}

TEST_F(FollowTest, CheckpointsSurviveARestartAndARebuildOfTheProjections) {
  for (const char* id : {"a", "b", "c"}) CreateManual(id);
  ASSERT_TRUE(Ack("billing", 2).ok());
  ASSERT_NO_FATAL_FAILURE(Restart());
  ASSERT_TRUE(store_->RebuildProjections().ok());
  v1::ListConsumersResponse listed = Consumers();
  ASSERT_EQ(listed.consumers_size(), 1);
  EXPECT_EQ(listed.consumers(0).checkpoint(), 2u);
  std::unique_ptr<Follower> follower = Follow("billing");
  ASSERT_TRUE(follower->WaitFor(2));
  EXPECT_THAT(follower->Got(), ElementsAre("e3", "c3"));
}

// --- Bad input: the exact code, and nothing stored ------------------------------------------

TEST_F(FollowTest, BadAcksAreRefusedWithTheirCodeAndStoreNothing) {
  CreateManual("a");
  ASSERT_TRUE(Ack("billing", 1).ok());
  const std::string before = Consumers().DebugString();
  struct Case {
    std::string consumer;
    uint64_t position;
    grpc::StatusCode code;
    std::string field;
  };
  const Case cases[] = {
      {"", 1, grpc::StatusCode::INVALID_ARGUMENT, "consumer"},
      {"bad name", 1, grpc::StatusCode::INVALID_ARGUMENT, "consumer"},
      {std::string(65, 'x'), 1, grpc::StatusCode::INVALID_ARGUMENT, "consumer"},
      {"billing", 0, grpc::StatusCode::INVALID_ARGUMENT, "position"},
      {"billing", 2, grpc::StatusCode::OUT_OF_RANGE, "position"},  // the head is 1
      {"other", 99, grpc::StatusCode::OUT_OF_RANGE, "position"},
  };
  for (const Case& c : cases) {
    grpc::Status status = Ack(c.consumer, c.position);
    EXPECT_EQ(status.error_code(), c.code) << c.consumer << " " << c.position;
    EXPECT_THAT(status.error_message(), HasSubstr(c.field));
  }
  EXPECT_EQ(Consumers().DebugString(), before);
  EXPECT_EQ(store_->HeadPosition(), 1u);
}

TEST_F(FollowTest, BadFollowRequestsEndWithTheirCode) {
  CreateManual("a");
  v1::FollowRequest bad_consumer;
  bad_consumer.set_consumer("no spaces");
  grpc::Status status = FollowStatus(bad_consumer);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("consumer"));
  v1::FollowRequest bad_task;
  bad_task.set_task_id("a/b");
  status = FollowStatus(bad_task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("task_id"));
  v1::FollowRequest bad_type;
  bad_type.add_event_types(v1::EVENT_TYPE_UNSPECIFIED);
  status = FollowStatus(bad_type);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("event_types[0]"));
  EXPECT_EQ(Consumers().consumers_size(), 0);
  EXPECT_EQ(store_->HeadPosition(), 1u);
}

}  // namespace
}  // namespace outreach::server::testing
