#include "server/event_log_service.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "domain/validation.h"
#include "server/convert.h"
#include "server/grpc_status.h"
#include "store/consumer_checkpoints.h"

namespace outreach::server {
namespace {

constexpr absl::string_view kReadEventsMethod = "/outreach.v1.EventLog/ReadEvents";
constexpr absl::string_view kSubscribeEventsMethod = "/outreach.v1.EventLog/SubscribeEvents";
constexpr absl::string_view kVerifyLogMethod = "/outreach.v1.EventLog/VerifyLog";
constexpr absl::string_view kGetTaskHistoryMethod = "/outreach.v1.EventLog/GetTaskHistory";
constexpr absl::string_view kReadAccessLogMethod = "/outreach.v1.EventLog/ReadAccessLog";
constexpr absl::string_view kFollowMethod = "/outreach.v1.EventLog/Follow";
constexpr absl::string_view kAckEventsMethod = "/outreach.v1.EventLog/AckEvents";
constexpr absl::string_view kListConsumersMethod = "/outreach.v1.EventLog/ListConsumers";

// What a caller limited to practices may read of the log: one existing task of its practices
// (`task_id` already validated). The whole log, or a task that does not exist yet (it could be
// created in another practice while the call follows it), holds other practices' events:
// PERMISSION_DENIED, NOT_FOUND. Unlimited callers read anything.
absl::Status CheckLogScope(const store::EventStore& store, const Caller& caller,
                           absl::string_view task_id) {
  if (!caller.limited()) return absl::OkStatus();
  if (task_id.empty()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "task_id: principal ", caller.principal, " is limited to practices ",
        absl::StrJoin(caller.practices, ", "),
        ": name a task of one of them (the whole log holds every practice's events)"));
  }
  absl::StatusOr<v1::Task> task = store.GetTask(task_id);
  if (!task.ok()) return task.status();
  return CheckPracticeAccess(caller, task->practice_id());
}

// ReadAccessLog: streams the access records matching the request, page by page (a time-ordered
// read from the last record's time, skipping the records already sent at that time), one write
// in flight at a time. Reading the audit trail is itself recorded: each page is appended to the
// access log (rpc ReadAccessLog, the request, the page's sequences and count) before any of it is
// sent. The stream ends at the head it started from, so it never returns its own records.
// Deletes itself in OnDone.
class ReadAccessLogReactor final : public grpc::ServerWriteReactor<v1::AccessRecord> {
 public:
  static constexpr uint64_t kPage = 256;

