// EventStore: the outreach event log, its projections and indexes, in one RocksDB database.
//
// Ownership and threads:
//  - Open() returns the only handle to a database directory (RocksDB's LOCK file enforces it).
//  - One writer thread owns the append path (group commit): Submit() queues a command; the
//    writer drains every queued command, decides each against the current state (a command
//    that fails fails alone), and writes all of them in ONE WriteBatch with sync=true. `done`
//    runs after the sync on the store's completion thread, in submission order, while the
//    writer goes on with the next batch, so callers never block on an fsync. It must not wait
//    on the store (Execute, ExpireDue, RebuildProjections): that would deadlock the completion
//    thread. Submit from `done` is fine.
//  - Reads (GetTask, ListTasks, ReadEvents, VerifyLog) are thread-safe and run concurrently
//    with writes; they see every acknowledged write.
//  - After a failed write or sync the store refuses further writes (UNAVAILABLE) and keeps
//    serving reads: nothing is acknowledged that was not synced. A failure for lack of space
//    (ENOSPC) is the one exception: every StoreOptions::resume_poll the writer checks the free
//    space, and once there is room (at least the reserve) it resumes RocksDB (DB::Resume, which
//    flushes the memtables to a fresh WAL), checks that the stored head is still the one it
//    wrote last, and accepts writes again; the access log resumes with it. Any other failure (a
//    failed fsync, corruption) stays latched until a restart. Client-facing messages never hold
//    a file path (store/write_refusal.h).
//  - Below the free-space reserve (StoreOptions::min_free_disk_bytes, store/disk_space.h) new
//    commands are refused with UNAVAILABLE "disk almost full" without latching anything; reads
//    and the access log go on, and writes are accepted again as soon as there is room.
//  - Closing after a write error, or below the reserve, writes nothing more: no memtable flush,
//    no WAL sync (RocksDB's avoid_flush_during_shutdown), so a close never touches a file writer
//    that has already failed; the WAL replays at the next start.
//  - OpenReadOnly() gives a handle with no writer thread, for offline tools and for inspecting a
//    live server's directory (RocksDB secondary instance). Every write is FAILED_PRECONDITION.
//  - Followers (live subscriptions) learn that the head moved through WaitForHeadAbove() or a
//    head listener, then read the new events with ReadEvents(): the store never buffers events
//    for a subscriber, so a slow one costs nothing but its own reads.
//  - Every event read goes through the store's SchemaRegistry (store/event_codec.h): readers,
//    projections and rebuilds see events upcast to the current schema version.
//
// The on-disk format is documented in store/keys.h and store/event_codec.h.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "domain/task_rules.h"
#include "outreach/v1/events.pb.h"
#include "outreach/v1/patient_service.pb.h"
#include "outreach/v1/task.pb.h"
#include "store/access_log.h"
#include "store/outreach_stats.h"
#include "store/backup.h"
#include "store/clock.h"
#include "store/command_processor.h"
#include "store/erasure_list.h"
#include "store/event_codec.h"
#include "store/practice_zones.h"
#include "store/store_observer.h"

namespace rocksdb {
class Env;
}  // namespace rocksdb

