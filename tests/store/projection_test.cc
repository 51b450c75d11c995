// Projections as plug-ins (store/projection.h): the registry owns each projection family once,
// in family order; and a projection that is not a function of one task's state (an
// event-derived counter) fits the same interface: what its live updates write is what its fold
// emits.
#include "store/projection.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "rocksdb/table.h"
#include "store/database.h"
#include "store/keys.h"
#include "store/log_fold.h"
#include "store/projections/registry.h"
#include "store/projections/requests.h"
#include "store/sorted_rows.h"
#include "tests/testing/temp_dir.h"

namespace outreach::store {
namespace {

// Test-only: the number of events each actor recorded, "actor:" actor -> fixed64_be count. Its
// live update reads the current count, as a counter by assignee and day would.
constexpr keys::Cf kCounterFamily = keys::kDefault;  // any family: nothing here is stored

std::string CounterKey(const std::string& actor) { return "actor:" + actor; }

class EventsPerActorFold final : public ProjectionFold {
 public:
  absl::Status OnEvent(const storage::v1::StoredEvent& event, uint64_t /*position*/) override {
    ++counts_[CounterKey(event.actor())];
    return absl::OkStatus();
  }
  absl::Status Finish(const FoldedLog& /*folded*/) override { return absl::OkStatus(); }
  const std::map<std::string, uint64_t>& counts() const { return counts_; }  // in key order

 private:
  std::map<std::string, uint64_t> counts_;
};

class EventsPerActor final : public Projection {
 public:
  absl::string_view name() const override { return "events_per_actor"; }
  absl::Span<const FamilySpec> families() const override { return kFamilies; }

