#include "store/projections/outreach_stats.h"

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "domain/task_rules.h"
#include "domain/validation.h"
#include "outreach/v1/storage.pb.h"

namespace outreach::store {
namespace {

using storage::v1::StatsBucket;
using storage::v1::StatsTask;
using storage::v1::StoredEvent;

// The rows the applier works on, decoded: loaded on first use (Load), changed in place, and
// encoded once at the end (Encoded: the changed rows, in key order).
class StatsRows {
 public:
  virtual ~StatsRows() = default;

  // The bucket at `key`, empty if there is none yet; marked changed.
  absl::StatusOr<StatsBucket*> Bucket(const std::string& key) {
    auto [it, inserted] = buckets_.try_emplace(key);
    if (inserted) {
      absl::Status s = Decode(key, it->second);
      if (!s.ok()) {
        buckets_.erase(it);
        return s;
      }
    }
    return &it->second;
  }
  // The task row at `key` (DATA_LOSS when there is none); ChangedTask marks it changed.
  absl::StatusOr<StatsTask*> Task(const std::string& key) {
    auto [it, inserted] = tasks_.try_emplace(key);
    if (inserted) {
      absl::StatusOr<bool> found = DecodeTask(key, it->second);
      if (!found.ok() || !*found) {
        tasks_.erase(it);
        return found.ok() ? absl::DataLossError(absl::StrCat("stats: no row ", key))
                          : found.status();
      }
    }
    return &it->second;
  }
  StatsTask* NewTask(const std::string& key) {
    StatsTask* task = &tasks_[key];
    changed_tasks_.insert(key);
    return task;
  }
  void ChangedTask(const std::string& key) { changed_tasks_.insert(key); }

  std::vector<std::pair<std::string, std::string>> Encoded() const {
    std::vector<std::pair<std::string, std::string>> rows;
    rows.reserve(buckets_.size() + changed_tasks_.size());
    for (const auto& [key, bucket] : buckets_) rows.emplace_back(key, keys::EncodeMessage(bucket));
    for (const std::string& key : changed_tasks_) {
      rows.emplace_back(key, keys::EncodeMessage(tasks_.at(key)));
    }
    std::sort(rows.begin(), rows.end());
    return rows;
  }

 protected:
  // The stored row, if any (the fold keeps every row here: none).
  virtual absl::StatusOr<std::optional<std::string>> Load(const std::string& key) const = 0;

 private:
  template <typename Message>
  absl::StatusOr<bool> DecodeInto(const std::string& key, Message& message) const {
    absl::StatusOr<std::optional<std::string>> raw = Load(key);
    if (!raw.ok()) return raw.status();
    if (!raw->has_value()) return false;
    if (!message.ParseFromString(**raw)) {
      return absl::DataLossError(absl::StrCat("stats: malformed row ", absl::CEscape(key)));
    }
    return true;
  }
  absl::Status Decode(const std::string& key, StatsBucket& bucket) const {
    return DecodeInto(key, bucket).status();
  }
  absl::StatusOr<bool> DecodeTask(const std::string& key, StatsTask& task) const {
    return DecodeInto(key, task);
  }

  absl::node_hash_map<std::string, StatsBucket> buckets_;
  absl::node_hash_map<std::string, StatsTask> tasks_;
  absl::flat_hash_set<std::string> changed_tasks_;
};

// The live rows: the writer's (RowReader) under this command's own.
class LiveRows final : public StatsRows {
 public:
  explicit LiveRows(const RowReader& reader) : reader_(reader) {}

 private:
  absl::StatusOr<std::optional<std::string>> Load(const std::string& key) const override {
    return reader_.Get(keys::kStats, key);
  }
  const RowReader& reader_;
};

// The rebuild's rows: all of them in memory.
class FoldRows final : public StatsRows {
 private:
  absl::StatusOr<std::optional<std::string>> Load(const std::string& /*key*/) const override {
    return std::nullopt;
  }
};

// Moves a counted (task, period) pair from one "previous period" to another.
void Count(google::protobuf::Map<uint32_t, uint64_t>& counts, uint32_t previous, int delta) {
  uint64_t& count = counts[previous];
  count = delta > 0 ? count + 1 : (count > 0 ? count - 1 : 0);
  if (count == 0) counts.erase(previous);
}

// Applies one event of the log to the rows (the live update and the fold alike).
class StatsApplier {
 public:
  explicit StatsApplier(StatsRows& rows) : rows_(rows) {}

