// The practice time zones file (outreachd --practice-time-zones FILE): in which IANA zone
// "today" is taken for each practice's tasks (domain/task_rules.h "Practices"). Practices the
// file does not list use --time-zone.
//
// Format 1. One practice per line; '#' starts a comment that runs to the end of the line; blank
// lines are ignored; fields are separated by spaces or tabs:
//
//   line        := practice_id WS zone
//   practice_id := 1-64 characters of [A-Za-z0-9._:-] (as in CreateTask.practice_id; "default"
//                  is the practice of tasks created without one)
//   zone        := an IANA time zone name the system's tz database knows ("America/Chicago",
//                  "UTC")
//
// A line with other than two fields, a bad practice id, an unknown zone or a practice listed
// twice makes the whole file refused, the error naming "FILE:LINE". Pure functions (besides
// reading the file); thread-safe.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "domain/task_rules.h"

namespace outreach::server {

// Parses the text of a zones file; `file_name` prefixes every error ("zones.txt:3: ...").
// INVALID_ARGUMENT on any bad line.
absl::StatusOr<domain::PracticeZones> ParsePracticeZones(absl::string_view text,
                                                         absl::string_view file_name);

// Reads and parses `path`: NOT_FOUND if it cannot be read, INVALID_ARGUMENT if it is bad.
absl::StatusOr<domain::PracticeZones> LoadPracticeZones(const std::string& path);

}  // namespace outreach::server
