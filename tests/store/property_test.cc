// Property test: random command sequences, then every audit view agrees with an
// independent fold of the log. Seeded: the seed is printed, and OUTREACH_PROPERTY_SEED replays
// one. Properties:
//   - replay == live projection (VerifyProjections, and a rebuild is byte-identical);
//   - GetTaskAsOfVersion(k) == the fold of the task's first k events, for every task and k;
//   - GetTaskAsOfTime(recorded_at of each event) == the fold of the events recorded by then;
//   - GetTaskHistory's statuses are the fold's statuses;
//   - ReadEvents from any position (with or without a task filter and a limit) is the matching
//     slice of the whole log;
//   - GetOutreachStats for random practices, date ranges (in a zone half an hour off UTC) and
//     groupings equals the same report computed plainly from the log;
//   - ListTasks with random filters (statuses, kind, patient, assignee or unassigned, practices,
//     categories, follow-up cap), paged at a random size, is exactly the tasks a plain filter
//     of every task keeps, ordered by (follow-up date, URGENT first, task id).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>
#include <random>
#include <tuple>

#include "absl/strings/numbers.h"
#include "domain/validation.h"
#include "store/expiry_scheduler.h"
#include "store/outreach_stats.h"
#include "store/keys.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/testing/store_fixture.h"

namespace outreach::store::testing {
namespace {

using ::google::protobuf::util::MessageDifferencer;

uint32_t Seed() {
  const char* env = std::getenv("OUTREACH_PROPERTY_SEED");
  uint32_t seed = 0;
  if (env != nullptr && absl::SimpleAtoi(env, &seed)) return seed;
  return std::random_device()();
}

// The stored form of a served record, for folding with the domain's Apply independently of the
// store's own fold.
storage::v1::StoredEvent ToStored(const v1::EventRecord& r) {
  storage::v1::StoredEvent e;
  e.set_schema_version(r.schema_version());
  e.set_position(r.position());
  e.set_task_id(r.task_id());
  e.set_version(r.version());
  e.set_event_id(r.event_id());
  *e.mutable_recorded_at() = r.recorded_at();
  *e.mutable_occurred_at() = r.occurred_at();
  e.set_actor(r.actor());
  e.set_request_id(r.request_id());
  if (r.has_task_created()) *e.mutable_task_created() = r.task_created();
  if (r.has_contact_logged()) *e.mutable_contact_logged() = r.contact_logged();
  if (r.has_task_closed()) *e.mutable_task_closed() = r.task_closed();
  if (r.has_task_assigned()) *e.mutable_task_assigned() = r.task_assigned();
  return e;
}

// Issue 13's fields on a create: sometimes a practice, a category, a cadence, a cap.
void AddWorkflowFields(std::mt19937& rng, domain::CreateTaskCommand& c) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint32_t>(n)); };
  if (pick(2) == 0) c.practice_id = absl::StrCat("practice-", pick(3));
  c.category = static_cast<v1::TaskCategory>(pick(8));  // 0 = unset (CUSTOM)
  c.priority = static_cast<v1::TaskPriority>(pick(3));  // 0 = unset (ROUTINE)
  if (pick(2) == 0) c.cadence_days = {1, 7, 21, 60};
  if (pick(3) == 0) c.max_attempts = 1 + pick(4);
}

domain::Command Resolve(std::mt19937& rng, absl::Time now) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint32_t>(n)); };
  domain::ResolveTasksCommand c;
  if (pick(2) == 0) c.practice_id = absl::StrCat("practice-", pick(3));
  c.patient_id = absl::StrCat("p", pick(6));
  if (pick(2) == 0) c.categories = {static_cast<v1::TaskCategory>(1 + pick(7))};
  c.reason = pick(2) == 0 ? v1::APPOINTMENT_SCHEDULED : v1::CRITERIA_CLEARED;
  c.source_ref = absl::StrCat("appt-", pick(100));
  if (pick(2) == 0) c.occurred_at = now - absl::Minutes(pick(60));
  c.meta = {"scheduler", pick(3) == 0 ? absl::StrCat("resolve-", pick(20)) : ""};
  return c;
}

