// A patient's outreach in a practice as PatientService.GetPatientOutreach answers it: the
// "patients" row (store/projections/patients.h) with its open tasks read from "tasks".
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "outreach/v1/patient_service.pb.h"
#include "store/database.h"
#include "store/privacy.h"

namespace outreach::store {

// A patient never seen: a record with only its ids. do_not_contact is true only while it holds
// on `today` (in the practice's zone). DATA_LOSS on a malformed row.
absl::StatusOr<v1::PatientOutreach> ReadPatientOutreach(const Database& database,
                                                        absl::string_view practice_id,
                                                        absl::string_view patient_id,
                                                        absl::CivilDay today,
                                                        const Privacy* privacy);

}  // namespace outreach::store