  ReadAccessLogReactor(const CallSecurity* security, store::AccessLog* log,
                       grpc::CallbackServerContext* context,
                       const v1::ReadAccessLogRequest& request)
      : security_(security), log_(log), context_(context), filter_(FilterText(request)) {
    absl::StatusOr<Caller> caller = security->Authorize(*context, kReadAccessLogMethod);
    if (!caller.ok()) {
      Finish(ToGrpcStatus(caller.status()));
      return;
    }
    caller_ = *std::move(caller);
    if (caller_.limited()) {
      Finish(ToGrpcStatus(absl::PermissionDeniedError(absl::StrCat(
          "principal ", caller_.principal,
          " is limited to practices: the access log holds every practice's reads"))));
      return;
    }
    if (absl::Status s = Parse(request); !s.ok()) {
      Finish(ToGrpcStatus(s));
      return;
    }
    if (log_ == nullptr) {
      Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "this database has no access log"));
      return;
    }
    last_wanted_ = log_->HeadSequence();
    WriteNext();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "stream cancelled"));
      return;
    }
    WriteNext();
  }

  void OnDone() override { delete this; }

 private:
  absl::Status Parse(const v1::ReadAccessLogRequest& request) {
    if (request.has_from_time()) {
      absl::StatusOr<absl::Time> from = domain::ParseTimestamp("from_time", request.from_time());
      if (!from.ok()) return from.status();
      query_.from = *from;
    }
    if (request.has_to_time()) {
      absl::StatusOr<absl::Time> to = domain::ParseTimestamp("to_time", request.to_time());
      if (!to.ok()) return to.status();
      query_.to = *to;
    }
    if (request.has_from_time() && request.has_to_time() && query_.from > query_.to) {
      return absl::InvalidArgumentError("from_time: after to_time (want from_time <= to_time)");
    }
    if (absl::Status s = domain::ValidateOptionalId("principal", request.principal()); !s.ok()) {
      return s;
    }
    query_.principal = request.principal();
    remaining_ = request.max_count();
    unlimited_ = request.max_count() == 0;
    return absl::OkStatus();
  }

  void WriteNext() {
    if (index_ < page_.size()) {
      StartWrite(&page_[index_++]);
      return;
    }
    if (context_->IsCancelled()) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "stream cancelled"));
      return;
    }
    if ((!unlimited_ && remaining_ == 0) || exhausted_) {
      Finish(grpc::Status::OK);
      return;
    }
    if (absl::Status s = security_->Recheck(caller_, kReadAccessLogMethod); !s.ok()) {
      Finish(ToGrpcStatus(s));
      return;
    }
    if (absl::Status s = ReadPage(); !s.ok()) {
      Finish(ToGrpcStatus(s));
      return;
    }
    if (page_.empty()) {
      Finish(grpc::Status::OK);
      return;
    }
    // The page is recorded before any of it is sent; the record's callback sends the first.
    CallSecurity::Access access;
    access.filter = absl::StrCat(filter_, filter_.empty() ? "" : " ", "sequences ",
                                 page_.front().sequence(), "..", page_.back().sequence());
    access.count = page_.size();
    security_->RecordAccess(caller_, *context_, kReadAccessLogMethod, std::move(access),
                            [this](absl::Status recorded) {
                              if (!recorded.ok()) {
                                Finish(ToGrpcStatus(recorded));
                                return;
                              }
                              StartWrite(&page_[index_++]);
                            });
  }

  // The next page after the last record sent. Records sent at last_time_ come first in a read
  // from last_time_ (time order, then sequence order); they are skipped.
  absl::Status ReadPage() {
    store::AccessQuery query = query_;
    const uint64_t want = unlimited_ ? kPage : std::min(remaining_, kPage);
    if (sent_any_) {
      query.from = last_time_;
      query.limit = want + sent_at_last_time_;
    } else {
      query.limit = want;
    }
    absl::StatusOr<std::vector<store::StoredAccessRecord>> records = log_->Read(query);
    if (!records.ok()) return records.status();
    exhausted_ = records->size() < query.limit;
    page_.clear();
    index_ = 0;
    for (store::StoredAccessRecord& stored : *records) {
      const storage::v1::AccessRecord& r = stored.record;
      if (sent_any_ && r.sequence() <= last_sequence_) continue;
      if (r.sequence() > last_wanted_) continue;  // appended after this call started
      const absl::Time time = domain::FromProto(r.time());
      if (sent_any_ && time == last_time_) {
        ++sent_at_last_time_;
      } else {
        last_time_ = time;
        sent_at_last_time_ = 1;
      }
      sent_any_ = true;
      last_sequence_ = r.sequence();
      page_.push_back(ToWireAccessRecord(std::move(stored)));
      if (!unlimited_ && --remaining_ == 0) break;
    }
    return absl::OkStatus();
  }

  const CallSecurity* const security_;
  store::AccessLog* const log_;
  grpc::CallbackServerContext* const context_;
  const std::string filter_;  // the request as text, for this call's own access records
  Caller caller_;
  store::AccessQuery query_;
  uint64_t last_wanted_ = 0;  // the head when the call started
  uint64_t remaining_ = 0;
  bool unlimited_ = true;
  bool exhausted_ = false;
  bool sent_any_ = false;
  absl::Time last_time_;
  uint64_t last_sequence_ = 0;
  uint64_t sent_at_last_time_ = 0;
  std::vector<v1::AccessRecord> page_;
  std::size_t index_ = 0;
};


