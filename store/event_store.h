// EventStore: the outreach event log, its projections and indexes, in one RocksDB database.
//
// Ownership and threads:
//  - Open() returns the only handle to a database directory (RocksDB's LOCK file enforces it).
//  - One writer thread owns the append path (group commit): Submit() queues a command; the
//    writer drains every queued command, decides each against the current state (a command
//    that fails fails alone), and writes all of them in ONE WriteBatch with sync=true. `done`
//    runs on the writer thread after the sync, so callers never block on an fsync. It must not
//    wait on the store (Execute, ExpireDue, RebuildProjections): that would deadlock the writer.
//    Submit from `done` is fine.
//  - Reads (GetTask, ListTasks, ReadEvents, VerifyLog) are thread-safe and run concurrently
//    with writes; they see every acknowledged write.
//  - After a failed write or sync the store refuses further writes (UNAVAILABLE) and keeps
//    serving reads: nothing is acknowledged that was not synced.
//
// The on-disk format is documented in store/keys.h and store/event_codec.h.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "domain/task_rules.h"
#include "outreach/v1/events.pb.h"
#include "outreach/v1/task.pb.h"
#include "store/clock.h"

namespace rocksdb {
class Env;
}  // namespace rocksdb

namespace outreach::store {

struct StoreOptions {
  absl::TimeZone time_zone = absl::UTCTimeZone();  // "today" for follow-up dates
  Clock* clock = nullptr;                          // nullptr = Clock::Real()
  bool sync_writes = true;          // fsync the WAL before acknowledging (tests may turn off)
  std::size_t block_cache_bytes = 64 << 20;
  std::size_t max_commands_per_batch = 1024;
  rocksdb::Env* env = nullptr;      // nullptr = the default; tests inject I/O faults
};

struct CommandResult {
  v1::Task task;                          // the task right after the command
  std::vector<v1::EventRecord> events;    // what was appended (empty when replayed or a no-op)
  bool replayed = false;                  // a retried request_id: the first result, nothing appended
};

struct ListQuery {
  std::vector<v1::TaskStatus> statuses;  // empty = OPEN and IN_PROGRESS
  v1::TaskKind kind = v1::TASK_KIND_UNSPECIFIED;  // unspecified = any
  std::string patient_id;                          // empty = any
  std::string assignee;                            // empty = any
  std::optional<absl::CivilDay> follow_up_on_or_before;
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

class EventStore {
 public:
  using Done = absl::AnyInvocable<void(absl::StatusOr<CommandResult>) &&>;

  // Opens (creating if missing) the database in `dir`, verifies the log from the last verified
  // checkpoint to the head (DATA_LOSS naming the first bad position on failure), rebuilds the
  // projections if their format version changed, and starts the writer thread.
  static absl::StatusOr<std::unique_ptr<EventStore>> Open(const std::string& dir,
                                                          StoreOptions options);

  EventStore(const EventStore&) = delete;
  EventStore& operator=(const EventStore&) = delete;
  // Finishes every queued command, stops the writer and closes the database.
  ~EventStore();

  // Queues a command for the writer. `fingerprint` identifies the request's content for
  // idempotency (used only when the command carries a request_id): a repeated request_id with the
  // same fingerprint returns the first result, with another fingerprint ALREADY_EXISTS.
  void Submit(domain::Command command, std::string fingerprint, Done done);
  // Submit and wait.
  absl::StatusOr<CommandResult> Execute(domain::Command command, std::string fingerprint);

  // The current state of a task. NOT_FOUND if it does not exist.
  absl::StatusOr<v1::Task> GetTask(absl::string_view task_id) const;
  // A worklist page, served from the index rows (never a scan of every task).
  absl::StatusOr<ListPage> ListTasks(const ListQuery& query) const;
  // Up to `limit` events (0 = no limit) with position >= from_position, in position order;
  // only task `task_id`'s events when it is not empty.
  absl::StatusOr<std::vector<v1::EventRecord>> ReadEvents(uint64_t from_position,
                                                          absl::string_view task_id,
                                                          uint64_t limit) const;
  // The position of the last appended event (0 when the log is empty).
  uint64_t HeadPosition() const;

  // Re-checks the whole log: positions gap-free from 1, the hash chain, stream versions.
  VerifyReport VerifyLog() const;

  // Deletes every projection and index row and folds them again from the log alone.
  // Waits for queued writes first; writes are held off while it runs (reads meanwhile may see
  // partly rebuilt projections). If it fails, writes stay refused (UNAVAILABLE) until the store
  // is reopened, which rebuilds again.
  absl::Status RebuildProjections();
  // Every projection and index row, as "column family \t hex(key) \t hex(value)" lines in key
  // order: byte-for-byte comparison of live vs rebuilt state.
  absl::StatusOr<std::string> DumpProjections() const;

  // The earliest expires_at among open automatic tasks, if any (from the expiry index).
  std::optional<absl::Time> NextExpiry() const;
  // Closes (reason EXPIRED, actor system:expiry, occurred_at = expires_at) every open automatic
  // task whose expires_at <= now, as read from the expiry index. Returns how many it closed.
  absl::StatusOr<int> ExpireDue(absl::Time now);

  // Why writes are refused, or OK.
  absl::Status WriteHealth() const;

  class Impl;

 private:
  explicit EventStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace outreach::store
