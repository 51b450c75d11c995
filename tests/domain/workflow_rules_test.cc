// Issue 13's rules for one task's stream (practices, categories, cadence, attempts,
// do-not-contact, assignment, cancelling; domain/task_rules.h), one table row per rule: given
// events, when a command, then the events decided (and the state they fold to) or the exact error.
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "domain/task_rules.h"
#include "domain/validation.h"
#include "gtest/gtest.h"

// Its own namespace: the unity build compiles it with task_rules_test.cc.
namespace outreach::domain::workflow_test {
namespace {

using storage::v1::StoredEvent;

// Today is 2026-03-10 (UTC); the task was created two days ago.
const absl::Time kNow =
    absl::FromCivil(absl::CivilSecond(2026, 3, 10, 15, 0, 0), absl::UTCTimeZone());
const absl::Time kCreated = kNow - absl::Hours(48);

// ---- Given: events of the stream "t1" (numbered when folded) ---------------------------------

StoredEvent At(StoredEvent e, absl::Time at, const std::string& actor = "coordinator-1") {
  e.set_task_id("t1");
  *e.mutable_recorded_at() = ToProto(at);
  *e.mutable_occurred_at() = ToProto(at);
  e.set_actor(actor);
  return e;
}

// A manual task as this build creates it; `edit` adds the issue 13 fields a row needs.
StoredEvent Created(const std::function<void(v1::TaskCreated&)>& edit = nullptr,
                    absl::Time at = kCreated) {
  StoredEvent e;
  v1::TaskCreated* p = e.mutable_task_created();
  p->set_patient_id("p1");
  p->set_kind(v1::MANUAL);
  p->set_title("Recall");
  p->set_practice_id("default");
  p->set_category(v1::CUSTOM);
  p->set_priority(v1::ROUTINE);
  if (edit) edit(*p);
  return At(e, at);
}
// With a cadence counted from the creation day (2026-03-08).
StoredEvent CreatedWithCadence(std::vector<int32_t> days, int32_t max_attempts = 0) {
  return Created([days, max_attempts](v1::TaskCreated& p) {
    for (int32_t day : days) p.add_cadence_days(day);
    p.set_cadence_start_date("2026-03-08");
    p.set_follow_up_date(FormatDate(absl::CivilDay(2026, 3, 8) + days[0]));
    p.set_max_attempts(max_attempts);
  });
}
StoredEvent CreatedWithCap(int32_t max_attempts) {
  return Created([max_attempts](v1::TaskCreated& p) { p.set_max_attempts(max_attempts); });
}
StoredEvent Contacted(v1::ContactOutcome outcome, absl::Time at = kCreated + absl::Hours(1)) {
  StoredEvent e;
  e.mutable_contact_logged()->set_outcome(outcome);
  e.mutable_contact_logged()->set_follow_up_date("2026-03-12");
  e.mutable_contact_logged()->set_channel(v1::PHONE);
  e.mutable_contact_logged()->set_direction(v1::OUTBOUND);
  return At(e, at);
}
StoredEvent Closed(v1::CloseReason reason) {
  StoredEvent e;
  e.mutable_task_closed()->set_reason(reason);
  return At(e, kCreated + absl::Hours(2));
}
StoredEvent Assigned(const std::string& to, const std::string& from = "") {
  StoredEvent e;
  e.mutable_task_assigned()->set_assignee(to);
  e.mutable_task_assigned()->set_previous_assignee(from);
  return At(e, kCreated + absl::Hours(1));
}

// ---- When: commands on "t1" --------------------------------------------------------------------

template <class C, class Edit>
C With(C c, Edit edit) {
  edit(c);
  return c;
}

CreateTaskCommand NewTask() {
  CreateTaskCommand c;
  c.task_id = "t1";
  c.patient_id = "p1";
  c.kind = v1::MANUAL;
  c.title = "Recall";
  c.meta = {"care-gap-engine", ""};
  return c;
}
LogContactCommand Log(v1::ContactOutcome outcome, const std::string& follow_up = "") {
  LogContactCommand c;
  c.task_id = "t1";
  c.outcome = outcome;
  c.notes = "called";
  c.follow_up_date = follow_up;
  c.meta = {"coordinator-1", ""};
  return c;
}
LogContactCommand LogAndClose(v1::ContactOutcome outcome) {
  return With(Log(outcome), [](LogContactCommand& c) { c.close_task = true; });
}
AssignTaskCommand Assign(const std::string& assignee) {
  AssignTaskCommand c;
  c.task_id = "t1";
  c.assignee = assignee;
  c.meta = {"coordinator-1", ""};
  return c;
}
ClaimTaskCommand Claim(const std::string& actor, const std::string& on_behalf_of = "") {
  ClaimTaskCommand c;
  c.task_id = "t1";
  c.meta = {actor, "", on_behalf_of};
  return c;
}
CancelTaskCommand Cancel(v1::CloseReason reason, const std::string& notes = "duplicate") {
  CancelTaskCommand c;
  c.task_id = "t1";
  c.reason = reason;
  c.notes = notes;
  c.meta = {"coordinator-1", ""};
  return c;
}

// ---- Then ---------------------------------------------------------------------------------------

using Check = std::function<void(const v1::Task& after, const std::vector<NewEvent>& events)>;

struct Then {
  absl::StatusCode code = absl::StatusCode::kOk;
  std::string field;  // for INVALID_ARGUMENT: the message starts with "<field>: "
  std::vector<StoredEvent::PayloadCase> events;  // for OK: the decided events, in order
  Check check;                                   // for OK: the state they fold to
};
Then Appends(std::vector<StoredEvent::PayloadCase> events, Check check = nullptr) {
  return Then{absl::StatusCode::kOk, "", std::move(events), std::move(check)};
}
Then AppendsNothing() { return Then{}; }
Then Invalid(const std::string& field) {
  return Then{absl::StatusCode::kInvalidArgument, field, {}, nullptr};
}
Then Fails(absl::StatusCode code) { return Then{code, "", {}, nullptr}; }
// The task's follow-up date after the command.
Check FollowUpIs(std::string date) {
  return [date](const v1::Task& t, const std::vector<NewEvent>&) {
    EXPECT_EQ(t.follow_up_date(), date);
  };
}

constexpr StoredEvent::PayloadCase kCreatedCase = StoredEvent::kTaskCreated;
constexpr StoredEvent::PayloadCase kContact = StoredEvent::kContactLogged;
constexpr StoredEvent::PayloadCase kClose = StoredEvent::kTaskClosed;
constexpr StoredEvent::PayloadCase kAssign = StoredEvent::kTaskAssigned;

struct Rule {
  std::string name;  // the rule, as the test's name
  std::vector<StoredEvent> given;
  Command when;
  Then then;
  absl::Time now = kNow;
  absl::TimeZone zone = absl::UTCTimeZone();
};
void PrintTo(const Rule& rule, std::ostream* os) { *os << rule.name; }

// The fold of `events` from `state`, stamped as the store would.
v1::Task Fold(v1::Task state, const std::vector<StoredEvent>& events, absl::Time at) {
  for (const StoredEvent& given : events) {
    StoredEvent e = given;
    e.set_version(state.version() + 1);
    e.set_position(static_cast<uint64_t>(e.version()));
    if (!e.has_recorded_at()) *e.mutable_recorded_at() = ToProto(at);
    absl::Status s = Apply(state, e);
    EXPECT_TRUE(s.ok()) << s;
  }
  return state;
}

class WorkflowRulesTest : public ::testing::TestWithParam<Rule> {};

TEST_P(WorkflowRulesTest, Holds) {
  const Rule& rule = GetParam();
  std::optional<v1::Task> state;
  if (!rule.given.empty()) state = Fold(v1::Task(), rule.given, kCreated);
  const TaskStates states = {{"t1", state.has_value() ? &*state : nullptr}};
  auto decided = Decide(states, rule.when, DecideContext{rule.now, rule.zone});
  ASSERT_EQ(decided.status().code(), rule.then.code) << decided.status();
  if (rule.then.code == absl::StatusCode::kInvalidArgument) {
    EXPECT_EQ(decided.status().message().rfind(rule.then.field + ": ", 0), 0u)
        << "should name " << rule.then.field << ": " << decided.status();
  }
  if (!decided.ok()) return;
  std::vector<StoredEvent::PayloadCase> cases;
  std::vector<StoredEvent> events;
  for (const NewEvent& e : *decided) {
    cases.push_back(e.event.payload_case());
    if (IsPatientStream(e.event.task_id())) continue;  // the patient's own stream
    events.push_back(e.event);
    EXPECT_EQ(e.event.task_id(), "t1");
  }
  EXPECT_EQ(cases, rule.then.events);
  const v1::Task after = Fold(state.value_or(v1::Task()), events, rule.now);
  if (rule.then.check) rule.then.check(after, *decided);
}

// The payload of the i-th decided event.
const StoredEvent& EventAt(const std::vector<NewEvent>& events, std::size_t i) {
  return events.at(i).event;
}

// ---- The rules ----------------------------------------------------------------------------------

std::vector<Rule> CreateRules() {
  return {
      {"CreateWithoutPracticeIsInTheDefaultPracticeAsCustomRoutine", {}, NewTask(),
       Appends({kCreatedCase},
               [](const v1::Task& t, const auto& e) {
                 EXPECT_EQ(t.practice_id(), "default");
                 EXPECT_EQ(t.category(), v1::CUSTOM);
                 EXPECT_EQ(t.priority(), v1::ROUTINE);
                 EXPECT_EQ(EventAt(e, 0).task_created().practice_id(), "default");
                 EXPECT_EQ(t.cadence_start_date(), "");
                 EXPECT_EQ(t.follow_up_date(), "");
               })},
      {"CreateKeepsPracticeCategoryRuleAndPriority", {},
       With(NewTask(),
            [](CreateTaskCommand& c) {
              c.practice_id = "north-clinic";
              c.category = v1::RECALL_OVERDUE;
              c.rule_id = "recall.6mo";
              c.priority = v1::URGENT;
              c.max_attempts = 4;
            }),
       Appends({kCreatedCase},
               [](const v1::Task& t, const auto&) {
                 EXPECT_EQ(t.practice_id(), "north-clinic");
                 EXPECT_EQ(t.category(), v1::RECALL_OVERDUE);
                 EXPECT_EQ(t.rule_id(), "recall.6mo");
                 EXPECT_EQ(t.priority(), v1::URGENT);
                 EXPECT_EQ(t.max_attempts(), 4);
                 EXPECT_EQ(t.attempt_count(), 0);
               })},
      {"PracticeIdFollowsTheIdRules", {},
       With(NewTask(), [](CreateTaskCommand& c) { c.practice_id = "north clinic"; }),
       Invalid("practice_id")},
      {"RuleIdFollowsTheIdRules", {},
       With(NewTask(), [](CreateTaskCommand& c) { c.rule_id = std::string(65, 'r'); }),
       Invalid("rule_id")},
      {"UnknownCategoryIsInvalid", {},
       With(NewTask(),
            [](CreateTaskCommand& c) { c.category = static_cast<v1::TaskCategory>(42); }),
       Invalid("category")},
      {"UnknownPriorityIsInvalid", {},
       With(NewTask(), [](CreateTaskCommand& c) { c.priority = static_cast<v1::TaskPriority>(9); }),
       Invalid("priority")},
  };
}

std::vector<Rule> CreateCadenceRules() {
  return {
      {"CadenceMustBeStrictlyIncreasing", {},
       With(NewTask(), [](CreateTaskCommand& c) { c.cadence_days = {1, 7, 7}; }),
       Invalid("cadence_days")},
      {"CadenceDaysStartAtOne", {},
       With(NewTask(), [](CreateTaskCommand& c) { c.cadence_days = {0, 7}; }),
       Invalid("cadence_days")},
      {"CadenceDaysEndAt365", {},
       With(NewTask(), [](CreateTaskCommand& c) { c.cadence_days = {1, 366}; }),
       Invalid("cadence_days")},
      {"CadenceHasAtMostTwelveSteps", {},
       With(NewTask(),
            [](CreateTaskCommand& c) {
              c.cadence_days = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13};
            }),
       Invalid("cadence_days")},
      {"CadenceOfTwelveStepsUpTo365IsAccepted", {},
       With(NewTask(),
            [](CreateTaskCommand& c) {
              c.cadence_days = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 365};
            }),
       Appends({kCreatedCase},
               [](const v1::Task& t, const auto&) { EXPECT_EQ(t.cadence_days_size(), 12); })},
      {"MaxAttemptsIsNotNegative", {},
       With(NewTask(), [](CreateTaskCommand& c) { c.max_attempts = -1; }), Invalid("max_attempts")},
      {"MaxAttemptsIsAtMostFifty", {},
       With(NewTask(), [](CreateTaskCommand& c) { c.max_attempts = 51; }), Invalid("max_attempts")},
      {"CadenceWithoutFollowUpStartsAtCreationDatePlusFirstStep", {},
       With(NewTask(), [](CreateTaskCommand& c) { c.cadence_days = {1, 7, 21, 60}; }),
       Appends({kCreatedCase},
               [](const v1::Task& t, const auto& e) {
                 EXPECT_EQ(t.cadence_start_date(), "2026-03-10");
                 EXPECT_EQ(t.follow_up_date(), "2026-03-11");
                 EXPECT_EQ(EventAt(e, 0).task_created().follow_up_date(), "2026-03-11");
                 EXPECT_EQ(t.status(), v1::OPEN);
               })},
      {"CadenceCreationDateIsTakenInTheTimeZone", {},
       With(NewTask(), [](CreateTaskCommand& c) { c.cadence_days = {1}; }),
       Appends({kCreatedCase},
               [](const v1::Task& t, const auto&) {
                 EXPECT_EQ(t.cadence_start_date(), "2026-03-09");  // 21:00 the day before
                 EXPECT_EQ(t.follow_up_date(), "2026-03-10");
               }),
       absl::FromCivil(absl::CivilSecond(2026, 3, 10, 2, 0, 0), absl::UTCTimeZone()),
       absl::FixedTimeZone(-5 * 3600)},
      {"GivenFirstFollowUpWinsOverTheCadence", {},
       With(NewTask(),
            [](CreateTaskCommand& c) {
              c.cadence_days = {1, 7};
              c.follow_up_date = "2026-03-20";
            }),
       Appends({kCreatedCase},
               [](const v1::Task& t, const auto&) {
                 EXPECT_EQ(t.follow_up_date(), "2026-03-20");
                 EXPECT_EQ(t.cadence_start_date(), "2026-03-10");
               })},
  };
}