// ReadEvents: streams events batch by batch, one write in flight at a time, the next batch read
// from the store only when the previous one has been written. gRPC serializes the reactions of one
// reactor, so the members need no lock. Deletes itself in OnDone.
class ReadEventsReactor final : public grpc::ServerWriteReactor<v1::EventRecord> {
 public:
  ReadEventsReactor(const store::EventStore* store, const CallSecurity* security,
                    grpc::CallbackServerContext* context, const v1::ReadEventsRequest& request)
      : store_(store),
        security_(security),
        context_(context),
        task_id_(request.task_id()),
        filter_(FilterText(request)),
        next_position_(request.from_position()),
        remaining_(request.max_count()),
        unlimited_(request.max_count() == 0) {
    absl::StatusOr<Caller> caller = security_->Authorize(*context, kReadEventsMethod);
    if (!caller.ok()) {
      Finish(ToGrpcStatus(caller.status()));
      return;
    }
    caller_ = *std::move(caller);
    if (absl::Status s = domain::ValidateOptionalId("task_id", task_id_); !s.ok()) {
      Finish(ToGrpcStatus(s));
      return;
    }
    if (absl::Status s = CheckLogScope(*store_, caller_, task_id_); !s.ok()) {
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
      if (absl::Status s = security_->Recheck(caller_, kReadEventsMethod); !s.ok()) {
        Finish(ToGrpcStatus(s));
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
      // Each batch is recorded before any of it is written: the access log's callback starts
      // the first write (or fails the call), and nothing else drives the reactor meanwhile.
      security_->RecordAccess(caller_, *context_, kReadEventsMethod,
                              AccessOfEvents(batch_, filter_), [this](absl::Status recorded) {
                                if (!recorded.ok()) {
                                  Finish(ToGrpcStatus(recorded));
                                  return;
                                }
                                StartWrite(&batch_[index_++]);
                              });
      return;
    }
    StartWrite(&batch_[index_++]);
  }

  const store::EventStore* const store_;
  const CallSecurity* const security_;
  grpc::CallbackServerContext* const context_;
  Caller caller_;
  const std::string task_id_;
  const std::string filter_;
  uint64_t next_position_;
  uint64_t remaining_;  // events still to send, when !unlimited_
  const bool unlimited_;
  std::vector<v1::EventRecord> batch_;
  std::size_t index_ = 0;
};

// Follow's start: from_position, or with a consumer and from_position 0 the position after the
// consumer's checkpoint (1 for a consumer that never acked). INVALID_ARGUMENT for a malformed
// consumer name.
absl::StatusOr<uint64_t> FollowStart(const store::EventStore& store,
                                     const v1::FollowRequest& request) {
  if (absl::Status s = domain::ValidateOptionalId("consumer", request.consumer()); !s.ok()) {
    return s;
  }
  if (request.from_position() != 0 || request.consumer().empty()) {
    return std::max<uint64_t>(request.from_position(), 1);
  }
  if (store.consumers() == nullptr) {
    return absl::FailedPreconditionError("this database has no consumer checkpoints");
  }
  absl::StatusOr<std::optional<store::ConsumerCheckpoint>> checkpoint =
      store.consumers()->Get(request.consumer());
  if (!checkpoint.ok()) return checkpoint.status();
  return checkpoint->has_value() ? (*checkpoint)->position + 1 : 1;
}

}  // namespace

grpc::ServerWriteReactor<v1::FollowMessage>* EventLogService::Follow(
    grpc::CallbackServerContext* context, const v1::FollowRequest* request) {
  absl::StatusOr<Caller> caller = security_->Authorize(*context, kFollowMethod);
  SubscriptionSpec spec;
  spec.task_id = request->task_id();
  spec.event_types.assign(request->event_types().begin(), request->event_types().end());
  spec.filter = FilterText(*request);
  if (caller.ok()) {
    absl::StatusOr<uint64_t> start = FollowStart(*store_, *request);
    if (start.ok()) {
      spec.from_position = *start;
    } else {
      caller = start.status();
    }
  }
  // (A malformed task_id is the subscription's to refuse, INVALID_ARGUMENT.)
  if (caller.ok() && domain::ValidateOptionalId("task_id", request->task_id()).ok()) {
    if (absl::Status s = CheckLogScope(*store_, *caller, request->task_id()); !s.ok()) {
      caller = s;
    }
  }
  return subscriptions_.Follow(context, std::move(caller), std::move(spec));
}

