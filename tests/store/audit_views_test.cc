// The store's audit views: time travel (as of a version or a time), task history, verification
// against a kept head hash, live-follow (WaitForHeadAbove, head listeners), read-only and
// secondary opens, schema upcasting, backup and restore, and JSON export. Error paths close
// each section.
#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "store/expiry_scheduler.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "store/event_codec.h"
#include "store/event_json.h"
#include "tests/testing/store_fixture.h"

namespace outreach::store::testing {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The task t1 through OPEN -> IN_PROGRESS -> IN_PROGRESS -> CLOSED, one hour apart:
// versions 1 (created), 2 (no answer), 3 (left message), 4 and 5 (scheduled, log and close).
class TimeTravelTest : public StoreFixture {
 protected:
  void SetUp() override {
    StoreFixture::SetUp();
    Must(Create("t1"));
    clock_.Advance(absl::Hours(1));
    Must(Contact("t1", v1::NO_ANSWER, "2025-03-12"));
    clock_.Advance(absl::Hours(1));
    Must(Create("other"));
    Must(Contact("t1", v1::LEFT_MESSAGE, "2025-03-14"));
    clock_.Advance(absl::Hours(1));
    Must(Contact("t1", v1::SCHEDULED, "", /*close_task=*/true));
  }
};

TEST_F(TimeTravelTest, AsOfVersionIsTheTaskAfterItsFirstNEvents) {
  absl::StatusOr<v1::Task> v1 = store_->GetTaskAsOfVersion("t1", 1);
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_EQ(v1->version(), 1);
  EXPECT_EQ(v1->status(), v1::OPEN);
  EXPECT_EQ(v1->contacts_size(), 0);

  absl::StatusOr<v1::Task> v3 = store_->GetTaskAsOfVersion("t1", 3);
  ASSERT_TRUE(v3.ok()) << v3.status();
  EXPECT_EQ(v3->status(), v1::IN_PROGRESS);
  EXPECT_EQ(v3->follow_up_date(), "2025-03-14");
  EXPECT_EQ(v3->contacts_size(), 2);

  absl::StatusOr<v1::Task> v5 = store_->GetTaskAsOfVersion("t1", 5);
  ASSERT_TRUE(v5.ok()) << v5.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*v5, *store_->GetTask("t1")));
}

TEST_F(TimeTravelTest, AsOfTimeFoldsEveryEventRecordedAtOrBeforeIt) {
  absl::StatusOr<v1::Task> at_start = store_->GetTaskAsOfTime("t1", kStart);
  ASSERT_TRUE(at_start.ok()) << at_start.status();
  EXPECT_EQ(at_start->version(), 1);
  EXPECT_EQ(at_start->status(), v1::OPEN);

  absl::StatusOr<v1::Task> between = store_->GetTaskAsOfTime("t1", kStart + absl::Minutes(150));
  ASSERT_TRUE(between.ok()) << between.status();
  EXPECT_EQ(between->version(), 3);
  EXPECT_EQ(between->status(), v1::IN_PROGRESS);

  // Log and Close wrote two events at the same instant: both or neither.
  absl::StatusOr<v1::Task> closed = store_->GetTaskAsOfTime("t1", kStart + absl::Hours(3));
  ASSERT_TRUE(closed.ok()) << closed.status();
  EXPECT_EQ(closed->version(), 5);
  EXPECT_EQ(closed->status(), v1::CLOSED);
  absl::StatusOr<v1::Task> just_before =
      store_->GetTaskAsOfTime("t1", kStart + absl::Hours(3) - absl::Microseconds(1));
  ASSERT_TRUE(just_before.ok());
  EXPECT_EQ(just_before->version(), 3);
}

TEST_F(TimeTravelTest, HistoryShowsEveryEventWithTheStatusBeforeAndAfterIt) {
  absl::StatusOr<std::vector<HistoryEntry>> history = store_->GetTaskHistory("t1");
  ASSERT_TRUE(history.ok()) << history.status();
  ASSERT_EQ(history->size(), 5u);
  std::vector<std::pair<v1::TaskStatus, v1::TaskStatus>> transitions;
  for (const HistoryEntry& entry : *history) {
    transitions.emplace_back(entry.status_before, entry.status_after);
  }
  EXPECT_THAT(transitions,
              ElementsAre(std::pair(v1::TASK_STATUS_UNSPECIFIED, v1::OPEN),
                          std::pair(v1::OPEN, v1::IN_PROGRESS),
                          std::pair(v1::IN_PROGRESS, v1::IN_PROGRESS),
                          std::pair(v1::IN_PROGRESS, v1::IN_PROGRESS),
                          std::pair(v1::IN_PROGRESS, v1::CLOSED)));
  // ... and why: the events themselves.
  EXPECT_TRUE((*history)[0].event.has_task_created());
  EXPECT_EQ((*history)[1].event.contact_logged().outcome(), v1::NO_ANSWER);
  EXPECT_TRUE((*history)[3].event.contact_logged().close_task());
  EXPECT_EQ((*history)[4].event.task_closed().reason(), v1::CONTACT_OUTCOME);
  EXPECT_EQ((*history)[4].event.task_closed().outcome(), v1::SCHEDULED);
  for (std::size_t i = 0; i < history->size(); ++i) {
    EXPECT_EQ((*history)[i].event.version(), static_cast<int64_t>(i + 1));
    EXPECT_EQ((*history)[i].event.task_id(), "t1");
  }
}

