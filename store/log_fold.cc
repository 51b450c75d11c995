#include "store/log_fold.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "domain/task_rules.h"
#include "store/rocks.h"

namespace outreach::store {
namespace {

// Appends the contacts of `stream`'s task to its contact chain, each as the "tasks" row
// encodes it (keys::AppendContactBytes).
absl::Status AddContactBytes(FoldedLog::Stream& stream, FoldedLog* out) {
  for (const v1::Contact& contact : stream.task->contacts()) {
    const std::size_t size = keys::ContactBytesSize(contact);
    if (out->contacts.size() >= FoldedLog::kNoEvent) {
      return absl::ResourceExhaustedError("rebuild: more contacts than one fold can hold");
    }
    char* bytes = google::protobuf::Arena::CreateArray<char>(&out->arena, size);
    keys::WriteContactBytes(contact, bytes);
    const auto index = static_cast<uint32_t>(out->contacts.size());
    out->contacts.push_back(
        FoldedLog::ContactBytes{bytes, static_cast<uint32_t>(size), FoldedLog::kNoEvent});
    if (stream.last_contact == FoldedLog::kNoEvent) {
      stream.first_contact = index;
    } else {
      out->contacts[stream.last_contact].next = index;
    }
    stream.last_contact = index;
  }
  return absl::OkStatus();
}

// Parses the event row at `position` into `event` (reused: its fields keep their allocations),
// straight from the row: DecodeEvent's copy of the body is for hash checks, which a fold does
// not do. DecodeEvent says precisely what is wrong with a row that does not parse.
absl::Status ParseForFold(const LogReader& log, uint64_t position, absl::string_view value,
                          storage::v1::StoredEvent& event) {
  constexpr std::size_t kHeader = 1 + 2 * kHashSize;  // format | prev_hash | hash
  event.Clear();
  const bool parsed =
      value.size() >= kHeader && static_cast<uint8_t>(value[0]) == kEventFormatVersion &&
      event.ParseFromArray(value.data() + kHeader, static_cast<int>(value.size() - kHeader)) &&
      event.position() == position && log.schemas().Upcast(position, event).ok();
  if (parsed) return absl::OkStatus();
  absl::StatusOr<DecodedEvent> decoded = DecodeEvent(position, value, log.schemas());
  if (!decoded.ok()) return decoded.status();
  event = std::move(decoded->event);
  return absl::OkStatus();
}

// Folds one event into its task's stream and its contact chain.
absl::Status FoldEvent(const storage::v1::StoredEvent& event, uint64_t position,
                       FoldedLog* out) {
  FoldedLog::Stream& stream = out->streams[event.task_id()];
  const bool patient = domain::IsPatientStream(event.task_id());  // its state is "patients"'
  if (stream.task == nullptr && !patient) {
    stream.task = google::protobuf::Arena::CreateMessage<v1::Task>(&out->arena);
  }
  if (!patient) {
    if (absl::Status s = ApplyChecked(*stream.task, event); !s.ok()) return s;
  }
  if (!patient && stream.task->contacts_size() > 0) {
    // Serialized now, while it is hot, into the task's contact bytes. The cleared Contact
    // (with its strings' buffers) is reused by the task's next contact: the fold allocates
    // one Contact per task, not one per contact, and the task row is written from bytes.
    if (absl::Status s = AddContactBytes(stream, out); !s.ok()) return s;
    stream.task->mutable_contacts()->Clear();
  }
  if (out->events >= FoldedLog::kNoEvent) {
    return absl::ResourceExhaustedError("rebuild: more events than one fold can hold");
  }
  const auto ordinal = static_cast<uint32_t>(out->events);
  out->positions.push_back(position);
  out->next.push_back(FoldedLog::kNoEvent);
  if (stream.last == FoldedLog::kNoEvent) {
    stream.first = ordinal;
  } else {
    out->next[stream.last] = ordinal;
  }
  stream.last = ordinal;
  ++out->events;
  return absl::OkStatus();
}

// After the last event: every task in id order, then each projection's own fold finished.
absl::Status FinishFold(FoldedLog* out) {
  out->all_streams.reserve(out->streams.size());
  for (const auto& [task_id, stream] : out->streams) {
    out->all_streams.push_back(
        FoldedLog::TaskRef{KeyPrefix(task_id, 0), KeyPrefix(task_id, 8), &task_id, &stream});
  }
  std::sort(out->all_streams.begin(), out->all_streams.end(),
            [](const FoldedLog::TaskRef& a, const FoldedLog::TaskRef& b) {
              if (a.prefix0 != b.prefix0) return a.prefix0 < b.prefix0;
              if (a.prefix1 != b.prefix1) return a.prefix1 < b.prefix1;
              return *a.id < *b.id;
            });
  out->tasks.reserve(out->all_streams.size());
  for (const FoldedLog::TaskRef& ref : out->all_streams) {
    if (ref.stream->task != nullptr) out->tasks.push_back(ref);
  }
  for (const std::unique_ptr<ProjectionFold>& own : out->own) {
    if (own == nullptr) continue;
    if (absl::Status s = own->Finish(*out); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// The projections that fold events of their own, by index into out->projections.
std::vector<ProjectionFold*> StartFolds(FoldedLog* out) {
  std::vector<ProjectionFold*> folds;
  out->own.clear();
  for (const Projection* projection : out->projections) {
    out->own.push_back(projection->StartFold());
    if (out->own.back() != nullptr) folds.push_back(out->own.back().get());
  }
  return folds;
}

}  // namespace

absl::Status FoldLog(const LogReader& log, const rocksdb::ReadOptions& read,
                     uint64_t expected_events, FoldedLog* out,
                     absl::FunctionRef<void(uint64_t)> on_event) {
  const std::vector<ProjectionFold*> folds = StartFolds(out);
  rocksdb::ReadOptions scan = read;
  // One sequential pass over the whole log, read 1 MiB at a time. Not more: each table file
  // gets its own buffer of this size, first touched by the read (at 8 MiB the buffers were
  // ~11,000 of a rebuild's page faults).
  scan.readahead_size = 1 << 20;
  scan.fill_cache = false;  // that pass must not evict what readers use
  std::unique_ptr<rocksdb::Iterator> it(log.db()->NewIterator(scan, log.cf(keys::kEvents)));
  storage::v1::StoredEvent event;  // one message reused for every event
  out->positions.reserve(expected_events);
  out->next.reserve(expected_events);
  out->contacts.reserve(expected_events);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    uint64_t position = 0;
    if (!keys::ParseEventKey(View(it->key()), &position)) {
      return absl::DataLossError("rebuild: malformed event key");
    }
    if (absl::Status s = ParseForFold(log, position, View(it->value()), event); !s.ok()) return s;
    if (absl::Status s = FoldEvent(event, position, out); !s.ok()) return s;
    for (ProjectionFold* fold : folds) {
      if (absl::Status s = fold->OnEvent(event, position); !s.ok()) return s;
    }
    on_event(out->events);
  }
  if (!it->status().ok()) return FromRocks(it->status(), "rebuild: reading the event log");
  it.reset();
  return FinishFold(out);
}

absl::Status EmitRows(const FoldedLog& folded, RowSink emit) {
  for (std::size_t i = 0; i < folded.projections.size(); ++i) {
    const ProjectionFold* own = i < folded.own.size() ? folded.own[i].get() : nullptr;
    if (absl::Status s = folded.projections[i]->Emit(folded, own, emit); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace outreach::store
