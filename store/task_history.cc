#include "store/task_history.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "domain/validation.h"
#include "store/keys.h"
#include "store/rocks.h"

namespace outreach::store {
namespace {

absl::Status NoTask(absl::string_view task_id) {
  return absl::NotFoundError(absl::StrCat("task_id: no task \"", task_id, "\""));
}

}  // namespace

absl::StatusOr<v1::Task> TaskAsOfVersion(const LogReader& log, const rocksdb::ReadOptions& read,
                                         absl::string_view task_id, int64_t version) {
  if (version < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("as_of_version: must be at least 1, got ", version));
  }
  v1::Task task;
  absl::StatusOr<int64_t> folded = log.FoldTask(
      read, task_id, version, [](const DecodedEvent&) { return true; },
      [](const v1::Task&, const v1::Task&, const DecodedEvent&) {}, &task);
  if (!folded.ok()) return folded.status();
  if (*folded == 0) return NoTask(task_id);
  if (*folded < version) {
    return absl::OutOfRangeError(absl::StrCat("as_of_version: task \"", task_id,
                                              "\" is at version ", *folded, ", not ", version));
  }
  return task;
}

absl::StatusOr<v1::Task> TaskAsOfTime(const LogReader& log, const rocksdb::ReadOptions& read,
                                      absl::string_view task_id, absl::Time time) {
  bool exists = false;
  v1::Task task;
  absl::StatusOr<int64_t> folded = log.FoldTask(
      read, task_id, std::numeric_limits<int64_t>::max(),
      [&](const DecodedEvent& event) {
        exists = true;
        return domain::FromProto(event.event.recorded_at()) <= time;
      },
      [](const v1::Task&, const v1::Task&, const DecodedEvent&) {}, &task);
  if (!folded.ok()) return folded.status();
  if (!exists) return NoTask(task_id);
  if (*folded == 0) {
    return absl::NotFoundError(absl::StrCat(
        "as_of_time: task \"", task_id, "\" did not exist yet at ",
        absl::FormatTime(absl::RFC3339_full, time, absl::UTCTimeZone())));
  }
  return task;
}

absl::StatusOr<std::vector<HistoryEntry>> TaskHistory(const LogReader& log,
                                                      const rocksdb::ReadOptions& read,
                                                      absl::string_view task_id) {
  std::vector<HistoryEntry> history;
  v1::Task task;
  absl::StatusOr<int64_t> folded = log.FoldTask(
      read, task_id, std::numeric_limits<int64_t>::max(),
      [](const DecodedEvent&) { return true; },
      [&](const v1::Task& before, const v1::Task& after, const DecodedEvent& event) {
        history.push_back(HistoryEntry{ToEventRecord(event), before.status(), after.status()});
      },
      &task);
  if (!folded.ok()) return folded.status();
  if (*folded == 0) return NoTask(task_id);
  return history;
}

absl::StatusOr<v1::Task> ReadTaskRow(const LogReader& log, absl::string_view task_id) {
  std::string raw;
  rocksdb::Status s =
      log.db()->Get(rocksdb::ReadOptions(), log.cf(keys::kTasks), ToSlice(task_id), &raw);
  if (s.IsNotFound()) return NoTask(task_id);
  if (!s.ok()) return FromRocks(s, "reading a task");
  v1::Task task;
  if (!task.ParseFromString(raw)) {
    return absl::DataLossError(absl::StrCat("tasks: row for \"", task_id, "\" is not a Task"));
  }
  return task;
}

}  // namespace outreach::store
