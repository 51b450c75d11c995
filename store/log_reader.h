// LogReader: what an open database holds of the event log, read without changing anything:
// events by position (decoded and upcast through the SchemaRegistry), the head row, and a task's
// stream folded in version order (the "streams" rows, each checked against the event it points
// at). The on-disk format is in store/keys.h and store/event_codec.h.
//
// Non-owning and cheap to copy: the database, its column family handles (indexed by keys::Cf)
// and the schema registry must outlive it. Thread-safe (RocksDB reads are); every read takes the
// caller's ReadOptions, so that several reads can share one snapshot.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "outreach/v1/events.pb.h"
#include "outreach/v1/storage.pb.h"
#include "outreach/v1/task.pb.h"
#include "rocksdb/db.h"
#include "store/event_codec.h"
#include "store/keys.h"

namespace outreach::store {

// Applies one stored event to `task` (domain::Apply); DATA_LOSS if the stream breaks the rules.
absl::Status ApplyChecked(v1::Task& task, const storage::v1::StoredEvent& event);

class LogReader {
 public:
  LogReader(rocksdb::DB* db, const std::vector<rocksdb::ColumnFamilyHandle*>* handles,
            const SchemaRegistry* schemas)
      : db_(db), handles_(handles), schemas_(schemas) {}

  rocksdb::DB* db() const { return db_; }
  rocksdb::ColumnFamilyHandle* cf(keys::Cf family) const { return (*handles_)[family]; }
  const SchemaRegistry& schemas() const { return *schemas_; }

  // The event at `position`: DATA_LOSS if it is missing or does not decode.
  absl::StatusOr<DecodedEvent> ReadEvent(const rocksdb::ReadOptions& read,
                                         uint64_t position) const;

  // The head row (position 0 and the zero hash when the log is empty); DATA_LOSS if malformed.
  absl::Status ReadHeadRow(const rocksdb::ReadOptions& read, uint64_t* position,
                           Hash* hash) const;

  // Folds task `task_id`'s stream in version order under `read`, through version `max_version`
  // or up to the first event `keep` refuses, calling `visit(before, after, event)` for each
  // event folded. Sets `*task` to the result; returns how many events were folded.
  absl::StatusOr<int64_t> FoldTask(
      const rocksdb::ReadOptions& read, absl::string_view task_id, int64_t max_version,
      absl::FunctionRef<bool(const DecodedEvent&)> keep,
      absl::FunctionRef<void(const v1::Task&, const v1::Task&, const DecodedEvent&)> visit,
      v1::Task* task) const;

  // Up to `limit` events (0 = no limit) with position >= from_position, in position order;
  // only task `task_id`'s events when it is not empty (read through its stream).
  absl::StatusOr<std::vector<v1::EventRecord>> ReadEvents(const rocksdb::ReadOptions& read,
                                                          uint64_t from_position,
                                                          absl::string_view task_id,
                                                          uint64_t limit) const;

  // Whether task `task_id`'s "streams" row for `version` points at a position before `position`.
  bool StreamHasVersionBefore(const rocksdb::ReadOptions& read, const std::string& task_id,
                              int64_t version, uint64_t position) const;

 private:
  // Calls `visit` with the position of each of the task's events, in version order, while it
  // returns true; stops at its first error (returned) or false.
  absl::Status ForEachStreamPosition(
      const rocksdb::ReadOptions& read, absl::string_view task_id,
      absl::FunctionRef<absl::StatusOr<bool>(uint64_t position)> visit) const;

  rocksdb::DB* db_;
  const std::vector<rocksdb::ColumnFamilyHandle*>* handles_;
  const SchemaRegistry* schemas_;
};

}  // namespace outreach::store
