// "expiry": expires_at | task_id for each open automatic task (store/keys.h), what the expiry
// scheduler reads.
// Stateless; thread-safe.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "rocksdb/db.h"
#include "store/projection.h"

namespace outreach::store {

const Projection& ExpiryProjection();

// The earliest expires_at in the index (`expiry` is its column family), if any.
std::optional<absl::Time> NextExpiry(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* expiry);

// The task ids of up to `max` rows due at `now`, starting after `*start` (exclusive; empty = from
// the first), which is moved past the last row returned. DATA_LOSS on a malformed row.
absl::StatusOr<std::vector<std::string>> DueTasks(rocksdb::DB* db,
                                                  rocksdb::ColumnFamilyHandle* expiry,
                                                  absl::Time now, std::string* start,
                                                  std::size_t max);

}  // namespace outreach::store
