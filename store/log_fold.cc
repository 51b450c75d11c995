#include "store/log_fold.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "store/rocks.h"

namespace outreach::store {
namespace {

void AppendFixed64BE(std::string* out, uint64_t value) {
  char bytes[8];
  for (int i = 7; i >= 0; --i, value >>= 8) bytes[i] = static_cast<char>(value & 0xFF);
  out->append(bytes, 8);
}

// Appends the contacts of `stream`'s task to its contact chain, each as the "tasks" row
// encodes it: the tag of Task.contacts, the length, the Contact's bytes. (Contact has no map
// fields, so its plain serialization is the deterministic one keys::EncodeTask uses.)
absl::Status AddContactBytes(FoldedLog::Stream& stream, FoldedLog* out) {
  using google::protobuf::internal::WireFormatLite;
  constexpr uint32_t kTag = WireFormatLite::MakeTag(
      v1::Task::kContactsFieldNumber, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
  static_assert(kTag < 0x80, "the tag is one byte");
  for (const v1::Contact& contact : stream.task->contacts()) {
    const std::size_t size = contact.ByteSizeLong();
    const std::size_t header_size =
        1 + static_cast<std::size_t>(google::protobuf::io::CodedOutputStream::VarintSize32(
                static_cast<uint32_t>(size)));
    if (out->contacts.size() >= FoldedLog::kNoEvent) {
      return absl::ResourceExhaustedError("rebuild: more contacts than one fold can hold");
    }
    auto* bytes = reinterpret_cast<uint8_t*>(
        google::protobuf::Arena::CreateArray<char>(&out->arena, header_size + size));
    bytes[0] = static_cast<uint8_t>(kTag);
    google::protobuf::io::CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(size),
                                                                  bytes + 1);
    contact.SerializeWithCachedSizesToArray(bytes + header_size);
    const auto index = static_cast<uint32_t>(out->contacts.size());
    out->contacts.push_back(FoldedLog::ContactBytes{reinterpret_cast<const char*>(bytes),
                                                    static_cast<uint32_t>(header_size + size),
                                                    FoldedLog::kNoEvent});
    if (stream.last_contact == FoldedLog::kNoEvent) {
      stream.first_contact = index;
    } else {
      out->contacts[stream.last_contact].next = index;
    }
    stream.last_contact = index;
  }
  return absl::OkStatus();
}

// Sets `*row` to keys::EncodeTask of `task` with `contacts` (AddContactBytes's chain) as its
// contacts: the serialization of `task` (which has none) with the bytes spliced in where
// field order puts Task.contacts, before the first field numbered above it.
absl::Status TaskRow(const v1::Task& task, absl::string_view contacts, std::string* row) {
  using google::protobuf::internal::WireFormatLite;
  *row = keys::EncodeTask(task);
  if (contacts.empty()) return absl::OkStatus();
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(row->data()),
                                            static_cast<int>(row->size()));
  std::size_t split = row->size();
  while (true) {
    const int at = in.CurrentPosition();
    const uint32_t tag = in.ReadTag();
    if (tag == 0) break;
    if (WireFormatLite::GetTagFieldNumber(tag) > v1::Task::kContactsFieldNumber) {
      split = static_cast<std::size_t>(at);
      break;
    }
    if (!WireFormatLite::SkipField(&in, tag)) {
      return absl::InternalError("rebuild: a task's own serialization does not parse");
    }
  }
  row->insert(split, contacts.data(), contacts.size());
  return absl::OkStatus();
}

// What a fold keeps of each request id while it reads the log: the latest event of its request.
struct FoldedRequest {
  std::string fingerprint;
  std::string task_id;
  int64_t task_version = 0;
  uint64_t last_position = 0;
};
using FoldedRequests = absl::flat_hash_map<std::string, FoldedRequest>;

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

// Folds one event into its task's stream, its contact chain and the request ids.
absl::Status FoldEvent(const storage::v1::StoredEvent& event, uint64_t position, FoldedLog* out,
                       FoldedRequests& requests) {
  FoldedLog::Stream& stream = out->streams[event.task_id()];
  if (stream.task == nullptr) {
    stream.task = google::protobuf::Arena::CreateMessage<v1::Task>(&out->arena);
  }
  if (absl::Status s = ApplyChecked(*stream.task, event); !s.ok()) return s;
  if (stream.task->contacts_size() > 0) {
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
  if (!event.request_id().empty()) {
    auto [record, inserted] =
        requests.try_emplace(keys::RequestKey(event.actor(), event.request_id()));
    if (inserted) {
      record->second.fingerprint = event.request_fingerprint();
      record->second.task_id = event.task_id();
    }
    record->second.task_version = event.version();
    record->second.last_position = position;
  }
  ++out->events;
  return absl::OkStatus();
}

// After the last event: every task in id order, the index rows and the request rows, sorted.
void FinishFold(FoldedRequests& requests, FoldedLog* out) {
  out->tasks.reserve(out->streams.size());
  out->worklist.Reserve(out->streams.size() * 4, out->streams.size() * 4 * 64);
  for (const auto& [task_id, stream] : out->streams) {
    out->tasks.push_back(
        FoldedLog::TaskRef{KeyPrefix(task_id, 0), KeyPrefix(task_id, 8), &task_id, &stream});
    keys::ForEachIndexRow(
        *stream.task,
        [&](absl::string_view key, absl::string_view value) { out->worklist.Add(key, value); },
        [&](absl::string_view key) { out->expiry.Add(key, ""); });
  }
  std::sort(out->tasks.begin(), out->tasks.end(),
            [](const FoldedLog::TaskRef& a, const FoldedLog::TaskRef& b) {
              if (a.prefix0 != b.prefix0) return a.prefix0 < b.prefix0;
              if (a.prefix1 != b.prefix1) return a.prefix1 < b.prefix1;
              return *a.id < *b.id;
            });
  out->worklist.Sort();
  out->expiry.Sort();
  for (auto& [request_key, request] : requests) {
    storage::v1::RequestRecord record;
    record.set_fingerprint(std::move(request.fingerprint));
    record.set_task_id(std::move(request.task_id));
    record.set_task_version(request.task_version);
    record.set_last_position(request.last_position);
    out->requests.Add(request_key, keys::EncodeRequestRecord(record));
  }
  out->requests.Sort();
}

}  // namespace

absl::Status FoldLog(const LogReader& log, const rocksdb::ReadOptions& read,
                     uint64_t expected_events, FoldedLog* out,
                     absl::FunctionRef<void(uint64_t)> on_event) {
  FoldedRequests requests;
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
    if (absl::Status s = FoldEvent(event, position, out, requests); !s.ok()) return s;
    on_event(out->events);
  }
  if (!it->status().ok()) return FromRocks(it->status(), "rebuild: reading the event log");
  it.reset();
  FinishFold(requests, out);
  return absl::OkStatus();
}

