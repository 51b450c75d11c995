#include "store/backup.h"

#include <filesystem>
#include <memory>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "rocksdb/env.h"
#include "rocksdb/utilities/backup_engine.h"
#include "store/rocks.h"

namespace outreach::store {

namespace {

// The summary of backup `id`, and the ids left in the directory.
absl::StatusOr<BackupSummary> Summarize(rocksdb::BackupEngine& engine, rocksdb::BackupID id) {
  std::vector<rocksdb::BackupInfo> backups;
  engine.GetBackupInfo(&backups);
  BackupSummary summary;
  summary.backup_id = id;
  for (const rocksdb::BackupInfo& info : backups) {
    summary.kept_backup_ids.push_back(info.backup_id);
    if (info.backup_id != id) continue;
    summary.size_bytes = info.size;
    summary.file_count = info.number_files;
    summary.created_at = absl::FromUnixSeconds(info.timestamp);
  }
  return summary;
}

}  // namespace

absl::StatusOr<BackupSummary> BackupLiveDatabase(rocksdb::DB* db, const std::string& backup_dir,
                                                 uint32_t keep_last) {
  // Everything acknowledged is in the WAL file before its bytes are copied.
  rocksdb::Status s = db->FlushWAL(/*sync=*/true);
  if (!s.ok()) return FromRocks(s, "backup: flushing the WAL");
  rocksdb::BackupEngine* raw = nullptr;
  s = rocksdb::BackupEngine::Open(rocksdb::BackupEngineOptions(backup_dir), db->GetEnv(), &raw);
  if (!s.ok()) return FromRocks(s, absl::StrCat("backup: opening ", backup_dir));
  std::unique_ptr<rocksdb::BackupEngine> engine(raw);
  rocksdb::CreateBackupOptions create;
  // The live files plus the WAL (not a flush): a flush of several column families is not
  // atomic, while replaying the copied WAL restores every batch whole.
  create.flush_before_backup = false;
  rocksdb::BackupID id = 0;
  s = engine->CreateNewBackup(create, db, &id);
  if (!s.ok()) return FromRocks(s, absl::StrCat("backup: writing to ", backup_dir));
  s = engine->VerifyBackup(id, /*verify_with_checksum=*/true);
  if (!s.ok()) return FromRocks(s, absl::StrCat("backup: verifying backup ", id));
  if (keep_last > 0) {
    s = engine->PurgeOldBackups(keep_last);
    if (!s.ok()) return FromRocks(s, absl::StrCat("backup: deleting backups older than ", id));
  }
  return Summarize(*engine, id);
}

absl::Status RestoreLatestBackup(const std::string& backup_dir, const std::string& db_dir) {
  std::error_code error;
  if (std::filesystem::exists(db_dir, error) && !std::filesystem::is_empty(db_dir, error)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "restore: ", db_dir, " is not empty; a restore never overwrites a database"));
  }
  if (!std::filesystem::is_directory(backup_dir, error)) {
    return absl::NotFoundError(absl::StrCat("restore: no backup directory ", backup_dir));
  }
  rocksdb::BackupEngineReadOnly* raw = nullptr;
  rocksdb::Status s = rocksdb::BackupEngineReadOnly::Open(
      rocksdb::BackupEngineOptions(backup_dir), rocksdb::Env::Default(), &raw);
  if (!s.ok()) return FromRocks(s, absl::StrCat("restore: opening backups in ", backup_dir));
  std::unique_ptr<rocksdb::BackupEngineReadOnly> engine(raw);
  std::vector<rocksdb::BackupInfo> backups;
  engine->GetBackupInfo(&backups);
  if (backups.empty()) {
    return absl::NotFoundError(absl::StrCat("restore: ", backup_dir, " holds no backup"));
  }
  const rocksdb::BackupID latest = backups.back().backup_id;
  s = engine->VerifyBackup(latest, /*verify_with_checksum=*/true);
  if (!s.ok()) {
    return absl::DataLossError(
        absl::StrCat("restore: backup ", latest, " does not verify: ", s.ToString()));
  }
  s = engine->RestoreDBFromBackup(latest, db_dir, db_dir);
  if (!s.ok()) return FromRocks(s, absl::StrCat("restore: writing ", db_dir));
  return absl::OkStatus();
}

}  // namespace outreach::store
