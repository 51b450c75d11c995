// TaskService over the gRPC callback API.
//
// Each handler resolves the caller (x-actor metadata), translates the request (server/convert.h),
// and either reads the store inline (GetTask, ListTasks) or submits the command to the store's
// writer and finishes the call from the writer's callback after the fsync, so that no gRPC
// thread ever waits on a disk sync. The store must outlive the service; thread-safe.
#pragma once

#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "outreach/v1/task_service.grpc.pb.h"
#include "store/event_store.h"

namespace outreach::server {

// The caller's actor from its x-actor metadata (see ResolveActor); INVALID_ARGUMENT naming
// x-actor if it is malformed or sent more than once.
absl::StatusOr<std::string> ActorOf(const grpc::CallbackServerContext& context);

class TaskService final : public v1::TaskService::CallbackService {
 public:
  explicit TaskService(store::EventStore* store) : store_(store) {}
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

  store::EventStore* const store_;
};

}  // namespace outreach::server
