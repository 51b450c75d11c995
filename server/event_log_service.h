// EventLog over the gRPC callback API: ReadEvents streams the global log (or one task's stream)
// in position order; VerifyLog re-checks the hash chain. Both only read the store, which must
// outlive the service. Thread-safe.
#pragma once

#include <cstdint>

#include <grpcpp/grpcpp.h>

#include "outreach/v1/event_log.grpc.pb.h"
#include "store/event_store.h"

namespace outreach::server {

class EventLogService final : public v1::EventLog::CallbackService {
 public:
  // How many events ReadEvents takes from the store at a time: bounds the memory of one stream.
  static constexpr uint64_t kReadBatch = 256;

  explicit EventLogService(store::EventStore* store) : store_(store) {}
  EventLogService(const EventLogService&) = delete;
  EventLogService& operator=(const EventLogService&) = delete;

  grpc::ServerWriteReactor<v1::EventRecord>* ReadEvents(
      grpc::CallbackServerContext* context, const v1::ReadEventsRequest* request) override;
  grpc::ServerUnaryReactor* VerifyLog(grpc::CallbackServerContext* context,
                                      const v1::VerifyLogRequest* request,
                                      v1::VerifyLogResponse* response) override;

 private:
  store::EventStore* const store_;
};

}  // namespace outreach::server
