#include "store/database.h"

#include <sys/resource.h>

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "rocksdb/cache.h"
#include "rocksdb/convenience.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/table.h"
#include "store/info_log.h"
#include "store/projection.h"
#include "store/projections/registry.h"
#include "store/rocks.h"

namespace outreach::store {
namespace {

rocksdb::ColumnFamilyOptions FamilyOptions(const std::shared_ptr<rocksdb::Cache>& cache,
                                           bool bloom) {
  rocksdb::ColumnFamilyOptions options;
  const std::vector<rocksdb::CompressionType> supported = rocksdb::GetSupportedCompressions();
  auto has = [&](rocksdb::CompressionType type) {
    return std::find(supported.begin(), supported.end(), type) != supported.end();
  };
  if (has(rocksdb::kLZ4Compression)) {
    options.compression = rocksdb::kLZ4Compression;
  } else if (has(rocksdb::kSnappyCompression)) {
    options.compression = rocksdb::kSnappyCompression;
  }
  if (has(rocksdb::kZSTD)) options.bottommost_compression = rocksdb::kZSTD;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  if (bloom) table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return options;
}

// How each family is read: the projections say so for theirs (store/projection.h); the log's
// "events" are read by position, also on the write path (the head's hash), and the metadata and
// the access log are small or scanned.
std::vector<FamilyReads> ReadsOfFamilies() {
  std::vector<FamilyReads> reads(keys::kNumCfs, FamilyReads::kRanges);
  reads[keys::kEvents] = FamilyReads::kPointLookups;
  for (const Projection* projection : RegisteredProjections()) {
    for (const FamilySpec& family : projection->families()) reads[family.id] = family.reads;
  }
  return reads;
}

// Every column family, tuned for how it is read.
std::vector<rocksdb::ColumnFamilyDescriptor> Families(std::size_t block_cache_bytes) {
  auto cache = rocksdb::NewLRUCache(block_cache_bytes);
  const std::vector<FamilyReads> reads = ReadsOfFamilies();
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (int cf = 0; cf < keys::kNumCfs; ++cf) {
    const bool point_lookups = reads[cf] == FamilyReads::kPointLookups;
    families.emplace_back(keys::ColumnFamilyNames()[cf], FamilyOptions(cache, point_lookups));
    rocksdb::ColumnFamilyOptions& family = families.back().options;
    if (cf == keys::kEvents) {
      // Positions only grow: each insert starts from where the last one ended (one hint,
      // for the empty prefix) instead of from the top of the skip list.
      family.memtable_insert_with_hint_prefix_extractor.reset(
          rocksdb::NewFixedPrefixTransform(0));
    } else if (point_lookups) {
      // The writer looks these keys up for every command (its tasks, its request id, its
      // patients), mostly absent from the memtable (a new request id; a row last written
      // before the last flush): a memtable bloom filter answers those without a skip-list
      // search.
      family.memtable_whole_key_filtering = true;
      family.memtable_prefix_bloom_size_ratio = 0.02;
    }
  }
  return families;
}

// RocksDB keeps every table file open by default (max_open_files = -1). Under a low descriptor
// limit (ulimit -n 256) that fails long after the start, as "Too many open files" in a read, a
// flush or a compaction. Sized from the limit instead: half of it for table files, the other half
// for the WALs, the info log, gRPC's connections and the rest; under kMinDescriptors the store
// refuses to open, saying so.
constexpr rlim_t kMinDescriptors = 128;
absl::StatusOr<int> MaxOpenFiles() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY ||
      limit.rlim_cur >= 65536) {
    return -1;
  }
  if (limit.rlim_cur < kMinDescriptors) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the open-file limit (ulimit -n) is ", limit.rlim_cur, ": the store needs at least ",
        kMinDescriptors, "; raise it (e.g. LimitNOFILE= in the service unit)"));
  }
  return static_cast<int>(limit.rlim_cur / 2);
}

// Says so plainly, rather than whatever RocksDB says about a missing CURRENT file.
absl::Status CheckHoldsDatabase(const std::string& dir) {
  std::error_code error;
  if (std::filesystem::exists(std::filesystem::path(dir) / "CURRENT", error)) {
    return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrCat(
      dir, std::filesystem::is_directory(dir, error)
               ? ": not an outreach data directory (no database in it)"
               : ": no such directory"));
}

}  // namespace

Database::Database(std::string dir, DatabaseOptions options)
    : dir_(std::move(dir)), options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<Database>> Database::Open(const std::string& dir,
                                                         DatabaseOptions options) {
  std::unique_ptr<Database> database(new Database(dir, std::move(options)));
  if (absl::Status s = database->OpenDb(); !s.ok()) return s;
  return database;
}

Database::~Database() { Close(/*flush=*/false); }

void Database::Close(bool flush) {
  if (db_ == nullptr) return;
  if (flush) {
    rocksdb::FlushOptions options;
    options.wait = true;
    std::vector<rocksdb::ColumnFamilyHandle*> open;
    for (rocksdb::ColumnFamilyHandle* handle : handles_) {
      if (handle != nullptr) open.push_back(handle);
    }
    db_->Flush(options, open).PermitUncheckedError();
  }
  for (rocksdb::ColumnFamilyHandle* handle : handles_) {
    if (handle != nullptr) db_->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
  }
  handles_.clear();
  db_->Close().PermitUncheckedError();
  db_.reset();
}

