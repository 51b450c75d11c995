#include "domain/decide_support.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "domain/validation.h"

namespace outreach::domain {

storage::v1::StoredEvent NewEventFor(const std::string& task_id, absl::Time occurred_at,
                                     const CommandMeta& meta) {
  storage::v1::StoredEvent e;
  e.set_task_id(task_id);
  *e.mutable_occurred_at() = ToProto(occurred_at);
  e.set_actor(meta.actor);
  e.set_request_id(meta.request_id);
  e.set_on_behalf_of(meta.on_behalf_of);
  return e;
}

absl::Status CheckExists(const v1::Task* state, const std::string& task_id) {
  if (state != nullptr) return absl::OkStatus();
  return absl::NotFoundError(absl::StrCat("task_id: no task \"", task_id, "\""));
}

absl::Status CheckOpen(const v1::Task& task, absl::Time now, absl::string_view refusal) {
  if (task.status() == v1::CLOSED) {
    return absl::FailedPreconditionError(absl::StrCat("task \"", task.task_id(), "\" is closed (",
                                                      v1::CloseReason_Name(task.close_reason()),
                                                      ") and ", refusal));
  }
  if (IsExpired(task, now)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "task \"", task.task_id(), "\" expired at ",
        absl::FormatTime(absl::RFC3339_full, FromProto(task.expires_at()), absl::UTCTimeZone()),
        " and ", refusal));
  }
  return absl::OkStatus();
}

absl::Status CheckExpectedVersion(const v1::Task& task, int64_t expected) {
  if (expected == 0 || expected == task.version()) return absl::OkStatus();
  return absl::AbortedError(absl::StrCat("expected_version: task \"", task.task_id(),
                                         "\" is at version ", task.version(), ", not ",
                                         expected));
}

absl::Status ValidateExpectedVersion(int64_t expected) {
  if (expected >= 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("expected_version: ", expected, " is negative (0 = don't check)"));
}

absl::Status CheckChangeable(const v1::Task* state, const std::string& task_id, absl::Time now,
                             int64_t expected_version, absl::string_view refusal) {
  if (absl::Status s = CheckExists(state, task_id); !s.ok()) return s;
  if (absl::Status s = CheckOpen(*state, now, refusal); !s.ok()) return s;
  return CheckExpectedVersion(*state, expected_version);
}

absl::TimeZone ZoneOf(const DecideContext& ctx, absl::string_view practice_id) {
  if (ctx.practice_zones == nullptr) return ctx.time_zone;
  auto it = ctx.practice_zones->find(practice_id.empty() ? kDefaultPracticeId : practice_id);
  return it == ctx.practice_zones->end() ? ctx.time_zone : it->second;
}

absl::Status CheckFollowUpDate(const std::string& text, const DecideContext& ctx,
                               absl::string_view practice_id) {
  absl::StatusOr<absl::CivilDay> day = ParseDate("follow_up_date", text);
  if (!day.ok()) return day.status();
  const absl::TimeZone zone = ZoneOf(ctx, practice_id);
  const absl::CivilDay today = absl::ToCivilDay(ctx.now, zone);
  if (*day < today) {
    return absl::InvalidArgumentError(absl::StrCat("follow_up_date: ", text,
                                                   " is before today (", FormatDate(today),
                                                   " in ", zone.name(), ")"));
  }
  if (*day - today > kMaxDaysAhead) {
    return absl::InvalidArgumentError(absl::StrCat(
        "follow_up_date: ", text, " is more than ", kMaxDaysAhead, " days after today"));
  }
  return absl::OkStatus();
}

absl::Status CheckPracticeAllowed(const CommandMeta& meta, absl::string_view practice_id) {
  if (meta.practices.empty()) return absl::OkStatus();
  const absl::string_view practice = practice_id.empty() ? kDefaultPracticeId : practice_id;
  for (const std::string& allowed : meta.practices) {
    if (allowed == practice) return absl::OkStatus();
  }
  return absl::PermissionDeniedError(absl::StrCat("practice_id: ", meta.actor,
                                                  " may not act in practice \"", practice,
                                                  "\" (limited to ",
                                                  absl::StrJoin(meta.practices, ", "), ")"));
}

absl::Status ValidateMeta(const CommandMeta& meta) {
  if (absl::Status s = ValidateId("actor", meta.actor); !s.ok()) return s;
  if (absl::Status s = ValidateOptionalId("on_behalf_of", meta.on_behalf_of); !s.ok()) return s;
  return ValidateOptionalId("request_id", meta.request_id);
}

}  // namespace outreach::domain
