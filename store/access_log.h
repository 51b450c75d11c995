// AccessLog: the read-access audit log (HIPAA 164.312(b) audit controls). Every call that returns
// patient data appends one record: who (principal, on-behalf-of), which RPC, which tasks (or the
// filter and the count), when, and from where. The records live in their own column family,
// hash-chained like the event log, and never in a task stream.
//
// Ownership and threads:
//  - The EventStore owns the AccessLog and the database under it (EventStore::access_log()); the
//    AccessLog never outlives the store's DB handle.
//  - One writer thread appends (group commit, store/group_commit.h): Append() queues a record;
//    the writer takes every queued record (up to max_records_per_batch) and writes them in ONE
//    WriteBatch with sync=true (AccessLogOptions::sync). Each `done` then runs on the log's
//    completion thread, in append order, while the writer goes on to the next batch. `done`
//    must be cheap and must not wait on the log (AppendAndWait from a `done` never returns).
//    Durability choice: an access record is durable before its `done` runs, so a server that
//    sends patient data only from `done` never discloses anything that a crash could leave
//    unaudited; concurrent reads share one fsync, so the cost per read stays small.
//  - A write call that answers with patient data (LogContact and the like) has its record
//    written by the event writer instead, in the WriteBatch that holds the call's events
//    (WriteWith, store/event_writer.h): one synced write makes both durable, or neither, and a
//    call that fails records nothing. The writers share the chain under one lock (write_mu_).
//  - After a failed write the log refuses further appends (UNAVAILABLE), like the event store:
//    a server that cannot audit must not serve patient data. A failure for lack of space may
//    clear: once the database has resumed (EventStore's writer calls DB::Resume), the store
//    calls ResumeAfterNoSpace, which checks that the stored head is the one this log wrote last
//    and accepts appends again. Any other failure stays latched.
//  - Read, Verify and Head are thread-safe and run concurrently with appends and retention.
//  - Retention: DeleteOlderThan(cutoff) removes every record older than `cutoff` with a range
//    delete, and in the same batch moves the anchor (the first kept sequence and the hash its
//    record chains from), so that Verify still checks the chain of what is kept. With
//    AccessLogOptions::retention > 0 the writer thread runs it at open and then every
//    retention_check_every (by the log's clock), between batches.
//
// On-disk format, column family "access_log" (format version 1):
//
//   "a"                          -> first_sequence: fixed64_be | prev_hash: byte[32]
//                                   (the anchor: the first kept record and the hash it chains
//                                   from; absent = sequence 1 and 32 zero bytes)
//   "r" | sequence: fixed64_be   -> format_version: u8 (= 1) | prev_hash: byte[32] |
//                                   hash: byte[32] | body
//   "t" | time | sequence        -> empty (the time index; time := fixed64_be(unix micros XOR
//                                   2^63), so that signed order is bytewise order)
//   body := serialized outreach.storage.v1.AccessRecord, schema_version = 1
//   hash := SHA-256(prev_hash || fixed64_be(sequence) || body)   (store/event_codec.h ChainHash)
//
// Sequences are gap-free from the anchor; a record's time never decreases along the log (the
// writer takes max(clock, last time)). A reader that finds another format_version, or a
// schema_version above 1, reports DATA_LOSS naming the sequence: it never skips a record.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "outreach/v1/storage.pb.h"
#include "outreach/v1/task.pb.h"
#include "store/clock.h"
#include "store/event_codec.h"
#include "store/group_commit.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class WriteBatch;
}  // namespace rocksdb

namespace outreach::store {

inline constexpr uint8_t kAccessFormatVersion = 1;
inline constexpr uint32_t kAccessSchemaVersion = 1;

struct AccessLogOptions {
  bool sync = true;  // fsync before `done` runs (tests may turn it off)
  // Records older than this are deleted; zero keeps everything.
  absl::Duration retention = absl::ZeroDuration();
  absl::Duration retention_check_every = absl::Hours(1);
  std::size_t max_records_per_batch = 1024;
};

// What one record may hold. Append truncates a longer field (or drops task ids past the limit)
// and marks the record `truncated`, so that no caller can make a record large: every record is
// at most a few tens of KiB and can always be read back (ReadAccessLog sends each one in a
// message far below gRPC's send limit). The limits sit well above what a valid call produces:
// ids are at most 64 characters, a ListTasks page returns at most 500 tasks.
inline constexpr std::size_t kMaxAccessIdBytes = 64;        // principal, on_behalf_of, task ids
inline constexpr std::size_t kMaxAccessRpcBytes = 128;
inline constexpr std::size_t kMaxAccessTaskIds = 512;
inline constexpr std::size_t kMaxAccessFilterBytes = 1024;
inline constexpr std::size_t kMaxAccessPeerBytes = 128;

// Cuts `text` to at most `limit` bytes, never inside a UTF-8 sequence (records are proto3
// strings, which must stay valid UTF-8); true if it cut.
bool TruncateUtf8(std::string* text, std::size_t limit);

// Applies the limits above to `record` in place; true if it cut anything (the caller then sets
// `truncated`). Used by Append, and by readers on records written before the limits existed.
bool CapAccessRecord(storage::v1::AccessRecord* record);

// What the caller knows about one read; the log adds the sequence and the time.
struct AccessEntry {
  std::string principal;
  std::string on_behalf_of;
  std::string rpc;
  std::vector<std::string> task_ids;
  std::string filter;
  uint64_t count = 0;
  std::string peer;
};

// A write call's record (EventStore::Submit): `entry` says who, which RPC and from where; the
// event writer adds the task ids and the count from the call's result and writes the record in
// the batch of the call's events. `admit` (may be empty) says whether each task of the result may
// be served to this caller (a replayed result is not decided again): an error is the call's
// answer, and nothing is recorded. It runs on the writer thread: cheap, and touching nothing
// the caller changes meanwhile.
struct WriteAccess {
  AccessEntry entry;
  absl::AnyInvocable<absl::Status(const v1::Task& task) const> admit;
};

struct AccessQuery {
  absl::Time from = absl::InfinitePast();  // inclusive
  absl::Time to = absl::InfiniteFuture();  // exclusive
  std::string principal;                   // empty = every principal
  uint64_t limit = 0;                      // 0 = no limit
};

struct StoredAccessRecord {
  storage::v1::AccessRecord record;
  Hash hash{};
};

struct AccessVerifyReport {
  bool ok = true;
  uint64_t records_checked = 0;
  uint64_t first_sequence = 1;     // the anchor: the first kept record
  uint64_t first_bad_sequence = 0; // 0 when ok
  std::string problem;             // empty when ok
  uint64_t head_sequence = 0;      // the last good record (first_sequence - 1 when none is kept)
  Hash head_hash{};
};

class AccessLog {
 public:
  using Done = absl::AnyInvocable<void(absl::StatusOr<uint64_t> sequence) &&>;

