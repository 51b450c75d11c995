// Appender: the writing end of the event log. It keeps the head (position, hash, the time of
// the last event) and the verified checkpoint, stamps the events a batch appends (position,
// stream version, event id, recorded_at, the request's fingerprint), chains their hashes, and
// seals a batch with its head row (and, every StoreOptions::checkpoint_every events, a new
// checkpoint row). The format is in store/keys.h and store/event_codec.h.
//
// A batch moves a LogHead of its own (a cursor) from head(); nothing of the appender changes
// until Committed, once the batch is durable, so a refused write leaves it as it was.
// Owned by the writer thread (or by recovery and rebuild while there is no writer work).
#pragma once

#include <cstdint>
#include <string>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "outreach/v1/events.pb.h"
#include "outreach/v1/storage.pb.h"
#include "store/event_codec.h"
#include "store/sorted_rows.h"

namespace outreach::store {

// The end of the log: its last event's position and hash, and when it was recorded.
struct LogHead {
  uint64_t position = 0;
  Hash hash{};
  absl::Time last_recorded_at = absl::InfinitePast();
};

// What a batch's seal wrote besides its events.
struct Seal {
  bool checkpoint = false;  // a checkpoint row at the batch's head
  uint32_t max_schema = 1;  // the highest schema version through it
};

class Appender {
 public:
  Appender(const SchemaRegistry* schemas, uint64_t checkpoint_every)
      : schemas_(schemas), checkpoint_every_(checkpoint_every) {}

  // Where the log ends, as recovery found it, and the last checkpoint written.
  void Reset(const LogHead& head, uint64_t checkpoint_position, uint32_t checkpoint_max_schema);
  const LogHead& head() const { return head_; }

  // Stamps `event` as the next event of the log after `*cursor` and version `version` of its
  // stream, recorded at `now` (with `fingerprint` when not null), chains its hash from the
  // cursor's, and moves the cursor. Returns the event's "events" row value; `record` gets the
  // event as clients see it.
  std::string Stamp(storage::v1::StoredEvent& event, int64_t version, absl::Time now,
                    const std::string* fingerprint, LogHead* cursor, v1::EventRecord* record);

  // Adds the head row at `cursor` to `rows`, and the checkpoint row when one is due.
  Seal SealBatch(const LogHead& cursor, SortedRows& rows) const;
  // The batch ending at `cursor`, sealed with `seal`, is durable.
  void Committed(const LogHead& cursor, const Seal& seal);

 private:
  const SchemaRegistry* const schemas_;
  const uint64_t checkpoint_every_;
  LogHead head_;
  uint64_t checkpoint_position_ = 0;   // of the last "checkpoint" row written
  uint32_t checkpoint_max_schema_ = 1;  // and its max_schema_version
  absl::BitGen gen_;
};

}  // namespace outreach::store
