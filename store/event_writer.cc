#include "store/event_writer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "logging/log.h"
#include "store/keys.h"
#include "store/log_reader.h"
#include "store/projection_rows.h"
#include "store/rocks.h"
#include "store/write_refusal.h"

namespace outreach::store {

EventWriter::EventWriter(Database& database, const SchemaRegistry* schemas, HeadPublisher& head,
                         DiskSpace& space, AccessLog* access_log, WriterOptions options)
    : database_(database),
      schemas_(schemas),
      head_(head),
      space_(space),
      access_log_(access_log),
      options_(std::move(options)),
      appender_(schemas, options_.checkpoint_every),
      processor_(database, schemas, appender_, options_.processor) {}

EventWriter::~EventWriter() { Stop(); }

void EventWriter::Start(const Recovered& recovered) {
  appender_.Reset(recovered.head, recovered.checkpoint_position,
                  recovered.checkpoint_max_schema);
  GroupCommitOptions options;
  options.max_batch = options_.max_commands_per_batch;
  // Every resume_poll, also while idle: resume after a lack of space once there is room.
  options.tick = [this] { ResumeIfNeeded(); };
  options.tick_every = options_.resume_poll;
  options.refusal = absl::UnavailableError("store is shutting down");
  options.before_batch = options_.before_batch;
  group_ = std::make_unique<GroupCommit<Command, Result>>(
      [this](std::vector<Command>& batch) { return ProcessBatch(batch); }, std::move(options));
}

void EventWriter::Stop() {
  if (group_ != nullptr) group_->Stop();
}

void EventWriter::Submit(std::vector<Queued> commands) {
  std::vector<std::pair<Command, GroupCommit<Command, Result>::Done>> items;
  items.reserve(commands.size());
  for (Queued& q : commands) {
    // The writer's states become whole Tasks here, on the completion thread, not the writer's.
    items.emplace_back(Command{std::move(q.command), std::move(q.fingerprint), std::move(q.access)},
                       [done = std::move(q.done)](Result result) mutable {
                         if (result.ok()) {
                           if (absl::Status s = result->Materialize(); !s.ok()) result = s;
                         }
                         std::move(done)(std::move(result));
                       });
  }
  group_->Submit(std::move(items));
}

absl::Status EventWriter::WriteHealth() const {
  {
    absl::MutexLock lock(&mu_);
    if (!write_error_.ok()) return write_error_;
  }
  return space_.CheckRoom();
}

bool EventWriter::MayWriteOnClose() const {
  {
    absl::MutexLock lock(&mu_);
    if (!write_error_.ok()) return false;
  }
  if (access_log_ != nullptr && !access_log_->WriteHealth().ok()) return false;
  return space_.CheckRoomNow().ok();
}

absl::Status EventWriter::ResumeWrites() {
  absl::Status result;
  // A copy of its own, not a share of TryResume's: the caller reads it on its thread while the
  // writer drops the original (TSan cannot see the ordering inside Debian's Abseil).
  absl::Status ran = group_->RunOnWriter([&] { result = UnsharedCopy(TryResume()); });
  if (!ran.ok()) return ran;
  return result;
}

absl::Status EventWriter::Rebuild(absl::FunctionRef<void(uint64_t, uint64_t)> progress,
                                  uint64_t every) {
  // Writes queued before the rebuild land first; later ones wait for it.
  group_->Pause();
  const LogReader log(database_.db(), &database_.handles(), schemas_);
  absl::Status s = RebuildProjectionsFromLog(
      database_, log, appender_.head().position,
      [&](uint64_t folded, uint64_t total) {
        if (options_.observer != nullptr) options_.observer->RebuildProgress(folded, total);
        progress(folded, total);
      },
      every);
  processor_.ClearCache();
  {
    absl::MutexLock lock(&mu_);
    // A rebuild that stopped part-way has left projections the writer must not decide on: a
    // cleared task row would let a second TaskCreated into that task's stream. Refuse writes
    // until the next Open, which redoes the rebuild (its format row is already deleted).
    if (!s.ok() && write_error_.ok()) {
      write_error_ =
          absl::Status(s.code(), absl::StrCat("rebuilding projections: ", s.message()));
    }
  }
  group_->Unpause();
  return s;
}

std::vector<EventWriter::Result> EventWriter::ProcessBatch(std::vector<Command>& batch) {
  std::vector<Result> results;
  results.reserve(batch.size());
  if (absl::Status refused = Refusal(); !refused.ok()) {
    // Each its own copy: the completion thread drops them.
    for (std::size_t i = 0; i < batch.size(); ++i) results.emplace_back(UnsharedCopy(refused));
    if (options_.observer != nullptr) options_.observer->CommandsRefused(batch.size());
  } else {
    DecideAndWrite(batch, results);
  }
  return results;
}

// Decides every command of `batch` in order and writes what they appended, and the access
// records of those that answer with tasks, in one synced WriteBatch; fills `results`, one per
// command.
void EventWriter::DecideAndWrite(std::vector<Command>& batch, std::vector<Result>& results) {
  processor_.Begin(rows_);
  for (Command& c : batch) results.push_back(processor_.Process(c.command, c.fingerprint));
  const std::vector<AccessEntry*> records = RecordsOf(batch, results);
  const bool appended = processor_.appended();
  if (!appended && records.empty()) {
    processor_.Abandoned();
    return;
  }
  batch_.Clear();
  LogHead cursor;
  Seal seal;
  if (appended) {
    cursor = processor_.cursor();
    seal = appender_.SealBatch(cursor, rows_);
    rows_.AppendTo(database_.handles(), &batch_);
  }
  const absl::Time write_started = absl::Now();
  absl::Status records_refused;
  absl::Status written = WriteBatch(records, &records_refused);
  unchecked_bytes_ += batch_.GetDataSize();
  if (!written.ok()) {
    logging::Error("writing a batch to the event log failed: the store refuses writes",
                   {{"commands", batch.size()}, {"cause", written.ToString()}});
    // Like leveldb's RecordBackgroundError: never guess what reached the disk. A lack of
    // space may clear (TryResume); anything else stays.
    processor_.Abandoned();
    absl::Status refused = WritesRefusedAfter(Refuser::kStore, written);
    {
      absl::MutexLock lock(&mu_);
      write_error_ = refused;
    }
    for (auto& result : results) result = UnsharedCopy(refused);
    return;
  }
  if (options_.observer != nullptr) {
    options_.observer->BatchCommitted(batch.size(), absl::Now() - write_started);
  }
  if (!records_refused.ok()) {
    // Their events are durable, their records are not: such a call is not answered with tasks.
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (!batch[i].access.has_value() || !results[i].ok()) continue;
      results[i] = absl::UnavailableError(
          absl::StrCat("cannot record this read in the access log, so it is not served: ",
                       records_refused.message()));
    }
  }
  if (!appended) {
    processor_.Abandoned();  // replays and no-ops only: nothing of the processor's to keep
    return;
  }
  processor_.Committed();
  appender_.Committed(cursor, seal);
  head_.Publish(cursor.position);
  if (seal.checkpoint) {
    checkpoints_.fetch_add(1, std::memory_order_relaxed);
    logging::Info("verified checkpoint recorded", {{"position", cursor.position}});
  }
}

