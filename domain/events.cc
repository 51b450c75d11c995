#include "domain/events.h"

#include <array>
#include <cstddef>

#include "absl/strings/str_cat.h"

namespace outreach::domain {
namespace {

using storage::v1::StoredEvent;

// One row per payload case. A new event type: a row here, its case in Apply (task_apply.cc).
constexpr std::array<EventKind, 6> kEventKinds = {{
    {StoredEvent::kTaskCreated, v1::EventRecord::kTaskCreated, v1::TASK_CREATED, "TaskCreated",
     "TASK_CREATED",
     [](const StoredEvent& from, v1::EventRecord& to) {
       *to.mutable_task_created() = from.task_created();
     },
     [](const v1::EventRecord& from, StoredEvent& to) {
       *to.mutable_task_created() = from.task_created();
     }},
    {StoredEvent::kContactLogged, v1::EventRecord::kContactLogged, v1::CONTACT_LOGGED,
     "ContactLogged", "CONTACT_LOGGED",
     [](const StoredEvent& from, v1::EventRecord& to) {
       *to.mutable_contact_logged() = from.contact_logged();
     },
     [](const v1::EventRecord& from, StoredEvent& to) {
       *to.mutable_contact_logged() = from.contact_logged();
     }},
    {StoredEvent::kTaskClosed, v1::EventRecord::kTaskClosed, v1::TASK_CLOSED, "TaskClosed",
     "TASK_CLOSED",
     [](const StoredEvent& from, v1::EventRecord& to) {
       *to.mutable_task_closed() = from.task_closed();
     },
     [](const v1::EventRecord& from, StoredEvent& to) {
       *to.mutable_task_closed() = from.task_closed();
     }},
    {StoredEvent::kTaskAssigned, v1::EventRecord::kTaskAssigned, v1::TASK_ASSIGNED,
     "TaskAssigned", "TASK_ASSIGNED",
     [](const StoredEvent& from, v1::EventRecord& to) {
       *to.mutable_task_assigned() = from.task_assigned();
     },
     [](const v1::EventRecord& from, StoredEvent& to) {
       *to.mutable_task_assigned() = from.task_assigned();
     }},
    {StoredEvent::kContactPreferenceSet, v1::EventRecord::kContactPreferenceSet,
     v1::CONTACT_PREFERENCE_SET, "ContactPreferenceSet", "CONTACT_PREFERENCE_SET",
     [](const StoredEvent& from, v1::EventRecord& to) {
       *to.mutable_contact_preference_set() = from.contact_preference_set();
     },
     [](const v1::EventRecord& from, StoredEvent& to) {
       *to.mutable_contact_preference_set() = from.contact_preference_set();
     }},
    {StoredEvent::kPatientErased, v1::EventRecord::kPatientErased, v1::PATIENT_ERASED,
     "PatientErased", "PATIENT_ERASED",
     [](const StoredEvent& from, v1::EventRecord& to) {
       *to.mutable_patient_erased() = from.patient_erased();
     },
     [](const v1::EventRecord& from, StoredEvent& to) {
       *to.mutable_patient_erased() = from.patient_erased();
     }},
}};

// The first row whose `field` equals `value`; nullptr if none does.
template <class Field, class Value>
const EventKind* FindBy(Field EventKind::*field, Value value) {
  for (const EventKind& kind : kEventKinds) {
    if (kind.*field == value) return &kind;
  }
  return nullptr;
}

}  // namespace

absl::Span<const EventKind> EventKinds() { return kEventKinds; }

const EventKind* FindEventKind(StoredEvent::PayloadCase payload_case) {
  return FindBy(&EventKind::stored_case, payload_case);
}

const EventKind* FindEventKind(v1::EventRecord::PayloadCase payload_case) {
  return FindBy(&EventKind::record_case, payload_case);
}

const EventKind* FindEventKind(v1::EventType type) { return FindBy(&EventKind::type, type); }

StoredEvent ToStoredEvent(const v1::EventRecord& record) {
  StoredEvent event;
  event.set_schema_version(record.schema_version());
  event.set_position(record.position());
  event.set_task_id(record.task_id());
  event.set_version(record.version());
  event.set_event_id(record.event_id());
  if (record.has_recorded_at()) *event.mutable_recorded_at() = record.recorded_at();
  if (record.has_occurred_at()) *event.mutable_occurred_at() = record.occurred_at();
  event.set_actor(record.actor());
  event.set_request_id(record.request_id());
  event.set_on_behalf_of(record.on_behalf_of());
  if (const EventKind* kind = FindEventKind(record.payload_case())) {
    kind->copy_payload_back(record, event);
  }
  return event;
}

std::string EventTypeList() {
  std::string out;
  for (std::size_t i = 0; i < kEventKinds.size(); ++i) {
    if (i > 0) absl::StrAppend(&out, i + 1 == kEventKinds.size() ? " or " : ", ");
    absl::StrAppend(&out, kEventKinds[i].type_name);
  }
  return out;
}

}  // namespace outreach::domain
