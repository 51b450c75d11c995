#include "server/task_service.h"

#include <iterator>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "domain/validation.h"
#include "server/convert.h"
#include "server/grpc_status.h"

namespace outreach::server {
namespace {

// Full method names: the keys of the role table (server/auth.cc), the access records' rpc, and
// part of the idempotency fingerprint, so a request_id used for one method never matches a
// request to another.
constexpr absl::string_view kCreateTaskMethod = "/outreach.v1.TaskService/CreateTask";
constexpr absl::string_view kLogContactMethod = "/outreach.v1.TaskService/LogContact";
constexpr absl::string_view kGetTaskMethod = "/outreach.v1.TaskService/GetTask";
constexpr absl::string_view kListTasksMethod = "/outreach.v1.TaskService/ListTasks";
constexpr absl::string_view kAssignTaskMethod = "/outreach.v1.TaskService/AssignTask";
constexpr absl::string_view kClaimTaskMethod = "/outreach.v1.TaskService/ClaimTask";
constexpr absl::string_view kCancelTaskMethod = "/outreach.v1.TaskService/CancelTask";
constexpr absl::string_view kResolveTasksMethod = "/outreach.v1.TaskService/ResolveTasks";

}  // namespace

grpc::ServerUnaryReactor* TaskService::CreateTask(grpc::CallbackServerContext* context,
                                                  const v1::CreateTaskRequest* request,
                                                  v1::Task* response) {
  auto write = writes_.Prepare(*context, kCreateTaskMethod, *request);
  if (!write.ok()) return FinishNow(context, write.status());
  // A principal limited to practices creates only in them: the rules refuse another practice.
  // The response is the task as the caller just created it: nothing it did not send, so no
  // access record (README "The access log").
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  SubmitAndFinish(reactor, response, std::move(write->command), std::move(write->fingerprint),
                  std::move(write->caller));
  return reactor;
}

grpc::ServerUnaryReactor* TaskService::GetTask(grpc::CallbackServerContext* context,
                                               const v1::GetTaskRequest* request,
                                               v1::Task* response) {
  absl::StatusOr<Caller> caller = security_->Authorize(*context, kGetTaskMethod);
  if (!caller.ok()) return FinishNow(context, caller.status());
  if (absl::Status s = domain::ValidateId("task_id", request->task_id()); !s.ok()) {
    return FinishNow(context, s);
  }
  absl::StatusOr<v1::Task> task = ReadTask(*request);
  if (!task.ok()) return FinishNow(context, task.status());
  // A task's practice never changes: any version of it is in the practice it was created in.
  if (absl::Status s = CheckPracticeAccess(*caller, task->practice_id()); !s.ok()) {
    return FinishNow(context, s);
  }
  *response = *std::move(task);
  CallSecurity::Access access;
  access.task_ids.push_back(response->task_id());
  access.count = 1;
  // Time travel is recorded as such: what an auditor looked at, not only which task.
  if (request->as_of_case() != v1::GetTaskRequest::AS_OF_NOT_SET) {
    access.filter = FilterText(*request, *store_);
  }
  return FinishAfterRecord(context, *caller, kGetTaskMethod, std::move(access));
}

grpc::ServerUnaryReactor* TaskService::ListTasks(grpc::CallbackServerContext* context,
                                                 const v1::ListTasksRequest* request,
                                                 v1::ListTasksResponse* response) {
  absl::StatusOr<Caller> caller = security_->Authorize(*context, kListTasksMethod);
  if (!caller.ok()) return FinishNow(context, caller.status());
  absl::StatusOr<store::ListQuery> query = ToListQuery(*request);
  if (!query.ok()) return FinishNow(context, query.status());
  // A principal limited to practices names one of them, or sees all of them (and only them).
  if (!request->practice_id().empty()) {
    if (absl::Status s = CheckPracticeAccess(*caller, request->practice_id()); !s.ok()) {
      return FinishNow(context, s);
    }
  } else {
    query->practice_ids = caller->practices;
  }
  absl::StatusOr<store::ListPage> page = store_->ListTasks(*query);
  if (!page.ok()) return FinishNow(context, page.status());
  CallSecurity::Access access;
  access.task_ids.reserve(page->tasks.size());
  response->mutable_tasks()->Reserve(static_cast<int>(page->tasks.size()));
  for (v1::Task& task : page->tasks) {
    access.task_ids.push_back(task.task_id());
    *response->add_tasks() = std::move(task);
  }
  response->set_next_page_token(std::move(page->next_page_token));
  access.count = access.task_ids.size();
  access.filter = FilterText(*request, *store_);
  return FinishAfterRecord(context, *caller, kListTasksMethod, std::move(access));
}

grpc::ServerUnaryReactor* TaskService::LogContact(grpc::CallbackServerContext* context,
                                                  const v1::LogContactRequest* request,
                                                  v1::Task* response) {
  return MutateAndRecord(context, kLogContactMethod, *request, response);
}

grpc::ServerUnaryReactor* TaskService::AssignTask(grpc::CallbackServerContext* context,
                                                  const v1::AssignTaskRequest* request,
                                                  v1::Task* response) {
  return MutateAndRecord(context, kAssignTaskMethod, *request, response);
}

grpc::ServerUnaryReactor* TaskService::ClaimTask(grpc::CallbackServerContext* context,
                                                 const v1::ClaimTaskRequest* request,
                                                 v1::Task* response) {
  return MutateAndRecord(context, kClaimTaskMethod, *request, response);
}

grpc::ServerUnaryReactor* TaskService::CancelTask(grpc::CallbackServerContext* context,
                                                  const v1::CancelTaskRequest* request,
                                                  v1::Task* response) {
  return MutateAndRecord(context, kCancelTaskMethod, *request, response);
}

grpc::ServerUnaryReactor* TaskService::ResolveTasks(grpc::CallbackServerContext* context,
                                                    const v1::ResolveTasksRequest* request,
                                                    v1::ResolveTasksResponse* response) {
  auto write = writes_.Prepare(*context, kResolveTasksMethod, *request);
  if (!write.ok()) return FinishNow(context, write.status());
  // A principal limited to practices names one of them (checked here, so a replay is refused
  // too; the rules check it again with the command).
  if (absl::Status s = CheckPracticeAccess(write->caller, request->practice_id()); !s.ok()) {
    return FinishNow(context, s);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // The closed tasks come back whole (every contact's notes): a read of patient data, recorded
  // before it is sent, with the query (the patient) as its filter.
  CallSecurity::Access access;
  access.filter = FilterText(*request, *store_);
  store_->Submit(std::move(write->command), std::move(write->fingerprint),
                 [this, reactor, response, context, caller = std::move(write->caller),
                  access = std::move(access)](
                     absl::StatusOr<store::CommandResult> result) mutable {
                   if (!result.ok()) {
                     writes_.NoteRefused(result.status());
                     reactor->Finish(ToGrpcStatus(result.status()));
                     return;
                   }
                   for (v1::Task& task : result->tasks) {
                     access.task_ids.push_back(task.task_id());
                     *response->add_tasks() = std::move(task);
                   }
                   access.count = access.task_ids.size();
                   security_->RecordAccess(caller, *context, kResolveTasksMethod,
                                           std::move(access), [reactor](absl::Status recorded) {
                                             reactor->Finish(recorded.ok()
                                                                 ? grpc::Status::OK
                                                                 : ToGrpcStatus(recorded));
                                           });
                 });
  return reactor;
}

template <class Request>
grpc::ServerUnaryReactor* TaskService::MutateAndRecord(grpc::CallbackServerContext* context,
                                                       absl::string_view method,
                                                       const Request& request,
                                                       v1::Task* response) {
  // (Decide checks the shape again with on_behalf_of set: ClaimTask's claimant may be that
  // person.) A principal limited to practices changes only their tasks: the rules check the
  // task's practice when they decide the command, on the state they decide it on: no read
  // here, and no window between a check and the write (a task's practice never changes).
  auto write = writes_.Prepare(*context, method, request);
  if (!write.ok()) return FinishNow(context, write.status());
  // The response is the whole task, with every earlier contact's notes: a read of patient data,
  // recorded like GetTask before it is sent.
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  SubmitAndFinish(reactor, response, std::move(write->command), std::move(write->fingerprint),
                  std::move(write->caller), RecordedRead{context, method});
  return reactor;
}

grpc::ServerUnaryReactor* TaskService::FinishAfterRecord(grpc::CallbackServerContext* context,
                                                         const Caller& caller,
                                                         absl::string_view method,
                                                         CallSecurity::Access access) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // The response stays alive until Finish, which only this callback calls; gRPC sends the
  // response message only with an OK status.
  security_->RecordAccess(caller, *context, method, std::move(access),
                          [reactor](absl::Status recorded) {
                            reactor->Finish(recorded.ok() ? grpc::Status::OK
                                                          : ToGrpcStatus(recorded));
                          });
  return reactor;
}

absl::StatusOr<v1::Task> TaskService::ReadTask(const v1::GetTaskRequest& request) const {
  switch (request.as_of_case()) {
    case v1::GetTaskRequest::kAsOfVersion:
      if (request.as_of_version() < 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            "as_of_version: must be at least 1 (1 = as created), got ", request.as_of_version()));
      }
      return store_->GetTaskAsOfVersion(request.task_id(), request.as_of_version());
    case v1::GetTaskRequest::kAsOfTime: {
      absl::StatusOr<absl::Time> time = domain::ParseTimestamp("as_of_time", request.as_of_time());
      if (!time.ok()) return time.status();
      return store_->GetTaskAsOfTime(request.task_id(), *time);
    }
    case v1::GetTaskRequest::AS_OF_NOT_SET:
      break;
  }
  return store_->GetTask(request.task_id());
}

