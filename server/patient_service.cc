#include "server/patient_service.h"

#include <utility>

#include "domain/task_rules.h"
#include "domain/validation.h"
#include "server/convert.h"
#include "server/grpc_status.h"
#include "logging/log.h"
#include "store/erasure_list.h"

namespace outreach::server {
namespace {

constexpr absl::string_view kSetContactPreferenceMethod =
    "/outreach.v1.PatientService/SetContactPreference";
constexpr absl::string_view kGetPatientOutreachMethod =
    "/outreach.v1.PatientService/GetPatientOutreach";
constexpr absl::string_view kErasePatientMethod = "/outreach.v1.PatientService/ErasePatient";

std::string PracticeOf(const std::string& practice_id) {
  return practice_id.empty() ? domain::kDefaultPracticeId : practice_id;
}

}  // namespace

grpc::ServerUnaryReactor* PatientService::SetContactPreference(
    grpc::CallbackServerContext* context, const v1::SetContactPreferenceRequest* request,
    v1::PatientOutreach* response) {
  auto write = writes_.Prepare(*context, kSetContactPreferenceMethod, *request);
  if (!write.ok()) return FinishNow(context, write.status());
  // A principal limited to practices names one of them (checked here, so a replay is refused
  // too; the rules check it again with the command).
  if (absl::Status s = CheckPracticeAccess(write->caller, request->practice_id()); !s.ok()) {
    return FinishNow(context, s);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::string practice_id = PracticeOf(request->practice_id());
  std::string patient_id = request->patient_id();
  std::string filter = FilterText(*request, *store_);
  // The answer is read on the store's completion thread, once the change is durable: a few
  // point reads (the patient's row and its open tasks).
  store_->Submit(std::move(write->command), std::move(write->fingerprint),
                 [this, reactor, response, context, caller = std::move(write->caller),
                  practice_id = std::move(practice_id), patient_id = std::move(patient_id),
                  filter = std::move(filter)](absl::StatusOr<store::CommandResult> result) mutable {
                   if (!result.ok()) {
                     writes_.NoteRefused(result.status());
                     reactor->Finish(ToGrpcStatus(result.status()));
                     return;
                   }
                   ReadRecordAndFinish(reactor, *context, caller, kSetContactPreferenceMethod,
                                       practice_id, patient_id, std::move(filter), response);
                 });
  return reactor;
}

grpc::ServerUnaryReactor* PatientService::ErasePatient(grpc::CallbackServerContext* context,
                                                       const v1::ErasePatientRequest* request,
                                                       v1::ErasePatientResponse* response) {
  auto write = writes_.Prepare(*context, kErasePatientMethod, *request);
  if (!write.ok()) return FinishNow(context, write.status());
  if (absl::Status s = CheckPracticeAccess(write->caller, request->practice_id()); !s.ok()) {
    return FinishNow(context, s);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // The answer holds no patient data (task ids and a position): no access record.
  store_->Submit(
      std::move(write->command), std::move(write->fingerprint),
      [this, reactor, response](absl::StatusOr<store::CommandResult> result) {
        if (!result.ok()) {
          writes_.NoteRefused(result.status());
          reactor->Finish(ToGrpcStatus(result.status()));
          return;
        }
        for (const v1::EventRecord& event : result->events) {
          if (event.has_task_closed()) {
            response->add_closed_task_ids(event.task_id());
          } else if (event.has_patient_erased()) {
            response->set_erased(true);
            response->set_position(event.position());
            // Kept outside the database and its backups, for a restore to re-apply.
            const store::ErasureEntry entry{event.position(),
                                            event.patient_erased().practice_id(),
                                            event.patient_erased().patient_id()};
            if (absl::Status s = RecordErasure(entry); !s.ok()) {
              reactor->Finish(ToGrpcStatus(s));
              return;
            }
          }
        }
        reactor->Finish(grpc::Status::OK);
      });
  return reactor;
}

absl::Status PatientService::RecordErasure(const store::ErasureEntry& entry) const {
  if (erasure_list_.empty()) return absl::OkStatus();
  absl::Status appended = store::AppendErasure(erasure_list_, entry);
  if (appended.ok()) return appended;
  logging::Error("the patient was erased, but recording it in --erasure-list failed: a restore "
                 "of an older backup would not erase it again",
                 {{"position", entry.position}, {"error", appended.ToString()}});
  return absl::InternalError(absl::StrCat(
      "the patient was erased (position ", entry.position,
      "), but recording it in the erasure list failed; see the server's log"));
}

grpc::ServerUnaryReactor* PatientService::GetPatientOutreach(
    grpc::CallbackServerContext* context, const v1::GetPatientOutreachRequest* request,
    v1::PatientOutreach* response) {
  absl::StatusOr<Caller> caller = security_->Authorize(*context, kGetPatientOutreachMethod);
  if (!caller.ok()) return FinishNow(context, caller.status());
  if (absl::Status s = domain::ValidateOptionalId("practice_id", request->practice_id());
      !s.ok()) {
    return FinishNow(context, s);
  }
  if (request->patient_id().empty()) {
    return FinishNow(context, absl::InvalidArgumentError("patient_id: required"));
  }
  if (absl::Status s = domain::ValidateId("patient_id", request->patient_id()); !s.ok()) {
    return FinishNow(context, s);
  }
  if (absl::Status s = CheckPracticeAccess(*caller, request->practice_id()); !s.ok()) {
    return FinishNow(context, s);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  ReadRecordAndFinish(reactor, *context, *caller, kGetPatientOutreachMethod,
                      PracticeOf(request->practice_id()), request->patient_id(),
                      FilterText(*request, *store_), response);
  return reactor;
}

void PatientService::ReadRecordAndFinish(grpc::ServerUnaryReactor* reactor,
                                         const grpc::CallbackServerContext& context,
                                         const Caller& caller, absl::string_view method,
                                         const std::string& practice_id,
                                         const std::string& patient_id, std::string filter,
                                         v1::PatientOutreach* response) const {
  absl::StatusOr<v1::PatientOutreach> outreach =
      store_->GetPatientOutreach(practice_id, patient_id);
  if (!outreach.ok()) {
    reactor->Finish(ToGrpcStatus(outreach.status()));
    return;
  }
  *response = *std::move(outreach);
  // Patient data (the open tasks with their notes, the preference): recorded before it is sent.
  CallSecurity::Access access;
  for (const v1::Task& task : response->open_tasks()) access.task_ids.push_back(task.task_id());
  access.count = access.task_ids.size();
  access.filter = std::move(filter);
  security_->RecordAccess(caller, context, method, std::move(access),
                          [reactor](absl::Status recorded) {
                            reactor->Finish(recorded.ok() ? grpc::Status::OK
                                                          : ToGrpcStatus(recorded));
                          });
}

}  // namespace outreach::server
