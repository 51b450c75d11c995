// The read-access audit log (store/access_log.h): the hash chain, reads by time range and
// principal, retention that keeps the chain verifiable, and what a reader does with damage.
#include "store/access_log.h"

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "store/clock.h"
#include "store/event_store.h"
#include "store/keys.h"
#include "tests/testing/raw_db.h"
#include "tests/testing/temp_dir.h"

namespace outreach::store {
namespace {

using ::testing::ElementsAre;

const absl::Time kLogStart = absl::FromUnixSeconds(1767225600);  // 2026-01-01T00:00:00Z

std::string RecordKey(uint64_t sequence) {
  return absl::StrCat("r", keys::EncodeFixed64BE(sequence));
}

class AccessLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = temp_.path();
    Reopen();
  }
  void TearDown() override { store_.reset(); }

  void Reopen(AccessLogOptions access = {}) {
    store_.reset();
    StoreOptions options;
    options.clock = &clock_;
    options.sync_writes = false;
    options.access_log = access;
    absl::StatusOr<std::unique_ptr<EventStore>> store = EventStore::Open(dir_, options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    ASSERT_NE(store_->access_log(), nullptr);
  }

  AccessLog& log() { return *store_->access_log(); }

  uint64_t Append(const std::string& principal, std::vector<std::string> task_ids = {"t-1"}) {
    AccessEntry entry;
    entry.principal = principal;
    entry.rpc = "/outreach.v1.TaskService/GetTask";
    entry.task_ids = std::move(task_ids);
    entry.count = entry.task_ids.size();
    entry.peer = "ipv4:127.0.0.1:5555";
    absl::StatusOr<uint64_t> sequence = log().AppendAndWait(std::move(entry));
    EXPECT_TRUE(sequence.ok()) << sequence.status();
    return sequence.ok() ? *sequence : 0;
  }

  std::vector<uint64_t> Sequences(const AccessQuery& query) {
    absl::StatusOr<std::vector<StoredAccessRecord>> records = log().Read(query);
    EXPECT_TRUE(records.ok()) << records.status();
    std::vector<uint64_t> out;
    if (records.ok()) {
      for (const StoredAccessRecord& record : *records) out.push_back(record.record.sequence());
    }
    return out;
  }

  // Closes the store and hands the raw "access_log" family to `edit`.
  void EditRawAccessLog(const std::function<void(rocksdb::DB*, rocksdb::ColumnFamilyHandle*)>& edit) {
    store_.reset();
    outreach::testing::EditRawDb(
        dir_, [&](rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*>& families) {
          edit(db, families[keys::kAccessLog]);
        });
  }

  outreach::testing::TempDir temp_{"outreach_access_log_test_"};
  std::string dir_;
  FakeClock clock_{kLogStart};
  std::unique_ptr<EventStore> store_;
};

TEST_F(AccessLogTest, AppendsGapFreeSequencesOnAVerifiedChain) {
  EXPECT_EQ(Append("alice"), 1u);
  EXPECT_EQ(Append("bob", {"t-1", "t-2"}), 2u);
  EXPECT_EQ(Append("alice"), 3u);

  const AccessVerifyReport report = log().Verify();
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.records_checked, 3u);
  EXPECT_EQ(report.first_sequence, 1u);
  EXPECT_EQ(report.head_sequence, 3u);
  EXPECT_EQ(report.head_hash, log().HeadHash());

  absl::StatusOr<std::vector<StoredAccessRecord>> records = log().Read({});
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 3u);
  const storage::v1::AccessRecord& second = (*records)[1].record;
  EXPECT_EQ(second.principal(), "bob");
  EXPECT_EQ(second.rpc(), "/outreach.v1.TaskService/GetTask");
  EXPECT_THAT(second.task_ids(), ElementsAre("t-1", "t-2"));
  EXPECT_EQ(second.count(), 2u);
  EXPECT_EQ(second.peer(), "ipv4:127.0.0.1:5555");
  EXPECT_EQ(second.time().seconds(), absl::ToUnixSeconds(kLogStart));
  // Each record chains from the one before it.
  EXPECT_EQ((*records)[2].hash, log().HeadHash());
  EXPECT_NE((*records)[1].hash, (*records)[2].hash);
}

