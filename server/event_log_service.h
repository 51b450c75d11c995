// EventLog over the gRPC callback API, for auditors and consumers of the global log:
//  - ReadEvents streams the log (or one task's stream) in position order, and ends at the head.
//  - SubscribeEvents catches up from a position, then follows the log live (see
//    server/subscribe_events.h); StopSubscriptions ends the open ones at server shutdown.
//  - GetTaskHistory lists a task's events with its status before and after each.
//  - VerifyLog re-checks the hash chain, optionally up to a position and against a kept hash.
//  - Follow is SubscribeEvents for durable consumers, with caught_up messages, resuming after a
//    named consumer's checkpoint; AckEvents stores a checkpoint (store/consumer_checkpoints.h),
//    ListConsumers lists them with their lag. Checkpoints hold no patient data: AckEvents and
//    ListConsumers record no access; Follow records its pages like SubscribeEvents.
//  - ReadAccessLog streams the read-access audit log (store/access_log.h) by time range and
//    principal.
// Every handler first authorizes the call (server/call_security.h). A principal limited to
// practices (server/auth.h) reads one existing task of its practices at a time: ReadEvents and
// SubscribeEvents without a task_id, and ReadAccessLog, are PERMISSION_DENIED for it, as is any
// of them (GetTaskHistory too) naming another practice's task; a task that does not exist is
// NOT_FOUND. VerifyLog returns no patient data and stays open to it. ReadEvents and
// SubscribeEvents record one access record per page of events (the distinct tasks, the request
// and the positions, the count) before writing any of the page; GetTaskHistory records one
// before sending. VerifyLog returns no patient data and ReadAccessLog only the audit trail: they
// record nothing. Everything here only reads the store, which must outlive the service, as must
// the CallSecurity. Thread-safe.
#pragma once

#include <cstdint>

#include <grpcpp/grpcpp.h>

#include "outreach/v1/event_log.grpc.pb.h"
#include "server/call_security.h"
#include "server/subscribe_events.h"
#include "store/event_store.h"

namespace outreach::server {

class EventLogService final : public v1::EventLog::CallbackService {
 public:
  // How many events ReadEvents takes from the store at a time: bounds the memory of one stream.
  static constexpr uint64_t kReadBatch = 256;

  EventLogService(store::EventStore* store, const CallSecurity* security)
      : store_(store), security_(security), subscriptions_(store, security) {}
  EventLogService(const EventLogService&) = delete;
  EventLogService& operator=(const EventLogService&) = delete;

  grpc::ServerWriteReactor<v1::EventRecord>* ReadEvents(
      grpc::CallbackServerContext* context, const v1::ReadEventsRequest* request) override;
  grpc::ServerWriteReactor<v1::EventRecord>* SubscribeEvents(
      grpc::CallbackServerContext* context, const v1::SubscribeEventsRequest* request) override;
  grpc::ServerWriteReactor<v1::FollowMessage>* Follow(grpc::CallbackServerContext* context,
                                                      const v1::FollowRequest* request) override;
  grpc::ServerUnaryReactor* AckEvents(grpc::CallbackServerContext* context,
                                      const v1::AckEventsRequest* request,
                                      v1::AckEventsResponse* response) override;
  grpc::ServerUnaryReactor* ListConsumers(grpc::CallbackServerContext* context,
                                          const v1::ListConsumersRequest* request,
                                          v1::ListConsumersResponse* response) override;
  grpc::ServerWriteReactor<v1::AccessRecord>* ReadAccessLog(
      grpc::CallbackServerContext* context, const v1::ReadAccessLogRequest* request) override;
  grpc::ServerUnaryReactor* GetTaskHistory(grpc::CallbackServerContext* context,
                                           const v1::GetTaskHistoryRequest* request,
                                           v1::GetTaskHistoryResponse* response) override;
  grpc::ServerUnaryReactor* VerifyLog(grpc::CallbackServerContext* context,
                                      const v1::VerifyLogRequest* request,
                                      v1::VerifyLogResponse* response) override;

  // Server shutdown: ends every open subscription (UNAVAILABLE) and refuses new ones, so that
  // draining the server does not wait for streams that never end by themselves. Returns at once.
  void StopSubscriptions() { subscriptions_.StopAll(); }
  // After a reload of the principals: open subscriptions re-check their callers (see
  // SubscriptionHub::RecheckAll). ReadEvents and ReadAccessLog re-check before each page.
  void RecheckSubscriptions() { subscriptions_.RecheckAll(); }
  // Subscriptions still open.
  std::size_t OpenSubscriptions() const { return subscriptions_.OpenCount(); }
  std::vector<SubscriptionHub::ConsumerLag> ConsumerLags(uint64_t head) const {
    return subscriptions_.ConsumerLags(head);
  }

 private:
  store::EventStore* const store_;
  const CallSecurity* const security_;
  SubscriptionHub subscriptions_;
};

}  // namespace outreach::server
