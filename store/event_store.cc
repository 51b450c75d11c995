#include "store/event_store.h"

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "domain/validation.h"
#include "google/protobuf/arena.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "rocksdb/cache.h"
#include "rocksdb/convenience.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/sst_file_writer.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/backup_engine.h"
#include "rocksdb/write_batch.h"
#include "store/disk_space.h"
#include "store/event_codec.h"
#include "store/huge_pages.h"
#include "store/info_log.h"
#include "store/backup.h"
#include "store/head_publisher.h"
#include "store/keys.h"
#include "store/log_fold.h"
#include "store/projection.h"
#include "store/projection_rows.h"
#include "store/projections/registry.h"
#include "store/log_reader.h"
#include "store/log_verifier.h"
#include "store/rocks.h"
#include "store/sorted_rows.h"
#include "store/uuid.h"
#include "store/worklist.h"
#include "store/write_refusal.h"

namespace outreach::store {
namespace {

using storage::v1::StoredEvent;

// An event id: a random UUID from the writer's generator (store/uuid.h).
std::string NewEventId(absl::BitGen& gen) {
  std::array<uint8_t, 16> b;
  for (int half = 0; half < 2; ++half) {
    const uint64_t bits = absl::Uniform<uint64_t>(gen);
    for (int i = 0; i < 8; ++i) b[half * 8 + i] = static_cast<uint8_t>(bits >> (8 * i));
  }
  return UuidV4FromRandomBytes(b);
}

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

// `status` with a representation of its own (code, message, payloads), sharing nothing.
absl::Status DeepCopy(const absl::Status& status) {
  if (status.ok()) return absl::OkStatus();
  absl::Status copy(status.code(), std::string(status.message()));
  status.ForEachPayload([&](absl::string_view type_url, const absl::Cord& payload) {
    copy.SetPayload(type_url, absl::Cord(std::string(payload)));
  });
  return copy;
}

absl::Status ReadOnlyError() {
  return absl::FailedPreconditionError("store is open read-only: writes are refused");
}

}  // namespace

class EventStore::Impl {
 public:
  struct Queued {
    domain::Command command;
    std::string fingerprint;
    Done done;
  };

  // `read_only`: no writer; `secondary_path` non-empty: a RocksDB secondary instance.
  Impl(std::string dir, StoreOptions options, bool read_only = false,
       std::string secondary_path = "")
      : dir_(std::move(dir)),
        options_(options),
        clock_(options.clock != nullptr ? options.clock : Clock::Real()),
        schemas_(options.schemas != nullptr ? options.schemas : &SchemaRegistry::Production()),
        read_only_(read_only),
        secondary_path_(std::move(secondary_path)),
        space_(dir_, options.min_free_disk_bytes) {}

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // One consistent view of the database for a read that looks at several rows: a snapshot, or,
  // in a secondary instance (which has no snapshots, and whose view moves only in
  // CatchUpWithPrimary), a shared hold that keeps CatchUpWithPrimary out.
  class ReadView {
   public:
    explicit ReadView(const Impl& impl) : impl_(impl) {
      if (impl.secondary_path_.empty()) {
        snapshot_.emplace(impl.db_.get());
        options_.snapshot = snapshot_->snapshot();
      } else {
        impl.catch_up_mu_.ReaderLock();
      }
    }
    ~ReadView() {
      if (!impl_.secondary_path_.empty()) impl_.catch_up_mu_.ReaderUnlock();
    }
    ReadView(const ReadView&) = delete;
    ReadView& operator=(const ReadView&) = delete;
    const rocksdb::ReadOptions& options() const { return options_; }

   private:
    const Impl& impl_;
    std::optional<rocksdb::ManagedSnapshot> snapshot_;
    rocksdb::ReadOptions options_;
  };

  ~Impl() {
    {
      // Followers first: wake every waiter and let it return before anything goes away.
      head_.Close();
    }
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    if (writer_.joinable()) writer_.join();
    {
      // The writer is gone: once the completer has run every callback queued, it returns.
      absl::MutexLock lock(&completion_mu_);
      completions_closed_ = true;
    }
    if (completer_.joinable()) completer_.join();
    // A clean close flushes the memtables, so that the next start-up does not replay the whole
    // WAL (the dominant start-up cost on a large log). Skipped after a write error of the store
    // or of the access log, and below the reserve: nothing more is written to a disk that has
    // failed us or is almost full, and nothing touches a WAL writer that has failed (RocksDB
    // asserts if a failed writer is synced again). The WAL stays the source of truth until
    // every column family's flush is done, so a crash mid-flush recovers as usual.
    const bool flush = !read_only_ && db_ != nullptr && MayWriteOnClose();
    access_log_.reset();  // its writer uses the DB handle
    if (db_ != nullptr) {
      if (flush) {
        rocksdb::FlushOptions flush;
        flush.wait = true;
        db_->Flush(flush, handles_).PermitUncheckedError();
      }
      for (rocksdb::ColumnFamilyHandle* handle : handles_) {
        if (handle != nullptr) db_->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
      }
      handles_.clear();
      db_->Close().PermitUncheckedError();
      db_.reset();
    }
  }

  // The descriptor budget (MaxOpenFiles) and, for a writable store, the info log.
  absl::Status ConfigureFilesAndLog(rocksdb::DBOptions& db_options) {
    if (secondary_path_.empty()) {
      absl::StatusOr<int> max_open_files = MaxOpenFiles();
      if (!max_open_files.ok()) return max_open_files.status();
      db_options.max_open_files = *max_open_files;
    }
    if (!read_only_) {
      // Not RocksDB's own file logger: it aborts the process on the first line after the disk
      // fills (store/info_log.h).
      absl::StatusOr<std::shared_ptr<rocksdb::Logger>> info_log = OpenInfoLog(dir_);
      if (!info_log.ok()) return info_log.status();
      db_options.info_log = *std::move(info_log);
    }
    return absl::OkStatus();
  }