domain::Command Prefer(std::mt19937& rng, absl::Time now) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint32_t>(n)); };
  domain::SetContactPreferenceCommand c;
  if (pick(2) == 0) c.practice_id = absl::StrCat("practice-", pick(3));
  c.patient_id = absl::StrCat("p", pick(6));
  c.do_not_contact = pick(2) == 0;
  if (c.do_not_contact && pick(2) == 0) {
    c.until_date = domain::FormatDate(absl::ToCivilDay(now, absl::UTCTimeZone()) + 1 + pick(3));
  }
  c.reason = pick(2) == 0 ? "asked by phone" : "";
  c.meta = {"coordinator-1", ""};
  return c;
}

domain::Command Assign(const std::string& task_id, const std::string& assignee) {
  domain::AssignTaskCommand c;
  c.task_id = task_id;
  c.assignee = assignee;
  c.meta = {"coordinator-1", ""};
  return c;
}

domain::Command Claim(const std::string& task_id, const std::string& actor) {
  domain::ClaimTaskCommand c;
  c.task_id = task_id;
  c.meta = {actor, ""};
  return c;
}

domain::Command Cancel(const std::string& task_id, bool in_error) {
  domain::CancelTaskCommand c;
  c.task_id = task_id;
  c.reason = in_error ? v1::ENTERED_IN_ERROR : v1::CANCELLED;
  c.notes = "no longer needed";
  c.meta = {"coordinator-1", ""};
  return c;
}

// A random worklist query over what RunRandomCommands makes.
ListQuery RandomQuery(std::mt19937& rng, const absl::CivilDay& today) {
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint32_t>(n)); };
  ListQuery query;
  for (v1::TaskStatus status : {v1::OPEN, v1::IN_PROGRESS, v1::CLOSED}) {
    if (pick(3) == 0) query.statuses.push_back(status);
  }
  if (pick(4) == 0) query.kind = pick(2) == 0 ? v1::MANUAL : v1::AUTOMATIC;
  if (pick(8) == 0) query.patient_id = absl::StrCat("p", pick(7));  // p0..p5, and p6: none
  const int who = pick(6);
  if (who == 0) query.assignee = absl::StrCat("nurse-", pick(3));
  if (who == 1) query.unassigned = true;
  for (int i = pick(3); i > 0; --i) {
    query.practice_ids.push_back(pick(4) == 0 ? "default" : absl::StrCat("practice-", pick(3)));
  }
  for (int i = pick(3); i > 0; --i) {
    query.categories.push_back(static_cast<v1::TaskCategory>(1 + pick(7)));
  }
  if (pick(3) == 0) query.follow_up_on_or_before = today + pick(25);
  query.page_size = 1 + pick(7);
  return query;
}

// Whether `task` belongs in `query`'s answer: the filters, applied plainly.
bool Matches(const ListQuery& query, const v1::Task& task) {
  auto in = [](const auto& set, const auto& value) {
    return set.empty() || std::find(set.begin(), set.end(), value) != set.end();
  };
  const std::vector<v1::TaskStatus> open = {v1::OPEN, v1::IN_PROGRESS};
  const bool on_or_before =
      !query.follow_up_on_or_before.has_value() ||
      (!task.follow_up_date().empty() &&
       task.follow_up_date() <= domain::FormatDate(*query.follow_up_on_or_before));
  return in(query.statuses.empty() ? open : query.statuses, task.status()) &&
         (query.kind == v1::TASK_KIND_UNSPECIFIED || task.kind() == query.kind) &&
         (query.patient_id.empty() || task.patient_id() == query.patient_id) &&
         (query.assignee.empty() || task.assignee() == query.assignee) &&
         (!query.unassigned || task.assignee().empty()) &&
         in(query.practice_ids, task.practice_id()) && in(query.categories, task.category()) &&
         on_or_before;
}

// GetOutreachStats computed plainly from the log (issue 16): each event in turn, its day in the
// query's zone, its group from the task's state at that point of the log.
class PlainStats {
 public:
  explicit PlainStats(const StatsQuery& query) : query_(query) {
    if (query.group_by == v1::GetOutreachStatsRequest::NONE) groups_[""];
  }

