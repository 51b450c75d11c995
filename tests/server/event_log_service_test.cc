// EventLog through generated stubs: ReadEvents (whole log, one task, from a position, limits,
// many batches) and VerifyLog.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testing/server_fixture.h"

namespace outreach::server::testing {
namespace {

class EventLogServiceTest : public ServerFixture {
 protected:
  // Two tasks with interleaved events: a(1) b(2) a(3) b(4) b(5): b is logged and closed.
  void MakeTwoTasks() {
    CreateManual("a");
    CreateManual("b");
    v1::Task task;
    ASSERT_TRUE(Log(LogContactRequest("a"), &task).ok());
    v1::LogContactRequest close;
    close.set_task_id("b");
    close.set_outcome(v1::LEFT_MESSAGE);
    close.set_close_task(true);
    ASSERT_TRUE(Log(close, &task).ok());
  }

  static std::vector<uint64_t> Positions(const std::vector<v1::EventRecord>& events) {
    std::vector<uint64_t> out;
    for (const v1::EventRecord& e : events) out.push_back(e.position());
    return out;
  }
};

using ::testing::AnyOf;
using ::testing::ElementsAre;

TEST_F(EventLogServiceTest, EmptyLogStreamsNothingAndVerifies) {
  EXPECT_TRUE(ReadEvents().empty());
  v1::VerifyLogResponse verify = Verify();
  EXPECT_TRUE(verify.ok());
  EXPECT_EQ(verify.events_checked(), 0u);
  EXPECT_EQ(verify.head_position(), 0u);
}

TEST_F(EventLogServiceTest, ReadEventsStreamsTheWholeLogInPositionOrder) {
  MakeTwoTasks();
  std::vector<v1::EventRecord> events = ReadEvents();
  EXPECT_THAT(Positions(events), ElementsAre(1, 2, 3, 4, 5));
  EXPECT_EQ(events[0].task_id(), "a");
  EXPECT_EQ(events[1].task_id(), "b");
  EXPECT_TRUE(events[3].has_contact_logged());
  EXPECT_TRUE(events[4].has_task_closed());
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_FALSE(events[i].event_id().empty());
    EXPECT_EQ(events[i].hash().size(), 32u);
    if (i > 0) {
      EXPECT_EQ(events[i].prev_hash(), events[i - 1].hash()) << "position " << i + 1;
    }
  }
  EXPECT_EQ(events[0].prev_hash(), std::string(32, '\0'));
}

TEST_F(EventLogServiceTest, ReadEventsOfOneTaskStreamsItsVersionsInOrder) {
  MakeTwoTasks();
  std::vector<v1::EventRecord> b = ReadEvents(0, "b");
  EXPECT_THAT(Positions(b), ElementsAre(2, 4, 5));
  for (std::size_t i = 0; i < b.size(); ++i) {
    EXPECT_EQ(b[i].task_id(), "b");
    EXPECT_EQ(b[i].version(), static_cast<int64_t>(i + 1));
  }
  EXPECT_TRUE(ReadEvents(0, "unknown-task").empty());
}

TEST_F(EventLogServiceTest, ReadEventsStartsAtFromPositionInclusive) {
  MakeTwoTasks();
  EXPECT_THAT(Positions(ReadEvents(3)), ElementsAre(3, 4, 5));
  EXPECT_THAT(Positions(ReadEvents(3, "b")), ElementsAre(4, 5));
  EXPECT_TRUE(ReadEvents(6).empty());
}

TEST_F(EventLogServiceTest, ReadEventsStopsAfterMaxCount) {
  MakeTwoTasks();
  EXPECT_THAT(Positions(ReadEvents(0, "", 2)), ElementsAre(1, 2));
  EXPECT_THAT(Positions(ReadEvents(2, "b", 1)), ElementsAre(2));
  EXPECT_THAT(Positions(ReadEvents(4, "", 100)), ElementsAre(4, 5));
}

TEST_F(EventLogServiceTest, ReadEventsStreamsAcrossManyBatches) {
  const int kTasks = 300;  // more than one batch of EventLogService::kReadBatch
  static_assert(kTasks > static_cast<int>(EventLogService::kReadBatch));
  for (int i = 0; i < kTasks; ++i) CreateManual("t" + std::to_string(i));
  std::vector<v1::EventRecord> all = ReadEvents();
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kTasks));
  for (int i = 0; i < kTasks; ++i) EXPECT_EQ(all[i].position(), static_cast<uint64_t>(i + 1));
  EXPECT_EQ(ReadEvents(0, "", 257).size(), 257u);
  EXPECT_EQ(ReadEvents(10, "", 256).back().position(), 265u);
}

TEST_F(EventLogServiceTest, CancelledReadEventsEndsCleanly) {
  for (int i = 0; i < 40; ++i) CreateManual("t" + std::to_string(i));
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<v1::EventRecord>> reader =
      events_->ReadEvents(&context, v1::ReadEventsRequest());
  v1::EventRecord record;
  ASSERT_TRUE(reader->Read(&record));
  context.TryCancel();
  while (reader->Read(&record)) {
  }
  // CANCELLED, unless the whole stream had already arrived before the cancel.
  EXPECT_THAT(reader->Finish().error_code(),
              AnyOf(grpc::StatusCode::CANCELLED, grpc::StatusCode::OK));
  // The server is still fine, and shuts down promptly in TearDown.
  EXPECT_EQ(ReadEvents().size(), 40u);
}

TEST_F(EventLogServiceTest, VerifyLogReportsTheHead) {
  MakeTwoTasks();
  std::vector<v1::EventRecord> events = ReadEvents();
  v1::VerifyLogResponse verify = Verify();
  EXPECT_TRUE(verify.ok());
  EXPECT_EQ(verify.events_checked(), 5u);
  EXPECT_EQ(verify.head_position(), 5u);
  EXPECT_EQ(verify.first_bad_position(), 0u);
  EXPECT_EQ(verify.problem(), "");
  EXPECT_EQ(verify.head_hash(), events.back().hash());
}

}  // namespace
}  // namespace outreach::server::testing
