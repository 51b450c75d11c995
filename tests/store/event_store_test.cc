// EventStore on a temporary RocksDB directory: appends, reads, recovery, idempotency, the
// worklist, expiry, group commit, rebuilds, and (last section) the error paths and corruption.
#include "store/event_store.h"
#include "store/write_refusal.h"

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/blocking_counter.h"
#include "domain/validation.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "store/event_codec.h"
#include "store/expiry_scheduler.h"
#include "store/keys.h"
#include "tests/testing/store_fixture.h"

namespace outreach::store {
namespace {

using ::testing::HasSubstr;

using ::outreach::store::testing::kStart;
using ::outreach::store::testing::StoreFixture;

struct CreateArgs {
  std::string patient_id = "p1";
  v1::TaskKind kind = v1::MANUAL;
  std::string assignee;
  std::string follow_up_date;
  std::optional<absl::Time> expires_at;
  std::string request_id;
};

struct LogArgs {
  v1::ContactOutcome outcome = v1::NO_ANSWER;
  std::string follow_up_date = "2025-03-20";
  bool close_task = false;
  int64_t expected_version = 0;
  std::string request_id;
};

domain::Command CreateCommand(const std::string& task_id, const CreateArgs& a = {}) {
  domain::CreateTaskCommand c;
  c.task_id = task_id;
  c.patient_id = a.patient_id;
  c.kind = a.kind;
  c.title = "Book annual wellness visit";
  c.assignee = a.assignee;
  c.follow_up_date = a.follow_up_date;
  c.expires_at = a.expires_at;
  c.meta = {"coordinator-1", a.request_id};
  return c;
}

domain::Command LogCommand(const std::string& task_id, const LogArgs& a = {}) {
  domain::LogContactCommand c;
  c.task_id = task_id;
  c.outcome = a.outcome;
  c.notes = "called";
  c.follow_up_date = a.close_task ? "" : a.follow_up_date;
  c.close_task = a.close_task;
  c.expected_version = a.expected_version;
  c.meta = {"coordinator-1", a.request_id};
  return c;
}

std::vector<std::string> Ids(const std::vector<v1::Task>& tasks) {
  std::vector<std::string> ids;
  for (const v1::Task& t : tasks) ids.push_back(t.task_id());
  return ids;
}

// A file system whose write-ahead-log appends fail while `fail_wal` is set.
class FailingWalFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  explicit FailingWalFileSystem(std::shared_ptr<rocksdb::FileSystem> base)
      : FileSystemWrapper(std::move(base)) {}
  const char* Name() const override { return "FailingWalFileSystem"; }

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* file,
                                    rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->NewWritableFile(name, options, file, dbg);
    if (s.ok() && name.size() > 4 && name.substr(name.size() - 4) == ".log") {
      *file = std::make_unique<File>(std::move(*file), &fail_wal);
    }
    return s;
  }

  std::atomic<bool> fail_wal{false};

 private:
  class File final : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSWritableFile> file, std::atomic<bool>* fail)
        : FSWritableFileOwnerWrapper(std::move(file)), fail_(fail) {}
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
      if (fail_->load()) return rocksdb::IOStatus::IOError("injected WAL failure");
      return target()->Append(data, options, dbg);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             const rocksdb::DataVerificationInfo& info,
                             rocksdb::IODebugContext* dbg) override {
      if (fail_->load()) return rocksdb::IOStatus::IOError("injected WAL failure");
      return target()->Append(data, options, info, dbg);
    }

   private:
    std::atomic<bool>* fail_;
  };
};

class EventStoreTest : public StoreFixture {
 protected:
  absl::StatusOr<CommandResult> Create(const std::string& task_id, const CreateArgs& a = {}) {
    return store_->Execute(CreateCommand(task_id, a), absl::StrCat("create:", task_id));
  }
  absl::StatusOr<CommandResult> Log(const std::string& task_id, const LogArgs& a = {},
                                    const std::string& fingerprint = "log") {
    return store_->Execute(LogCommand(task_id, a), fingerprint);
  }

  std::vector<v1::EventRecord> AllEvents() { return Events(); }

  ListPage List(ListQuery query) {
    absl::StatusOr<ListPage> page = store_->ListTasks(query);
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? *page : ListPage{};
  }

  // Submits `first` and returns once the writer has taken it as a batch of its own and is held
  // (writer_gate_): what is submitted next queues, until writer_gate_.Release(), for one batch.
  void HoldTheWriterAfter(domain::Command first) {
    writer_gate_.HoldNextBatch();
    store_->Submit(std::move(first), "", [](absl::StatusOr<CommandResult> r) {
      EXPECT_TRUE(r.ok()) << r.status();
    });
    writer_gate_.WaitUntilHeld();
  }
};

// ---- Appends and reads ----

TEST_F(EventStoreTest, EveryEventGetsItsOwnEventId) {
  std::set<std::string> ids;
  for (int i = 0; i < 200; ++i) {
    absl::StatusOr<CommandResult> r = Create(absl::StrCat("t", i));
    ASSERT_TRUE(r.ok()) << r.status();
    ids.insert(r->events[0].event_id());
  }
  EXPECT_EQ(ids.size(), 200u);
}

