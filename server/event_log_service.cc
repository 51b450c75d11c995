#include "server/event_log_service.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "domain/validation.h"
#include "server/grpc_status.h"

namespace outreach::server {
namespace {

// ReadEvents: streams events batch by batch, one write in flight at a time, the next batch read
// from the store only when the previous one has been written. gRPC serializes the reactions of one
// reactor, so the members need no lock. Deletes itself in OnDone.
class ReadEventsReactor final : public grpc::ServerWriteReactor<v1::EventRecord> {
 public:
  ReadEventsReactor(const store::EventStore* store, grpc::CallbackServerContext* context,
                    const v1::ReadEventsRequest& request)
      : store_(store),
        context_(context),
        task_id_(request.task_id()),
        next_position_(request.from_position()),
        remaining_(request.max_count()),
        unlimited_(request.max_count() == 0) {
    if (absl::Status s = domain::ValidateOptionalId("task_id", task_id_); !s.ok()) {
      Finish(ToGrpcStatus(s));
      return;
    }
    WriteNext();
  }

  void OnWriteDone(bool ok) override {
    // A failed write means the call is over (cancelled, deadline, client gone).
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "stream cancelled"));
      return;
    }
    WriteNext();
  }

  void OnDone() override { delete this; }

 private:
  void WriteNext() {
    if (index_ == batch_.size()) {
      if (context_->IsCancelled()) {
        Finish(grpc::Status(grpc::StatusCode::CANCELLED, "stream cancelled"));
        return;
      }
      if (!unlimited_ && remaining_ == 0) {
        Finish(grpc::Status::OK);
        return;
      }
      const uint64_t limit =
          unlimited_ ? EventLogService::kReadBatch : std::min(remaining_, EventLogService::kReadBatch);
      absl::StatusOr<std::vector<v1::EventRecord>> batch =
          store_->ReadEvents(next_position_, task_id_, limit);
      if (!batch.ok()) {
        Finish(ToGrpcStatus(batch.status()));
        return;
      }
      if (batch->empty()) {
        Finish(grpc::Status::OK);
        return;
      }
      batch_ = *std::move(batch);
      index_ = 0;
      next_position_ = batch_.back().position() + 1;
      if (!unlimited_) remaining_ -= std::min<uint64_t>(remaining_, batch_.size());
    }
    StartWrite(&batch_[index_++]);
  }

  const store::EventStore* const store_;
  grpc::CallbackServerContext* const context_;
  const std::string task_id_;
  uint64_t next_position_;
  uint64_t remaining_;  // events still to send, when !unlimited_
  const bool unlimited_;
  std::vector<v1::EventRecord> batch_;
  std::size_t index_ = 0;
};

}  // namespace

grpc::ServerWriteReactor<v1::EventRecord>* EventLogService::ReadEvents(
    grpc::CallbackServerContext* context, const v1::ReadEventsRequest* request) {
  return new ReadEventsReactor(store_, context, *request);
}

grpc::ServerWriteReactor<v1::EventRecord>* EventLogService::SubscribeEvents(
    grpc::CallbackServerContext* /*context*/, const v1::SubscribeEventsRequest* request) {
  return subscriptions_.Subscribe(*request);
}

grpc::ServerUnaryReactor* EventLogService::GetTaskHistory(grpc::CallbackServerContext* context,
                                                          const v1::GetTaskHistoryRequest* request,
                                                          v1::GetTaskHistoryResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (absl::Status s = domain::ValidateId("task_id", request->task_id()); !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  absl::StatusOr<std::vector<store::HistoryEntry>> history =
      store_->GetTaskHistory(request->task_id());
  if (!history.ok()) {
    reactor->Finish(ToGrpcStatus(history.status()));
    return reactor;
  }
  response->set_task_id(request->task_id());
  response->mutable_entries()->Reserve(static_cast<int>(history->size()));
  for (store::HistoryEntry& entry : *history) {
    v1::TaskHistoryEntry* out = response->add_entries();
    *out->mutable_event() = std::move(entry.event);
    out->set_status_before(entry.status_before);
    out->set_status_after(entry.status_after);
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* EventLogService::VerifyLog(grpc::CallbackServerContext* context,
                                                     const v1::VerifyLogRequest* request,
                                                     v1::VerifyLogResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  store::VerifyOptions options;
  options.to_position = request->to_position();
  options.expected_head_hash = request->expected_head_hash();
  // INVALID_ARGUMENT for a hash that is not 32 bytes; a mismatch is a report, not an error.
  absl::StatusOr<store::VerifyReport> report = store_->VerifyLog(options);
  if (!report.ok()) {
    reactor->Finish(ToGrpcStatus(report.status()));
    return reactor;
  }
  response->set_ok(report->ok);
  response->set_events_checked(report->events_checked);
  response->set_first_bad_position(report->first_bad_position);
  response->set_problem(std::move(report->problem));
  response->set_head_hash(std::move(report->head_hash));
  response->set_head_position(report->head_position);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace outreach::server
