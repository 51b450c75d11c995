// Steps shared by the deciders of domain/task_rules.h (internal to domain/): making an event for
// a command, and the checks every command on an existing task makes, in the same order and with
// the same messages. Pure functions; thread-safe.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "domain/task_rules.h"

namespace outreach::domain {

// A new event of `task_id` by the command's actor, under its request id and on-behalf-of.
storage::v1::StoredEvent NewEventFor(const std::string& task_id, absl::Time occurred_at,
                                     const CommandMeta& meta);

// NOT_FOUND naming task_id when there is no such task.
absl::Status CheckExists(const v1::Task* state, const std::string& task_id);

// FAILED_PRECONDITION when the task is closed, or automatic and expired at `now` (even before
// its expiry event is written). `refusal` ends the message: "accepts no further contacts".
absl::Status CheckOpen(const v1::Task& task, absl::Time now, absl::string_view refusal);

// ABORTED naming the current version when `expected` is set (not 0) and differs.
absl::Status CheckExpectedVersion(const v1::Task& task, int64_t expected);

// INVALID_ARGUMENT naming expected_version when it is negative.
absl::Status ValidateExpectedVersion(int64_t expected);

// The checks above in order: exists, open, expected version.
absl::Status CheckChangeable(const v1::Task* state, const std::string& task_id, absl::Time now,
                             int64_t expected_version, absl::string_view refusal);

// The zone "today" is taken in for the tasks of `practice_id` (empty = kDefaultPracticeId): its
// entry in ctx.practice_zones, else ctx.time_zone.
absl::TimeZone ZoneOf(const DecideContext& ctx, absl::string_view practice_id);

// A follow-up date must parse, be today or later in the zone of the task's practice (ZoneOf),
// and not absurdly far out. INVALID_ARGUMENT naming follow_up_date.
absl::Status CheckFollowUpDate(const std::string& text, const DecideContext& ctx,
                               absl::string_view practice_id);

// PERMISSION_DENIED naming practice_id when `meta` limits the caller to practices and
// `practice_id` (empty = kDefaultPracticeId) is not one of them.
absl::Status CheckPracticeAllowed(const CommandMeta& meta, absl::string_view practice_id);

// Requires a valid actor, and valid on_behalf_of and request_id when set.
absl::Status ValidateMeta(const CommandMeta& meta);

}  // namespace outreach::domain
