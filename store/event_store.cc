#include "store/event_store.h"

#include <atomic>
#include <optional>
#include <thread>
#include <vector>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "logging/log.h"
#include "store/backup.h"
#include "store/consumer_checkpoints.h"
#include "store/database.h"
#include "store/disk_space.h"
#include "store/event_writer.h"
#include "store/head_publisher.h"
#include "store/log_fold.h"
#include "store/log_reader.h"
#include "store/log_verifier.h"
#include "store/patient_outreach.h"
#include "store/privacy.h"
#include "store/projection_rows.h"
#include "store/projections/expiry.h"
#include "store/recovery.h"
#include "store/store_stats.h"
#include "store/task_history.h"
#include "store/worklist.h"

namespace outreach::store {
namespace {

absl::Status ReadOnlyError() { return absl::FailedPreconditionError(kReadOnlyMessage); }

constexpr char kNeedsKeyMessage[] =
    "this database keeps personal data encrypted (README \"Privacy\"): open it with its "
    "master key (--master-key-file)";

// The tasks and events a command's result carries, opened.
absl::Status RevealResult(const Privacy& privacy, CommandResult& result) {
  for (v1::Task& task : result.tasks) {
    if (absl::Status s = privacy.Reveal(task); !s.ok()) return s;
  }
  for (v1::EventRecord& event : result.events) {
    if (absl::Status s = privacy.Reveal(event); !s.ok()) return s;
  }
  return absl::OkStatus();
}

bool ErasesAPatient(const CommandResult& result) {
  for (const v1::EventRecord& event : result.events) {
    if (event.has_patient_erased()) return true;
  }
  return false;
}

}  // namespace

// The parts of a store, each in a file of its own (docs/architecture.md): the database, the
// published head, the access log and, read-write, the writer.
class EventStore::Impl {
 public:
  Impl(std::string dir, StoreOptions options)
      : options(std::move(options)),
        clock(this->options.clock != nullptr ? this->options.clock : Clock::Real()),
        schemas(this->options.schemas != nullptr ? this->options.schemas
                                                 : &SchemaRegistry::Production()),
        dir(std::move(dir)),
        space(this->dir, this->options.min_free_disk_bytes) {}

  ~Impl() {
    head.Close();  // followers first: every waiter returns before anything goes away
    if (writer != nullptr) writer->Stop();
    // A clean close flushes the memtables, so that the next start-up does not replay the whole
    // WAL (the dominant start-up cost on a large log). Skipped after a write error of the store
    // or of its access log, and below the reserve: nothing more is written to a disk that has
    // failed us or is almost full, and nothing touches a WAL writer that has failed (RocksDB
    // asserts if a failed writer is synced again). The WAL stays the source of truth until
    // every column family's flush is done, so a crash mid-flush recovers as usual.
    const bool flush = writer != nullptr && writer->MayWriteOnClose();
    writer.reset();
    StopPurger();
    consumers.reset();   // its writer uses the database
    access_log.reset();  // its writer uses the database
    if (database != nullptr) database->Close(flush);
  }