std::vector<Rule> AttemptRules() {
  return {
      {"EveryContactIsAnAttemptAndWrongNumberIsNotReached", {Created()},
       Log(v1::WRONG_NUMBER, "2026-03-12"),
       Appends({kContact},
               [](const v1::Task& t, const auto&) {
                 EXPECT_EQ(t.attempt_count(), 1);
                 EXPECT_EQ(t.reached_count(), 0);
                 EXPECT_EQ(t.last_outcome(), v1::WRONG_NUMBER);
                 EXPECT_EQ(FromProto(t.last_contacted_at()), kNow);
               })},
      {"NoAnswerAndLeftMessageAreNotReached", {Created(), Contacted(v1::NO_ANSWER)},
       Log(v1::LEFT_MESSAGE, "2026-03-12"),
       Appends({kContact},
               [](const v1::Task& t, const auto&) {
                 EXPECT_EQ(t.attempt_count(), 2);
                 EXPECT_EQ(t.reached_count(), 0);
               })},
      {"DidNotScheduleIsReached", {Created()}, Log(v1::DID_NOT_SCHEDULE, "2026-03-12"),
       Appends({kContact},
               [](const v1::Task& t, const auto&) { EXPECT_EQ(t.reached_count(), 1); })},
      {"ScheduledIsReached", {Created()}, Log(v1::SCHEDULED, "2026-03-12"),
       Appends({kContact},
               [](const v1::Task& t, const auto&) { EXPECT_EQ(t.reached_count(), 1); })},
      {"LastOutcomeIsTheLatestContactsAndABackdatedOneDoesNotMoveIt",
       {Created(), Contacted(v1::NO_ANSWER, kCreated + absl::Hours(2))},
       With(Log(v1::LEFT_MESSAGE, "2026-03-12"),
            [](LogContactCommand& c) { c.contacted_at = kCreated + absl::Hours(1); }),
       Appends({kContact},
               [](const v1::Task& t, const auto&) {
                 EXPECT_EQ(t.attempt_count(), 2);
                 EXPECT_EQ(t.last_outcome(), v1::NO_ANSWER);
                 EXPECT_EQ(FromProto(t.last_contacted_at()), kCreated + absl::Hours(2));
               })},
      {"ChannelAndDirectionDefaultToPhoneOutbound", {Created()}, Log(v1::NO_ANSWER, "2026-03-12"),
       Appends({kContact},
               [](const v1::Task& t, const auto& e) {
                 EXPECT_EQ(EventAt(e, 0).contact_logged().channel(), v1::PHONE);
                 EXPECT_EQ(EventAt(e, 0).contact_logged().direction(), v1::OUTBOUND);
                 EXPECT_EQ(t.contacts(0).channel(), v1::PHONE);
                 EXPECT_EQ(t.contacts(0).direction(), v1::OUTBOUND);
               })},
      {"ChannelAndDirectionAreKept", {Created()},
       With(Log(v1::DID_NOT_SCHEDULE, "2026-03-12"),
            [](LogContactCommand& c) {
              c.channel = v1::SMS;
              c.direction = v1::INBOUND;
            }),
       Appends({kContact},
               [](const v1::Task& t, const auto&) {
                 EXPECT_EQ(t.contacts(0).channel(), v1::SMS);
                 EXPECT_EQ(t.contacts(0).direction(), v1::INBOUND);
               })},
      {"UnknownChannelIsInvalid", {Created()},
       With(Log(v1::NO_ANSWER, "2026-03-12"),
            [](LogContactCommand& c) { c.channel = static_cast<v1::ContactChannel>(99); }),
       Invalid("channel")},
      {"UnknownDirectionIsInvalid", {Created()},
       With(Log(v1::NO_ANSWER, "2026-03-12"),
            [](LogContactCommand& c) { c.direction = static_cast<v1::ContactDirection>(3); }),
       Invalid("direction")},
  };
}