TEST_F(EventStoreTest, CreateAppendsTaskCreatedAtPositionOne) {
  absl::StatusOr<CommandResult> r = Create("t1", {.assignee = "nurse-1"});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->events.size(), 1u);
  EXPECT_EQ(r->events[0].position(), 1u);
  EXPECT_EQ(r->events[0].version(), 1);
  EXPECT_TRUE(r->events[0].has_task_created());
  EXPECT_EQ(r->events[0].actor(), "coordinator-1");
  // A random (version 4, RFC 4122 variant) UUID, lower-case hex.
  EXPECT_THAT(r->events[0].event_id(),
              ::testing::MatchesRegex(
                  "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"));
  EXPECT_EQ(domain::FromProto(r->events[0].recorded_at()), kStart);
  EXPECT_FALSE(r->replayed);
  EXPECT_EQ(r->task().status(), v1::OPEN);
  EXPECT_EQ(store_->HeadPosition(), 1u);

  absl::StatusOr<v1::Task> task = store_->GetTask("t1");
  ASSERT_TRUE(task.ok()) << task.status();
  EXPECT_EQ(task->SerializeAsString(), r->task().SerializeAsString());
  const std::vector<v1::EventRecord> events = AllEvents();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].SerializeAsString(), r->events[0].SerializeAsString());
}

TEST_F(EventStoreTest, PositionsAreGapFreeAndEachHashChainsToThePrevious) {
  ASSERT_TRUE(Create("t1").ok());
  ASSERT_TRUE(Create("t2", {.patient_id = "p2"}).ok());
  ASSERT_TRUE(Log("t1").ok());
  ASSERT_TRUE(Log("t2", {.close_task = true}).ok());
  const std::vector<v1::EventRecord> events = AllEvents();
  ASSERT_EQ(events.size(), 5u);
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].position(), i + 1);
    EXPECT_EQ(events[i].hash().size(), kHashSize);
    EXPECT_EQ(events[i].prev_hash(),
              i == 0 ? std::string(kHashSize, '\0') : events[i - 1].hash());
  }
  const VerifyReport report = store_->VerifyLog();
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.events_checked, 5u);
  EXPECT_EQ(report.head_position, 5u);
  EXPECT_EQ(report.head_hash, events.back().hash());
}

TEST_F(EventStoreTest, LogAndCloseIsTwoAdjacentEventsFromOneCommand) {
  ASSERT_TRUE(Create("t1").ok());
  absl::StatusOr<CommandResult> r = Log("t1", {.outcome = v1::SCHEDULED, .close_task = true});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->events.size(), 2u);
  EXPECT_TRUE(r->events[0].has_contact_logged());
  EXPECT_TRUE(r->events[1].has_task_closed());
  EXPECT_EQ(r->events[0].position() + 1, r->events[1].position());
  EXPECT_EQ(r->events[1].prev_hash(), r->events[0].hash());
  EXPECT_EQ(r->events[1].task_closed().outcome(), v1::SCHEDULED);
  EXPECT_EQ(r->task().status(), v1::CLOSED);
  EXPECT_EQ(r->task().version(), 3);
}

TEST_F(EventStoreTest, ReadEventsOfOneTaskFromAPositionWithALimit) {
  ASSERT_TRUE(Create("t1").ok());         // 1
  ASSERT_TRUE(Create("t2").ok());         // 2
  ASSERT_TRUE(Log("t1").ok());            // 3
  ASSERT_TRUE(Log("t2").ok());            // 4
  ASSERT_TRUE(Log("t1").ok());            // 5
  absl::StatusOr<std::vector<v1::EventRecord>> t1 = store_->ReadEvents(0, "t1", 0);
  ASSERT_TRUE(t1.ok()) << t1.status();
  ASSERT_EQ(t1->size(), 3u);
  EXPECT_EQ((*t1)[0].position(), 1u);
  EXPECT_EQ((*t1)[1].position(), 3u);
  EXPECT_EQ((*t1)[2].position(), 5u);
  absl::StatusOr<std::vector<v1::EventRecord>> later = store_->ReadEvents(2, "t1", 1);
  ASSERT_TRUE(later.ok()) << later.status();
  ASSERT_EQ(later->size(), 1u);
  EXPECT_EQ((*later)[0].position(), 3u);
  absl::StatusOr<std::vector<v1::EventRecord>> global = store_->ReadEvents(4, "", 0);
  ASSERT_TRUE(global.ok()) << global.status();
  ASSERT_EQ(global->size(), 2u);
  EXPECT_EQ((*global)[0].position(), 4u);
  absl::StatusOr<std::vector<v1::EventRecord>> none = store_->ReadEvents(0, "nobody", 0);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(EventStoreTest, RecordedAtNeverDecreasesWhenTheClockStepsBack) {
  ASSERT_TRUE(Create("t1").ok());
  clock_.Advance(-absl::Minutes(5));
  absl::StatusOr<CommandResult> r = Create("t2");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(domain::FromProto(r->events[0].recorded_at()), kStart);
}

// ---- Recovery ----

TEST_F(EventStoreTest, ReopenKeepsEveryAcknowledgedEvent) {
  ASSERT_TRUE(Create("t1").ok());
  ASSERT_TRUE(Log("t1").ok());
  ASSERT_TRUE(Create("t2", {.kind = v1::AUTOMATIC, .expires_at = kStart + absl::Hours(1)}).ok());
  const std::vector<v1::EventRecord> before = AllEvents();
  absl::StatusOr<std::string> dump_before = store_->DumpProjections();
  ASSERT_TRUE(dump_before.ok());

  ASSERT_TRUE(Reopen().ok());
  EXPECT_EQ(store_->HeadPosition(), 3u);
  const std::vector<v1::EventRecord> after = AllEvents();
  ASSERT_EQ(after.size(), before.size());
  for (std::size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].SerializeAsString(), before[i].SerializeAsString());
  }
  absl::StatusOr<std::string> dump_after = store_->DumpProjections();
  ASSERT_TRUE(dump_after.ok());
  EXPECT_EQ(*dump_after, *dump_before);

  // The chain continues from the recovered head.
  absl::StatusOr<CommandResult> next = Log("t1", {.close_task = true});
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->events[0].position(), 4u);
  EXPECT_EQ(next->events[0].prev_hash(), before.back().hash());
  ASSERT_TRUE(Reopen().ok());
  EXPECT_TRUE(store_->VerifyLog().ok);
  EXPECT_EQ(store_->HeadPosition(), 5u);
}

