#include "domain/assignment_rules.h"

#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "domain/decide_support.h"
#include "domain/validation.h"

namespace outreach::domain {
namespace {

// The person who claims: the one a service acts for, else the caller.
const std::string& ClaimantOf(const CommandMeta& meta) {
  return meta.on_behalf_of.empty() ? meta.actor : meta.on_behalf_of;
}

std::vector<NewEvent> AssignedEvent(const v1::Task& task, std::string assignee,
                                    const CommandMeta& meta, absl::Time now) {
  storage::v1::StoredEvent e = NewEventFor(task.task_id(), now, meta);
  v1::TaskAssigned* assigned = e.mutable_task_assigned();
  assigned->set_assignee(std::move(assignee));
  assigned->set_previous_assignee(task.assignee());
  std::vector<NewEvent> out;
  out.push_back(NewEvent{std::move(e)});
  return out;
}

}  // namespace

bool IsGroupAssignee(absl::string_view assignee) {
  return absl::StartsWith(assignee, kGroupAssigneePrefix);
}

absl::Status ValidateAssignee(absl::string_view field, absl::string_view assignee) {
  if (absl::Status s = ValidateOptionalId(field, assignee); !s.ok()) return s;
  if (absl::StartsWith(assignee, kReservedIdPrefix)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": \"", assignee,
                                                   "\" is reserved for the service itself"));
  }
  if (assignee == kGroupAssigneePrefix) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": \"", assignee, "\" names no group (want ", kGroupAssigneePrefix, "<id>)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateAssignShape(const AssignTaskCommand& c) {
  if (absl::Status s = ValidateId("task_id", c.task_id); !s.ok()) return s;
  if (absl::Status s = ValidateAssignee("assignee", c.assignee); !s.ok()) return s;
  if (absl::Status s = ValidateExpectedVersion(c.expected_version); !s.ok()) return s;
  return ValidateMeta(c.meta);
}

absl::Status ValidateClaimShape(const ClaimTaskCommand& c) {
  if (absl::Status s = ValidateId("task_id", c.task_id); !s.ok()) return s;
  if (absl::Status s = ValidateExpectedVersion(c.expected_version); !s.ok()) return s;
  if (absl::Status s = ValidateMeta(c.meta); !s.ok()) return s;
  const absl::string_view field = c.meta.on_behalf_of.empty() ? "actor" : "on_behalf_of";
  if (IsGroupAssignee(ClaimantOf(c.meta))) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": \"", ClaimantOf(c.meta), "\" is a group; only a person can claim a task"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<NewEvent>> DecideAssign(const v1::Task* state,
                                                   const AssignTaskCommand& c,
                                                   const DecideContext& ctx) {
  if (absl::Status s = CheckChangeable(state, c.task_id, ctx.now, c.expected_version,
                                       "cannot be assigned");
      !s.ok()) {
    return s;
  }
  if (state->assignee() == c.assignee) return std::vector<NewEvent>{};
  return AssignedEvent(*state, c.assignee, c.meta, ctx.now);
}

absl::StatusOr<std::vector<NewEvent>> DecideClaim(const v1::Task* state,
                                                  const ClaimTaskCommand& c,
                                                  const DecideContext& ctx) {
  if (absl::Status s = CheckChangeable(state, c.task_id, ctx.now, c.expected_version,
                                       "cannot be claimed");
      !s.ok()) {
    return s;
  }
  const std::string& claimant = ClaimantOf(c.meta);
  if (state->assignee() == claimant) return std::vector<NewEvent>{};
  if (!state->assignee().empty() && !IsGroupAssignee(state->assignee())) {
    return absl::FailedPreconditionError(
        absl::StrCat("task \"", c.task_id, "\" is assigned to \"", state->assignee(),
                     "\": only an unassigned task or a group's can be claimed (AssignTask "
                     "hands it to someone else)"));
  }
  return AssignedEvent(*state, claimant, c.meta, ctx.now);
}

}  // namespace outreach::domain