std::vector<Rule> CadenceRules() {
  return {
      {"CadenceSetsTheFollowUpOfTheFirstContact", {CreatedWithCadence({1, 7, 21, 60})},
       Log(v1::NO_ANSWER),
       Appends({kContact},
               [](const v1::Task& t, const auto& e) {
                 EXPECT_EQ(EventAt(e, 0).contact_logged().follow_up_date(), "2026-03-15");
                 EXPECT_EQ(t.follow_up_date(), "2026-03-15");
                 EXPECT_EQ(t.status(), v1::IN_PROGRESS);
               })},
      {"CadenceSetsTheFollowUpOfTheKthContact",
       {CreatedWithCadence({1, 7, 21, 60}), Contacted(v1::NO_ANSWER)}, Log(v1::LEFT_MESSAGE),
       Appends({kContact}, FollowUpIs("2026-03-29"))},
      {"CadenceStepNotAfterTheContactGivesTheDayAfterIt", {CreatedWithCadence({1, 2})},
       Log(v1::NO_ANSWER),
       Appends({kContact}, FollowUpIs("2026-03-11"))},
      {"CadenceFollowUpIsNeverBeforeToday",
       {Created(
           [](v1::TaskCreated& p) {
             p.add_cadence_days(1);
             p.add_cadence_days(2);
             p.set_cadence_start_date("2026-03-01");
           },
           kNow - absl::Hours(24 * 9))},
       With(Log(v1::NO_ANSWER),
            [](LogContactCommand& c) { c.contacted_at = kNow - absl::Hours(24 * 5); }),
       Appends({kContact}, FollowUpIs("2026-03-10"))},
      {"PastTheCadenceEndAFollowUpDateIsRequired",
       {CreatedWithCadence({1}), Contacted(v1::NO_ANSWER)}, Log(v1::NO_ANSWER),
       Invalid("follow_up_date")},
      {"AGivenFollowUpDateWinsOverTheCadence", {CreatedWithCadence({1, 7})},
       Log(v1::NO_ANSWER, "2026-04-01"),
       Appends({kContact}, FollowUpIs("2026-04-01"))},
      {"WithoutCadenceAFollowUpDateIsRequired", {Created()}, Log(v1::NO_ANSWER),
       Invalid("follow_up_date")},
      {"AGivenFollowUpDateIsCheckedWithACadence", {CreatedWithCadence({1, 7})},
       Log(v1::NO_ANSWER, "2026-03-09"), Invalid("follow_up_date")},
  };
}