  void Add(const v1::EventRecord& e) {
    if (e.has_task_created()) {
      Task& task = tasks_[e.task_id()];
      task.practice = e.task_created().practice_id();
      task.category = e.task_created().category();
      task.created = domain::FromProto(e.recorded_at());
      task.assignee = e.task_created().assignee();
      if (Group* g = Find(task, domain::FromProto(e.recorded_at()))) ++g->created;
      return;
    }
    auto it = tasks_.find(e.task_id());
    if (it == tasks_.end()) return;  // a patient's stream
    Task& task = it->second;
    if (e.has_task_assigned()) task.assignee = e.task_assigned().assignee();
    if (e.has_contact_logged()) Contact(e, task);
    if (e.has_task_closed()) Close(e, task);
  }

  std::vector<v1::OutreachStats> Rows() {
    std::vector<v1::OutreachStats> rows;
    for (auto& [key, g] : groups_) {
      v1::OutreachStats row;
      row.set_key(key);
      row.set_tasks_created(g.created);
      row.set_tasks_contacted(g.contacted.size());
      uint64_t contacts = 0, closed = 0;
      for (auto& [name, n] : g.outcomes) contacts += n;
      for (auto& [name, n] : g.reasons) closed += n;
      row.set_contacts(contacts);
      row.mutable_contacts_by_outcome()->insert(g.outcomes.begin(), g.outcomes.end());
      row.set_reached(g.reached);
      row.set_closed(closed);
      row.mutable_closed_by_reason()->insert(g.reasons.begin(), g.reasons.end());
      row.set_scheduled(g.scheduled);
      auto count = [&g](const char* reason) {
        auto it = g.reasons.find(reason);
        return it == g.reasons.end() ? uint64_t{0} : it->second;
      };
      const uint64_t denominator = closed - count("DO_NOT_CONTACT") - count("ENTERED_IN_ERROR") -
                                     count("PATIENT_DATA_ERASED");
      row.set_conversion_rate(denominator == 0 ? 0 : double(g.scheduled) / double(denominator));
      row.set_median_hours_to_first_contact(Median(g.first_contact) / 3600);
      row.set_median_days_to_scheduled(Median(g.to_scheduled) / 86400);
      row.set_attempts_per_scheduled(g.scheduled == 0 ? 0 : double(contacts) / double(g.scheduled));
      rows.push_back(row);
    }
    return rows;
  }

 private:
  struct Task {
    std::string practice;
    v1::TaskCategory category = v1::TASK_CATEGORY_UNSPECIFIED;
    absl::Time created;
    std::string assignee;
    bool contacted = false;
  };
  struct Group {
    uint64_t created = 0, reached = 0, scheduled = 0;
    std::set<std::string> contacted;
    std::map<std::string, uint64_t> outcomes, reasons;
    std::vector<int64_t> first_contact, to_scheduled;
  };

  static double Median(std::vector<int64_t> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const std::size_t mid = v.size() / 2;
    if (v.size() % 2 == 1) return double(v[mid]);
    return (double(v[mid - 1]) + double(v[mid])) / 2;
  }

  // The group an event of `task` at `at` counts in, or nullptr outside the query.
  Group* Find(const Task& task, absl::Time at) {
    const absl::CivilDay day = absl::ToCivilDay(at, query_.time_zone);
    if (day < query_.from || day > query_.to) return nullptr;
    const auto& practices = query_.practice_ids;
    if (!practices.empty() &&
        std::find(practices.begin(), practices.end(), task.practice) == practices.end()) {
      return nullptr;
    }
    switch (query_.group_by) {
      case v1::GetOutreachStatsRequest::ASSIGNEE: return &groups_[task.assignee];
      case v1::GetOutreachStatsRequest::CATEGORY:
        return &groups_[v1::TaskCategory_Name(task.category)];
      case v1::GetOutreachStatsRequest::DAY: return &groups_[domain::FormatDate(day)];
      default: return &groups_[""];
    }
  }

  void Contact(const v1::EventRecord& e, Task& task) {
    const absl::Time at = domain::FromProto(e.occurred_at());
    const bool first = !task.contacted;
    task.contacted = true;
    Group* g = Find(task, at);
    if (g == nullptr) return;
    const v1::ContactOutcome outcome = e.contact_logged().outcome();
    ++g->outcomes[v1::ContactOutcome_Name(outcome)];
    if (domain::IsReached(outcome)) ++g->reached;
    g->contacted.insert(e.task_id());
    if (first) g->first_contact.push_back(absl::ToInt64Seconds(at - task.created));
  }

