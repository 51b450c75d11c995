// CommandProcessor: decides the commands of the writer's batch, one after another, each against
// the states the batch has so far, and adds the rows of those that append (their events, through
// the Appender, then every registered projection's rows, store/projection.h) to the batch.
//
// A command may read and append to several task streams (domain::StreamsOf). Their states come
// through one read view: the batch's own writes first, then a cache of the states this writer
// committed last, then the "tasks" rows in RocksDB. Only the writer writes tasks, so the cache
// is never stale: it takes a batch's states once the batch is durable (Committed), never those
// of a refused one, and a rebuild empties it (ClearCache).
//
// A request id is the actor's own (keys.h "requests"): a retried request returns its first
// result (the tasks as they were right after it) and appends nothing; the same id for another
// request is ALREADY_EXISTS. Owned by the writer thread.
#pragma once

#include <cstddef>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "domain/task_rules.h"
#include "outreach/v1/events.pb.h"
#include "outreach/v1/task.pb.h"
#include "store/appender.h"
#include "store/clock.h"
#include "store/database.h"
#include "store/event_codec.h"
#include "store/log_reader.h"
#include "store/practice_zones.h"
#include "store/privacy.h"
#include "store/sorted_rows.h"

namespace outreach::store {

// A task's state as the writer keeps it: the Task without its contacts, and the contacts as
// bytes (keys::EncodeTaskRow). A contact appends to the bytes; the writer never copies, parses
// or re-serializes a task's whole contact history.
struct TaskState {
  v1::Task task;         // contacts() is empty
  std::string contacts;  // Task.contacts, as the "tasks" row encodes them
  // The whole Task (contacts parsed): for results, off the writer thread. DATA_LOSS if the
  // bytes do not parse (never for bytes the writer made or read from a row it decoded).
  absl::StatusOr<v1::Task> Whole() const;
};

struct CommandResult {
  // The tasks right after the command: those it appended to, in the order of their first
  // event; when it appended nothing, the tasks it names (an empty Task for one that does not
  // exist). A command that matched no task (ResolveTasks) has none.
  std::vector<v1::Task> tasks;
  std::vector<v1::EventRecord> events;  // what was appended (empty when replayed or a no-op)
  bool replayed = false;  // a retried request_id: the first result, nothing appended
  // The writer hands over its states (nullptr: no such task); Materialize turns them into
  // `tasks` on the thread that runs the callbacks (EventWriter does before any sees them).
  std::vector<std::shared_ptr<const TaskState>> states;
  absl::Status Materialize();
  // The first task: the one a command that names one task is about. Never call on no tasks.
  const v1::Task& task() const { return tasks.front(); }
};

// The most recently committed task states, up to a number of tasks (least recently used out).
class TaskStateCache {
 public:
  explicit TaskStateCache(std::size_t capacity) : capacity_(capacity) {}
  std::shared_ptr<const TaskState> Find(const std::string& task_id);
  void Put(const std::string& task_id, std::shared_ptr<const TaskState> task);
  void Clear();

 private:
  using Order = std::list<std::string>;  // most recent first
  struct Entry {
    std::shared_ptr<const TaskState> task;
    Order::iterator at;
  };
  const std::size_t capacity_;
  Order order_;
  absl::flat_hash_map<std::string, Entry> entries_;
};

struct ProcessorOptions {
  absl::TimeZone time_zone = absl::UTCTimeZone();  // "today" for follow-up dates
  // Per-practice zones (store/practice_zones.h), snapshotted for each command; nullptr = every
  // practice in time_zone.
  std::shared_ptr<const PracticeZoneTable> practice_zones;
  Clock* clock = nullptr;                          // never nullptr
  std::size_t cached_tasks = 16384;                // TaskStateCache capacity; 0 = no cache
  // An encrypted store's keys (store/privacy.h): commands name patients by pseudonym, and
  // events are sealed; nullptr = a plain store. Must outlive the processor.
  Privacy* privacy = nullptr;
};

class CommandProcessor {
 public:
  CommandProcessor(const Database& database, const SchemaRegistry* schemas, Appender& appender,
                   ProcessorOptions options);

  // Starts a batch at the appender's head; its rows go into `rows`, which it clears.
  void Begin(SortedRows& rows);
  // Decides `command` against the batch so far and, if it appends, adds its rows to the batch.
  // A command that fails leaves no trace in the batch.
  absl::StatusOr<CommandResult> Process(const domain::Command& command,
                                        const std::string& fingerprint);
  bool appended() const { return batch_.has_value() && batch_->appended; }
  const LogHead& cursor() const { return batch_->cursor; }
  // The batch is durable: the cache takes its states. Ends the batch.
  void Committed();
  // The batch was refused: nothing of it is kept. Ends the batch.
  void Abandoned() { batch_.reset(); }
  // After a rebuild: states are read from the projections again.
  void ClearCache() { cache_.Clear(); }

 private:
  using State = std::shared_ptr<const TaskState>;  // nullptr: no such task
  // What the batch has decided so far: read by its later commands before the database.
  struct Batch {
    // Declared here, defined in the .cc: clang 14 (the fuzz build) cannot tell a nested class
    // with member initializers default-constructible inside its enclosing class.
    Batch();
    LogHead cursor;
    absl::flat_hash_map<std::string, State> tasks;
    struct Request {
      std::string fingerprint;
      std::vector<State> tasks;  // its result's tasks, shared with `tasks`
    };
    absl::flat_hash_map<std::string, Request> requests;
    Privacy::BatchKeys keys;  // an encrypted store's data keys the batch read, made or deleted
    SortedRows* rows = nullptr;
    bool appended = false;
  };
  struct Decided;

  std::optional<absl::StatusOr<CommandResult>> Replayed(const std::string& request_key,
                                                        const std::string& request_id,
                                                        const std::string& fingerprint) const;
  absl::StatusOr<State> StateBefore(const std::string& task_id);
  absl::StatusOr<v1::Task> FoldStream(const std::string& task_id, int64_t version) const;
  absl::Status Load(const domain::Command& command, Decided& decided, domain::TaskStates& states,
                    domain::PatientStates& patients);
  absl::Status Stamp(Decided& decided, absl::Time now, const std::string& fingerprint,
                     bool has_request);
  absl::Status StampPatientEvent(Decided& decided, storage::v1::StoredEvent& event,
                                 absl::Time now, const std::string* fingerprint);
  absl::Status SealEvent(Decided& decided, storage::v1::StoredEvent& event,
                         const v1::Task* task) const;
  absl::Status PutRows(const Decided& decided, const domain::CommandMeta* meta,
                       const std::string& request_key, const std::string& fingerprint);

  const Database& database_;
  const LogReader log_;
  Appender& appender_;
  const ProcessorOptions options_;
  TaskStateCache cache_;
  std::optional<Batch> batch_;
};

}  // namespace outreach::store