// ---- Time travel: error paths ----

TEST_F(TimeTravelTest, AsOfVersionPastTheHeadIsOutOfRangeAndSaysTheCurrentVersion) {
  absl::StatusOr<v1::Task> task = store_->GetTaskAsOfVersion("t1", 6);
  ASSERT_EQ(task.status().code(), absl::StatusCode::kOutOfRange) << task.status();
  EXPECT_THAT(std::string(task.status().message()), HasSubstr("version 5"));
}

TEST_F(TimeTravelTest, AsOfVersionBelowOneIsInvalidArgument) {
  EXPECT_EQ(store_->GetTaskAsOfVersion("t1", 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetTaskAsOfVersion("t1", -3).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(TimeTravelTest, AsOfAnUnknownTaskIsNotFound) {
  EXPECT_EQ(store_->GetTaskAsOfVersion("nope", 1).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetTaskAsOfTime("nope", kStart + absl::Hours(9)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetTaskHistory("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(TimeTravelTest, AsOfTimeBeforeTheTaskExistedIsNotFound) {
  absl::StatusOr<v1::Task> task = store_->GetTaskAsOfTime("t1", kStart - absl::Seconds(1));
  ASSERT_EQ(task.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(task.status().message()), HasSubstr("did not exist yet"));
  EXPECT_EQ(store_->GetTaskAsOfTime("other", kStart + absl::Minutes(90)).status().code(),
            absl::StatusCode::kNotFound);
}

// ---- Verification against a kept head hash ----

class VerifyTest : public StoreFixture {
 protected:
  void SetUp() override {
    StoreFixture::SetUp();
    for (int i = 0; i < 5; ++i) Must(Create(absl::StrCat("t", i)));
    kept_hash_ = Events(3, "", 1)[0].hash();  // an auditor keeps the head hash at 3 ...
    for (int i = 5; i < 8; ++i) Must(Create(absl::StrCat("t", i)));  // ... the log grows
  }
  std::string kept_hash_;
};

TEST_F(VerifyTest, LogThroughAKeptPositionMatchingItsHashIsOk) {
  absl::StatusOr<VerifyReport> report = store_->VerifyLog({.to_position = 3,
                                                           .expected_head_hash = kept_hash_});
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok) << report->problem;
  EXPECT_EQ(report->head_position, 3u);
  EXPECT_EQ(report->events_checked, 3u);
  EXPECT_EQ(report->head_hash, kept_hash_);
}

TEST_F(VerifyTest, WholeLogWithTheHeadHashIsOk) {
  const std::string head_hash = Events(8, "", 1)[0].hash();
  absl::StatusOr<VerifyReport> report = store_->VerifyLog({.expected_head_hash = head_hash});
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->problem;
  EXPECT_EQ(report->head_position, 8u);
}

TEST_F(VerifyTest, MismatchedKeptHashIsNotOkNamingThePosition) {
  std::string other = kept_hash_;
  other[0] ^= 0x01;
  absl::StatusOr<VerifyReport> report = store_->VerifyLog({.to_position = 3,
                                                           .expected_head_hash = other});
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok);
  EXPECT_EQ(report->first_bad_position, 3u);
  EXPECT_THAT(report->problem, HasSubstr("position 3"));
}

TEST_F(VerifyTest, RewrittenHistoryBeforeTheKeptPositionIsNotOk) {
  // A rewrite that re-chains every later hash still cannot reproduce the kept one.
  EditRawDb([](rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*>& cfs) {
    Hash prev = ZeroHash();
    for (uint64_t position = 1; position <= 8; ++position) {
      std::string value;
      ASSERT_TRUE(
          db->Get(rocksdb::ReadOptions(), cfs[keys::kEvents], keys::EventKey(position), &value)
              .ok());
      absl::StatusOr<DecodedEvent> event = DecodeEvent(position, value);
      ASSERT_TRUE(event.ok());
      if (position == 2) event->event.set_actor("mallory");
      ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cfs[keys::kEvents], keys::EventKey(position),
                          EncodeEvent(event->event, prev, &prev))
                      .ok());
    }
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cfs[keys::kDefault], keys::kHeadKey,
                        keys::EncodeHead(8, AsBytes(prev)))
                    .ok());
  });
  absl::StatusOr<std::unique_ptr<EventStore>> reader =
      EventStore::OpenReadOnly(dir_, {.verify_on_open = false});
  ASSERT_TRUE(reader.ok()) << reader.status();
  EXPECT_TRUE((*reader)->VerifyLog().ok);  // internally consistent ...
  absl::StatusOr<VerifyReport> report =
      (*reader)->VerifyLog({.to_position = 3, .expected_head_hash = kept_hash_});
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok);  // ... but not the log the auditor saw
  EXPECT_EQ(report->first_bad_position, 3u);
}

