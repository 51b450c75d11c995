// Backups of a live store and restores from them, with RocksDB's BackupEngine: free functions
// over an open database or a directory (EventStore::BackupTo and EventStore::RestoreFrom compose
// them with the store's own checks). Thread-safe: a backup runs beside the writer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "rocksdb/db.h"

namespace outreach::store {

// What one BackupLiveDatabase made, and what the directory holds after it.
struct BackupSummary {
  uint32_t backup_id = 0;
  uint64_t size_bytes = 0;  // the backup's files, those shared with other backups included
  uint32_t file_count = 0;
  absl::Time created_at;
  std::vector<uint32_t> kept_backup_ids;  // every backup left in the directory, oldest first
};

// Adds a backup of `db` to `backup_dir` (a BackupEngine directory, created if missing; unchanged
// files are shared between backups): the WAL is flushed and synced first, then the live files
// and the WAL are copied (no flush: replaying the copied WAL restores every batch whole) and the
// new backup is verified with its checksums. Then, if `keep_last` > 0, all but the newest
// `keep_last` backups are deleted (a backup that did not verify is never the reason an older one
// goes: the purge runs only after the verification passed).
absl::StatusOr<BackupSummary> BackupLiveDatabase(rocksdb::DB* db, const std::string& backup_dir,
                                                 uint32_t keep_last = 0);

// Copies the latest backup in `backup_dir` into `db_dir`, after verifying its checksums.
// FAILED_PRECONDITION if `db_dir` exists and is not empty (a restore never overwrites a
// database), NOT_FOUND if `backup_dir` holds no backup, DATA_LOSS if the backup does not verify.
// The caller verifies the restored log and projections.
absl::Status RestoreLatestBackup(const std::string& backup_dir, const std::string& db_dir);

}  // namespace outreach::store