TEST_F(AccessLogTest, ConcurrentAppendsShareBatchesAndStayGapFree) {
  constexpr int kThreads = 8;
  constexpr int kEach = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      for (int i = 0; i < kEach; ++i) Append(absl::StrCat("p", t));
    });
  }
  for (std::thread& thread : threads) thread.join();
  const AccessVerifyReport report = log().Verify();
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.records_checked, uint64_t{kThreads * kEach});
  EXPECT_EQ(Sequences({.principal = "p3"}).size(), uint64_t{kEach});
}

TEST_F(AccessLogTest, SequencesAndTheChainContinueAcrossReopen) {
  Append("alice");
  Append("alice");
  const Hash head = log().HeadHash();
  Reopen();
  EXPECT_EQ(log().HeadSequence(), 2u);
  EXPECT_EQ(log().HeadHash(), head);
  EXPECT_EQ(Append("bob"), 3u);
  EXPECT_TRUE(log().Verify().ok);
}

TEST_F(AccessLogTest, ReadsByTimeRangeAndPrincipal) {
  Append("alice");                     // 1 at +0m
  clock_.Advance(absl::Minutes(1));
  Append("bob");                       // 2 at +1m
  clock_.Advance(absl::Minutes(1));
  Append("alice");                     // 3 at +2m
  clock_.Advance(absl::Minutes(1));
  Append("bob");                       // 4 at +3m

  EXPECT_THAT(Sequences({}), ElementsAre(1, 2, 3, 4));
  EXPECT_THAT(Sequences({.from = kLogStart + absl::Minutes(1), .to = kLogStart + absl::Minutes(3)}),
              ElementsAre(2, 3));  // from inclusive, to exclusive
  EXPECT_THAT(Sequences({.principal = "alice"}), ElementsAre(1, 3));
  EXPECT_THAT(Sequences({.from = kLogStart + absl::Seconds(30), .principal = "bob"}),
              ElementsAre(2, 4));
  EXPECT_THAT(Sequences({.limit = 2}), ElementsAre(1, 2));
  EXPECT_THAT(Sequences({.from = kLogStart + absl::Hours(1)}), ElementsAre());
  EXPECT_THAT(Sequences({.from = kLogStart + absl::Minutes(2), .to = kLogStart}), ElementsAre());
}

TEST_F(AccessLogTest, TimeNeverGoesBackwardsWhenTheClockDoes) {
  Append("alice");
  clock_.Advance(-absl::Minutes(5));
  Append("alice");
  absl::StatusOr<std::vector<StoredAccessRecord>> records = log().Read({});
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[1].record.time().seconds(), absl::ToUnixSeconds(kLogStart));
  EXPECT_TRUE(log().Verify().ok);
}

TEST_F(AccessLogTest, RetentionDeletesOldRecordsAndKeepsTheChainVerifiable) {
  for (int i = 0; i < 5; ++i) {
    Append("alice");
    clock_.Advance(absl::Hours(1));
  }
  // Records 1..5 at +0h..+4h: everything before +3h goes.
  absl::StatusOr<uint64_t> deleted = log().DeleteOlderThan(kLogStart + absl::Hours(3));
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 3u);
  EXPECT_THAT(Sequences({}), ElementsAre(4, 5));

  AccessVerifyReport report = log().Verify();
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.first_sequence, 4u);
  EXPECT_EQ(report.records_checked, 2u);
  EXPECT_EQ(report.head_sequence, 5u);

  // Nothing more to delete at the same cutoff; appends continue the chain.
  deleted = log().DeleteOlderThan(kLogStart + absl::Hours(3));
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 0u);
  EXPECT_EQ(Append("bob"), 6u);
  Reopen();
  report = log().Verify();
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.first_sequence, 4u);
  EXPECT_EQ(report.head_sequence, 6u);
}