// ---- Idempotency and concurrency control ----

TEST_F(EventStoreTest, RetriedRequestIdReturnsTheFirstResultAndAppendsNothing) {
  ASSERT_TRUE(Create("t1", {.request_id = "req-create"}).ok());
  absl::StatusOr<CommandResult> first = Log("t1", {.request_id = "req-log"}, "fp-log");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(Log("t1", {.follow_up_date = "2025-04-01"}).ok());  // the task moves on
  const uint64_t head = store_->HeadPosition();

  absl::StatusOr<CommandResult> retry = Log("t1", {.request_id = "req-log"}, "fp-log");
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->replayed);
  EXPECT_TRUE(retry->events.empty());
  EXPECT_EQ(retry->task().SerializeAsString(), first->task().SerializeAsString());
  EXPECT_EQ(store_->HeadPosition(), head);

  ASSERT_TRUE(Reopen().ok());
  absl::StatusOr<CommandResult> after_restart =
      Log("t1", {.request_id = "req-log"}, "fp-log");
  ASSERT_TRUE(after_restart.ok()) << after_restart.status();
  EXPECT_TRUE(after_restart->replayed);
  EXPECT_EQ(after_restart->task().SerializeAsString(), first->task().SerializeAsString());
  EXPECT_EQ(store_->HeadPosition(), head);
}

TEST_F(EventStoreTest, RepeatedRequestIdWithinOneBatchReplaysTheFirst) {
  ASSERT_TRUE(Create("t1").ok());
  absl::BlockingCounter done(2);
  std::vector<absl::StatusOr<CommandResult>> results(2);
  HoldTheWriterAfter(CreateCommand("t0"));
  for (int i = 0; i < 2; ++i) {
    store_->Submit(LogCommand("t1", {.request_id = "req-1"}), "fp",
                   [&, i](absl::StatusOr<CommandResult> r) {
                     results[i] = std::move(r);
                     done.DecrementCount();
                   });
  }
  writer_gate_.Release();
  done.Wait();
  // t0's batch, then both retries in one: the second sees the first's key in the batch.
  EXPECT_THAT(writer_gate_.batch_sizes(), ::testing::ElementsAre(1u, 2u));
  ASSERT_TRUE(results[0].ok()) << results[0].status();
  ASSERT_TRUE(results[1].ok()) << results[1].status();
  EXPECT_FALSE(results[0]->replayed);
  EXPECT_TRUE(results[1]->replayed);
  EXPECT_EQ(results[1]->task().SerializeAsString(), results[0]->task().SerializeAsString());
  EXPECT_EQ(store_->HeadPosition(), 3u);
}

TEST_F(EventStoreTest, RequestIdReusedWithOtherContentIsAlreadyExists) {
  ASSERT_TRUE(Create("t1").ok());
  ASSERT_TRUE(Log("t1", {.request_id = "req-1"}, "fp-a").ok());
  const uint64_t head = store_->HeadPosition();
  absl::StatusOr<CommandResult> r = Log("t1", {.request_id = "req-1"}, "fp-b");
  ASSERT_EQ(r.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("request_id"));
  EXPECT_EQ(store_->HeadPosition(), head);
}

TEST_F(EventStoreTest, StaleExpectedVersionIsAbortedAndSaysTheCurrentVersion) {
  ASSERT_TRUE(Create("t1").ok());
  ASSERT_TRUE(Log("t1", {.expected_version = 1}).ok());
  const uint64_t head = store_->HeadPosition();
  absl::StatusOr<CommandResult> r = Log("t1", {.expected_version = 1});
  ASSERT_EQ(r.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("version 2"));
  EXPECT_EQ(store_->HeadPosition(), head);
}

// ---- Worklist ----

class WorklistTest : public EventStoreTest {
 protected:
  void SetUp() override {
    EventStoreTest::SetUp();
    ASSERT_TRUE(Create("d", {.patient_id = "p1", .assignee = "ann",
                             .follow_up_date = "2025-03-15"}).ok());
    ASSERT_TRUE(Create("a", {.patient_id = "p2", .follow_up_date = "2025-03-20"}).ok());
    ASSERT_TRUE(Create("c", {.patient_id = "p1", .assignee = "bob"}).ok());
    ASSERT_TRUE(Create("b", {.patient_id = "p1", .kind = v1::AUTOMATIC, .assignee = "ann",
                             .follow_up_date = "2025-03-15",
                             .expires_at = kStart + absl::Hours(240)}).ok());
    ASSERT_TRUE(Create("e", {.patient_id = "p3", .assignee = "ann"}).ok());
    ASSERT_TRUE(Log("e", {.follow_up_date = "2025-03-12"}).ok());  // IN_PROGRESS
    ASSERT_TRUE(Create("f", {.patient_id = "p2", .follow_up_date = "2025-03-11"}).ok());
    ASSERT_TRUE(Log("f", {.close_task = true}).ok());               // CLOSED
  }
};

