// TaskService over the gRPC callback API.
//
// Each handler first authorizes the call (server/call_security.h: the role table, the actor
// and x-on-behalf-of), translates the request (server/convert.h), and either reads the store
// inline (GetTask, ListTasks) or submits the command to the store's writer and finishes the call
// from the writer's callback after the fsync, so that no gRPC thread ever waits on a disk sync.
// The reads return their data only from the access log's callback, once the access record
// (which tasks, to whom) is durable. The store and the CallSecurity must outlive the service;
// thread-safe.
//
// GetTask also travels in time (as_of_version, as_of_time), folding the task's stream.
//
// Practices (server/auth.h, a principal limited to practices): GetTask of another practice's
// task, and ListTasks naming another practice, are PERMISSION_DENIED; an unfiltered ListTasks
// lists only the caller's practices. Mutations carry the caller's practices into the command
// (domain::CommandMeta::practices), so the rules refuse another practice's task on the state
// they decide with; a replayed result is checked again here.
//
// Routing by practice (x-practice-id, README "Scaling"): a call whose x-practice-id is not the
// practice its request names (CreateTask, ListTasks with practice_id, ResolveTasks) or the
// practice of the task it names (GetTask, LogContact, AssignTask, ClaimTask, CancelTask) is
// INVALID_ARGUMENT, before anything is written (writes: WriteCalls::Prepare). An unfiltered
// ListTasks names no practice and lists the shard's tasks.
//
// Every mutation goes through WriteCalls (server/write_call.h), with PatientService's: a server
// started read-only for investigation (outreachd --read-only-investigation) refuses it with
// FAILED_PRECONDITION kReadOnlyInvestigation before looking at the request, and a write the
// store refuses because of a latched write error is reported through `on_writes_refused`.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "outreach/v1/task_service.grpc.pb.h"
#include "server/call_security.h"
#include "server/write_call.h"
#include "store/event_store.h"

namespace outreach::server {

class TaskService final : public v1::TaskService::CallbackService {
 public:
  using Options = WriteOptions;  // server/write_call.h

  TaskService(store::EventStore* store, const CallSecurity* security, Options options)
      : store_(store), security_(security), writes_(store, security, std::move(options)) {}
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
  grpc::ServerUnaryReactor* AssignTask(grpc::CallbackServerContext* context,
                                       const v1::AssignTaskRequest* request,
                                       v1::Task* response) override;
  grpc::ServerUnaryReactor* ClaimTask(grpc::CallbackServerContext* context,
                                      const v1::ClaimTaskRequest* request,
                                      v1::Task* response) override;
  grpc::ServerUnaryReactor* CancelTask(grpc::CallbackServerContext* context,
                                       const v1::CancelTaskRequest* request,
                                       v1::Task* response) override;
  grpc::ServerUnaryReactor* ResolveTasks(grpc::CallbackServerContext* context,
                                         const v1::ResolveTasksRequest* request,
                                         v1::ResolveTasksResponse* response) override;

 private:
  // The steps of every mutation that answers with the whole task (LogContact, AssignTask,
  // ClaimTask, CancelTask): WriteCalls::Prepare, then submit, recording the answer as a read of
  // patient data.
  template <class Request>
  grpc::ServerUnaryReactor* MutateAndRecord(grpc::CallbackServerContext* context,
                                            absl::string_view method, const Request& request,
                                            v1::Task* response);
  // A write whose response returns patient data the caller did not just send: its access
  // record is appended once the write is durable, and the response sent once the record is.
  struct RecordedRead {
    const grpc::CallbackServerContext* context;
    absl::string_view method;
  };
  // Hands `command` to the writer; the reactor finishes with the resulting task (after its
  // access record, with `read`), or the error. A write whose record cannot be appended is
  // durable all the same, but the call fails UNAVAILABLE and returns nothing. A result whose
  // task is of a practice `caller` may not see (a replay after its practices narrowed) is
  // PERMISSION_DENIED.
  void SubmitAndFinish(grpc::ServerUnaryReactor* reactor, v1::Task* response,
                       domain::Command command, std::string fingerprint, Caller caller,
                       std::optional<RecordedRead> read = std::nullopt);
  // Appends the read's access record, then finishes the call: OK (sending the response) once it
  // is durable, UNAVAILABLE (sending nothing) if it cannot be recorded.
  grpc::ServerUnaryReactor* FinishAfterRecord(grpc::CallbackServerContext* context,
                                              const Caller& caller, absl::string_view method,
                                              CallSecurity::Access access);
  // The task now, or as of the request's as_of_version / as_of_time.
  absl::StatusOr<v1::Task> ReadTask(const v1::GetTaskRequest& request) const;

  store::EventStore* const store_;
  const CallSecurity* const security_;
  const WriteCalls writes_;
};

}  // namespace outreach::server
