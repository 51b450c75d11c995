// The log verifier: the checks that make the event log audit-grade, over a range of it. Used at
// start-up (from the last verified checkpoint), by VerifyLog (the whole log, or up to a kept
// head) and by outreachctl verify. Pure reads; thread-safe.
#pragma once

#include <cstdint>
#include <functional>

#include "rocksdb/db.h"
#include "store/event_codec.h"
#include "store/event_store.h"
#include "store/log_reader.h"

namespace outreach::store {

// Checks the events after `from` (whose hash is `from_hash`) through the end of the log, and
// the head row against the last one. From position 0 every stream must start at version 1.
// From a checkpoint, a stream first met at version v > 1 must have version v - 1 in the
// "streams" rows at an earlier position when `projections_current`; otherwise the rebuild
// that follows re-checks every stream while folding it.
// Stops after position `to` when it is not 0 (the head row is then not checked). Sets
// `*max_schema` (if not null) to the highest stored schema_version checked. `progress` (if set)
// hears the events checked so far every kVerifyProgressEvery events.
inline constexpr uint64_t kVerifyProgressEvery = 10000;
VerifyReport VerifyLogRange(const LogReader& log, const rocksdb::ReadOptions& read, uint64_t from,
                            const Hash& from_hash, bool projections_current, uint64_t to,
                            uint32_t* max_schema,
                            const std::function<void(uint64_t checked)>& progress = nullptr);

// The whole log under `read`, through options.to_position (0 = the head), and, with
// options.expected_head_hash, against that hash (EventStore::VerifyLog(VerifyOptions)).
// INVALID_ARGUMENT for an expected hash of the wrong size.
absl::StatusOr<VerifyReport> VerifyLogAgainst(const LogReader& log,
                                              const rocksdb::ReadOptions& read,
                                              const VerifyOptions& options);

}  // namespace outreach::store