  absl::Status OpenDb() {
    rocksdb::DBOptions db_options;
    db_options.create_if_missing = options_.create_if_missing && !read_only_;
    db_options.create_missing_column_families = !read_only_;
    db_options.max_background_jobs = 2;
    db_options.keep_log_file_num = 10;
    // Bounds WAL replay after a crash: past this, RocksDB flushes the column families holding
    // the oldest WAL alive.
    db_options.max_total_wal_size = 128 << 20;
    // Close() must not flush by itself: after a failed WAL write that flush would sync the
    // failed writer (an assertion in RocksDB). The destructor flushes when it is safe to.
    db_options.avoid_flush_during_shutdown = true;
    if (options_.env != nullptr) db_options.env = options_.env;
    auto cache = rocksdb::NewLRUCache(options_.block_cache_bytes);
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (int cf = 0; cf < keys::kNumCfs; ++cf) {
      const bool bloom = cf == keys::kTasks || cf == keys::kRequests || cf == keys::kEvents;
      families.emplace_back(keys::ColumnFamilyNames()[cf], FamilyOptions(cache, bloom));
      rocksdb::ColumnFamilyOptions& family = families.back().options;
      if (cf == keys::kEvents) {
        // Positions only grow: each insert starts from where the last one ended (one hint,
        // for the empty prefix) instead of from the top of the skip list.
        family.memtable_insert_with_hint_prefix_extractor.reset(
            rocksdb::NewFixedPrefixTransform(0));
      }
      if (cf == keys::kTasks || cf == keys::kRequests) {
        // The writer looks up every command's task and request id, mostly absent from the
        // memtable (a new request id; a task last written before the last flush): a memtable
        // bloom filter answers those without a skip-list search.
        family.memtable_whole_key_filtering = true;
        family.memtable_prefix_bloom_size_ratio = 0.02;
      }
    }
    if (read_only_ || !options_.create_if_missing) {
      // Say so plainly, rather than whatever RocksDB says about a missing CURRENT file.
      std::error_code error;
      if (!std::filesystem::exists(std::filesystem::path(dir_) / "CURRENT", error)) {
        return absl::NotFoundError(absl::StrCat(
            dir_, std::filesystem::is_directory(dir_, error)
                      ? ": not an outreach data directory (no database in it)"
                      : ": no such directory"));
      }
    }
    if (absl::Status s = ConfigureFilesAndLog(db_options); !s.ok()) return s;
    // A database written before the access log existed has no "access_log" family, and a
    // read-only open cannot create it: open the others, and run without an access log.
    bool has_access_log = true;
    if (read_only_) {
      std::vector<std::string> existing;
      rocksdb::Status listed = rocksdb::DB::ListColumnFamilies(db_options, dir_, &existing);
      if (!listed.ok()) return FromRocks(listed, absl::StrCat("listing column families of ", dir_));
      has_access_log = std::find(existing.begin(), existing.end(),
                                 keys::ColumnFamilyNames()[keys::kAccessLog]) != existing.end();
      if (!has_access_log) families.pop_back();  // kAccessLog is the last family
    }
    rocksdb::DB* db = nullptr;
    rocksdb::Status s;
    if (!read_only_) {
      s = rocksdb::DB::Open(db_options, dir_, families, &handles_, &db);
    } else if (secondary_path_.empty()) {
      s = rocksdb::DB::OpenForReadOnly(db_options, dir_, families, &handles_, &db);
    } else {
      db_options.max_open_files = -1;  // required of secondary instances
      s = rocksdb::DB::OpenAsSecondary(db_options, dir_, secondary_path_, families, &handles_,
                                       &db);
    }
    if (!s.ok()) {
      return FromRocks(s, absl::StrCat("opening database ", dir_, read_only_ ? " read-only" : ""));
    }
    db_.reset(db);
    if (!has_access_log) handles_.push_back(nullptr);
    if (!secondary_path_.empty()) {
      s = db_->TryCatchUpWithPrimary();
      if (!s.ok()) return FromRocks(s, absl::StrCat("catching up with the primary of ", dir_));
    }
    return absl::OkStatus();
  }

  // Opens the access log over its column family; after Recover, before the writer starts.
  absl::Status OpenAccessLog() {
    if (handles_[keys::kAccessLog] == nullptr) return absl::OkStatus();
    AccessLogOptions options = options_.access_log;
    options.sync = options.sync && options_.sync_writes;
    absl::StatusOr<std::unique_ptr<AccessLog>> log =
        AccessLog::Open(db_.get(), handles_[keys::kAccessLog], clock_, options, read_only_);
    if (!log.ok()) return log.status();
    access_log_ = *std::move(log);
    return absl::OkStatus();
  }

  AccessLog* access_log() const { return access_log_.get(); }

  // Where Open's verification starts: the last verified checkpoint (position 0 when there is
  // none, or when its schema is newer than this build's: then the whole log is re-read so that
  // the error names the first event this build cannot read).
  struct VerifyStart {
    uint64_t from = 0;
    Hash from_hash = ZeroHash();
    uint32_t max_schema = 1;
  };
  absl::StatusOr<VerifyStart> ReadCheckpoint(const rocksdb::ReadOptions& read) const {
    VerifyStart start;
    std::string raw;
    rocksdb::Status s = db_->Get(read, cf(keys::kDefault), keys::kCheckpointKey, &raw);
    if (s.IsNotFound()) return start;
    if (!s.ok()) return FromRocks(s, "reading the verified checkpoint");
    absl::StatusOr<storage::v1::VerifiedCheckpoint> checkpoint = keys::DecodeCheckpoint(raw);
    if (!checkpoint.ok()) return checkpoint.status();
    start.max_schema = std::max<uint32_t>(checkpoint->max_schema_version(), 1);
    if (start.max_schema > schemas_->current_version() || checkpoint->position() == 0) {
      return start;
    }
    start.from = checkpoint->position();
    absl::StatusOr<DecodedEvent> event = ReadEvent(read, start.from);
    if (!event.ok()) return event.status();
    if (AsBytes(event->hash) != checkpoint->hash() || !VerifyEventHash(*event)) {
      return absl::DataLossError(absl::StrCat("event log: position ", start.from,
                                              ": does not match the verified checkpoint"));
    }
    start.from_hash = event->hash;
    return start;
  }

  // Verifies the log from `start` to the head, and sets the head from what it checked.
  // Returns the highest schema version of the log.
  absl::StatusOr<uint32_t> VerifyOnOpen(const rocksdb::ReadOptions& read,
                                        const VerifyStart& start, bool projections_current) {
    uint32_t seen_schema = 0;
    const VerifyReport report = Verify(read, start.from, start.from_hash, projections_current,
                                       /*to=*/0, &seen_schema);
    if (!report.ok) {
      return absl::DataLossError(absl::StrCat("event log is corrupt at position ",
                                              report.first_bad_position, ": ", report.problem));
    }
    if (start.max_schema > schemas_->current_version()) {
      return absl::DataLossError(absl::StrCat(
          "event log: the verified checkpoint says events use schema_version ", start.max_schema,
          ", newer than this build supports (", schemas_->current_version(), ")"));
    }
    head_position_ = report.head_position;
    HashFromBytes(report.head_hash, &head_hash_);
    return std::max(start.max_schema, seen_schema);
  }

  // Records the verified head as the new checkpoint (and, on an empty log, the projection
  // format), then rebuilds the projections if they are not current.
  absl::Status RecordCheckpoint(uint32_t max_schema, bool projections_current) {
    storage::v1::VerifiedCheckpoint checkpoint;
    checkpoint.set_position(head_position_);
    checkpoint.set_hash(std::string(AsBytes(head_hash_)));
    checkpoint.set_max_schema_version(max_schema);
    rocksdb::WriteBatch batch;
    batch.Put(cf(keys::kDefault), keys::kCheckpointKey, keys::EncodeCheckpoint(checkpoint));
    if (head_position_ == 0 && !projections_current) {
      batch.Put(cf(keys::kDefault), keys::kProjectionFormatKey,
                keys::EncodeFixed32BE(keys::kProjectionFormat));
      batch.Put(cf(keys::kDefault), keys::kProjectionSchemaKey,
                keys::EncodeFixed32BE(schemas_->current_version()));
      projections_current = true;
    }
    if (absl::Status w = WriteSynced(&batch, "writing the verified checkpoint"); !w.ok()) return w;
    checkpoint_position_ = head_position_;
    checkpoint_max_schema_ = max_schema;
    if (!projections_current) return RebuildLocked([](const RebuildProgress&) {}, 0);
    return absl::OkStatus();
  }

