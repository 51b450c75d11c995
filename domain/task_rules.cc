#include "domain/task_rules.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "domain/assignment_rules.h"
#include "domain/cadence.h"
#include "domain/contact_rules.h"
#include "domain/decide_support.h"
#include "domain/overloaded.h"
#include "domain/patient_rules.h"
#include "domain/validation.h"

namespace outreach::domain {
namespace {

using storage::v1::StoredEvent;

absl::Status ValidateCreateIds(const CreateTaskCommand& c) {
  if (absl::Status s = ValidateId("task_id", c.task_id); !s.ok()) return s;
  if (absl::StartsWith(c.task_id, kReservedIdPrefix)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "task_id: ids starting with \"", kReservedIdPrefix, "\" are reserved for the service"));
  }
  if (absl::Status s = ValidateId("patient_id", c.patient_id); !s.ok()) return s;
  if (absl::Status s = ValidateOptionalId("assignee", c.assignee); !s.ok()) return s;
  if (absl::Status s = ValidateOptionalId("practice_id", c.practice_id); !s.ok()) return s;
  return ValidateOptionalId("rule_id", c.rule_id);
}

// Category and priority may be unset (CUSTOM, ROUTINE); an unknown number is refused.
absl::Status ValidateCreateWorkflow(const CreateTaskCommand& c) {
  if (!v1::TaskCategory_IsValid(c.category)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "category: ", static_cast<int>(c.category),
        " is not a TaskCategory (want RECALL_OVERDUE, UNSCHEDULED_TREATMENT, PAST_DUE_BALANCE, "
        "BROKEN_APPOINTMENT, APPOINTMENT_CONFIRMATION, REACTIVATION, CUSTOM or unset)"));
  }
  if (!v1::TaskPriority_IsValid(c.priority)) {
    return absl::InvalidArgumentError(
        absl::StrCat("priority: ", static_cast<int>(c.priority),
                     " is not a TaskPriority (want ROUTINE, URGENT or unset for ROUTINE)"));
  }
  if (absl::Status s = ValidateCadence(c.cadence_days); !s.ok()) return s;
  return ValidateMaxAttempts(c.max_attempts);
}

absl::Status ValidateCreateShape(const CreateTaskCommand& c) {
  if (absl::Status s = ValidateCreateIds(c); !s.ok()) return s;
  if (c.kind != v1::MANUAL && c.kind != v1::AUTOMATIC) {
    return absl::InvalidArgumentError(
        absl::StrCat("kind: must be MANUAL or AUTOMATIC (got ", static_cast<int>(c.kind), ")"));
  }
  if (absl::Status s = ValidateText("title", c.title, kMaxTitleLength); !s.ok()) return s;
  if (!c.follow_up_date.empty()) {
    if (auto day = ParseDate("follow_up_date", c.follow_up_date); !day.ok()) return day.status();
  }
  if (c.kind == v1::AUTOMATIC && !c.expires_at.has_value()) {
    return absl::InvalidArgumentError("expires_at: required for AUTOMATIC tasks");
  }
  if (c.kind == v1::MANUAL && c.expires_at.has_value()) {
    return absl::InvalidArgumentError(
        "expires_at: must be empty for MANUAL tasks (manual tasks never expire)");
  }
  if (absl::Status s = ValidateCreateWorkflow(c); !s.ok()) return s;
  return ValidateMeta(c.meta);
}

absl::Status ValidateCancelShape(const CancelTaskCommand& c) {
  if (absl::Status s = ValidateId("task_id", c.task_id); !s.ok()) return s;
  if (c.reason != v1::CANCELLED && c.reason != v1::ENTERED_IN_ERROR) {
    return absl::InvalidArgumentError(absl::StrCat(
        "reason: must be CANCELLED or ENTERED_IN_ERROR (got ",
        v1::CloseReason_IsValid(c.reason) ? v1::CloseReason_Name(c.reason)
                                          : absl::StrCat(static_cast<int>(c.reason)),
        ")"));
  }
  if (absl::StripAsciiWhitespace(c.notes).empty()) {
    return absl::InvalidArgumentError("notes: required (say why the task is cancelled)");
  }
  if (absl::Status s = ValidateText("notes", c.notes, kMaxNotesLength); !s.ok()) return s;
  if (absl::Status s = ValidateExpectedVersion(c.expected_version); !s.ok()) return s;
  return ValidateMeta(c.meta);
}