TEST_F(WorklistTest, DefaultListIsOpenTasksByFollowUpDateThenIdWithNoDateLast) {
  EXPECT_THAT(Ids(List({}).tasks), ::testing::ElementsAre("e", "b", "d", "a", "c"));
}

TEST_F(WorklistTest, FiltersNarrowByStatusKindPatientAssigneeAndDate) {
  EXPECT_THAT(Ids(List({.statuses = {v1::CLOSED}}).tasks), ::testing::ElementsAre("f"));
  EXPECT_THAT(Ids(List({.statuses = {v1::IN_PROGRESS}}).tasks), ::testing::ElementsAre("e"));
  EXPECT_THAT(Ids(List({.kind = v1::AUTOMATIC}).tasks), ::testing::ElementsAre("b"));
  EXPECT_THAT(Ids(List({.patient_id = "p1"}).tasks), ::testing::ElementsAre("b", "d", "c"));
  EXPECT_THAT(Ids(List({.patient_id = "p1", .assignee = "ann"}).tasks),
              ::testing::ElementsAre("b", "d"));
  EXPECT_THAT(Ids(List({.kind = v1::MANUAL, .assignee = "ann"}).tasks),
              ::testing::ElementsAre("e", "d"));
  EXPECT_THAT(Ids(List({.follow_up_on_or_before = absl::CivilDay(2025, 3, 15)}).tasks),
              ::testing::ElementsAre("e", "b", "d"));
  // Closing clears the follow-up date, so closed tasks sort with the undated ones.
  EXPECT_THAT(Ids(List({.statuses = {v1::OPEN, v1::CLOSED, v1::IN_PROGRESS}}).tasks),
              ::testing::ElementsAre("e", "b", "d", "a", "c", "f"));
  EXPECT_TRUE(List({.patient_id = "nobody"}).tasks.empty());
}

TEST_F(WorklistTest, PagesCoverTheListOnceAndTheLastHasNoToken) {
  std::vector<std::string> seen;
  ListQuery query{.statuses = {v1::OPEN, v1::IN_PROGRESS, v1::CLOSED}, .page_size = 2};
  int pages = 0;
  do {
    ListPage page = List(query);
    ASSERT_LE(page.tasks.size(), 2u);
    for (const v1::Task& t : page.tasks) seen.push_back(t.task_id());
    query.page_token = page.next_page_token;
    ++pages;
  } while (!query.page_token.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_THAT(seen, ::testing::ElementsAre("e", "b", "d", "a", "c", "f"));
}

TEST_F(WorklistTest, ListReflectsTaskChanges) {
  ASSERT_TRUE(Log("c", {.follow_up_date = "2025-03-10"}).ok());
  EXPECT_THAT(Ids(List({}).tasks), ::testing::ElementsAre("c", "e", "b", "d", "a"));
  ASSERT_TRUE(Log("b", {.close_task = true}).ok());
  EXPECT_THAT(Ids(List({.patient_id = "p1"}).tasks), ::testing::ElementsAre("c", "d"));
  EXPECT_THAT(Ids(List({.statuses = {v1::CLOSED}}).tasks), ::testing::ElementsAre("b", "f"));
}

TEST_F(WorklistTest, MalformedOrForeignPageTokenIsInvalidArgument) {
  ListPage first = List({.page_size = 2});
  ASSERT_FALSE(first.next_page_token.empty());
  absl::StatusOr<ListPage> garbage = store_->ListTasks({.page_token = "not a token!"});
  ASSERT_EQ(garbage.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(garbage.status().message()), HasSubstr("page_token"));
  absl::StatusOr<ListPage> foreign =
      store_->ListTasks({.patient_id = "p1", .page_token = first.next_page_token});
  ASSERT_EQ(foreign.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(foreign.status().message()), HasSubstr("page_token"));
  // Same filters with another page size is the same query.
  absl::StatusOr<ListPage> resized =
      store_->ListTasks({.page_size = 10, .page_token = first.next_page_token});
  ASSERT_TRUE(resized.ok()) << resized.status();
  EXPECT_THAT(Ids(resized->tasks), ::testing::ElementsAre("d", "a", "c"));
}

// ---- Expiry ----

TEST_F(EventStoreTest, ExpireDueClosesOnlyTasksWhoseExpiryHasPassed) {
  const absl::Time soon = kStart + absl::Hours(1);
  const absl::Time later = kStart + absl::Hours(2);
  ASSERT_TRUE(Create("soon", {.kind = v1::AUTOMATIC, .expires_at = soon}).ok());
  ASSERT_TRUE(Create("later", {.kind = v1::AUTOMATIC, .expires_at = later}).ok());
  ASSERT_TRUE(Create("manual").ok());
  EXPECT_EQ(store_->NextExpiry(), soon);

  absl::StatusOr<int> none = ExpireDue(*store_, clock_.Now());
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(*none, 0);

  clock_.Set(soon + absl::Minutes(30));
  const uint64_t head = store_->HeadPosition();
  absl::StatusOr<int> closed = ExpireDue(*store_, clock_.Now());
  ASSERT_TRUE(closed.ok()) << closed.status();
  EXPECT_EQ(*closed, 1);
  EXPECT_EQ(store_->HeadPosition(), head + 1);

  absl::StatusOr<std::vector<v1::EventRecord>> events = store_->ReadEvents(head + 1, "", 0);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  const v1::EventRecord& e = (*events)[0];
  EXPECT_EQ(e.task_id(), "soon");
  ASSERT_TRUE(e.has_task_closed());
  EXPECT_EQ(e.task_closed().reason(), v1::EXPIRED);
  EXPECT_EQ(e.actor(), domain::kExpiryActor);
  EXPECT_EQ(domain::FromProto(e.occurred_at()), soon);
  EXPECT_EQ(domain::FromProto(e.recorded_at()), soon + absl::Minutes(30));

  EXPECT_EQ(store_->GetTask("soon")->status(), v1::CLOSED);
  EXPECT_EQ(store_->GetTask("later")->status(), v1::OPEN);
  EXPECT_EQ(store_->NextExpiry(), later);

  absl::StatusOr<int> again = ExpireDue(*store_, clock_.Now());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 0);
}