TEST_F(AccessLogTest, RetentionOfEveryRecordKeepsTheHeadHash) {
  Append("alice");
  Append("alice");
  const Hash head = log().HeadHash();
  clock_.Advance(absl::Hours(1));
  absl::StatusOr<uint64_t> deleted = log().DeleteOlderThan(clock_.Now());
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 2u);
  EXPECT_THAT(Sequences({}), ElementsAre());

  AccessVerifyReport report = log().Verify();
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.records_checked, 0u);
  EXPECT_EQ(report.first_sequence, 3u);
  EXPECT_EQ(report.head_sequence, 2u);
  EXPECT_EQ(report.head_hash, head);

  Reopen();
  EXPECT_EQ(log().HeadHash(), head);
  EXPECT_EQ(Append("bob"), 3u);
  EXPECT_TRUE(log().Verify().ok);
}

TEST_F(AccessLogTest, ConfiguredRetentionRunsOnTheWriter) {
  Append("alice");
  Append("alice");
  clock_.Advance(absl::Hours(2));
  Reopen({.retention = absl::Hours(1)});
  // The writer deletes at open, on its own thread.
  for (int i = 0; i < 500 && log().Verify().first_sequence != 3u; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  const AccessVerifyReport report = log().Verify();
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.first_sequence, 3u);
  EXPECT_EQ(Append("bob"), 3u);
  EXPECT_THAT(Sequences({}), ElementsAre(3));
}

