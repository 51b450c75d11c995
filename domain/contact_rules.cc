#include "domain/contact_rules.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "domain/cadence.h"
#include "domain/decide_support.h"
#include "domain/validation.h"

namespace outreach::domain {
namespace {

using storage::v1::StoredEvent;

absl::Status ValidateOutcome(v1::ContactOutcome outcome) {
  if (outcome != v1::CONTACT_OUTCOME_UNSPECIFIED && v1::ContactOutcome_IsValid(outcome)) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("outcome: must be NO_ANSWER, LEFT_MESSAGE, DID_NOT_SCHEDULE, SCHEDULED, "
                   "WRONG_NUMBER or REQUESTED_NO_CONTACT (got ",
                   static_cast<int>(outcome), ")"));
}

// Unset is allowed (PHONE, OUTBOUND); an unknown number is not.
absl::Status ValidateChannelAndDirection(const LogContactCommand& c) {
  if (!v1::ContactChannel_IsValid(c.channel)) {
    return absl::InvalidArgumentError(
        absl::StrCat("channel: ", static_cast<int>(c.channel),
                     " is not a ContactChannel (want PHONE, SMS, EMAIL, MAIL, IN_PERSON or "
                     "unset for PHONE)"));
  }
  if (!v1::ContactDirection_IsValid(c.direction)) {
    return absl::InvalidArgumentError(
        absl::StrCat("direction: ", static_cast<int>(c.direction),
                     " is not a ContactDirection (want OUTBOUND, INBOUND or unset for OUTBOUND)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateCloseAndFollowUp(const LogContactCommand& c) {
  if (c.outcome == v1::REQUESTED_NO_CONTACT && !c.close_task) {
    return absl::InvalidArgumentError(
        "close_task: required with outcome REQUESTED_NO_CONTACT (the patient asked not to be "
        "contacted: Log and Close Task)");
  }
  if (c.close_task && !c.follow_up_date.empty()) {
    return absl::InvalidArgumentError(
        "follow_up_date: must be empty with close_task (Log and Close Task sets no follow-up)");
  }
  if (!c.follow_up_date.empty()) {
    if (auto day = ParseDate("follow_up_date", c.follow_up_date); !day.ok()) return day.status();
  }
  return absl::OkStatus();
}

// When the contact happened: now, or the given time, which may not be in the future nor before
// the task existed.
absl::StatusOr<absl::Time> ContactTime(const v1::Task& task, const LogContactCommand& c,
                                       const DecideContext& ctx) {
  if (!c.contacted_at.has_value()) return ctx.now;
  const absl::Time at = *c.contacted_at;
  if (at > ctx.now + kClockSkewAllowance) {
    return absl::InvalidArgumentError(
        absl::StrCat("contacted_at: ", absl::FormatTime(at), " is in the future"));
  }
  if (at < FromProto(task.created_at())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "contacted_at: ", absl::FormatTime(at), " is before the task was created (",
        absl::FormatTime(FromProto(task.created_at())), ")"));
  }
  return at;
}

// The follow-up date a Log Contact (not a close) sets: the one given (already checked), none
// when it reaches max_attempts, else the cadence's; INVALID_ARGUMENT when none applies.
absl::StatusOr<std::string> FollowUpOf(const v1::Task& task, const LogContactCommand& c,
                                       absl::Time contacted_at, bool closes_at_max,
                                       const DecideContext& ctx) {
  if (!c.follow_up_date.empty() || closes_at_max) return c.follow_up_date;
  const absl::TimeZone zone = ZoneOf(ctx, task.practice_id());
  const absl::CivilDay today = absl::ToCivilDay(ctx.now, zone);
  const absl::CivilDay contact_day = absl::ToCivilDay(contacted_at, zone);
  if (std::optional<absl::CivilDay> day = CadenceFollowUp(task, contact_day, today)) {
    return FormatDate(*day);
  }
  if (task.cadence_days_size() == 0) {
    return absl::InvalidArgumentError(
        "follow_up_date: required for Log Contact (set close_task to log and close instead)");
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "follow_up_date: required: the task's cadence of ", task.cadence_days_size(),
      " steps has no step for contact ", task.attempt_count() + 1,
      " (set one, or close_task to log and close instead)"));
}

StoredEvent ContactEvent(const LogContactCommand& c, absl::Time contacted_at,
                         std::string follow_up_date) {
  StoredEvent e = NewEventFor(c.task_id, contacted_at, c.meta);
  v1::ContactLogged* logged = e.mutable_contact_logged();
  logged->set_outcome(c.outcome);
  logged->set_notes(c.notes);
  logged->set_follow_up_date(std::move(follow_up_date));
  logged->set_close_task(c.close_task);
  logged->set_channel(c.channel == v1::CONTACT_CHANNEL_UNSPECIFIED ? v1::PHONE : c.channel);
  logged->set_direction(c.direction == v1::CONTACT_DIRECTION_UNSPECIFIED ? v1::OUTBOUND
                                                                         : c.direction);
  return e;
}

v1::CloseReason CloseReasonOf(const LogContactCommand& c) {
  if (!c.close_task) return v1::MAX_ATTEMPTS;
  return c.outcome == v1::REQUESTED_NO_CONTACT ? v1::DO_NOT_CONTACT : v1::CONTACT_OUTCOME;
}

}  // namespace

absl::Status ValidateLogContactShape(const LogContactCommand& c) {
  if (absl::Status s = ValidateId("task_id", c.task_id); !s.ok()) return s;
  if (absl::Status s = ValidateOutcome(c.outcome); !s.ok()) return s;
  if (absl::Status s = ValidateChannelAndDirection(c); !s.ok()) return s;
  if (absl::Status s = ValidateText("notes", c.notes, kMaxNotesLength); !s.ok()) return s;
  if (absl::Status s = ValidateCloseAndFollowUp(c); !s.ok()) return s;
  if (absl::Status s = ValidateExpectedVersion(c.expected_version); !s.ok()) return s;
  return ValidateMeta(c.meta);
}

absl::StatusOr<std::vector<NewEvent>> DecideLogContact(const v1::Task* state,
                                                       const LogContactCommand& c,
                                                       const DecideContext& ctx) {
  if (absl::Status s = CheckChangeable(state, c.task_id, ctx.now, c.expected_version,
                                       "accepts no further contacts");
      !s.ok()) {
    return s;
  }
  if (!c.close_task && !c.follow_up_date.empty()) {
    if (absl::Status s = CheckFollowUpDate(c.follow_up_date, ctx, state->practice_id());
        !s.ok()) {
      return s;
    }
  }
  absl::StatusOr<absl::Time> contacted_at = ContactTime(*state, c, ctx);
  if (!contacted_at.ok()) return contacted_at.status();
  const bool closes_at_max = !c.close_task && ReachesMaxAttempts(*state, c.outcome);
  std::string follow_up;
  if (!c.close_task) {
    absl::StatusOr<std::string> date = FollowUpOf(*state, c, *contacted_at, closes_at_max, ctx);
    if (!date.ok()) return date.status();
    follow_up = *std::move(date);
  }
  std::vector<NewEvent> out;
  out.push_back(NewEvent{ContactEvent(c, *contacted_at, std::move(follow_up))});
  if (c.close_task || closes_at_max) {
    StoredEvent closed = NewEventFor(c.task_id, ctx.now, c.meta);
    closed.mutable_task_closed()->set_reason(CloseReasonOf(c));
    closed.mutable_task_closed()->set_outcome(c.outcome);
    out.push_back(NewEvent{std::move(closed)});
  }
  return out;
}

}  // namespace outreach::domain