TEST_F(EventStoreTest, ClosingAnAutomaticTaskRemovesItFromTheExpiryIndex) {
  ASSERT_TRUE(Create("t1", {.kind = v1::AUTOMATIC, .expires_at = kStart + absl::Hours(1)}).ok());
  ASSERT_TRUE(Log("t1", {.close_task = true}).ok());
  EXPECT_EQ(store_->NextExpiry(), std::nullopt);
  clock_.Advance(absl::Hours(2));
  absl::StatusOr<int> closed = ExpireDue(*store_, clock_.Now());
  ASSERT_TRUE(closed.ok());
  EXPECT_EQ(*closed, 0);
}

TEST_F(EventStoreTest, ExpiredTaskRefusesContactsBeforeItsExpiryEventIsWritten) {
  ASSERT_TRUE(Create("t1", {.kind = v1::AUTOMATIC, .expires_at = kStart + absl::Hours(1)}).ok());
  clock_.Advance(absl::Hours(1));
  const uint64_t head = store_->HeadPosition();
  absl::StatusOr<CommandResult> r = Log("t1");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->HeadPosition(), head);
}

TEST_F(EventStoreTest, ExpirySchedulerClosesADueTask) {
  ASSERT_TRUE(Create("t1", {.kind = v1::AUTOMATIC, .expires_at = kStart + absl::Seconds(1)}).ok());
  clock_.Advance(absl::Seconds(2));
  ExpiryScheduler scheduler(store_.get(), &clock_, absl::Milliseconds(10));
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (store_->GetTask("t1")->status() != v1::CLOSED && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  scheduler.Stop();
  EXPECT_EQ(store_->GetTask("t1")->status(), v1::CLOSED);
  EXPECT_EQ(store_->GetTask("t1")->close_reason(), v1::EXPIRED);
}

// ---- Group commit ----

TEST_F(EventStoreTest, ConcurrentSubmitsFromManyThreadsAllLandGapFree) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        if (!Create(absl::StrCat("t", t, "-", i)).ok()) ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  const std::vector<v1::EventRecord> events = AllEvents();
  ASSERT_EQ(events.size(), static_cast<std::size_t>(kThreads * kPerThread));
  for (std::size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].position(), i + 1);
  EXPECT_EQ(store_->HeadPosition(), events.size());
  EXPECT_TRUE(store_->VerifyLog().ok);
}

