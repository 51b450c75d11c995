#include "store/store_stats.h"

#include <map>
#include <memory>
#include <string>

#include "absl/strings/numbers.h"
#include "store/keys.h"
#include "store/rocks.h"

namespace outreach::store {
namespace {

uint64_t IntProperty(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family,
                     const rocksdb::Slice& name) {
  uint64_t value = 0;
  return db->GetIntProperty(family, name, &value) ? value : 0;
}

// Slowdowns and stops RocksDB has imposed on writes to `family` since it opened.
uint64_t WriteStalls(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family) {
  std::map<std::string, std::string> stats;
  if (!db->GetMapProperty(family, rocksdb::DB::Properties::kCFStats, &stats)) return 0;
  uint64_t stalls = 0;
  for (const char* key : {"io_stalls.total_slowdown", "io_stalls.total_stop"}) {
    auto it = stats.find(key);
    double value = 0;
    if (it != stats.end() && absl::SimpleAtod(it->second, &value) && value > 0) {
      stalls += static_cast<uint64_t>(value);
    }
  }
  return stalls;
}

}  // namespace

RocksDbStats ReadRocksDbStats(rocksdb::DB* db,
                              const std::vector<rocksdb::ColumnFamilyHandle*>& families) {
  RocksDbStats stats;
  for (rocksdb::ColumnFamilyHandle* family : families) {
    if (family == nullptr) continue;
    stats.live_sst_bytes += IntProperty(db, family, rocksdb::DB::Properties::kLiveSstFilesSize);
    stats.memtable_bytes += IntProperty(db, family, rocksdb::DB::Properties::kCurSizeAllMemTables);
    stats.pending_compaction_bytes +=
        IntProperty(db, family, rocksdb::DB::Properties::kEstimatePendingCompactionBytes);
    stats.write_stalls += WriteStalls(db, family);
  }
  // A DB-wide property: any family answers it.
  if (!families.empty() && families.front() != nullptr) {
    stats.write_stopped =
        IntProperty(db, families.front(), rocksdb::DB::Properties::kIsWriteStopped) != 0;
  }
  return stats;
}

absl::StatusOr<uint64_t> CountRowsWithPrefix(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family,
                                             const rocksdb::ReadOptions& read,
                                             const std::string& prefix) {
  std::string upper = prefix;
  // The prefixes counted here end below 0xFF (a status byte): one more is the end of the range.
  upper.back() = static_cast<char>(static_cast<unsigned char>(upper.back()) + 1);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions bounded = read;
  bounded.iterate_upper_bound = &upper_slice;
  bounded.fill_cache = false;  // a count must not push the working set out of the cache
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(bounded, family));
  uint64_t rows = 0;
  for (it->Seek(prefix); it->Valid(); it->Next()) ++rows;
  if (!it->status().ok()) return FromRocks(it->status(), "counting index rows");
  return rows;
}

absl::StatusOr<uint64_t> CountExpiryRowsDue(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* expiry,
                                            absl::Time now, uint64_t cap) {
  const std::string upper = keys::ExpiryTimeKey(absl::ToUnixMicros(now) + 1);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions read;
  read.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(read, expiry));
  uint64_t rows = 0;
  for (it->SeekToFirst(); it->Valid() && rows < cap; it->Next()) ++rows;
  if (!it->status().ok()) return FromRocks(it->status(), "reading the expiry index");
  return rows;
}

}  // namespace outreach::store
