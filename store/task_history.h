// A task's past, folded from its stream (store/log_reader.h): its state as of a version or a
// time, and its history of status changes. Free functions over one read view; thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "outreach/v1/task.pb.h"
#include "rocksdb/db.h"
#include "store/event_store.h"
#include "store/log_reader.h"

namespace outreach::store {

// The task right after its version `version` (>= 1): INVALID_ARGUMENT below 1, NOT_FOUND without
// such a task, OUT_OF_RANGE past its last version.
absl::StatusOr<v1::Task> TaskAsOfVersion(const LogReader& log, const rocksdb::ReadOptions& read,
                                         absl::string_view task_id, int64_t version);

// The task after every event recorded at or before `time`: NOT_FOUND without such a task or
// before it existed.
absl::StatusOr<v1::Task> TaskAsOfTime(const LogReader& log, const rocksdb::ReadOptions& read,
                                      absl::string_view task_id, absl::Time time);

// Every event of the task with the status before and after it. NOT_FOUND without such a task.
absl::StatusOr<std::vector<HistoryEntry>> TaskHistory(const LogReader& log,
                                                      const rocksdb::ReadOptions& read,
                                                      absl::string_view task_id);

// The task's row in "tasks" (its current state): NOT_FOUND without such a task.
absl::StatusOr<v1::Task> ReadTaskRow(const LogReader& log, absl::string_view task_id);

}  // namespace outreach::store
