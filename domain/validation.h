// Field validation shared by every command: ids, dates, timestamps, text lengths.
//
// Pure functions of their arguments (no clock, no I/O); thread-safe. Every error is
// absl::InvalidArgumentError whose message starts with the field's name, e.g.
// "follow_up_date: \"2024-02-30\" is not a valid calendar date (want YYYY-MM-DD)".
#pragma once

#include <cstddef>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "google/protobuf/timestamp.pb.h"

namespace outreach::domain {

inline constexpr std::size_t kMaxIdLength = 64;
inline constexpr std::size_t kMaxNotesLength = 4000;
inline constexpr std::size_t kMaxTitleLength = 200;
// Follow-up dates and expiries further ahead than this are almost surely typos.
inline constexpr int kMaxDaysAhead = 3660;
// A client clock slightly ahead of ours must not turn "now" into "the future".
inline constexpr absl::Duration kClockSkewAllowance = absl::Seconds(5);

// Ids the service keeps for its own actors (kExpiryActor, "system:expiry"): no principal,
// x-actor, x-on-behalf-of or task id may start with it.
inline constexpr char kReservedIdPrefix[] = "system:";

// True when `id` is 1-64 characters of [A-Za-z0-9._:-].
bool IsValidId(absl::string_view id);

// Requires a valid id in `field`.
absl::Status ValidateId(absl::string_view field, absl::string_view id);
// Allows empty; otherwise requires a valid id.
absl::Status ValidateOptionalId(absl::string_view field, absl::string_view id);

// Parses a strict "YYYY-MM-DD" calendar date (years 1900-9999).
absl::StatusOr<absl::CivilDay> ParseDate(absl::string_view field, absl::string_view text);
// Formats as "YYYY-MM-DD".
std::string FormatDate(absl::CivilDay day);

// Converts a protobuf Timestamp after checking its range (0001-01-01 .. 9999-12-31, nanos 0..999999999).
absl::StatusOr<absl::Time> ParseTimestamp(absl::string_view field,
                                          const google::protobuf::Timestamp& ts);
// Converts to a protobuf Timestamp (microsecond resolution is preserved exactly).
google::protobuf::Timestamp ToProto(absl::Time t);
absl::Time FromProto(const google::protobuf::Timestamp& ts);

// Requires at most `max` characters (Unicode code points of valid UTF-8), and no control
// character but newline and tab (no C0 control, DEL or C1 control): text a coordinator wrote,
// shown in worklists and logs, where a carriage return or an escape sequence could pass one
// line or one screen off as another.
absl::Status ValidateText(absl::string_view field, absl::string_view text, std::size_t max);

}  // namespace outreach::domain
