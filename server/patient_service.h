// PatientService (outreach.v1): a patient's contact preference in a practice, and the summary a
// rule engine checks before it opens a task. Authorization, the access records and a read-only
// server's refusals work as in TaskService (server/task_service.h).
#pragma once

#include <string>
#include <utility>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "outreach/v1/patient_service.grpc.pb.h"
#include "server/call_security.h"
#include "server/task_service.h"
#include "server/write_call.h"
#include "store/event_store.h"

namespace outreach::server {

class PatientService final : public v1::PatientService::CallbackService {
 public:
  // `erasure_list`: where ErasePatient records each erasure (store/erasure_list.h); empty: none.
  PatientService(store::EventStore* store, const CallSecurity* security,
                 TaskService::Options options, std::string erasure_list = "")
      : store_(store),
        security_(security),
        writes_(store, security, std::move(options)),
        erasure_list_(std::move(erasure_list)) {}
  PatientService(const PatientService&) = delete;
  PatientService& operator=(const PatientService&) = delete;

  // Sets the preference (closing the patient's open tasks when do_not_contact is set), then
  // answers with the patient's outreach as it is once the change is durable.
  grpc::ServerUnaryReactor* SetContactPreference(grpc::CallbackServerContext* context,
                                                 const v1::SetContactPreferenceRequest* request,
                                                 v1::PatientOutreach* response) override;
  // Erases the patient's personal data (README "Privacy"); admin only.
  grpc::ServerUnaryReactor* ErasePatient(grpc::CallbackServerContext* context,
                                         const v1::ErasePatientRequest* request,
                                         v1::ErasePatientResponse* response) override;
  // A patient never seen: an empty record (its ids only), not NOT_FOUND.
  grpc::ServerUnaryReactor* GetPatientOutreach(grpc::CallbackServerContext* context,
                                               const v1::GetPatientOutreachRequest* request,
                                               v1::PatientOutreach* response) override;

 private:
  // Reads the patient's outreach into `response`, records the read, and finishes `reactor`.
  void ReadRecordAndFinish(grpc::ServerUnaryReactor* reactor,
                           const grpc::CallbackServerContext& context, const Caller& caller,
                           absl::string_view method, const std::string& practice_id,
                           const std::string& patient_id, std::string filter,
                           v1::PatientOutreach* response) const;

  // Appends `entry` to the erasure list (when there is one); INTERNAL if that fails.
  absl::Status RecordErasure(const store::ErasureEntry& entry) const;

  store::EventStore* const store_;
  const CallSecurity* const security_;
  const WriteCalls writes_;
  const std::string erasure_list_;
};

}  // namespace outreach::server
