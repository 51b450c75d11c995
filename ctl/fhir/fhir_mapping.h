// The FHIR R4 view of the event log (issue 16), for `outreachctl export-fhir`: Task resources
// (one per task, its state at the head), Communication resources (one per logged contact) and
// Provenance resources (one per task event), as FHIR Bulk Data NDJSON lines. The mapping table
// is in README.md, "FHIR export"; this file is its one implementation.
//
// What it reads: events as EventLog serves them (v1::EventRecord, made by store::ToEventRecord
// from each stored event: the one place where stored bytes become what the export sees, so that
// whatever the store does to personal fields on the way out, e.g. decryption, applies here too).
// It never reads projection rows: each task's state is the fold of its events with
// domain::Apply, the same fold GetTask's projection is, so the export agrees with GetTask.
//
// Pure: no I/O, no clock; the caller reads the log and writes the lines. FhirExporter is not
// thread-safe (one export per instance); the free functions are.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "nlohmann/json.hpp"
#include "outreach/v1/events.pb.h"
#include "outreach/v1/task.pb.h"

namespace outreach::fhir {

using Json = nlohmann::ordered_json;

// The code systems and identifier systems of our own values (absolute URIs).
inline constexpr char kTaskIdSystem[] = "urn:outreach:task-id";
inline constexpr char kEventIdSystem[] = "urn:outreach:event-id";
inline constexpr char kPatientIdSystem[] = "urn:outreach:patient-id";
inline constexpr char kUserIdSystem[] = "urn:outreach:user-id";
inline constexpr char kGroupIdSystem[] = "urn:outreach:group-id";
inline constexpr char kPrincipalSystem[] = "urn:outreach:principal";
inline constexpr char kOutcomeSystem[] = "urn:outreach:contact-outcome";
inline constexpr char kCloseReasonSystem[] = "urn:outreach:close-reason";
inline constexpr char kCategorySystem[] = "urn:outreach:task-category";
inline constexpr char kEventTypeSystem[] = "urn:outreach:event-type";
inline constexpr char kOutcomeExtension[] = "urn:outreach:fhir:contact-outcome";
// HL7's code systems.
inline constexpr char kNotDoneReasonSystem[] =
    "http://terminology.hl7.org/CodeSystem/communication-not-done-reason";
inline constexpr char kParticipationModeSystem[] =
    "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode";
inline constexpr char kDataOperationSystem[] =
    "http://terminology.hl7.org/CodeSystem/v3-DataOperation";
inline constexpr char kParticipantTypeSystem[] =
    "http://terminology.hl7.org/CodeSystem/provenance-participant-type";

// A FHIR resource id for one of ours: the id itself when it is a FHIR id ([A-Za-z0-9.-], at most
// 64), else "sha256-" and the first 40 hex digits of its SHA-256 (ours may hold '_' and ':').
// Stable across exports; every resource also carries the original in an identifier.
std::string FhirId(absl::string_view id);

// FHIR instant: "2025-03-10T09:00:00Z", fractional seconds only when there are any.
std::string Instant(const google::protobuf::Timestamp& t);

// Task.status for a task state (README's table).
std::string TaskStatus(const v1::Task& task);

// The resources. A Communication is one of the task's contacts, with the id of the event that
// logged it.
Json TaskResource(const v1::Task& task);
Json CommunicationResource(const v1::Task& task, const v1::Contact& contact,
                           absl::string_view event_id);
// Provenance of one task event (never of a patient stream's event).
Json ProvenanceResource(const v1::EventRecord& event);

enum class ResourceType { kTask, kCommunication, kProvenance };
absl::string_view ResourceTypeName(ResourceType type);  // "Task", ...

// One NDJSON line (no trailing newline) of `resource`: compact UTF-8.
std::string ToLine(const Json& resource);

struct ExportOptions {
  std::string practice;        // empty: every practice
  uint64_t from_position = 1;  // 0 reads as 1
};

// Folds the log, event by event in position order from position 1, and emits:
//  - at Add, the Provenance of each task event at or after from_position;
//  - at Finish, the Task and then the Communications of every task that an event at or after
//    from_position touched, as of the last event added, in the order first touched.
// With a practice, only that practice's tasks (a task's practice never changes). Events of a
// patient's own stream (ContactPreferenceSet) have no Task to describe: they are skipped.
class FhirExporter {
 public:
  using Write = absl::FunctionRef<absl::Status(ResourceType type, const std::string& line)>;

  explicit FhirExporter(ExportOptions options);

  // DATA_LOSS when the event cannot follow its task's state (domain::Apply's check);
  // otherwise the first error of `write`.
  absl::Status Add(const v1::EventRecord& event, Write write);
  absl::Status Finish(Write write);

  uint64_t events_read() const { return events_read_; }
  uint64_t count(ResourceType type) const { return counts_[static_cast<int>(type)]; }

 private:
  struct Entry {
    v1::Task task;
    std::vector<std::string> contact_event_ids;  // by contact, in version order
  };
  absl::Status Emit(ResourceType type, const Json& resource, Write write);

  ExportOptions options_;
  absl::flat_hash_map<std::string, Entry> tasks_;
  absl::flat_hash_set<std::string> other_practice_;  // tasks filtered out
  absl::flat_hash_set<std::string> touched_;
  std::vector<std::string> touched_order_;
  uint64_t events_read_ = 0;
  uint64_t counts_[3] = {0, 0, 0};
};

}  // namespace outreach::fhir
