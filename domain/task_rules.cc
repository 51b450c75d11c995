#include "domain/task_rules.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "domain/events.h"
#include "domain/overloaded.h"
#include "domain/validation.h"

namespace outreach::domain {
namespace {

using storage::v1::StoredEvent;

absl::Status ValidateMeta(const CommandMeta& meta) {
  if (absl::Status s = ValidateId("actor", meta.actor); !s.ok()) return s;
  if (absl::Status s = ValidateOptionalId("on_behalf_of", meta.on_behalf_of); !s.ok()) return s;
  return ValidateOptionalId("request_id", meta.request_id);
}

absl::Status ValidateCreateShape(const CreateTaskCommand& c) {
  if (absl::Status s = ValidateId("task_id", c.task_id); !s.ok()) return s;
  if (absl::StartsWith(c.task_id, kReservedIdPrefix)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "task_id: ids starting with \"", kReservedIdPrefix, "\" are reserved for the service"));
  }
  if (absl::Status s = ValidateId("patient_id", c.patient_id); !s.ok()) return s;
  if (c.kind != v1::MANUAL && c.kind != v1::AUTOMATIC) {
    return absl::InvalidArgumentError(
        absl::StrCat("kind: must be MANUAL or AUTOMATIC (got ", static_cast<int>(c.kind), ")"));
  }
  if (absl::Status s = ValidateText("title", c.title, kMaxTitleLength); !s.ok()) return s;
  if (absl::Status s = ValidateOptionalId("assignee", c.assignee); !s.ok()) return s;
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
  return ValidateMeta(c.meta);
}

absl::Status ValidateLogContactShape(const LogContactCommand& c) {
  if (absl::Status s = ValidateId("task_id", c.task_id); !s.ok()) return s;
  if (c.outcome == v1::CONTACT_OUTCOME_UNSPECIFIED || !v1::ContactOutcome_IsValid(c.outcome)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "outcome: must be NO_ANSWER, LEFT_MESSAGE, DID_NOT_SCHEDULE or SCHEDULED (got ",
        static_cast<int>(c.outcome), ")"));
  }
  if (absl::Status s = ValidateText("notes", c.notes, kMaxNotesLength); !s.ok()) return s;
  if (c.close_task) {
    if (!c.follow_up_date.empty()) {
      return absl::InvalidArgumentError(
          "follow_up_date: must be empty with close_task (Log and Close Task sets no follow-up)");
    }
  } else {
    if (c.follow_up_date.empty()) {
      return absl::InvalidArgumentError(
          "follow_up_date: required for Log Contact (set close_task to log and close instead)");
    }
    if (auto day = ParseDate("follow_up_date", c.follow_up_date); !day.ok()) return day.status();
  }
  if (c.expected_version < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected_version: ", c.expected_version, " is negative (0 = don't check)"));
  }
  return ValidateMeta(c.meta);
}

// A follow-up date must be today or later in the service's time zone, and not absurdly far out.
absl::Status CheckFollowUpDate(const std::string& text, const DecideContext& ctx) {
  absl::StatusOr<absl::CivilDay> day = ParseDate("follow_up_date", text);
  if (!day.ok()) return day.status();
  const absl::CivilDay today = absl::ToCivilDay(ctx.now, ctx.time_zone);
  if (*day < today) {
    return absl::InvalidArgumentError(absl::StrCat("follow_up_date: ", text,
                                                   " is before today (", FormatDate(today),
                                                   " in ", ctx.time_zone.name(), ")"));
  }
  if (*day - today > kMaxDaysAhead) {
    return absl::InvalidArgumentError(absl::StrCat(
        "follow_up_date: ", text, " is more than ", kMaxDaysAhead, " days after today"));
  }
  return absl::OkStatus();
}