  void Close(const v1::EventRecord& e, const Task& task) {
    const absl::Time at = domain::FromProto(e.recorded_at());
    Group* g = Find(task, at);
    if (g == nullptr) return;
    const v1::TaskClosed& closed = e.task_closed();
    ++g->reasons[v1::CloseReason_Name(closed.reason())];
    if ((closed.reason() == v1::CONTACT_OUTCOME && closed.outcome() == v1::SCHEDULED) ||
        closed.reason() == v1::APPOINTMENT_SCHEDULED) {
      ++g->scheduled;
      g->to_scheduled.push_back(absl::ToInt64Seconds(at - task.created));
    }
  }

  const StatsQuery& query_;
  std::map<std::string, Task> tasks_;
  std::map<std::string, Group> groups_;
};

class PropertyTest : public StoreFixture {
 protected:
  // Up to `steps` random commands over a few tasks: creates (manual and automatic, with and
  // without practices, categories, cadences and caps), contacts (every outcome and channel, with
  // a follow-up date or leaving it to the cadence), log-and-close, assignment, claims, cancels,
  // expiry, clock steps that sometimes leave several commands at one instant, retries, and
  // commands that fail (closed tasks, unknown tasks, claims of another's task, bad input).
  void RunRandomCommands(std::mt19937& rng, int steps) {
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint32_t>(n)); };
    int tasks = 0;
    for (int step = 0; step < steps; ++step) {
      if (pick(3) != 0) clock_.Advance(absl::Minutes(pick(120)));
      const std::string today =
          domain::FormatDate(absl::ToCivilDay(clock_.Now(), absl::UTCTimeZone()) + pick(20));
      const std::string task_id = absl::StrCat("task-", pick(tasks + 1));
      const int action = pick(15);
      if (action < 3 || tasks == 0) {
        CreateOne(rng, absl::StrCat("task-", tasks++));
      } else if (action < 9) {
        ContactOne(rng, task_id, today);
      } else if (action == 9) {
        ASSERT_TRUE(ExpireDue(*store_, clock_.Now()).ok());
      } else if (action == 10) {
        const std::string assignees[] = {"", "nurse-0", "nurse-1", "group:front-desk"};
        (void)Run(Assign(task_id, assignees[pick(4)]));
      } else if (action == 11) {
        (void)Run(Claim(task_id, absl::StrCat("nurse-", pick(3))));
      } else if (action == 13) {
        (void)Run(Resolve(rng, clock_.Now()), "fp-resolve");
      } else if (action == 14) {
        (void)Run(Prefer(rng, clock_.Now()));
      } else if (pick(3) == 0) {
        (void)Run(Cancel(task_id, pick(2) == 0));
      }
    }
  }

  void CreateOne(std::mt19937& rng, const std::string& task_id) {
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint32_t>(n)); };
    const bool automatic = pick(3) == 0;
    domain::Command command =
        Create(task_id, absl::StrCat("nurse-", pick(3)), automatic ? v1::AUTOMATIC : v1::MANUAL,
               automatic ? std::optional<absl::Time>(clock_.Now() + absl::Hours(1 + pick(30)))
                         : std::nullopt);
    AddWorkflowFields(rng, std::get<domain::CreateTaskCommand>(command));
    std::get<domain::CreateTaskCommand>(command).patient_id = absl::StrCat("p", pick(6));
    (void)Run(std::move(command));
  }

  void ContactOne(std::mt19937& rng, const std::string& task_id, const std::string& today) {
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint32_t>(n)); };
    const std::string request_id = pick(4) == 0 ? absl::StrCat("req-", pick(50)) : "";
    const v1::ContactOutcome outcome = static_cast<v1::ContactOutcome>(1 + pick(6));
    const bool close = outcome == v1::REQUESTED_NO_CONTACT ? pick(5) != 0 : pick(4) == 0;
    domain::Command command = Contact(task_id, outcome, pick(3) == 0 ? "" : today, close,
                                      request_id);
    auto& contact = std::get<domain::LogContactCommand>(command);
    contact.channel = static_cast<v1::ContactChannel>(pick(6));
    contact.direction = static_cast<v1::ContactDirection>(pick(3));
    // Sometimes logged late: contacted_at hours or days back (before the task's other contacts).
    if (pick(4) == 0) contact.contacted_at = clock_.Now() - absl::Minutes(pick(3000));
    (void)Run(std::move(command), absl::StrCat("fp-", request_id));
  }

  // Random ListTasks queries, paged through, against a plain filter and sort of every task.
  void CheckWorklist(std::mt19937& rng, const std::vector<std::string>& task_ids) {
    std::vector<v1::Task> all;
    for (const std::string& task_id : task_ids) all.push_back(*store_->GetTask(task_id));
    auto order = [](const v1::Task& t) {
      const uint32_t day = keys::DayKeyOfDate(t.follow_up_date());
      return std::make_tuple(day, keys::UrgencyRank(t.priority()), t.task_id());
    };
    std::sort(all.begin(), all.end(),
              [&](const v1::Task& a, const v1::Task& b) { return order(a) < order(b); });
    const absl::CivilDay today = absl::ToCivilDay(clock_.Now(), absl::UTCTimeZone());
    for (int i = 0; i < 60; ++i) {
      ListQuery query = RandomQuery(rng, today);
      std::vector<std::string> want;
      for (const v1::Task& task : all) {
        if (Matches(query, task)) want.push_back(task.task_id());
      }
      std::vector<std::string> got;
      for (int pages = 0; pages <= 400; ++pages) {
        absl::StatusOr<ListPage> page = store_->ListTasks(query);
        ASSERT_TRUE(page.ok()) << page.status();
        for (const v1::Task& task : page->tasks) got.push_back(task.task_id());
        if (page->next_page_token.empty()) break;
        query.page_token = page->next_page_token;
      }
      EXPECT_EQ(got, want) << "query " << i;
    }
  }

  // One task's stream: as_of_version, history and as_of_time agree with the domain's fold.
  void CheckStream(const std::string& task_id, const std::vector<v1::EventRecord>& stream) {
    SCOPED_TRACE(task_id);
    absl::StatusOr<std::vector<HistoryEntry>> history = store_->GetTaskHistory(task_id);
    ASSERT_TRUE(history.ok()) << history.status();
    ASSERT_EQ(history->size(), stream.size());
    v1::Task fold;
    for (std::size_t k = 1; k <= stream.size(); ++k) {
      const v1::TaskStatus before = fold.status();
      ASSERT_TRUE(domain::Apply(fold, ToStored(stream[k - 1])).ok());
      // as_of_version(k) == fold of the first k events.
      absl::StatusOr<v1::Task> as_of = store_->GetTaskAsOfVersion(task_id, k);
      ASSERT_TRUE(as_of.ok()) << as_of.status();
      EXPECT_TRUE(MessageDifferencer::Equals(*as_of, fold)) << "version " << k;
      // History: the same statuses.
      EXPECT_EQ((*history)[k - 1].status_before, before);
      EXPECT_EQ((*history)[k - 1].status_after, fold.status());
      EXPECT_TRUE(MessageDifferencer::Equals((*history)[k - 1].event, stream[k - 1]));
      // as_of_time(recorded_at of event k) == the fold of every event recorded by then (events
      // after k recorded at the same instant included).
      const absl::Time at = domain::FromProto(stream[k - 1].recorded_at());
      std::size_t by_then = k;
      while (by_then < stream.size() &&
             domain::FromProto(stream[by_then].recorded_at()) <= at) {
        ++by_then;
      }
      absl::StatusOr<v1::Task> at_time = store_->GetTaskAsOfTime(task_id, at);
      ASSERT_TRUE(at_time.ok()) << at_time.status();
      EXPECT_EQ(at_time->version(), static_cast<int64_t>(by_then)) << "time of version " << k;
    }
    EXPECT_TRUE(MessageDifferencer::Equals(fold, *store_->GetTask(task_id)));
    EXPECT_EQ(store_->GetTaskAsOfVersion(task_id, stream.size() + 1).status().code(),
              absl::StatusCode::kOutOfRange);
    EXPECT_EQ(store_->GetTaskAsOfTime(task_id, domain::FromProto(stream[0].recorded_at()) -
                                                   absl::Microseconds(1))
                  .status()
                  .code(),
              absl::StatusCode::kNotFound);
  }

  // ReadEvents from any position == the slice of the whole log; with a task filter, the
  // task's events in the slice; with a limit, its prefix.
  void CheckReadEventsSlices(std::mt19937& rng, const std::vector<v1::EventRecord>& log) {
    for (uint64_t from = 0; from <= log.size() + 1; ++from) {
      const std::size_t skip = from == 0 ? 0 : std::min<std::size_t>(from - 1, log.size());
      const std::vector<v1::EventRecord> tail = Events(from);
      ASSERT_EQ(tail.size(), log.size() - skip) << "from " << from;
      for (std::size_t i = 0; i < tail.size(); ++i) {
        ASSERT_TRUE(MessageDifferencer::Equals(tail[i], log[skip + i])) << "from " << from;
      }
      const uint64_t limit = 1 + rng() % 10;
      const std::vector<v1::EventRecord> page = Events(from, "", limit);
      ASSERT_EQ(page.size(), std::min<std::size_t>(limit, tail.size()));
      if (from % 7 == 0 && !log.empty()) {
        const std::string& task_id = log[rng() % log.size()].task_id();
        std::vector<uint64_t> want;
        for (std::size_t i = skip; i < log.size(); ++i) {
          if (log[i].task_id() == task_id) want.push_back(log[i].position());
        }
        std::vector<uint64_t> got;
        for (const v1::EventRecord& e : Events(from, task_id)) got.push_back(e.position());
        EXPECT_EQ(got, want) << "from " << from << " task " << task_id;
      }
    }
  }
};

