// TaskService over the gRPC callback API.
//
// Each handler resolves the caller (x-actor metadata), translates the request (server/convert.h),
// and either reads the store inline (GetTask, ListTasks) or submits the command to the store's
// writer and finishes the call from the writer's callback after the fsync, so that no gRPC
// thread ever waits on a disk sync. The store must outlive the service; thread-safe.
//
// GetTask also travels in time (as_of_version, as_of_time), folding the task's stream.
//
// A server started read-only for investigation (outreachd --read-only-investigation) refuses
// every mutation with FAILED_PRECONDITION kReadOnlyInvestigation before looking at the request.
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

// The message of every mutation refused by a server started read-only for investigation.
inline constexpr char kReadOnlyInvestigation[] = "server started read-only for investigation";

class TaskService final : public v1::TaskService::CallbackService {
 public:
  // Called with EventStore::WriteHealth() after a write the store refused; it must be cheap and
  // must not wait on the store. May be empty.
  using WritesRefusedCallback = std::function<void(const absl::Status& why)>;

  struct Options {
    WritesRefusedCallback on_writes_refused;  // may be empty
    bool read_only_investigation = false;     // refuse every mutation (see above)
  };

  TaskService(store::EventStore* store, Options options)
      : store_(store),
        on_writes_refused_(std::move(options.on_writes_refused)),
        read_only_investigation_(options.read_only_investigation) {}
  explicit TaskService(store::EventStore* store) : TaskService(store, Options()) {}
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
  // The task now, or as of the request's as_of_version / as_of_time.
  absl::StatusOr<v1::Task> ReadTask(const v1::GetTaskRequest& request) const;
  // FAILED_PRECONDITION kReadOnlyInvestigation on a read-only server, else OK.
  absl::Status CheckWritable() const;
  // After an UNAVAILABLE write: tells on_writes_refused_ if the store has latched a write error.
  void NoteRefusedWrite() const;

  store::EventStore* const store_;
  const WritesRefusedCallback on_writes_refused_;
  const bool read_only_investigation_;
};

}  // namespace outreach::server
