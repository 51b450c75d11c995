// Glue between RocksDB's types and Abseil's: Status translation (the only place store/ maps
// RocksDB errors) and byte views.
//
// Corruption is DATA_LOSS (bad bytes on disk); I/O and resource errors are UNAVAILABLE (retrying
// later, or elsewhere, may work); NotFound is NOT_FOUND; anything else is INTERNAL. The message
// says what the store was doing. A lack of space (rocksdb::Status::IsNoSpace, ENOSPC) is marked
// with the kNoSpacePayload payload, so that the store can tell it from other I/O errors: it is the
// one write failure the store recovers from by itself (README "Durability").
//
// These messages hold server file paths: they are for the server's log. What clients see of a
// failed write is WritesRefusedAfter's words (store/write_refusal.h). Pure; thread-safe.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "rocksdb/slice.h"
#include "rocksdb/status.h"

namespace outreach::store {

// Present (empty) on a status that FromRocks made from rocksdb's NoSpace.
inline constexpr char kNoSpacePayload[] = "type.outreach/no-space";

inline bool IsNoSpace(const absl::Status& status) {
  return status.GetPayload(kNoSpacePayload).has_value();
}

inline absl::string_view View(const rocksdb::Slice& slice) {
  return absl::string_view(slice.data(), slice.size());
}

inline rocksdb::Slice ToSlice(absl::string_view bytes) {
  return rocksdb::Slice(bytes.data(), bytes.size());
}

inline absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  const std::string message = absl::StrCat(what, ": ", s.ToString());
  if (s.IsNoSpace()) {
    absl::Status status = absl::UnavailableError(message);
    status.SetPayload(kNoSpacePayload, absl::Cord());
    return status;
  }
  switch (s.code()) {
    case rocksdb::Status::kNotFound:
      return absl::NotFoundError(message);
    case rocksdb::Status::kCorruption:
      return absl::DataLossError(message);
    case rocksdb::Status::kIOError:
    case rocksdb::Status::kBusy:
    case rocksdb::Status::kTimedOut:
    case rocksdb::Status::kTryAgain:
    case rocksdb::Status::kIncomplete:
    case rocksdb::Status::kShutdownInProgress:
      return absl::UnavailableError(message);
    case rocksdb::Status::kInvalidArgument:
      return absl::InvalidArgumentError(message);
    default:
      return absl::InternalError(message);
  }
}

}  // namespace outreach::store
