// A projection: rows in column families of their own that are a pure fold of the event log.
//
// One object serves the live write, the rebuild and verification (store/projections/
// registry.h lists them), so the three cannot drift apart:
//   - live: EventStore's writer calls OnCommand for every command that appends, with what it
//     knows of the command (CommandChange), and the projection adds the rows that change to the
//     writer's batch;
//   - rebuild and VerifyProjections: FoldLog (store/log_fold.h) folds the whole log once into
//     the shared FoldedLog (every task's state and stream). A projection that needs more than
//     that (an event-derived one: counters by assignee and day, the request ids) gets a
//     ProjectionFold of its own from StartFold, which sees every event in log order; then Emit
//     hands over its rows in key order.
// The stored bytes must be the same either way: the tests compare DumpProjections after live
// writes with the one after a rebuild.
//
// Adding one: a file in store/projections/ implementing Projection (its families, how they are
// read, the live rows, the fold), and one line in store/projections/registry.cc; a new family
// also needs its id and name in keys.h (keys::Cf, ColumnFamilyNames), where every family's key
// grammar is written down (the stored format).
//
// Projections are stateless and immutable: thread-safe. A ProjectionFold belongs to one fold.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "outreach/v1/storage.pb.h"
#include "outreach/v1/task.pb.h"
#include "store/keys.h"
#include "store/sorted_rows.h"

namespace outreach::store {

struct FoldedLog;

// The rows as the writer sees them while it adds a command's: the store's, with the rows its
// batch has so far applied. For projections whose rows are not a function of one task's
// state (counters by assignee and day): they read a row, then put its new value.
class RowReader {
 public:
  virtual ~RowReader() = default;
  // nullopt when the row does not exist; DATA_LOSS or the read error when it cannot be read.
  virtual absl::StatusOr<std::optional<std::string>> Get(keys::Cf family,
                                                         absl::string_view key) const = 0;
};

// One stream a command appends to: a task's, or a patient's (domain::IsPatientStream). The
// pointers are valid during OnCommand only.
struct StreamChange {
  absl::string_view task_id;  // the stream id
  // A task's stream: its state before (nullptr: the command creates it) and after (never
  // nullptr). Both nullptr for a patient's stream.
  // The writer's states hold no Contact messages: `after_contacts` has the task's contacts as
  // its "tasks" row encodes them (keys::EncodeTaskRow); a state with its contacts as messages
  // has none there.
  const v1::Task* before = nullptr;
  const v1::Task* after = nullptr;
  absl::string_view after_contacts = {};
  // A patient's stream: its preference and version after the events (the rest of the row is
  // the "patients" projection's); nullptr for a task's stream.
  const storage::v1::PatientRow* patient = nullptr;
  // Its appended events, stamped (position, stream version, id, time), in log order.
  absl::Span<const storage::v1::StoredEvent* const> events;
};

// What the writer knows about one command that appends events, to one or several task
// streams. The views and pointers are valid during OnCommand only.
struct CommandChange {
  absl::Span<const StreamChange> streams;  // in the order of each stream's first event
  absl::string_view actor;
  absl::string_view request_id;   // empty: the command has none
  absl::string_view request_key;  // keys::RequestKey(actor, request_id); empty without one
  absl::string_view fingerprint;  // the request's fingerprint
  uint64_t last_position = 0;     // the position of the command's last event
  const RowReader* rows = nullptr;  // the rows so far (never nullptr in the writer)
};

// Takes one row (family, key, value); a non-OK status stops the emission and is returned.
using RowSink = absl::FunctionRef<absl::Status(keys::Cf, absl::string_view, absl::string_view)>;

// A projection's own state during one fold of the log (see Projection::StartFold).
class ProjectionFold {
 public:
  virtual ~ProjectionFold() = default;
  // Every event of the log, in log order, upcast to the current schema.
  virtual absl::Status OnEvent(const storage::v1::StoredEvent& event, uint64_t position) = 0;
  // After the last event, with the shared fold complete (FoldedLog::tasks sorted).
  virtual absl::Status Finish(const FoldedLog& folded) = 0;
};

// How a projection's column family is read, so that the store tunes it (store/database.cc):
// the projection says it, not a list kept elsewhere.
enum class FamilyReads {
  kRanges,        // scanned in key order (the worklist, expiry, a stream's positions)
  kPointLookups,  // looked up by whole key on the write path, often absent (a new task, a new
                  // request id, a patient's first task): bloom filters in the tables and the
                  // memtable answer a miss without a search
};

struct FamilySpec {
  keys::Cf id;
  FamilyReads reads;
};

class Projection {
 public:
  virtual ~Projection() = default;

  // For messages and logs.
  virtual absl::string_view name() const = 0;
  // The column families it owns (no two projections share one), in the order Emit emits them,
  // and how each is read.
  virtual absl::Span<const FamilySpec> families() const = 0;

  // Live: adds to `rows` the rows of its families that `change` puts or deletes. Only rows that
  // change: each is a memtable insert, the writer's main cost. An error fails the command: the
  // writer drops every row the command added.
  virtual absl::Status OnCommand(const CommandChange& change, SortedRows& rows) const = 0;

  // Rebuild and verification: the projection's own fold state, or nullptr (the default) when
  // its rows are a function of the shared fold alone.
  virtual std::unique_ptr<ProjectionFold> StartFold() const { return nullptr; }
  // Hands every row of its families to `emit`, family by family in families() order, each in
  // key order. `own` is what StartFold returned, finished (nullptr if it returned nullptr).
  virtual absl::Status Emit(const FoldedLog& folded, const ProjectionFold* own,
                            RowSink emit) const = 0;
};

// A projection whose live rows follow each changed task on its own (task rows, worklist,
// expiry): OnCommand calls OnStream once per task stream the command appended to.
class PerStreamProjection : public Projection {
 public:
  absl::Status OnCommand(const CommandChange& change, SortedRows& rows) const final {
    for (const StreamChange& stream : change.streams) {
      if (stream.after == nullptr) continue;  // a patient's stream
      if (absl::Status s = OnStream(stream, rows); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  virtual absl::Status OnStream(const StreamChange& change, SortedRows& rows) const = 0;
};

}  // namespace outreach::store
