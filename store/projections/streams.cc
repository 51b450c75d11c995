#include "store/projections/streams.h"

#include <string>

#include "store/log_fold.h"

namespace outreach::store {
namespace {

void AppendStreamNumber(std::string* out, uint64_t value) {  // fixed64_be
  char bytes[8];
  for (int i = 7; i >= 0; --i, value >>= 8) bytes[i] = static_cast<char>(value & 0xFF);
  out->append(bytes, 8);
}

class StreamsProjectionImpl final : public Projection {
 public:
  absl::string_view name() const override { return "streams"; }
  absl::Span<const FamilySpec> families() const override { return kFamilies; }

  // Every stream's, tasks' and patients' alike.
  absl::Status OnCommand(const CommandChange& change, SortedRows& rows) const override {
    for (const StreamChange& stream : change.streams) {
      for (const storage::v1::StoredEvent* event : stream.events) {
        rows.Put(keys::kStreams, keys::StreamKey(stream.task_id, event->version()),
                 keys::EncodeFixed64BE(event->position()));
      }
    }
    return absl::OkStatus();
  }

  absl::Status Emit(const FoldedLog& folded, const ProjectionFold* /*own*/,
                    RowSink emit) const override {
    // task_id '\0' version: a task's rows sort together, and before those of any longer id,
    // so the tasks in id order give the rows in key order. Keys and values are built in reused
    // buffers: a fold emits millions of rows.
    std::string key;
    std::string value;
    for (const FoldedLog::TaskRef& task : folded.all_streams) {
      const FoldedLog::Stream& stream = *task.stream;
      int64_t version = 0;
      key = keys::StreamPrefix(*task.id);
      const std::size_t prefix_size = key.size();
      for (uint32_t e = stream.first; e != FoldedLog::kNoEvent; e = folded.next[e]) {
        key.resize(prefix_size);
        AppendStreamNumber(&key, static_cast<uint64_t>(++version));
        value.clear();
        AppendStreamNumber(&value, folded.positions[e]);
        if (absl::Status s = emit(keys::kStreams, key, value); !s.ok()) return s;
      }
    }
    return absl::OkStatus();
  }

 private:
  static constexpr FamilySpec kFamilies[] = {{keys::kStreams, FamilyReads::kRanges}};
};

}  // namespace

const Projection& StreamsProjection() {
  static const StreamsProjectionImpl kProjection;
  return kProjection;
}

}  // namespace outreach::store