TEST_F(VerifyTest, CorruptionBeforeTheKeptPositionIsReportedAtItsPosition) {
  EditRawDb([](rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*>& cfs) {
    std::string value;
    ASSERT_TRUE(
        db->Get(rocksdb::ReadOptions(), cfs[keys::kEvents], keys::EventKey(2), &value).ok());
    value[value.size() - 1] ^= 0x01;
    ASSERT_TRUE(
        db->Put(rocksdb::WriteOptions(), cfs[keys::kEvents], keys::EventKey(2), value).ok());
  });
  absl::StatusOr<std::unique_ptr<EventStore>> reader =
      EventStore::OpenReadOnly(dir_, {.verify_on_open = false});
  ASSERT_TRUE(reader.ok()) << reader.status();
  absl::StatusOr<VerifyReport> report =
      (*reader)->VerifyLog({.to_position = 3, .expected_head_hash = kept_hash_});
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok);
  EXPECT_EQ(report->first_bad_position, 2u);
}

TEST_F(VerifyTest, ProjectionsEqualTheReplayOfTheLog) {
  EXPECT_TRUE(store_->VerifyProjections().ok());
  Must(Contact("t1", v1::SCHEDULED, "", true));
  EXPECT_TRUE(store_->VerifyProjections().ok());
}

// ---- Verification: error paths ----

TEST_F(VerifyTest, ToPositionBeyondTheHeadIsNotOk) {
  absl::StatusOr<VerifyReport> report = store_->VerifyLog({.to_position = 9});
  ASSERT_TRUE(report.ok());
  EXPECT_FALSE(report->ok);
  EXPECT_EQ(report->first_bad_position, 9u);
  EXPECT_THAT(report->problem, HasSubstr("beyond the head position 8"));
}

TEST_F(VerifyTest, ExpectedHashOfTheWrongSizeIsInvalidArgument) {
  EXPECT_EQ(store_->VerifyLog({.to_position = 3, .expected_head_hash = "abc"}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(VerifyTest, TamperedProjectionRowIsDataLossNamingTheRow) {
  EditRawDb([](rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*>& cfs) {
    v1::Task task;
    std::string value;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), cfs[keys::kTasks], "t3", &value).ok());
    ASSERT_TRUE(task.ParseFromString(value));
    task.set_status(v1::CLOSED);
    ASSERT_TRUE(
        db->Put(rocksdb::WriteOptions(), cfs[keys::kTasks], "t3", keys::EncodeTask(task)).ok());
  });
  ASSERT_TRUE(Reopen().ok());
  absl::Status s = store_->VerifyProjections();
  ASSERT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("tasks row 7433"));  // hex of "t3"
}

TEST_F(VerifyTest, LeftoverProjectionRowIsDataLoss) {
  EditRawDb([](rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*>& cfs) {
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cfs[keys::kWorklist], "zz", "x").ok());
  });
  ASSERT_TRUE(Reopen().ok());
  absl::Status s = store_->VerifyProjections();
  ASSERT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("not produced by replaying"));
}

// ---- Live follow ----

using FollowTest = StoreFixture;

TEST_F(FollowTest, WaitForHeadAboveWakesWhenAnAppendIsDurable) {
  Must(Create("t1"));
  std::atomic<bool> woke{false};
  std::thread waiter([&] { woke = store_->WaitForHeadAbove(1, absl::Seconds(30)); });
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_FALSE(woke.load());
  Must(Create("t2"));
  waiter.join();
  EXPECT_TRUE(woke.load());
}