  // Verifies the log from the checkpoint to the head, records a new checkpoint, and rebuilds the
  // projections when their format changed. Runs before the writer starts.
  // Read-only stores skip the verification when `verify` is false (the head then comes from the
  // head row), never write, and refuse projections that would need a rebuild.
  absl::Status Recover(bool verify = true) {
    if (absl::Status s = schemas_->CheckComplete(); !s.ok()) return s;
    // Released before a rebuild, which would otherwise pin every row it replaces. A secondary
    // has no snapshots, and nothing changes its view before Recover returns.
    std::unique_ptr<rocksdb::ManagedSnapshot> snapshot;
    rocksdb::ReadOptions read;
    if (secondary_path_.empty()) {
      snapshot = std::make_unique<rocksdb::ManagedSnapshot>(db_.get());
      read.snapshot = snapshot->snapshot();
    }
    absl::StatusOr<VerifyStart> start = verify ? ReadCheckpoint(read) : VerifyStart();
    if (!start.ok()) return start.status();
    absl::StatusOr<bool> current = ProjectionsCurrent(read);
    if (!current.ok()) return current.status();
    absl::StatusOr<uint32_t> max_schema = start->max_schema;
    if (verify) {
      max_schema = VerifyOnOpen(read, *start, *current);
    } else if (absl::Status h = ReadHeadRow(read, &head_position_, &head_hash_); !h.ok()) {
      return h;
    }
    if (!max_schema.ok()) return max_schema.status();
    if (head_position_ > 0 && !read_only_) {  // only the writer needs it
      absl::StatusOr<DecodedEvent> head = ReadEvent(read, head_position_);
      if (!head.ok()) return head.status();
      last_recorded_at_ = domain::FromProto(head->event.recorded_at());
    }
    PublishHead(head_position_);
    snapshot.reset();
    if (!read_only_) return RecordCheckpoint(*max_schema, *current);
    if (!*current && head_position_ > 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the projections in ", dir_, " were folded with another projection format or event "
          "schema version than this build's (format ", keys::kProjectionFormat, ", schema ",
          schemas_->current_version(), "): open it read-write, or run `outreachctl rebuild` "
          "on a copy"));
    }
    return absl::OkStatus();
  }

  // True when the projections were folded with this build's projection format and schema.
  absl::StatusOr<bool> ProjectionsCurrent(const rocksdb::ReadOptions& read) const {
    std::string raw;
    rocksdb::Status s = db_->Get(read, cf(keys::kDefault), keys::kProjectionFormatKey, &raw);
    uint32_t format = 0;
    if (s.IsNotFound()) return false;
    if (!s.ok()) return FromRocks(s, "reading the projection format");
    if (!keys::DecodeFixed32BE(raw, &format) || format != keys::kProjectionFormat) return false;
    s = db_->Get(read, cf(keys::kDefault), keys::kProjectionSchemaKey, &raw);
    uint32_t schema = 1;  // the row is absent in stores written before it existed, at version 1
    if (s.ok()) {
      if (!keys::DecodeFixed32BE(raw, &schema)) return false;
    } else if (!s.IsNotFound()) {
      return FromRocks(s, "reading the projection schema");
    }
    return schema == schemas_->current_version();
  }

  // The log as this store's database holds it (store/log_reader.h, store/log_verifier.h).
  LogReader log() const { return LogReader(db_.get(), &handles_, schemas_); }
  absl::StatusOr<DecodedEvent> ReadEvent(const rocksdb::ReadOptions& read,
                                         uint64_t position) const {
    return log().ReadEvent(read, position);
  }
  absl::Status ReadHeadRow(const rocksdb::ReadOptions& read, uint64_t* position,
                           Hash* hash) const {
    return log().ReadHeadRow(read, position, hash);
  }
  absl::StatusOr<int64_t> FoldTask(
      const rocksdb::ReadOptions& read, absl::string_view task_id, int64_t max_version,
      absl::FunctionRef<bool(const DecodedEvent&)> keep,
      absl::FunctionRef<void(const v1::Task&, const v1::Task&, const DecodedEvent&)> visit,
      v1::Task* task) const {
    return log().FoldTask(read, task_id, max_version, keep, visit, task);
  }
  VerifyReport Verify(const rocksdb::ReadOptions& read, uint64_t from, const Hash& from_hash,
                      bool projections_current, uint64_t to, uint32_t* max_schema) const {
    return VerifyLogRange(log(), read, from, from_hash, projections_current, to, max_schema);
  }

  bool read_only() const { return read_only_; }

  void StartWriter() {
    completer_ = std::thread([this] { CompleterLoop(); });
    writer_ = std::thread([this] { WriterLoop(); });
  }

  void Submit(std::vector<Queued> commands) {
    {
      absl::MutexLock lock(&mu_);
      if (!stopping_) {
        for (Queued& q : commands) queue_.push_back(std::move(q));
        return;
      }
    }
    for (Queued& q : commands) {
      std::move(q.done)(absl::UnavailableError("store is shutting down"));
    }
  }

  absl::StatusOr<v1::Task> GetTask(absl::string_view task_id) const {
    std::string raw;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(keys::kTasks), ToSlice(task_id), &raw);
    if (s.IsNotFound()) {
      return absl::NotFoundError(absl::StrCat("task_id: no task \"", task_id, "\""));
    }
    if (!s.ok()) return FromRocks(s, "reading a task");
    v1::Task task;
    if (!task.ParseFromString(raw)) {
      return absl::DataLossError(absl::StrCat("tasks: row for \"", task_id, "\" is not a Task"));
    }
    return task;
  }

  absl::StatusOr<ListPage> ListTasks(const ListQuery& query) const {
    const ReadView view(*this);
    return ListWorklist(db_.get(), cf(keys::kWorklist), cf(keys::kTasks), view.options().snapshot,
                        query);
  }

  absl::StatusOr<std::vector<v1::EventRecord>> ReadEvents(uint64_t from_position,
                                                          absl::string_view task_id,
                                                          uint64_t limit) const {
    const ReadView view(*this);
    return log().ReadEvents(view.options(), from_position, task_id, limit);
  }

  uint64_t HeadPosition() const { return head_.Head(); }

  VerifyReport VerifyLog() const {
    const ReadView view(*this);
    const rocksdb::ReadOptions& read = view.options();
    return Verify(read, 0, ZeroHash(), /*projections_current=*/false, /*to=*/0, nullptr);
  }

  absl::StatusOr<VerifyReport> VerifyLog(const VerifyOptions& options) const {
    Hash expected{};
    const bool check_hash = !options.expected_head_hash.empty();
    if (check_hash && !HashFromBytes(options.expected_head_hash, &expected)) {
      return absl::InvalidArgumentError(
          absl::StrCat("expected_head_hash: must be ", kHashSize, " bytes, got ",
                       options.expected_head_hash.size()));
    }
    const ReadView view(*this);
    const rocksdb::ReadOptions& read = view.options();
    VerifyReport report = Verify(read, 0, ZeroHash(), /*projections_current=*/false,
                                 options.to_position, nullptr);
    if (!report.ok) return report;
    if (options.to_position > report.head_position) {
      report.ok = false;
      report.first_bad_position = report.head_position + 1;
      report.problem = absl::StrCat("to_position ", options.to_position,
                                    " is beyond the head position ", report.head_position);
      return report;
    }
    if (check_hash && report.head_hash != AsBytes(expected)) {
      report.ok = false;
      report.first_bad_position = report.head_position;
      report.problem = absl::StrCat(
          "hash at position ", report.head_position, " is ",
          absl::BytesToHexString(report.head_hash), ", expected ",
          absl::BytesToHexString(AsBytes(expected)),
          ": the log through this position is not the one the expected hash was taken from");
    }
    return report;
  }

  absl::Status VerifyProjections() const {
    const ReadView view(*this);
    const rocksdb::ReadOptions& read = view.options();
    FoldedLog replayed;
    if (absl::Status folded = FoldLog(log(), read, head_.Head(), &replayed, [](uint64_t) {});
        !folded.ok()) {
      return folded;
    }
    return CompareStoredProjections(db_.get(), handles_, read, replayed);
  }

  absl::StatusOr<v1::Task> GetTaskAsOfVersion(absl::string_view task_id, int64_t version) const {
    if (version < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("as_of_version: must be at least 1, got ", version));
    }
    const ReadView view(*this);
    const rocksdb::ReadOptions& read = view.options();
    v1::Task task;
    absl::StatusOr<int64_t> folded = FoldTask(
        read, task_id, version, [](const DecodedEvent&) { return true; },
        [](const v1::Task&, const v1::Task&, const DecodedEvent&) {}, &task);
    if (!folded.ok()) return folded.status();
    if (*folded == 0) return NoTask(task_id);
    if (*folded < version) {
      return absl::OutOfRangeError(absl::StrCat("as_of_version: task \"", task_id,
                                                "\" is at version ", *folded, ", not ", version));
    }
    return task;
  }

  absl::StatusOr<v1::Task> GetTaskAsOfTime(absl::string_view task_id, absl::Time time) const {
    const ReadView view(*this);
    const rocksdb::ReadOptions& read = view.options();
    bool exists = false;
    v1::Task task;
    absl::StatusOr<int64_t> folded = FoldTask(
        read, task_id, std::numeric_limits<int64_t>::max(),
        [&](const DecodedEvent& event) {
          exists = true;
          return domain::FromProto(event.event.recorded_at()) <= time;
        },
        [](const v1::Task&, const v1::Task&, const DecodedEvent&) {}, &task);
    if (!folded.ok()) return folded.status();
    if (!exists) return NoTask(task_id);
    if (*folded == 0) {
      return absl::NotFoundError(absl::StrCat("as_of_time: task \"", task_id,
                                              "\" did not exist yet at ",
                                              absl::FormatTime(absl::RFC3339_full, time,
                                                               absl::UTCTimeZone())));
    }
    return task;
  }

  absl::StatusOr<std::vector<HistoryEntry>> GetTaskHistory(absl::string_view task_id) const {
    const ReadView view(*this);
    const rocksdb::ReadOptions& read = view.options();
    std::vector<HistoryEntry> history;
    v1::Task task;
    absl::StatusOr<int64_t> folded = FoldTask(
        read, task_id, std::numeric_limits<int64_t>::max(),
        [](const DecodedEvent&) { return true; },
        [&](const v1::Task& before, const v1::Task& after, const DecodedEvent& event) {
          history.push_back(HistoryEntry{ToEventRecord(event), before.status(), after.status()});
        },
        &task);
    if (!folded.ok()) return folded.status();
    if (*folded == 0) return NoTask(task_id);
    return history;
  }

  // ---- Followers ----

  bool WaitForHeadAbove(uint64_t position, absl::Duration timeout) const {
    return head_.WaitForHeadAbove(position, timeout);
  }
  HeadListenerId AddHeadListener(HeadListener listener) {
    return head_.AddListener(std::move(listener));
  }
  void RemoveHeadListener(HeadListenerId id) { head_.RemoveListener(id); }

  absl::Status CatchUpWithPrimary() {
    if (secondary_path_.empty()) {
      return absl::FailedPreconditionError("not a secondary (read-only, live) store");
    }
    absl::MutexLock lock(&catch_up_mu_);
    rocksdb::Status s = db_->TryCatchUpWithPrimary();
    if (!s.ok()) return FromRocks(s, absl::StrCat("catching up with the primary of ", dir_));
    uint64_t head = 0;
    Hash hash{};
    if (absl::Status h = ReadHeadRow(rocksdb::ReadOptions(), &head, &hash); !h.ok()) return h;
    PublishHead(head);
    return absl::OkStatus();
  }

  // ---- Backups ----

  absl::Status BackupTo(const std::string& backup_dir) {
    if (read_only_) {
      return absl::FailedPreconditionError(
          "store is open read-only: back up from the process that has it open for writing, or "
          "offline");
    }
    return BackupLiveDatabase(db_.get(), backup_dir);
  }

  absl::Status RebuildProjections(absl::FunctionRef<void(const RebuildProgress&)> progress,
                                  uint64_t every) {
    if (read_only_) return ReadOnlyError();
    {
      absl::MutexLock lock(&mu_);
      // Writes queued before the rebuild land first; later ones wait for it.
      mu_.Await(absl::Condition(this, &Impl::Quiescent));
      paused_ = true;
    }
    absl::Status s = RebuildLocked(progress, every);
    absl::MutexLock lock(&mu_);
    paused_ = false;
    // A rebuild that stopped part-way has left projections the writer must not decide on: a
    // cleared task row would let a second TaskCreated into that task's stream. Refuse writes
    // until the next Open, which redoes the rebuild (its format row is already deleted).
    if (!s.ok() && write_error_.ok()) {
      write_error_ = absl::Status(s.code(), absl::StrCat("rebuilding projections: ", s.message()));
    }
    return s;
  }

  absl::StatusOr<std::string> DumpProjections() const {
    const ReadView view(*this);
    const rocksdb::ReadOptions& read = view.options();
    std::string out;
    for (keys::Cf family : ProjectionFamilies()) {
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, cf(family)));
      for (it->SeekToFirst(); it->Valid(); it->Next()) {
        absl::StrAppend(&out, keys::ColumnFamilyNames()[family], "\t",
                        absl::BytesToHexString(View(it->key())), "\t",
                        absl::BytesToHexString(View(it->value())), "\n");
      }
      if (!it->status().ok()) return FromRocks(it->status(), "dumping projections");
    }
    return out;
  }

  std::optional<absl::Time> NextExpiry() const {
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), cf(keys::kExpiry)));
    it->SeekToFirst();
    absl::Time expires_at;
    std::string task_id;
    if (!it->Valid() || !keys::ParseExpiryKey(View(it->key()), &expires_at, &task_id)) {
      return std::nullopt;
    }
    return expires_at;
  }

  // The task ids of up to `max` expiry rows due at `now`, starting after `*start` (exclusive),
  // which is moved past the last row returned.
  absl::StatusOr<std::vector<std::string>> DueTasks(absl::Time now, std::string* start,
                                                    std::size_t max) const {
    const std::string upper = keys::ExpiryTimeKey(absl::ToUnixMicros(now) + 1);
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions read;
    read.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, cf(keys::kExpiry)));
    std::vector<std::string> out;
    for (it->Seek(*start); it->Valid() && out.size() < max; it->Next()) {
      absl::Time expires_at;
      std::string task_id;
      if (!keys::ParseExpiryKey(View(it->key()), &expires_at, &task_id)) {
        return absl::DataLossError(absl::StrCat(
            "expiry index: malformed row ", absl::BytesToHexString(View(it->key()))));
      }
      *start = it->key().ToString() + '\0';
      out.push_back(std::move(task_id));
    }
    if (!it->status().ok()) return FromRocks(it->status(), "reading the expiry index");
    return out;
  }

  std::size_t max_commands_per_batch() const {
    return std::max<std::size_t>(options_.max_commands_per_batch, 1);
  }

  absl::Status WriteHealth() const {
    if (read_only_) return ReadOnlyError();
    {
      absl::MutexLock lock(&mu_);
      if (!write_error_.ok()) return write_error_;
    }
    return space_.CheckRoom();
  }

  // Whether the close may write once more (its memtable flush): no latched failure of the store
  // or of its access log, and room above the reserve.
  bool MayWriteOnClose() const {
    {
      absl::MutexLock lock(&mu_);
      if (!write_error_.ok()) return false;
    }
    if (access_log_ != nullptr && !access_log_->WriteHealth().ok()) return false;
    return space_.CheckRoomNow().ok();
  }

  absl::Status ResumeWrites() {
    if (read_only_) return ReadOnlyError();
    ResumeRequest request;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return absl::UnavailableError("store is shutting down");
      resume_requests_.push_back(&request);
    }
    request.done.WaitForNotification();
    return request.result;
  }

 private:
  rocksdb::ColumnFamilyHandle* cf(keys::Cf family) const { return handles_[family]; }

  static absl::Status NoTask(absl::string_view task_id) {
    return absl::NotFoundError(absl::StrCat("task_id: no task \"", task_id, "\""));
  }

  // Makes `head` visible to readers and followers, then tells the listeners.
  void PublishHead(uint64_t head) { head_.Publish(head); }

  bool Quiescent() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return queue_.empty() && !busy_ && !paused_;
  }
  bool WriterHasWork() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return stopping_ || !resume_requests_.empty() || (!paused_ && !queue_.empty());
  }

  rocksdb::WriteOptions SyncedWrites() const {
    rocksdb::WriteOptions write;
    write.sync = options_.sync_writes;
    return write;
  }
  absl::Status WriteSynced(rocksdb::WriteBatch* batch, absl::string_view what) {
    return FromRocks(db_->Write(SyncedWrites(), batch), what);
  }

  // ---- The writer thread ----

  // Each round: answer ResumeWrites() calls, try to resume after a lack of space (at most every
  // resume_poll, also while idle), then write the next batch.
  void WriterLoop() {
    while (true) {
      std::vector<Queued> batch;
      std::vector<ResumeRequest*> resume_requests;
      {
        absl::MutexLock lock(&mu_);
        mu_.AwaitWithTimeout(absl::Condition(this, &Impl::WriterHasWork), options_.resume_poll);
        resume_requests.swap(resume_requests_);
        if (stopping_ && queue_.empty() && resume_requests.empty()) return;
        if (paused_ && resume_requests.empty()) continue;  // a rebuild holds the writer off
        const std::size_t n =
            paused_ ? 0 : std::min(queue_.size(), max_commands_per_batch());
        batch.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        busy_ = true;
      }
      if (!resume_requests.empty()) {
        const absl::Status resumed = TryResume();
        for (ResumeRequest* request : resume_requests) {
          // A copy of its own, not a share of `resumed`'s: the waiter reads it after Notify,
          // while this thread drops `resumed`, and a shared status's reference count would be
          // touched by both threads (TSan cannot see the ordering inside Debian's Abseil).
          request->result = DeepCopy(resumed);
          request->done.Notify();
        }
      } else if (absl::Now() - last_resume_attempt_ >= options_.resume_poll && NeedsResume()) {
        TryResume().IgnoreError();  // still refused: the next round tries again
      }
      if (!batch.empty() && options_.before_batch) options_.before_batch(batch.size());
      if (!batch.empty()) ProcessBatch(batch);
      absl::MutexLock lock(&mu_);
      busy_ = false;
    }
  }

  // ---- Resuming after a lack of space (writer thread) ----

  // A ResumeWrites() call waiting for the writer.
  struct ResumeRequest {
    absl::Notification done;
    absl::Status result;
  };

  // True when the store or the access log refuses writes for lack of space (a refusal that may
  // clear); a latched failure of another kind never resumes.
  bool NeedsResume() const {
    {
      absl::MutexLock lock(&mu_);
      if (!write_error_.ok()) return IsNoSpace(write_error_);
    }
    return access_log_ != nullptr && IsNoSpace(access_log_->WriteHealth());
  }

  // Once the disk has room (at least the reserve): DB::Resume(), then the stored head must be
  // the one this writer wrote last, and the access log's likewise. Returns why writes stay
  // refused, or OK.
  absl::Status TryResume() {
    last_resume_attempt_ = absl::Now();
    absl::Status latched;
    {
      absl::MutexLock lock(&mu_);
      latched = write_error_;
    }
    const bool log_latched = access_log_ != nullptr && !access_log_->WriteHealth().ok();
    if (latched.ok() && !log_latched) return absl::OkStatus();
    if (!latched.ok() && !IsNoSpace(latched)) return latched;  // stays latched
    if (absl::Status room = space_.CheckRoomNow(); !room.ok()) return room;
    if (absl::Status s = ResumeDatabase(); !s.ok()) return s;
    if (!latched.ok()) {
      const absl::Status head = CheckHeadUnchanged();
      absl::MutexLock lock(&mu_);
      write_error_ = head.ok() ? absl::OkStatus() : WritesRefusedAfter(Refuser::kStore, head);
      if (!head.ok()) return write_error_;
    }
    return log_latched ? access_log_->ResumeAfterNoSpace() : absl::OkStatus();
  }

  // Makes RocksDB writable again. RocksDB usually resumes from a lack of space by itself (its
  // default SstFileManager retries every 5 s, once its largest memtable fits on the disk), and
  // DB::Resume() is Busy meanwhile: an empty write tells whether it has, so that the store calls
  // Resume() only when RocksDB is stopped and not already recovering.
  absl::Status ResumeDatabase() {
    rocksdb::WriteBatch empty;
    if (db_->Write(rocksdb::WriteOptions(), &empty).ok()) return absl::OkStatus();
    return FromRocks(db_->Resume(), "resuming the database");
  }

  // The head row and the event at the head are the ones this writer wrote last: a refused batch
  // left nothing behind. DATA_LOSS otherwise.
  absl::Status CheckHeadUnchanged() const {
    uint64_t position = 0;
    Hash hash{};
    if (absl::Status s = ReadHeadRow(rocksdb::ReadOptions(), &position, &hash); !s.ok()) return s;
    if (position != head_position_ || hash != head_hash_) {
      return absl::DataLossError(absl::StrCat("event log: the head row moved to position ",
                                              position, " while writes were refused at ",
                                              head_position_));
    }
    if (position == 0) return absl::OkStatus();
    absl::StatusOr<DecodedEvent> event = ReadEvent(rocksdb::ReadOptions(), position);
    if (!event.ok()) return event.status();
    if (event->hash != head_hash_) {
      return absl::DataLossError(absl::StrCat("event log: position ", position,
                                              ": hash differs from the one written"));
    }
    return absl::OkStatus();
  }

  // Why the next batch is refused without being decided, or OK: a latched failure, or the
  // free-space reserve (not latched).
  absl::Status Refusal() {
    {
      absl::MutexLock lock(&mu_);
      // A failed write latched its refusal (UNAVAILABLE); a failed rebuild latched its own error.
      if (absl::IsUnavailable(write_error_)) return write_error_;
      if (!write_error_.ok()) {
        return absl::UnavailableError(
            absl::StrCat("the store refuses writes: ", write_error_.message()));
      }
    }
    const uint64_t written = unchecked_bytes_;
    unchecked_bytes_ = 0;
    return space_.CheckRoom(written);
  }

  // What one batch has decided so far: read by the batch's later commands before the database.
  // A task's state is shared, not copied, between the batch's map and its requests.
  struct BatchState {
    explicit BatchState(SortedRows& rows) : rows(rows) {}
    uint64_t position = 0;
    Hash hash{};
    absl::Time last_recorded_at;
    absl::flat_hash_map<std::string, std::shared_ptr<const v1::Task>> tasks;
    struct Request {
      std::string fingerprint;
      std::shared_ptr<const v1::Task> task;
    };
    absl::flat_hash_map<std::string, Request> requests;
    SortedRows& rows;  // the writer's, empty at the start of each batch
    bool appended = false;
  };

  void ProcessBatch(std::vector<Queued>& batch) {
    std::vector<absl::StatusOr<CommandResult>> results;
    results.reserve(batch.size());
    if (absl::Status refused = Refusal(); !refused.ok()) {
      results.assign(batch.size(), refused);
    } else {
      DecideAndWrite(batch, results);
    }
    // The callbacks (a gRPC reply each, in the server) run on the completion thread, so that
    // the writer goes on to the next batch at once.
    Completion completion;
    completion.dones.reserve(batch.size());
    for (Queued& q : batch) completion.dones.push_back(std::move(q.done));
    completion.results = std::move(results);
    absl::MutexLock lock(&completion_mu_);
    completions_.push_back(std::move(completion));
  }

  // Decides every command of `batch` in order and writes what they appended in one synced
  // WriteBatch; fills `results`, one per command.
  void DecideAndWrite(std::vector<Queued>& batch,
                      std::vector<absl::StatusOr<CommandResult>>& results) {
    writer_rows_.Clear();
    BatchState state(writer_rows_);
    state.position = head_position_;
    state.hash = head_hash_;
    state.last_recorded_at = last_recorded_at_;
    for (Queued& q : batch) results.push_back(ProcessOne(q.command, q.fingerprint, state));
    if (!state.appended) return;
    const bool checkpoint = options_.checkpoint_every > 0 &&
                            state.position - checkpoint_position_ >= options_.checkpoint_every;
    const uint32_t max_schema = std::max(checkpoint_max_schema_, schemas_->current_version());
    state.rows.Put(keys::kDefault, keys::kHeadKey,
                   keys::EncodeHead(state.position, AsBytes(state.hash)));
    if (checkpoint) {
      // The events this writer appended carry the hashes it computed itself; the checkpoint is
      // in the same batch, so it never points past a durable event.
      storage::v1::VerifiedCheckpoint row;
      row.set_position(state.position);
      row.set_hash(std::string(AsBytes(state.hash)));
      row.set_max_schema_version(max_schema);
      state.rows.Put(keys::kDefault, keys::kCheckpointKey, keys::EncodeCheckpoint(row));
    }
    // One WriteBatch for the writer's life: its buffer keeps its size between batches.
    writer_batch_.Clear();
    state.rows.AppendTo(handles_, &writer_batch_);
    unchecked_bytes_ += writer_batch_.GetDataSize();
    absl::Status written = WriteSynced(&writer_batch_, "appending to the event log");
    if (!written.ok()) {
      // Like leveldb's RecordBackgroundError: never guess what reached the disk. A lack of
      // space may clear (TryResume); anything else stays.
      absl::Status refused = WritesRefusedAfter(Refuser::kStore, written);
      {
        absl::MutexLock lock(&mu_);
        write_error_ = refused;
      }
      for (auto& result : results) result = refused;
      return;
    }
    head_position_ = state.position;
    head_hash_ = state.hash;
    last_recorded_at_ = state.last_recorded_at;
    if (checkpoint) {
      checkpoint_position_ = state.position;
      checkpoint_max_schema_ = max_schema;
    }
    PublishHead(head_position_);
  }

  // ---- The completion thread ----

  // A processed batch's callbacks and results, in submission order.
  struct Completion {
    std::vector<Done> dones;
    std::vector<absl::StatusOr<CommandResult>> results;
  };

  bool CompleterHasWork() const ABSL_SHARED_LOCKS_REQUIRED(completion_mu_) {
    return completions_closed_ || !completions_.empty();
  }

  void CompleterLoop() {
    while (true) {
      std::deque<Completion> work;
      {
        absl::MutexLock lock(&completion_mu_);
        completion_mu_.Await(absl::Condition(this, &Impl::CompleterHasWork));
        if (completions_.empty()) return;  // closed, and every callback has run
        work.swap(completions_);
      }
      for (Completion& completion : work) {
        for (std::size_t i = 0; i < completion.dones.size(); ++i) {
          std::move(completion.dones[i])(std::move(completion.results[i]));
        }
      }
    }
  }

  // A command that carries a request id: the first result if the actor already used that id
  // for the same request (nothing is appended), ALREADY_EXISTS if for another, nullopt if the id
  // is new.
  std::optional<absl::StatusOr<CommandResult>> Replayed(const std::string& request_key,
                                                        const std::string& request_id,
                                                        const std::string& fingerprint,
                                                        const BatchState& batch) const {
    auto reused = [&] {
      return absl::AlreadyExistsError(absl::StrCat(
          "request_id: \"", request_id, "\" was already used for a different request"));
    };
    if (auto pending = batch.requests.find(request_key); pending != batch.requests.end()) {
      if (pending->second.fingerprint != fingerprint) return reused();
      return CommandResult{*pending->second.task, {}, true};
    }
    std::string raw;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf(keys::kRequests), request_key, &raw);
    if (s.IsNotFound()) return std::nullopt;
    if (!s.ok()) return FromRocks(s, "reading the idempotency key");
    storage::v1::RequestRecord record;
    if (!record.ParseFromString(raw)) {
      return absl::DataLossError(
          absl::StrCat("requests: row for \"", request_id, "\" is malformed"));
    }
    if (record.fingerprint() != fingerprint) return reused();
    absl::StatusOr<v1::Task> task = FoldStream(record.task_id(), record.task_version());
    if (!task.ok()) return task.status();
    return CommandResult{*std::move(task), {}, true};
  }

  // The task's state before the command: decided earlier in this batch, or stored; nullptr when
  // there is no such task.
  absl::StatusOr<std::shared_ptr<const v1::Task>> StateBefore(const std::string& task_id,
                                                              const BatchState& batch) const {
    if (auto it = batch.tasks.find(task_id); it != batch.tasks.end()) return it->second;
    absl::StatusOr<v1::Task> stored = GetTask(task_id);
    if (stored.ok()) return std::make_shared<const v1::Task>(*std::move(stored));
    if (stored.status().code() == absl::StatusCode::kNotFound) {
      return std::shared_ptr<const v1::Task>();
    }
    return stored.status();
  }

  // Stamps the decided events (schema, position, stream version, id, time, the request's
  // fingerprint on the first), applies them to `next`, chains their hashes from `*hash` and
  // encodes them into `event_rows`; `result` gets them as EventRecords. Changes nothing shared.
  absl::Status StampEvents(std::vector<domain::NewEvent>& decided, const std::string& task_id,
                           absl::Time now, const std::string& fingerprint, bool has_request,
                           uint64_t* position, Hash* hash, v1::Task& next,
                           std::vector<std::pair<uint64_t, std::string>>& event_rows,
                           CommandResult& result) {
    for (std::size_t i = 0; i < decided.size(); ++i) {
      StoredEvent& event = decided[i].event;
      event.set_schema_version(schemas_->current_version());
      event.set_position(++*position);
      event.set_task_id(task_id);
      event.set_version(next.version() + 1);
      event.set_event_id(NewEventId(gen_));
      *event.mutable_recorded_at() = domain::ToProto(now);
      if (i == 0 && has_request) event.set_request_fingerprint(fingerprint);
      if (absl::Status s = domain::Apply(next, event); !s.ok()) {
        return absl::InternalError(
            absl::StrCat("the rules rejected their own event: ", s.message()));
      }
      DecodedEvent decoded;
      decoded.position = *position;
      decoded.prev_hash = *hash;
      event_rows.emplace_back(*position, EncodeEvent(event, *hash, hash));
      decoded.hash = *hash;
      decoded.stored_schema_version = event.schema_version();
      decoded.event = event;
      result.events.push_back(ToEventRecord(decoded));
    }
    return absl::OkStatus();
  }

  // What a projection reads while the writer adds a command's rows: the batch's rows so far,
  // then the database (which only the writer writes).
  class BatchRowReader final : public RowReader {
   public:
    BatchRowReader(const Impl& store, const SortedRows& rows) : store_(store), rows_(rows) {}
    absl::StatusOr<std::optional<std::string>> Get(keys::Cf family,
                                                   absl::string_view key) const override {
      if (auto batched = rows_.Find(family, key)) {
        if (!batched->has_value()) return std::nullopt;
        return std::string(**batched);
      }
      std::string value;
      const rocksdb::Status s =
          store_.db_->Get(rocksdb::ReadOptions(), store_.cf(family), ToSlice(key), &value);
      if (s.IsNotFound()) return std::nullopt;
      if (!s.ok()) return FromRocks(s, "reading a projection row");
      return value;
    }

   private:
    const Impl& store_;
    const SortedRows& rows_;
  };

  // The rows of the command's events, then the rows every projection changes
  // (store/projection.h). On an error, `rows` is as it was.
  absl::Status PutRows(const std::vector<std::pair<uint64_t, std::string>>& event_rows,
                       CommandChange change, SortedRows& rows) const {
    const std::size_t size_before = rows.size();
    const BatchRowReader reader(*this, rows);
    change.rows = &reader;
    for (const auto& [position, bytes] : event_rows) {
      rows.Put(keys::kEvents, keys::EventKey(position), bytes);
    }
    for (const Projection* projection : RegisteredProjections()) {
      if (absl::Status s = projection->OnCommand(change, rows); !s.ok()) {
        rows.Truncate(size_before);
        return s;
      }
    }
    return absl::OkStatus();
  }

  // Decides one command of a batch against the state the batch has so far and, if it appends,
  // adds its rows to the batch. A command that fails leaves no trace in the batch.
  absl::StatusOr<CommandResult> ProcessOne(const domain::Command& command,
                                           const std::string& fingerprint, BatchState& batch) {
    const domain::CommandMeta* meta = domain::MetaOf(command);
    const std::string request_id = meta != nullptr ? meta->request_id : std::string();
    // Request ids are the actor's own (keys.h "requests").
    const std::string request_key =
        request_id.empty() ? std::string() : keys::RequestKey(meta->actor, request_id);
    const std::string& task_id = domain::TaskIdOf(command);
    if (!request_id.empty()) {
      if (auto replayed = Replayed(request_key, request_id, fingerprint, batch)) {
        return *std::move(replayed);
      }
    }
    absl::StatusOr<std::shared_ptr<const v1::Task>> state = StateBefore(task_id, batch);
    if (!state.ok()) return state.status();
    const absl::Time now = std::max(clock_->Now(), batch.last_recorded_at);
    absl::StatusOr<std::vector<domain::NewEvent>> decided = domain::Decide(
        state->get(), command, domain::DecideContext{now, options_.time_zone});
    if (!decided.ok()) return decided.status();
    if (decided->empty()) return CommandResult{*state != nullptr ? **state : v1::Task(), {}, false};

    // Everything is computed before the first row goes into the shared batch.
    auto next_owned = *state != nullptr ? std::make_shared<v1::Task>(**state)
                                        : std::make_shared<v1::Task>();
    v1::Task& next = *next_owned;
    uint64_t position = batch.position;
    Hash hash = batch.hash;
    std::vector<std::pair<uint64_t, std::string>> event_rows;
    CommandResult result;
    if (absl::Status s = StampEvents(*decided, task_id, now, fingerprint, !request_id.empty(),
                                     &position, &hash, next, event_rows, result);
        !s.ok()) {
      return s;
    }

    std::vector<const StoredEvent*> events;
    events.reserve(decided->size());
    for (const domain::NewEvent& stamped : *decided) events.push_back(&stamped.event);
    const CommandChange change{.task_id = task_id,
                               .before = state->get(),
                               .after = &next,
                               .events = events,
                               .actor = meta != nullptr ? absl::string_view(meta->actor) : "",
                               .request_id = request_id,
                               .request_key = request_key,
                               .fingerprint = fingerprint,
                               .last_position = position};
    if (absl::Status s = PutRows(event_rows, change, batch.rows); !s.ok()) return s;
    if (!request_id.empty()) {
      batch.requests[request_key] = BatchState::Request{fingerprint, next_owned};
    }
    batch.position = position;
    batch.hash = hash;
    batch.last_recorded_at = now;
    batch.appended = true;
    result.task = next;
    batch.tasks[task_id] = std::move(next_owned);
    return result;
  }

  // The task's state right after its version `version`, folded from its stream.
  absl::StatusOr<v1::Task> FoldStream(const std::string& task_id, int64_t version) const {
    const ReadView view(*this);
    const rocksdb::ReadOptions& read = view.options();
    v1::Task task;
    for (int64_t v = 1; v <= version; ++v) {
      std::string raw;
      uint64_t position = 0;
      rocksdb::Status s = db_->Get(read, cf(keys::kStreams), keys::StreamKey(task_id, v), &raw);
      if (!s.ok() || !keys::DecodeFixed64BE(raw, &position)) {
        return absl::DataLossError(absl::StrCat("streams: task \"", task_id, "\" version ", v,
                                                " is missing or malformed"));
      }
      absl::StatusOr<DecodedEvent> event = ReadEvent(read, position);
      if (!event.ok()) return event.status();
      if (absl::Status a = ApplyChecked(task, event->event); !a.ok()) return a;
    }
    return task;
  }

  // ---- Rebuild (the writer is stopped or paused) ----

  // `progress` is called every `every` events (never when 0) and once at the end.
  //
  // The log is folded in memory, every projection family is emptied with one range deletion,
  // and the folded rows, already in key order, are written straight into SST files and
  // ingested (no memtable, no WAL, no per-row tombstone). The format row is deleted first and
  // written last, synced: a rebuild interrupted anywhere is redone at the next Open.
  absl::Status RebuildLocked(absl::FunctionRef<void(const RebuildProgress&)> progress,
                             uint64_t every) {
    {
      rocksdb::WriteBatch batch;
      batch.Delete(cf(keys::kDefault), keys::kProjectionFormatKey);
      if (absl::Status s = WriteSynced(&batch, "rebuild"); !s.ok()) return s;
    }
    const uint64_t head = head_position_;
    FoldedLog folded;
    if (absl::Status s = FoldLog(log(), rocksdb::ReadOptions(), head_.Head(), &folded,
                                 [&](uint64_t events) {
                                   if (every > 0 && events % every == 0) {
                                     progress(RebuildProgress{events, head});
                                   }
                                 });
        !s.ok()) {
      return s;
    }

    if (absl::Status s = ClearProjectionFamilies(db_.get(), handles_, SyncedWrites()); !s.ok()) {
      return s;
    }
    if (absl::Status s = IngestFoldedRows(db_.get(), handles_, dir_, folded); !s.ok()) return s;

    rocksdb::WriteBatch batch;
    batch.Put(cf(keys::kDefault), keys::kProjectionFormatKey,
              keys::EncodeFixed32BE(keys::kProjectionFormat));
    batch.Put(cf(keys::kDefault), keys::kProjectionSchemaKey,
              keys::EncodeFixed32BE(schemas_->current_version()));
    absl::Status s = WriteSynced(&batch, "rebuild: recording the projection format");
    if (s.ok()) progress(RebuildProgress{head, head});
    return s;
  }

  const std::string dir_;
  const StoreOptions options_;
  Clock* const clock_;
  const SchemaRegistry* const schemas_;
  const bool read_only_;
  const std::string secondary_path_;  // non-empty for a secondary instance
  mutable DiskSpace space_;  // the reserve below which new commands are refused
  // Secondary instances: held exclusively by CatchUpWithPrimary, shared by each ReadView.
  mutable absl::Mutex catch_up_mu_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // indexed by keys::Cf
  std::unique_ptr<AccessLog> access_log_;  // over handles_[kAccessLog]; reset before the DB

  mutable absl::Mutex mu_;
  std::deque<Queued> queue_ ABSL_GUARDED_BY(mu_);
  std::vector<ResumeRequest*> resume_requests_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool busy_ ABSL_GUARDED_BY(mu_) = false;    // the writer is processing a batch
  bool paused_ ABSL_GUARDED_BY(mu_) = false;  // a rebuild holds the writer off
  absl::Status write_error_ ABSL_GUARDED_BY(mu_);

  // Owned by the writer thread (or by Recover/RebuildLocked while there is no writer work).
  uint64_t head_position_ = 0;
  Hash head_hash_{};
  absl::Time last_recorded_at_ = absl::InfinitePast();
  uint64_t checkpoint_position_ = 0;   // of the last "checkpoint" row written
  uint32_t checkpoint_max_schema_ = 1;  // and its max_schema_version
  absl::BitGen gen_;
  absl::Time last_resume_attempt_ = absl::InfinitePast();
  uint64_t unchecked_bytes_ = 0;  // written since the last free-space check
  SortedRows writer_rows_;          // a batch's rows, in key order at the write
  rocksdb::WriteBatch writer_batch_;
  // head_position_ as readers and followers may see it: published only once durable.
  HeadPublisher head_;

  std::thread writer_;

  // Batches processed by the writer whose callbacks have not run yet.
  absl::Mutex completion_mu_;
  std::deque<Completion> completions_ ABSL_GUARDED_BY(completion_mu_);
  bool completions_closed_ ABSL_GUARDED_BY(completion_mu_) = false;  // no more will come
  std::thread completer_;
};

