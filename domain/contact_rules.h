// "Log Contact" and "Log and Close Task" (SPEC §2), with the cadence, attempt and
// do-not-contact rules of issue 13 (written out in domain/task_rules.h): the shape of a
// LogContactCommand and its decision. Internal to domain/: callers use ValidateShape and Decide.
// Pure functions; thread-safe.
#pragma once

#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "domain/task_rules.h"

namespace outreach::domain {

absl::Status ValidateLogContactShape(const LogContactCommand& c);

// ContactLogged, then a TaskClosed when the contact closes the task (close_task: CONTACT_OUTCOME
// or DO_NOT_CONTACT; reaching max_attempts: MAX_ATTEMPTS).
absl::StatusOr<std::vector<NewEvent>> DecideLogContact(const v1::Task* state,
                                                       const LogContactCommand& c,
                                                       const DecideContext& ctx);

}  // namespace outreach::domain
