#include "store/log_reader.h"

#include <algorithm>
#include <memory>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "domain/task_rules.h"
#include "store/rocks.h"

namespace outreach::store {

absl::Status ApplyChecked(v1::Task& task, const storage::v1::StoredEvent& event) {
  absl::Status s = domain::Apply(task, event);
  if (s.ok() || s.code() == absl::StatusCode::kDataLoss) return s;
  return absl::DataLossError(s.message());
}

absl::StatusOr<DecodedEvent> LogReader::ReadEvent(const rocksdb::ReadOptions& read,
                                                  uint64_t position) const {
  std::string raw;
  rocksdb::Status s = db_->Get(read, cf(keys::kEvents), keys::EventKey(position), &raw);
  if (s.IsNotFound()) {
    return absl::DataLossError(absl::StrCat("event log: position ", position, ": missing"));
  }
  if (!s.ok()) return FromRocks(s, absl::StrCat("reading event ", position));
  return DecodeEvent(position, raw, *schemas_);
}

absl::Status LogReader::ForEachStreamPosition(
    const rocksdb::ReadOptions& read, absl::string_view task_id,
    absl::FunctionRef<absl::StatusOr<bool>(uint64_t position)> visit) const {
  const std::string prefix = keys::StreamPrefix(task_id);
  std::string upper = prefix;
  upper.back() = '\1';
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions stream_read = read;
  stream_read.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(stream_read, cf(keys::kStreams)));
  for (it->Seek(prefix); it->Valid(); it->Next()) {
    uint64_t position = 0;
    if (!keys::DecodeFixed64BE(View(it->value()), &position)) {
      return absl::DataLossError(
          absl::StrCat("streams: malformed row for task \"", task_id, "\""));
    }
    absl::StatusOr<bool> more = visit(position);
    if (!more.ok()) return more.status();
    if (!*more) return absl::OkStatus();
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading a task stream");
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::EventRecord>> LogReader::ReadEvents(
    const rocksdb::ReadOptions& read, uint64_t from_position, absl::string_view task_id,
    uint64_t limit) const {
  std::vector<v1::EventRecord> out;
  auto full = [&] { return limit != 0 && out.size() >= limit; };
  if (!task_id.empty()) {
    absl::Status s = ForEachStreamPosition(read, task_id, [&](uint64_t position)
                                                              -> absl::StatusOr<bool> {
      // Positions grow with versions: skip the stream's head until from_position.
      if (position < from_position) return true;
      absl::StatusOr<DecodedEvent> event = ReadEvent(read, position);
      if (!event.ok()) return event.status();
      out.push_back(ToEventRecord(*event));
      return !full();
    });
    if (!s.ok()) return s;
    return out;
  }
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, cf(keys::kEvents)));
  for (it->Seek(keys::EventKey(std::max<uint64_t>(from_position, 1))); it->Valid() && !full();
       it->Next()) {
    uint64_t position = 0;
    if (!keys::ParseEventKey(View(it->key()), &position)) {
      return absl::DataLossError(absl::StrCat("event log: malformed key ",
                                              absl::BytesToHexString(View(it->key()))));
    }
    absl::StatusOr<DecodedEvent> event = DecodeEvent(position, View(it->value()), *schemas_);
    if (!event.ok()) return event.status();
    out.push_back(ToEventRecord(*event));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading the event log");
  return out;
}

absl::StatusOr<int64_t> LogReader::FoldTask(
    const rocksdb::ReadOptions& read, absl::string_view task_id, int64_t max_version,
    absl::FunctionRef<bool(const DecodedEvent&)> keep,
    absl::FunctionRef<void(const v1::Task&, const v1::Task&, const DecodedEvent&)> visit,
    v1::Task* task) const {
  int64_t folded = 0;
  absl::Status s = ForEachStreamPosition(read, task_id, [&](uint64_t position)
                                                            -> absl::StatusOr<bool> {
    if (folded >= max_version) return false;
    absl::StatusOr<DecodedEvent> event = ReadEvent(read, position);
    if (!event.ok()) return event.status();
    if (event->event.task_id() != task_id || event->event.version() != folded + 1) {
      return absl::DataLossError(absl::StrCat("streams: task \"", task_id, "\" version ",
                                              folded + 1, " points at position ", position,
                                              ", which holds another event"));
    }
    if (!keep(*event)) return false;
    v1::Task before = *task;
    if (absl::Status a = ApplyChecked(*task, event->event); !a.ok()) return a;
    visit(before, *task, *event);
    ++folded;
    return true;
  });
  if (!s.ok()) return s;
  return folded;
}

absl::Status LogReader::ReadHeadRow(const rocksdb::ReadOptions& read, uint64_t* position,
                                    Hash* hash) const {
  std::string raw;
  rocksdb::Status s = db_->Get(read, cf(keys::kDefault), keys::kHeadKey, &raw);
  *position = 0;
  *hash = ZeroHash();
  if (s.IsNotFound()) return absl::OkStatus();
  if (!s.ok()) return FromRocks(s, "reading the head row");
  std::string bytes;
  if (!keys::DecodeHead(raw, position, &bytes) || !HashFromBytes(bytes, hash)) {
    return absl::DataLossError("event log: the head row is malformed");
  }
  return absl::OkStatus();
}


bool LogReader::StreamHasVersionBefore(const rocksdb::ReadOptions& read,
                                       const std::string& task_id, int64_t version,
                                       uint64_t position) const {
  std::string raw;
  uint64_t at = 0;
  return db_->Get(read, cf(keys::kStreams), keys::StreamKey(task_id, version), &raw).ok() &&
         keys::DecodeFixed64BE(raw, &at) && at < position;
}

}  // namespace outreach::store
