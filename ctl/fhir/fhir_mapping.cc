#include "ctl/fhir/fhir_mapping.h"

#include <openssl/sha.h>

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "domain/events.h"
#include "domain/task_rules.h"
#include "domain/validation.h"
#include "outreach/v1/storage.pb.h"

namespace outreach::fhir {
namespace {

constexpr std::size_t kMaxFhirIdLength = 64;
constexpr std::size_t kHashedIdHexDigits = 40;

bool IsFhirId(absl::string_view id) {
  if (id.empty() || id.size() > kMaxFhirIdLength) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
  });
}

Json Coding(absl::string_view system, absl::string_view code) {
  return Json{{"system", system}, {"code", code}};
}

Json Concept(absl::string_view system, absl::string_view code) {
  return Json{{"coding", Json::array({Coding(system, code)})}, {"text", code}};
}

Json Identifier(absl::string_view system, absl::string_view value) {
  return Json{{"system", system}, {"value", value}};
}

// A reference to a resource this export does not contain (Patient, Practitioner, ...): its
// literal form, its type, and our id as a logical identifier.
Json Reference(absl::string_view type, absl::string_view system, absl::string_view id) {
  return Json{{"reference", absl::StrCat(type, "/", FhirId(id))},
              {"type", type},
              {"identifier", Identifier(system, id)}};
}

Json PatientReference(const v1::Task& task) {
  // An erased patient (README "Privacy") is named by no identifier, only the marker.
  if (task.patient_id() == domain::kErasedMarker) return Json{{"display", domain::kErasedMarker}};
  return Reference("Patient", kPatientIdSystem, task.patient_id());
}

Json TaskReference(absl::string_view task_id) {
  return Json{{"reference", absl::StrCat("Task/", FhirId(task_id))}, {"type", "Task"}};
}

// The assignee: a user is a Practitioner, "group:<id>" a CareTeam (Task.owner takes no Group).
Json OwnerReference(absl::string_view assignee) {
  if (absl::StartsWith(assignee, domain::kGroupAssigneePrefix)) {
    return Reference("CareTeam", kGroupIdSystem,
                     assignee.substr(sizeof(domain::kGroupAssigneePrefix) - 1));
  }
  return Reference("Practitioner", kUserIdSystem, assignee);
}

// ---- Task.status ---------------------------------------------------------------------------
//
// Proto enums carry sentinel enumerators, so these switches keep a default: it covers values
// newer than this build, which read as their closest generic meaning.

std::string ClosedStatus(v1::CloseReason reason, v1::ContactOutcome closing_outcome) {
  switch (reason) {
    case v1::APPOINTMENT_SCHEDULED:
      return "completed";
    case v1::CONTACT_OUTCOME:
      return closing_outcome == v1::SCHEDULED ? "completed" : "failed";
    case v1::MAX_ATTEMPTS:
      return "failed";
    case v1::EXPIRED:
    case v1::CANCELLED:
    case v1::CRITERIA_CLEARED:
    case v1::DO_NOT_CONTACT:
    case v1::PATIENT_DATA_ERASED:
      return "cancelled";
    case v1::ENTERED_IN_ERROR:
      return "entered-in-error";
    default:
      return "cancelled";
  }
}

// ---- Task's optional parts -----------------------------------------------------------------

// Why a task failed or was cancelled: our close reason, with the notes CancelTask required (or
// the outside reference that resolved it) as text.
Json StatusReason(const v1::Task& task) {
  Json reason = Concept(kCloseReasonSystem, v1::CloseReason_Name(task.close_reason()));
  if (!task.close_notes().empty()) {
    reason["text"] = task.close_notes();
  } else if (task.close_reason() == v1::CONTACT_OUTCOME ||
             task.close_reason() == v1::MAX_ATTEMPTS) {
    reason["text"] = absl::StrCat(v1::CloseReason_Name(task.close_reason()), " (last outcome ",
                                  v1::ContactOutcome_Name(task.closing_outcome()), ")");
  }
  return reason;
}

// From the first contact (by when it happened) to the close; either end may be missing.
Json ExecutionPeriod(const v1::Task& task) {
  Json period = Json::object();
  const v1::Contact* first = nullptr;
  for (const v1::Contact& contact : task.contacts()) {
    if (first == nullptr ||
        domain::FromProto(contact.contacted_at()) < domain::FromProto(first->contacted_at())) {
      first = &contact;
    }
  }
  if (first != nullptr) period["start"] = Instant(first->contacted_at());
  if (task.status() == v1::CLOSED && task.has_closed_at()) {
    period["end"] = Instant(task.closed_at());
  }
  return period;
}

