#include "store/projections/requests.h"

#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "store/log_fold.h"

namespace outreach::store {
namespace {

// What a fold keeps of each request id while it reads the log: the latest event of its request.
struct FoldedRequest {
  std::string fingerprint;
  std::string task_id;
  int64_t task_version = 0;
  uint64_t last_position = 0;
};

class RequestsFold final : public ProjectionFold {
 public:
  absl::Status OnEvent(const storage::v1::StoredEvent& event, uint64_t position) override {
    if (event.request_id().empty()) return absl::OkStatus();
    auto [record, inserted] =
        requests_.try_emplace(keys::RequestKey(event.actor(), event.request_id()));
    if (inserted) {
      record->second.fingerprint = event.request_fingerprint();
      record->second.task_id = event.task_id();
    }
    record->second.task_version = event.version();
    record->second.last_position = position;
    return absl::OkStatus();
  }
  absl::Status Finish(const FoldedLog& /*folded*/) override {
    for (auto& [request_key, request] : requests_) {
      storage::v1::RequestRecord record;
      record.set_fingerprint(std::move(request.fingerprint));
      record.set_task_id(std::move(request.task_id));
      record.set_task_version(request.task_version);
      record.set_last_position(request.last_position);
      rows_.Add(request_key, keys::EncodeRequestRecord(record));
    }
    requests_.clear();
    rows_.Sort();
    return absl::OkStatus();
  }
  const RowBuffer& rows() const { return rows_; }

 private:
  absl::flat_hash_map<std::string, FoldedRequest> requests_;
  RowBuffer rows_;
};

class RequestsProjectionImpl final : public Projection {
 public:
  absl::string_view name() const override { return "requests"; }
  absl::Span<const keys::Cf> families() const override { return kFamilies; }

  absl::Status OnCommand(const CommandChange& change, SortedRows& rows) const override {
    if (change.request_id.empty()) return absl::OkStatus();
    storage::v1::RequestRecord record;
    record.set_fingerprint(std::string(change.fingerprint));
    record.set_task_id(std::string(change.task_id));
    record.set_task_version(change.after->version());
    record.set_last_position(change.last_position);
    rows.Put(keys::kRequests, change.request_key, keys::EncodeRequestRecord(record));
    return absl::OkStatus();
  }

  std::unique_ptr<ProjectionFold> StartFold() const override {
    return std::make_unique<RequestsFold>();
  }

  absl::Status Emit(const FoldedLog& /*folded*/, const ProjectionFold* own,
                    RowSink emit) const override {
    const RowBuffer& rows = static_cast<const RequestsFold*>(own)->rows();
    for (std::size_t i = 0; i < rows.size(); ++i) {
      if (absl::Status s = emit(keys::kRequests, rows.key(i), rows.value(i)); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  static constexpr keys::Cf kFamilies[] = {keys::kRequests};
};

}  // namespace

const Projection& RequestsProjection() {
  static const RequestsProjectionImpl kProjection;
  return kProjection;
}

}  // namespace outreach::store
