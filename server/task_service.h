// TaskService over the gRPC callback API.
//
// Each handler resolves the caller (x-actor metadata), translates the request (server/convert.h),
// and either reads the store inline (GetTask, ListTasks) or submits the command to the store's
// writer and finishes the call from the writer's callback after the fsync, so that no gRPC
// thread ever waits on a disk sync. The store must outlive the service; thread-safe.
//
// When a write comes back UNAVAILABLE and the store says it refuses writes (a failed write or
// sync latched in EventStore::WriteHealth), the service reports it through `on_writes_refused`,
// on the writer thread, before the call finishes: the check costs nothing on the success path.
#pragma once

#include <functional>
#include <string>
#include <utility>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "outreach/v1/task_service.grpc.pb.h"
#include "store/event_store.h"

namespace outreach::server {

// The caller's actor from its x-actor metadata (see ResolveActor); INVALID_ARGUMENT naming
// x-actor if it is malformed or sent more than once.
absl::StatusOr<std::string> ActorOf(const grpc::CallbackServerContext& context);

class TaskService final : public v1::TaskService::CallbackService {
 public:
  // Called with EventStore::WriteHealth() after a write the store refused; it must be cheap and
  // must not wait on the store. May be empty.
  using WritesRefusedCallback = std::function<void(const absl::Status& why)>;

  explicit TaskService(store::EventStore* store, WritesRefusedCallback on_writes_refused = {})
      : store_(store), on_writes_refused_(std::move(on_writes_refused)) {}
  TaskService(const TaskService&) = delete;
  TaskService& operator=(const TaskService&) = delete;

  grpc::ServerUnaryReactor* CreateTask(grpc::CallbackServerContext* context,
                                       const v1::CreateTaskRequest* request,
                                       v1::Task* response) override;
  grpc::ServerUnaryReactor* GetTask(grpc::CallbackServerContext* context,
                                    const v1::GetTaskRequest* request,
                                    v1::Task* response) override;
  grpc::ServerUnaryReactor* ListTasks(grpc::CallbackServerContext* context,
                                      const v1::ListTasksRequest* request,
                                      v1::ListTasksResponse* response) override;
  grpc::ServerUnaryReactor* LogContact(grpc::CallbackServerContext* context,
                                       const v1::LogContactRequest* request,
                                       v1::Task* response) override;

 private:
  // Hands `command` to the writer; the reactor finishes with the resulting task, or the error.
  void SubmitAndFinish(grpc::ServerUnaryReactor* reactor, v1::Task* response,
                       domain::Command command, std::string fingerprint);
  // After an UNAVAILABLE write: tells on_writes_refused_ if the store has latched a write error.
  void NoteRefusedWrite() const;

  store::EventStore* const store_;
  const WritesRefusedCallback on_writes_refused_;
};

}  // namespace outreach::server