void TaskService::SubmitAndFinish(grpc::ServerUnaryReactor* reactor, v1::Task* response,
                                  domain::Command command, std::string fingerprint,
                                  Caller caller, std::optional<RecordedRead> read) {
  // The reactor and the response stay alive until Finish, which only these callbacks call.
  if (read.has_value() && security_->records_access()) {
    // The record is written with the command's events: the result comes back recorded.
    store::WriteAccess access = security_->WriteAccessOf(caller, *read->context, read->method);
    store_->Submit(std::move(command), std::move(fingerprint), std::move(access),
                   [this, reactor, response](absl::StatusOr<store::CommandResult> result) {
                     if (!result.ok()) {
                       writes_.NoteRefused(result.status());
                       reactor->Finish(ToGrpcStatus(result.status()));
                       return;
                     }
                     *response = std::move(result->tasks.front());
                     reactor->Finish(grpc::Status::OK);
                   });
    return;
  }
  store_->Submit(std::move(command), std::move(fingerprint),
                 [this, reactor, response, caller = std::move(caller), read = std::move(read)](
                     absl::StatusOr<store::CommandResult> result) mutable {
                   if (!result.ok()) {
                     // Health changes before the client hears of the refusal.
                     writes_.NoteRefused(result.status());
                     reactor->Finish(ToGrpcStatus(result.status()));
                     return;
                   }
                   // A replay is not decided again: the caller's practices may have narrowed
                   // since the first answer (a reload of the principals).
                   if (absl::Status s = CheckPracticeAccess(caller, result->task().practice_id());
                       !s.ok()) {
                     reactor->Finish(ToGrpcStatus(s));
                     return;
                   }
                   *response = std::move(result->tasks.front());
                   if (!read.has_value()) {
                     reactor->Finish(grpc::Status::OK);
                     return;
                   }
                   CallSecurity::Access access;
                   access.task_ids.push_back(response->task_id());
                   access.count = 1;
                   security_->RecordAccess(caller, *read->context, read->method,
                                           std::move(access), [reactor](absl::Status recorded) {
                                             reactor->Finish(recorded.ok()
                                                                 ? grpc::Status::OK
                                                                 : ToGrpcStatus(recorded));
                                           });
                 });
}

}  // namespace outreach::server
