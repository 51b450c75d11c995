#include "store/projections/expiry.h"

#include <memory>
#include <optional>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "store/log_fold.h"
#include "store/rocks.h"

namespace outreach::store {
namespace {

// The expiry row of every task that has one, sorted once all tasks are folded.
class ExpiryFold final : public ProjectionFold {
 public:
  absl::Status OnEvent(const storage::v1::StoredEvent& /*event*/,
                       uint64_t /*position*/) override {
    return absl::OkStatus();
  }
  absl::Status Finish(const FoldedLog& folded) override {
    for (const FoldedLog::TaskRef& task : folded.tasks) {
      if (std::optional<std::string> key = keys::ExpiryRowFor(*task.stream->task)) {
        rows_.Add(*key, "");
      }
    }
    rows_.Sort();
    return absl::OkStatus();
  }
  const RowBuffer& rows() const { return rows_; }

 private:
  RowBuffer rows_;
};

class ExpiryProjectionImpl final : public PerStreamProjection {
 public:
  absl::string_view name() const override { return "expiry"; }
  absl::Span<const FamilySpec> families() const override { return kFamilies; }

  absl::Status OnStream(const StreamChange& change, SortedRows& rows) const override {
    const std::optional<std::string> new_row = keys::ExpiryRowFor(*change.after);
    const std::optional<std::string> old_row =
        change.before != nullptr ? keys::ExpiryRowFor(*change.before) : std::nullopt;
    if (old_row == new_row) return absl::OkStatus();
    if (old_row.has_value()) rows.Delete(keys::kExpiry, *old_row);
    if (new_row.has_value()) rows.Put(keys::kExpiry, *new_row, "");
    return absl::OkStatus();
  }

  std::unique_ptr<ProjectionFold> StartFold() const override {
    return std::make_unique<ExpiryFold>();
  }

  absl::Status Emit(const FoldedLog& /*folded*/, const ProjectionFold* own,
                    RowSink emit) const override {
    const RowBuffer& rows = static_cast<const ExpiryFold*>(own)->rows();
    for (std::size_t i = 0; i < rows.size(); ++i) {
      if (absl::Status s = emit(keys::kExpiry, rows.key(i), rows.value(i)); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  static constexpr FamilySpec kFamilies[] = {{keys::kExpiry, FamilyReads::kRanges}};
};

}  // namespace

const Projection& ExpiryProjection() {
  static const ExpiryProjectionImpl kProjection;
  return kProjection;
}

std::optional<absl::Time> NextExpiry(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* expiry) {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), expiry));
  it->SeekToFirst();
  absl::Time expires_at;
  std::string task_id;
  if (!it->Valid() || !keys::ParseExpiryKey(View(it->key()), &expires_at, &task_id)) {
    return std::nullopt;
  }
  return expires_at;
}

absl::StatusOr<std::vector<std::string>> DueTasks(rocksdb::DB* db,
                                                  rocksdb::ColumnFamilyHandle* expiry,
                                                  absl::Time now, std::string* start,
                                                  std::size_t max) {
  const std::string upper = keys::ExpiryTimeKey(absl::ToUnixMicros(now) + 1);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions read;
  read.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(read, expiry));
  std::vector<std::string> out;
  for (it->Seek(*start); it->Valid() && out.size() < max; it->Next()) {
    absl::Time expires_at;
    std::string task_id;
    if (!keys::ParseExpiryKey(View(it->key()), &expires_at, &task_id)) {
      return absl::DataLossError(absl::StrCat(
          "expiry index: malformed row ", absl::BytesToHexString(View(it->key()))));
    }
    *start = it->key().ToString() + '\0';
    out.push_back(std::move(task_id));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading the expiry index");
  return out;
}

}  // namespace outreach::store
