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
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
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
};

struct CreateTaskCommand {
  std::string task_id;  // required here: the edge generates one when the client sent none
  std::string patient_id;
  v1::TaskKind kind = v1::TASK_KIND_UNSPECIFIED;
  std::string title;
  std::string assignee;
  std::string follow_up_date;            // optional, "YYYY-MM-DD"
  std::optional<absl::Time> expires_at;  // required for AUTOMATIC, forbidden for MANUAL
  CommandMeta meta;
};

struct LogContactCommand {
  std::string task_id;
  v1::ContactOutcome outcome = v1::CONTACT_OUTCOME_UNSPECIFIED;
  std::string notes;
  std::string follow_up_date;              // required unless close_task; forbidden with it
  bool close_task = false;                 // "Log and Close Task"
  std::optional<absl::Time> contacted_at;  // default: now
  int64_t expected_version = 0;            // 0 = don't check
  CommandMeta meta;
};

// Written by the system when an automatic task reaches expires_at.
struct ExpireTaskCommand {
  std::string task_id;
};

// A closed set: the functions below dispatch with std::visit over an overload set (see
// domain/overloaded.h), so a new alternative does not compile until each has its handler.
using Command = std::variant<CreateTaskCommand, LogContactCommand, ExpireTaskCommand>;

const std::string& TaskIdOf(const Command& command);
const CommandMeta* MetaOf(const Command& command);  // nullptr for system commands
// The task streams the command reads (and may append to), in the order its result lists them.
std::vector<std::string> StreamsOf(const Command& command);

// The states Decide reads, by task id: each stream StreamsOf names has an entry, nullptr when
// there is no such task. Borrowed: the caller keeps the states alive during Decide.
using TaskStates = absl::flat_hash_map<std::string, const v1::Task*>;

// What Decide asks the store to append. The store fills in position, version, event id,
// recorded_at, prev_hash and hash.
struct NewEvent {
  storage::v1::StoredEvent event;  // task_id, occurred_at, actor, request_id and payload set
};

struct DecideContext {
  absl::Time now;                   // the time the command is decided (and recorded)
  absl::TimeZone time_zone;         // "today" for follow-up dates is taken in this zone
};

// Checks every field that can be checked without the task's state or the clock.
// INVALID_ARGUMENT naming the field on failure.
absl::Status ValidateShape(const Command& command);

// Decides a command against the current states of the streams it names (TaskStates). The
// events name their stream; a stream that StreamsOf does not name is never in the result.
// Errors: INVALID_ARGUMENT (bad field, including dates relative to now), NOT_FOUND,
// ALREADY_EXISTS (create on an existing task), FAILED_PRECONDITION (closed or expired task),
// ABORTED (expected_version mismatch; the message says the current version).
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

}  // namespace outreach::domain