TEST_F(FollowTest, WaitForHeadAboveReturnsAtOnceWhenTheHeadIsAlreadyPast) {
  Must(Create("t1"));
  Must(Create("t2"));
  const absl::Time start = absl::Now();
  EXPECT_TRUE(store_->WaitForHeadAbove(1, absl::Seconds(30)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(FollowTest, WaitForHeadAboveTimesOutWhenNothingIsAppended) {
  Must(Create("t1"));
  const absl::Time start = absl::Now();
  EXPECT_FALSE(store_->WaitForHeadAbove(1, absl::Milliseconds(50)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(50));
}

TEST_F(FollowTest, ClosingTheStoreWakesWaiters) {
  absl::Notification waiting;
  absl::Time returned_at;
  std::thread waiter([&] {
    EventStore* store = store_.get();
    waiting.Notify();
    EXPECT_FALSE(store->WaitForHeadAbove(0, absl::Seconds(60)));
    returned_at = absl::Now();
  });
  waiting.WaitForNotification();
  absl::SleepFor(absl::Milliseconds(100));  // let it block
  const absl::Time closing = absl::Now();
  store_.reset();  // wakes the waiter, and returns only once it has left WaitForHeadAbove
  waiter.join();
  EXPECT_LT(returned_at - closing, absl::Seconds(10));  // woken, not timed out
}

TEST_F(FollowTest, HeadListenerHearsEveryDurableBatchUntilRemoved) {
  absl::Mutex mu;
  std::vector<uint64_t> heads;
  const HeadListenerId id = store_->AddHeadListener([&](uint64_t head) {
    absl::MutexLock lock(&mu);
    heads.push_back(head);
  });
  Must(Create("t1"));
  Must(Contact("t1", v1::SCHEDULED, "", true));  // one batch of two events
  {
    absl::MutexLock lock(&mu);
    EXPECT_THAT(heads, ElementsAre(1u, 3u));
  }
  store_->RemoveHeadListener(id);
  Must(Create("t2"));
  absl::MutexLock lock(&mu);
  EXPECT_THAT(heads, ElementsAre(1u, 3u));
}

TEST_F(FollowTest, AFollowerCatchingUpWhileOthersAppendSeesEveryEventOnceInOrder) {
  constexpr int kWriters = 4;
  constexpr int kPerWriter = 50;
  for (int i = 0; i < 20; ++i) Must(Create(absl::StrCat("before-", i)));
  std::atomic<bool> writers_done{false};
  std::vector<uint64_t> seen;
  std::thread follower([&] {
    uint64_t last = 0;
    while (true) {
      // Catch up from the log in small pages, then wait for more: the subscriber's loop.
      std::vector<v1::EventRecord> page = Events(last + 1, "", 7);
      for (const v1::EventRecord& e : page) {
        seen.push_back(e.position());
        last = e.position();
      }
      if (!page.empty()) continue;
      if (writers_done.load() && last == store_->HeadPosition()) return;
      store_->WaitForHeadAbove(last, absl::Milliseconds(100));
    }
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < kPerWriter; ++i) Must(Create(absl::StrCat("w", w, "-", i)));
    });
  }
  for (std::thread& t : writers) t.join();
  writers_done = true;
  follower.join();
  ASSERT_EQ(seen.size(), 20u + kWriters * kPerWriter);
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], i + 1);
}

// ---- Read-only and secondary opens ----

using ReadOnlyTest = StoreFixture;