absl::Status CheckCreate(const v1::Task* state, const CreateTaskCommand& c,
                         const DecideContext& ctx) {
  if (state != nullptr) {
    return absl::AlreadyExistsError(
        absl::StrCat("task_id: task \"", c.task_id, "\" already exists"));
  }
  if (!c.follow_up_date.empty()) {
    if (absl::Status s = CheckFollowUpDate(c.follow_up_date, ctx, c.practice_id); !s.ok()) {
      return s;
    }
  }
  if (c.expires_at.has_value()) {
    if (*c.expires_at <= ctx.now) {
      return absl::InvalidArgumentError(absl::StrCat(
          "expires_at: ", absl::FormatTime(*c.expires_at), " is not in the future"));
    }
    if (*c.expires_at - ctx.now > absl::Hours(24) * kMaxDaysAhead) {
      return absl::InvalidArgumentError(absl::StrCat(
          "expires_at: more than ", kMaxDaysAhead, " days ahead"));
    }
  }
  return absl::OkStatus();
}

// The practice, category, priority and the first cadence follow-up, with their defaults.
void SetWorkflowFields(const CreateTaskCommand& c, const DecideContext& ctx,
                       v1::TaskCreated& created) {
  created.set_practice_id(c.practice_id.empty() ? kDefaultPracticeId : c.practice_id);
  created.set_category(c.category == v1::TASK_CATEGORY_UNSPECIFIED ? v1::CUSTOM : c.category);
  created.set_rule_id(c.rule_id);
  created.set_priority(c.priority == v1::TASK_PRIORITY_UNSPECIFIED ? v1::ROUTINE : c.priority);
  created.mutable_cadence_days()->Add(c.cadence_days.begin(), c.cadence_days.end());
  created.set_max_attempts(c.max_attempts);
  if (c.cadence_days.empty()) return;
  const absl::CivilDay today = absl::ToCivilDay(ctx.now, ZoneOf(ctx, c.practice_id));
  created.set_cadence_start_date(FormatDate(today));
  if (c.follow_up_date.empty()) {
    created.set_follow_up_date(FormatDate(*CadenceDay(c.cadence_days, today, 0)));
  }
}

absl::StatusOr<std::vector<NewEvent>> DecideCreate(const v1::Task* state,
                                                   const CreateTaskCommand& c,
                                                   const DecideContext& ctx) {
  if (absl::Status s = CheckCreate(state, c, ctx); !s.ok()) return s;
  StoredEvent e = NewEventFor(c.task_id, ctx.now, c.meta);
  v1::TaskCreated* created = e.mutable_task_created();
  created->set_patient_id(c.patient_id);
  created->set_kind(c.kind);
  created->set_title(c.title);
  created->set_assignee(c.assignee);
  created->set_follow_up_date(c.follow_up_date);
  if (c.expires_at.has_value()) *created->mutable_expires_at() = ToProto(*c.expires_at);
  SetWorkflowFields(c, ctx, *created);
  std::vector<NewEvent> out;
  out.push_back(NewEvent{std::move(e)});
  return out;
}

absl::StatusOr<std::vector<NewEvent>> DecideExpire(const v1::Task* state,
                                                   const ExpireTaskCommand& c,
                                                   const DecideContext& ctx) {
  if (absl::Status s = CheckExists(state, c.task_id); !s.ok()) return s;
  if (state->status() == v1::CLOSED) return std::vector<NewEvent>{};  // closed meanwhile
  if (state->kind() != v1::AUTOMATIC || !state->has_expires_at()) {
    return absl::FailedPreconditionError(
        absl::StrCat("task \"", c.task_id, "\" is not automatic and never expires"));
  }
  const absl::Time expires_at = FromProto(state->expires_at());
  if (ctx.now < expires_at) {
    return absl::FailedPreconditionError(absl::StrCat(
        "task \"", c.task_id, "\" does not expire until ", absl::FormatTime(expires_at)));
  }
  StoredEvent e = NewEventFor(c.task_id, expires_at, CommandMeta{kExpiryActor, ""});
  e.mutable_task_closed()->set_reason(v1::EXPIRED);
  std::vector<NewEvent> out;
  out.push_back(NewEvent{std::move(e)});
  return out;
}