TEST_F(EventStoreTest, ACommandFailingInsideABatchFailsAlone) {
  ASSERT_TRUE(Create("t1").ok());
  std::vector<absl::StatusOr<CommandResult>> results(5);
  absl::BlockingCounter done(5);
  std::vector<domain::Command> batch = {
      CreateCommand("t2"),                          // ok
      LogCommand("missing"),                        // NOT_FOUND
      CreateCommand("t1"),                          // ALREADY_EXISTS
      LogCommand("t2", {.expected_version = 7}),    // ABORTED
      LogCommand("t2", {.close_task = true}),       // ok: sees t2 from earlier in the batch
  };
  HoldTheWriterAfter(CreateCommand("t0"));
  for (std::size_t i = 0; i < batch.size(); ++i) {
    store_->Submit(batch[i], absl::StrCat("fp", i), [&, i](absl::StatusOr<CommandResult> r) {
      results[i] = std::move(r);
      done.DecrementCount();
    });
  }
  writer_gate_.Release();
  done.Wait();
  EXPECT_THAT(writer_gate_.batch_sizes(), ::testing::ElementsAre(1u, 5u));
  ASSERT_TRUE(results[0].ok()) << results[0].status();
  EXPECT_EQ(results[1].status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(results[2].status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(results[3].status().code(), absl::StatusCode::kAborted);
  ASSERT_TRUE(results[4].ok()) << results[4].status();
  EXPECT_EQ(results[0]->events[0].position(), 3u);
  EXPECT_EQ(results[4]->events[0].position(), 4u);
  EXPECT_EQ(results[4]->events[1].position(), 5u);
  EXPECT_EQ(store_->HeadPosition(), 5u);
  EXPECT_TRUE(store_->VerifyLog().ok);
  EXPECT_EQ(store_->GetTask("t2")->status(), v1::CLOSED);
}

// ---- Rebuild ----

TEST_F(EventStoreTest, RebuildEqualsLiveProjectionsByteForByteAfterARandomMix) {
  const uint32_t seed = std::random_device()();
  std::printf("RebuildEqualsLive seed: %u\n", seed);
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  std::mt19937 rng(seed);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint32_t>(n)); };
  const v1::ContactOutcome outcomes[] = {v1::NO_ANSWER, v1::LEFT_MESSAGE, v1::DID_NOT_SCHEDULE,
                                         v1::SCHEDULED};
  int tasks = 0;
  for (int step = 0; step < 300; ++step) {
    clock_.Advance(absl::Minutes(1 + pick(90)));
    const int action = pick(10);
    if (action < 3 || tasks == 0) {
      CreateArgs a{.patient_id = absl::StrCat("p", pick(5)),
                   .assignee = pick(3) == 0 ? "" : absl::StrCat("nurse-", pick(3))};
      if (pick(3) == 0) {
        a.kind = v1::AUTOMATIC;
        a.expires_at = clock_.Now() + absl::Hours(1 + pick(48));
      }
      if (pick(2) == 0) {
        a.follow_up_date = domain::FormatDate(
            absl::ToCivilDay(clock_.Now(), absl::UTCTimeZone()) + pick(30));
      }
      if (pick(2) == 0) a.request_id = absl::StrCat("req-c", step);
      (void)Create(absl::StrCat("task-", tasks++), a);
    } else if (action < 8) {
      LogArgs a{.outcome = outcomes[pick(4)],
                .follow_up_date = domain::FormatDate(
                    absl::ToCivilDay(clock_.Now(), absl::UTCTimeZone()) + pick(30)),
                .close_task = pick(4) == 0};
      if (pick(2) == 0) a.request_id = absl::StrCat("req-l", step);
      (void)store_->Execute(LogCommand(absl::StrCat("task-", pick(tasks)), a),
                            absl::StrCat("fp-", step));
      if (!a.request_id.empty() && pick(3) == 0) {  // a client retry
        (void)store_->Execute(LogCommand(absl::StrCat("task-", pick(tasks)), a),
                              absl::StrCat("fp-", step));
      }
    } else {
      ASSERT_TRUE(ExpireDue(*store_, clock_.Now()).ok());
    }
  }
  // Whatever the mix left open: at least one open automatic task (an expiry row) and one
  // idempotency key, so that the comparison below covers those families too.
  ASSERT_TRUE(Create("last-automatic", {.kind = v1::AUTOMATIC,
                                        .expires_at = clock_.Now() + absl::Hours(48),
                                        .request_id = "req-last"})
                  .ok());
  ASSERT_GT(store_->HeadPosition(), 100u);
  absl::StatusOr<std::string> live = store_->DumpProjections();
  ASSERT_TRUE(live.ok()) << live.status();
  ASSERT_TRUE(store_->RebuildProjections().ok());
  absl::StatusOr<std::string> rebuilt = store_->DumpProjections();
  ASSERT_TRUE(rebuilt.ok()) << rebuilt.status();
  EXPECT_EQ(*rebuilt, *live);
  EXPECT_NE(live->find("requests\t"), std::string::npos);
  EXPECT_NE(live->find("expiry\t"), std::string::npos);
}

TEST_F(EventStoreTest, WritesAfterARebuildAndAReopenKeepProjectionsEqualToTheLog) {
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(Create(absl::StrCat("t", i), {.assignee = "ann"}).ok());
  }
  ASSERT_TRUE(Log("t3", {.request_id = "r1"}, "fp-1").ok());
  ASSERT_TRUE(store_->RebuildProjections().ok());
  // The rebuilt rows were ingested above a range deletion: later writes must replace them, and
  // the index rows a command moves must leave no copy behind.
  ASSERT_TRUE(Log("t3", {.close_task = true}).ok());
  ASSERT_TRUE(Log("t7", {.follow_up_date = "2025-03-20"}).ok());
  ASSERT_TRUE(Create("t20").ok());
  ASSERT_TRUE(store_->VerifyProjections().ok());
  ASSERT_TRUE(Reopen().ok());
  EXPECT_TRUE(store_->VerifyProjections().ok());
  EXPECT_EQ(store_->GetTask("t3")->status(), v1::CLOSED);
  EXPECT_EQ(store_->GetTask("t7")->follow_up_date(), "2025-03-20");
  absl::StatusOr<CommandResult> retry = Log("t3", {.request_id = "r1"}, "fp-1");
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->replayed);
  // The SST files the rebuild wrote were moved into the database, not left beside it.
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    EXPECT_EQ(entry.path().filename().string().rfind("rebuild-", 0), std::string::npos)
        << entry.path();
  }
}

TEST_F(EventStoreTest, OpenRebuildsProjectionsWhenTheirFormatChanged) {
  ASSERT_TRUE(Create("t1", {.assignee = "ann", .request_id = "r1"}).ok());
  ASSERT_TRUE(Log("t1", {.request_id = "r2"}, "fp-2").ok());
  ASSERT_TRUE(Create("t2", {.kind = v1::AUTOMATIC, .expires_at = kStart + absl::Hours(3)}).ok());
  absl::StatusOr<std::string> live = store_->DumpProjections();
  ASSERT_TRUE(live.ok());
  EditRawDb([](rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*>& cfs) {
    // An older projection format, and leftovers that a rebuild must clear.
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cfs[keys::kDefault], keys::kProjectionFormatKey,
                        keys::EncodeFixed32BE(0))
                    .ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cfs[keys::kTasks], "stale", "x").ok());
    ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), cfs[keys::kRequests],
                           keys::RequestKey("coordinator-1", "r1"))
                    .ok());
  });
  ASSERT_TRUE(Reopen().ok());
  absl::StatusOr<std::string> rebuilt = store_->DumpProjections();
  ASSERT_TRUE(rebuilt.ok());
  EXPECT_EQ(*rebuilt, *live);
  absl::StatusOr<CommandResult> retry = Log("t1", {.request_id = "r2"}, "fp-2");
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->replayed);
}