void AddTaskInputsAndOutputs(const v1::Task& task, Json& resource) {
  if (!task.follow_up_date().empty()) {
    resource["input"] = Json::array({Json{{"type", Json{{"text", "follow_up_date"}}},
                                          {"valueDate", task.follow_up_date()}}});
  }
  if (!task.close_source_ref().empty()) {
    resource["output"] = Json::array({Json{{"type", Json{{"text", "close_source_ref"}}},
                                           {"valueString", task.close_source_ref()}}});
  }
}

// ---- Communication -------------------------------------------------------------------------

// The v3 ParticipationMode of a channel (SMS has none of its own: written).
absl::string_view ParticipationMode(v1::ContactChannel channel) {
  switch (channel) {
    case v1::SMS:
      return "WRITTEN";
    case v1::EMAIL:
      return "EMAILWRIT";
    case v1::MAIL:
      return "MAILWRIT";
    case v1::IN_PERSON:
      return "FACE";
    case v1::PHONE:
    default:
      return "PHONE";
  }
}

// The contact did not reach the patient through the channel: FHIR's not-done reason, or "" when
// the communication took place (a voicemail left is a message delivered).
absl::string_view NotDoneReason(v1::ContactOutcome outcome) {
  switch (outcome) {
    case v1::NO_ANSWER:
      return "recipient-unavailable";
    case v1::WRONG_NUMBER:
      return "invalid-phone-number";
    default:
      return "";
  }
}

// ---- the fold's input ----------------------------------------------------------------------

absl::string_view EventTypeName(const v1::EventRecord& event) {
  const domain::EventKind* kind = domain::FindEventKind(event.payload_case());
  return kind != nullptr ? kind->type_name : "UNKNOWN";
}

}  // namespace

std::string FhirId(absl::string_view id) {
  if (IsFhirId(id)) return std::string(id);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(id.data()), id.size(), digest);
  const std::string hex = absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
  return absl::StrCat("sha256-", hex.substr(0, kHashedIdHexDigits));
}

std::string Instant(const google::protobuf::Timestamp& t) {
  return absl::FormatTime("%Y-%m-%d%ET%H:%M:%E*SZ", domain::FromProto(t), absl::UTCTimeZone());
}

std::string TaskStatus(const v1::Task& task) {
  switch (task.status()) {
    case v1::OPEN:
      return task.assignee().empty() ? "requested" : "ready";
    case v1::IN_PROGRESS:
      return "in-progress";
    case v1::CLOSED:
      return ClosedStatus(task.close_reason(), task.closing_outcome());
    default:
      return "requested";
  }
}

Json TaskResource(const v1::Task& task) {
  const std::string status = TaskStatus(task);
  Json r{{"resourceType", "Task"},
         {"id", FhirId(task.task_id())},
         {"meta", Json{{"versionId", absl::StrCat(task.version())},
                       {"lastUpdated", Instant(task.updated_at())}}},
         {"identifier", Json::array({Identifier(kTaskIdSystem, task.task_id())})},
         {"status", status}};
  if (status == "failed" || status == "cancelled" || status == "entered-in-error") {
    r["statusReason"] = StatusReason(task);
  }
  if (task.last_outcome() != v1::CONTACT_OUTCOME_UNSPECIFIED) {
    r["businessStatus"] = Concept(kOutcomeSystem, v1::ContactOutcome_Name(task.last_outcome()));
  }
  r["intent"] = "order";
  r["priority"] = task.priority() == v1::URGENT ? "urgent" : "routine";
  r["code"] = Concept(kCategorySystem, v1::TaskCategory_Name(task.category()));
  if (!task.title().empty()) r["description"] = task.title();
  r["for"] = PatientReference(task);
  if (Json period = ExecutionPeriod(task); !period.empty()) r["executionPeriod"] = period;
  r["authoredOn"] = Instant(task.created_at());
  r["lastModified"] = Instant(task.updated_at());
  if (!task.assignee().empty()) r["owner"] = OwnerReference(task.assignee());
  if (task.kind() == v1::AUTOMATIC && task.has_expires_at()) {
    r["restriction"] = Json{{"period", Json{{"end", Instant(task.expires_at())}}}};
  }
  AddTaskInputsAndOutputs(task, r);
  return r;
}

Json CommunicationResource(const v1::Task& task, const v1::Contact& contact,
                           absl::string_view event_id) {
  const absl::string_view not_done = NotDoneReason(contact.outcome());
  const std::string outcome = v1::ContactOutcome_Name(contact.outcome());
  Json r{{"resourceType", "Communication"},
         {"id", FhirId(event_id)},
         {"extension", Json::array({Json{{"url", kOutcomeExtension},
                                         {"valueCoding", Coding(kOutcomeSystem, outcome)}}})},
         {"identifier", Json::array({Identifier(kEventIdSystem, event_id)})},
         {"basedOn", Json::array({TaskReference(task.task_id())})},
         {"status", not_done.empty() ? "completed" : "not-done"}};
  if (!not_done.empty()) {
    r["statusReason"] = Json{{"coding", Json::array({Coding(kNotDoneReasonSystem, not_done)})},
                             {"text", outcome}};
  }
  r["medium"] = Json::array(
      {Json{{"coding", Json::array({Coding(kParticipationModeSystem,
                                           ParticipationMode(contact.channel()))})},
            {"text", v1::ContactChannel_Name(contact.channel())}}});
  r["subject"] = PatientReference(task);
  const bool inbound = contact.direction() == v1::INBOUND;
  r[inbound ? "received" : "sent"] = Instant(contact.contacted_at());
  r[inbound ? "sender" : "recipient"] =
      inbound ? PatientReference(task) : Json::array({PatientReference(task)});
  if (!contact.notes().empty()) {
    r["note"] = Json::array({Json{{"time", Instant(contact.logged_at())},
                                  {"text", contact.notes()}}});
  }
  return r;
}