EventStore::EventStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

EventStore::~EventStore() = default;

absl::StatusOr<std::unique_ptr<EventStore>> EventStore::Open(const std::string& dir,
                                                             StoreOptions options) {
  auto impl = std::make_unique<Impl>(dir, options);
  if (absl::Status s = impl->OpenDb(); !s.ok()) return s;
  if (absl::Status s = impl->Recover(); !s.ok()) return s;
  if (absl::Status s = impl->OpenAccessLog(); !s.ok()) return s;
  impl->StartWriter();
  return std::unique_ptr<EventStore>(new EventStore(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<EventStore>> EventStore::OpenReadOnly(const std::string& dir,
                                                                     ReadOnlyOptions options) {
  StoreOptions store_options;
  store_options.block_cache_bytes = options.block_cache_bytes;
  store_options.env = options.env;
  store_options.schemas = options.schemas;
  store_options.create_if_missing = false;
  auto impl = std::make_unique<Impl>(dir, store_options, /*read_only=*/true,
                                     std::move(options.secondary_path));
  if (absl::Status s = impl->OpenDb(); !s.ok()) return s;
  if (absl::Status s = impl->Recover(options.verify_on_open); !s.ok()) return s;
  if (absl::Status s = impl->OpenAccessLog(); !s.ok()) return s;
  return std::unique_ptr<EventStore>(new EventStore(std::move(impl)));
}

absl::Status EventStore::RestoreFrom(const std::string& backup_dir, const std::string& db_dir) {
  if (absl::Status s = RestoreLatestBackup(backup_dir, db_dir); !s.ok()) return s;
  ReadOnlyOptions options;
  options.verify_on_open = false;  // the whole log is verified just below
  absl::StatusOr<std::unique_ptr<EventStore>> restored = OpenReadOnly(db_dir, options);
  if (!restored.ok()) return restored.status();
  const VerifyReport report = (*restored)->VerifyLog();
  if (!report.ok) {
    return absl::DataLossError(absl::StrCat("restore: the restored log is corrupt at position ",
                                            report.first_bad_position, ": ", report.problem));
  }
  return (*restored)->VerifyProjections();
}

void EventStore::Submit(domain::Command command, std::string fingerprint, Done done) {
  if (impl_->read_only()) {
    std::move(done)(ReadOnlyError());
    return;
  }
  std::vector<Impl::Queued> one;
  one.push_back(Impl::Queued{std::move(command), std::move(fingerprint), std::move(done)});
  impl_->Submit(std::move(one));
}

absl::StatusOr<CommandResult> EventStore::Execute(domain::Command command,
                                                  std::string fingerprint) {
  absl::Notification finished;
  absl::StatusOr<CommandResult> out;
  Submit(std::move(command), std::move(fingerprint),
         [&](absl::StatusOr<CommandResult> result) {
           out = std::move(result);
           finished.Notify();
         });
  finished.WaitForNotification();
  return out;
}

absl::StatusOr<v1::Task> EventStore::GetTask(absl::string_view task_id) const {
  return impl_->GetTask(task_id);
}

absl::StatusOr<v1::Task> EventStore::GetTaskAsOfVersion(absl::string_view task_id,
                                                        int64_t version) const {
  return impl_->GetTaskAsOfVersion(task_id, version);
}

absl::StatusOr<v1::Task> EventStore::GetTaskAsOfTime(absl::string_view task_id,
                                                     absl::Time time) const {
  return impl_->GetTaskAsOfTime(task_id, time);
}

absl::StatusOr<std::vector<HistoryEntry>> EventStore::GetTaskHistory(
    absl::string_view task_id) const {
  return impl_->GetTaskHistory(task_id);
}

absl::StatusOr<ListPage> EventStore::ListTasks(const ListQuery& query) const {
  return impl_->ListTasks(query);
}

absl::StatusOr<std::vector<v1::EventRecord>> EventStore::ReadEvents(uint64_t from_position,
                                                                    absl::string_view task_id,
                                                                    uint64_t limit) const {
  return impl_->ReadEvents(from_position, task_id, limit);
}

uint64_t EventStore::HeadPosition() const { return impl_->HeadPosition(); }

bool EventStore::WaitForHeadAbove(uint64_t position, absl::Duration timeout) const {
  return impl_->WaitForHeadAbove(position, timeout);
}

HeadListenerId EventStore::AddHeadListener(HeadListener listener) {
  return impl_->AddHeadListener(std::move(listener));
}

void EventStore::RemoveHeadListener(HeadListenerId id) { impl_->RemoveHeadListener(id); }

VerifyReport EventStore::VerifyLog() const { return impl_->VerifyLog(); }

absl::StatusOr<VerifyReport> EventStore::VerifyLog(const VerifyOptions& options) const {
  return impl_->VerifyLog(options);
}

absl::Status EventStore::VerifyProjections() const { return impl_->VerifyProjections(); }

absl::Status EventStore::RebuildProjections() {
  return impl_->RebuildProjections([](const RebuildProgress&) {}, 0);
}

absl::Status EventStore::RebuildProjections(
    absl::FunctionRef<void(const RebuildProgress&)> progress, uint64_t every) {
  return impl_->RebuildProjections(progress, every);
}

absl::StatusOr<std::string> EventStore::DumpProjections() const {
  return impl_->DumpProjections();
}

std::optional<absl::Time> EventStore::NextExpiry() const { return impl_->NextExpiry(); }

absl::StatusOr<int> EventStore::ExpireDue(absl::Time now) {
  if (impl_->read_only()) return ReadOnlyError();
  int closed = 0;
  std::string start;
  while (true) {
    absl::StatusOr<std::vector<std::string>> due =
        impl_->DueTasks(now, &start, impl_->max_commands_per_batch());
    if (!due.ok()) return due.status();
    if (due->empty()) return closed;
    // One group: every command is queued at once, so the writer can commit them together.
    absl::Mutex mu;
    absl::Status failure;
    absl::BlockingCounter remaining(static_cast<int>(due->size()));
    std::vector<Impl::Queued> commands;
    for (std::string& task_id : *due) {
      commands.push_back(Impl::Queued{
          domain::ExpireTaskCommand{std::move(task_id)}, std::string(),
          [&](absl::StatusOr<CommandResult> result) {
            {
              absl::MutexLock lock(&mu);
              if (result.ok()) {
                if (!result->events.empty()) ++closed;
              } else if (result.status().code() != absl::StatusCode::kFailedPrecondition &&
                         result.status().code() != absl::StatusCode::kNotFound &&
                         failure.ok()) {
                // FAILED_PRECONDITION: not due by the writer's clock yet; the next call will.
                failure = result.status();
              }
            }
            remaining.DecrementCount();
          }});
    }
    impl_->Submit(std::move(commands));
    remaining.Wait();
    absl::MutexLock lock(&mu);
    if (!failure.ok()) return failure;
  }
}

absl::Status EventStore::WriteHealth() const { return impl_->WriteHealth(); }

absl::Status EventStore::ResumeWrites() { return impl_->ResumeWrites(); }

absl::Status EventStore::BackupTo(const std::string& backup_dir) {
  return impl_->BackupTo(backup_dir);
}

absl::Status EventStore::CatchUpWithPrimary() { return impl_->CatchUpWithPrimary(); }

AccessLog* EventStore::access_log() const { return impl_->access_log(); }

}  // namespace outreach::store