std::vector<Rule> MaxAttemptRules() {
  return {
      {"ContactReachingMaxAttemptsClosesTheTaskWithoutAFollowUp",
       {CreatedWithCap(2), Contacted(v1::NO_ANSWER)}, Log(v1::LEFT_MESSAGE),
       Appends({kContact, kClose},
               [](const v1::Task& t, const auto& e) {
                 EXPECT_FALSE(EventAt(e, 0).contact_logged().close_task());
                 EXPECT_EQ(EventAt(e, 1).task_closed().reason(), v1::MAX_ATTEMPTS);
                 EXPECT_EQ(t.status(), v1::CLOSED);
                 EXPECT_EQ(t.close_reason(), v1::MAX_ATTEMPTS);
                 EXPECT_EQ(t.closing_outcome(), v1::LEFT_MESSAGE);
                 EXPECT_EQ(t.attempt_count(), 2);
                 EXPECT_EQ(t.follow_up_date(), "");
                 EXPECT_EQ(t.closed_by(), "coordinator-1");
               })},
      {"ContactReachingMaxAttemptsKeepsAGivenDateOnTheContact", {CreatedWithCap(1)},
       Log(v1::NO_ANSWER, "2026-03-20"),
       Appends({kContact, kClose},
               [](const v1::Task& t, const auto&) {
                 EXPECT_EQ(t.contacts(0).follow_up_date(), "2026-03-20");
                 EXPECT_EQ(t.follow_up_date(), "");
               })},
      {"ContactReachingMaxAttemptsStillChecksAGivenDate", {CreatedWithCap(1)},
       Log(v1::NO_ANSWER, "2026-03-01"), Invalid("follow_up_date")},
      {"ScheduledAtMaxAttemptsDoesNotClose", {CreatedWithCap(1)},
       Log(v1::SCHEDULED, "2026-03-20"),
       Appends({kContact},
               [](const v1::Task& t, const auto&) {
                 EXPECT_EQ(t.status(), v1::IN_PROGRESS);
                 EXPECT_EQ(t.attempt_count(), 1);
               })},
      {"ScheduledAtMaxAttemptsNeedsAFollowUpDate", {CreatedWithCap(1)}, Log(v1::SCHEDULED),
       Invalid("follow_up_date")},
      {"ContactPastMaxAttemptsCloses", {CreatedWithCap(1), Contacted(v1::SCHEDULED)},
       Log(v1::NO_ANSWER),
       Appends({kContact, kClose},
               [](const v1::Task& t, const auto&) {
                 EXPECT_EQ(t.close_reason(), v1::MAX_ATTEMPTS);
                 EXPECT_EQ(t.attempt_count(), 2);
               })},
      {"LogAndCloseAtMaxAttemptsIsAContactOutcomeClose", {CreatedWithCap(1)},
       LogAndClose(v1::DID_NOT_SCHEDULE),
       Appends({kContact, kClose},
               [](const v1::Task& t, const auto&) {
                 EXPECT_EQ(t.close_reason(), v1::CONTACT_OUTCOME);
                 EXPECT_EQ(t.closing_outcome(), v1::DID_NOT_SCHEDULE);
               })},
      {"NoCapNeverClosesByAttempts", {Created(), Contacted(v1::NO_ANSWER)},
       Log(v1::NO_ANSWER, "2026-03-20"), Appends({kContact})},
      {"RequestedNoContactMustBeLoggedWithClose", {Created()},
       Log(v1::REQUESTED_NO_CONTACT, "2026-03-20"), Invalid("close_task")},
      {"RequestedNoContactClosesWithDoNotContactAndSetsThePatientsDoNotContact", {Created()},
       LogAndClose(v1::REQUESTED_NO_CONTACT),
       Appends({kContact, kClose, StoredEvent::kContactPreferenceSet},
               [](const v1::Task& t, const auto& e) {
                 EXPECT_TRUE(EventAt(e, 0).contact_logged().close_task());
                 EXPECT_EQ(EventAt(e, 1).task_closed().reason(), v1::DO_NOT_CONTACT);
                 EXPECT_EQ(e[2].event.task_id(), "system:patient/default/p1");
                 EXPECT_TRUE(EventAt(e, 2).contact_preference_set().do_not_contact());
                 EXPECT_EQ(t.close_reason(), v1::DO_NOT_CONTACT);
                 EXPECT_EQ(t.closing_outcome(), v1::REQUESTED_NO_CONTACT);
                 EXPECT_EQ(t.reached_count(), 1);
               })},
  };
}

