// RocksDB's info log (<db>/LOG) for a writable store, written with plain write(2), dropping any
// line it cannot write.
//
// Why not RocksDB's own file logger: after one failed append (a full disk) its WritableFileWriter
// asserts on the next line — an abort of the whole server on the first RocksDB message after the
// disk fills (issue 19: "AssertFalseAndGetStatusForPrevError: Assertion
// 'sync_without_flush_called_' failed"). Losing log lines while the disk is full is the lesser
// harm. The previous run's LOG is kept as LOG.old; each file stops at kInfoLogMaxBytes (RocksDB's
// rotation, keep_log_file_num, applies only to its own logger). Thread-safe (RocksDB logs from
// many threads).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "rocksdb/env.h"

namespace outreach::store {

inline constexpr uint64_t kInfoLogMaxBytes = uint64_t{64} << 20;

// Creates `dir` if missing, moves an existing LOG to LOG.old, and opens a fresh LOG.
absl::StatusOr<std::shared_ptr<rocksdb::Logger>> OpenInfoLog(const std::string& dir);

}  // namespace outreach::store
