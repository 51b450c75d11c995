// The rules about a patient in a practice (domain/task_rules.h, "Patients"): ResolveTasks,
// SetContactPreference, the checks CreateTask makes against the patient's row (do-not-contact,
// dedupe), and what a contact with REQUESTED_NO_CONTACT adds. Internal to domain/; pure.
#pragma once

#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "domain/task_rules.h"

namespace outreach::domain {

absl::Status ValidateResolveShape(const ResolveTasksCommand& c);
absl::Status ValidatePreferenceShape(const SetContactPreferenceCommand& c);
absl::Status ValidateEraseShape(const ErasePatientCommand& c);

absl::StatusOr<std::vector<NewEvent>> DecideResolve(const TaskStates& states,
                                                    const PatientStates& patients,
                                                    const ResolveTasksCommand& c,
                                                    const DecideContext& ctx);

absl::StatusOr<std::vector<NewEvent>> DecideSetPreference(const TaskStates& states,
                                                          const PatientStates& patients,
                                                          const SetContactPreferenceCommand& c,
                                                          const DecideContext& ctx);

absl::StatusOr<std::vector<NewEvent>> DecideErase(const TaskStates& states,
                                                  const PatientStates& patients,
                                                  const ErasePatientCommand& c,
                                                  const DecideContext& ctx);

// After CreateTask's own checks: FAILED_PRECONDITION while do-not-contact holds, ALREADY_EXISTS
// (with kExistingTaskIdPayload) while a task of the same non-CUSTOM category is open.
absl::Status CheckCreateForPatient(const TaskStates& states, const PatientStates& patients,
                                   const CreateTaskCommand& c, const DecideContext& ctx);

// The events a contact with REQUESTED_NO_CONTACT on `task` adds after its own: the patient's
// do-not-contact, and the closing of the patient's other open tasks in the practice.
absl::StatusOr<std::vector<NewEvent>> NoContactEvents(const TaskStates& states,
                                                      const PatientStates& patients,
                                                      const v1::Task& task,
                                                      const LogContactCommand& c,
                                                      const DecideContext& ctx);

}  // namespace outreach::domain