TEST_F(ReadOnlyTest, ReadOnlyOpenServesReadsAndRefusesWrites) {
  Must(Create("t1"));
  Must(Contact("t1", v1::NO_ANSWER, "2025-03-12"));
  store_.reset();
  absl::StatusOr<std::unique_ptr<EventStore>> opened = EventStore::OpenReadOnly(dir_, {});
  ASSERT_TRUE(opened.ok()) << opened.status();
  EventStore& reader = **opened;
  EXPECT_EQ(reader.HeadPosition(), 2u);
  EXPECT_EQ(reader.GetTask("t1")->status(), v1::IN_PROGRESS);
  EXPECT_EQ(reader.GetTaskAsOfVersion("t1", 1)->status(), v1::OPEN);
  EXPECT_TRUE(reader.VerifyLog().ok);
  EXPECT_TRUE(reader.VerifyProjections().ok());

  absl::StatusOr<CommandResult> write = reader.Execute(Create("t2"), "");
  ASSERT_EQ(write.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(write.status().message()), HasSubstr("read-only"));
  EXPECT_EQ(ExpireDue(reader, kStart + absl::Hours(99)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(reader.RebuildProjections().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(reader.BackupTo(MakeTempDir()).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(reader.WriteHealth().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(reader.HeadPosition(), 2u);
}

TEST_F(ReadOnlyTest, SecondaryBesideALiveStoreSeesItsEventsAndCatchesUp) {
  Must(Create("t1"));
  absl::StatusOr<std::unique_ptr<EventStore>> opened =
      EventStore::OpenReadOnly(dir_, {.secondary_path = MakeTempDir()});
  ASSERT_TRUE(opened.ok()) << opened.status();
  EventStore& reader = **opened;
  EXPECT_EQ(reader.HeadPosition(), 1u);
  Must(Contact("t1", v1::LEFT_MESSAGE, "2025-03-12"));
  Must(Create("t2"));
  ASSERT_TRUE(reader.CatchUpWithPrimary().ok());
  EXPECT_EQ(reader.HeadPosition(), 3u);
  EXPECT_EQ(reader.GetTask("t1")->status(), v1::IN_PROGRESS);
  EXPECT_TRUE(reader.VerifyLog().ok);
  EXPECT_TRUE(reader.VerifyProjections().ok());
  EXPECT_EQ(reader.Execute(Create("t3"), "").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// ---- Read-only: error paths ----

TEST_F(ReadOnlyTest, CatchUpOnAPlainReadOnlyStoreIsFailedPrecondition) {
  store_.reset();
  absl::StatusOr<std::unique_ptr<EventStore>> opened = EventStore::OpenReadOnly(dir_, {});
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ((*opened)->CatchUpWithPrimary().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(ReadOnlyTest, ReadOnlyOpenRefusesProjectionsThatNeedARebuild) {
  Must(Create("t1"));
  EditRawDb([](rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*>& cfs) {
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cfs[keys::kDefault], keys::kProjectionFormatKey,
                        keys::EncodeFixed32BE(0))
                    .ok());
  });
  absl::StatusOr<std::unique_ptr<EventStore>> opened = EventStore::OpenReadOnly(dir_, {});
  ASSERT_EQ(opened.status().code(), absl::StatusCode::kFailedPrecondition) << opened.status();
  EXPECT_THAT(std::string(opened.status().message()), HasSubstr("rebuild"));
}

TEST_F(ReadOnlyTest, ReadOnlyOpenOfACorruptLogIsDataLossNamingThePosition) {
  Must(Create("t1"));
  Must(Create("t2"));
  EditRawDb([](rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*>& cfs) {
    ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), cfs[keys::kEvents], keys::EventKey(2)).ok());
  });
  absl::StatusOr<std::unique_ptr<EventStore>> opened = EventStore::OpenReadOnly(dir_, {});
  ASSERT_EQ(opened.status().code(), absl::StatusCode::kDataLoss) << opened.status();
  EXPECT_THAT(std::string(opened.status().message()), HasSubstr("position 2"));
}

TEST_F(ReadOnlyTest, OpeningAMissingDatabaseWithoutCreateIsNotFoundAndCreatesNothing) {
  const std::string missing = MakeTempDir() + "/absent";
  absl::StatusOr<std::unique_ptr<EventStore>> opened = EventStore::OpenReadOnly(missing, {});
  ASSERT_EQ(opened.status().code(), absl::StatusCode::kNotFound) << opened.status();
  EXPECT_THAT(std::string(opened.status().message()), HasSubstr("no such directory"));
  StoreOptions options = Options();
  options.create_if_missing = false;
  EXPECT_EQ(EventStore::Open(missing, options).status().code(), absl::StatusCode::kNotFound);
  const std::string empty = MakeTempDir();
  EXPECT_EQ(EventStore::OpenReadOnly(empty, {}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(missing));
  EXPECT_TRUE(std::filesystem::is_empty(empty));
}

// ---- Schema versions ----

// A schema version one past the build's, for the test: actors are namespaced
// ("user:coordinator-1"). Events of the build's version carry bare ids; the last step adds the
// namespace, after the production steps.
absl::Status NamespaceTheActor(storage::v1::StoredEvent& event) {
  if (event.actor().find(':') == std::string::npos) {
    event.set_actor(absl::StrCat("user:", event.actor()));
  }
  return absl::OkStatus();
}

constexpr uint32_t kNextVersion = kEventSchemaVersion + 1;

std::unique_ptr<SchemaRegistry> NextRegistry() {
  auto registry = std::make_unique<SchemaRegistry>(kNextVersion);
  EXPECT_TRUE(RegisterProductionUpcasters(*registry).ok());
  EXPECT_TRUE(registry->Register(kEventSchemaVersion, NamespaceTheActor).ok());
  return registry;
}

using SchemaTest = StoreFixture;

TEST_F(SchemaTest, OlderEventsAreUpcastForReadsProjectionsAndRebuilds) {
  Must(Create("t1"));  // stored at the build's schema version
  Must(Contact("t1", v1::LEFT_MESSAGE, "2025-03-12"));
  EXPECT_EQ(store_->GetTask("t1")->created_by(), "coordinator-1");

  const std::unique_ptr<SchemaRegistry> next = NextRegistry();
  ASSERT_TRUE(Reopen(next.get()).ok());  // the projections were folded at the older version
  // Reads.
  std::vector<v1::EventRecord> events = Events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].actor(), "user:coordinator-1");
  EXPECT_EQ(events[0].schema_version(), kEventSchemaVersion);  // as stored
  // Projections.
  absl::StatusOr<v1::Task> task = store_->GetTask("t1");
  ASSERT_TRUE(task.ok());
  EXPECT_EQ(task->created_by(), "user:coordinator-1");
  EXPECT_EQ(task->contacts(0).logged_by(), "user:coordinator-1");
  EXPECT_EQ(store_->GetTaskAsOfVersion("t1", 1)->created_by(), "user:coordinator-1");
  EXPECT_EQ((*store_->GetTaskHistory("t1"))[1].event.actor(), "user:coordinator-1");
  // Rebuilds.
  absl::StatusOr<std::string> live = store_->DumpProjections();
  ASSERT_TRUE(store_->RebuildProjections().ok());
  EXPECT_EQ(*store_->DumpProjections(), *live);
  EXPECT_TRUE(store_->VerifyProjections().ok());
  // The hashes cover the stored bytes, which never change.
  EXPECT_TRUE(store_->VerifyLog().ok);
  // New events are written at the next version, and not upcast again.
  CommandResult r = Must(Create("t2", "user:nurse-2"));
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].schema_version(), kNextVersion);
  EXPECT_EQ(Events(3)[0].actor(), "user:nurse-2");
}

TEST_F(SchemaTest, ProductionRegistryIsCompleteAtTheBuildsSchemaVersion) {
  const SchemaRegistry& production = SchemaRegistry::Production();
  EXPECT_EQ(production.current_version(), kEventSchemaVersion);
  EXPECT_TRUE(production.CheckComplete().ok());
}

// An event as a build before issue 13 wrote it: schema version 1, none of its fields.
storage::v1::StoredEvent Version1Event(uint64_t position, const std::string& task_id,
                                       int64_t version, absl::Time at) {
  storage::v1::StoredEvent e;
  e.set_schema_version(1);
  e.set_position(position);
  e.set_task_id(task_id);
  e.set_version(version);
  e.set_event_id(absl::StrCat("event-", position));
  *e.mutable_recorded_at() = domain::ToProto(at);
  *e.mutable_occurred_at() = domain::ToProto(at);
  e.set_actor("coordinator-1");
  return e;
}

// Writes a log of schema version 1 events (old-1 created and contacted, old-2 created and
// closed) as the previous build left it: its projection format 3 and no projection schema row.
void WriteVersion1Log(rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*>& cfs) {
  std::vector<storage::v1::StoredEvent> events;
  events.push_back(Version1Event(1, "old-1", 1, kStart));
  events.back().mutable_task_created()->set_patient_id("p1");
  events.back().mutable_task_created()->set_kind(v1::MANUAL);
  events.back().mutable_task_created()->set_title("Recall");
  events.push_back(Version1Event(2, "old-1", 2, kStart + absl::Minutes(1)));
  events.back().mutable_contact_logged()->set_outcome(v1::DID_NOT_SCHEDULE);
  events.back().mutable_contact_logged()->set_follow_up_date("2025-03-20");
  events.push_back(Version1Event(3, "old-2", 1, kStart + absl::Minutes(2)));
  events.back().mutable_task_created()->set_patient_id("p2");
  events.back().mutable_task_created()->set_kind(v1::MANUAL);
  events.push_back(Version1Event(4, "old-2", 2, kStart + absl::Minutes(3)));
  events.back().mutable_task_closed()->set_reason(v1::EXPIRED);
  Hash prev = ZeroHash();
  for (const storage::v1::StoredEvent& e : events) {
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cfs[keys::kEvents], keys::EventKey(e.position()),
                        EncodeEvent(e, prev, &prev))
                    .ok());
  }
  ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cfs[keys::kDefault], keys::kHeadKey,
                      keys::EncodeHead(events.size(), AsBytes(prev)))
                  .ok());
  ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cfs[keys::kDefault], keys::kProjectionFormatKey,
                      keys::EncodeFixed32BE(3))
                  .ok());
  ASSERT_TRUE(
      db->Delete(rocksdb::WriteOptions(), cfs[keys::kDefault], keys::kProjectionSchemaKey).ok());
}

