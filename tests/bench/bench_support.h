// Helpers shared by the store benchmarks and outreach-bench-data: commands shaped like real
// traffic, scratch directories, and a bulk loader that keeps many commands in flight.
//
// Everything here runs in one process on a scratch directory; nothing talks to the network.
// BulkSubmit is thread-safe in the sense the store is: it may run beside readers.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/civil_time.h"
#include "domain/task_rules.h"
#include "store/event_store.h"

namespace outreach::bench {

// A task id for index i ("t" followed by the zero-padded number, so that ids sort like i).
std::string TaskId(uint64_t i);

// A manual task for patient i % 50000, assignee i % 16, first follow-up `follow_up`.
domain::CreateTaskCommand CreateCommand(uint64_t i, absl::CivilDay follow_up);
// A contact that leaves the task in progress, following up on `follow_up`.
domain::LogContactCommand LogContactCommand(const std::string& task_id, uint64_t i,
                                            absl::CivilDay follow_up);

// Tomorrow in UTC: a follow-up date every store time zone accepts as today or later.
absl::CivilDay TomorrowUtc();

// A fresh empty directory under $OUTREACH_BENCH_DIR (default: the system temporary directory),
// named after `name` and this process. Removed by RemoveDir.
std::string ScratchDir(const std::string& name);
void RemoveDir(const std::string& dir);

// Submits make(0) .. make(count - 1) with up to `in_flight` commands queued at once (so that the
// writer batches them) and waits for all. The first failure is returned after every command has
// ended. `progress` (may be empty) is called now and then with the number done.
absl::Status BulkSubmit(store::EventStore& store, uint64_t count, int in_flight,
                        const std::function<domain::Command(uint64_t)>& make,
                        const std::function<void(uint64_t)>& progress = nullptr);

}  // namespace outreach::bench