std::vector<Rule> AssignmentRules() {
  return {
      {"AssignAppendsTaskAssignedWithThePreviousAssignee", {Created(), Assigned("nurse-1")},
       Assign("nurse-2"),
       Appends({kAssign},
               [](const v1::Task& t, const auto& e) {
                 EXPECT_EQ(EventAt(e, 0).task_assigned().assignee(), "nurse-2");
                 EXPECT_EQ(EventAt(e, 0).task_assigned().previous_assignee(), "nurse-1");
                 EXPECT_EQ(t.assignee(), "nurse-2");
                 EXPECT_EQ(t.status(), v1::OPEN);
               })},
      {"AssignToAGroup", {Created()}, Assign("group:front-desk"),
       Appends({kAssign}, [](const v1::Task& t, const auto&) {
         EXPECT_EQ(t.assignee(), "group:front-desk");
       })},
      {"AssignEmptyUnassigns", {Created(), Assigned("nurse-1")}, Assign(""),
       Appends({kAssign}, [](const v1::Task& t, const auto&) { EXPECT_EQ(t.assignee(), ""); })},
      {"AssignToTheSameAssigneeAppendsNothing", {Created(), Assigned("nurse-1")},
       Assign("nurse-1"), AppendsNothing()},
      {"AssignOnAClosedTaskIsFailedPrecondition", {Created(), Closed(v1::CANCELLED)},
       Assign("nurse-1"), Fails(absl::StatusCode::kFailedPrecondition)},
      {"AssignOnAnExpiredTaskIsFailedPrecondition",
       {Created([](v1::TaskCreated& p) {
         p.set_kind(v1::AUTOMATIC);
         *p.mutable_expires_at() = ToProto(kNow - absl::Seconds(1));
       })},
       Assign("nurse-1"), Fails(absl::StatusCode::kFailedPrecondition)},
      {"AssignOnAMissingTaskIsNotFound", {}, Assign("nurse-1"),
       Fails(absl::StatusCode::kNotFound)},
      {"AssignWithAStaleVersionIsAborted", {Created(), Assigned("nurse-1")},
       With(Assign("nurse-2"), [](AssignTaskCommand& c) { c.expected_version = 1; }),
       Fails(absl::StatusCode::kAborted)},
      {"AssignWithANegativeVersionIsInvalid", {Created()},
       With(Assign("nurse-2"), [](AssignTaskCommand& c) { c.expected_version = -1; }),
       Invalid("expected_version")},
      {"AssigneeFollowsTheIdRules", {Created()}, Assign("nurse kim"), Invalid("assignee")},
      {"AGroupAssigneeNamesAGroup", {Created()}, Assign("group:"), Invalid("assignee")},
      {"AssigneeIsNeverTheServicesOwnActor", {Created()}, Assign("system:expiry"),
       Invalid("assignee")},
      {"ClaimAnUnassignedTaskAssignsItToTheCaller", {Created()}, Claim("nurse-1"),
       Appends({kAssign}, [](const v1::Task& t, const auto& e) {
         EXPECT_EQ(t.assignee(), "nurse-1");
         EXPECT_EQ(EventAt(e, 0).actor(), "nurse-1");
       })},
      {"ClaimAGroupsTaskAssignsItToTheCaller", {Created(), Assigned("group:front-desk")},
       Claim("nurse-1"),
       Appends({kAssign}, [](const v1::Task& t, const auto& e) {
         EXPECT_EQ(t.assignee(), "nurse-1");
         EXPECT_EQ(EventAt(e, 0).task_assigned().previous_assignee(), "group:front-desk");
       })},
      {"ClaimForThePersonAServiceActsFor", {Created()}, Claim("call-center", "nurse-2"),
       Appends({kAssign}, [](const v1::Task& t, const auto&) {
         EXPECT_EQ(t.assignee(), "nurse-2");
       })},
      {"ClaimAnotherUsersTaskIsFailedPrecondition", {Created(), Assigned("nurse-2")},
       Claim("nurse-1"), Fails(absl::StatusCode::kFailedPrecondition)},
      {"ClaimOwnTaskAppendsNothing", {Created(), Assigned("nurse-1")}, Claim("nurse-1"),
       AppendsNothing()},
      {"ClaimOnAClosedTaskIsFailedPrecondition", {Created(), Closed(v1::EXPIRED)},
       Claim("nurse-1"), Fails(absl::StatusCode::kFailedPrecondition)},
      {"ClaimWithAStaleVersionIsAborted", {Created()},
       With(Claim("nurse-1"), [](ClaimTaskCommand& c) { c.expected_version = 3; }),
       Fails(absl::StatusCode::kAborted)},
      {"AGroupCannotClaim", {Created()}, Claim("group:front-desk"), Invalid("actor")},
  };
}

