// Events as JSON lines, for auditors' own tools: one outreach.v1.EventRecord per line in the
// proto3 JSON mapping (lowerCamelCase names, enum names, RFC 3339 timestamps, base64 bytes for
// prev_hash and hash, 64-bit integers as strings), in position order.
//
// Reads through EventStore::ReadEvents in chunks, so memory stays bounded whatever the log's
// size, and stops at the head as it was when the export began. Thread-safe as the store is.
#pragma once

#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "outreach/v1/events.pb.h"
#include "store/event_store.h"

namespace outreach::store {

// One event as a single line of JSON (no trailing newline).
absl::StatusOr<std::string> EventToJson(const v1::EventRecord& record);

// Hands `write_line` one JSON line (with its trailing '\n') per event with position >=
// from_position (0 = from the start), only task `task_id`'s when it is not empty. Stops at the
// first error, from the store or from `write_line`. Returns how many lines were written.
absl::StatusOr<uint64_t> ExportJsonLines(
    const EventStore& store, uint64_t from_position, absl::string_view task_id,
    absl::FunctionRef<absl::Status(absl::string_view line)> write_line);

}  // namespace outreach::store