StoredEvent NewEventFor(const std::string& task_id, absl::Time occurred_at,
                        const std::string& actor, const std::string& request_id,
                        const std::string& on_behalf_of = "") {
  StoredEvent e;
  e.set_task_id(task_id);
  *e.mutable_occurred_at() = ToProto(occurred_at);
  e.set_actor(actor);
  e.set_request_id(request_id);
  e.set_on_behalf_of(on_behalf_of);
  return e;
}

absl::StatusOr<std::vector<NewEvent>> DecideCreate(const v1::Task* state,
                                                   const CreateTaskCommand& c,
                                                   const DecideContext& ctx) {
  if (state != nullptr) {
    return absl::AlreadyExistsError(
        absl::StrCat("task_id: task \"", c.task_id, "\" already exists"));
  }
  if (!c.follow_up_date.empty()) {
    if (absl::Status s = CheckFollowUpDate(c.follow_up_date, ctx); !s.ok()) return s;
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
  StoredEvent e = NewEventFor(c.task_id, ctx.now, c.meta.actor, c.meta.request_id,
                              c.meta.on_behalf_of);
  v1::TaskCreated* created = e.mutable_task_created();
  created->set_patient_id(c.patient_id);
  created->set_kind(c.kind);
  created->set_title(c.title);
  created->set_assignee(c.assignee);
  created->set_follow_up_date(c.follow_up_date);
  if (c.expires_at.has_value()) *created->mutable_expires_at() = ToProto(*c.expires_at);
  std::vector<NewEvent> out;
  out.push_back(NewEvent{std::move(e)});
  return out;
}

absl::Status CheckAcceptsContacts(const v1::Task& task, absl::Time now) {
  if (task.status() == v1::CLOSED) {
    return absl::FailedPreconditionError(absl::StrCat(
        "task \"", task.task_id(), "\" is closed (", v1::CloseReason_Name(task.close_reason()),
        ") and accepts no further contacts"));
  }
  if (IsExpired(task, now)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "task \"", task.task_id(), "\" expired at ",
        absl::FormatTime(absl::RFC3339_full, FromProto(task.expires_at()), absl::UTCTimeZone()),
        " and accepts no further contacts"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<NewEvent>> DecideLogContact(const v1::Task* state,
                                                       const LogContactCommand& c,
                                                       const DecideContext& ctx) {
  if (state == nullptr) {
    return absl::NotFoundError(absl::StrCat("task_id: no task \"", c.task_id, "\""));
  }
  if (absl::Status s = CheckAcceptsContacts(*state, ctx.now); !s.ok()) return s;
  if (c.expected_version != 0 && c.expected_version != state->version()) {
    return absl::AbortedError(absl::StrCat("expected_version: task \"", c.task_id,
                                           "\" is at version ", state->version(), ", not ",
                                           c.expected_version));
  }
  if (!c.close_task) {
    if (absl::Status s = CheckFollowUpDate(c.follow_up_date, ctx); !s.ok()) return s;
  }
  absl::Time contacted_at = ctx.now;
  if (c.contacted_at.has_value()) {
    contacted_at = *c.contacted_at;
    if (contacted_at > ctx.now + kClockSkewAllowance) {
      return absl::InvalidArgumentError(absl::StrCat(
          "contacted_at: ", absl::FormatTime(contacted_at), " is in the future"));
    }
    if (contacted_at < FromProto(state->created_at())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "contacted_at: ", absl::FormatTime(contacted_at), " is before the task was created (",
          absl::FormatTime(FromProto(state->created_at())), ")"));
    }
  }
  std::vector<NewEvent> out;
  StoredEvent contact = NewEventFor(c.task_id, contacted_at, c.meta.actor, c.meta.request_id,
                                    c.meta.on_behalf_of);
  v1::ContactLogged* logged = contact.mutable_contact_logged();
  logged->set_outcome(c.outcome);
  logged->set_notes(c.notes);
  logged->set_follow_up_date(c.follow_up_date);
  logged->set_close_task(c.close_task);
  out.push_back(NewEvent{std::move(contact)});
  if (c.close_task) {
    StoredEvent closed = NewEventFor(c.task_id, ctx.now, c.meta.actor, c.meta.request_id,
                                     c.meta.on_behalf_of);
    closed.mutable_task_closed()->set_reason(v1::CONTACT_OUTCOME);
    closed.mutable_task_closed()->set_outcome(c.outcome);
    out.push_back(NewEvent{std::move(closed)});
  }
  return out;
}

absl::StatusOr<std::vector<NewEvent>> DecideExpire(const v1::Task* state,
                                                   const ExpireTaskCommand& c,
                                                   const DecideContext& ctx) {
  if (state == nullptr) {
    return absl::NotFoundError(absl::StrCat("task_id: no task \"", c.task_id, "\""));
  }
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
  StoredEvent e = NewEventFor(c.task_id, expires_at, kExpiryActor, "");
  e.mutable_task_closed()->set_reason(v1::EXPIRED);
  std::vector<NewEvent> out;
  out.push_back(NewEvent{std::move(e)});
  return out;
}

absl::Status Corrupt(const StoredEvent& event, absl::string_view why) {
  return absl::DataLossError(absl::StrCat("event at position ", event.position(), " (task \"",
                                          event.task_id(), "\" version ", event.version(),
                                          "): ", why));
}

// The payload's name in the event table ("TaskCreated"), for messages about a corrupt log.
absl::string_view NameOf(StoredEvent::PayloadCase payload_case) {
  const EventKind* kind = FindEventKind(payload_case);
  return kind != nullptr ? kind->name : "an event without payload";
}

absl::Status ApplyTaskCreated(v1::Task& state, const StoredEvent& event) {
  if (!state.task_id().empty()) {
    return Corrupt(event, absl::StrCat(NameOf(event.payload_case()), " on an existing task"));
  }
  const v1::TaskCreated& p = event.task_created();
  state.set_task_id(event.task_id());
  state.set_patient_id(p.patient_id());
  state.set_kind(p.kind());
  state.set_status(v1::OPEN);
  state.set_title(p.title());
  state.set_assignee(p.assignee());
  state.set_follow_up_date(p.follow_up_date());
  if (p.has_expires_at()) *state.mutable_expires_at() = p.expires_at();
  *state.mutable_created_at() = event.recorded_at();
  state.set_created_by(event.actor());
  return absl::OkStatus();
}

// Every event but the first of a stream needs a task that exists and is not closed.
absl::Status CheckFollowsOpenTask(const v1::Task& state, const StoredEvent& event) {
  if (state.task_id().empty()) {
    return Corrupt(event, absl::StrCat(NameOf(event.payload_case()), " before ",
                                       NameOf(StoredEvent::kTaskCreated)));
  }
  if (state.status() == v1::CLOSED) {
    return Corrupt(event, absl::StrCat(NameOf(event.payload_case()), " on a closed task"));
  }
  return absl::OkStatus();
}

absl::Status ApplyContactLogged(v1::Task& state, const StoredEvent& event) {
  if (absl::Status s = CheckFollowsOpenTask(state, event); !s.ok()) return s;
  const v1::ContactLogged& p = event.contact_logged();
  v1::Contact* contact = state.add_contacts();
  contact->set_outcome(p.outcome());
  contact->set_notes(p.notes());
  contact->set_follow_up_date(p.follow_up_date());
  *contact->mutable_contacted_at() = event.occurred_at();
  *contact->mutable_logged_at() = event.recorded_at();
  contact->set_logged_by(event.actor());
  contact->set_closed_task(p.close_task());
  if (!p.close_task()) {
    // The action decides, not the outcome: any outcome logged with a follow-up keeps it open.
    state.set_status(v1::IN_PROGRESS);
    state.set_follow_up_date(p.follow_up_date());
  }
  return absl::OkStatus();
}

absl::Status ApplyTaskClosed(v1::Task& state, const StoredEvent& event) {
  if (absl::Status s = CheckFollowsOpenTask(state, event); !s.ok()) return s;
  const v1::TaskClosed& p = event.task_closed();
  state.set_status(v1::CLOSED);
  state.set_close_reason(p.reason());
  if (p.reason() == v1::CONTACT_OUTCOME) state.set_closing_outcome(p.outcome());
  *state.mutable_closed_at() = event.occurred_at();
  state.set_closed_by(event.actor());
  state.clear_follow_up_date();
  return absl::OkStatus();
}

}  // namespace

