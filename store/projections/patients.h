// "patients": practice_id '\0' patient_id -> PatientRow (store/keys.h), one row per patient in a
// practice with a task or a contact preference: the preference (the fold of the patient's own
// stream), the open tasks with their categories, the attempts and the latest contact. What
// CreateTask's dedupe and do-not-contact checks, ResolveTasks and GetPatientOutreach read.
// Event-derived: its live update reads the row and changes it (two tasks of one patient in one
// batch see each other's changes); its fold follows the events in log order. Stateless;
// thread-safe.
#pragma once

#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "outreach/v1/storage.pb.h"
#include "store/projection.h"

namespace outreach::store {

const Projection& PatientsProjection();

// The patient's row as `rows` has it; nullopt for a patient never seen. DATA_LOSS if malformed.
absl::StatusOr<std::optional<storage::v1::PatientRow>> ReadPatientRow(
    const RowReader& rows, absl::string_view practice_id, absl::string_view patient_id);

}  // namespace outreach::store