  absl::Status Apply(const StoredEvent& event) {
    switch (event.payload_case()) {
      case StoredEvent::kTaskCreated: return Created(event);
      case StoredEvent::kContactLogged: return Contacted(event);
      case StoredEvent::kTaskClosed: return Closed(event);
      case StoredEvent::kTaskAssigned: return Assigned(event);
      case StoredEvent::kContactPreferenceSet:  // a patient's stream: nothing to count
      case StoredEvent::kPatientErased:
      case StoredEvent::PAYLOAD_NOT_SET:
        return absl::OkStatus();
    }
    return absl::OkStatus();
  }

 private:
  using Mutation = absl::FunctionRef<void(StatsBucket&)>;

  absl::Status Mutate(const StatsTask& task, uint32_t period, const std::string& assignee,
                      Mutation mutate) {
    absl::StatusOr<StatsBucket*> bucket =
        rows_.Bucket(keys::StatsKey(keys::kStatsBucketTag, task.practice_id(), period, assignee,
                                    static_cast<v1::TaskCategory>(task.category())));
    if (!bucket.ok()) return bucket.status();
    mutate(**bucket);
    return absl::OkStatus();
  }

  absl::StatusOr<StatsTask*> Task(const StoredEvent& event) {
    return rows_.Task(keys::StatsTaskKey(event.task_id()));
  }

  absl::Status Created(const StoredEvent& event) {
    const v1::TaskCreated& created = event.task_created();
    StatsTask& task = *rows_.NewTask(keys::StatsTaskKey(event.task_id()));
    task.set_practice_id(created.practice_id());
    task.set_category(created.category());
    task.set_created_micros(absl::ToUnixMicros(domain::FromProto(event.recorded_at())));
    task.set_assignee(created.assignee());
    return Mutate(task, keys::StatsPeriod(domain::FromProto(event.recorded_at())),
                  task.assignee(), [](StatsBucket& b) { b.set_created(b.created() + 1); });
  }

  absl::Status Assigned(const StoredEvent& event) {
    absl::StatusOr<StatsTask*> task = Task(event);
    if (!task.ok()) return task.status();
    (*task)->set_assignee(event.task_assigned().assignee());
    rows_.ChangedTask(keys::StatsTaskKey(event.task_id()));
    return absl::OkStatus();
  }

  absl::Status Contacted(const StoredEvent& event) {
    absl::StatusOr<StatsTask*> found = Task(event);
    if (!found.ok()) return found.status();
    StatsTask* task = *found;
    const absl::Time at = domain::FromProto(event.occurred_at());
    const uint32_t period = keys::StatsPeriod(at);
    const v1::ContactOutcome outcome = event.contact_logged().outcome();
    const bool first = task->contacts().empty();
    const int64_t seconds =
        absl::ToInt64Seconds(at - absl::FromUnixMicros(task->created_micros()));
    absl::Status s = Mutate(*task, period, task->assignee(), [&](StatsBucket& b) {
      ++(*b.mutable_contacts_by_outcome())[outcome];
      if (domain::IsReached(outcome)) b.set_reached(b.reached() + 1);
      if (first) ++(*b.mutable_first_contact_seconds())[seconds];
    });
    if (!s.ok()) return s;
    if (s = Chain(*task, period, /*by_assignee=*/false); !s.ok()) return s;
    if (s = Chain(*task, period, /*by_assignee=*/true); !s.ok()) return s;
    // What Chain reads is each period's first assignee and the periods of each assignee: a
    // pair already listed adds nothing (and a task's row stays the size of its periods).
    for (const StatsTask::Contact& c : task->contacts()) {
      if (c.period() == period && c.assignee() == task->assignee()) return absl::OkStatus();
    }
    StatsTask::Contact* contact = task->add_contacts();
    contact->set_period(period);
    contact->set_assignee(task->assignee());
    rows_.ChangedTask(keys::StatsTaskKey(event.task_id()));
    return absl::OkStatus();
  }

