#include "store/projections/tasks.h"

#include <string>

#include "store/log_fold.h"

namespace outreach::store {
namespace {

class TasksProjectionImpl final : public PerStreamProjection {
 public:
  absl::string_view name() const override { return "tasks"; }
  absl::Span<const FamilySpec> families() const override { return kFamilies; }

  absl::Status OnStream(const StreamChange& change, SortedRows& rows) const override {
    std::string row;
    if (absl::Status s = keys::EncodeTaskRow(*change.after, change.after_contacts, &row);
        !s.ok()) {
      return s;
    }
    rows.Put(keys::kTasks, change.task_id, row);
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
      if (absl::Status s = keys::EncodeTaskRow(*stream.task, contacts, &value); !s.ok()) {
        return s;
      }
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
