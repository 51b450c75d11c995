// The event table (domain/events.h) against the generated descriptors: every case of the payload
// oneof, in StoredEvent and in EventRecord, and every EventType has its row, and no row is extra.
// This is the net for what the compiler cannot see when an event type is added.
#include "domain/events.h"

#include <string>

#include "domain/task_rules.h"

#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"

namespace outreach::domain {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::OneofDescriptor;

const OneofDescriptor& PayloadOneof(const Descriptor& message) {
  const OneofDescriptor* oneof = message.FindOneofByName("payload");
  EXPECT_NE(oneof, nullptr) << message.full_name();
  return *oneof;
}

TEST(EventKindsTest, EveryStoredEventPayloadCaseHasARow) {
  const OneofDescriptor& payload = PayloadOneof(*storage::v1::StoredEvent::descriptor());
  for (int i = 0; i < payload.field_count(); ++i) {
    const FieldDescriptor& field = *payload.field(i);
    const EventKind* kind =
        FindEventKind(static_cast<storage::v1::StoredEvent::PayloadCase>(field.number()));
    ASSERT_NE(kind, nullptr) << "StoredEvent." << field.name() << " has no row in domain/events";
    EXPECT_EQ(kind->name, field.message_type()->name());
  }
  EXPECT_EQ(EventKinds().size(), static_cast<size_t>(payload.field_count()));
}

TEST(EventKindsTest, EveryEventRecordPayloadCaseHasARow) {
  const OneofDescriptor& payload = PayloadOneof(*v1::EventRecord::descriptor());
  for (int i = 0; i < payload.field_count(); ++i) {
    const FieldDescriptor& field = *payload.field(i);
    const EventKind* kind =
        FindEventKind(static_cast<v1::EventRecord::PayloadCase>(field.number()));
    ASSERT_NE(kind, nullptr) << "EventRecord." << field.name() << " has no row in domain/events";
    EXPECT_EQ(kind->name, field.message_type()->name());
  }
  EXPECT_EQ(EventKinds().size(), static_cast<size_t>(payload.field_count()));
}

TEST(EventKindsTest, EveryEventTypeHasARow) {
  const EnumDescriptor& types = *v1::EventType_descriptor();
  for (int i = 0; i < types.value_count(); ++i) {
    const int number = types.value(i)->number();
    if (number == v1::EVENT_TYPE_UNSPECIFIED) continue;
    const EventKind* kind = FindEventKind(static_cast<v1::EventType>(number));
    ASSERT_NE(kind, nullptr) << types.value(i)->name() << " has no row in domain/events";
    EXPECT_EQ(kind->type_name, types.value(i)->name());
  }
  EXPECT_EQ(EventKinds().size(), static_cast<size_t>(types.value_count() - 1));
}

// Each row pairs the same member of both oneofs (by name), not just any member.
TEST(EventKindsTest, EachRowNamesTheSameFieldInBothMessages) {
  const Descriptor& stored = *storage::v1::StoredEvent::descriptor();
  const Descriptor& record = *v1::EventRecord::descriptor();
  for (const EventKind& kind : EventKinds()) {
    const FieldDescriptor* stored_field = stored.FindFieldByNumber(kind.stored_case);
    const FieldDescriptor* record_field = record.FindFieldByNumber(kind.record_case);
    ASSERT_NE(stored_field, nullptr) << kind.name;
    ASSERT_NE(record_field, nullptr) << kind.name;
    EXPECT_EQ(stored_field->containing_oneof(), &PayloadOneof(stored)) << kind.name;
    EXPECT_EQ(record_field->containing_oneof(), &PayloadOneof(record)) << kind.name;
    EXPECT_EQ(stored_field->name(), record_field->name());
    EXPECT_EQ(stored_field->message_type(), record_field->message_type());
  }
}

TEST(EventKindsTest, CopyPayloadSetsTheRecordsCaseAndContent) {
  for (const EventKind& kind : EventKinds()) {
    storage::v1::StoredEvent stored;
    const FieldDescriptor* field = stored.GetDescriptor()->FindFieldByNumber(kind.stored_case);
    ASSERT_NE(field, nullptr) << kind.name;
    stored.GetReflection()->MutableMessage(&stored, field);  // sets the case
    v1::EventRecord record;
    kind.copy_payload(stored, record);
    EXPECT_EQ(record.payload_case(), kind.record_case) << kind.name;
  }
  storage::v1::StoredEvent created;
  created.mutable_task_created()->set_patient_id("p-1");
  v1::EventRecord record;
  FindEventKind(created.payload_case())->copy_payload(created, record);
  EXPECT_EQ(record.task_created().patient_id(), "p-1");
}

TEST(EventKindsTest, ToStoredEventGivesBackEveryPayloadAndTheEnvelope) {
  for (const EventKind& kind : EventKinds()) {
    storage::v1::StoredEvent stored;
    const FieldDescriptor* field = stored.GetDescriptor()->FindFieldByNumber(kind.stored_case);
    ASSERT_NE(field, nullptr) << kind.name;
    stored.GetReflection()->MutableMessage(&stored, field);
    v1::EventRecord record;
    kind.copy_payload(stored, record);
    EXPECT_EQ(ToStoredEvent(record).payload_case(), kind.stored_case) << kind.name;
  }
  v1::EventRecord record;
  record.set_position(7);
  record.set_task_id("t1");
  record.set_version(2);
  record.set_actor("nurse-1");
  record.set_on_behalf_of("dr-2");
  record.mutable_contact_logged()->set_notes("called");
  const storage::v1::StoredEvent stored = ToStoredEvent(record);
  EXPECT_EQ(stored.position(), 7u);
  EXPECT_EQ(stored.task_id(), "t1");
  EXPECT_EQ(stored.version(), 2);
  EXPECT_EQ(stored.actor(), "nurse-1");
  EXPECT_EQ(stored.on_behalf_of(), "dr-2");
  EXPECT_EQ(stored.contact_logged().notes(), "called");
}

TEST(EventKindsTest, NoPayloadAndUnspecifiedTypeHaveNoRow) {
  EXPECT_EQ(FindEventKind(storage::v1::StoredEvent::PAYLOAD_NOT_SET), nullptr);
  EXPECT_EQ(FindEventKind(v1::EventRecord::PAYLOAD_NOT_SET), nullptr);
  EXPECT_EQ(FindEventKind(v1::EVENT_TYPE_UNSPECIFIED), nullptr);
  EXPECT_EQ(FindEventKind(static_cast<v1::EventType>(42)), nullptr);
}

TEST(EventKindsTest, EventTypeListNamesEveryTypeInOrder) {
  EXPECT_EQ(EventTypeList(),
            "TASK_CREATED, CONTACT_LOGGED, TASK_CLOSED, TASK_ASSIGNED, CONTACT_PREFERENCE_SET or "
            "PATIENT_ERASED");
}

// Apply names events from the table; its messages for a corrupt log read as they always have.
TEST(EventKindsTest, ApplyNamesTheEventsOfACorruptLog) {
  storage::v1::StoredEvent contact;
  contact.set_task_id("t1");
  contact.set_version(1);
  contact.mutable_contact_logged();
  v1::Task empty;
  EXPECT_EQ(Apply(empty, contact).message(),
            "event at position 0 (task \"t1\" version 1): ContactLogged before TaskCreated");

  storage::v1::StoredEvent created = contact;
  created.mutable_task_created();
  v1::Task task;
  ASSERT_TRUE(Apply(task, created).ok());
  storage::v1::StoredEvent again = created;
  again.set_version(2);
  EXPECT_EQ(Apply(task, again).message(),
            "event at position 0 (task \"t1\" version 2): TaskCreated on an existing task");

  storage::v1::StoredEvent closed = again;
  closed.mutable_task_closed();
  ASSERT_TRUE(Apply(task, closed).ok());
  closed.set_version(3);
  EXPECT_EQ(Apply(task, closed).message(),
            "event at position 0 (task \"t1\" version 3): TaskClosed on a closed task");
}

}  // namespace
}  // namespace outreach::domain
