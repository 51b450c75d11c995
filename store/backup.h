// Backups of a live store and restores from them, with RocksDB's BackupEngine: free functions
// over an open database or a directory (EventStore::BackupTo and EventStore::RestoreFrom compose
// them with the store's own checks). Thread-safe: a backup runs beside the writer.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "rocksdb/db.h"

namespace outreach::store {

// Adds a backup of `db` to `backup_dir` (a BackupEngine directory, created if missing; unchanged
// files are shared between backups): the WAL is flushed and synced first, then the live files
// and the WAL are copied (no flush: replaying the copied WAL restores every batch whole) and the
// new backup is verified with its checksums.
absl::Status BackupLiveDatabase(rocksdb::DB* db, const std::string& backup_dir);

// Copies the latest backup in `backup_dir` into `db_dir`, after verifying its checksums.
// FAILED_PRECONDITION if `db_dir` exists and is not empty (a restore never overwrites a
// database), NOT_FOUND if `backup_dir` holds no backup, DATA_LOSS if the backup does not verify.
// The caller verifies the restored log and projections.
absl::Status RestoreLatestBackup(const std::string& backup_dir, const std::string& db_dir);

}  // namespace outreach::store