grpc::ServerUnaryReactor* EventLogService::AckEvents(grpc::CallbackServerContext* context,
                                                     const v1::AckEventsRequest* request,
                                                     v1::AckEventsResponse* response) {
  absl::StatusOr<Caller> caller = security_->Authorize(*context, kAckEventsMethod);
  if (!caller.ok()) return FinishNow(context, caller.status());
  if (absl::Status s = domain::ValidateId("consumer", request->consumer()); !s.ok()) {
    return FinishNow(context, s);
  }
  if (request->position() == 0) {
    return FinishNow(context, absl::InvalidArgumentError("position: must be at least 1"));
  }
  if (store_->consumers() == nullptr) {
    return FinishNow(context,
                     absl::FailedPreconditionError("this database has no consumer checkpoints"));
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // Finished from the checkpoint writer's completion thread, once the checkpoint is durable.
  store_->consumers()->Ack(request->consumer(), request->position(),
                           [reactor, response](absl::StatusOr<store::AckResult> acked) {
                             if (!acked.ok()) {
                               reactor->Finish(ToGrpcStatus(acked.status()));
                               return;
                             }
                             response->set_checkpoint(acked->checkpoint);
                             response->set_advanced(acked->advanced);
                             reactor->Finish(grpc::Status::OK);
                           });
  return reactor;
}

grpc::ServerUnaryReactor* EventLogService::ListConsumers(grpc::CallbackServerContext* context,
                                                         const v1::ListConsumersRequest* /*req*/,
                                                         v1::ListConsumersResponse* response) {
  absl::StatusOr<Caller> caller = security_->Authorize(*context, kListConsumersMethod);
  if (!caller.ok()) return FinishNow(context, caller.status());
  const uint64_t head = store_->HeadPosition();
  response->set_head_position(head);
  if (store_->consumers() == nullptr) return FinishNow(context, absl::OkStatus());
  absl::StatusOr<std::vector<store::ConsumerCheckpoint>> listed = store_->consumers()->List();
  if (!listed.ok()) return FinishNow(context, listed.status());
  for (const store::ConsumerCheckpoint& checkpoint : *listed) {
    v1::ConsumerInfo* info = response->add_consumers();
    info->set_name(checkpoint.name);
    info->set_checkpoint(checkpoint.position);
    info->set_lag(head > checkpoint.position ? head - checkpoint.position : 0);
    *info->mutable_last_ack_time() = domain::ToProto(checkpoint.acked_at);
  }
  return FinishNow(context, absl::OkStatus());
}

grpc::ServerWriteReactor<v1::EventRecord>* EventLogService::ReadEvents(
    grpc::CallbackServerContext* context, const v1::ReadEventsRequest* request) {
  return new ReadEventsReactor(store_, security_, context, *request);
}

grpc::ServerWriteReactor<v1::EventRecord>* EventLogService::SubscribeEvents(
    grpc::CallbackServerContext* context, const v1::SubscribeEventsRequest* request) {
  absl::StatusOr<Caller> caller = security_->Authorize(*context, kSubscribeEventsMethod);
  // (A malformed task_id is the subscription's to refuse, INVALID_ARGUMENT.)
  if (caller.ok() && domain::ValidateOptionalId("task_id", request->task_id()).ok()) {
    if (absl::Status s = CheckLogScope(*store_, *caller, request->task_id()); !s.ok()) {
      caller = s;
    }
  }
  return subscriptions_.Subscribe(context, std::move(caller), *request);
}

grpc::ServerWriteReactor<v1::AccessRecord>* EventLogService::ReadAccessLog(
    grpc::CallbackServerContext* context, const v1::ReadAccessLogRequest* request) {
  return new ReadAccessLogReactor(security_, store_->access_log(), context, *request);
}

grpc::ServerUnaryReactor* EventLogService::GetTaskHistory(grpc::CallbackServerContext* context,
                                                          const v1::GetTaskHistoryRequest* request,
                                                          v1::GetTaskHistoryResponse* response) {
  absl::StatusOr<Caller> caller = security_->Authorize(*context, kGetTaskHistoryMethod);
  if (!caller.ok()) return FinishNow(context, caller.status());
  if (absl::Status s = domain::ValidateId("task_id", request->task_id()); !s.ok()) {
    return FinishNow(context, s);
  }
  if (absl::Status s = CheckLogScope(*store_, *caller, request->task_id()); !s.ok()) {
    return FinishNow(context, s);
  }
  absl::StatusOr<std::vector<store::HistoryEntry>> history =
      store_->GetTaskHistory(request->task_id());
  if (!history.ok()) return FinishNow(context, history.status());
  response->set_task_id(request->task_id());
  response->mutable_entries()->Reserve(static_cast<int>(history->size()));
  for (store::HistoryEntry& entry : *history) {
    v1::TaskHistoryEntry* out = response->add_entries();
    *out->mutable_event() = std::move(entry.event);
    out->set_status_before(entry.status_before);
    out->set_status_after(entry.status_after);
  }
  CallSecurity::Access access;
  access.task_ids.push_back(request->task_id());
  access.count = static_cast<uint64_t>(response->entries_size());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // The response is sent only once its access record is durable.
  security_->RecordAccess(*caller, *context, kGetTaskHistoryMethod, std::move(access),
                          [reactor](absl::Status recorded) {
                            reactor->Finish(recorded.ok() ? grpc::Status::OK
                                                          : ToGrpcStatus(recorded));
                          });
  return reactor;
}

grpc::ServerUnaryReactor* EventLogService::VerifyLog(grpc::CallbackServerContext* context,
                                                     const v1::VerifyLogRequest* request,
                                                     v1::VerifyLogResponse* response) {
  absl::StatusOr<Caller> caller = security_->Authorize(*context, kVerifyLogMethod);
  if (!caller.ok()) return FinishNow(context, caller.status());
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
