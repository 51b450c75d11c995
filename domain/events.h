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
  // The reverse: a served record's payload back into the stored message.
  void (*copy_payload_back)(const v1::EventRecord& from, storage::v1::StoredEvent& to);
};

// Every kind, in the order of the oneof (and of v1::EventType).
absl::Span<const EventKind> EventKinds();

// The row of a payload case or an event type; nullptr for PAYLOAD_NOT_SET,
// EVENT_TYPE_UNSPECIFIED and any value that names no event.
const EventKind* FindEventKind(storage::v1::StoredEvent::PayloadCase payload_case);
const EventKind* FindEventKind(v1::EventRecord::PayloadCase payload_case);
const EventKind* FindEventKind(v1::EventType type);

// A served record as domain::Apply takes it: the same fields and payload in the stored message
// (for folds over what EventLog serves: an export, a client's own replay). The hashes and the
// store-internal sealed bytes are not part of a state and are left out.
storage::v1::StoredEvent ToStoredEvent(const v1::EventRecord& record);

// The event types a filter may name, for messages: "TASK_CREATED, CONTACT_LOGGED, TASK_CLOSED
// or TASK_ASSIGNED".
std::string EventTypeList();

}  // namespace outreach::domain