TEST_F(EventStoreTest, OpenRebuildsAFormat1WorklistWithoutItsAllScopeRows) {
  ASSERT_TRUE(Create("t1", {.assignee = "ann", .follow_up_date = "2025-03-15"}).ok());
  ASSERT_TRUE(Create("t2", {.kind = v1::AUTOMATIC, .expires_at = kStart + absl::Hours(3)}).ok());
  absl::StatusOr<std::string> live = store_->DumpProjections();
  ASSERT_TRUE(live.ok());
  EditRawDb([](rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*>& cfs) {
    // What format 1 wrote besides today's rows: every task in the 'a' (all) scope too.
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cfs[keys::kDefault], keys::kProjectionFormatKey,
                        keys::EncodeFixed32BE(1))
                    .ok());
    std::string all_scope = "a";
    all_scope.push_back('\0');
    all_scope.push_back(static_cast<char>(v1::OPEN));
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cfs[keys::kWorklist],
                        keys::WorklistKey(all_scope, keys::DayKeyOfDate("2025-03-15"),
                                          keys::UrgencyRank(v1::ROUTINE), "t1"),
                        "x")
                    .ok());
  });
  ASSERT_TRUE(Reopen().ok());
  absl::StatusOr<std::string> rebuilt = store_->DumpProjections();
  ASSERT_TRUE(rebuilt.ok());
  EXPECT_EQ(*rebuilt, *live);
  EXPECT_THAT(Ids(List({}).tasks), ::testing::ElementsAre("t1", "t2"));
}

// ---- Error paths ----

TEST_F(EventStoreTest, ContactOnAMissingTaskIsNotFoundAndAppendsNothing) {
  ASSERT_TRUE(Create("t1").ok());
  absl::StatusOr<CommandResult> r = Log("nope");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->HeadPosition(), 1u);
  EXPECT_EQ(store_->GetTask("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(EventStoreTest, ContactOnAClosedTaskIsFailedPreconditionAndAppendsNothing) {
  ASSERT_TRUE(Create("t1").ok());
  ASSERT_TRUE(Log("t1", {.close_task = true}).ok());
  absl::StatusOr<CommandResult> r = Log("t1");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->HeadPosition(), 3u);
}

TEST_F(EventStoreTest, DuplicateTaskIdIsAlreadyExistsAndAppendsNothing) {
  ASSERT_TRUE(Create("t1").ok());
  absl::StatusOr<CommandResult> r = Create("t1");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->HeadPosition(), 1u);
}

TEST_F(EventStoreTest, BadInputIsInvalidArgumentAndAppendsNothing) {
  absl::StatusOr<CommandResult> r = Create("bad id with spaces");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->HeadPosition(), 0u);
  absl::StatusOr<ListPage> page = store_->ListTasks({.page_size = 501});
  EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(EventStoreTest, FailedWriteFailsItsBatchAndLatchesWritesUnavailableButReadsWork) {
  auto fs = std::make_shared<FailingWalFileSystem>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  store_.reset();
  StoreOptions options = Options();
  options.env = env.get();
  absl::StatusOr<std::unique_ptr<EventStore>> opened = EventStore::Open(dir_, options);
  ASSERT_TRUE(opened.ok()) << opened.status();
  store_ = *std::move(opened);
  ASSERT_TRUE(Create("t1").ok());

  fs->fail_wal = true;
  absl::StatusOr<CommandResult> failed = Create("t2");
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store_->HeadPosition(), 1u);
  EXPECT_EQ(store_->WriteHealth().code(), absl::StatusCode::kUnavailable);

  fs->fail_wal = false;  // the disk "recovers", but nothing may be guessed: writes stay refused
  absl::StatusOr<CommandResult> refused = Create("t3");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("failed write or sync"));
  EXPECT_THAT(ServerDetail(refused.status()), HasSubstr("injected WAL failure"));
  EXPECT_EQ(store_->HeadPosition(), 1u);
  EXPECT_TRUE(store_->GetTask("t1").ok());
  EXPECT_EQ(store_->GetTask("t2").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(AllEvents().size(), 1u);

  store_.reset();  // before the env it uses
  ASSERT_TRUE(Reopen().ok());
  EXPECT_EQ(store_->HeadPosition(), 1u);
  EXPECT_TRUE(store_->VerifyLog().ok);
  EXPECT_TRUE(Create("t2").ok());
}

TEST_F(EventStoreTest, OverwrittenEventIsDataLossAtOpenNamingItsPosition) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Create(absl::StrCat("t", i)).ok());
  EditRawDb([](rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*>& cfs) {
    std::string value;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), cfs[keys::kEvents], keys::EventKey(3), &value)
                    .ok());
    value[value.size() - 1] ^= 0x01;  // one flipped bit in the body
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cfs[keys::kEvents], keys::EventKey(3), value)
                    .ok());
  });
  absl::Status s = Reopen();
  ASSERT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.message()), HasSubstr("position 3"));
}

TEST_F(EventStoreTest, DeletedEventIsDataLossAtOpenNamingTheGap) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Create(absl::StrCat("t", i)).ok());
  EditRawDb([](rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*>& cfs) {
    ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), cfs[keys::kEvents], keys::EventKey(2)).ok());
  });
  absl::Status s = Reopen();
  ASSERT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.message()), HasSubstr("position 2"));
}

