// The stored event envelope: how one event of the global log is laid out in RocksDB.
//
// Column family "events" (format version 1; the envelope is versioned forever):
//
//   key   := position: fixed64, big-endian       (so that key order is log order)
//   value := format_version: u8 (= 1)
//            prev_hash:      byte[32]            (the previous event's hash; 32 zero bytes at 1)
//            hash:           byte[32]
//            body:           byte[*]             (the rest of the value)
//   body  := serialized outreach.storage.v1.StoredEvent, schema_version = 1 or 2 (see below)
//   hash  := SHA-256(prev_hash || fixed64_be(position) || body)
//
// The hash covers the exact stored body bytes, so a reader never re-serializes to check it.
//
// Readers: a format_version other than kEventFormatVersion, or a StoredEvent schema_version
// newer than the reader's SchemaRegistry supports, is DATA_LOSS with a message that says so: the
// event is never skipped or guessed at. An older schema_version is upcast on every decode, one
// registered Upcaster per version step (v -> v+1 -> ... -> current), before anyone (Apply, a
// reader, a rebuild) sees it; the stored bytes, and so the hash, never change. Any other
// malformed value is DATA_LOSS naming the position.
//
// Schema history (StoredEvent.schema_version):
//   1  the first version. Optional fields added later without a version bump, because absent
//      means what an old event means: on_behalf_of (14; empty = the actor acted for itself).
//   2  issue 13 (practices, categories, cadence, assignment, cancelling): new fields on
//      TaskCreated (practice_id, category, rule_id, priority, cadence_days, max_attempts,
//      cadence_start_date), ContactLogged (channel, direction) and TaskClosed (source_ref,
//      notes); a new payload case, TaskAssigned (15); new enum values (outcomes WRONG_NUMBER,
//      REQUESTED_NO_CONTACT; close reasons APPOINTMENT_SCHEDULED .. DO_NOT_CONTACT); and a
//      ContactLogged without close_task and without a follow-up date, followed by a TaskClosed
//      MAX_ATTEMPTS. A version 1 reader would misread these (drop a task's practice and
//      cadence, take a TaskAssigned for an event without payload), so they are a new version:
//      a version 1 build refuses the log by name ("schema_version 2 ... newer than this build
//      supports") instead. The 1 -> 2 upcaster (UpcastV1ToV2) writes what the absent fields
//      of a version 1 event mean: practice "default", category CUSTOM, priority ROUTINE;
//      channel PHONE, direction OUTBOUND (domain::FillVersion1Defaults). Every other version 1
//      field reads as it always has.
//   3  issue 17 (privacy): StoredEvent.sealed (an encrypted store's personal fields, sealed
//      under the patient's data key, the payload's copies left empty), a new payload case,
//      PatientErased (18), and the close reason PATIENT_DATA_ERASED. A version 2 reader would show
//      sealed events with empty titles and notes and take PatientErased for an event without
//      payload, so it refuses them by name. Every event is written at version 3, sealed or
//      not; the 2 -> 3 upcaster (UpcastV2ToV3) changes nothing.
//
// Pure functions; thread-safe. A SchemaRegistry is immutable once its owner starts sharing it
// (Register before handing it to a store); its const methods are thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "outreach/v1/events.pb.h"
#include "outreach/v1/storage.pb.h"

namespace outreach::store {

inline constexpr uint8_t kEventFormatVersion = 1;
inline constexpr uint32_t kEventSchemaVersion = 3;
inline constexpr std::size_t kHashSize = 32;

using Hash = std::array<char, kHashSize>;

// 32 zero bytes: the prev_hash of position 1.
Hash ZeroHash();
absl::string_view AsBytes(const Hash& hash);
// Copies exactly kHashSize bytes; false if `bytes` has another size.
bool HashFromBytes(absl::string_view bytes, Hash* hash);

// SHA-256(prev_hash || fixed64_be(position) || body).
Hash ChainHash(const Hash& prev_hash, uint64_t position, absl::string_view body);

// SHA-256 of arbitrary bytes (checksums of metadata rows, query fingerprints).
Hash Sha256(absl::string_view bytes);

// Upgrades one stored event from schema version N to N + 1 in place (the registry then sets
// schema_version to N + 1). An error means the event cannot be upgraded: DATA_LOSS for the reader.
using Upcaster = std::function<absl::Status(storage::v1::StoredEvent& event)>;

// The schema versions a reader understands: the current one, and one Upcaster for each step from
// version 1 up to it.
class SchemaRegistry {
 public:
  // What this build reads and writes: kEventSchemaVersion and every production upcaster.
  static const SchemaRegistry& Production();

  // A registry whose current version is `current_version` (0 is taken as 1), with no upcasters
  // yet.
  explicit SchemaRegistry(uint32_t current_version);

  // Registers the step from `from_version` to `from_version + 1`. INVALID_ARGUMENT unless
  // 1 <= from_version < current_version; ALREADY_EXISTS if that step has an upcaster.
  absl::Status Register(uint32_t from_version, Upcaster upcaster);

  // The version new events are written with, and every read event is upgraded to.
  uint32_t current_version() const { return current_version_; }

  // OK when every step from 1 to current_version has an upcaster; FAILED_PRECONDITION naming the
  // first missing step otherwise (a store refuses to open with an incomplete registry).
  absl::Status CheckComplete() const;

  // Brings `event` (read at `position`) to current_version. DATA_LOSS naming the position when
  // its version is 0, newer than current_version, or an upcaster fails.
  absl::Status Upcast(uint64_t position, storage::v1::StoredEvent& event) const;

 private:
  uint32_t current_version_;
  std::vector<Upcaster> upcasters_;  // [i] upgrades version i + 1 to i + 2
};

// The production steps from schema version 1 to 2 and 2 to 3 (see the history above). Never fail.
absl::Status UpcastV1ToV2(storage::v1::StoredEvent& event);
absl::Status UpcastV2ToV3(storage::v1::StoredEvent& event);

// Registers every production upcaster (1 -> 2, ... up to kEventSchemaVersion) in `registry`,
// whose current version must be at least kEventSchemaVersion. Production() is built with it;
// tests build a newer registry on top of it.
absl::Status RegisterProductionUpcasters(SchemaRegistry& registry);

// One decoded "events" row.
struct DecodedEvent {
  uint64_t position = 0;  // from the key
  Hash prev_hash{};
  Hash hash{};
  std::string body;  // the exact stored body bytes the hash covers
  uint32_t stored_schema_version = 0;  // as stored; `event` has been upcast past it
  storage::v1::StoredEvent event;      // in the reader's current schema version
};

// Builds the value of an "events" row for `event` (whose position must be set), chained to
// `prev_hash`. Returns the value and sets `*hash` to the new event's hash (`hash` may point at
// `prev_hash`).
std::string EncodeEvent(const storage::v1::StoredEvent& event, const Hash& prev_hash, Hash* hash);

// Parses an "events" row and upcasts it through `schemas`. `position` comes from the key.
// DATA_LOSS naming the position on any malformed or unsupported value. Does not check the hash
// (see VerifyEventHash).
absl::StatusOr<DecodedEvent> DecodeEvent(
    uint64_t position, absl::string_view value,
    const SchemaRegistry& schemas = SchemaRegistry::Production());

// True when the stored hash equals the recomputed one.
bool VerifyEventHash(const DecodedEvent& decoded);

// The client-facing record of a stored event: the upcast event, with schema_version saying the
// version it was stored at.
v1::EventRecord ToEventRecord(const DecodedEvent& decoded);

}  // namespace outreach::store
