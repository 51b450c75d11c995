// EventWriter: the append path of an EventStore. Its GroupCommit (store/group_commit.h) hands
// the queued commands to the writer thread in batches; the writer decides them (store/
// command_processor.h), writes each batch's rows in ONE synced WriteBatch and publishes the new
// head (store/head_publisher.h); the completion thread runs the callbacks, in submission order,
// while the writer goes on with the next batch.
//
// A write call that answers with patient data carries its access record (WriteAccess, store/
// access_log.h): the writer adds it, for a command that succeeded, to the batch of the events
// (AccessLog::WriteWith), so that one synced write makes both durable; a batch of replays that
// appends no event still writes their records.
//
// Failures: a failed write latches a refusal (UNAVAILABLE, store/write_refusal.h) for every later
// batch. A lack of space may clear: every resume_poll the writer checks the disk and, once there
// is room, resumes RocksDB, checks that the stored head is the one it wrote last, and accepts
// writes again (the access log resumes with it). Below the free-space reserve (store/
// disk_space.h) batches are refused without latching anything.
//
// Thread-safe, except that the owner calls Start once and Stop once.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "domain/task_rules.h"
#include "rocksdb/write_batch.h"
#include "store/access_log.h"
#include "store/appender.h"
#include "store/command_processor.h"
#include "store/database.h"
#include "store/disk_space.h"
#include "store/group_commit.h"
#include "store/head_publisher.h"
#include "store/recovery.h"
#include "store/sorted_rows.h"
#include "store/store_observer.h"

namespace outreach::store {

struct WriterOptions {
  ProcessorOptions processor;
  std::size_t max_commands_per_batch = 1024;
  uint64_t checkpoint_every = 65536;
  absl::Duration resume_poll = absl::Seconds(1);
  std::function<void(std::size_t commands)> before_batch;  // test hook (StoreOptions)
  StoreObserver* observer = nullptr;  // may be nullptr; must outlive the writer
};

class EventWriter {
 public:
  using Done = absl::AnyInvocable<void(absl::StatusOr<CommandResult>) &&>;
  struct Queued {
    domain::Command command;
    std::string fingerprint;
    Done done;
    std::optional<WriteAccess> access;  // the call's access record, if it answers with tasks
  };

  // `access_log` may be nullptr; everything passed must outlive the writer.
  EventWriter(Database& database, const SchemaRegistry* schemas, HeadPublisher& head,
              DiskSpace& space, AccessLog* access_log, WriterOptions options);
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;
  ~EventWriter();  // Stop()

  // Starts the threads at the head recovery found.
  void Start(const Recovered& recovered);
  // Writes everything queued, runs every callback, and stops both threads. Idempotent.
  void Stop();

  // Queues the commands (one group); after Stop began each `done` gets UNAVAILABLE at once.
  void Submit(std::vector<Queued> commands);

  // Commands queued and not yet taken by the writer; checkpoints recorded since Start.
  std::size_t QueueDepth() const { return group_ != nullptr ? group_->QueueDepth() : 0; }
  uint64_t Checkpoints() const { return checkpoints_.load(std::memory_order_relaxed); }

  // Why writes are refused (a latched failure, or below the reserve), or OK.
  absl::Status WriteHealth() const;
  // Whether a close may write once more (its memtable flush).
  bool MayWriteOnClose() const;
  // Asks the writer to resume after a lack of space now (see EventStore::ResumeWrites).
  absl::Status ResumeWrites();
  // Holds the writer off (after the writes queued before it), rebuilds every projection from
  // the log, and lets it go. A rebuild that failed latches its error for every later write.
  absl::Status Rebuild(absl::FunctionRef<void(uint64_t, uint64_t)> progress, uint64_t every);

 private:
  struct Command {
    domain::Command command;
    std::string fingerprint;
    std::optional<WriteAccess> access;
  };
  using Result = absl::StatusOr<CommandResult>;

  // The writer thread's work (GroupCommit's process and tick).
  std::vector<Result> ProcessBatch(std::vector<Command>& batch);
  void DecideAndWrite(std::vector<Command>& batch, std::vector<Result>& results);
  std::vector<AccessEntry*> RecordsOf(std::vector<Command>& batch, std::vector<Result>& results);
  absl::Status WriteBatch(const std::vector<AccessEntry*>& records, absl::Status* refused);
  absl::Status Refusal();
  void ResumeIfNeeded();
  bool NeedsResume() const;
  absl::Status TryResume();
  absl::Status ResumeDatabase();
  absl::Status CheckHeadUnchanged() const;

  Database& database_;
  const SchemaRegistry* const schemas_;
  HeadPublisher& head_;
  DiskSpace& space_;
  AccessLog* const access_log_;
  const WriterOptions options_;

  mutable absl::Mutex mu_;
  absl::Status write_error_ ABSL_GUARDED_BY(mu_);

  // Owned by the writer thread (or by Rebuild while the writer is paused).
  Appender appender_;
  CommandProcessor processor_;
  uint64_t unchecked_bytes_ = 0;  // written since the last free-space check
  SortedRows rows_;                // a batch's rows, in key order at the write
  rocksdb::WriteBatch batch_;      // one for the writer's life: its buffer keeps its size

  std::atomic<uint64_t> checkpoints_{0};

  std::unique_ptr<GroupCommit<Command, Result>> group_;  // from Start
};

}  // namespace outreach::store
