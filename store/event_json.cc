#include "store/event_json.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

namespace outreach::store {
namespace {

constexpr uint64_t kChunk = 1000;

}  // namespace

absl::StatusOr<std::string> EventToJson(const v1::EventRecord& record) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  std::string json;
  const auto status = google::protobuf::util::MessageToJsonString(record, &json, options);
  if (!status.ok()) {
    return absl::InternalError(absl::StrCat("event at position ", record.position(),
                                            " has no JSON form: ", status.ToString()));
  }
  return json;
}

absl::StatusOr<uint64_t> ExportJsonLines(
    const EventStore& store, uint64_t from_position, absl::string_view task_id,
    absl::FunctionRef<absl::Status(absl::string_view line)> write_line) {
  const uint64_t head = store.HeadPosition();
  uint64_t next = std::max<uint64_t>(from_position, 1);
  uint64_t written = 0;
  while (next <= head) {
    absl::StatusOr<std::vector<v1::EventRecord>> chunk = store.ReadEvents(next, task_id, kChunk);
    if (!chunk.ok()) return chunk.status();
    for (const v1::EventRecord& record : *chunk) {
      if (record.position() > head) return written;
      absl::StatusOr<std::string> json = EventToJson(record);
      if (!json.ok()) return json.status();
      json->push_back('\n');
      if (absl::Status s = write_line(*json); !s.ok()) return s;
      ++written;
    }
    if (chunk->size() < kChunk) break;
    next = chunk->back().position() + 1;
  }
  return written;
}

}  // namespace outreach::store
