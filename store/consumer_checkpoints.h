// ConsumerCheckpoints: the durable consumers' checkpoints (EventLog.AckEvents, Follow,
// ListConsumers), in the "consumers" column family (store/keys.h). Not a projection of the log:
// like the access log, the rows are what consumers said, so a rebuild leaves them alone.
//
//   "consumers": name -> position: fixed64_be | acked_at: fixed64_be (unix micros)
//                (position: the last event the consumer has handled; acked_at: when that
//                checkpoint was stored. Version 1; a reader that finds another length refuses
//                the row with DATA_LOSS.)
//
// Acks go through a GroupCommit (store/group_commit.h): one synced write serves every ack
// queued meanwhile, and the caller's thread never waits on the fsync. The writer thread is the
// only one that writes the family, so a checkpoint is read, compared and replaced without a race:
// it only moves forward. Thread-safe; `db`, `family`, `clock` and `head` must outlive it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "store/clock.h"
#include "store/group_commit.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace outreach::store {

struct ConsumerCheckpoint {
  std::string name;
  uint64_t position = 0;  // the last event handled
  absl::Time acked_at;    // when it was stored
};

struct AckResult {
  uint64_t checkpoint = 0;  // the stored checkpoint after the ack
  bool advanced = false;    // false: the ack was not above it and was ignored
};

class ConsumerCheckpoints {
 public:
  using Done = absl::AnyInvocable<void(absl::StatusOr<AckResult>) &&>;

  // `head` returns the log's head position (what an ack may not pass). Read-only: every Ack is
  // FAILED_PRECONDITION, reads work.
  ConsumerCheckpoints(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family, Clock* clock,
                      std::function<uint64_t()> head, bool sync, bool read_only);
  ConsumerCheckpoints(const ConsumerCheckpoints&) = delete;
  ConsumerCheckpoints& operator=(const ConsumerCheckpoints&) = delete;
  // Writes every queued ack and runs every `done`.
  ~ConsumerCheckpoints();

  // Stores `position` as `consumer`'s checkpoint once durable, unless it is not above the
  // stored one (then `done` gets the stored one, advanced = false). OUT_OF_RANGE past the head;
  // INVALID_ARGUMENT for position 0; UNAVAILABLE if the write fails. `consumer` is validated by
  // the caller. `done` runs on the completion thread (at once, on the caller's, when refused).
  void Ack(std::string consumer, uint64_t position, Done done);
  absl::StatusOr<AckResult> AckAndWait(std::string consumer, uint64_t position);

  // The consumer's checkpoint; nullopt if it never acked. DATA_LOSS on a malformed row.
  absl::StatusOr<std::optional<ConsumerCheckpoint>> Get(absl::string_view consumer) const;
  // Every consumer's checkpoint, by name.
  absl::StatusOr<std::vector<ConsumerCheckpoint>> List() const;

 private:
  struct AckItem {
    std::string consumer;
    uint64_t position = 0;
  };
  using Writer = GroupCommit<AckItem, absl::StatusOr<AckResult>>;

  std::vector<absl::StatusOr<AckResult>> WriteBatchOf(std::vector<AckItem>& items);

  rocksdb::DB* const db_;
  rocksdb::ColumnFamilyHandle* const family_;
  Clock* const clock_;
  const std::function<uint64_t()> head_;
  const bool sync_;
  std::unique_ptr<Writer> writer_;  // nullptr when read-only
};

}  // namespace outreach::store