namespace outreach::store {

class ConsumerCheckpoints;

// The actor of the erasures ReapplyErasures appends.
inline constexpr char kErasureListActor[] = "system:erasure-list";

// What a write to a read-only store is refused with (FAILED_PRECONDITION).
inline constexpr char kReadOnlyMessage[] = "store is open read-only: writes are refused";

struct StoreOptions {
  absl::TimeZone time_zone = absl::UTCTimeZone();  // "today" for follow-up dates
  // "Today" per practice (store/practice_zones.h; outreachd's --practice-time-zones), for the
  // practices it lists; nullptr = every practice in time_zone. Shared: the caller may Replace
  // its map while the store runs.
  std::shared_ptr<const PracticeZoneTable> practice_zones;
  Clock* clock = nullptr;                          // nullptr = Clock::Real()
  bool sync_writes = true;          // fsync the WAL before acknowledging (tests may turn off)
  std::size_t block_cache_bytes = 64 << 20;
  std::size_t max_commands_per_batch = 1024;
  // The writer records a verified checkpoint in the batch that takes the log this many events
  // past the last one (0 = only Open records one), so that a start-up after a long session
  // re-verifies about this many events instead of all that session appended. Those events carry
  // the hashes the writer computed; damage to them while the service is down is then
  // VerifyLog's to find, like damage before any checkpoint.
  uint64_t checkpoint_every = 65536;
  rocksdb::Env* env = nullptr;      // nullptr = the default; tests inject I/O faults
  bool create_if_missing = true;    // false: NOT_FOUND when `dir` holds no database
  // The schema versions to read and write; nullptr = SchemaRegistry::Production(). Must outlive
  // the store. Tests pass one with a newer version and its upcasters.
  const SchemaRegistry* schemas = nullptr;
  // The read-access audit log in the same database (sync follows sync_writes).
  AccessLogOptions access_log;
  // New commands are refused (UNAVAILABLE "disk almost full") while the database's file system
  // has less free space than this. nullopt = the smaller of 256 MiB and 5% of the file system
  // (store/disk_space.h); 0 = no reserve.
  std::optional<uint64_t> min_free_disk_bytes;
  // While writes are refused for lack of space, how often the writer checks for room and tries
  // to resume (see the contract above). Space that returns is used within about this long.
  absl::Duration resume_poll = absl::Seconds(1);
  // Test only; leave empty in production. Called on the writer thread with the number of
  // commands the writer has just taken off the queue as one batch, before it decides them. A
  // hook that blocks holds the writer, so the commands Submit()ted meanwhile wait in the queue
  // and make up the next batch together (tests/testing/writer_gate.h).
  std::function<void(std::size_t commands)> before_batch;
  // Hears the write path's events and a rebuild's progress (store/store_observer.h); nullptr =
  // nobody. Must outlive the store.
  StoreObserver* observer = nullptr;
  // The master key (32 bytes, store/privacy.h; outreachd's --master-key-file). Set: a new
  // database is encrypted, an encrypted one is opened with it (FAILED_PRECONDITION if it is not
  // its key), and a plain one that holds events is refused (it cannot be encrypted in place).
  // Empty: a plain database; an encrypted one is refused, unless open_encrypted_without_key,
  // which opens it with every write refused (rebuilding and verifying need no key).
  std::string master_key;
  bool open_encrypted_without_key = false;
};

struct ReadOnlyOptions {
  // Empty: rocksdb::DB::OpenForReadOnly, for a directory no process has open for writing.
  // Otherwise: a RocksDB secondary instance (safe beside a running outreachd), which keeps its
  // own info log in this scratch directory; it sees the primary's writes up to the moment of
  // OpenReadOnly (and of each CatchUpWithPrimary).
  std::string secondary_path;
  // Check the log from the verified checkpoint to the head at open, as Open does (DATA_LOSS on
  // failure). Tools that run a full VerifyLog themselves may turn it off.
  bool verify_on_open = true;
  std::size_t block_cache_bytes = 8 << 20;
  rocksdb::Env* env = nullptr;
  const SchemaRegistry* schemas = nullptr;  // nullptr = SchemaRegistry::Production()
  // An encrypted database's master key (StoreOptions::master_key). Without it an encrypted
  // database still opens, and verifies (the hash chain covers the ciphertext), but every read
  // that would show personal fields (tasks, events, patients) is FAILED_PRECONDITION.
  std::string master_key;
};


struct ListQuery {
  std::vector<v1::TaskStatus> statuses;  // empty = OPEN and IN_PROGRESS
  v1::TaskKind kind = v1::TASK_KIND_UNSPECIFIED;  // unspecified = any
  std::string patient_id;                          // empty = any
  std::string assignee;                            // empty = any
  std::optional<absl::CivilDay> follow_up_on_or_before;
  // Tasks of these practices only (ListTasks.practice_id, or the practices a limited principal
  // may see); empty = every practice.
  std::vector<std::string> practice_ids;
  std::vector<v1::TaskCategory> categories;  // empty = any
  bool unassigned = false;                   // only tasks without an assignee (not with assignee)
  int page_size = 50;      // 1..500, checked by the caller
  std::string page_token;  // opaque; INVALID_ARGUMENT if malformed or from another query
};

struct ListPage {
  std::vector<v1::Task> tasks;
  std::string next_page_token;  // empty on the last page
};

struct VerifyReport {
  bool ok = true;
  uint64_t events_checked = 0;
  uint64_t first_bad_position = 0;  // 0 when ok
  std::string problem;              // empty when ok
  std::string head_hash;            // 32 bytes: hash of the last good event
  uint64_t head_position = 0;
};

struct VerifyOptions {
  // Check positions 1..to_position only (0 = through the head). A to_position beyond the head is
  // reported as not ok, first_bad_position = head + 1.
  uint64_t to_position = 0;
  // Empty, or the 32-byte hash an auditor kept for the event at to_position (at the head when
  // to_position is 0). A different stored hash is reported as not ok with first_bad_position =
  // that position; head_position / head_hash then describe the log as stored.
  std::string expected_head_hash;
  // Called every so many events checked (store/log_verifier.h), on the calling thread.
  std::function<void(uint64_t checked)> progress;
};

// One event of a task's history, with the task's status on either side of it: the auditor's
// "OPEN -> IN_PROGRESS (LEFT_MESSAGE, follow up 2025-03-20) -> CLOSED (SCHEDULED)".
struct HistoryEntry {
  v1::EventRecord event;  // the event itself: who, when, why (outcome, notes, close reason)
  v1::TaskStatus status_before = v1::TASK_STATUS_UNSPECIFIED;  // UNSPECIFIED before TaskCreated
  v1::TaskStatus status_after = v1::TASK_STATUS_UNSPECIFIED;
};

// Called on the writer thread after each durable batch, with the new head position. It must be
// cheap and must not block: wake a waiter, or post work elsewhere (a gRPC reactor's write),
// then read the events with ReadEvents from that other thread. It must not call Execute,
// AddHeadListener or RemoveHeadListener.
using HeadListener = absl::AnyInvocable<void(uint64_t head_position)>;
using HeadListenerId = uint64_t;

struct RebuildProgress {
  uint64_t events_folded = 0;
  uint64_t head_position = 0;  // the total to fold
};

class EventStore {
 public:
  using Done = absl::AnyInvocable<void(absl::StatusOr<CommandResult>) &&>;