  absl::Status Open(DatabaseOptions database_options, bool verify) {
    absl::StatusOr<std::unique_ptr<Database>> opened = Database::Open(dir, database_options);
    if (!opened.ok()) return opened.status();
    database = *std::move(opened);
    absl::StatusOr<Recovered> recovered = Recover(*database, *schemas, verify, options.observer);
    if (!recovered.ok()) return recovered.status();
    head.Publish(recovered->head.position);
    if (absl::Status s = OpenPrivacy(recovered->head.position); !s.ok()) return s;
    if (absl::Status s = OpenAccessLog(); !s.ok()) return s;
    OpenConsumers();
    if (database->read_only()) return absl::OkStatus();
    if (privacy != nullptr) {
      // Keys destroyed before a crash, or by a restore's re-applied erasures, leave the files.
      if (absl::Status s = PurgeKeys(); !s.ok()) return s;
      purger = std::thread([this] { RunPurger(); });
    }
    WriterOptions writer_options;
    writer_options.processor.time_zone = options.time_zone;
    writer_options.processor.practice_zones = options.practice_zones;
    writer_options.processor.clock = clock;
    writer_options.processor.privacy = privacy.get();
    writer_options.max_commands_per_batch = options.max_commands_per_batch;
    writer_options.checkpoint_every = options.checkpoint_every;
    writer_options.resume_poll = options.resume_poll;
    writer_options.before_batch = options.before_batch;
    writer_options.observer = options.observer;
    writer = std::make_unique<EventWriter>(*database, schemas, head, space, access_log.get(),
                                           std::move(writer_options));
    writer->Start(*recovered);
    return absl::OkStatus();
  }

  // Opens the access log over its column family; after recovery, before the writer starts.
  absl::Status OpenAccessLog() {
    if (database->cf(keys::kAccessLog) == nullptr) return absl::OkStatus();
    AccessLogOptions log_options = options.access_log;
    log_options.sync = log_options.sync && options.sync_writes;
    absl::StatusOr<std::unique_ptr<AccessLog>> log =
        AccessLog::Open(database->db(), database->cf(keys::kAccessLog), clock, log_options,
                        database->read_only());
    if (!log.ok()) return log.status();
    access_log = *std::move(log);
    access_log_head_at_open = access_log->HeadSequence();
    return absl::OkStatus();
  }

  // The durable consumers' checkpoints, over their own family (absent in a database written
  // before it existed and opened read-only).
  void OpenConsumers() {
    if (database->cf(keys::kConsumers) == nullptr) return;
    consumers = std::make_unique<ConsumerCheckpoints>(
        database->db(), database->cf(keys::kConsumers), clock, [this] { return head.Head(); },
        options.sync_writes, database->read_only());
  }

  // The store's privacy mode (store/privacy.h), after recovery.
  absl::Status OpenPrivacy(uint64_t head_position) {
    absl::StatusOr<bool> is = IsEncrypted(database->db(), database->cf(keys::kDefault));
    if (!is.ok()) return is.status();
    encrypted = *is;
    if (options.master_key.empty()) {
      if (!encrypted) return absl::OkStatus();
      if (database->read_only()) return absl::OkStatus();  // reads refuse, verify works
      if (!options.open_encrypted_without_key) {
        return absl::FailedPreconditionError(kNeedsKeyMessage);
      }
      writes_locked = true;
      return absl::OkStatus();
    }
    if (!encrypted) {
      if (database->read_only()) {
        return absl::FailedPreconditionError(
            "a master key was given, but this database is not encrypted (it was created "
            "without one)");
      }
      if (head_position > 0) {
        return absl::FailedPreconditionError(absl::StrCat(
            "this database already holds ", head_position,
            " events unencrypted: a plain database cannot be encrypted in place; start a new "
            "database with --master-key-file (README \"Privacy\")"));
      }
    }
    rocksdb::WriteBatch batch;
    absl::StatusOr<std::unique_ptr<Privacy>> opened =
        Privacy::Open(database->db(), database->cf(keys::kDefault), database->cf(keys::kKeys),
                      options.master_key, /*create=*/!encrypted, &batch);
    if (!opened.ok()) return opened.status();
    if (batch.Count() > 0) {
      if (absl::Status s = database->WriteSynced(&batch, "writing the privacy row"); !s.ok()) {
        return s;
      }
    }
    privacy = *std::move(opened);
    encrypted = true;
    return absl::OkStatus();
  }

  // Readers: the sealed fields opened; FAILED_PRECONDITION for an encrypted store opened
  // without its key.
  template <class T>
  absl::Status Reveal(T& value) const {
    if (privacy != nullptr) return privacy->Reveal(value);
    if (encrypted) return absl::FailedPreconditionError(kNeedsKeyMessage);
    return absl::OkStatus();
  }

