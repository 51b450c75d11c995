#include "store/recovery.h"

#include <algorithm>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "domain/validation.h"
#include "rocksdb/write_batch.h"
#include "store/keys.h"
#include "store/log_reader.h"
#include "store/log_verifier.h"
#include "store/projection_rows.h"
#include "store/rocks.h"

namespace outreach::store {
namespace {

// How often a rebuild at Open reports its progress to the observer (a metric, polled).
constexpr uint64_t kRebuildProgressEvery = 10000;

// Where Open's verification starts: the last verified checkpoint (position 0 when there is
// none, or when its schema is newer than this build's: then the whole log is re-read so that
// the error names the first event this build cannot read).
struct VerifyStart {
  uint64_t from = 0;
  Hash from_hash = ZeroHash();
  uint32_t max_schema = 1;
};

absl::StatusOr<VerifyStart> ReadCheckpoint(const LogReader& log,
                                           const rocksdb::ReadOptions& read) {
  VerifyStart start;
  std::string raw;
  rocksdb::Status s = log.db()->Get(read, log.cf(keys::kDefault), keys::kCheckpointKey, &raw);
  if (s.IsNotFound()) return start;
  if (!s.ok()) return FromRocks(s, "reading the verified checkpoint");
  absl::StatusOr<storage::v1::VerifiedCheckpoint> checkpoint = keys::DecodeCheckpoint(raw);
  if (!checkpoint.ok()) return checkpoint.status();
  start.max_schema = std::max<uint32_t>(checkpoint->max_schema_version(), 1);
  if (start.max_schema > log.schemas().current_version() || checkpoint->position() == 0) {
    return start;
  }
  start.from = checkpoint->position();
  absl::StatusOr<DecodedEvent> event = log.ReadEvent(read, start.from);
  if (!event.ok()) return event.status();
  if (AsBytes(event->hash) != checkpoint->hash() || !VerifyEventHash(*event)) {
    return absl::DataLossError(absl::StrCat("event log: position ", start.from,
                                            ": does not match the verified checkpoint"));
  }
  start.from_hash = event->hash;
  return start;
}

// Verifies the log from `start` to the head, and sets `*head` from what it checked.
// Returns the highest schema version of the log.
absl::StatusOr<uint32_t> VerifyOnOpen(const LogReader& log, const rocksdb::ReadOptions& read,
                                      const VerifyStart& start, bool projections_current,
                                      LogHead* head) {
  uint32_t seen_schema = 0;
  const VerifyReport report = VerifyLogRange(log, read, start.from, start.from_hash,
                                             projections_current, /*to=*/0, &seen_schema);
  if (!report.ok) {
    return absl::DataLossError(absl::StrCat("event log is corrupt at position ",
                                            report.first_bad_position, ": ", report.problem));
  }
  if (start.max_schema > log.schemas().current_version()) {
    return absl::DataLossError(absl::StrCat(
        "event log: the verified checkpoint says events use schema_version ", start.max_schema,
        ", newer than this build supports (", log.schemas().current_version(), ")"));
  }
  head->position = report.head_position;
  HashFromBytes(report.head_hash, &head->hash);
  return std::max(start.max_schema, seen_schema);
}

// True when the projections were folded with this build's projection format and schema.
absl::StatusOr<bool> ProjectionsCurrent(const LogReader& log, const rocksdb::ReadOptions& read) {
  std::string raw;
  rocksdb::Status s =
      log.db()->Get(read, log.cf(keys::kDefault), keys::kProjectionFormatKey, &raw);
  uint32_t format = 0;
  if (s.IsNotFound()) return false;
  if (!s.ok()) return FromRocks(s, "reading the projection format");
  if (!keys::DecodeFixed32BE(raw, &format) || format != keys::kProjectionFormat) return false;
  s = log.db()->Get(read, log.cf(keys::kDefault), keys::kProjectionSchemaKey, &raw);
  uint32_t schema = 1;  // the row is absent in stores written before it existed, at version 1
  if (s.ok()) {
    if (!keys::DecodeFixed32BE(raw, &schema)) return false;
  } else if (!s.IsNotFound()) {
    return FromRocks(s, "reading the projection schema");
  }
  return schema == log.schemas().current_version();
}

// Records the verified head as the new checkpoint (and, on an empty log, the projection
// format), then rebuilds the projections if they are not current.
absl::Status RecordCheckpoint(Database& database, const LogReader& log, Recovered& recovered,
                              uint32_t max_schema, bool projections_current,
                              StoreObserver* observer) {
  storage::v1::VerifiedCheckpoint checkpoint;
  checkpoint.set_position(recovered.head.position);
  checkpoint.set_hash(std::string(AsBytes(recovered.head.hash)));
  checkpoint.set_max_schema_version(max_schema);
  rocksdb::WriteBatch batch;
  batch.Put(database.cf(keys::kDefault), keys::kCheckpointKey,
            keys::EncodeCheckpoint(checkpoint));
  if (recovered.head.position == 0 && !projections_current) {
    batch.Put(database.cf(keys::kDefault), keys::kProjectionFormatKey,
              keys::EncodeFixed32BE(keys::kProjectionFormat));
    batch.Put(database.cf(keys::kDefault), keys::kProjectionSchemaKey,
              keys::EncodeFixed32BE(log.schemas().current_version()));
    projections_current = true;
  }
  if (absl::Status w = database.WriteSynced(&batch, "writing the verified checkpoint"); !w.ok()) {
    return w;
  }
  recovered.checkpoint_position = recovered.head.position;
  recovered.checkpoint_max_schema = max_schema;
  if (projections_current) return absl::OkStatus();
  return RebuildProjectionsFromLog(
      database, log, recovered.head.position,
      [observer](uint64_t folded, uint64_t total) {
        if (observer != nullptr) observer->RebuildProgress(folded, total);
      },
      kRebuildProgressEvery);
}

absl::Status RefuseStaleProjections(const Database& database, const SchemaRegistry& schemas) {
  return absl::FailedPreconditionError(absl::StrCat(
      "the projections in ", database.dir(), " were folded with another projection format or "
      "event schema version than this build's (format ", keys::kProjectionFormat, ", schema ",
      schemas.current_version(), "): open it read-write, or run `outreachctl rebuild` on a copy"));
}

}  // namespace

absl::StatusOr<Recovered> Recover(Database& database, const SchemaRegistry& schemas,
                                  bool verify, StoreObserver* observer) {
  if (absl::Status s = schemas.CheckComplete(); !s.ok()) return s;
  const LogReader log(database.db(), &database.handles(), &schemas);
  // Released before a rebuild, which would otherwise pin every row it replaces. A secondary
  // has no snapshots, and nothing changes its view before Recover returns.
  std::unique_ptr<rocksdb::ManagedSnapshot> snapshot;
  rocksdb::ReadOptions read;
  if (!database.secondary()) {
    snapshot = std::make_unique<rocksdb::ManagedSnapshot>(database.db());
    read.snapshot = snapshot->snapshot();
  }
  absl::StatusOr<VerifyStart> start = verify ? ReadCheckpoint(log, read) : VerifyStart();
  if (!start.ok()) return start.status();
  absl::StatusOr<bool> current = ProjectionsCurrent(log, read);
  if (!current.ok()) return current.status();
  Recovered recovered;
  absl::StatusOr<uint32_t> max_schema = start->max_schema;
  if (verify) {
    max_schema = VerifyOnOpen(log, read, *start, *current, &recovered.head);
  } else if (absl::Status h = log.ReadHeadRow(read, &recovered.head.position, &recovered.head.hash);
             !h.ok()) {
    return h;
  }
  if (!max_schema.ok()) return max_schema.status();
  if (recovered.head.position > 0 && !database.read_only()) {  // only the writer needs it
    absl::StatusOr<DecodedEvent> head = log.ReadEvent(read, recovered.head.position);
    if (!head.ok()) return head.status();
    recovered.head.last_recorded_at = domain::FromProto(head->event.recorded_at());
  }
  snapshot.reset();
  if (!database.read_only()) {
    if (absl::Status s =
            RecordCheckpoint(database, log, recovered, *max_schema, *current, observer);
        !s.ok()) {
      return s;
    }
  } else if (!*current && recovered.head.position > 0) {
    return RefuseStaleProjections(database, schemas);
  }
  return recovered;
}

}  // namespace outreach::store