const std::string& TaskIdOf(const Command& command) {
  // Generic on purpose: every command names its task, and one that does not fails to compile.
  return std::visit([](const auto& c) -> const std::string& { return c.task_id; }, command);
}

const CommandMeta* MetaOf(const Command& command) {
  return std::visit(
      Overloaded{[](const CreateTaskCommand& c) -> const CommandMeta* { return &c.meta; },
                 [](const LogContactCommand& c) -> const CommandMeta* { return &c.meta; },
                 [](const ExpireTaskCommand&) -> const CommandMeta* { return nullptr; }},
      command);
}

absl::Status ValidateShape(const Command& command) {
  return std::visit(
      Overloaded{[](const CreateTaskCommand& c) { return ValidateCreateShape(c); },
                 [](const LogContactCommand& c) { return ValidateLogContactShape(c); },
                 [](const ExpireTaskCommand& c) { return ValidateId("task_id", c.task_id); }},
      command);
}

std::vector<std::string> StreamsOf(const Command& command) { return {TaskIdOf(command)}; }

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
  if (absl::Status s = ValidateShape(command); !s.ok()) return s;
  // Every stream StreamsOf names has an entry; a missing one is the caller's bug.
  auto state_of = [&](const std::string& task_id) -> absl::StatusOr<const v1::Task*> {
    auto it = states.find(task_id);
    if (it == states.end()) {
      return absl::InternalError(absl::StrCat("Decide: no state given for \"", task_id, "\""));
    }
    return it->second;
  };
  absl::StatusOr<const v1::Task*> state = state_of(TaskIdOf(command));
  if (!state.ok()) return state.status();
  return std::visit(
      Overloaded{
          [&](const CreateTaskCommand& c) { return DecideCreate(*state, c, context); },
          [&](const LogContactCommand& c) { return DecideLogContact(*state, c, context); },
          [&](const ExpireTaskCommand& c) { return DecideExpire(*state, c, context); }},
      command);
}

