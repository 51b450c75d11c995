// Recovery: what Open does before the writer starts. It verifies the log from the last verified
// checkpoint to the head (the whole log when there is none), finds the head, records a new
// checkpoint and, when the projections were folded with another projection format or event
// schema than this build's, rebuilds them (store/projection_rows.h RebuildProjectionsFromLog).
// Read-only opens may skip the verification (the head then comes from the head row); they
// never write, and refuse projections that would need a rebuild.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "store/appender.h"
#include "store/database.h"
#include "store/event_codec.h"
#include "store/store_observer.h"

namespace outreach::store {

struct Recovered {
  LogHead head;
  uint64_t checkpoint_position = 0;   // of the checkpoint row now stored
  uint32_t checkpoint_max_schema = 1;  // its max_schema_version
};

// DATA_LOSS naming the first bad position when the log is corrupt, or when it holds events of
// a newer schema than `schemas` supports.
// `observer` (may be nullptr) hears a rebuild's progress.
absl::StatusOr<Recovered> Recover(Database& database, const SchemaRegistry& schemas, bool verify,
                                  StoreObserver* observer = nullptr);

}  // namespace outreach::store