// A caller limited to practices (CommandMeta::practices) acts only in them: the practice a
// command names (CreateTask, ResolveTasks, SetContactPreference), or the one of the task it
// changes (none yet: the rules say NOT_FOUND).
absl::Status CheckPracticeOf(const Command& command, const v1::Task* state) {
  const CommandMeta* meta = MetaOf(command);
  if (meta == nullptr || meta->practices.empty()) return absl::OkStatus();
  const std::string* named = std::visit(
      [](const auto& c) -> const std::string* {
        if constexpr (requires { c.practice_id; }) {
          return &c.practice_id;
        } else {
          return nullptr;
        }
      },
      command);
  if (named != nullptr) return CheckPracticeAllowed(*meta, *named);
  if (state == nullptr) return absl::OkStatus();
  return CheckPracticeAllowed(*meta, state->practice_id());
}

absl::StatusOr<std::vector<NewEvent>> DecideCancel(const v1::Task* state,
                                                   const CancelTaskCommand& c,
                                                   const DecideContext& ctx) {
  if (absl::Status s = CheckChangeable(state, c.task_id, ctx.now, c.expected_version,
                                       "cannot be cancelled");
      !s.ok()) {
    return s;
  }
  StoredEvent e = NewEventFor(c.task_id, ctx.now, c.meta);
  e.mutable_task_closed()->set_reason(c.reason);
  e.mutable_task_closed()->set_notes(c.notes);
  std::vector<NewEvent> out;
  out.push_back(NewEvent{std::move(e)});
  return out;
}

}  // namespace

const std::string& TaskIdOf(const Command& command) {
  static const std::string* const kNone = new std::string();
  return std::visit(
      Overloaded{[](const ResolveTasksCommand&) -> const std::string& { return *kNone; },
                 [](const SetContactPreferenceCommand&) -> const std::string& { return *kNone; },
                 [](const ErasePatientCommand&) -> const std::string& { return *kNone; },
                 [](const auto& c) -> const std::string& { return c.task_id; }},
      command);
}

const CommandMeta* MetaOf(const Command& command) {
  return std::visit(
      Overloaded{[](const ExpireTaskCommand&) -> const CommandMeta* { return nullptr; },
                 [](const auto& c) -> const CommandMeta* { return &c.meta; }},
      command);
}

absl::Status ValidateShape(const Command& command) {
  return std::visit(
      Overloaded{[](const CreateTaskCommand& c) { return ValidateCreateShape(c); },
                 [](const LogContactCommand& c) { return ValidateLogContactShape(c); },
                 [](const ExpireTaskCommand& c) { return ValidateId("task_id", c.task_id); },
                 [](const AssignTaskCommand& c) { return ValidateAssignShape(c); },
                 [](const ClaimTaskCommand& c) { return ValidateClaimShape(c); },
                 [](const CancelTaskCommand& c) { return ValidateCancelShape(c); },
                 [](const ResolveTasksCommand& c) { return ValidateResolveShape(c); },
                 [](const SetContactPreferenceCommand& c) { return ValidatePreferenceShape(c); },
                 [](const ErasePatientCommand& c) { return ValidateEraseShape(c); }},
      command);
}

std::vector<std::string> StreamsOf(const Command& command) {
  const std::string& task_id = TaskIdOf(command);
  if (task_id.empty()) return {};
  return {task_id};
}

