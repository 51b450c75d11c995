// `outreachctl export-fhir` (issue 16): reads the log of an open store and writes the FHIR R4
// Bulk Data NDJSON files (Task.ndjson, Communication.ndjson, Provenance.ndjson) that
// ctl/fhir/fhir_mapping.h makes of it. Each file is written beside its final name and renamed
// over it once every file is complete, so a failed export leaves the previous files as they
// were. Not thread-safe (one export at a time into a directory).
#pragma once

#include <cstdint>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "ctl/command_flags.h"
#include "store/event_store.h"

namespace outreach::ctl {

struct FhirExportSummary {
  uint64_t head_position = 0;  // the head the export read through
  uint64_t events_read = 0;
  uint64_t tasks = 0;
  uint64_t communications = 0;
  uint64_t provenances = 0;
};

// Exports the log of `store` from position 1 through its head as it is now. `progress` gets the
// number of events read so far.
absl::StatusOr<FhirExportSummary> ExportFhir(const store::EventStore& store,
                                             const ExportFhirFlags& flags,
                                             absl::FunctionRef<void(uint64_t)> progress);

}  // namespace outreach::ctl