  // A new contact in `period` (not yet in task.contacts()): if the task (by_assignee: under its
  // current assignee) had no contact in that period, the pair (task, period) is counted under
  // the previous contacted period, and the next contacted period's pair moves to count under
  // this one. Each pair lives in the bucket of the first contact logged in its period.
  absl::Status Chain(const StatsTask& task, uint32_t period, bool by_assignee) {
    std::map<uint32_t, std::string> periods;  // period -> the assignee of its bucket
    for (const StatsTask::Contact& c : task.contacts()) {
      if (by_assignee && c.assignee() != task.assignee()) continue;
      periods.emplace(c.period(), c.assignee());
    }
    if (periods.count(period) != 0) return absl::OkStatus();
    auto next = periods.upper_bound(period);
    const uint32_t previous = next == periods.begin() ? 0 : std::prev(next)->first;
    auto field = [by_assignee](StatsBucket& b) {
      return by_assignee ? b.mutable_assignee_periods_by_previous()
                         : b.mutable_task_periods_by_previous();
    };
    absl::Status s = Mutate(task, period, task.assignee(),
                            [&](StatsBucket& b) { Count(*field(b), previous, +1); });
    if (!s.ok() || next == periods.end()) return s;
    return Mutate(task, next->first, next->second, [&](StatsBucket& b) {
      Count(*field(b), previous, -1);
      Count(*field(b), period, +1);
    });
  }

  absl::Status Closed(const StoredEvent& event) {
    absl::StatusOr<StatsTask*> found = Task(event);
    if (!found.ok()) return found.status();
    const StatsTask* task = *found;
    const v1::TaskClosed& closed = event.task_closed();
    const absl::Time at = domain::FromProto(event.recorded_at());
    const bool scheduled =
        (closed.reason() == v1::CONTACT_OUTCOME && closed.outcome() == v1::SCHEDULED) ||
        closed.reason() == v1::APPOINTMENT_SCHEDULED;
    const int64_t seconds =
        absl::ToInt64Seconds(at - absl::FromUnixMicros(task->created_micros()));
    return Mutate(*task, keys::StatsPeriod(at), task->assignee(), [&](StatsBucket& b) {
      ++(*b.mutable_closed_by_reason())[closed.reason()];
      if (!scheduled) return;
      b.set_scheduled(b.scheduled() + 1);
      ++(*b.mutable_scheduled_seconds())[seconds];
    });
  }

  StatsRows& rows_;
};

class StatsFold final : public ProjectionFold {
 public:
  absl::Status OnEvent(const StoredEvent& event, uint64_t /*position*/) override {
    return applier_.Apply(event);
  }
  absl::Status Finish(const FoldedLog& /*folded*/) override { return absl::OkStatus(); }
  const FoldRows& rows() const { return rows_; }

 private:
  FoldRows rows_;
  StatsApplier applier_{rows_};
};

class OutreachStatsProjectionImpl final : public Projection {
 public:
  absl::string_view name() const override { return "stats"; }
  absl::Span<const FamilySpec> families() const override { return kFamilies; }

  // The command's events in log order (a command's streams may interleave), through the rows
  // the writer sees plus this command's own.
  absl::Status OnCommand(const CommandChange& change, SortedRows& rows) const override {
    std::vector<const StoredEvent*> events;
    for (const StreamChange& stream : change.streams) {
      events.insert(events.end(), stream.events.begin(), stream.events.end());
    }
    std::sort(events.begin(), events.end(), [](const StoredEvent* a, const StoredEvent* b) {
      return a->position() < b->position();
    });
    LiveRows live(*change.rows);
    StatsApplier applier(live);
    for (const StoredEvent* event : events) {
      if (absl::Status s = applier.Apply(*event); !s.ok()) return s;
    }
    for (const auto& [key, value] : live.Encoded()) rows.Put(keys::kStats, key, value);
    return absl::OkStatus();
  }

  std::unique_ptr<ProjectionFold> StartFold() const override {
    return std::make_unique<StatsFold>();
  }

  absl::Status Emit(const FoldedLog& /*folded*/, const ProjectionFold* own,
                    RowSink emit) const override {
    for (const auto& [key, value] : static_cast<const StatsFold*>(own)->rows().Encoded()) {
      if (absl::Status s = emit(keys::kStats, key, value); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  // Buckets are read in ranges by the reports; the task rows by key, but every one exists.
  static constexpr FamilySpec kFamilies[] = {{keys::kStats, FamilyReads::kRanges}};
};

}  // namespace

const Projection& OutreachStatsProjection() {
  static const OutreachStatsProjectionImpl kProjection;
  return kProjection;
}

}  // namespace outreach::store
