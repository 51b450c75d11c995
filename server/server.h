// OutreachServer: the gRPC server that serves TaskService and EventLog over one EventStore, with
// gRPC health checking and server reflection.
//
// Start() binds and starts serving with every health status NOT_SERVING, so that the caller can
// finish recovery (e.g. EventStore::ExpireDue) before calling SetServing(true). The store must
// outlive the server. Shutdown() (or the destructor) drains in-flight calls. SetServing is
// thread-safe; Start, Shutdown and destruction belong to the owner's thread.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/event_log_service.h"
#include "server/task_service.h"
#include "store/event_store.h"

namespace outreach::server {

struct ServerOptions {
  // host:port; port 0 picks a free port (see OutreachServer::port()).
  std::string listen_address = "127.0.0.1:50051";
  int max_receive_message_bytes = 4 << 20;
  int max_send_message_bytes = 16 << 20;
};

class OutreachServer {
 public:
  // The names whose health status SetServing sets, besides the overall "".
  static constexpr const char* kServiceNames[] = {"outreach.v1.TaskService",
                                                  "outreach.v1.EventLog"};

  // UNAVAILABLE if the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<OutreachServer>> Start(const ServerOptions& options,
                                                               store::EventStore* store);

  OutreachServer(const OutreachServer&) = delete;
  OutreachServer& operator=(const OutreachServer&) = delete;
  ~OutreachServer();

  // The bound port, and "host:port" with it (useful when listening on port 0).
  int port() const { return port_; }
  const std::string& address() const { return address_; }

  // Sets the health status of "" and of every service in kServiceNames.
  void SetServing(bool serving);

  // Reports NOT_SERVING, stops accepting calls, waits up to `deadline` for in-flight calls and
  // then cancels the rest. Idempotent.
  void Shutdown(absl::Duration deadline);

 private:
  OutreachServer(store::EventStore* store, std::string address);

  TaskService task_service_;
  EventLogService event_log_service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace outreach::server