std::vector<PatientKey> PatientsOf(const Command& command, const TaskStates& states) {
  auto key = [](const std::string& practice_id, const std::string& patient_id) {
    return PatientKey{practice_id.empty() ? kDefaultPracticeId : practice_id, patient_id};
  };
  return std::visit(
      Overloaded{
          [&](const CreateTaskCommand& c) { return std::vector{key(c.practice_id, c.patient_id)}; },
          [&](const ResolveTasksCommand& c) {
            return std::vector{key(c.practice_id, c.patient_id)};
          },
          [&](const SetContactPreferenceCommand& c) {
            return std::vector{key(c.practice_id, c.patient_id)};
          },
          [&](const ErasePatientCommand& c) {
            return std::vector{key(c.practice_id, c.patient_id)};
          },
          [&](const LogContactCommand& c) {
            auto it = states.find(c.task_id);
            if (c.outcome != v1::REQUESTED_NO_CONTACT || it == states.end() ||
                it->second == nullptr) {
              return std::vector<PatientKey>{};
            }
            return std::vector{key(it->second->practice_id(), it->second->patient_id())};
          },
          [](const auto&) { return std::vector<PatientKey>{}; }},
      command);
}

absl::StatusOr<std::vector<NewEvent>> Decide(const std::optional<v1::Task>& state,
                                             const Command& command,
                                             const DecideContext& context) {
  return Decide(state.has_value() ? &*state : nullptr, command, context);
}

absl::StatusOr<std::vector<NewEvent>> Decide(const v1::Task* state, const Command& command,
                                             const DecideContext& context) {
  return Decide(TaskStates{{TaskIdOf(command), state}}, command, context);
}

absl::StatusOr<std::vector<NewEvent>> Decide(const TaskStates& states, const Command& command,
                                             const DecideContext& context) {
  return Decide(states, PatientStates(), command, context);
}

namespace {

// The commands about one task: its state from `states` (every stream StreamsOf names has an
// entry; a missing one is the caller's bug).
absl::StatusOr<const v1::Task*> StateOf(const TaskStates& states, const std::string& task_id) {
  auto it = states.find(task_id);
  if (it == states.end()) {
    return absl::InternalError(absl::StrCat("Decide: no state given for \"", task_id, "\""));
  }
  return it->second;
}

absl::StatusOr<std::vector<NewEvent>> DecideOnTask(const v1::Task* state,
                                                   const TaskStates& states,
                                                   const PatientStates& patients,
                                                   const Command& command,
                                                   const DecideContext& ctx) {
  using Events = absl::StatusOr<std::vector<NewEvent>>;
  return std::visit(
      Overloaded{
          [&](const CreateTaskCommand& c) -> Events {
            Events created = DecideCreate(state, c, ctx);
            if (!created.ok()) return created;
            if (absl::Status s = CheckCreateForPatient(states, patients, c, ctx); !s.ok()) {
              return s;
            }
            return created;
          },
          [&](const LogContactCommand& c) -> Events {
            Events logged = DecideLogContact(state, c, ctx);
            if (!logged.ok() || c.outcome != v1::REQUESTED_NO_CONTACT) return logged;
            Events more = NoContactEvents(states, patients, *state, c, ctx);
            if (!more.ok()) return more.status();
            for (NewEvent& e : *more) logged->push_back(std::move(e));
            return logged;
          },
          [&](const ExpireTaskCommand& c) { return DecideExpire(state, c, ctx); },
          [&](const AssignTaskCommand& c) { return DecideAssign(state, c, ctx); },
          [&](const ClaimTaskCommand& c) { return DecideClaim(state, c, ctx); },
          [&](const CancelTaskCommand& c) { return DecideCancel(state, c, ctx); },
          [&](const ResolveTasksCommand& c) { return DecideResolve(states, patients, c, ctx); },
          [&](const SetContactPreferenceCommand& c) {
            return DecideSetPreference(states, patients, c, ctx);
          },
          [&](const ErasePatientCommand& c) { return DecideErase(states, patients, c, ctx); }},
      command);
}

}  // namespace

absl::StatusOr<std::vector<NewEvent>> Decide(const TaskStates& states,
                                             const PatientStates& patients,
                                             const Command& command,
                                             const DecideContext& context) {
  if (absl::Status s = ValidateShape(command); !s.ok()) return s;
  const v1::Task* state = nullptr;
  if (const std::string& task_id = TaskIdOf(command); !task_id.empty()) {
    absl::StatusOr<const v1::Task*> found = StateOf(states, task_id);
    if (!found.ok()) return found.status();
    state = *found;
  }
  if (absl::Status s = CheckPracticeOf(command, state); !s.ok()) return s;
  return DecideOnTask(state, states, patients, command, context);
}

}  // namespace outreach::domain
