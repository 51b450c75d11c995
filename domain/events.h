// The closed set of event payloads, as one table. Each row is one case of the `payload` oneof,
// which storage::v1::StoredEvent (the stored body) and v1::EventRecord (what EventLog serves)
// both carry: its oneof case in either message, its v1::EventType (the SubscribeEvents filter)
// and its names. Encoding (StoredEvent -> EventRecord), the event_types filter and its error
// message read this table, so that a new event type is added in its row here and in its case of
// domain::Apply (a switch that -Wswitch keeps complete), and nowhere else.
//
// The compiler cannot check that the table lists every case: tests/domain/events_test.cc does,
// against the generated descriptors. Constant data; thread-safe.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "outreach/v1/event_log.pb.h"
#include "outreach/v1/events.pb.h"
#include "outreach/v1/storage.pb.h"

namespace outreach::domain {

struct EventKind {
  storage::v1::StoredEvent::PayloadCase stored_case;
  v1::EventRecord::PayloadCase record_case;
  v1::EventType type;
  absl::string_view name;       // the payload message: "TaskCreated"
  absl::string_view type_name;  // the EventType value: "TASK_CREATED"
  // Copies the payload of `from`, which must be of this kind, into `to` (setting its case).
  void (*copy_payload)(const storage::v1::StoredEvent& from, v1::EventRecord& to);
};

// Every kind, in the order of the oneof (and of v1::EventType).
absl::Span<const EventKind> EventKinds();

// The row of a payload case or an event type; nullptr for PAYLOAD_NOT_SET,
// EVENT_TYPE_UNSPECIFIED and any value that names no event.
const EventKind* FindEventKind(storage::v1::StoredEvent::PayloadCase payload_case);
const EventKind* FindEventKind(v1::EventRecord::PayloadCase payload_case);
const EventKind* FindEventKind(v1::EventType type);

// The event types a filter may name, for messages: "TASK_CREATED, CONTACT_LOGGED, TASK_CLOSED
// or TASK_ASSIGNED".
std::string EventTypeList();

}  // namespace outreach::domain