std::vector<Rule> CancelRules() {
  return {
      {"CancelClosesAsCancelledWithTheNotes", {Created(), Contacted(v1::NO_ANSWER)},
       Cancel(v1::CANCELLED, "patient moved away"),
       Appends({kClose},
               [](const v1::Task& t, const auto&) {
                 EXPECT_EQ(t.status(), v1::CLOSED);
                 EXPECT_EQ(t.close_reason(), v1::CANCELLED);
                 EXPECT_EQ(t.close_notes(), "patient moved away");
                 EXPECT_EQ(t.closing_outcome(), v1::CONTACT_OUTCOME_UNSPECIFIED);
                 EXPECT_EQ(t.follow_up_date(), "");
                 EXPECT_EQ(t.closed_by(), "coordinator-1");
               })},
      {"CancelAsEnteredInError", {Created()}, Cancel(v1::ENTERED_IN_ERROR, "wrong patient"),
       Appends({kClose}, [](const v1::Task& t, const auto&) {
         EXPECT_EQ(t.close_reason(), v1::ENTERED_IN_ERROR);
       })},
      {"CancelWithAnotherReasonIsInvalid", {Created()}, Cancel(v1::MAX_ATTEMPTS),
       Invalid("reason")},
      {"CancelWithoutAReasonIsInvalid", {Created()}, Cancel(v1::CLOSE_REASON_UNSPECIFIED),
       Invalid("reason")},
      {"CancelWithoutNotesIsInvalid", {Created()}, Cancel(v1::CANCELLED, ""), Invalid("notes")},
      {"CancelWithBlankNotesIsInvalid", {Created()}, Cancel(v1::CANCELLED, " \n\t"),
       Invalid("notes")},
      {"CancelNotesAreAtMost4000Characters", {Created()},
       Cancel(v1::CANCELLED, std::string(4001, 'n')), Invalid("notes")},
      {"CancelAClosedTaskIsFailedPrecondition", {Created(), Closed(v1::CANCELLED)},
       Cancel(v1::CANCELLED), Fails(absl::StatusCode::kFailedPrecondition)},
      {"CancelAMissingTaskIsNotFound", {}, Cancel(v1::CANCELLED),
       Fails(absl::StatusCode::kNotFound)},
      {"CancelWithAStaleVersionIsAborted", {Created()},
       With(Cancel(v1::CANCELLED), [](CancelTaskCommand& c) { c.expected_version = 2; }),
       Fails(absl::StatusCode::kAborted)},
  };
}

