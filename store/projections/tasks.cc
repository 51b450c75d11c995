#include "store/projections/tasks.h"

#include <string>

#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "store/log_fold.h"

namespace outreach::store {
namespace {

// Sets `*row` to keys::EncodeTask of `task` with `contacts` (the fold's contact chain, store/
// log_fold.h) as its contacts: the serialization of `task` (which has none) with the bytes
// spliced in where field order puts Task.contacts, before the first field numbered above it.
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

class TasksProjectionImpl final : public PerStreamProjection {
 public:
  absl::string_view name() const override { return "tasks"; }
  absl::Span<const FamilySpec> families() const override { return kFamilies; }

  absl::Status OnStream(const StreamChange& change, SortedRows& rows) const override {
    rows.Put(keys::kTasks, change.task_id, keys::EncodeTask(*change.after));
    return absl::OkStatus();
  }

  absl::Status Emit(const FoldedLog& folded, const ProjectionFold* /*own*/,
                    RowSink emit) const override {
    std::string contacts;
    std::string value;
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
    return absl::OkStatus();
  }

 private:
  static constexpr FamilySpec kFamilies[] = {{keys::kTasks, FamilyReads::kPointLookups}};
};

}  // namespace

const Projection& TasksProjection() {
  static const TasksProjectionImpl kProjection;
  return kProjection;
}

}  // namespace outreach::store
