#include "store/appender.h"

#include <algorithm>
#include <array>

#include "domain/validation.h"
#include "store/keys.h"
#include "store/uuid.h"

namespace outreach::store {
namespace {

// An event id: a random UUID from the writer's generator (store/uuid.h).
std::string NewEventId(absl::BitGen& gen) {
  std::array<uint8_t, 16> b;
  for (int half = 0; half < 2; ++half) {
    const uint64_t bits = absl::Uniform<uint64_t>(gen);
    for (int i = 0; i < 8; ++i) b[half * 8 + i] = static_cast<uint8_t>(bits >> (8 * i));
  }
  return UuidV4FromRandomBytes(b);
}

}  // namespace

void Appender::Reset(const LogHead& head, uint64_t checkpoint_position,
                     uint32_t checkpoint_max_schema) {
  head_ = head;
  checkpoint_position_ = checkpoint_position;
  checkpoint_max_schema_ = checkpoint_max_schema;
}

std::string Appender::Stamp(storage::v1::StoredEvent& event, int64_t version, absl::Time now,
                            const std::string* fingerprint, LogHead* cursor,
                            v1::EventRecord* record) {
  event.set_schema_version(schemas_->current_version());
  event.set_position(cursor->position + 1);
  event.set_version(version);
  event.set_event_id(NewEventId(gen_));
  *event.mutable_recorded_at() = domain::ToProto(now);
  if (fingerprint != nullptr) event.set_request_fingerprint(*fingerprint);
  DecodedEvent decoded;
  decoded.position = event.position();
  decoded.prev_hash = cursor->hash;
  std::string row = EncodeEvent(event, cursor->hash, &cursor->hash);
  cursor->position = event.position();
  cursor->last_recorded_at = now;
  decoded.hash = cursor->hash;
  decoded.stored_schema_version = event.schema_version();
  decoded.event = event;
  *record = ToEventRecord(decoded);
  return row;
}

Seal Appender::SealBatch(const LogHead& cursor, SortedRows& rows) const {
  Seal seal;
  seal.checkpoint =
      checkpoint_every_ > 0 && cursor.position - checkpoint_position_ >= checkpoint_every_;
  seal.max_schema = std::max(checkpoint_max_schema_, schemas_->current_version());
  rows.Put(keys::kDefault, keys::kHeadKey, keys::EncodeHead(cursor.position, AsBytes(cursor.hash)));
  if (seal.checkpoint) {
    // The events this writer appended carry the hashes it computed itself; the checkpoint is
    // in the same batch, so it never points past a durable event.
    storage::v1::VerifiedCheckpoint row;
    row.set_position(cursor.position);
    row.set_hash(std::string(AsBytes(cursor.hash)));
    row.set_max_schema_version(seal.max_schema);
    rows.Put(keys::kDefault, keys::kCheckpointKey, keys::EncodeCheckpoint(row));
  }
  return seal;
}

void Appender::Committed(const LogHead& cursor, const Seal& seal) {
  head_ = cursor;
  if (seal.checkpoint) {
    checkpoint_position_ = cursor.position;
    checkpoint_max_schema_ = seal.max_schema;
  }
}

}  // namespace outreach::store