absl::Status EmitRows(
    const FoldedLog& folded,
    absl::FunctionRef<absl::Status(keys::Cf, absl::string_view, absl::string_view)> emit) {
  static_assert(keys::kProjectionCfs[0] == keys::kStreams &&
                keys::kProjectionCfs[1] == keys::kTasks &&
                keys::kProjectionCfs[2] == keys::kWorklist &&
                keys::kProjectionCfs[3] == keys::kExpiry &&
                keys::kProjectionCfs[4] == keys::kRequests);
  // task_id '\0' version: a task's rows sort together, and before those of any longer id.
  // Keys and values are built in reused buffers: a fold emits millions of rows.
  std::string key;
  std::string value;
  for (const FoldedLog::TaskRef& task : folded.tasks) {
    const FoldedLog::Stream& stream = *task.stream;
    int64_t version = 0;
    key = keys::StreamPrefix(*task.id);
    const std::size_t prefix_size = key.size();
    for (uint32_t e = stream.first; e != FoldedLog::kNoEvent; e = folded.next[e]) {
      key.resize(prefix_size);
      AppendFixed64BE(&key, static_cast<uint64_t>(++version));
      value.clear();
      AppendFixed64BE(&value, folded.positions[e]);
      if (absl::Status s = emit(keys::kStreams, key, value); !s.ok()) return s;
    }
  }
  std::string contacts;
  for (const FoldedLog::TaskRef& task : folded.tasks) {
    const FoldedLog::Stream& stream = *task.stream;
    contacts.clear();
    for (uint32_t c = stream.first_contact; c != FoldedLog::kNoEvent;
         c = folded.contacts[c].next) {
      contacts.append(folded.contacts[c].data, folded.contacts[c].size);
    }
    if (absl::Status s = TaskRow(*stream.task, contacts, &value); !s.ok()) return s;
    if (absl::Status s = emit(keys::kTasks, *task.id, value); !s.ok()) return s;
  }
  const std::pair<keys::Cf, const RowBuffer*> sorted[] = {{keys::kWorklist, &folded.worklist},
                                                          {keys::kExpiry, &folded.expiry},
                                                          {keys::kRequests, &folded.requests}};
  for (const auto& [family, rows] : sorted) {
    for (std::size_t i = 0; i < rows->size(); ++i) {
      if (absl::Status s = emit(family, rows->key(i), rows->value(i)); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace outreach::store
