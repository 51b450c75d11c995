// The outreach workflow's rules, as pure functions over events (SPEC §2, §3).
//
//   Decide(states, command, context) -> the events to append, or the error that forbids them.
//   Apply(state, event)              -> the next state.
//
// A command may read and append to several task streams: StreamsOf names the ones it names
// directly; the store loads their states (TaskStates) and Decide returns events that each name
// their stream (StoredEvent.task_id), in the order they are to be appended.
//
// A task's state is the outreach.v1.Task message: exactly the fold of its events with Apply, so
// that a projection rebuilt from the log is byte-identical to the live one. Nothing here reads
// a clock or does I/O: the time and the time zone come in through DecideContext. Thread-safe.
//
// Implemented in task_rules.cc (commands, creating, expiring, cancelling, the dispatch),
// contact_rules.cc (Log Contact), assignment_rules.cc (AssignTask, ClaimTask), cadence.cc (the
// cadence's dates) and task_apply.cc (Apply).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "outreach/v1/storage.pb.h"
#include "outreach/v1/task.pb.h"

namespace outreach::domain {

// The actor the expiry closer records on the events it writes.
inline constexpr char kExpiryActor[] = "system:expiry";

// Who asks, and under which idempotency key. Set by the caller's edge (server/).
struct CommandMeta {
  std::string actor;       // required: a valid id ("anonymous" when unauthenticated)
  std::string request_id;  // optional idempotency key; empty = none
  // Optional: the person a service principal acts for (x-on-behalf-of), recorded on each event
  // beside the actor. A valid id when set. (Its initializer lets `meta = {actor, request_id}`
  // stay warning-free.)
  std::string on_behalf_of{};
  // The practices the caller may act in (a principal limited to practices, server/auth.h);
  // empty = every practice. A command on a task of another practice, or creating one there, is
  // PERMISSION_DENIED (see "Practices" below).
  std::vector<std::string> practices{};
};

// ---- Practices, categories, cadence and attempts (issue 13) ----------------------------------
//
// - A task belongs to a practice (`practice_id`, the characters of an id; empty = "default") and
//   has a category (unset = CUSTOM), an optional rule_id and a priority (unset = ROUTINE).
//   Events written before these existed (schema version 1) read as practice "default",
//   category CUSTOM, priority ROUTINE, and their contacts as PHONE, OUTBOUND.
// - Cadence (`cadence_days`): strictly increasing, each 1..365, at most 12. The task keeps its
//   creation date in the deciding time zone (cadence_start_date). Created without a
//   follow_up_date, its first follow-up is that date + cadence_days[0]. A Log Contact without a
//   follow_up_date, as the k-th contact (k = attempt_count after it), gets that date +
//   cadence_days[k]; when that is not later than the contact's own date (in the same zone), the
//   day after the contact; and never a day before today. For k past the cadence's end a date is
//   required again (INVALID_ARGUMENT naming follow_up_date). A given date always wins.
// - Attempts: every contact counts (attempt_count); DID_NOT_SCHEDULE, SCHEDULED and
//   REQUESTED_NO_CONTACT also count as reached (reached_count). last_outcome and
//   last_contacted_at follow the latest contact by contacted_at (a back-dated contact logged
//   later does not move them back).
// - max_attempts (0 = no cap, at most 50): a Log Contact that is not a close, whose outcome is not
//   SCHEDULED and that makes attempt_count reach (or pass) max_attempts, closes the task in the
//   same command: ContactLogged, then TaskClosed MAX_ATTEMPTS. It needs no follow-up date (one
//   given is checked and kept on the contact).
// - REQUESTED_NO_CONTACT is logged only with close_task (INVALID_ARGUMENT naming close_task
//   otherwise) and closes the task with DO_NOT_CONTACT. (The patient-level do-not-contact, and
//   closing the patient's other tasks with it, are not here yet: they need commands over several
//   streams, issue 13 part 2.)
//
// ---- Practices: time zones and who may act in them --------------------------------------------
//
// - "Today" for a task (a follow-up date not in the past, the cadence's creation date and its
//   steps) and for a patient's do-not-contact until_date is taken in the practice's zone:
//   DecideContext::practice_zones, falling back to DecideContext::time_zone for a practice it
//   does not list (ZoneOf, decide_support.h).
// - A command whose meta lists practices may only name one of them (CreateTask, ResolveTasks,
//   SetContactPreference), or change a task of one of them: otherwise PERMISSION_DENIED naming
//   practice_id, checked right after the command's shape and before the command's own rules
//   (closed, expected_version, ...). A command on a task that does not exist is NOT_FOUND as
//   usual. A task's practice never changes, so this check, decided with the command, cannot race
//   a change.
//
// ---- Assignment and cancelling ------------------------------------------------------------------
//
// - AssignTask: the assignee is a user id, "group:<id>" (a valid id after the prefix), or empty
//   (unassign); never a "system:" id. Appends TaskAssigned {assignee, previous_assignee}; the
//   same assignee appends nothing.
// - ClaimTask: assigns the task to the caller (the person on whose behalf a service acts, else the
//   actor). Allowed when unassigned or assigned to a group; FAILED_PRECONDITION when another user
//   has it; already the caller's: nothing appended.
// - CancelTask: reason CANCELLED or ENTERED_IN_ERROR, notes required (not blank, at most 4000
//   characters): TaskClosed {reason, notes}.
// - All three, like Log Contact: NOT_FOUND for no such task; FAILED_PRECONDITION for a closed or
//   expired task; ABORTED for a stale expected_version (checked in that order).

inline constexpr char kDefaultPracticeId[] = "default";
inline constexpr char kGroupAssigneePrefix[] = "group:";
inline constexpr int kMaxCadenceSteps = 12;
inline constexpr int kMaxCadenceDay = 365;
inline constexpr int kMaxAttemptsLimit = 50;

struct CreateTaskCommand {
  std::string task_id;  // required here: the edge generates one when the client sent none
  std::string patient_id;
  v1::TaskKind kind = v1::TASK_KIND_UNSPECIFIED;
  std::string title;
  std::string assignee;
  std::string follow_up_date;            // optional, "YYYY-MM-DD"
  std::optional<absl::Time> expires_at;  // required for AUTOMATIC, forbidden for MANUAL
  CommandMeta meta;
  std::string practice_id;                                 // empty = kDefaultPracticeId
  v1::TaskCategory category = v1::TASK_CATEGORY_UNSPECIFIED;  // unspecified = CUSTOM
  std::string rule_id;                                     // optional id
  v1::TaskPriority priority = v1::TASK_PRIORITY_UNSPECIFIED;  // unspecified = ROUTINE
  std::vector<int32_t> cadence_days;                       // see above
  int32_t max_attempts = 0;                                // 0 = no cap
};

struct LogContactCommand {
  std::string task_id;
  v1::ContactOutcome outcome = v1::CONTACT_OUTCOME_UNSPECIFIED;
  std::string notes;
  std::string follow_up_date;              // forbidden with close_task; see the cadence rules
  bool close_task = false;                 // "Log and Close Task"
  std::optional<absl::Time> contacted_at;  // default: now
  int64_t expected_version = 0;            // 0 = don't check
  CommandMeta meta;
  v1::ContactChannel channel = v1::CONTACT_CHANNEL_UNSPECIFIED;        // unspecified = PHONE
  v1::ContactDirection direction = v1::CONTACT_DIRECTION_UNSPECIFIED;  // unspecified = OUTBOUND
};

struct AssignTaskCommand {
  std::string task_id;
  std::string assignee;  // a user id, "group:<id>", or empty (unassign)
  int64_t expected_version = 0;
  CommandMeta meta;
};

struct ClaimTaskCommand {
  std::string task_id;
  int64_t expected_version = 0;
  CommandMeta meta;  // the claimant: meta.on_behalf_of if set, else meta.actor
};

struct CancelTaskCommand {
  std::string task_id;
  v1::CloseReason reason = v1::CLOSE_REASON_UNSPECIFIED;  // CANCELLED or ENTERED_IN_ERROR
  std::string notes;                                      // required
  int64_t expected_version = 0;
  CommandMeta meta;
};

// ---- Patients: resolution from outside, do-not-contact, dedupe (issue 13) -----------------------
//
// A patient in a practice has a stream of its own (PatientStreamId, "system:patient/<practice>/
// <patient>": task ids never start with "system:"), holding its contact preference
// (ContactPreferenceSet). The store keeps a row per patient (storage PatientRow: the preference,
// the open tasks with their categories, the attempts and the last contact) and hands it to
// Decide for every patient a command concerns (PatientsOf), with the states of its open tasks.
//
// - CreateTask: while do-not-contact holds for the patient in the practice (set, and today in the
//   practice's zone before until_date when there is one), FAILED_PRECONDITION naming
//   do-not-contact. While another task of the same (practice, patient, category) is OPEN or
//   IN_PROGRESS, ALREADY_EXISTS naming it (its id also in the status payload
//   kExistingTaskIdPayload); CUSTOM never dedupes.
// - ResolveTasks: closes every OPEN/IN_PROGRESS task of the patient in the practice whose
//   category is listed (none listed = all), in one command, each with TaskClosed {reason,
//   source_ref}, by task id; reason APPOINTMENT_SCHEDULED or CRITERIA_CLEARED; source_ref at
//   most 128 characters; occurred_at not in the future (default now). An automatic task already
//   past its expires_at is left to the expiry. No match: nothing appended, no tasks.
// - SetContactPreference: appends ContactPreferenceSet to the patient's stream (nothing when the
//   preference is already exactly that and no task needs closing); until_date, when given, is a
//   day after today; reason at most 500 characters. Setting do_not_contact closes every open
//   task of the patient in the practice with DO_NOT_CONTACT in the same command.
// - Log Contact with REQUESTED_NO_CONTACT (and close_task) also sets the patient's
//   do-not-contact (reason "requested during a contact on task <id>") and closes the patient's
//   other open tasks in the practice with DO_NOT_CONTACT, in the same command.

inline constexpr char kPatientStreamPrefix[] = "system:patient/";
// What a personal field of an erased patient reads as (ErasePatient; store/privacy.h).
inline constexpr char kErasedMarker[] = "[erased]";
inline constexpr char kExistingTaskIdPayload[] = "outreach.v1/existing_task_id";
inline constexpr int kMaxSourceRefLength = 128;
inline constexpr int kMaxPreferenceReasonLength = 500;

struct ResolveTasksCommand {
  std::string practice_id;  // empty = kDefaultPracticeId
  std::string patient_id;
  std::vector<v1::TaskCategory> categories;  // empty = all
  v1::CloseReason reason = v1::CLOSE_REASON_UNSPECIFIED;
  std::string source_ref;
  std::optional<absl::Time> occurred_at;  // default: now
  CommandMeta meta;
};

struct SetContactPreferenceCommand {
  std::string practice_id;  // empty = kDefaultPracticeId
  std::string patient_id;
  bool do_not_contact = false;
  std::string until_date;  // optional "YYYY-MM-DD"
  std::string reason;
  CommandMeta meta;
};

// ErasePatient (issue 17): destroys the patient's personal data in a practice. Closes each of
// its open tasks (TaskClosed PATIENT_DATA_ERASED, by task id) and appends PatientErased
// {reason} to the patient's stream; the store deletes the patient's data key in the same batch (store/
// privacy.h). reason: required, not blank, at most kMaxPreferenceReasonLength characters.
// NOT_FOUND for a patient the practice has never seen; nothing appended for one already erased
// (and seen no more since).
struct ErasePatientCommand {
  std::string practice_id;  // empty = kDefaultPracticeId
  std::string patient_id;
  std::string reason;
  CommandMeta meta;
};

// Written by the system when an automatic task reaches expires_at.
struct ExpireTaskCommand {
  std::string task_id;
};

// A closed set: the functions below dispatch with std::visit over an overload set (see
// domain/overloaded.h), so a new alternative does not compile until each has its handler.
using Command = std::variant<CreateTaskCommand, LogContactCommand, ExpireTaskCommand,
                             AssignTaskCommand, ClaimTaskCommand, CancelTaskCommand,
                             ResolveTasksCommand, SetContactPreferenceCommand,
                             ErasePatientCommand>;

// The task a command is about; empty for the commands about a patient (ResolveTasks,
// SetContactPreference, ErasePatient).
const std::string& TaskIdOf(const Command& command);
const CommandMeta* MetaOf(const Command& command);  // nullptr for system commands
// The task streams the command reads (and may append to), in the order its result lists them.
std::vector<std::string> StreamsOf(const Command& command);

// The states Decide reads, by task id: each stream StreamsOf names has an entry, nullptr when
// there is no such task. Borrowed: the caller keeps the states alive during Decide.
using TaskStates = absl::flat_hash_map<std::string, const v1::Task*>;

// A patient in a practice.
struct PatientKey {
  std::string practice_id;
  std::string patient_id;
  bool operator==(const PatientKey& other) const {
    return practice_id == other.practice_id && patient_id == other.patient_id;
  }
};
// The patient's stream id: kPatientStreamPrefix practice '/' patient ('/' is in no id).
std::string PatientStreamId(const PatientKey& patient);
bool IsPatientStream(absl::string_view stream_id);
// The patients whose rows Decide needs, given the states of the streams StreamsOf names.
std::vector<PatientKey> PatientsOf(const Command& command, const TaskStates& states);
// The rows of those patients, by PatientStreamId (nullptr or absent: a patient never seen). The
// store adds the states of each row's open tasks to the TaskStates it passes.
using PatientStates = absl::flat_hash_map<std::string, const storage::v1::PatientRow*>;
// True while the row's do-not-contact holds on `today` (in the practice's zone).
bool DoNotContactHolds(const storage::v1::PatientRow& row, absl::CivilDay today);
// Folds one event of a patient's stream (ContactPreferenceSet, PatientErased) into `row`'s
// preference (or erased flag) and version. DATA_LOSS if it cannot follow.
absl::Status ApplyPatient(storage::v1::PatientRow& row, const storage::v1::StoredEvent& event);

// What Decide asks the store to append. The store fills in position, version, event id,
// recorded_at, prev_hash and hash.
struct NewEvent {
  storage::v1::StoredEvent event;  // task_id, occurred_at, actor, request_id and payload set
};

// Practice id -> the IANA zone "today" is taken in for its tasks.
using PracticeZones = absl::flat_hash_map<std::string, absl::TimeZone>;

struct DecideContext {
  absl::Time now;                   // the time the command is decided (and recorded)
  absl::TimeZone time_zone;         // "today" for a practice practice_zones does not list
  // Per-practice zones (see "Practices" above); nullptr = every practice in time_zone. Borrowed:
  // the caller keeps the map alive (and unchanged) during Decide.
  const PracticeZones* practice_zones = nullptr;
};

// Checks every field that can be checked without the task's state or the clock.
// INVALID_ARGUMENT naming the field on failure.
absl::Status ValidateShape(const Command& command);

// Decides a command against the current states of the streams it names (TaskStates). The
// events name their stream; a stream that StreamsOf does not name is never in the result.
// Errors: INVALID_ARGUMENT (bad field, including dates relative to now), NOT_FOUND,
// ALREADY_EXISTS (create on an existing task), FAILED_PRECONDITION (closed or expired task),
// ABORTED (expected_version mismatch; the message says the current version).
absl::StatusOr<std::vector<NewEvent>> Decide(const TaskStates& states,
                                             const PatientStates& patients,
                                             const Command& command,
                                             const DecideContext& context);
// Without patient rows (every patient as never seen).
absl::StatusOr<std::vector<NewEvent>> Decide(const TaskStates& states, const Command& command,
                                             const DecideContext& context);
// The same for a command that names one stream (TaskIdOf), with its state (nullopt or null = no
// such task).
absl::StatusOr<std::vector<NewEvent>> Decide(const std::optional<v1::Task>& state,
                                             const Command& command,
                                             const DecideContext& context);
absl::StatusOr<std::vector<NewEvent>> Decide(const v1::Task* state, const Command& command,
                                             const DecideContext& context);

// Folds one event into the state. `state` is empty (default) before the task's first event.
// Returns FAILED_PRECONDITION / DATA_LOSS if the event cannot follow the state (a log that
// breaks the rules is corrupt, never silently accepted).
absl::Status Apply(v1::Task& state, const storage::v1::StoredEvent& event);

// True when the task is automatic, not closed, and `now` has reached its expires_at.
bool IsExpired(const v1::Task& task, absl::Time now);

// True for the outcomes that reached the patient: DID_NOT_SCHEDULE, SCHEDULED,
// REQUESTED_NO_CONTACT.
bool IsReached(v1::ContactOutcome outcome);

// Writes the meaning of every field a schema version 1 event lacks into it: practice "default",
// category CUSTOM and priority ROUTINE on TaskCreated, PHONE and OUTBOUND on ContactLogged.
// The store's 1 -> 2 upcaster; Apply reads absent fields the same way.
void FillVersion1Defaults(storage::v1::StoredEvent& event);

}  // namespace outreach::domain