  // Opens (creating if missing) the database in `dir`, verifies the log from the last verified
  // checkpoint to the head (DATA_LOSS naming the first bad position on failure, including an
  // event whose schema_version is newer than options.schemas supports), rebuilds the projections
  // if their format or schema version changed, and starts the writer thread.
  static absl::StatusOr<std::unique_ptr<EventStore>> Open(const std::string& dir,
                                                          StoreOptions options);
  // Opens `dir` without a writer: every read works, every write is FAILED_PRECONDITION
  // ("read-only"). FAILED_PRECONDITION if the projections need a rebuild (another projection
  // format or schema version): a read-only handle cannot fix them, and must not serve them.
  static absl::StatusOr<std::unique_ptr<EventStore>> OpenReadOnly(const std::string& dir,
                                                                  ReadOnlyOptions options);
  // Copies the latest backup in `backup_dir` (made by BackupTo) into `db_dir`, which must not
  // exist or be empty (FAILED_PRECONDITION otherwise: a restore never overwrites a database),
  // then opens the copy read-only and verifies its whole log and its projections (DATA_LOSS if
  // either does not hold). NOT_FOUND if `backup_dir` holds no backup.
  static absl::Status RestoreFrom(const std::string& backup_dir, const std::string& db_dir);

  EventStore(const EventStore&) = delete;
  EventStore& operator=(const EventStore&) = delete;
  // Finishes every queued command, stops the writer and closes the database.
  ~EventStore();

  // Queues a command for the writer. `fingerprint` identifies the request's content for
  // idempotency (used only when the command carries a request_id): a repeated request_id with the
  // same fingerprint returns the first result, with another fingerprint ALREADY_EXISTS.
  void Submit(domain::Command command, std::string fingerprint, Done done);
  // The same for a call that answers with the tasks of its result (patient data): `access` is
  // its access record, written in the same synced batch as the command's events once the
  // command succeeds (store/access_log.h WriteAccess); `done` then runs once both are durable,
  // or gets UNAVAILABLE when the record cannot be written.
  void Submit(domain::Command command, std::string fingerprint, WriteAccess access, Done done);
  // Queues several commands at once, so that the writer can decide and write them together
  // (each still fails alone).
  struct Submission {
    domain::Command command;
    std::string fingerprint;
    Done done;
    std::optional<WriteAccess> access = std::nullopt;
  };
  void SubmitGroup(std::vector<Submission> commands);
  // True when opened with OpenReadOnly: every write is FAILED_PRECONDITION.
  bool read_only() const;
  // The most commands the writer decides and writes in one batch.
  std::size_t max_commands_per_batch() const;
  // Submit and wait.
  absl::StatusOr<CommandResult> Execute(domain::Command command, std::string fingerprint);