std::vector<Rule> EveryRule() {
  std::vector<Rule> all;
  for (auto rules : {CreateRules(), CreateCadenceRules(), AttemptRules(), CadenceRules(),
                     MaxAttemptRules(), AssignmentRules(), CancelRules()}) {
    all.insert(all.end(), rules.begin(), rules.end());
  }
  return all;
}

INSTANTIATE_TEST_SUITE_P(Issue13, WorkflowRulesTest, ::testing::ValuesIn(EveryRule()),
                         [](const ::testing::TestParamInfo<Rule>& info) {
                           return info.param.name;
                         });

// ---- Apply: the fold of the new events, and of version 1 events ---------------------------------

v1::Task FoldGiven(const std::vector<StoredEvent>& events) {
  return Fold(v1::Task(), events, kCreated);
}

TEST(WorkflowApplyTest, AVersion1TaskReadsAsDefaultPracticeCustomRoutinePhoneOutbound) {
  StoredEvent created = At(StoredEvent(), kCreated);
  created.mutable_task_created()->set_patient_id("p1");
  created.mutable_task_created()->set_kind(v1::MANUAL);
  StoredEvent contact = At(StoredEvent(), kCreated + absl::Hours(1));
  contact.mutable_contact_logged()->set_outcome(v1::SCHEDULED);
  contact.mutable_contact_logged()->set_close_task(true);
  const v1::Task task = FoldGiven({created, contact, Closed(v1::CONTACT_OUTCOME)});
  EXPECT_EQ(task.practice_id(), "default");
  EXPECT_EQ(task.category(), v1::CUSTOM);
  EXPECT_EQ(task.priority(), v1::ROUTINE);
  EXPECT_EQ(task.contacts(0).channel(), v1::PHONE);
  EXPECT_EQ(task.contacts(0).direction(), v1::OUTBOUND);
  EXPECT_EQ(task.attempt_count(), 1);
  EXPECT_EQ(task.reached_count(), 1);
  // The store's upcaster writes the same meaning into the event itself.
  FillVersion1Defaults(created);
  EXPECT_EQ(created.task_created().practice_id(), "default");
  EXPECT_EQ(created.task_created().category(), v1::CUSTOM);
  EXPECT_EQ(created.task_created().priority(), v1::ROUTINE);
  FillVersion1Defaults(contact);
  EXPECT_EQ(contact.contact_logged().channel(), v1::PHONE);
  EXPECT_EQ(contact.contact_logged().direction(), v1::OUTBOUND);
}

