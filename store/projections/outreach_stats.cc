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

// Where the applier reads and writes whole rows of the "stats" family.
class StatsRows {
 public:
  virtual ~StatsRows() = default;
  virtual absl::StatusOr<std::optional<std::string>> Get(const std::string& key) = 0;
  virtual void Put(const std::string& key, std::string value) = 0;
};

// The live rows: the writer's (RowReader), with this command's own puts on top, handed to the
// batch once the command's events are applied.
class LiveRows final : public StatsRows {
 public:
  explicit LiveRows(const RowReader& reader) : reader_(reader) {}
  absl::StatusOr<std::optional<std::string>> Get(const std::string& key) override {
    if (auto it = puts_.find(key); it != puts_.end()) return it->second;
    return reader_.Get(keys::kStats, key);
  }
  void Put(const std::string& key, std::string value) override {
    puts_[key] = std::move(value);
  }
  void WriteTo(SortedRows& rows) const {
    for (const auto& [key, value] : puts_) rows.Put(keys::kStats, key, value);
  }

 private:
  const RowReader& reader_;
  std::map<std::string, std::string> puts_;
};

// The rebuild's rows: every row in memory, in key order (std::string orders bytewise).
class FoldRows final : public StatsRows {
 public:
  absl::StatusOr<std::optional<std::string>> Get(const std::string& key) override {
    if (auto it = rows_.find(key); it != rows_.end()) return it->second;
    return std::nullopt;
  }
  void Put(const std::string& key, std::string value) override { rows_[key] = std::move(value); }
  const std::map<std::string, std::string>& rows() const { return rows_; }

 private:
  std::map<std::string, std::string> rows_;
};

template <typename Message>
absl::StatusOr<Message> Read(StatsRows& rows, const std::string& key) {
  absl::StatusOr<std::optional<std::string>> raw = rows.Get(key);
  if (!raw.ok()) return raw.status();
  Message message;
  if (raw->has_value() && !message.ParseFromString(**raw)) {
    return absl::DataLossError(absl::StrCat("stats: malformed row ", absl::CEscape(key)));
  }
  return message;
}

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
      case StoredEvent::PAYLOAD_NOT_SET:
        return absl::OkStatus();
    }
    return absl::OkStatus();
  }

 private:
  using Mutation = absl::FunctionRef<void(StatsBucket&)>;

  absl::Status Mutate(const StatsTask& task, uint32_t period, const std::string& assignee,
                      Mutation mutate) {
    const std::string key =
        keys::StatsKey(keys::kStatsBucketTag, task.practice_id(), period, assignee,
                       static_cast<v1::TaskCategory>(task.category()));
    absl::StatusOr<StatsBucket> bucket = Read<StatsBucket>(rows_, key);
    if (!bucket.ok()) return bucket.status();
    mutate(*bucket);
    rows_.Put(key, keys::EncodeMessage(*bucket));
    return absl::OkStatus();
  }

  // A median's sample of the task (written once: a first contact, a scheduled close).
  void PutSample(char tag, const StatsTask& task, uint32_t period, const std::string& task_id,
                 int64_t seconds) {
    rows_.Put(keys::StatsKey(tag, task.practice_id(), period, task.assignee(),
                             static_cast<v1::TaskCategory>(task.category()), task_id),
              keys::EncodeFixed64BE(static_cast<uint64_t>(seconds)));
  }

  absl::StatusOr<StatsTask> Task(const StoredEvent& event) {
    absl::StatusOr<std::optional<std::string>> raw = rows_.Get(keys::StatsTaskKey(event.task_id()));
    if (!raw.ok()) return raw.status();
    StatsTask task;
    if (!raw->has_value() || !task.ParseFromString(**raw)) {
      return absl::DataLossError(
          absl::StrCat("stats: no readable row for task ", event.task_id(), " at position ",
                       event.position()));
    }
    return task;
  }

  void PutTask(const std::string& task_id, const StatsTask& task) {
    rows_.Put(keys::StatsTaskKey(task_id), keys::EncodeMessage(task));
  }

  absl::Status Created(const StoredEvent& event) {
    const v1::TaskCreated& created = event.task_created();
    StatsTask task;
    task.set_practice_id(created.practice_id());
    task.set_category(created.category());
    task.set_created_micros(absl::ToUnixMicros(domain::FromProto(event.recorded_at())));
    task.set_assignee(created.assignee());
    PutTask(event.task_id(), task);
    return Mutate(task, keys::StatsPeriod(domain::FromProto(event.recorded_at())),
                  task.assignee(), [](StatsBucket& b) { b.set_created(b.created() + 1); });
  }

  absl::Status Assigned(const StoredEvent& event) {
    absl::StatusOr<StatsTask> task = Task(event);
    if (!task.ok()) return task.status();
    task->set_assignee(event.task_assigned().assignee());
    PutTask(event.task_id(), *task);
    return absl::OkStatus();
  }

  absl::Status Contacted(const StoredEvent& event) {
    absl::StatusOr<StatsTask> task = Task(event);
    if (!task.ok()) return task.status();
    const absl::Time at = domain::FromProto(event.occurred_at());
    const uint32_t period = keys::StatsPeriod(at);
    const v1::ContactOutcome outcome = event.contact_logged().outcome();
    const bool first = task->contacts().empty();
    const int64_t seconds =
        absl::ToInt64Seconds(at - absl::FromUnixMicros(task->created_micros()));
    absl::Status s = Mutate(*task, period, task->assignee(), [&](StatsBucket& b) {
      ++(*b.mutable_contacts_by_outcome())[outcome];
      if (domain::IsReached(outcome)) b.set_reached(b.reached() + 1);
    });
    if (!s.ok()) return s;
    if (first) PutSample(keys::kStatsFirstContactTag, *task, period, event.task_id(), seconds);
    if (s = Chain(*task, period, /*by_assignee=*/false); !s.ok()) return s;
    if (s = Chain(*task, period, /*by_assignee=*/true); !s.ok()) return s;
    StatsTask::Contact* contact = task->add_contacts();
    contact->set_period(period);
    contact->set_assignee(task->assignee());
    PutTask(event.task_id(), *task);
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
    absl::StatusOr<StatsTask> task = Task(event);
    if (!task.ok()) return task.status();
    const v1::TaskClosed& closed = event.task_closed();
    const absl::Time at = domain::FromProto(event.recorded_at());
    const bool scheduled =
        (closed.reason() == v1::CONTACT_OUTCOME && closed.outcome() == v1::SCHEDULED) ||
        closed.reason() == v1::APPOINTMENT_SCHEDULED;
    const int64_t seconds =
        absl::ToInt64Seconds(at - absl::FromUnixMicros(task->created_micros()));
    const uint32_t period = keys::StatsPeriod(at);
    if (scheduled) PutSample(keys::kStatsScheduledTag, *task, period, event.task_id(), seconds);
    return Mutate(*task, period, task->assignee(), [&](StatsBucket& b) {
      ++(*b.mutable_closed_by_reason())[closed.reason()];
      if (scheduled) b.set_scheduled(b.scheduled() + 1);
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
    live.WriteTo(rows);
    return absl::OkStatus();
  }

  std::unique_ptr<ProjectionFold> StartFold() const override {
    return std::make_unique<StatsFold>();
  }

  absl::Status Emit(const FoldedLog& /*folded*/, const ProjectionFold* own,
                    RowSink emit) const override {
    for (const auto& [key, value] : static_cast<const StatsFold*>(own)->rows().rows()) {
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
