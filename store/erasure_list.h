// The erasure list (README "Privacy", issue 17): a file outside the database and its backups
// that remembers every erasure, so that a backup taken before an erasure, once restored, has it
// applied again (`outreachctl restore --erasure-list`).
//
// A text file, one erasure a line, appended and fsynced by outreachd (--erasure-list) once the
// erasure is durable:
//   "erased" SP position SP practice_id SP pseudonym LF
// position: the PatientErased event's; pseudonym: the patient's (store/privacy.h), never its id,
// so that the list itself holds no personal data. Lines this build does not know are an error
// (nothing is guessed); a last line without LF (a crash mid-append) is ignored.
//
// Pure functions over files; thread-compatible (outreachd appends from one thread at a time).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace outreach::store {

struct ErasureEntry {
  uint64_t position = 0;  // of the PatientErased event
  std::string practice_id;
  std::string pseudonym;
};

// Appends one line to `path` (created 0600 if missing) and fsyncs it.
absl::Status AppendErasure(const std::string& path, const ErasureEntry& entry);

// Every entry of `path`; an empty list when the file does not exist. INVALID_ARGUMENT naming the
// line for a malformed one.
absl::StatusOr<std::vector<ErasureEntry>> ReadErasureList(const std::string& path);

}  // namespace outreach::store