TEST_F(EventStoreTest, TruncatedTailIsDataLossAtOpen) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Create(absl::StrCat("t", i)).ok());
  EditRawDb([](rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*>& cfs) {
    ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), cfs[keys::kEvents], keys::EventKey(5)).ok());
  });
  absl::Status s = Reopen();
  ASSERT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.message()), HasSubstr("position 5"));
}

TEST_F(EventStoreTest, UnknownEnvelopeVersionIsDataLossAtOpen) {
  ASSERT_TRUE(Create("t1").ok());
  ASSERT_TRUE(Create("t2").ok());
  EditRawDb([](rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*>& cfs) {
    std::string value;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), cfs[keys::kEvents], keys::EventKey(2), &value)
                    .ok());
    value[0] = 9;
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cfs[keys::kEvents], keys::EventKey(2), value)
                    .ok());
  });
  absl::Status s = Reopen();
  ASSERT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.message()), HasSubstr("position 2"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("format_version 9"));
}

TEST_F(EventStoreTest, CorruptionBeforeTheCheckpointIsReportedByVerifyLog) {
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Create(absl::StrCat("t", i)).ok());
  ASSERT_TRUE(Reopen().ok());  // verified through position 4
  EditRawDb([](rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*>& cfs) {
    std::string value;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), cfs[keys::kEvents], keys::EventKey(2), &value)
                    .ok());
    value[value.size() - 1] ^= 0x01;
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cfs[keys::kEvents], keys::EventKey(2), value)
                    .ok());
  });
  ASSERT_TRUE(Reopen().ok());  // start-up re-checks only what follows the checkpoint
  const VerifyReport report = store_->VerifyLog();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_position, 2u);
  EXPECT_EQ(report.head_position, 1u);
  EXPECT_FALSE(report.problem.empty());
}

TEST_F(EventStoreTest, WriterCheckpointsEveryNEventsSoStartUpReverifiesOnlyWhatFollows) {
  StoreOptions options = Options();
  options.checkpoint_every = 4;
  store_.reset();
  absl::StatusOr<std::unique_ptr<EventStore>> opened = EventStore::Open(dir_, options);
  ASSERT_TRUE(opened.ok()) << opened.status();
  store_ = *std::move(opened);
  // Positions 1-6: the batch that reaches position 4 records a checkpoint there.
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(Create(absl::StrCat("t", i)).ok());
  store_.reset();
  absl::StatusOr<storage::v1::VerifiedCheckpoint> checkpoint;
  EditRawDb([&](rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*>& cfs) {
    std::string raw;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), cfs[keys::kDefault], keys::kCheckpointKey, &raw)
                    .ok());
    checkpoint = keys::DecodeCheckpoint(raw);
    // Damage before the checkpoint (position 2) and after it (position 5).
    for (uint64_t position : {2, 5}) {
      std::string value;
      ASSERT_TRUE(
          db->Get(rocksdb::ReadOptions(), cfs[keys::kEvents], keys::EventKey(position), &value)
              .ok());
      value[value.size() - 1] ^= 0x01;
      ASSERT_TRUE(
          db->Put(rocksdb::WriteOptions(), cfs[keys::kEvents], keys::EventKey(position), value)
              .ok());
    }
  });
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_EQ(checkpoint->position(), 4u);
  EXPECT_EQ(checkpoint->max_schema_version(), kEventSchemaVersion);
  // Start-up re-checks from position 4 on: it finds 5, not 2.
  const absl::Status s = Reopen();
  ASSERT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("position 5"));
}

TEST_F(EventStoreTest, FailedRebuildRefusesWritesUntilReopenInsteadOfDecidingOnClearedRows) {
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Create(absl::StrCat("t", i)).ok());
  ASSERT_TRUE(Reopen().ok());  // verified through position 3: start-up will not re-read event 2
  EditRawDb([](rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*>& cfs) {
    std::string value;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), cfs[keys::kEvents], keys::EventKey(2), &value)
                    .ok());
    value[0] = 9;  // an envelope version the rebuild cannot decode
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cfs[keys::kEvents], keys::EventKey(2), value)
                    .ok());
  });
  ASSERT_TRUE(Reopen().ok());
  ASSERT_EQ(store_->RebuildProjections().code(), absl::StatusCode::kDataLoss);
  // The rebuild stopped after clearing the projections: deciding on them would accept a second
  // TaskCreated for t0 and break its stream. Writes are refused instead.
  absl::StatusOr<CommandResult> again = Create("t0");
  EXPECT_EQ(again.status().code(), absl::StatusCode::kUnavailable) << again.status();
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("position 2"));
  EXPECT_EQ(store_->WriteHealth().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(store_->HeadPosition(), 3u);
  // The interrupted rebuild is redone at the next Open, which now meets the bad event.
  absl::Status reopened = Reopen();
  EXPECT_EQ(reopened.code(), absl::StatusCode::kDataLoss) << reopened;
  EXPECT_THAT(std::string(reopened.message()), HasSubstr("position 2"));
}

TEST_F(EventStoreTest, TamperedCheckpointIsDataLossAtOpen) {
  ASSERT_TRUE(Create("t1").ok());
  ASSERT_TRUE(Reopen().ok());
  EditRawDb([](rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*>& cfs) {
    std::string value;
    ASSERT_TRUE(
        db->Get(rocksdb::ReadOptions(), cfs[keys::kDefault], keys::kCheckpointKey, &value).ok());
    value[0] ^= 0x01;
    ASSERT_TRUE(
        db->Put(rocksdb::WriteOptions(), cfs[keys::kDefault], keys::kCheckpointKey, value).ok());
  });
  EXPECT_EQ(Reopen().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace outreach::store