  // The current state of a task. NOT_FOUND if it does not exist.
  absl::StatusOr<v1::Task> GetTask(absl::string_view task_id) const;
  // The task as it was right after its first `version` events (a fold of its stream).
  // INVALID_ARGUMENT if version < 1, NOT_FOUND if there is no such task, OUT_OF_RANGE (saying
  // the current version) if version is past the stream's head.
  absl::StatusOr<v1::Task> GetTaskAsOfVersion(absl::string_view task_id, int64_t version) const;
  // The task as it was after every one of its events recorded at or before `time` (recorded_at
  // never decreases along the log). NOT_FOUND if there is no such task or it did not exist yet.
  absl::StatusOr<v1::Task> GetTaskAsOfTime(absl::string_view task_id, absl::Time time) const;
  // Every event of the task in version order, with its status before and after each.
  // NOT_FOUND if there is no such task.
  absl::StatusOr<std::vector<HistoryEntry>> GetTaskHistory(absl::string_view task_id) const;
  // A worklist page, served from the index rows (never a scan of every task).
  absl::StatusOr<ListPage> ListTasks(const ListQuery& query) const;
  // The patient's contact preference and outreach summary in a practice (store/
  // patient_outreach.h); "today" is the store's clock in its time zone.
  absl::StatusOr<v1::PatientOutreach> GetPatientOutreach(absl::string_view practice_id,
                                                         absl::string_view patient_id) const;
  // ReportService.GetOutreachStats from the "stats" projection (store/outreach_stats.h), its
  // days in the store's time zone (query.time_zone is set from it).
  absl::StatusOr<std::vector<v1::OutreachStats>> GetOutreachStats(StatsQuery query) const;
  // Up to `limit` events (0 = no limit) with position >= from_position, in position order;
  // only task `task_id`'s events when it is not empty.
  absl::StatusOr<std::vector<v1::EventRecord>> ReadEvents(uint64_t from_position,
                                                          absl::string_view task_id,
                                                          uint64_t limit) const;
  // The position of the last appended event (0 when the log is empty).
  uint64_t HeadPosition() const;

  // Live follow. Blocks until HeadPosition() > position (true), or until `timeout` passes or
  // the store starts closing (false). Thread-safe; any number of waiters. A subscriber loops:
  // ReadEvents(next, ...) until caught up, then WaitForHeadAbove(last, short timeout), checking
  // its own cancellation between waits. The destructor wakes every waiter and waits for them to
  // return. On a read-only store the head moves only in CatchUpWithPrimary.
  bool WaitForHeadAbove(uint64_t position, absl::Duration timeout) const;
  // Registers `listener` (see HeadListener) until RemoveHeadListener; returns its id.
  HeadListenerId AddHeadListener(HeadListener listener);
  // After this returns, the listener is not running and will not be called again.
  void RemoveHeadListener(HeadListenerId id);

  // Re-checks the whole log: positions gap-free from 1, the hash chain, stream versions.
  VerifyReport VerifyLog() const;
  // The same checks through options.to_position, and that position's hash against
  // options.expected_head_hash. INVALID_ARGUMENT if expected_head_hash is not 32 bytes.
  absl::StatusOr<VerifyReport> VerifyLog(const VerifyOptions& options) const;
  // Folds the whole log in memory and compares every projection and index row with the stored
  // ones, in one snapshot. DATA_LOSS naming the first differing row (column family, hex key).
  absl::Status VerifyProjections() const;

  // Deletes every projection and index row and folds them again from the log alone.
  // Waits for queued writes first; writes are held off while it runs (reads meanwhile may see
  // partly rebuilt projections). If it fails, writes stay refused (UNAVAILABLE) until the store
  // is reopened, which rebuilds again.
  absl::Status RebuildProjections();
  // The same, calling `progress` on the calling thread every `every` events and once at the end.
  absl::Status RebuildProjections(absl::FunctionRef<void(const RebuildProgress&)> progress,
                                  uint64_t every = 10000);
  // Every projection and index row, as "column family \t hex(key) \t hex(value)" lines in key
  // order: byte-for-byte comparison of live vs rebuilt state.
  absl::StatusOr<std::string> DumpProjections() const;