TEST_F(AccessLogTest, ReadOnlyStoreReadsButRefusesAppends) {
  Append("alice");
  store_.reset();
  absl::StatusOr<std::unique_ptr<EventStore>> store = EventStore::OpenReadOnly(dir_, {});
  ASSERT_TRUE(store.ok()) << store.status();
  AccessLog* read_only = (*store)->access_log();
  ASSERT_NE(read_only, nullptr);
  absl::StatusOr<std::vector<StoredAccessRecord>> records = read_only->Read({});
  ASSERT_TRUE(records.ok());
  EXPECT_EQ(records->size(), 1u);
  EXPECT_TRUE(read_only->Verify().ok);
  EXPECT_EQ(read_only->AppendAndWait(AccessEntry{.principal = "bob"}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(read_only->DeleteOlderThan(absl::InfiniteFuture()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(AccessLogTest, ADatabaseFromBeforeTheAccessLogOpensReadOnlyWithoutOne) {
  store_.reset();
  std::filesystem::remove_all(dir_);
  rocksdb::DBOptions options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (int cf = 0; cf < keys::kAccessLog; ++cf) {
    families.emplace_back(keys::ColumnFamilyNames()[cf], rocksdb::ColumnFamilyOptions());
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(options, dir_, families, &handles, &db).ok());
  for (rocksdb::ColumnFamilyHandle* handle : handles) {
    ASSERT_TRUE(db->DestroyColumnFamilyHandle(handle).ok());
  }
  ASSERT_TRUE(db->Close().ok());
  delete db;

  absl::StatusOr<std::unique_ptr<EventStore>> read_only = EventStore::OpenReadOnly(dir_, {});
  ASSERT_TRUE(read_only.ok()) << read_only.status();
  EXPECT_EQ((*read_only)->access_log(), nullptr);
  EXPECT_EQ((*read_only)->HeadPosition(), 0u);
  read_only->reset();
  // The next read-write open adds the family.
  Reopen();
  EXPECT_EQ(Append("alice"), 1u);
}

// ---- Limits -------------------------------------------------------------------------------

// No caller can make a record large: every field is cut to the log's limits and the record says
// so, and the worst case reads back.
TEST_F(AccessLogTest, AppendCapsEveryFieldAndMarksTheRecordTruncated) {
  AccessEntry entry;
  entry.principal = std::string(1000, 'p');
  entry.on_behalf_of = std::string(1000, 'o');
  entry.rpc = std::string(1000, 'r');
  entry.filter = std::string(20 << 20, 'f');
  entry.peer = std::string(1000, 'a');
  for (int i = 0; i < 100000; ++i) entry.task_ids.push_back(std::string(200, 't'));
  entry.count = 100000;
  ASSERT_TRUE(log().AppendAndWait(std::move(entry)).ok());
  Append("alice");
  absl::StatusOr<std::vector<StoredAccessRecord>> records = log().Read(AccessQuery());
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 2u);
  const storage::v1::AccessRecord& worst = (*records)[0].record;
  EXPECT_TRUE(worst.truncated());
  EXPECT_EQ(worst.principal().size(), kMaxAccessIdBytes);
  EXPECT_EQ(worst.on_behalf_of().size(), kMaxAccessIdBytes);
  EXPECT_EQ(worst.rpc().size(), kMaxAccessRpcBytes);
  EXPECT_EQ(worst.filter().size(), kMaxAccessFilterBytes);
  EXPECT_EQ(worst.peer().size(), kMaxAccessPeerBytes);
  ASSERT_EQ(static_cast<std::size_t>(worst.task_ids_size()), kMaxAccessTaskIds);
  EXPECT_EQ(worst.task_ids(0).size(), kMaxAccessIdBytes);
  EXPECT_EQ(worst.count(), 100000u);  // the count stays what the call returned
  EXPECT_LT(worst.ByteSizeLong(), 64u << 10);
  EXPECT_FALSE((*records)[1].record.truncated());
  EXPECT_TRUE(log().Verify().ok);
}

TEST(TruncateUtf8Test, NeverCutsInsideACharacter) {
  std::string text = "ab\xc3\xa9";  // "abé": the é is two bytes
  EXPECT_TRUE(TruncateUtf8(&text, 3));
  EXPECT_EQ(text, "ab");
  text = "ab\xc3\xa9";
  EXPECT_FALSE(TruncateUtf8(&text, 4));
  EXPECT_EQ(text, "ab\xc3\xa9");
  text = "\xe2\x80\x94\xe2\x80\x94";  // two em dashes
  EXPECT_TRUE(TruncateUtf8(&text, 5));
  EXPECT_EQ(text, "\xe2\x80\x94");
}

// ---- Damage -------------------------------------------------------------------------------

TEST_F(AccessLogTest, VerifyNamesAnAlteredRecord) {
  Append("alice");
  Append("bob");
  Append("carol");
  EditRawAccessLog([](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family) {
    std::string value;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), family, RecordKey(2), &value).ok());
    const std::size_t at = value.find("bob");
    ASSERT_NE(at, std::string::npos);
    value.replace(at, 3, "eve");
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), family, RecordKey(2), value).ok());
  });
  Reopen();
  const AccessVerifyReport report = log().Verify();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_sequence, 2u);
  EXPECT_EQ(report.head_sequence, 1u);
  EXPECT_THAT(report.problem, ::testing::HasSubstr("hash"));
}

TEST_F(AccessLogTest, VerifyNamesADeletedRecord) {
  Append("alice");
  Append("bob");
  Append("carol");
  EditRawAccessLog([](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family) {
    ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), family, RecordKey(2)).ok());
  });
  Reopen();
  const AccessVerifyReport report = log().Verify();
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_sequence, 2u);
  EXPECT_THAT(report.problem, ::testing::HasSubstr("gap"));
}

TEST_F(AccessLogTest, AReaderRefusesAnUnknownFormatVersion) {
  Append("alice");
  EditRawAccessLog([](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family) {
    std::string value;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), family, RecordKey(1), &value).ok());
    value[0] = 9;
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), family, RecordKey(1), value).ok());
  });
  StoreOptions options;
  options.clock = &clock_;
  options.sync_writes = false;
  absl::StatusOr<std::unique_ptr<EventStore>> store = EventStore::Open(dir_, options);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(store.status().message(), ::testing::HasSubstr("format version 9"));
}

}  // namespace
}  // namespace outreach::store
