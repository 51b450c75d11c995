#include "store/command_processor.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "domain/overloaded.h"
#include "domain/validation.h"
#include "store/keys.h"
#include "store/projection.h"
#include "store/projections/patients.h"
#include "store/projections/registry.h"
#include "store/rocks.h"

namespace outreach::store {

namespace {

// What a projection reads while the writer adds a command's rows: the batch's rows so far,
// then the database (which only the writer writes).
class BatchRowReader final : public RowReader {
 public:
  BatchRowReader(const Database& database, const SortedRows& rows)
      : database_(database), rows_(rows) {}
  absl::StatusOr<std::optional<std::string>> Get(keys::Cf family,
                                                 absl::string_view key) const override {
    if (auto batched = rows_.Find(family, key)) {
      if (!batched->has_value()) return std::nullopt;
      return std::string(**batched);
    }
    std::string value;
    const rocksdb::Status s =
        database_.db()->Get(rocksdb::ReadOptions(), database_.cf(family), ToSlice(key), &value);
    if (s.IsNotFound()) return std::nullopt;
    if (!s.ok()) return FromRocks(s, "reading a projection row");
    return value;
  }

 private:
  const Database& database_;
  const SortedRows& rows_;
};

// An encrypted store's commands name patients by pseudonym (store/privacy.h): the ids the
// caller gave are replaced once the command's shape is valid (a bad id is left for Decide to
// name). Returns pseudonym -> the id it replaced.
absl::flat_hash_map<std::string, std::string> Pseudonymize(domain::Command& command,
                                                           const Privacy& privacy) {
  absl::flat_hash_map<std::string, std::string> ids;
  if (!domain::ValidateShape(command).ok()) return ids;
  // The store's own actors ("system:", which no caller may be) name patients by pseudonym
  // already: an erasure re-applied from the erasure list (store/erasure_list.h).
  if (const domain::CommandMeta* meta = domain::MetaOf(command);
      meta != nullptr && absl::StartsWith(meta->actor, domain::kReservedIdPrefix)) {
    return ids;
  }
  auto replace = [&](std::string& patient_id) {
    std::string pseudonym = privacy.Pseudonym(patient_id);
    ids[pseudonym] = std::move(patient_id);
    patient_id = std::move(pseudonym);
  };
  std::visit(domain::Overloaded{[&](domain::CreateTaskCommand& c) { replace(c.patient_id); },
                                [&](domain::ResolveTasksCommand& c) { replace(c.patient_id); },
                                [&](domain::SetContactPreferenceCommand& c) {
                                  replace(c.patient_id);
                                },
                                [&](domain::ErasePatientCommand& c) { replace(c.patient_id); },
                                [](auto&) {}},
             command);
  return ids;
}

// The ids back in place of their pseudonyms in an error's message (its payloads kept).
absl::Status WithIds(const absl::Status& status,
                     const absl::flat_hash_map<std::string, std::string>& ids) {
  if (status.ok() || ids.empty()) return status;
  std::string message(status.message());
  for (const auto& [pseudonym, id] : ids) absl::StrReplaceAll({{pseudonym, id}}, &message);
  absl::Status out(status.code(), message);
  status.ForEachPayload(
      [&](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

}  // namespace

absl::StatusOr<v1::Task> TaskState::Whole() const {
  v1::Task whole = task;
  // The bytes are Task.contacts fields: merging them appends the contacts, in order.
  if (!contacts.empty() && !whole.MergeFromString(contacts)) {
    return absl::DataLossError(
        absl::StrCat("task \"", task.task_id(), "\": its contacts do not parse"));
  }
  return whole;
}

absl::Status CommandResult::Materialize() {
  for (const std::shared_ptr<const TaskState>& state : states) {
    if (state == nullptr) {
      tasks.emplace_back();
      continue;
    }
    absl::StatusOr<v1::Task> whole = state->Whole();
    if (!whole.ok()) return whole.status();
    tasks.push_back(*std::move(whole));
  }
  states.clear();
  return absl::OkStatus();
}

std::shared_ptr<const TaskState> TaskStateCache::Find(const std::string& task_id) {
  auto it = entries_.find(task_id);
  if (it == entries_.end()) return nullptr;
  order_.splice(order_.begin(), order_, it->second.at);
  return it->second.task;
}

void TaskStateCache::Put(const std::string& task_id, std::shared_ptr<const TaskState> task) {
  if (capacity_ == 0) return;
  auto [it, inserted] = entries_.try_emplace(task_id);
  if (inserted) {
    order_.push_front(task_id);
    it->second.at = order_.begin();
  } else {
    order_.splice(order_.begin(), order_, it->second.at);
  }
  it->second.task = std::move(task);
  if (entries_.size() > capacity_) {
    entries_.erase(order_.back());
    order_.pop_back();
  }
}

void TaskStateCache::Clear() {
  entries_.clear();
  order_.clear();
}

// One command from its decision to its rows.
struct CommandProcessor::Decided {
  std::vector<std::string> named;                  // domain::StreamsOf
  absl::flat_hash_map<std::string, State> before;  // each task's state it read
  // Each patient's row it read, by patient stream id (nullptr: never seen), and the rows after
  // the events of the patients' streams.
  absl::flat_hash_map<std::string, std::shared_ptr<const storage::v1::PatientRow>> patients;
  absl::flat_hash_map<std::string, std::shared_ptr<storage::v1::PatientRow>> patients_after;
  std::vector<domain::NewEvent> events;
  LogHead cursor;                   // the batch's cursor after the events
  std::vector<std::string> order;  // the streams appended to, in order of their first event
  absl::flat_hash_map<std::string, std::shared_ptr<TaskState>> after;
  std::vector<std::pair<uint64_t, std::string>> event_rows;  // position, "events" value
  CommandResult result;
  // An encrypted store: pseudonym -> the patient id the command gave, and the data keys its
  // events made, read or destroyed.
  absl::flat_hash_map<std::string, std::string> patient_ids;
  Privacy::KeyChanges keys;
  // What Decide reads of an encrypted store's patient rows: copies with the reason opened.
  std::vector<std::unique_ptr<storage::v1::PatientRow>> opened_patients;
};

CommandProcessor::CommandProcessor(const Database& database, const SchemaRegistry* schemas,
                                   Appender& appender, ProcessorOptions options)
    : database_(database),
      log_(database.db(), &database.handles(), schemas),
      appender_(appender),
      options_(options),
      cache_(options.cached_tasks) {}

CommandProcessor::Batch::Batch() = default;

void CommandProcessor::Begin(SortedRows& rows) {
  rows.Clear();
  batch_.emplace();
  batch_->cursor = appender_.head();
  batch_->rows = &rows;
}

void CommandProcessor::Committed() {
  for (auto& [task_id, state] : batch_->tasks) {
    if (state != nullptr) cache_.Put(task_id, std::move(state));
  }
  if (options_.privacy != nullptr) options_.privacy->Committed(batch_->keys);
  batch_.reset();
}

// An encrypted store: seals the event's personal fields under its patient's data key (the task's
// patient, or the one a patient's event names), and a PatientErased destroys that key.
absl::Status CommandProcessor::SealEvent(Decided& decided, storage::v1::StoredEvent& event,
                                         const v1::Task* task) const {
  if (options_.privacy == nullptr) return absl::OkStatus();
  std::string practice_id;
  std::string pseudonym;
  if (event.has_task_created()) {
    practice_id = event.task_created().practice_id();
    pseudonym = event.task_created().patient_id();
  } else if (event.has_contact_preference_set()) {
    practice_id = event.contact_preference_set().practice_id();
    pseudonym = event.contact_preference_set().patient_id();
  } else if (event.has_patient_erased()) {
    options_.privacy->DestroyKey(event.patient_erased().practice_id(),
                                 event.patient_erased().patient_id(), decided.keys);
    return absl::OkStatus();
  } else if (task != nullptr) {
    practice_id = task->practice_id();
    pseudonym = task->patient_id();
  }
  if (practice_id.empty()) practice_id = domain::kDefaultPracticeId;
  auto id = decided.patient_ids.find(pseudonym);
  return options_.privacy->Seal(event, practice_id, pseudonym,
                                id != decided.patient_ids.end() ? id->second : std::string(),
                                batch_->keys, decided.keys);
}

std::optional<absl::StatusOr<CommandResult>> CommandProcessor::Replayed(
    const std::string& request_key, const std::string& request_id,
    const std::string& fingerprint) const {
  auto reused = [&] {
    return absl::AlreadyExistsError(absl::StrCat(
        "request_id: \"", request_id, "\" was already used for a different request"));
  };
  CommandResult replay;
  replay.replayed = true;
  if (auto pending = batch_->requests.find(request_key); pending != batch_->requests.end()) {
    if (pending->second.fingerprint != fingerprint) return reused();
    replay.states = pending->second.tasks;
    return replay;
  }
  std::string raw;
  rocksdb::Status s = database_.db()->Get(rocksdb::ReadOptions(), database_.cf(keys::kRequests),
                                          request_key, &raw);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) return FromRocks(s, "reading the idempotency key");
  storage::v1::RequestRecord record;
  if (!record.ParseFromString(raw)) {
    return absl::DataLossError(
        absl::StrCat("requests: row for \"", request_id, "\" is malformed"));
  }
  if (record.fingerprint() != fingerprint) return reused();
  std::vector<std::pair<std::string, int64_t>> streams = {
      {record.task_id(), record.task_version()}};
  for (const storage::v1::StreamVersion& more : record.more_streams()) {
    streams.emplace_back(more.task_id(), more.version());
  }
  for (const auto& [task_id, version] : streams) {
    if (domain::IsPatientStream(task_id)) continue;  // the result lists tasks
    absl::StatusOr<v1::Task> task = FoldStream(task_id, version);
    if (!task.ok()) return task.status();
    replay.tasks.push_back(*std::move(task));
  }
  return replay;
}

absl::StatusOr<CommandProcessor::State> CommandProcessor::StateBefore(const std::string& task_id) {
  if (auto it = batch_->tasks.find(task_id); it != batch_->tasks.end()) return it->second;
  if (State cached = cache_.Find(task_id)) return cached;
  std::string raw;
  rocksdb::Status s = database_.db()->Get(rocksdb::ReadOptions(), database_.cf(keys::kTasks),
                                          ToSlice(task_id), &raw);
  if (s.IsNotFound()) return State();
  if (!s.ok()) return FromRocks(s, "reading a task");
  auto state = std::make_shared<TaskState>();
  if (!keys::DecodeTaskRow(raw, &state->task, &state->contacts).ok()) {
    return absl::DataLossError(absl::StrCat("tasks: row for \"", task_id, "\" is not a Task"));
  }
  return State(std::move(state));
}

// The task's state right after its version `version`, folded from its stream.
absl::StatusOr<v1::Task> CommandProcessor::FoldStream(const std::string& task_id,
                                                      int64_t version) const {
  const Database::ReadView view(database_);
  v1::Task task;
  absl::StatusOr<int64_t> folded = log_.FoldTask(
      view.options(), task_id, version, [](const DecodedEvent&) { return true; },
      [](const v1::Task&, const v1::Task&, const DecodedEvent&) {}, &task);
  if (!folded.ok()) return folded.status();
  if (*folded != version) {
    return absl::DataLossError(absl::StrCat("streams: task \"", task_id, "\" version ", version,
                                            " is missing or malformed"));
  }
  return task;
}

// Stamps an event of a patient's stream and folds it into the row's preference (its other fields
// are the "patients" projection's).
absl::Status CommandProcessor::StampPatientEvent(Decided& decided,
                                                 storage::v1::StoredEvent& event, absl::Time now,
                                                 const std::string* fingerprint) {
  auto before = decided.patients.find(event.task_id());
  if (before == decided.patients.end()) {
    return absl::InternalError(absl::StrCat("the rules appended to \"", event.task_id(),
                                            "\", a patient the command does not concern"));
  }
  auto [after, first] = decided.patients_after.try_emplace(event.task_id());
  if (first) {
    after->second = before->second != nullptr
                        ? std::make_shared<storage::v1::PatientRow>(*before->second)
                        : std::make_shared<storage::v1::PatientRow>();
    decided.order.push_back(event.task_id());
  }
  if (absl::Status s = SealEvent(decided, event, nullptr); !s.ok()) return s;
  v1::EventRecord& record = decided.result.events.emplace_back();
  std::string row = appender_.Stamp(event, after->second->version() + 1, now, fingerprint,
                                    &decided.cursor, &record);
  if (absl::Status s = domain::ApplyPatient(*after->second, event); !s.ok()) {
    return absl::InternalError(
        absl::StrCat("the rules rejected their own event: ", s.message()));
  }
  decided.event_rows.emplace_back(decided.cursor.position, std::move(row));
  return absl::OkStatus();
}

// Stamps the decided events (the Appender), applies each to its stream's next state, and
// encodes them; `decided.result` gets them as EventRecords. Changes nothing shared.
absl::Status CommandProcessor::Stamp(Decided& decided, absl::Time now,
                                     const std::string& fingerprint, bool has_request) {
  decided.cursor = batch_->cursor;
  for (std::size_t i = 0; i < decided.events.size(); ++i) {
    storage::v1::StoredEvent& event = decided.events[i].event;
    const std::string* with = i == 0 && has_request ? &fingerprint : nullptr;
    if (domain::IsPatientStream(event.task_id())) {
      if (absl::Status s = StampPatientEvent(decided, event, now, with); !s.ok()) return s;
      continue;
    }
    auto before = decided.before.find(event.task_id());
    if (before == decided.before.end()) {
      return absl::InternalError(absl::StrCat("the rules appended to task \"", event.task_id(),
                                              "\", which the command does not name"));
    }
    auto [after, first] = decided.after.try_emplace(event.task_id());
    if (first) {
      after->second = before->second != nullptr ? std::make_shared<TaskState>(*before->second)
                                                : std::make_shared<TaskState>();
      decided.order.push_back(event.task_id());
    }
    v1::Task& next = after->second->task;
    if (absl::Status s = SealEvent(decided, event, &next); !s.ok()) return s;
    v1::EventRecord& record = decided.result.events.emplace_back();
    std::string row =
        appender_.Stamp(event, next.version() + 1, now, with, &decided.cursor, &record);
    if (absl::Status s = domain::Apply(next, event); !s.ok()) {
      return absl::InternalError(
          absl::StrCat("the rules rejected their own event: ", s.message()));
    }
    // A contact leaves the state as bytes (TaskState).
    for (const v1::Contact& contact : next.contacts()) {
      keys::AppendContactBytes(contact, &after->second->contacts);
    }
    next.clear_contacts();
    decided.event_rows.emplace_back(decided.cursor.position, std::move(row));
  }
  return absl::OkStatus();
}


// The rows of the command's events, then the rows every projection changes
// (store/projection.h). On an error, the batch's rows are as they were.
absl::Status CommandProcessor::PutRows(const Decided& decided, const domain::CommandMeta* meta,
                                       const std::string& request_key,
                                       const std::string& fingerprint) {
  SortedRows& rows = *batch_->rows;
  const std::size_t size_before = rows.size();
  for (const auto& [position, bytes] : decided.event_rows) {
    rows.Put(keys::kEvents, keys::EventKey(position), bytes);
  }
  for (const auto& [key, value] : decided.keys.rows) {
    if (value.has_value()) {
      rows.Put(keys::kKeys, key, *value);
    } else {
      rows.Delete(keys::kKeys, key);
    }
  }
  std::vector<std::vector<const storage::v1::StoredEvent*>> events(decided.order.size());
  std::vector<StreamChange> streams;
  streams.reserve(decided.order.size());
  for (std::size_t i = 0; i < decided.order.size(); ++i) {
    const std::string& task_id = decided.order[i];
    for (const domain::NewEvent& stamped : decided.events) {
      if (stamped.event.task_id() == task_id) events[i].push_back(&stamped.event);
    }
    if (domain::IsPatientStream(task_id)) {
      streams.push_back(StreamChange{.task_id = task_id,
                                     .patient = decided.patients_after.at(task_id).get(),
                                     .events = events[i]});
      continue;
    }
    const State& before = decided.before.at(task_id);
    const TaskState& after = *decided.after.at(task_id);
    streams.push_back(StreamChange{.task_id = task_id,
                                   .before = before != nullptr ? &before->task : nullptr,
                                   .after = &after.task,
                                   .after_contacts = after.contacts,
                                   .events = events[i]});
  }
  const BatchRowReader reader(database_, rows);
  const CommandChange change{
      .streams = streams,
      .actor = meta != nullptr ? absl::string_view(meta->actor) : "",
      .request_id = meta != nullptr ? absl::string_view(meta->request_id) : "",
      .request_key = request_key,
      .fingerprint = fingerprint,
      .last_position = decided.cursor.position,
      .rows = &reader};
  for (const Projection* projection : RegisteredProjections()) {
    if (absl::Status s = projection->OnCommand(change, rows); !s.ok()) {
      rows.Truncate(size_before);
      return s;
    }
  }
  return absl::OkStatus();
}

// The states Decide reads, through the batch, the cache and RocksDB: the tasks the command names,
// the rows of the patients it concerns (domain::PatientsOf), and their open tasks.
absl::Status CommandProcessor::Load(const domain::Command& command, Decided& decided,
                                    domain::TaskStates& states, domain::PatientStates& patients) {
  auto load_task = [&](const std::string& task_id) -> absl::Status {
    if (decided.before.contains(task_id)) return absl::OkStatus();
    absl::StatusOr<State> state = StateBefore(task_id);
    if (!state.ok()) return state.status();
    states[task_id] = *state != nullptr ? &(*state)->task : nullptr;
    decided.before[task_id] = *std::move(state);
    return absl::OkStatus();
  };
  for (const std::string& task_id : decided.named) {
    if (absl::Status s = load_task(task_id); !s.ok()) return s;
  }
  const BatchRowReader reader(database_, *batch_->rows);
  for (const domain::PatientKey& key : domain::PatientsOf(command, states)) {
    absl::StatusOr<std::optional<storage::v1::PatientRow>> row =
        ReadPatientRow(reader, key.practice_id, key.patient_id);
    if (!row.ok()) return row.status();
    std::shared_ptr<const storage::v1::PatientRow> shared;
    if (row->has_value()) {
      shared = std::make_shared<const storage::v1::PatientRow>(**std::move(row));
      for (const storage::v1::PatientRow::OpenTask& open : shared->open_tasks()) {
        if (absl::Status s = load_task(open.task_id()); !s.ok()) return s;
      }
    }
    const std::string stream = domain::PatientStreamId(key);
    patients[stream] = shared.get();
    if (options_.privacy != nullptr && shared != nullptr && !shared->reason_sealed().empty()) {
      // Decide compares reasons; the row itself (the projection's "before") stays sealed.
      absl::StatusOr<std::string> reason = options_.privacy->ReasonOf(*shared);
      if (!reason.ok()) return reason.status();
      auto& opened = decided.opened_patients.emplace_back(
          std::make_unique<storage::v1::PatientRow>(*shared));
      opened->set_reason(*std::move(reason));
      patients[stream] = opened.get();
    }
    decided.patients[stream] = std::move(shared);
  }
  return absl::OkStatus();
}

absl::StatusOr<CommandResult> CommandProcessor::Process(const domain::Command& given,
                                                        const std::string& fingerprint) {
  if (options_.privacy == nullptr && std::holds_alternative<domain::ErasePatientCommand>(given)) {
    return absl::FailedPreconditionError(
        "this database is not encrypted (it was created without --master-key-file): a "
        "patient's data cannot be erased from it (README \"Privacy\")");
  }
  // An encrypted store decides on pseudonyms (store/privacy.h).
  std::optional<domain::Command> pseudonymized;
  absl::flat_hash_map<std::string, std::string> patient_ids;
  if (options_.privacy != nullptr) {
    pseudonymized.emplace(given);
    patient_ids = Pseudonymize(*pseudonymized, *options_.privacy);
  }
  const domain::Command& command = pseudonymized.has_value() ? *pseudonymized : given;
  const domain::CommandMeta* meta = domain::MetaOf(command);
  const std::string request_id = meta != nullptr ? meta->request_id : std::string();
  // Request ids are the actor's own (keys.h "requests").
  const std::string request_key =
      request_id.empty() ? std::string() : keys::RequestKey(meta->actor, request_id);
  if (!request_id.empty()) {
    if (auto replayed = Replayed(request_key, request_id, fingerprint)) {
      return *std::move(replayed);
    }
  }
  Decided decided;
  decided.patient_ids = std::move(patient_ids);
  decided.named = domain::StreamsOf(command);
  domain::TaskStates states;
  domain::PatientStates patients;
  if (absl::Status s = Load(command, decided, states, patients); !s.ok()) return s;
  const absl::Time now = std::max(options_.clock->Now(), batch_->cursor.last_recorded_at);
  absl::StatusOr<std::vector<domain::NewEvent>> events =
      domain::Decide(states, patients, command,
                     domain::DecideContext{now, options_.time_zone,
                                           // (a temporary: held until Decide returns)
                                           options_.practice_zones == nullptr
                                               ? nullptr
                                               : options_.practice_zones->Snapshot().get()});
  if (!events.ok()) return WithIds(events.status(), decided.patient_ids);
  if (events->empty()) {
    for (const std::string& task_id : decided.named) {
      decided.result.states.push_back(decided.before[task_id]);
    }
    return std::move(decided.result);
  }
  decided.events = *std::move(events);
  // Everything is computed before the first row goes into the shared batch.
  if (absl::Status s = Stamp(decided, now, fingerprint, !request_id.empty()); !s.ok()) return s;
  if (absl::Status s = PutRows(decided, meta, request_key, fingerprint); !s.ok()) return s;
  std::vector<State> result_tasks;
  for (const std::string& task_id : decided.order) {
    if (domain::IsPatientStream(task_id)) continue;  // the result lists tasks
    State next = std::move(decided.after[task_id]);
    decided.result.states.push_back(next);
    result_tasks.push_back(next);
    batch_->tasks[task_id] = std::move(next);
  }
  if (!request_id.empty()) {
    batch_->requests[request_key] = Batch::Request{fingerprint, std::move(result_tasks)};
  }
  for (auto& [key, value] : decided.keys.keys) batch_->keys[key] = std::move(value);
  batch_->cursor = decided.cursor;
  batch_->appended = true;
  return std::move(decided.result);
}

}  // namespace outreach::store