  // Reads the anchor and the head from `family` of `db` (both must outlive the log) and, unless
  // `read_only`, starts the writer. `clock` nullptr = Clock::Real(). DATA_LOSS on a malformed
  // anchor or head record.
  static absl::StatusOr<std::unique_ptr<AccessLog>> Open(rocksdb::DB* db,
                                                         rocksdb::ColumnFamilyHandle* family,
                                                         Clock* clock, AccessLogOptions options,
                                                         bool read_only = false);

  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;
  // Writes every queued record and runs every `done`, then stops the writer.
  ~AccessLog();

  // Queues `entry`; `done` gets its sequence once it is durable, or why it is not
  // (UNAVAILABLE after a failed write, FAILED_PRECONDITION on a read-only log or once the log is
  // closing; then `done` runs at once, on the caller's thread).
  void Append(AccessEntry entry, Done done);
  // Append and wait (tests and tools; never from a gRPC thread).
  absl::StatusOr<uint64_t> AppendAndWait(AccessEntry entry);

  // For the event writer: with the chain held, adds the records of `entries` (in order) to
  // `batch`, runs `write` (which writes `batch`, synced) and moves the head if it succeeded; a
  // failed write latches the log as its own would. When the log refuses appends, `write` runs
  // with no record added and `*refused` says why (the calls that carried the entries then fail);
  // otherwise `*refused` is OK. Returns what `write` returned.
  absl::Status WriteWith(const std::vector<AccessEntry*>& entries, rocksdb::WriteBatch* batch,
                         absl::FunctionRef<absl::Status()> write, absl::Status* refused);

  // The records matching `query`, in sequence order. DATA_LOSS on an unreadable record.
  absl::StatusOr<std::vector<StoredAccessRecord>> Read(const AccessQuery& query) const;

  // Deletes every record whose time is before `cutoff` and moves the anchor past them, in one
  // synced batch. Returns how many records it deleted. FAILED_PRECONDITION on a read-only log.
  absl::StatusOr<uint64_t> DeleteOlderThan(absl::Time cutoff);

  // Checks the kept records: gap-free sequences from the anchor, the hash chain from the
  // anchor's hash, the envelope and the body.
  AccessVerifyReport Verify() const;

  // Why appends are refused (UNAVAILABLE, in words; store/write_refusal.h), or OK.
  absl::Status WriteHealth() const;
  // After the database has resumed from a lack of space: clears a latched lack-of-space refusal
  // once the stored head is the one this log wrote last (OK). Returns the refusal that stays: any
  // other latched failure, or a head that moved (then latched for good).
  absl::Status ResumeAfterNoSpace();

  // The last appended sequence (anchor - 1 when nothing is kept) and its hash.
  uint64_t HeadSequence() const;
  Hash HeadHash() const;

 private:
  using Writer = GroupCommit<AccessEntry, absl::StatusOr<uint64_t>>;

  AccessLog(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family, Clock* clock,
            AccessLogOptions options, bool read_only);
  absl::Status Load();
  void StartWriter();
  // The writer's batch: writes `entries` as one synced WriteBatch; one result per entry.
  std::vector<absl::StatusOr<uint64_t>> WriteBatchOf(std::vector<AccessEntry>& entries);
  absl::Status WriteLocked(const std::vector<AccessEntry*>& entries, rocksdb::WriteBatch* batch,
                           absl::FunctionRef<absl::Status()> write)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // The writer's tick: deletes what retention no longer keeps.
  void RetainOnSchedule();
  absl::StatusOr<uint64_t> DeleteOlderThanLocked(absl::Time cutoff)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);

  rocksdb::DB* const db_;
  rocksdb::ColumnFamilyHandle* const family_;
  Clock* const clock_;
  const AccessLogOptions options_;
  const bool read_only_;

  // Held while a batch or a retention delete is written: the head and anchor change only here.
  mutable absl::Mutex write_mu_;
  uint64_t head_sequence_ ABSL_GUARDED_BY(write_mu_) = 0;
  Hash head_hash_ ABSL_GUARDED_BY(write_mu_){};
  int64_t last_micros_ ABSL_GUARDED_BY(write_mu_) = 0;
  absl::Status write_error_ ABSL_GUARDED_BY(write_mu_);

  // The queue, the writer and the completion thread; null on a read-only log. Set once in
  // Open, before the log is shared; stopped first in the destructor (its threads use the above).
  std::unique_ptr<Writer> writer_;
};

}  // namespace outreach::store