TEST(WorkflowApplyTest, FillVersion1DefaultsKeepsWhatIsSet) {
  StoredEvent created = Created([](v1::TaskCreated& p) {
    p.set_practice_id("north");
    p.set_category(v1::REACTIVATION);
    p.set_priority(v1::URGENT);
  });
  const StoredEvent before = created;
  FillVersion1Defaults(created);
  EXPECT_EQ(created.SerializeAsString(), before.SerializeAsString());
}

TEST(WorkflowApplyTest, TaskAssignedMustNameTheTasksAssigneeAsPrevious) {
  v1::Task task = FoldGiven({Created(), Assigned("nurse-1")});
  StoredEvent wrong = Assigned("nurse-3", "nurse-2");
  wrong.set_version(3);
  EXPECT_EQ(Apply(task, wrong).code(), absl::StatusCode::kDataLoss);
}

TEST(WorkflowApplyTest, TaskAssignedOnAClosedTaskIsDataLoss) {
  v1::Task task = FoldGiven({Created(), Closed(v1::CANCELLED)});
  StoredEvent assigned = Assigned("nurse-1");
  assigned.set_version(3);
  EXPECT_EQ(Apply(task, assigned).code(), absl::StatusCode::kDataLoss);
}

TEST(WorkflowApplyTest, ACadenceWithoutItsStartDateIsDataLoss) {
  v1::Task task;
  StoredEvent created = Created([](v1::TaskCreated& p) { p.add_cadence_days(3); });
  created.set_version(1);
  EXPECT_EQ(Apply(task, created).code(), absl::StatusCode::kDataLoss);
}

TEST(WorkflowApplyTest, CloseFieldsFoldIntoTheTask) {
  StoredEvent resolved = Closed(v1::APPOINTMENT_SCHEDULED);
  resolved.mutable_task_closed()->set_source_ref("appt-42");
  const v1::Task task = FoldGiven({Created(), resolved});
  EXPECT_EQ(task.close_reason(), v1::APPOINTMENT_SCHEDULED);
  EXPECT_EQ(task.close_source_ref(), "appt-42");
  EXPECT_EQ(task.closing_outcome(), v1::CONTACT_OUTCOME_UNSPECIFIED);
}

}  // namespace
}  // namespace outreach::domain::workflow_test
