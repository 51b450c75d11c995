// Database: the RocksDB handle and its column families (store/keys.h), opened read-write,
// read-only, or as a secondary instance that follows a live primary. Everything else in the
// store reads and writes through it; nothing here knows events or tasks.
//
// Thread-safe: RocksDB's reads and writes are; CatchUpWithPrimary excludes every ReadView of a
// secondary while it moves the view forward. Close (or the destructor) after every user is done.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "store/keys.h"

namespace rocksdb {
class Env;
}  // namespace rocksdb

namespace outreach::store {

enum class OpenMode {
  kReadWrite,
  kReadOnly,   // a consistent copy of the database as it was at the open
  kSecondary,  // read-only, follows the primary's writes at each CatchUpWithPrimary
};

struct DatabaseOptions {
  OpenMode mode = OpenMode::kReadWrite;
  std::string secondary_path;     // kSecondary: a scratch directory for its own info log
  bool create_if_missing = true;  // kReadWrite only; otherwise NOT_FOUND without a database
  bool sync_writes = true;        // WriteSynced fsyncs the WAL (tests may turn it off)
  std::size_t block_cache_bytes = 64 << 20;
  // What every family's memtables may hold together (RocksDB's db_write_buffer_size): past it
  // the largest is flushed. Without it each family may fill its own 64 MiB, and a busy writer's
  // memtables, not its data, set the process's peak memory.
  std::size_t memtable_budget_bytes = 64 << 20;
  rocksdb::Env* env = nullptr;  // nullptr = the default; tests inject I/O faults
};

class Database {
 public:
  static absl::StatusOr<std::unique_ptr<Database>> Open(const std::string& dir,
                                                        DatabaseOptions options);
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();  // Close(false)

  // Closes the database, first flushing every memtable when `flush` (so that the next open does
  // not replay the whole WAL). Idempotent.
  void Close(bool flush);

  rocksdb::DB* db() const { return db_.get(); }
  // nullptr for "access_log" in a database opened read-only that was written before it existed.
  rocksdb::ColumnFamilyHandle* cf(keys::Cf family) const { return handles_[family]; }
  const std::vector<rocksdb::ColumnFamilyHandle*>& handles() const { return handles_; }
  const std::string& dir() const { return dir_; }
  bool read_only() const { return options_.mode != OpenMode::kReadWrite; }
  bool secondary() const { return options_.mode == OpenMode::kSecondary; }

  rocksdb::WriteOptions SyncedWrites() const;
  // Writes `batch` with SyncedWrites(); the error says `what` was being written.
  absl::Status WriteSynced(rocksdb::WriteBatch* batch, absl::string_view what);

  // A secondary's view moves to the primary's latest writes. FAILED_PRECONDITION otherwise.
  absl::Status CatchUpWithPrimary();

  // One consistent view for a read that looks at several rows: a snapshot or, in a secondary
  // (which has no snapshots, and whose view moves only in CatchUpWithPrimary), a shared hold
  // that keeps CatchUpWithPrimary out.
  class ReadView {
   public:
    explicit ReadView(const Database& database);
    ~ReadView();
    ReadView(const ReadView&) = delete;
    ReadView& operator=(const ReadView&) = delete;
    const rocksdb::ReadOptions& options() const { return options_; }

   private:
    const Database& database_;
    std::optional<rocksdb::ManagedSnapshot> snapshot_;
    rocksdb::ReadOptions options_;
  };

 private:
  Database(std::string dir, DatabaseOptions options);
  absl::Status OpenDb();
  absl::Status ConfigureFilesAndLog(rocksdb::DBOptions& db_options) const;

  const std::string dir_;
  const DatabaseOptions options_;
  // Secondary instances: held exclusively by CatchUpWithPrimary, shared by each ReadView.
  mutable absl::Mutex catch_up_mu_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // indexed by keys::Cf
};

}  // namespace outreach::store
