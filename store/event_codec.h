// The stored event envelope: how one event of the global log is laid out in RocksDB.
//
// Column family "events" (format version 1; the envelope is versioned forever):
//
//   key   := position: fixed64, big-endian       (so that key order is log order)
//   value := format_version: u8 (= 1)
//            prev_hash:      byte[32]            (the previous event's hash; 32 zero bytes at 1)
//            hash:           byte[32]
//            body:           byte[*]             (the rest of the value)
//   body  := serialized outreach.storage.v1.StoredEvent, schema_version = 1
//   hash  := SHA-256(prev_hash || fixed64_be(position) || body)
//
// The hash covers the exact stored body bytes, so a reader never re-serializes to check it.
//
// Readers: a format_version other than kEventFormatVersion, or a StoredEvent schema_version
// newer than kEventSchemaVersion, is DATA_LOSS with a message that says so: the event is never
// skipped or guessed at. An older schema_version would be upcast here before use (none exists
// yet: version 1 is the first). Any other malformed value is DATA_LOSS naming the position.
//
// Pure functions; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "outreach/v1/events.pb.h"
#include "outreach/v1/storage.pb.h"

namespace outreach::store {

inline constexpr uint8_t kEventFormatVersion = 1;
inline constexpr uint32_t kEventSchemaVersion = 1;
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

// One decoded "events" row.
struct DecodedEvent {
  uint64_t position = 0;  // from the key
  Hash prev_hash{};
  Hash hash{};
  std::string body;  // the exact stored body bytes the hash covers
  storage::v1::StoredEvent event;
};

// Builds the value of an "events" row for `event` (whose position must be set), chained to
// `prev_hash`. Returns the value and sets `*hash` to the new event's hash (`hash` may point at
// `prev_hash`).
std::string EncodeEvent(const storage::v1::StoredEvent& event, const Hash& prev_hash, Hash* hash);

// Parses an "events" row. `position` comes from the key. DATA_LOSS naming the position on any
// malformed or unsupported value. Does not check the hash (see VerifyEventHash).
absl::StatusOr<DecodedEvent> DecodeEvent(uint64_t position, absl::string_view value);

// True when the stored hash equals the recomputed one.
bool VerifyEventHash(const DecodedEvent& decoded);

// The client-facing record of a stored event.
v1::EventRecord ToEventRecord(const DecodedEvent& decoded);

}  // namespace outreach::store