Json ProvenanceResource(const v1::EventRecord& event) {
  // A principal acting for someone is a service (software: Device), as is "system:expiry"; a
  // principal acting for itself is a person (Practitioner).
  const bool software =
      !event.on_behalf_of().empty() || absl::StartsWith(event.actor(), "system:");
  Json agent{{"type", Json{{"coding", Json::array({Coding(kParticipantTypeSystem, "author")})}}},
             {"who", Reference(software ? "Device" : "Practitioner", kPrincipalSystem,
                               event.actor())}};
  if (!event.on_behalf_of().empty()) {
    agent["onBehalfOf"] = Reference("Practitioner", kPrincipalSystem, event.on_behalf_of());
  }
  const bool create = event.payload_case() == v1::EventRecord::kTaskCreated;
  return Json{
      {"resourceType", "Provenance"},
      {"id", FhirId(event.event_id())},
      {"target", Json::array({Json{{"reference", absl::StrCat("Task/", FhirId(event.task_id()),
                                                              "/_history/", event.version())},
                                   {"type", "Task"}}})},
      {"occurredDateTime", Instant(event.occurred_at())},
      {"recorded", Instant(event.recorded_at())},
      {"activity",
       Json{{"coding", Json::array({Coding(kDataOperationSystem, create ? "CREATE" : "UPDATE"),
                                    Coding(kEventTypeSystem, EventTypeName(event))})},
            {"text", EventTypeName(event)}}},
      {"agent", Json::array({agent})}};
}

absl::string_view ResourceTypeName(ResourceType type) {
  switch (type) {
    case ResourceType::kTask:
      return "Task";
    case ResourceType::kCommunication:
      return "Communication";
    case ResourceType::kProvenance:
      return "Provenance";
  }
  return "";
}

std::string ToLine(const Json& resource) {
  return resource.dump(-1, ' ', /*ensure_ascii=*/false, Json::error_handler_t::replace);
}

// ---- FhirExporter --------------------------------------------------------------------------

FhirExporter::FhirExporter(ExportOptions options) : options_(std::move(options)) {
  options_.from_position = std::max<uint64_t>(options_.from_position, 1);
}

absl::Status FhirExporter::Emit(ResourceType type, const Json& resource, Write write) {
  if (absl::Status s = write(type, ToLine(resource)); !s.ok()) return s;
  ++counts_[static_cast<int>(type)];
  return absl::OkStatus();
}

absl::Status FhirExporter::Add(const v1::EventRecord& event, Write write) {
  ++events_read_;
  if (domain::IsPatientStream(event.task_id()) || other_practice_.contains(event.task_id())) {
    return absl::OkStatus();
  }
  Entry& entry = tasks_[event.task_id()];
  if (absl::Status s = domain::Apply(entry.task, domain::ToStoredEvent(event)); !s.ok()) return s;
  // A task's practice is set by its first event and never changes.
  if (!options_.practice.empty() && entry.task.practice_id() != options_.practice) {
    tasks_.erase(event.task_id());
    other_practice_.insert(event.task_id());
    return absl::OkStatus();
  }
  if (event.payload_case() == v1::EventRecord::kContactLogged) {
    entry.contact_event_ids.push_back(event.event_id());
  }
  if (event.position() < options_.from_position) return absl::OkStatus();
  if (touched_.insert(event.task_id()).second) touched_order_.push_back(event.task_id());
  return Emit(ResourceType::kProvenance, ProvenanceResource(event), write);
}

absl::Status FhirExporter::Finish(Write write) {
  for (const std::string& task_id : touched_order_) {
    const Entry& entry = tasks_.at(task_id);
    if (absl::Status s = Emit(ResourceType::kTask, TaskResource(entry.task), write); !s.ok()) {
      return s;
    }
    for (int i = 0; i < entry.task.contacts_size(); ++i) {
      const Json communication =
          CommunicationResource(entry.task, entry.task.contacts(i), entry.contact_event_ids[i]);
      if (absl::Status s = Emit(ResourceType::kCommunication, communication, write); !s.ok()) {
        return s;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace outreach::fhir
