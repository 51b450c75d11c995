#include "store/event_writer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "store/keys.h"
#include "store/log_reader.h"
#include "store/projection_rows.h"
#include "store/rocks.h"
#include "store/write_refusal.h"

namespace outreach::store {
namespace {

// `status` with a representation of its own (code, message, payloads), sharing nothing.
absl::Status DeepCopy(const absl::Status& status) {
  if (status.ok()) return absl::OkStatus();
  absl::Status copy(status.code(), std::string(status.message()));
  status.ForEachPayload([&](absl::string_view type_url, const absl::Cord& payload) {
    copy.SetPayload(type_url, absl::Cord(std::string(payload)));
  });
  return copy;
}

}  // namespace

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
  completer_ = std::thread([this] { CompleterLoop(); });
  writer_ = std::thread([this] { WriterLoop(); });
}

void EventWriter::Stop() {
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
}

void EventWriter::Submit(std::vector<Queued> commands) {
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

std::size_t EventWriter::max_commands_per_batch() const {
  return std::max<std::size_t>(options_.max_commands_per_batch, 1);
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
  ResumeRequest request;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError("store is shutting down");
    resume_requests_.push_back(&request);
  }
  request.done.WaitForNotification();
  return request.result;
}

absl::Status EventWriter::Rebuild(absl::FunctionRef<void(uint64_t, uint64_t)> progress,
                                  uint64_t every) {
  {
    absl::MutexLock lock(&mu_);
    // Writes queued before the rebuild land first; later ones wait for it.
    mu_.Await(absl::Condition(this, &EventWriter::Quiescent));
    paused_ = true;
  }
  const LogReader log(database_.db(), &database_.handles(), schemas_);
  absl::Status s = RebuildProjectionsFromLog(database_, log, appender_.head().position, progress,
                                             every);
  processor_.ClearCache();
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

bool EventWriter::Quiescent() const { return queue_.empty() && !busy_ && !paused_; }

bool EventWriter::WriterHasWork() const {
  return stopping_ || !resume_requests_.empty() || (!paused_ && !queue_.empty());
}

// Each round: answer ResumeWrites() calls, try to resume after a lack of space (at most every
// resume_poll, also while idle), then write the next batch.
void EventWriter::WriterLoop() {
  while (true) {
    std::vector<Queued> batch;
    std::vector<ResumeRequest*> resume_requests;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(this, &EventWriter::WriterHasWork),
                           options_.resume_poll);
      resume_requests.swap(resume_requests_);
      if (stopping_ && queue_.empty() && resume_requests.empty()) return;
      if (paused_ && resume_requests.empty()) continue;  // a rebuild holds the writer off
      const std::size_t n = paused_ ? 0 : std::min(queue_.size(), max_commands_per_batch());
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

void EventWriter::ProcessBatch(std::vector<Queued>& batch) {
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
void EventWriter::DecideAndWrite(std::vector<Queued>& batch,
                                 std::vector<absl::StatusOr<CommandResult>>& results) {
  processor_.Begin(rows_);
  for (Queued& q : batch) results.push_back(processor_.Process(q.command, q.fingerprint));
  if (!processor_.appended()) {
    processor_.Abandoned();
    return;
  }
  const LogHead cursor = processor_.cursor();
  const Seal seal = appender_.SealBatch(cursor, rows_);
  batch_.Clear();
  rows_.AppendTo(database_.handles(), &batch_);
  unchecked_bytes_ += batch_.GetDataSize();
  absl::Status written = database_.WriteSynced(&batch_, "appending to the event log");
  if (!written.ok()) {
    // Like leveldb's RecordBackgroundError: never guess what reached the disk. A lack of
    // space may clear (TryResume); anything else stays.
    processor_.Abandoned();
    absl::Status refused = WritesRefusedAfter(Refuser::kStore, written);
    {
      absl::MutexLock lock(&mu_);
      write_error_ = refused;
    }
    for (auto& result : results) result = refused;
    return;
  }
  processor_.Committed();
  appender_.Committed(cursor, seal);
  head_.Publish(cursor.position);
}

bool EventWriter::CompleterHasWork() const {
  return completions_closed_ || !completions_.empty();
}

void EventWriter::CompleterLoop() {
  while (true) {
    std::deque<Completion> work;
    {
      absl::MutexLock lock(&completion_mu_);
      completion_mu_.Await(absl::Condition(this, &EventWriter::CompleterHasWork));
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