// The descriptor budget (MaxOpenFiles) and, for a writable database, the info log.
absl::Status Database::ConfigureFilesAndLog(rocksdb::DBOptions& db_options) const {
  if (!secondary()) {
    absl::StatusOr<int> max_open_files = MaxOpenFiles();
    if (!max_open_files.ok()) return max_open_files.status();
    db_options.max_open_files = *max_open_files;
  }
  if (!read_only()) {
    // Not RocksDB's own file logger: it aborts the process on the first line after the disk
    // fills (store/info_log.h).
    absl::StatusOr<std::shared_ptr<rocksdb::Logger>> info_log = OpenInfoLog(dir_);
    if (!info_log.ok()) return info_log.status();
    db_options.info_log = *std::move(info_log);
  }
  return absl::OkStatus();
}

absl::Status Database::OpenDb() {
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = options_.create_if_missing && !read_only();
  db_options.create_missing_column_families = !read_only();
  db_options.max_background_jobs = 2;
  db_options.keep_log_file_num = 10;
  // Bounds WAL replay after a crash: past this, RocksDB flushes the column families holding
  // the oldest WAL alive.
  db_options.max_total_wal_size = 128 << 20;
  db_options.db_write_buffer_size = options_.memtable_budget_bytes;
  // Close() must not flush by itself: after a failed WAL write that flush would sync the
  // failed writer (an assertion in RocksDB). The owner flushes when it is safe to (Close).
  db_options.avoid_flush_during_shutdown = true;
  if (options_.env != nullptr) db_options.env = options_.env;
  std::vector<rocksdb::ColumnFamilyDescriptor> families = Families(options_.block_cache_bytes);
  if (read_only() || !options_.create_if_missing) {
    if (absl::Status s = CheckHoldsDatabase(dir_); !s.ok()) return s;
  }
  if (absl::Status s = ConfigureFilesAndLog(db_options); !s.ok()) return s;
  // A database written before some family existed ("access_log", "patients") lacks it, and a
  // read-only open cannot create it: open the others, with no handle for the missing ones (a
  // read-only store without "access_log" runs without an access log; missing projections are
  // stale projections, which recovery refuses to read).
  std::vector<bool> present(families.size(), true);
  if (read_only()) {
    std::vector<std::string> existing;
    rocksdb::Status listed = rocksdb::DB::ListColumnFamilies(db_options, dir_, &existing);
    if (!listed.ok()) return FromRocks(listed, absl::StrCat("listing column families of ", dir_));
    std::vector<rocksdb::ColumnFamilyDescriptor> kept;
    for (std::size_t i = 0; i < families.size(); ++i) {
      present[i] = std::find(existing.begin(), existing.end(), families[i].name) != existing.end();
      if (present[i]) kept.push_back(families[i]);
    }
    families = std::move(kept);
  }
  rocksdb::DB* db = nullptr;
  rocksdb::Status s;
  if (!read_only()) {
    s = rocksdb::DB::Open(db_options, dir_, families, &handles_, &db);
  } else if (!secondary()) {
    s = rocksdb::DB::OpenForReadOnly(db_options, dir_, families, &handles_, &db);
  } else {
    db_options.max_open_files = -1;  // required of secondary instances
    s = rocksdb::DB::OpenAsSecondary(db_options, dir_, options_.secondary_path, families,
                                     &handles_, &db);
  }
  if (!s.ok()) {
    return FromRocks(s, absl::StrCat("opening database ", dir_, read_only() ? " read-only" : ""));
  }
  db_.reset(db);
  std::vector<rocksdb::ColumnFamilyHandle*> opened = std::move(handles_);
  handles_.assign(present.size(), nullptr);  // indexed by keys::Cf again
  for (std::size_t i = 0, next = 0; i < present.size(); ++i) {
    if (present[i]) handles_[i] = opened[next++];
  }
  if (secondary()) {
    s = db_->TryCatchUpWithPrimary();
    if (!s.ok()) return FromRocks(s, absl::StrCat("catching up with the primary of ", dir_));
  }
  return absl::OkStatus();
}

rocksdb::WriteOptions Database::SyncedWrites() const {
  rocksdb::WriteOptions write;
  write.sync = options_.sync_writes;
  return write;
}

absl::Status Database::WriteSynced(rocksdb::WriteBatch* batch, absl::string_view what) {
  return FromRocks(db_->Write(SyncedWrites(), batch), what);
}

absl::Status Database::CatchUpWithPrimary() {
  if (!secondary()) {
    return absl::FailedPreconditionError("not a secondary (read-only, live) store");
  }
  absl::MutexLock lock(&catch_up_mu_);
  rocksdb::Status s = db_->TryCatchUpWithPrimary();
  if (!s.ok()) return FromRocks(s, absl::StrCat("catching up with the primary of ", dir_));
  return absl::OkStatus();
}

Database::ReadView::ReadView(const Database& database) : database_(database) {
  if (!database.secondary()) {
    snapshot_.emplace(database.db());
    options_.snapshot = snapshot_->snapshot();
  } else {
    database.catch_up_mu_.ReaderLock();
  }
}

Database::ReadView::~ReadView() {
  if (database_.secondary()) database_.catch_up_mu_.ReaderUnlock();
}

}  // namespace outreach::store