  // The earliest expires_at among open automatic tasks, if any (from the expiry index).
  std::optional<absl::Time> NextExpiry() const;
  // The ids of up to `max` tasks due at `now` in the expiry index, after `*start` (empty = from
  // the first), which moves past the last one returned. What to do with them is the expiry
  // policy's (store/expiry_scheduler.h ExpireDue).
  absl::StatusOr<std::vector<std::string>> DueTasks(absl::Time now, std::string* start,
                                                    std::size_t max) const;

  // Monitoring (store/store_observer.h), read when asked; thread-safe and cheap, except the two
  // counts below, which read index rows.
  StoreStats Stats() const;
  RocksDbStats RocksDb() const;
  // Tasks in the expiry index due at `now` (still open past their expires_at), counting at most
  // `cap` rows.
  absl::StatusOr<uint64_t> CountDueTasks(absl::Time now, uint64_t cap) const;
  // Open tasks (OPEN or IN_PROGRESS) of each kind, from the worklist's kind scopes: one index row
  // read per open task, so a caller keeps the result a while.
  struct OpenTaskCount {
    v1::TaskKind kind;
    uint64_t open = 0;
  };
  absl::StatusOr<std::vector<OpenTaskCount>> CountOpenTasksByKind() const;

  // Why writes are refused, or OK: the latched failure (UNAVAILABLE, in words: "disk full" while
  // it may clear by itself, otherwise a failed write or sync), or "disk almost full" below the
  // reserve. FAILED_PRECONDITION on a read-only store. The raw cause is ServerDetail(status)
  // (store/write_refusal.h), for the server's log.
  absl::Status WriteHealth() const;

  // Runs now, on the writer thread, what the writer runs every resume_poll while writes are
  // refused for lack of space (see the contract above), and returns the outcome: OK when writes
  // are accepted again (or were never refused); UNAVAILABLE while there is no room or RocksDB
  // cannot resume yet; the latched refusal when it is not a lack of space (it stays latched).
  // For tests and tools: the writer does this by itself.
  absl::Status ResumeWrites();

  // A consistent online backup into `backup_dir` (a rocksdb::BackupEngine directory, created if
  // missing; each call adds a backup, sharing unchanged files): the WAL is flushed and synced,
  // then the live files and WAL are copied and checksummed. Writes continue meanwhile.
  // FAILED_PRECONDITION on a read-only store.
  absl::Status BackupTo(const std::string& backup_dir);
  // BackupTo, then all but the newest `keep_last` backups deleted (0: none), and what was made
  // (store/backup.h). The live backup of AdminService.CreateBackup.
  absl::StatusOr<BackupSummary> BackupLive(const std::string& backup_dir, uint32_t keep_last);

  // Read-only secondary stores: replays what the primary has written since, and moves the head.
  // FAILED_PRECONDITION on any other store.
  absl::Status CatchUpWithPrimary();

  // The read-access audit log kept in this database (store/access_log.h); owned by the store,
  // valid while it lives. Read-only on a read-only store; nullptr on a read-only store whose
  // database was written before the access log existed.
  AccessLog* access_log() const;
  // The durable consumers' checkpoints (store/consumer_checkpoints.h); owned by the store, valid
  // while it lives. Acks are refused on a read-only store; nullptr on a read-only store whose
  // database was written before consumers existed.
  ConsumerCheckpoints* consumers() const;

  // True when the database keeps personal data encrypted (store/privacy.h).
  bool encrypted() const;
  // Flushes every memtable and compacts the "keys" family, so that destroyed data keys leave the
  // RocksDB files (and the write-ahead log). The store does it by itself after each batch that
  // erased a patient, in the background, and at every read-write Open; this runs it now.
  absl::Status PurgeDestroyedKeys();
  // How many purges have finished since Open (tests wait on it).
  uint64_t PurgesDone() const;
  // An encrypted store's pseudonym of `patient_id` (store/privacy.h); FAILED_PRECONDITION when
  // the store is plain or opened without its key.
  absl::StatusOr<std::string> Pseudonym(absl::string_view patient_id) const;
  // After a restore (README "Privacy"): erases again each patient of `entries` whose erasure
  // came after the restored head (entry.position > HeadPosition()), as the store's own actor
  // "system:erasure-list". Returns the erasures appended (a patient the restored log never saw,
  // or already erased, appends nothing), then purges the destroyed keys.
  absl::StatusOr<std::vector<ErasureEntry>> ReapplyErasures(
      const std::vector<ErasureEntry>& entries);

  class Impl;

 private:
  explicit EventStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace outreach::store