// Issue 13: old events keep working, and read as practice "default", category CUSTOM.
TEST_F(SchemaTest, Version1LogReadsAsPracticeDefaultCategoryCustomAndKeepsWorking) {
  ASSERT_NO_FATAL_FAILURE(EditRawDb(WriteVersion1Log));
  ASSERT_TRUE(Reopen().ok());  // verifies the old log, rebuilds the projections
  absl::StatusOr<v1::Task> task = store_->GetTask("old-1");
  ASSERT_TRUE(task.ok()) << task.status();
  EXPECT_EQ(task->practice_id(), "default");
  EXPECT_EQ(task->category(), v1::CUSTOM);
  EXPECT_EQ(task->priority(), v1::ROUTINE);
  EXPECT_EQ(task->cadence_days_size(), 0);
  EXPECT_EQ(task->max_attempts(), 0);
  ASSERT_EQ(task->contacts_size(), 1);
  EXPECT_EQ(task->contacts(0).channel(), v1::PHONE);
  EXPECT_EQ(task->contacts(0).direction(), v1::OUTBOUND);
  EXPECT_EQ(task->attempt_count(), 1);
  EXPECT_EQ(task->reached_count(), 1);
  EXPECT_EQ(task->last_outcome(), v1::DID_NOT_SCHEDULE);
  EXPECT_EQ(task->status(), v1::IN_PROGRESS);
  EXPECT_EQ(store_->GetTask("old-2")->close_reason(), v1::EXPIRED);
  EXPECT_EQ(store_->GetTask("old-2")->practice_id(), "default");
  // Served as stored (version 1), with what the absent fields mean.
  std::vector<v1::EventRecord> events = Events();
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].schema_version(), 1u);
  EXPECT_EQ(events[0].task_created().practice_id(), "default");
  EXPECT_EQ(events[0].task_created().category(), v1::CUSTOM);
  EXPECT_EQ(events[1].contact_logged().channel(), v1::PHONE);
  // The stored bytes are untouched; the rebuild is the live state.
  EXPECT_TRUE(store_->VerifyLog().ok);
  EXPECT_TRUE(store_->VerifyProjections().ok());
  absl::StatusOr<std::string> live = store_->DumpProjections();
  ASSERT_TRUE(store_->RebuildProjections().ok());
  EXPECT_EQ(*store_->DumpProjections(), *live);
  // New commands on an old task; new events are version 2.
  CommandResult contact = Must(Contact("old-1", v1::NO_ANSWER, "2025-03-21"));
  EXPECT_EQ(contact.task().attempt_count(), 2);
  EXPECT_EQ(contact.events[0].schema_version(), kEventSchemaVersion);
  CommandResult assigned =
      Must(domain::AssignTaskCommand{.task_id = "old-1", .assignee = "group:front-desk",
                                     .meta = {"coordinator-1", ""}});
  EXPECT_EQ(assigned.task().assignee(), "group:front-desk");
  ASSERT_TRUE(Reopen().ok());
  EXPECT_EQ(store_->GetTask("old-1")->version(), 4);
}