absl::Status Apply(v1::Task& state, const StoredEvent& event) {
  if (event.version() != state.version() + 1) {
    return Corrupt(event, absl::StrCat("follows version ", state.version()));
  }
  if (!state.task_id().empty() && event.task_id() != state.task_id()) {
    return Corrupt(event, absl::StrCat("belongs to another task than \"", state.task_id(), "\""));
  }
  absl::Status applied;
  switch (event.payload_case()) {  // no default: -Wswitch names a payload case left unhandled
    case StoredEvent::kTaskCreated:
      applied = ApplyTaskCreated(state, event);
      break;
    case StoredEvent::kContactLogged:
      applied = ApplyContactLogged(state, event);
      break;
    case StoredEvent::kTaskClosed:
      applied = ApplyTaskClosed(state, event);
      break;
    case StoredEvent::PAYLOAD_NOT_SET:
      applied = Corrupt(event, "has no payload");
      break;
  }
  if (!applied.ok()) return applied;
  state.set_version(event.version());
  *state.mutable_updated_at() = event.recorded_at();
  return absl::OkStatus();
}

bool IsExpired(const v1::Task& task, absl::Time now) {
  return task.kind() == v1::AUTOMATIC && task.status() != v1::CLOSED && task.has_expires_at() &&
         now >= FromProto(task.expires_at());
}

}  // namespace outreach::domain
