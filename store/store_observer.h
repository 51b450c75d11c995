// What the store reports for monitoring, without knowing who listens (outreachd binds it to
// Prometheus in server/metrics.h; the store links no metrics library).
//
// Two kinds of figures:
//  - Events of the write path, pushed to a StoreObserver as they happen (a histogram needs each
//    one): a batch committed (its size, its write+fsync time), commands refused without being
//    decided, a rebuild's progress. The writer calls them on its own thread, so they must be
//    cheap and must not block or call back into the store.
//  - Levels read when asked (EventStore::Stats, RocksDbStats, CountDueTasks,
//    CountOpenTasksByKind): nothing on the write path keeps them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "absl/time/time.h"

namespace outreach::store {

class StoreObserver {
 public:
  virtual ~StoreObserver() = default;
  // Writer thread: a batch of `commands` (replays and refusals by the rules included) was
  // written and synced; `commit` is the time of the write and its fsync.
  virtual void BatchCommitted(std::size_t commands, absl::Duration commit) = 0;
  // Writer thread: `commands` refused without being decided (a latched write failure, the
  // free-space reserve).
  virtual void CommandsRefused(std::size_t commands) = 0;
  // A rebuild of the projections (at Open or EventStore::RebuildProjections), on the thread
  // that runs it: `folded` of `total` events so far; folded == total at the end.
  virtual void RebuildProgress(uint64_t folded, uint64_t total) = 0;
};

// The store's levels and counts since it was opened.
struct StoreStats {
  uint64_t head_position = 0;
  uint64_t queue_depth = 0;          // commands queued for the writer, not yet taken
  uint64_t access_log_appends = 0;   // access records appended since Open
  uint64_t verify_failures = 0;      // VerifyLog calls that found the log damaged, since Open
  uint64_t checkpoints = 0;          // verified checkpoints the writer recorded since Open
};

// RocksDB's own figures (DB::GetIntProperty / GetMapProperty, summed over column families).
struct RocksDbStats {
  uint64_t live_sst_bytes = 0;             // rocksdb.live-sst-files-size
  uint64_t memtable_bytes = 0;             // rocksdb.cur-size-all-mem-tables
  uint64_t pending_compaction_bytes = 0;   // rocksdb.estimate-pending-compaction-bytes
  uint64_t write_stalls = 0;               // io_stalls.total_slowdown + total_stop (cfstats)
  bool write_stopped = false;              // rocksdb.is-write-stopped
};

}  // namespace outreach::store
