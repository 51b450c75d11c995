#include "store/projections/requests.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "store/log_fold.h"

namespace outreach::store {
namespace {

// What a fold keeps of each request id while it reads the log: the latest event of its request.
struct FoldedRequest {
  std::string fingerprint;
  // Each stream the request changed, with its latest version, in the order of its first event.
  std::vector<std::pair<std::string, int64_t>> streams;
  uint64_t last_position = 0;
};

// The record of a request: its first stream in task_id / task_version (the format of requests
// that changed one stream), the others in more_streams.
std::string RequestRow(std::string fingerprint,
                       const std::vector<std::pair<std::string, int64_t>>& streams,
                       uint64_t last_position) {
  storage::v1::RequestRecord record;
  record.set_fingerprint(std::move(fingerprint));
  for (std::size_t i = 0; i < streams.size(); ++i) {
    if (i == 0) {
      record.set_task_id(streams[i].first);
      record.set_task_version(streams[i].second);
    } else {
      storage::v1::StreamVersion* more = record.add_more_streams();
      more->set_task_id(streams[i].first);
      more->set_version(streams[i].second);
    }
  }
  record.set_last_position(last_position);
  return keys::EncodeRequestRecord(record);
}

class RequestsFold final : public ProjectionFold {
 public:
  absl::Status OnEvent(const storage::v1::StoredEvent& event, uint64_t position) override {
    if (event.request_id().empty()) return absl::OkStatus();
    auto [record, inserted] =
        requests_.try_emplace(keys::RequestKey(event.actor(), event.request_id()));
    FoldedRequest& request = record->second;
    if (inserted) request.fingerprint = event.request_fingerprint();
    auto stream = std::find_if(request.streams.begin(), request.streams.end(),
                               [&](const auto& s) { return s.first == event.task_id(); });
    if (stream == request.streams.end()) {
      request.streams.emplace_back(event.task_id(), event.version());
    } else {
      stream->second = event.version();
    }
    request.last_position = position;
    return absl::OkStatus();
  }
  absl::Status Finish(const FoldedLog& /*folded*/) override {
    for (auto& [request_key, request] : requests_) {
      rows_.Add(request_key,
                RequestRow(std::move(request.fingerprint), request.streams, request.last_position));
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
  absl::Span<const FamilySpec> families() const override { return kFamilies; }

  absl::Status OnCommand(const CommandChange& change, SortedRows& rows) const override {
    if (change.request_id.empty()) return absl::OkStatus();
    std::vector<std::pair<std::string, int64_t>> streams;
    streams.reserve(change.streams.size());
    for (const StreamChange& stream : change.streams) {
      streams.emplace_back(std::string(stream.task_id), stream.events.back()->version());
    }
    rows.Put(keys::kRequests, change.request_key,
             RequestRow(std::string(change.fingerprint), streams, change.last_position));
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
  static constexpr FamilySpec kFamilies[] = {{keys::kRequests, FamilyReads::kPointLookups}};
};

}  // namespace

const Projection& RequestsProjection() {
  static const RequestsProjectionImpl kProjection;
  return kProjection;
}

}  // namespace outreach::store
