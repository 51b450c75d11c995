// Apply: the fold of a task's events into its state (domain/task_rules.h). Every field of the
// state comes from the events alone, so that a projection rebuilt from the log is byte-identical
// to the live one; an event that cannot follow the state is DATA_LOSS, never silently accepted.
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "domain/events.h"
#include "domain/task_rules.h"
#include "domain/validation.h"

namespace outreach::domain {
namespace {

using storage::v1::StoredEvent;

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

// What an absent field of a schema version 1 event means (FillVersion1Defaults).
const std::string& PracticeOf(const v1::TaskCreated& p) {
  static const std::string* const kDefault = new std::string(kDefaultPracticeId);
  return p.practice_id().empty() ? *kDefault : p.practice_id();
}
v1::TaskCategory CategoryOf(const v1::TaskCreated& p) {
  return p.category() == v1::TASK_CATEGORY_UNSPECIFIED ? v1::CUSTOM : p.category();
}
v1::TaskPriority PriorityOf(const v1::TaskCreated& p) {
  return p.priority() == v1::TASK_PRIORITY_UNSPECIFIED ? v1::ROUTINE : p.priority();
}
v1::ContactChannel ChannelOf(const v1::ContactLogged& p) {
  return p.channel() == v1::CONTACT_CHANNEL_UNSPECIFIED ? v1::PHONE : p.channel();
}
v1::ContactDirection DirectionOf(const v1::ContactLogged& p) {
  return p.direction() == v1::CONTACT_DIRECTION_UNSPECIFIED ? v1::OUTBOUND : p.direction();
}

// The close reasons a contact causes; their TaskClosed carries the contact's outcome.
bool ClosedByContact(v1::CloseReason reason) {
  return reason == v1::CONTACT_OUTCOME || reason == v1::DO_NOT_CONTACT ||
         reason == v1::MAX_ATTEMPTS;
}

absl::Status ApplyTaskCreated(v1::Task& state, const StoredEvent& event) {
  if (!state.task_id().empty()) {
    return Corrupt(event, absl::StrCat(NameOf(event.payload_case()), " on an existing task"));
  }
  const v1::TaskCreated& p = event.task_created();
  if (p.cadence_days_size() > 0 && !ParseDate("cadence_start_date", p.cadence_start_date()).ok()) {
    return Corrupt(event, "has a cadence without a valid cadence_start_date");
  }
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
  state.set_practice_id(PracticeOf(p));
  state.set_category(CategoryOf(p));
  state.set_rule_id(p.rule_id());
  state.set_priority(PriorityOf(p));
  *state.mutable_cadence_days() = p.cadence_days();
  state.set_max_attempts(p.max_attempts());
  state.set_cadence_start_date(p.cadence_start_date());
  if (event.has_sealed()) state.set_sealed(event.sealed().SerializeAsString());
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

// Attempts, reached contacts, and the latest contact by contacted_at (a later one at the same
// instant wins).
void CountContact(v1::Task& state, const v1::Contact& contact) {
  state.set_attempt_count(state.attempt_count() + 1);
  if (IsReached(contact.outcome())) state.set_reached_count(state.reached_count() + 1);
  if (!state.has_last_contacted_at() ||
      FromProto(contact.contacted_at()) >= FromProto(state.last_contacted_at())) {
    state.set_last_outcome(contact.outcome());
    *state.mutable_last_contacted_at() = contact.contacted_at();
  }
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
  contact->set_channel(ChannelOf(p));
  contact->set_direction(DirectionOf(p));
  if (event.has_sealed()) contact->set_sealed(event.sealed().SerializeAsString());
  CountContact(state, *contact);
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
  if (ClosedByContact(p.reason())) state.set_closing_outcome(p.outcome());
  *state.mutable_closed_at() = event.occurred_at();
  state.set_closed_by(event.actor());
  state.clear_follow_up_date();
  state.set_close_source_ref(p.source_ref());
  state.set_close_notes(p.notes());
  if (event.has_sealed()) state.set_close_sealed(event.sealed().SerializeAsString());
  return absl::OkStatus();
}

absl::Status ApplyTaskAssigned(v1::Task& state, const StoredEvent& event) {
  if (absl::Status s = CheckFollowsOpenTask(state, event); !s.ok()) return s;
  const v1::TaskAssigned& p = event.task_assigned();
  if (p.previous_assignee() != state.assignee()) {
    return Corrupt(event, absl::StrCat("says the previous assignee was \"", p.previous_assignee(),
                                       "\", the task's was \"", state.assignee(), "\""));
  }
  state.set_assignee(p.assignee());
  return absl::OkStatus();
}

}  // namespace

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
    case StoredEvent::kTaskAssigned:
      applied = ApplyTaskAssigned(state, event);
      break;
    case StoredEvent::kContactPreferenceSet:
    case StoredEvent::kPatientErased:
      applied = Corrupt(event, "belongs to a patient's stream, not a task's");
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

bool IsReached(v1::ContactOutcome outcome) {
  return outcome == v1::DID_NOT_SCHEDULE || outcome == v1::SCHEDULED ||
         outcome == v1::REQUESTED_NO_CONTACT;
}

void FillVersion1Defaults(StoredEvent& event) {
  switch (event.payload_case()) {
    case StoredEvent::kTaskCreated: {
      v1::TaskCreated& p = *event.mutable_task_created();
      if (p.practice_id().empty()) p.set_practice_id(kDefaultPracticeId);
      p.set_category(CategoryOf(p));
      p.set_priority(PriorityOf(p));
      break;
    }
    case StoredEvent::kContactLogged: {
      v1::ContactLogged& p = *event.mutable_contact_logged();
      p.set_channel(ChannelOf(p));
      p.set_direction(DirectionOf(p));
      break;
    }
    case StoredEvent::kTaskClosed:
    case StoredEvent::kTaskAssigned:
    case StoredEvent::kContactPreferenceSet:
    case StoredEvent::kPatientErased:
    case StoredEvent::PAYLOAD_NOT_SET:
      break;
  }
}

}  // namespace outreach::domain
