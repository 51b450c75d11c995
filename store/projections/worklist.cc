#include "store/projections/worklist.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "store/log_fold.h"

namespace outreach::store {
namespace {

using WorklistRows = std::vector<std::pair<std::string, std::string>>;

WorklistRows WorklistRowsOf(const v1::Task& task) {
  WorklistRows rows;
  rows.reserve(5);
  keys::ForEachWorklistRow(task, [&](absl::string_view key, absl::string_view value) {
    rows.emplace_back(std::string(key), std::string(value));
  });
  return rows;
}

// Every task's worklist rows, sorted once all tasks are folded.
class WorklistFold final : public ProjectionFold {
 public:
  absl::Status OnEvent(const storage::v1::StoredEvent& /*event*/,
                       uint64_t /*position*/) override {
    return absl::OkStatus();
  }
  absl::Status Finish(const FoldedLog& folded) override {
    rows_.Reserve(folded.tasks.size() * 5, folded.tasks.size() * 5 * 64);
    for (const FoldedLog::TaskRef& task : folded.tasks) {
      keys::ForEachWorklistRow(*task.stream->task,
                               [&](absl::string_view key, absl::string_view value) {
                                 rows_.Add(key, value);
                               });
    }
    rows_.Sort();
    return absl::OkStatus();
  }
  const RowBuffer& rows() const { return rows_; }

 private:
  RowBuffer rows_;
};

class WorklistProjectionImpl final : public PerStreamProjection {
 public:
  absl::string_view name() const override { return "worklist"; }
  absl::Span<const FamilySpec> families() const override { return kFamilies; }

  absl::Status OnStream(const StreamChange& change, SortedRows& rows) const override {
    const WorklistRows new_rows = WorklistRowsOf(*change.after);
    if (change.before == nullptr) {
      for (const auto& [key, value] : new_rows) rows.Put(keys::kWorklist, key, value);
      return absl::OkStatus();
    }
    const WorklistRows old_rows = WorklistRowsOf(*change.before);
    // (Rows by reference, not structured bindings: clang 14, the fuzz build's compiler, cannot
    // capture a binding in a lambda.)
    for (const auto& old_row : old_rows) {
      const bool kept = std::any_of(new_rows.begin(), new_rows.end(),
                                    [&](const auto& row) { return row.first == old_row.first; });
      if (!kept) rows.Delete(keys::kWorklist, old_row.first);
    }
    for (const auto& new_row : new_rows) {
      const bool same = std::any_of(old_rows.begin(), old_rows.end(),
                                    [&](const auto& row) { return row == new_row; });
      if (!same) rows.Put(keys::kWorklist, new_row.first, new_row.second);
    }
    return absl::OkStatus();
  }

  std::unique_ptr<ProjectionFold> StartFold() const override {
    return std::make_unique<WorklistFold>();
  }

  absl::Status Emit(const FoldedLog& /*folded*/, const ProjectionFold* own,
                    RowSink emit) const override {
    const RowBuffer& rows = static_cast<const WorklistFold*>(own)->rows();
    for (std::size_t i = 0; i < rows.size(); ++i) {
      if (absl::Status s = emit(keys::kWorklist, rows.key(i), rows.value(i)); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  static constexpr FamilySpec kFamilies[] = {{keys::kWorklist, FamilyReads::kRanges}};
};

}  // namespace

const Projection& WorklistProjection() {
  static const WorklistProjectionImpl kProjection;
  return kProjection;
}

}  // namespace outreach::store
