// The command processor (store/command_processor.h): its cache of committed task states, and a
// retried request that changed several streams, replayed from its record.
#include "store/command_processor.h"

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "store/keys.h"
#include "tests/testing/store_fixture.h"

namespace outreach::store {
namespace {

std::shared_ptr<const TaskState> TaskAt(const std::string& id, int64_t version) {
  auto state = std::make_shared<TaskState>();
  state->task.set_task_id(id);
  state->task.set_version(version);
  return state;
}

TEST(TaskStateCacheTest, KeepsTheMostRecentlyUsedTasksUpToItsCapacity) {
  TaskStateCache cache(2);
  cache.Put("a", TaskAt("a", 1));
  cache.Put("b", TaskAt("b", 1));
  ASSERT_NE(cache.Find("a"), nullptr);  // "a" is now the most recent: "b" goes first
  cache.Put("c", TaskAt("c", 1));
  EXPECT_EQ(cache.Find("b"), nullptr);
  ASSERT_NE(cache.Find("a"), nullptr);
  ASSERT_NE(cache.Find("c"), nullptr);
  cache.Put("a", TaskAt("a", 2));  // a newer state replaces the older one
  EXPECT_EQ(cache.Find("a")->task.version(), 2);
  cache.Clear();
  EXPECT_EQ(cache.Find("a"), nullptr);
  EXPECT_EQ(cache.Find("c"), nullptr);
}

TEST(TaskStateCacheTest, ZeroCapacityKeepsNothing) {
  TaskStateCache cache(0);
  cache.Put("a", TaskAt("a", 1));
  EXPECT_EQ(cache.Find("a"), nullptr);
}

// A state's contact bytes become the result's contacts; bytes that do not parse are DATA_LOSS,
// never a task quietly without its contacts.
TEST(CommandResultTest, MaterializeParsesTheContactsAndRefusesBytesThatDoNotParse) {
  auto state = std::make_shared<TaskState>();
  state->task.set_task_id("t1");
  v1::Contact contact;
  contact.set_notes("rang twice");
  keys::AppendContactBytes(contact, &state->contacts);
  CommandResult result;
  result.states = {state, nullptr};
  ASSERT_TRUE(result.Materialize().ok());
  ASSERT_EQ(result.tasks.size(), 2u);
  ASSERT_EQ(result.tasks[0].contacts_size(), 1);
  EXPECT_EQ(result.tasks[0].contacts(0).notes(), "rang twice");
  EXPECT_EQ(result.tasks[1].task_id(), "");  // no such task

  auto broken = std::make_shared<TaskState>(*state);
  broken->contacts.resize(broken->contacts.size() - 1);
  CommandResult bad;
  bad.states = {broken};
  EXPECT_EQ(bad.Materialize().code(), absl::StatusCode::kDataLoss);
}

class CommandProcessorTest : public testing::StoreFixture {};

// A request record that lists several streams (RequestRecord.more_streams) replays as every
// task it names, each as it was right after the request, in the record's order.
TEST_F(CommandProcessorTest, ARetriedRequestOverSeveralStreamsReturnsEachTaskAsItWas) {
  Must(testing::Create("t1"));
  Must(testing::Create("t2", "coordinator-1", v1::MANUAL, std::nullopt, "req-2"), "fp-2");
  Must(testing::Contact("t1", v1::NO_ANSWER, "2025-03-20"));  // t1 moves on to version 2
  ASSERT_NO_FATAL_FAILURE(EditRawDb([](rocksdb::DB* db, const auto& cfs) {
    storage::v1::RequestRecord record;
    record.set_fingerprint("fp-2");
    record.set_task_id("t2");
    record.set_task_version(1);
    storage::v1::StreamVersion* more = record.add_more_streams();
    more->set_task_id("t1");
    more->set_version(1);
    record.set_last_position(2);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cfs[keys::kRequests],
                        keys::RequestKey("coordinator-1", "req-2"),
                        keys::EncodeRequestRecord(record))
                    .ok());
  }));
  ASSERT_TRUE(Reopen().ok());
  const uint64_t head = store_->HeadPosition();

