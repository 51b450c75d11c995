#include "domain/cadence.h"

#include <cstddef>

#include "absl/strings/str_cat.h"
#include "domain/task_rules.h"
#include "domain/validation.h"

namespace outreach::domain {

absl::Status ValidateCadence(absl::Span<const int32_t> cadence_days) {
  if (cadence_days.size() > static_cast<std::size_t>(kMaxCadenceSteps)) {
    return absl::InvalidArgumentError(absl::StrCat("cadence_days: ", cadence_days.size(),
                                                   " steps, at most ", kMaxCadenceSteps));
  }
  for (std::size_t i = 0; i < cadence_days.size(); ++i) {
    const int32_t day = cadence_days[i];
    if (day < 1 || day > kMaxCadenceDay) {
      return absl::InvalidArgumentError(absl::StrCat("cadence_days: [", i, "] = ", day,
                                                     " is out of range (1..", kMaxCadenceDay,
                                                     " days after creation)"));
    }
    if (i > 0 && day <= cadence_days[i - 1]) {
      return absl::InvalidArgumentError(
          absl::StrCat("cadence_days: [", i, "] = ", day, " is not after [", i - 1, "] = ",
                       cadence_days[i - 1], " (the steps must be strictly increasing)"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateMaxAttempts(int32_t max_attempts) {
  if (max_attempts >= 0 && max_attempts <= kMaxAttemptsLimit) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("max_attempts: ", max_attempts,
                                                 " is out of range (0 = no cap, at most ",
                                                 kMaxAttemptsLimit, ")"));
}

std::optional<absl::CivilDay> CadenceDay(absl::Span<const int32_t> cadence_days,
                                         absl::CivilDay start, int contacts) {
  if (contacts < 0 || static_cast<std::size_t>(contacts) >= cadence_days.size()) {
    return std::nullopt;
  }
  return start + cadence_days[static_cast<std::size_t>(contacts)];
}

std::optional<absl::CivilDay> CadenceFollowUp(const v1::Task& task, absl::CivilDay contact_day,
                                              absl::CivilDay today) {
  if (task.cadence_days_size() == 0) return std::nullopt;
  absl::StatusOr<absl::CivilDay> start =
      ParseDate("cadence_start_date", task.cadence_start_date());
  if (!start.ok()) return std::nullopt;  // Apply refuses such a task; never reached
  std::optional<absl::CivilDay> step =
      CadenceDay(absl::MakeConstSpan(task.cadence_days().data(), task.cadence_days_size()),
                 *start, task.attempt_count() + 1);
  if (!step.has_value()) return std::nullopt;
  absl::CivilDay day = *step > contact_day ? *step : contact_day + 1;
  if (day < today) day = today;
  return day;
}

bool ReachesMaxAttempts(const v1::Task& task, v1::ContactOutcome outcome) {
  return task.max_attempts() > 0 && task.attempt_count() + 1 >= task.max_attempts() &&
         outcome != v1::SCHEDULED;
}

}  // namespace outreach::domain
