// Shared by the libFuzzer targets in tests/fuzz: the fixed world a fuzzed request is decided in,
// and the invariants every target checks.
//
// The world: one fixed "now" (2025-03-10 15:00 UTC) and a handful of task states built by the
// real rules (Decide, then the store's stamping, then Apply): no task, open manual, open
// automatic, in progress, closed by "Log and Close Task", and automatic past its expiry with no
// expiry event yet. A state is re-keyed to the task id the fuzzed request names, as the store
// would have loaded it by that id.
//
// A violated invariant prints what broke to stderr and aborts, which libFuzzer records as a
// crash with the input that caused it. Single-threaded, like libFuzzer's driver.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "domain/task_rules.h"
#include "google/protobuf/message_lite.h"
#include "outreach/v1/storage.pb.h"
#include "outreach/v1/task.pb.h"

namespace outreach::fuzz {

// The instant every command is decided at, and the zone "today" is taken in.
absl::Time Now();
domain::DecideContext Context();

struct FixedState {
  const char* name;
  std::optional<v1::Task> task;                      // nullopt: no such task
  std::vector<storage::v1::StoredEvent> events;      // the stream `task` is the fold of
};

// The fixed states, with their task id (and their events' task id) set to `task_id`.
std::vector<FixedState> FixedStates(absl::string_view task_id);

// Prints "invariant violated: <what>" and aborts.
[[noreturn]] void Fail(absl::string_view what);
// Fails unless `status` has one of the `allowed` codes; `where` names the call.
void CheckCode(absl::string_view where, const absl::Status& status,
               std::initializer_list<absl::StatusCode> allowed);

// Decides `command` against every fixed state and checks, for each:
//   - an error carries one of Decide's documented codes;
//   - OK events, stamped as the store stamps them, are accepted by Apply, leave the state the
//     command promises (created OPEN; contact IN_PROGRESS with its follow-up, or CLOSED), equal a
//     fold of the whole stream from scratch, survive the stored-event codec unchanged, and give
//     index rows that parse back (CheckProjectionRows);
//   - an expiry decided on the new state, later, is accepted by Apply too.
void CheckDecide(const domain::Command& command);

// The rows the store keeps for a projection (store/keys.h): the "tasks" row parses back to the
// same task, and every worklist and expiry key splits back into the task id, day and instant it
// was built from (ids never contain the '\0' the keys rely on).
void CheckProjectionRows(const v1::Task& task);

// The event codec on one event: EncodeEvent, then DecodeEvent, gives back the same event and a
// hash that verifies.
void CheckCodecRoundTrip(const storage::v1::StoredEvent& event);

// Deterministic serialization (the form the store hashes and compares).
std::string Bytes(const google::protobuf::MessageLite& message);

// Silences protobuf's parse-error logging (every malformed input would print a line).
void QuietProtobufLogs();

}  // namespace outreach::fuzz