  absl::StatusOr<CommandResult> replay =
      Run(testing::Create("t2", "coordinator-1", v1::MANUAL, std::nullopt, "req-2"), "fp-2");
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_TRUE(replay->replayed);
  ASSERT_EQ(replay->tasks.size(), 2u);
  EXPECT_EQ(replay->tasks[0].task_id(), "t2");
  EXPECT_EQ(replay->tasks[1].task_id(), "t1");
  EXPECT_EQ(replay->tasks[1].version(), 1);  // as it was then, not as it is now
  EXPECT_EQ(replay->tasks[1].status(), v1::OPEN);
  EXPECT_TRUE(replay->events.empty());
  EXPECT_EQ(store_->HeadPosition(), head);
}

// The cache takes a batch's states only once the batch is durable, and a rebuild empties it:
// after a rebuild every command still decides on the state the log says.
TEST_F(CommandProcessorTest, AfterARebuildCommandsDecideOnTheRebuiltStates) {
  Must(testing::Create("t1"));
  Must(testing::Contact("t1", v1::NO_ANSWER, "2025-03-20"));
  ASSERT_TRUE(store_->RebuildProjections().ok());
  CommandResult closed = Must(testing::Contact("t1", v1::SCHEDULED, "", /*close_task=*/true));
  EXPECT_EQ(closed.task().version(), 4);  // created, contact, contact + close
  EXPECT_EQ(closed.task().status(), v1::CLOSED);
  EXPECT_TRUE(store_->VerifyProjections().ok());
}

// The writer keeps contacts as bytes (TaskState): a result still has every contact, in order,
// whether the state came from the cache, from the "tasks" row (after a restart), or was made in
// the same batch; and the rows it wrote are the ones a fold of the log gives.
TEST_F(CommandProcessorTest, ResultsAndRowsHaveEveryContactWhereverTheStateCameFrom) {
  Must(testing::Create("t1"));
  Must(testing::Contact("t1", v1::NO_ANSWER, "2025-03-20"));
  Must(testing::Contact("t1", v1::LEFT_MESSAGE, "2025-03-21"));  // from the cache
  ASSERT_TRUE(Reopen().ok());
  CommandResult third = Must(testing::Contact("t1", v1::NO_ANSWER, "2025-03-22"));  // the row
  ASSERT_EQ(third.task().contacts_size(), 3);
  EXPECT_EQ(third.task().contacts(0).outcome(), v1::NO_ANSWER);
  EXPECT_EQ(third.task().contacts(1).outcome(), v1::LEFT_MESSAGE);
  EXPECT_EQ(third.task().contacts(2).follow_up_date(), "2025-03-22");
  EXPECT_EQ(third.task().attempt_count(), 3);
  absl::StatusOr<v1::Task> read = store_->GetTask("t1");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(keys::EncodeTask(*read), keys::EncodeTask(third.task()));
  EXPECT_TRUE(store_->VerifyProjections().ok());
}

// A task's "stats" row lists each (period, assignee) of its contacts once (projection format 8):
// it does not grow with every contact, and the live rows still equal a fold of the log.
TEST_F(CommandProcessorTest, AStatsTaskRowListsEachPeriodOnceNotEveryContact) {
  Must(testing::Create("t1"));
  for (int i = 0; i < 5; ++i) Must(testing::Contact("t1", v1::NO_ANSWER, "2025-03-20"));
  storage::v1::StatsTask row;
  ASSERT_NO_FATAL_FAILURE(EditRawDb([&](rocksdb::DB* db, const auto& cfs) {
    std::string raw;
    ASSERT_TRUE(
        db->Get(rocksdb::ReadOptions(), cfs[keys::kStats], keys::StatsTaskKey("t1"), &raw).ok());
    ASSERT_TRUE(row.ParseFromString(raw));
  }));
  // The fixture's clock stands still: five contacts, one period, one assignee.
  EXPECT_EQ(row.contacts_size(), 1);
  ASSERT_TRUE(Reopen().ok());
  EXPECT_TRUE(store_->VerifyProjections().ok());
}

}  // namespace
}  // namespace outreach::store