  absl::Status PurgeKeys() {
    rocksdb::FlushOptions flush;
    flush.wait = true;
    std::vector<rocksdb::ColumnFamilyHandle*> families;
    for (rocksdb::ColumnFamilyHandle* family : database->handles()) {
      if (family != nullptr) families.push_back(family);
    }
    if (absl::Status s = FromRocks(database->db()->Flush(flush, families), "flushing");
        !s.ok()) {
      return s;
    }
    rocksdb::CompactRangeOptions compact;
    compact.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    if (absl::Status s = FromRocks(database->db()->CompactRange(compact, database->cf(keys::kKeys),
                                                                nullptr, nullptr),
                                   "compacting the data keys");
        !s.ok()) {
      return s;
    }
    purges_done.fetch_add(1, std::memory_order_relaxed);
    return absl::OkStatus();
  }

  void RequestPurge() {
    absl::MutexLock lock(&purge_mu);
    purge_requested = true;
  }

  // The background purge after erasures: one at a time, coalescing requests.
  void RunPurger() {
    while (true) {
      {
        absl::MutexLock lock(&purge_mu);
        purge_mu.Await(absl::Condition(
            +[](Impl* impl) { return impl->purge_requested || impl->purge_stopping; }, this));
        if (purge_stopping) return;
        purge_requested = false;
      }
      if (absl::Status s = PurgeKeys(); !s.ok()) {
        logging::Warning("purging destroyed data keys failed; the next start-up purges them",
                         {{"error", s.ToString()}});
      }
    }
  }

  void StopPurger() {
    if (!purger.joinable()) return;
    {
      absl::MutexLock lock(&purge_mu);
      purge_stopping = true;
    }
    purger.join();
  }

  LogReader log() const { return LogReader(database->db(), &database->handles(), schemas); }

