// What a client is told when the store (or its access log) refuses to write after a failed write
// or sync, and where the raw cause goes instead.
//
// The raw cause (FromRocks's message: RocksDB's words, the server's file paths) is for the
// server's log only. WritesRefusedAfter returns UNAVAILABLE with the cause in words — "disk full"
// for a lack of space, which the store recovers from by itself, or a failed write or sync, which
// needs a restart on a healthy disk — and carries the raw cause as the kServerDetailPayload
// payload, which ServerDetail reads and the gRPC edge never sends. Pure; thread-safe.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace outreach::store {

inline constexpr char kServerDetailPayload[] = "type.outreach/server-detail";

// Who refuses.
enum class Refuser { kStore, kAccessLog };

// UNAVAILABLE in words (no path), the raw `cause` as its server detail. A `cause` marked NoSpace
// (store/rocks.h) keeps the mark, so that the refusal itself tells whether it may clear.
absl::Status WritesRefusedAfter(Refuser who, const absl::Status& cause);

// The raw cause a refusal carries, or `status.ToString()` when it carries none.
std::string ServerDetail(const absl::Status& status);

}  // namespace outreach::store
