// The store's monitoring reads (store/store_observer.h): RocksDB's properties and row counts
// under a prefix. Each reads the database directly, when asked: nothing on the write path.
// Thread-safe (RocksDB's reads are).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "rocksdb/db.h"
#include "store/store_observer.h"

namespace outreach::store {

// RocksDB's figures summed over `families`.
RocksDbStats ReadRocksDbStats(rocksdb::DB* db,
                              const std::vector<rocksdb::ColumnFamilyHandle*>& families);

// Rows of `family` whose key starts with `prefix`, read under `read`.
absl::StatusOr<uint64_t> CountRowsWithPrefix(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family,
                                             const rocksdb::ReadOptions& read,
                                             const std::string& prefix);

// Rows of the expiry index due at `now` (expires_at <= now), at most `cap`.
absl::StatusOr<uint64_t> CountExpiryRowsDue(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* expiry,
                                            absl::Time now, uint64_t cap);

}  // namespace outreach::store
