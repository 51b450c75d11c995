// AssignTask and ClaimTask (issue 13; the rules are written out in domain/task_rules.h): the
// shape of each command and its decision, a TaskAssigned or nothing. Internal to domain/:
// callers use ValidateShape and Decide. Pure functions; thread-safe.
#pragma once

#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "domain/task_rules.h"

namespace outreach::domain {

// True for a group assignee, "group:<id>".
bool IsGroupAssignee(absl::string_view assignee);

// Empty (unassigned), a user id, or "group:<id>"; never an id of the service's own actors.
// INVALID_ARGUMENT naming `field`.
absl::Status ValidateAssignee(absl::string_view field, absl::string_view assignee);

absl::Status ValidateAssignShape(const AssignTaskCommand& c);
absl::Status ValidateClaimShape(const ClaimTaskCommand& c);

absl::StatusOr<std::vector<NewEvent>> DecideAssign(const v1::Task* state,
                                                   const AssignTaskCommand& c,
                                                   const DecideContext& ctx);
absl::StatusOr<std::vector<NewEvent>> DecideClaim(const v1::Task* state,
                                                  const ClaimTaskCommand& c,
                                                  const DecideContext& ctx);

}  // namespace outreach::domain
