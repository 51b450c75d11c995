// Cadence and the cap on attempts: the dates a task's follow-ups fall on when nobody gives one,
// and when a contact closes the task by reaching max_attempts. The rules as the product states
// them are in domain/task_rules.h; this is their arithmetic. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/time/civil_time.h"
#include "absl/types/span.h"
#include "outreach/v1/task.pb.h"

namespace outreach::domain {

// Strictly increasing, each 1..kMaxCadenceDay, at most kMaxCadenceSteps entries; empty is no
// cadence. INVALID_ARGUMENT naming cadence_days.
absl::Status ValidateCadence(absl::Span<const int32_t> cadence_days);

// 0 (no cap) .. kMaxAttemptsLimit. INVALID_ARGUMENT naming max_attempts.
absl::Status ValidateMaxAttempts(int32_t max_attempts);

// The cadence's step after `contacts` contacts (0 = at creation): start + cadence_days[contacts];
// nullopt past the cadence's end.
std::optional<absl::CivilDay> CadenceDay(absl::Span<const int32_t> cadence_days,
                                         absl::CivilDay start, int contacts);

// The follow-up of a Log Contact logged on `contact_day` without a date, as the task's next
// contact: its cadence step for that contact, or the day after the contact when the step is not
// later, and never before `today`. nullopt when the task has no cadence step left for it.
std::optional<absl::CivilDay> CadenceFollowUp(const v1::Task& task, absl::CivilDay contact_day,
                                              absl::CivilDay today);

// True when the task has a cap, the next contact (with `outcome`) brings attempt_count to it or
// past it, and the outcome is not SCHEDULED: that contact closes the task (MAX_ATTEMPTS).
bool ReachesMaxAttempts(const v1::Task& task, v1::ContactOutcome outcome);

}  // namespace outreach::domain