  absl::Status OnCommand(const CommandChange& change, SortedRows& rows) const override {
    for (const StreamChange& stream : change.streams) {
      if (absl::Status s = Count(stream, change, rows); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::Status Count(const StreamChange& stream, const CommandChange& change,
                     SortedRows& rows) const {
    for (const storage::v1::StoredEvent* event : stream.events) {
      const std::string key = CounterKey(event->actor());
      absl::StatusOr<std::optional<std::string>> current = change.rows->Get(kCounterFamily, key);
      if (!current.ok()) return current.status();
      uint64_t count = 0;
      if (current->has_value() && !keys::DecodeFixed64BE(**current, &count)) {
        return absl::DataLossError("events_per_actor: malformed count");
      }
      rows.Put(kCounterFamily, key, keys::EncodeFixed64BE(count + 1));
    }
    return absl::OkStatus();
  }

  std::unique_ptr<ProjectionFold> StartFold() const override {
    return std::make_unique<EventsPerActorFold>();
  }

  absl::Status Emit(const FoldedLog& /*folded*/, const ProjectionFold* own,
                    RowSink emit) const override {
    for (const auto& [key, count] : static_cast<const EventsPerActorFold*>(own)->counts()) {
      if (absl::Status s = emit(kCounterFamily, key, keys::EncodeFixed64BE(count)); !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }

 private:
  static constexpr FamilySpec kFamilies[] = {{kCounterFamily, FamilyReads::kPointLookups}};
};

// The writer's view for these tests: an empty store, plus the batch's rows.
class BatchOnly final : public RowReader {
 public:
  explicit BatchOnly(const SortedRows& rows) : rows_(rows) {}
  absl::StatusOr<std::optional<std::string>> Get(keys::Cf family,
                                                 absl::string_view key) const override {
    std::optional<std::optional<absl::string_view>> row = rows_.Find(family, key);
    if (!row.has_value() || !row->has_value()) return std::nullopt;
    return std::string(**row);
  }

 private:
  const SortedRows& rows_;
};

storage::v1::StoredEvent Event(const std::string& task_id, const std::string& actor,
                               uint64_t position) {
  storage::v1::StoredEvent event;
  event.set_task_id(task_id);
  event.set_actor(actor);
  event.set_position(position);
  return event;
}

TEST(ProjectionRegistryTest, EveryProjectionFamilyIsOwnedOnceInFamilyOrder) {
  const std::vector<keys::Cf> expected = {keys::kStreams,  keys::kTasks,    keys::kWorklist,
                                          keys::kExpiry,   keys::kRequests, keys::kPatients,
                                          keys::kStats};
  EXPECT_EQ(FamiliesOf(RegisteredProjections()), expected);
  EXPECT_EQ(std::vector<keys::Cf>(ProjectionFamilies().begin(), ProjectionFamilies().end()),
            expected);
  for (const Projection* projection : RegisteredProjections()) {
    EXPECT_EQ(projection->families().size(), 1u) << projection->name();
    EXPECT_EQ(keys::ColumnFamilyNames()[projection->families()[0].id], projection->name());
  }
}

// The store tunes each projection's families as the projection says they are read: bloom
// filters in the tables and the memtable for point lookups, none for ranges.
TEST(ProjectionRegistryTest, TheStoreTunesEachFamilyAsItsProjectionReadsIt) {
  outreach::testing::TempDir dir("outreach_projection_test_");
  absl::StatusOr<std::unique_ptr<Database>> database = Database::Open(dir.path(), {});
  ASSERT_TRUE(database.ok()) << database.status();
  int point_lookups = 0;
  for (const Projection* projection : RegisteredProjections()) {
    for (const FamilySpec& family : projection->families()) {
      const rocksdb::Options options = (*database)->db()->GetOptions((*database)->cf(family.id));
      const auto* table = options.table_factory->GetOptions<rocksdb::BlockBasedTableOptions>();
      ASSERT_NE(table, nullptr) << projection->name();
      const bool lookups = family.reads == FamilyReads::kPointLookups;
      point_lookups += lookups ? 1 : 0;
      EXPECT_EQ(table->filter_policy != nullptr, lookups) << projection->name();
      EXPECT_EQ(options.memtable_whole_key_filtering, lookups) << projection->name();
    }
  }
  EXPECT_EQ(point_lookups, 3);  // tasks, requests, patients
}

// Every family's memtables share one budget: a busy writer's peak memory is bounded by it, not
// by 64 MiB per family.
TEST(DatabaseTest, TheMemtablesOfEveryFamilyShareOneBudget) {
  outreach::testing::TempDir dir("outreach_projection_test_");
  absl::StatusOr<std::unique_ptr<Database>> database = Database::Open(dir.path(), {});
  ASSERT_TRUE(database.ok()) << database.status();
  EXPECT_EQ((*database)->db()->GetDBOptions().db_write_buffer_size,
            DatabaseOptions().memtable_budget_bytes);
  EXPECT_EQ(DatabaseOptions().memtable_budget_bytes, std::size_t{64} << 20);
}

TEST(EventDerivedProjectionTest, TheFoldEmitsWhatTheLiveUpdatesWrote) {
  // Three commands, one of two events; alice acts on two tasks.
  const std::vector<std::vector<storage::v1::StoredEvent>> commands = {
      {Event("t1", "alice", 1), Event("t1", "alice", 2)},
      {Event("t2", "bob", 3)},
      {Event("t2", "alice", 4)}};
  const EventsPerActor projection;

  SortedRows live;  // one batch for all three commands
  const BatchOnly reader(live);
  for (const auto& command : commands) {
    std::vector<const storage::v1::StoredEvent*> events;
    for (const auto& event : command) events.push_back(&event);
    const v1::Task after;
    const StreamChange streams[] = {
        StreamChange{.task_id = command[0].task_id(), .after = &after, .events = events}};
    CommandChange change{.streams = streams, .actor = command[0].actor(), .rows = &reader};
    change.last_position = command.back().position();
    ASSERT_TRUE(projection.OnCommand(change, live).ok());
  }

  FoldedLog folded;
  const Projection* const set[] = {&projection};
  folded.projections = set;
  folded.own.push_back(projection.StartFold());
  for (const auto& command : commands) {
    for (const auto& event : command) {
      ASSERT_TRUE(folded.own[0]->OnEvent(event, event.position()).ok());
    }
  }
  ASSERT_TRUE(folded.own[0]->Finish(folded).ok());
  std::vector<std::pair<std::string, std::string>> emitted;
  ASSERT_TRUE(EmitRows(folded, [&](keys::Cf family, absl::string_view key,
                                   absl::string_view value) {
                EXPECT_EQ(family, kCounterFamily);
                emitted.emplace_back(std::string(key), std::string(value));
                return absl::OkStatus();
              }).ok());

  const std::vector<std::pair<std::string, std::string>> expected = {
      {"actor:alice", keys::EncodeFixed64BE(3)}, {"actor:bob", keys::EncodeFixed64BE(1)}};
  EXPECT_EQ(emitted, expected);
  for (const auto& [key, value] : emitted) {
    EXPECT_EQ(live.Find(kCounterFamily, key), std::optional<absl::string_view>(value)) << key;
  }
}

// A request that appended to two streams (a command that touches several tasks): the live
// record lists both, in the order of their first event, and the fold of the same events writes
// the same record.
TEST(RequestsProjectionTest, ARequestOverSeveralStreamsRecordsEachLiveAndInTheFold) {
  std::vector<storage::v1::StoredEvent> events = {Event("t2", "alice", 7), Event("t1", "alice", 8),
                                                  Event("t2", "alice", 9)};
  const int64_t versions[] = {3, 5, 4};
  for (std::size_t i = 0; i < events.size(); ++i) {
    events[i].set_request_id("req-1");
    events[i].set_version(versions[i]);
  }
  events[0].set_request_fingerprint("fp");
  v1::Task t2_after;
  t2_after.set_version(4);
  v1::Task t1_after;
  t1_after.set_version(5);
  const storage::v1::StoredEvent* t2_events[] = {&events[0], &events[2]};
  const storage::v1::StoredEvent* t1_events[] = {&events[1]};
  const StreamChange streams[] = {
      StreamChange{.task_id = "t2", .after = &t2_after, .events = t2_events},
      StreamChange{.task_id = "t1", .after = &t1_after, .events = t1_events}};
  const std::string request_key = keys::RequestKey("alice", "req-1");
  SortedRows live;
  const BatchOnly reader(live);
  const CommandChange change{.streams = streams,
                             .actor = "alice",
                             .request_id = "req-1",
                             .request_key = request_key,
                             .fingerprint = "fp",
                             .last_position = 9,
                             .rows = &reader};
  ASSERT_TRUE(RequestsProjection().OnCommand(change, live).ok());

  std::unique_ptr<ProjectionFold> fold = RequestsProjection().StartFold();
  for (const auto& event : events) ASSERT_TRUE(fold->OnEvent(event, event.position()).ok());
  FoldedLog folded;
  ASSERT_TRUE(fold->Finish(folded).ok());
  std::vector<std::string> emitted;
  ASSERT_TRUE(RequestsProjection()
                  .Emit(folded, fold.get(),
                        [&](keys::Cf, absl::string_view key, absl::string_view value) {
                          EXPECT_EQ(key, request_key);
                          emitted.emplace_back(value);
                          return absl::OkStatus();
                        })
                  .ok());
  ASSERT_EQ(emitted.size(), 1u);
  EXPECT_EQ(live.Find(keys::kRequests, request_key), std::optional<absl::string_view>(emitted[0]));

  storage::v1::RequestRecord record;
  ASSERT_TRUE(record.ParseFromString(emitted[0]));
  EXPECT_EQ(record.task_id(), "t2");
  EXPECT_EQ(record.task_version(), 4);
  ASSERT_EQ(record.more_streams_size(), 1);
  EXPECT_EQ(record.more_streams(0).task_id(), "t1");
  EXPECT_EQ(record.more_streams(0).version(), 5);
  EXPECT_EQ(record.last_position(), 9u);
}

TEST(SortedRowsFindTest, FindSeesTheLastOperationAndTruncateForgetsTheRowsAfter) {
  SortedRows rows;
  rows.Put(keys::kTasks, "a", "1");
  const std::size_t mark = rows.size();
  rows.Put(keys::kTasks, "a", "2");
  rows.Delete(keys::kTasks, "b");
  EXPECT_EQ(rows.Find(keys::kTasks, "a"), std::optional<absl::string_view>("2"));
  ASSERT_TRUE(rows.Find(keys::kTasks, "b").has_value());  // deleted: a row without a value
  EXPECT_FALSE(rows.Find(keys::kTasks, "b")->has_value());
  EXPECT_EQ(rows.Find(keys::kWorklist, "a"), std::nullopt);
  rows.Truncate(mark);
  EXPECT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows.Find(keys::kTasks, "a"), std::optional<absl::string_view>("1"));
  EXPECT_EQ(rows.Find(keys::kTasks, "b"), std::nullopt);
}

}  // namespace
}  // namespace outreach::store