// What the random mix covered of issue 13's events, printed so that a run shows it.
std::map<std::string, int> Covered(const std::vector<v1::EventRecord>& log) {
  std::map<std::string, int> covered;
  for (const v1::EventRecord& e : log) {
    if (e.has_task_assigned()) ++covered["TaskAssigned"];
    if (e.has_contact_preference_set()) ++covered["ContactPreferenceSet"];
    if (e.has_task_closed()) ++covered[v1::CloseReason_Name(e.task_closed().reason())];
    if (e.has_contact_logged() && !e.contact_logged().close_task() &&
        e.contact_logged().follow_up_date().empty()) {
      ++covered["contact without a follow-up (max attempts)"];
    }
  }
  for (const auto& [what, count] : covered) std::printf("  %s: %d\n", what.c_str(), count);
  return covered;
}

TEST_F(PropertyTest, EveryAuditViewAgreesWithAnIndependentFoldOfTheLog) {
  const uint32_t seed = Seed();
  std::printf("PropertyTest seed: %u (OUTREACH_PROPERTY_SEED=%u replays it)\n", seed, seed);
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  std::mt19937 rng(seed);
  RunRandomCommands(rng, 400);
  const std::vector<v1::EventRecord> log = Events();
  ASSERT_EQ(log.size(), store_->HeadPosition());
  ASSERT_GT(log.size(), 100u);  // dedupe and do-not-contact refuse some creates: 143-400 seen
  std::map<std::string, int> covered = Covered(log);
  EXPECT_GT(covered["TaskAssigned"], 0);
  EXPECT_GT(covered["ContactPreferenceSet"], 0);
  EXPECT_GT(covered["APPOINTMENT_SCHEDULED"] + covered["CRITERIA_CLEARED"], 0);

  // Replay == live projection.
  EXPECT_TRUE(store_->VerifyProjections().ok());
  absl::StatusOr<std::string> live = store_->DumpProjections();
  ASSERT_TRUE(live.ok());
  ASSERT_TRUE(store_->RebuildProjections().ok());
  EXPECT_EQ(*store_->DumpProjections(), *live);
  EXPECT_TRUE(store_->VerifyLog().ok);

  std::map<std::string, std::vector<v1::EventRecord>> streams;
  for (const v1::EventRecord& e : log) {
    if (!domain::IsPatientStream(e.task_id())) streams[e.task_id()].push_back(e);
  }
  for (const auto& [task_id, stream] : streams) {
    ASSERT_NO_FATAL_FAILURE(CheckStream(task_id, stream));
  }
  ASSERT_NO_FATAL_FAILURE(CheckReadEventsSlices(rng, log));
  std::vector<std::string> task_ids;
  for (const auto& [task_id, stream] : streams) task_ids.push_back(task_id);
  ASSERT_NO_FATAL_FAILURE(CheckWorklist(rng, task_ids));

  // The same holds after a restart (the projections and the log survive as they are).
  ASSERT_TRUE(Reopen().ok());
  EXPECT_EQ(*store_->DumpProjections(), *live);
  EXPECT_EQ(Events().size(), log.size());
}