// ---- Schema versions: error paths ----

TEST_F(SchemaTest, EventNewerThanTheBuildIsDataLossAtOpenNamingItsPosition) {
  Must(Create("t1"));
  Must(Create("t2"));
  const std::unique_ptr<SchemaRegistry> next = NextRegistry();
  ASSERT_TRUE(Reopen(next.get()).ok());
  Must(Create("t3", "user:a"));  // position 3, the next schema version
  Must(Create("t4", "user:a"));
  ASSERT_TRUE(Reopen(next.get()).ok());  // the verified checkpoint now covers position 4

  // Back to this build: never skipped, even before the checkpoint.
  absl::Status s = Reopen();
  ASSERT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("position 3"));
  EXPECT_THAT(std::string(s.message()), HasSubstr(absl::StrCat("schema_version ", kNextVersion)));
  absl::StatusOr<std::unique_ptr<EventStore>> reader = EventStore::OpenReadOnly(dir_, {});
  EXPECT_EQ(reader.status().code(), absl::StatusCode::kDataLoss);
}

// What a build before issue 13 (schema version 1) does with this build's log: it refuses it by
// name at open, and never misreads a TaskAssigned or a task's practice.
TEST_F(SchemaTest, ABuildOfVersion1RefusesThisBuildsEventsByName) {
  Must(Create("t1"));
  Must(domain::AssignTaskCommand{.task_id = "t1", .assignee = "nurse-2",
                                 .meta = {"coordinator-1", ""}});
  SchemaRegistry version1(1);
  absl::Status s = Reopen(&version1);
  ASSERT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("position 1"));
  EXPECT_THAT(std::string(s.message()),
              HasSubstr(absl::StrCat("schema_version ", kEventSchemaVersion)));
}

TEST_F(SchemaTest, IncompleteRegistryIsRefusedAtOpen) {
  SchemaRegistry v3(3);
  ASSERT_TRUE(v3.Register(1, NamespaceTheActor).ok());
  absl::Status s = Reopen(&v3);
  ASSERT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("from version 2"));
}

TEST_F(SchemaTest, RegisteringAStepOutsideTheRangeOrTwiceIsRefused) {
  SchemaRegistry v2(2);
  EXPECT_EQ(v2.Register(0, NamespaceTheActor).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(v2.Register(2, NamespaceTheActor).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(v2.Register(1, NamespaceTheActor).ok());
  EXPECT_EQ(v2.Register(1, NamespaceTheActor).code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(SchemaTest, FailingUpcasterIsDataLossNamingThePosition) {
  Must(Create("t1"));
  SchemaRegistry broken(kNextVersion);
  ASSERT_TRUE(RegisterProductionUpcasters(broken).ok());
  ASSERT_TRUE(broken
                  .Register(kEventSchemaVersion,
                            [](storage::v1::StoredEvent&) {
                              return absl::InvalidArgumentError("cannot upgrade");
                            })
                  .ok());
  absl::Status s = Reopen(&broken);
  ASSERT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("position 1"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("cannot upgrade"));
}

// ---- Backup and restore ----

using BackupTest = StoreFixture;

TEST_F(BackupTest, RestoredBackupOpensVerifiesAndEqualsTheSource) {
  for (int i = 0; i < 10; ++i) Must(Create(absl::StrCat("t", i)));
  const std::string backups = MakeTempDir();
  ASSERT_TRUE(store_->BackupTo(backups).ok());
  Must(Contact("t3", v1::SCHEDULED, "", true));
  ASSERT_TRUE(store_->BackupTo(backups).ok());  // the latest backup is restored
  Must(Create("after-the-backup"));
  absl::StatusOr<std::string> source = store_->DumpProjections();
  ASSERT_TRUE(source.ok());

  const std::string restored_dir = MakeTempDir() + "/restored";
  absl::Status restored = EventStore::RestoreFrom(backups, restored_dir);
  ASSERT_TRUE(restored.ok()) << restored;
  absl::StatusOr<std::unique_ptr<EventStore>> copy = EventStore::Open(restored_dir, Options());
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_EQ((*copy)->HeadPosition(), 12u);
  EXPECT_TRUE((*copy)->VerifyLog().ok);
  EXPECT_TRUE((*copy)->VerifyProjections().ok());
  EXPECT_EQ((*copy)->GetTask("t3")->status(), v1::CLOSED);
  EXPECT_EQ((*copy)->GetTask("after-the-backup").status().code(), absl::StatusCode::kNotFound);
  // The copy is a working store.
  EXPECT_TRUE((*copy)->Execute(Create("after-the-backup"), "").ok());
  EXPECT_EQ(*(*copy)->DumpProjections(), *source);
}

TEST_F(BackupTest, BackupDuringConcurrentWritesRestoresAWholeBatchPrefix) {
  for (int i = 0; i < 20; ++i) Must(Create(absl::StrCat("t", i)));
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop.load(); ++i) {
      (void)Run(Create(absl::StrCat("c", i)));
      (void)Run(Contact(absl::StrCat("c", i), v1::SCHEDULED, "", true));
    }
  });
  const std::string backups = MakeTempDir();
  absl::Status backed_up = store_->BackupTo(backups);
  stop = true;
  writer.join();
  ASSERT_TRUE(backed_up.ok()) << backed_up;
  const std::string restored_dir = MakeTempDir() + "/restored";
  ASSERT_TRUE(EventStore::RestoreFrom(backups, restored_dir).ok());
  absl::StatusOr<std::unique_ptr<EventStore>> copy =
      EventStore::OpenReadOnly(restored_dir, {.verify_on_open = false});
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_GE((*copy)->HeadPosition(), 20u);
  EXPECT_TRUE((*copy)->VerifyLog().ok);
  EXPECT_TRUE((*copy)->VerifyProjections().ok());
}

// ---- Backup and restore: error paths ----

TEST_F(BackupTest, RestoreNeverOverwritesANonEmptyDirectory) {
  Must(Create("t1"));
  const std::string backups = MakeTempDir();
  ASSERT_TRUE(store_->BackupTo(backups).ok());
  absl::Status s = EventStore::RestoreFrom(backups, dir_);
  ASSERT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("not empty"));
}

