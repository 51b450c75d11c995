// The on-disk formats of store/event_codec.h and store/keys.h: round trips, ordering, and what a
// reader does with bytes it must not trust.
#include <string>

#include "absl/strings/str_cat.h"
#include "domain/validation.h"
#include "gtest/gtest.h"
#include "store/event_codec.h"
#include "store/keys.h"

namespace outreach::store {
namespace {

storage::v1::StoredEvent SampleEvent(uint64_t position) {
  storage::v1::StoredEvent event;
  event.set_schema_version(kEventSchemaVersion);
  event.set_position(position);
  event.set_task_id("t1");
  event.set_version(1);
  event.set_event_id("e1");
  event.set_actor("coordinator-1");
  event.mutable_task_created()->set_patient_id("p1");
  event.mutable_task_created()->set_kind(v1::MANUAL);
  return event;
}

TEST(EventCodecTest, EncodedEventDecodesToTheSameEventAndVerifies) {
  Hash hash;
  const std::string value = EncodeEvent(SampleEvent(7), ZeroHash(), &hash);
  absl::StatusOr<DecodedEvent> decoded = DecodeEvent(7, value);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->event.task_id(), "t1");
  EXPECT_EQ(decoded->prev_hash, ZeroHash());
  EXPECT_EQ(decoded->hash, hash);
  EXPECT_TRUE(VerifyEventHash(*decoded));
  const v1::EventRecord record = ToEventRecord(*decoded);
  EXPECT_EQ(record.position(), 7u);
  EXPECT_EQ(record.hash(), std::string(AsBytes(hash)));
  EXPECT_EQ(record.schema_version(), kEventSchemaVersion);
  EXPECT_TRUE(record.has_task_created());
}

TEST(EventCodecTest, HashCoversThePosition) {
  EXPECT_NE(ChainHash(ZeroHash(), 1, "body"), ChainHash(ZeroHash(), 2, "body"));
}

TEST(EventCodecTest, FlippedBodyByteFailsTheHash) {
  Hash hash;
  std::string value = EncodeEvent(SampleEvent(1), ZeroHash(), &hash);
  value.back() ^= 0x01;
  absl::StatusOr<DecodedEvent> decoded = DecodeEvent(1, value);
  if (decoded.ok()) {
    EXPECT_FALSE(VerifyEventHash(*decoded));
  } else {
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
  }
}

TEST(EventCodecTest, UnknownFormatVersionIsDataLossNamingIt) {
  Hash hash;
  std::string value = EncodeEvent(SampleEvent(3), ZeroHash(), &hash);
  value[0] = 2;
  absl::StatusOr<DecodedEvent> decoded = DecodeEvent(3, value);
  ASSERT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(decoded.status().message().find("format_version 2"), std::string::npos);
  EXPECT_NE(decoded.status().message().find("position 3"), std::string::npos);
}

TEST(EventCodecTest, NewerSchemaVersionIsDataLossNotSkipped) {
  storage::v1::StoredEvent event = SampleEvent(4);
  event.set_schema_version(kEventSchemaVersion + 1);
  Hash hash;
  absl::StatusOr<DecodedEvent> decoded = DecodeEvent(4, EncodeEvent(event, ZeroHash(), &hash));
  ASSERT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
  const std::string newer = absl::StrCat("schema_version ", kEventSchemaVersion + 1);
  EXPECT_NE(decoded.status().message().find(newer), std::string::npos);
}

TEST(EventCodecTest, TruncatedOrMisplacedValueIsDataLoss) {
  Hash hash;
  const std::string value = EncodeEvent(SampleEvent(5), ZeroHash(), &hash);
  EXPECT_EQ(DecodeEvent(5, value.substr(0, 20)).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeEvent(5, "").status().code(), absl::StatusCode::kDataLoss);
  // The body says 5; stored under key 6 it is misplaced.
  EXPECT_EQ(DecodeEvent(6, value).status().code(), absl::StatusCode::kDataLoss);
}

TEST(KeysTest, EventKeysSortInPositionOrder) {
  EXPECT_LT(keys::EventKey(255), keys::EventKey(256));
  EXPECT_LT(keys::EventKey(1), keys::EventKey(uint64_t{1} << 40));
  uint64_t position = 0;
  ASSERT_TRUE(keys::ParseEventKey(keys::EventKey(123456789), &position));
  EXPECT_EQ(position, 123456789u);
}

TEST(KeysTest, WorklistKeysSortByFollowUpDateThenUrgencyThenTaskIdWithNoDateLast) {
  const std::string prefix =
      keys::WorklistPrefix(keys::Scope::kKind, keys::KindScopeValue(v1::MANUAL), v1::OPEN);
  const uint8_t urgent = keys::UrgencyRank(v1::URGENT);
  const uint8_t routine = keys::UrgencyRank(v1::ROUTINE);
  EXPECT_EQ(keys::UrgencyRank(v1::TASK_PRIORITY_UNSPECIFIED), routine);
  const std::string early = keys::WorklistKey(prefix, keys::DayKeyOfDate("2025-01-02"), routine,
                                              "zzz");
  const std::string late_urgent =
      keys::WorklistKey(prefix, keys::DayKeyOfDate("2025-10-01"), urgent, "z");
  const std::string late_a = keys::WorklistKey(prefix, keys::DayKeyOfDate("2025-10-01"), routine,
                                               "a");
  const std::string late_b = keys::WorklistKey(prefix, keys::DayKeyOfDate("2025-10-01"), routine,
                                               "b");
  const std::string none = keys::WorklistKey(prefix, keys::DayKeyOfDate(""), urgent, "a");
  EXPECT_LT(early, late_urgent);
  EXPECT_LT(late_urgent, late_a);
  EXPECT_LT(late_a, late_b);
  EXPECT_LT(late_b, none);
  EXPECT_LT(keys::DayKeyOfDate("1900-01-01"), keys::DayKeyOfDate("1970-01-01"));
  uint32_t day = 0;
  uint8_t urgency = 9;
  std::string task_id;
  ASSERT_TRUE(keys::ParseWorklistSuffix(absl::string_view(late_urgent).substr(prefix.size()),
                                        &day, &urgency, &task_id));
  EXPECT_EQ(day, keys::DayKeyOfDate("2025-10-01"));
  EXPECT_EQ(urgency, urgent);
  EXPECT_EQ(task_id, "z");
}

TEST(KeysTest, WorklistValueRoundTripsEveryFilteredField) {
  const keys::WorklistValue value{.kind = v1::AUTOMATIC,
                                  .category = v1::RECALL_OVERDUE,
                                  .patient_id = "patient-1",
                                  .assignee = "",
                                  .practice_id = "north"};
  keys::WorklistValue parsed;
  ASSERT_TRUE(keys::DecodeWorklistValue(keys::EncodeWorklistValue(value), &parsed));
  EXPECT_EQ(parsed.kind, v1::AUTOMATIC);
  EXPECT_EQ(parsed.category, v1::RECALL_OVERDUE);
  EXPECT_EQ(parsed.patient_id, "patient-1");
  EXPECT_EQ(parsed.assignee, "");
  EXPECT_EQ(parsed.practice_id, "north");
  EXPECT_FALSE(keys::DecodeWorklistValue(std::string("\x01\x07p1", 4), &parsed));
}

TEST(KeysTest, ExpiryKeysSortByTimeAndRoundTrip) {
  const absl::Time t = absl::FromUnixMicros(1'700'000'000'123'456);
  EXPECT_LT(keys::ExpiryKey(t, "b"), keys::ExpiryKey(t + absl::Microseconds(1), "a"));
  EXPECT_LT(keys::ExpiryKey(absl::FromUnixSeconds(-5), "a"), keys::ExpiryKey(t, "a"));
  absl::Time parsed;
  std::string task_id;
  ASSERT_TRUE(keys::ParseExpiryKey(keys::ExpiryKey(t, "task-1"), &parsed, &task_id));
  EXPECT_EQ(parsed, t);
  EXPECT_EQ(task_id, "task-1");
}

TEST(KeysTest, OpenAutomaticTaskOwnsAnExpiryRowAndClosedOneDoesNot) {
  v1::Task task;
  task.set_task_id("t1");
  task.set_patient_id("p1");
  task.set_kind(v1::AUTOMATIC);
  task.set_status(v1::OPEN);
  task.set_assignee("nurse-1");
  *task.mutable_expires_at() = domain::ToProto(absl::FromUnixSeconds(1'800'000'000));
  keys::IndexRows rows = keys::IndexRowsFor(task);
  EXPECT_TRUE(rows.expiry.has_value());
  EXPECT_EQ(rows.worklist.size(), 4u);  // kind, patient, assignee, practice
  task.set_status(v1::CLOSED);
  task.clear_assignee();
  rows = keys::IndexRowsFor(task);
  EXPECT_FALSE(rows.expiry.has_value());
  EXPECT_EQ(rows.worklist.size(), 3u);  // kind, patient, practice
}

TEST(KeysTest, CheckpointWithABadChecksumIsDataLoss) {
  storage::v1::VerifiedCheckpoint checkpoint;
  checkpoint.set_position(9);
  checkpoint.set_hash(std::string(kHashSize, 'h'));
  std::string bytes = keys::EncodeCheckpoint(checkpoint);
  absl::StatusOr<storage::v1::VerifiedCheckpoint> decoded = keys::DecodeCheckpoint(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->position(), 9u);
  bytes[0] ^= 0x20;
  EXPECT_EQ(keys::DecodeCheckpoint(bytes).status().code(), absl::StatusCode::kDataLoss);
}

// The writer keeps a task as its Task without contacts and the contacts as bytes: the row it
// writes from those two parts is byte for byte EncodeTask of the whole task, and reading a row
// back gives the two parts again.
TEST(KeysTest, ATaskRowFromItsPartsIsTheWholeTasksRowAndSplitsBack) {
  v1::Task whole;
  whole.set_task_id("t1");
  whole.set_version(4);
  whole.set_status(v1::IN_PROGRESS);
  whole.set_follow_up_date("2025-03-20");  // field 10, before contacts (11)
  whole.set_attempt_count(3);              // fields above 11 come after them
  whole.set_practice_id("north");
  std::string contacts;
  for (int i = 0; i < 3; ++i) {
    v1::Contact* contact = whole.add_contacts();
    contact->set_outcome(i == 1 ? v1::LEFT_MESSAGE : v1::NO_ANSWER);
    contact->set_notes(absl::StrCat("call ", i, std::string(200 * i, 'x')));
    contact->set_follow_up_date("2025-03-20");
    contact->mutable_contacted_at()->set_seconds(1700000000 + i);
    keys::AppendContactBytes(*contact, &contacts);
  }
  v1::Task summary = whole;
  summary.clear_contacts();

  std::string row;
  ASSERT_TRUE(keys::EncodeTaskRow(summary, contacts, &row).ok());
  EXPECT_EQ(row, keys::EncodeTask(whole));

  v1::Task read;
  std::string read_contacts;
  ASSERT_TRUE(keys::DecodeTaskRow(row, &read, &read_contacts).ok());
  EXPECT_EQ(read_contacts, contacts);
  EXPECT_EQ(keys::EncodeTask(read), keys::EncodeTask(summary));

  // Without contacts: the row is the task's own; reading it gives no contact bytes.
  ASSERT_TRUE(keys::EncodeTaskRow(summary, "", &row).ok());
  EXPECT_EQ(row, keys::EncodeTask(summary));
  ASSERT_TRUE(keys::DecodeTaskRow(row, &read, &read_contacts).ok());
  EXPECT_TRUE(read_contacts.empty());

  EXPECT_EQ(keys::DecodeTaskRow("\xff\xff\xff", &read, &read_contacts).code(),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace outreach::store