TEST_F(PropertyTest, OutreachStatsEqualAPlainComputationFromTheLog) {
  const uint32_t seed = Seed();
  std::printf("PropertyTest seed: %u (OUTREACH_PROPERTY_SEED=%u replays it)\n", seed, seed);
  SCOPED_TRACE(absl::StrCat("seed ", seed));
  std::mt19937 rng(seed);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint32_t>(n)); };
  absl::TimeZone zone;
  ASSERT_TRUE(absl::LoadTimeZone("Asia/Kolkata", &zone));  // midnight at 18:30 UTC
  store_.reset();
  StoreOptions options = Options();
  options.time_zone = zone;
  store_ = *EventStore::Open(dir_, options);
  const absl::CivilDay first_day = absl::ToCivilDay(clock_.Now(), zone) - 3;
  RunRandomCommands(rng, 400);
  const std::vector<v1::EventRecord> log = Events();
  ASSERT_GT(log.size(), 100u);
  std::map<std::string, int> covered = Covered(log);
  EXPECT_GT(covered["TaskAssigned"], 0);
  EXPECT_GT(covered["EXPIRED"] + covered["CANCELLED"] + covered["DO_NOT_CONTACT"], 0);
  const absl::CivilDay last_day = absl::ToCivilDay(clock_.Now(), zone) + 1;
  MessageDifferencer differ;
  differ.set_float_comparison(MessageDifferencer::APPROXIMATE);
  uint64_t contacted = 0, scheduled = 0, medians = 0;  // what the comparisons covered
  for (int i = 0; i < 200; ++i) {
    StatsQuery query;
    query.time_zone = zone;
    query.from = first_day + pick(static_cast<int>(last_day - first_day));
    query.to = std::min(last_day, query.from + pick(8));
    query.group_by = static_cast<v1::GetOutreachStatsRequest::GroupBy>(pick(4));
    const int practice = pick(5);
    if (practice == 1) query.practice_ids = {"default"};
    if (practice > 1) query.practice_ids = {absl::StrCat("practice-", practice - 2)};
    PlainStats plain(query);
    for (const v1::EventRecord& e : log) plain.Add(e);
    const std::vector<v1::OutreachStats> want = plain.Rows();
    absl::StatusOr<std::vector<v1::OutreachStats>> got = store_->GetOutreachStats(query);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->size(), want.size()) << "query " << i;
    for (std::size_t r = 0; r < want.size(); ++r) {
      contacted += want[r].tasks_contacted();
      scheduled += want[r].scheduled();
      medians += want[r].median_hours_to_first_contact() != 0 ? 1 : 0;
      EXPECT_TRUE(differ.Compare((*got)[r], want[r]))
          << "query " << i << " from " << query.from << " to " << query.to << " group "
          << query.group_by << "\ngot  " << (*got)[r].ShortDebugString() << "\nwant "
          << want[r].ShortDebugString();
    }
  }
  EXPECT_GT(contacted, 0u);
  EXPECT_GT(scheduled, 0u);
  EXPECT_GT(medians, 0u);
  // The rows rebuild byte for byte (a fold of the log, like every projection).
  absl::StatusOr<std::string> live = store_->DumpProjections();
  ASSERT_TRUE(live.ok());
  ASSERT_TRUE(store_->RebuildProjections().ok());
  EXPECT_EQ(*store_->DumpProjections(), *live);
}

}  // namespace
}  // namespace outreach::store::testing