// The access records of the batch's commands that succeeded and carry one, each with the tasks
// of its result; a result its caller may not be served (WriteAccess::admit) becomes that error.
std::vector<AccessEntry*> EventWriter::RecordsOf(std::vector<Command>& batch,
                                                 std::vector<Result>& results) {
  std::vector<AccessEntry*> records;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (!batch[i].access.has_value() || !results[i].ok()) continue;
    WriteAccess& access = *batch[i].access;
    const CommandResult& result = *results[i];
    std::vector<const v1::Task*> tasks;
    for (const v1::Task& task : result.tasks) tasks.push_back(&task);
    for (const auto& state : result.states) {
      if (state != nullptr) tasks.push_back(&state->task);
    }
    absl::Status admitted;
    for (const v1::Task* task : tasks) {
      if (!access.admit || !admitted.ok()) break;
      admitted = access.admit(*task);
    }
    if (!admitted.ok()) {
      results[i] = admitted;
      continue;
    }
    access.entry.task_ids.clear();
    for (const v1::Task* task : tasks) access.entry.task_ids.push_back(task->task_id());
    access.entry.count = access.entry.task_ids.size();
    records.push_back(&access.entry);
  }
  return records;
}

// Writes batch_ synced, with `records` when there are any (AccessLog::WriteWith).
absl::Status EventWriter::WriteBatch(const std::vector<AccessEntry*>& records,
                                     absl::Status* refused) {
  auto write = [this] { return database_.WriteSynced(&batch_, "appending to the event log"); };
  if (records.empty()) return write();
  if (access_log_ == nullptr) {
    *refused = absl::FailedPreconditionError("this store has no access log");
    return write();
  }
  return access_log_->WriteWith(records, &batch_, write, refused);
}

void EventWriter::ResumeIfNeeded() {
  if (NeedsResume()) TryResume().IgnoreError();  // still refused: the next tick tries again
}

// Why the next batch is refused without being decided, or OK: a latched failure, or the
// free-space reserve (not latched).
absl::Status EventWriter::Refusal() {
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

// True when the store or the access log refuses writes for lack of space (a refusal that may
// clear); a latched failure of another kind never resumes.
bool EventWriter::NeedsResume() const {
  {
    absl::MutexLock lock(&mu_);
    if (!write_error_.ok()) return IsNoSpace(write_error_);
  }
  return access_log_ != nullptr && IsNoSpace(access_log_->WriteHealth());
}

// Once the disk has room (at least the reserve): DB::Resume(), then the stored head must be
// the one this writer wrote last, and the access log's likewise. Returns why writes stay
// refused, or OK.
absl::Status EventWriter::TryResume() {
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
// DB::Resume() is Busy meanwhile: an empty write tells whether it has, so that the writer calls
// Resume() only when RocksDB is stopped and not already recovering.
absl::Status EventWriter::ResumeDatabase() {
  rocksdb::WriteBatch empty;
  if (database_.db()->Write(rocksdb::WriteOptions(), &empty).ok()) return absl::OkStatus();
  return FromRocks(database_.db()->Resume(), "resuming the database");
}

// The head row and the event at the head are the ones this writer wrote last: a refused batch
// left nothing behind. DATA_LOSS otherwise.
absl::Status EventWriter::CheckHeadUnchanged() const {
  const LogReader log(database_.db(), &database_.handles(), schemas_);
  const LogHead& expected = appender_.head();
  uint64_t position = 0;
  Hash hash{};
  if (absl::Status s = log.ReadHeadRow(rocksdb::ReadOptions(), &position, &hash); !s.ok()) {
    return s;
  }
  if (position != expected.position || hash != expected.hash) {
    return absl::DataLossError(absl::StrCat("event log: the head row moved to position ",
                                            position, " while writes were refused at ",
                                            expected.position));
  }
  if (position == 0) return absl::OkStatus();
  absl::StatusOr<DecodedEvent> event = log.ReadEvent(rocksdb::ReadOptions(), position);
  if (!event.ok()) return event.status();
  if (event->hash != expected.hash) {
    return absl::DataLossError(absl::StrCat("event log: position ", position,
                                            ": hash differs from the one written"));
  }
  return absl::OkStatus();
}

}  // namespace outreach::store