TEST_F(BackupTest, RestoreFromADirectoryWithoutBackupsIsNotFound) {
  EXPECT_EQ(EventStore::RestoreFrom(MakeTempDir(), MakeTempDir() + "/x").code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(EventStore::RestoreFrom(MakeTempDir() + "/absent", MakeTempDir() + "/x").code(),
            absl::StatusCode::kNotFound);
}

// ---- JSON export ----

using ExportTest = StoreFixture;

std::vector<v1::EventRecord> ExportAndParse(const EventStore& store, uint64_t from,
                                            const std::string& task_id) {
  std::vector<v1::EventRecord> out;
  absl::StatusOr<uint64_t> written =
      ExportJsonLines(store, from, task_id, [&](absl::string_view line) {
        EXPECT_EQ(line.back(), '\n');
        EXPECT_EQ(line.find('\n'), line.size() - 1);
        v1::EventRecord record;
        const auto parsed = google::protobuf::util::JsonStringToMessage(
            std::string(line.substr(0, line.size() - 1)), &record);
        EXPECT_TRUE(parsed.ok()) << parsed.ToString();
        out.push_back(record);
        return absl::OkStatus();
      });
  EXPECT_TRUE(written.ok()) << written.status();
  if (written.ok()) {
    EXPECT_EQ(*written, out.size());
  }
  return out;
}

TEST_F(ExportTest, EveryEventIsOneJsonLineThatParsesBackToTheSameRecord) {
  Must(Create("t1"));
  Must(Create("t2"));
  Must(Contact("t1", v1::DID_NOT_SCHEDULE, "", true));
  const std::vector<v1::EventRecord> exported = ExportAndParse(*store_, 0, "");
  const std::vector<v1::EventRecord> events = Events();
  ASSERT_EQ(exported.size(), events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(exported[i], events[i])) << i;
  }
  absl::StatusOr<std::string> json = EventToJson(events[3]);
  ASSERT_TRUE(json.ok());
  EXPECT_THAT(*json, HasSubstr("\"reason\":\"CONTACT_OUTCOME\""));
  EXPECT_THAT(*json, HasSubstr("\"recordedAt\":\"2025-03-10T09:00:00Z\""));
}

TEST_F(ExportTest, ExportOfOneTaskFromAPosition) {
  for (int i = 0; i < 3; ++i) {
    Must(Create(absl::StrCat("t", i)));
    Must(Contact(absl::StrCat("t", i), v1::NO_ANSWER, "2025-03-12"));
  }
  std::vector<uint64_t> positions;
  for (const v1::EventRecord& e : ExportAndParse(*store_, 3, "t1")) {
    EXPECT_EQ(e.task_id(), "t1");
    positions.push_back(e.position());
  }
  EXPECT_THAT(positions, ElementsAre(3u, 4u));
  EXPECT_EQ(ExportAndParse(*store_, 4, "").size(), 3u);
  EXPECT_TRUE(ExportAndParse(*store_, 7, "").empty());
}

TEST_F(ExportTest, ExportStopsAtTheFirstWriteError) {
  for (int i = 0; i < 3; ++i) Must(Create(absl::StrCat("t", i)));
  int calls = 0;
  absl::StatusOr<uint64_t> written = ExportJsonLines(*store_, 0, "", [&](absl::string_view) {
    ++calls;
    return absl::UnavailableError("disk full");
  });
  EXPECT_EQ(written.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace outreach::store::testing