  const StoreOptions options;
  Clock* const clock;
  const SchemaRegistry* const schemas;
  const std::string dir;
  mutable DiskSpace space;  // the reserve below which new commands are refused
  // The head as readers and followers may see it: published only once durable.
  HeadPublisher head;
  std::unique_ptr<Database> database;
  std::unique_ptr<AccessLog> access_log;  // over the "access_log" family; reset before the DB
  std::unique_ptr<EventWriter> writer;    // nullptr when read-only
  std::unique_ptr<ConsumerCheckpoints> consumers;  // over "consumers"; reset before the DB
  uint64_t access_log_head_at_open = 0;   // StoreStats::access_log_appends counts from it
  bool encrypted = false;                 // the database has a "privacy" row
  bool writes_locked = false;             // encrypted, opened without its key: no writes
  std::unique_ptr<Privacy> privacy;       // set when encrypted and opened with the key
  std::atomic<uint64_t> purges_done{0};
  std::thread purger;                     // read-write and encrypted: RunPurger
  absl::Mutex purge_mu;
  bool purge_requested ABSL_GUARDED_BY(purge_mu) = false;
  bool purge_stopping ABSL_GUARDED_BY(purge_mu) = false;
  mutable std::atomic<uint64_t> verify_failures{0};
};

EventStore::EventStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

EventStore::~EventStore() = default;

absl::StatusOr<std::unique_ptr<EventStore>> EventStore::Open(const std::string& dir,
                                                             StoreOptions options) {
  DatabaseOptions database_options;
  database_options.mode = OpenMode::kReadWrite;
  database_options.create_if_missing = options.create_if_missing;
  database_options.sync_writes = options.sync_writes;
  database_options.block_cache_bytes = options.block_cache_bytes;
  database_options.env = options.env;
  auto impl = std::make_unique<Impl>(dir, std::move(options));
  if (absl::Status s = impl->Open(database_options, /*verify=*/true); !s.ok()) return s;
  return std::unique_ptr<EventStore>(new EventStore(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<EventStore>> EventStore::OpenReadOnly(const std::string& dir,
                                                                     ReadOnlyOptions options) {
  StoreOptions store_options;
  store_options.block_cache_bytes = options.block_cache_bytes;
  store_options.env = options.env;
  store_options.schemas = options.schemas;
  store_options.create_if_missing = false;
  store_options.master_key = std::move(options.master_key);
  const bool secondary = !options.secondary_path.empty();
  DatabaseOptions database_options;
  database_options.mode = secondary ? OpenMode::kSecondary : OpenMode::kReadOnly;
  database_options.secondary_path = std::move(options.secondary_path);
  database_options.create_if_missing = false;
  database_options.block_cache_bytes = options.block_cache_bytes;
  database_options.env = options.env;
  auto impl = std::make_unique<Impl>(dir, std::move(store_options));
  if (absl::Status s = impl->Open(std::move(database_options), options.verify_on_open); !s.ok()) {
    return s;
  }
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
  std::vector<Submission> one;
  one.push_back(Submission{std::move(command), std::move(fingerprint), std::move(done)});
  SubmitGroup(std::move(one));
}

void EventStore::Submit(domain::Command command, std::string fingerprint, WriteAccess access,
                        Done done) {
  std::vector<Submission> one;
  one.push_back(Submission{std::move(command), std::move(fingerprint), std::move(done),
                           std::move(access)});
  SubmitGroup(std::move(one));
}

void EventStore::SubmitGroup(std::vector<Submission> commands) {
  if (impl_->writer == nullptr) {
    for (Submission& s : commands) std::move(s.done)(ReadOnlyError());
    return;
  }
  if (impl_->writes_locked) {
    for (Submission& s : commands) {
      std::move(s.done)(absl::FailedPreconditionError(kNeedsKeyMessage));
    }
    return;
  }
  std::vector<EventWriter::Queued> queued;
  queued.reserve(commands.size());
  for (Submission& s : commands) {
    if (impl_->privacy != nullptr) {
      // Results leave the store opened; an erasure's keys then leave the files.
      s.done = [impl = impl_.get(), done = std::move(s.done)](
                   absl::StatusOr<CommandResult> result) mutable {
        if (result.ok()) {
          if (ErasesAPatient(*result)) impl->RequestPurge();
          if (absl::Status s = RevealResult(*impl->privacy, *result); !s.ok()) result = s;
        }
        std::move(done)(std::move(result));
      };
    }
    queued.push_back(EventWriter::Queued{std::move(s.command), std::move(s.fingerprint),
                                         std::move(s.done), std::move(s.access)});
  }
  impl_->writer->Submit(std::move(queued));
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

bool EventStore::read_only() const { return impl_->writer == nullptr; }

std::size_t EventStore::max_commands_per_batch() const {
  return std::max<std::size_t>(impl_->options.max_commands_per_batch, 1);
}

namespace {

// `value` with its sealed fields opened by `impl` (EventStore::Impl::Reveal).
template <class Impl, class T>
absl::StatusOr<T> Revealed(const Impl& impl, absl::StatusOr<T> value) {
  if (!value.ok()) return value;
  if (absl::Status s = impl.Reveal(*value); !s.ok()) return s;
  return value;
}

}  // namespace

absl::StatusOr<v1::Task> EventStore::GetTask(absl::string_view task_id) const {
  return Revealed(*impl_, ReadTaskRow(impl_->log(), task_id));
}

absl::StatusOr<v1::Task> EventStore::GetTaskAsOfVersion(absl::string_view task_id,
                                                        int64_t version) const {
  const Database::ReadView view(*impl_->database);
  return Revealed(*impl_, TaskAsOfVersion(impl_->log(), view.options(), task_id, version));
}

absl::StatusOr<v1::Task> EventStore::GetTaskAsOfTime(absl::string_view task_id,
                                                     absl::Time time) const {
  const Database::ReadView view(*impl_->database);
  return Revealed(*impl_, TaskAsOfTime(impl_->log(), view.options(), task_id, time));
}

absl::StatusOr<std::vector<HistoryEntry>> EventStore::GetTaskHistory(
    absl::string_view task_id) const {
  const Database::ReadView view(*impl_->database);
  absl::StatusOr<std::vector<HistoryEntry>> history =
      TaskHistory(impl_->log(), view.options(), task_id);
  if (!history.ok()) return history;
  for (HistoryEntry& entry : *history) {
    if (absl::Status s = impl_->Reveal(entry.event); !s.ok()) return s;
  }
  return history;
}

absl::StatusOr<std::vector<v1::OutreachStats>> EventStore::GetOutreachStats(
    StatsQuery query) const {
  const Database& database = *impl_->database;
  const Database::ReadView view(database);
  query.time_zone = impl_->options.time_zone;
  return ComputeOutreachStats(database.db(), database.cf(keys::kStats), view.options().snapshot,
                              query);
}

absl::StatusOr<ListPage> EventStore::ListTasks(const ListQuery& query) const {
  const Database& database = *impl_->database;
  const Database::ReadView view(database);
  std::optional<ListQuery> pseudonymized;
  if (impl_->privacy != nullptr && !query.patient_id.empty()) {
    pseudonymized = query;
    pseudonymized->patient_id = impl_->privacy->Pseudonym(query.patient_id);
  }
  absl::StatusOr<ListPage> page =
      ListWorklist(database.db(), database.cf(keys::kWorklist), database.cf(keys::kTasks),
                   view.options().snapshot, pseudonymized.has_value() ? *pseudonymized : query);
  if (!page.ok()) return page;
  for (v1::Task& task : page->tasks) {
    if (absl::Status s = impl_->Reveal(task); !s.ok()) return s;
  }
  return page;
}

absl::StatusOr<v1::PatientOutreach> EventStore::GetPatientOutreach(
    absl::string_view practice_id, absl::string_view patient_id) const {
  const absl::CivilDay today = absl::ToCivilDay(impl_->clock->Now(), impl_->options.time_zone);
  if (impl_->encrypted && impl_->privacy == nullptr) {
    return absl::FailedPreconditionError(kNeedsKeyMessage);
  }
  if (impl_->privacy == nullptr) {
    return ReadPatientOutreach(*impl_->database, practice_id, patient_id, today, nullptr);
  }
  absl::StatusOr<v1::PatientOutreach> out =
      ReadPatientOutreach(*impl_->database, practice_id,
                          impl_->privacy->Pseudonym(patient_id), today, impl_->privacy.get());
  if (out.ok()) out->set_patient_id(std::string(patient_id));
  return out;
}

absl::StatusOr<std::vector<v1::EventRecord>> EventStore::ReadEvents(uint64_t from_position,
                                                                    absl::string_view task_id,
                                                                    uint64_t limit) const {
  const Database::ReadView view(*impl_->database);
  absl::StatusOr<std::vector<v1::EventRecord>> events =
      impl_->log().ReadEvents(view.options(), from_position, task_id, limit);
  if (!events.ok()) return events;
  for (v1::EventRecord& event : *events) {
    if (absl::Status s = impl_->Reveal(event); !s.ok()) return s;
  }
  return events;
}

uint64_t EventStore::HeadPosition() const { return impl_->head.Head(); }

bool EventStore::WaitForHeadAbove(uint64_t position, absl::Duration timeout) const {
  return impl_->head.WaitForHeadAbove(position, timeout);
}

HeadListenerId EventStore::AddHeadListener(HeadListener listener) {
  return impl_->head.AddListener(std::move(listener));
}

void EventStore::RemoveHeadListener(HeadListenerId id) { impl_->head.RemoveListener(id); }

VerifyReport EventStore::VerifyLog() const {
  const Database::ReadView view(*impl_->database);
  VerifyReport report = VerifyLogRange(impl_->log(), view.options(), 0, ZeroHash(),
                                       /*projections_current=*/false, /*to=*/0, nullptr);
  if (!report.ok) impl_->verify_failures.fetch_add(1, std::memory_order_relaxed);
  return report;
}

absl::StatusOr<VerifyReport> EventStore::VerifyLog(const VerifyOptions& options) const {
  const Database::ReadView view(*impl_->database);
  absl::StatusOr<VerifyReport> report = VerifyLogAgainst(impl_->log(), view.options(), options);
  if (report.ok() && !report->ok) impl_->verify_failures.fetch_add(1, std::memory_order_relaxed);
  return report;
}

absl::Status EventStore::VerifyProjections() const {
  const Database& database = *impl_->database;
  const Database::ReadView view(database);
  FoldedLog replayed;
  if (absl::Status folded =
          FoldLog(impl_->log(), view.options(), impl_->head.Head(), &replayed, [](uint64_t) {});
      !folded.ok()) {
    return folded;
  }
  return CompareStoredProjections(database.db(), database.handles(), view.options(), replayed);
}

absl::Status EventStore::RebuildProjections() {
  return RebuildProjections([](const RebuildProgress&) {}, 0);
}

absl::Status EventStore::RebuildProjections(
    absl::FunctionRef<void(const RebuildProgress&)> progress, uint64_t every) {
  if (impl_->writer == nullptr) return ReadOnlyError();
  return impl_->writer->Rebuild(
      [&](uint64_t folded, uint64_t head) { progress(RebuildProgress{folded, head}); }, every);
}

absl::StatusOr<std::string> EventStore::DumpProjections() const {
  const Database::ReadView view(*impl_->database);
  return DumpProjectionRows(*impl_->database, view.options());
}

std::optional<absl::Time> EventStore::NextExpiry() const {
  return store::NextExpiry(impl_->database->db(), impl_->database->cf(keys::kExpiry));
}

absl::StatusOr<std::vector<std::string>> EventStore::DueTasks(absl::Time now, std::string* start,
                                                             std::size_t max) const {
  return store::DueTasks(impl_->database->db(), impl_->database->cf(keys::kExpiry), now, start,
                         max);
}

StoreStats EventStore::Stats() const {
  StoreStats stats;
  stats.head_position = impl_->head.Head();
  if (impl_->writer != nullptr) {
    stats.queue_depth = impl_->writer->QueueDepth();
    stats.checkpoints = impl_->writer->Checkpoints();
  }
  if (impl_->access_log != nullptr) {
    const uint64_t head = impl_->access_log->HeadSequence();
    stats.access_log_appends =
        head > impl_->access_log_head_at_open ? head - impl_->access_log_head_at_open : 0;
  }
  stats.verify_failures = impl_->verify_failures.load(std::memory_order_relaxed);
  return stats;
}

RocksDbStats EventStore::RocksDb() const {
  return ReadRocksDbStats(impl_->database->db(), impl_->database->handles());
}

absl::StatusOr<uint64_t> EventStore::CountDueTasks(absl::Time now, uint64_t cap) const {
  return CountExpiryRowsDue(impl_->database->db(), impl_->database->cf(keys::kExpiry), now, cap);
}

absl::StatusOr<std::vector<EventStore::OpenTaskCount>> EventStore::CountOpenTasksByKind() const {
  std::vector<OpenTaskCount> counts;
  const Database::ReadView view(*impl_->database);
  for (v1::TaskKind kind : {v1::MANUAL, v1::AUTOMATIC}) {
    OpenTaskCount count{kind, 0};
    for (v1::TaskStatus status : {v1::OPEN, v1::IN_PROGRESS}) {
      absl::StatusOr<uint64_t> rows = CountRowsWithPrefix(
          impl_->database->db(), impl_->database->cf(keys::kWorklist), view.options(),
          keys::WorklistPrefix(keys::Scope::kKind, keys::KindScopeValue(kind), status));
      if (!rows.ok()) return rows.status();
      count.open += *rows;
    }
    counts.push_back(count);
  }
  return counts;
}

absl::Status EventStore::WriteHealth() const {
  if (impl_->writer == nullptr) return ReadOnlyError();
  return impl_->writer->WriteHealth();
}

absl::Status EventStore::ResumeWrites() {
  if (impl_->writer == nullptr) return ReadOnlyError();
  return impl_->writer->ResumeWrites();
}

absl::Status EventStore::BackupTo(const std::string& backup_dir) {
  return BackupLive(backup_dir, /*keep_last=*/0).status();
}

absl::StatusOr<BackupSummary> EventStore::BackupLive(const std::string& backup_dir,
                                                     uint32_t keep_last) {
  if (impl_->writer == nullptr) {
    return absl::FailedPreconditionError(
        "store is open read-only: back up from the process that has it open for writing, or "
        "offline");
  }
  return BackupLiveDatabase(impl_->database->db(), backup_dir, keep_last);
}

absl::Status EventStore::CatchUpWithPrimary() {
  if (absl::Status s = impl_->database->CatchUpWithPrimary(); !s.ok()) return s;
  uint64_t head = 0;
  Hash hash{};
  if (absl::Status h = impl_->log().ReadHeadRow(rocksdb::ReadOptions(), &head, &hash); !h.ok()) {
    return h;
  }
  impl_->head.Publish(head);
  return absl::OkStatus();
}

AccessLog* EventStore::access_log() const { return impl_->access_log.get(); }

ConsumerCheckpoints* EventStore::consumers() const { return impl_->consumers.get(); }

bool EventStore::encrypted() const { return impl_->encrypted; }

absl::Status EventStore::PurgeDestroyedKeys() {
  if (impl_->database->read_only()) return ReadOnlyError();
  return impl_->PurgeKeys();
}

absl::StatusOr<std::string> EventStore::Pseudonym(absl::string_view patient_id) const {
  if (impl_->privacy == nullptr) {
    return absl::FailedPreconditionError("the store is not encrypted, or opened without its key");
  }
  return impl_->privacy->Pseudonym(patient_id);
}

absl::StatusOr<std::vector<ErasureEntry>> EventStore::ReapplyErasures(
    const std::vector<ErasureEntry>& entries) {
  if (impl_->privacy == nullptr) {
    return absl::FailedPreconditionError(
        "re-applying erasures needs an encrypted store opened with its master key");
  }
  const uint64_t restored_head = HeadPosition();
  std::vector<ErasureEntry> applied;
  for (const ErasureEntry& entry : entries) {
    if (entry.position <= restored_head) continue;  // the restored log holds it
    domain::ErasePatientCommand erase;
    erase.practice_id = entry.practice_id;
    erase.patient_id = entry.pseudonym;
    erase.reason = absl::StrCat("re-applied from the erasure list after a restore (erased at "
                                "position ", entry.position, " before)");
    erase.meta.actor = kErasureListActor;
    absl::StatusOr<CommandResult> result = Execute(std::move(erase), std::string());
    if (absl::IsNotFound(result.status())) continue;  // never seen by the restored log
    if (!result.ok()) return result.status();
    for (const v1::EventRecord& event : result->events) {
      if (!event.has_patient_erased()) continue;
      applied.push_back(ErasureEntry{event.position(), entry.practice_id, entry.pseudonym});
    }
  }
  if (absl::Status s = PurgeDestroyedKeys(); !s.ok()) return s;
  return applied;
}

uint64_t EventStore::PurgesDone() const {
  return impl_->purges_done.load(std::memory_order_relaxed);
}

}  // namespace outreach::store
