// SPEC §2, §3 and §5 workflow rules: given events, when a command, then events or the exact error.
#include "domain/task_rules.h"

#include <optional>
#include <string>
#include <vector>

#include "domain/validation.h"
#include "gtest/gtest.h"

namespace outreach::domain {
namespace {

using storage::v1::StoredEvent;

const absl::Time kNow = absl::FromCivil(absl::CivilSecond(2026, 3, 10, 15, 0, 0), absl::UTCTimeZone());
const absl::Time kCreated = kNow - absl::Hours(48);

const v1::ContactOutcome kAllOutcomes[] = {v1::NO_ANSWER, v1::LEFT_MESSAGE, v1::DID_NOT_SCHEDULE,
                                           v1::SCHEDULED};

class TaskRulesTest : public ::testing::Test {
 protected:
  DecideContext Ctx(absl::Time now = kNow, absl::TimeZone tz = absl::UTCTimeZone()) {
    return DecideContext{now, tz};
  }

  // Given: events written by earlier commands, numbered like a stream.
  StoredEvent Event(StoredEvent e, absl::Time at) {
    e.set_task_id("t1");
    e.set_version(++given_version_);
    e.set_position(given_version_);
    *e.mutable_recorded_at() = ToProto(at);
    if (!e.has_occurred_at()) *e.mutable_occurred_at() = ToProto(at);
    if (e.actor().empty()) e.set_actor("coordinator-1");
    return e;
  }
  StoredEvent Created(v1::TaskKind kind = v1::MANUAL,
                      std::optional<absl::Time> expires_at = std::nullopt) {
    StoredEvent e;
    v1::TaskCreated* p = e.mutable_task_created();
    p->set_patient_id("p1");
    p->set_kind(kind);
    p->set_title("Book annual wellness visit");
    if (expires_at) *p->mutable_expires_at() = ToProto(*expires_at);
    return Event(e, kCreated);
  }
  StoredEvent Contacted(v1::ContactOutcome outcome, const std::string& follow_up) {
    StoredEvent e;
    e.mutable_contact_logged()->set_outcome(outcome);
    e.mutable_contact_logged()->set_follow_up_date(follow_up);
    return Event(e, kCreated + absl::Hours(1));
  }
  StoredEvent Closed(v1::CloseReason reason, v1::ContactOutcome outcome) {
    StoredEvent e;
    e.mutable_task_closed()->set_reason(reason);
    e.mutable_task_closed()->set_outcome(outcome);
    return Event(e, kCreated + absl::Hours(1));
  }

  std::optional<v1::Task> Given(const std::vector<StoredEvent>& events) {
    if (events.empty()) return std::nullopt;
    v1::Task state;
    for (const StoredEvent& e : events) {
      absl::Status s = Apply(state, e);
      EXPECT_TRUE(s.ok()) << s;
    }
    return state;
  }

  // Then: the new state after the decided events.
  v1::Task Fold(std::optional<v1::Task> state, const std::vector<NewEvent>& events,
                absl::Time at = kNow) {
    v1::Task next = state.value_or(v1::Task());
    int64_t version = next.version();
    for (const NewEvent& ne : events) {
      StoredEvent e = ne.event;
      e.set_version(++version);
      *e.mutable_recorded_at() = ToProto(at);
      absl::Status s = Apply(next, e);
      EXPECT_TRUE(s.ok()) << s;
    }
    return next;
  }

  static CreateTaskCommand Create(v1::TaskKind kind = v1::MANUAL) {
    CreateTaskCommand c;
    c.task_id = "t1";
    c.patient_id = "p1";
    c.kind = kind;
    c.title = "Book annual wellness visit";
    c.meta.actor = "care-gap-engine";
    if (kind == v1::AUTOMATIC) c.expires_at = kNow + absl::Hours(24 * 30);
    return c;
  }
  static LogContactCommand Log(v1::ContactOutcome outcome, const std::string& follow_up) {
    LogContactCommand c;
    c.task_id = "t1";
    c.outcome = outcome;
    c.notes = "called the mobile number";
    c.follow_up_date = follow_up;
    c.meta.actor = "coordinator-1";
    return c;
  }
  static LogContactCommand LogAndClose(v1::ContactOutcome outcome) {
    LogContactCommand c = Log(outcome, "");
    c.close_task = true;
    return c;
  }

  static void ExpectInvalid(const absl::StatusOr<std::vector<NewEvent>>& result,
                            const std::string& field) {
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
    EXPECT_EQ(result.status().message().rfind(field + ": ", 0), 0u)
        << "message should name " << field << ": " << result.status();
  }

  int64_t given_version_ = 0;
};

// --- Creating tasks ---------------------------------------------------------------------------

TEST_F(TaskRulesTest, CreateManualTaskIsOpenWithNoContacts) {
  auto events = Decide(std::nullopt, Create(), Ctx());
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 1u);
  const StoredEvent& e = (*events)[0].event;
  ASSERT_TRUE(e.has_task_created());
  EXPECT_EQ(e.actor(), "care-gap-engine");
  EXPECT_EQ(FromProto(e.occurred_at()), kNow);
  v1::Task task = Fold(std::nullopt, *events);
  EXPECT_EQ(task.status(), v1::OPEN);
  EXPECT_EQ(task.kind(), v1::MANUAL);
  EXPECT_EQ(task.version(), 1);
  EXPECT_EQ(task.contacts_size(), 0);
  EXPECT_EQ(task.created_by(), "care-gap-engine");
  EXPECT_FALSE(task.has_expires_at());
}

TEST_F(TaskRulesTest, CreateOnExistingTaskIdIsAlreadyExists) {
  auto state = Given({Created()});
  EXPECT_EQ(Decide(state, Create(), Ctx()).status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(TaskRulesTest, ManualTaskWithExpiresAtIsInvalidArgument) {
  CreateTaskCommand c = Create(v1::MANUAL);
  c.expires_at = kNow + absl::Hours(1);
  ExpectInvalid(Decide(std::nullopt, c, Ctx()), "expires_at");
}

TEST_F(TaskRulesTest, AutomaticTaskWithoutExpiresAtIsInvalidArgument) {
  CreateTaskCommand c = Create(v1::AUTOMATIC);
  c.expires_at.reset();
  ExpectInvalid(Decide(std::nullopt, c, Ctx()), "expires_at");
}

TEST_F(TaskRulesTest, AutomaticTaskExpiringNowOrEarlierIsInvalidArgument) {
  CreateTaskCommand c = Create(v1::AUTOMATIC);
  c.expires_at = kNow;
  ExpectInvalid(Decide(std::nullopt, c, Ctx()), "expires_at");
  c.expires_at = kNow - absl::Seconds(1);
  ExpectInvalid(Decide(std::nullopt, c, Ctx()), "expires_at");
}

TEST_F(TaskRulesTest, CreateWithUnspecifiedKindIsInvalidArgument) {
  CreateTaskCommand c = Create();
  c.kind = v1::TASK_KIND_UNSPECIFIED;
  ExpectInvalid(Decide(std::nullopt, c, Ctx()), "kind");
  c.kind = static_cast<v1::TaskKind>(99);
  ExpectInvalid(Decide(std::nullopt, c, Ctx()), "kind");
}

TEST_F(TaskRulesTest, CreateValidatesEveryIdField) {
  CreateTaskCommand c = Create();
  c.patient_id = "";
  ExpectInvalid(Decide(std::nullopt, c, Ctx()), "patient_id");
  c = Create();
  c.task_id = std::string(65, 't');
  ExpectInvalid(Decide(std::nullopt, c, Ctx()), "task_id");
  c = Create();
  c.assignee = "nurse jones";
  ExpectInvalid(Decide(std::nullopt, c, Ctx()), "assignee");
  c = Create();
  c.meta.request_id = "r/1";
  ExpectInvalid(Decide(std::nullopt, c, Ctx()), "request_id");
  c = Create();
  c.meta.actor = "";
  ExpectInvalid(Decide(std::nullopt, c, Ctx()), "actor");
}

TEST_F(TaskRulesTest, CreateWithTooLongTitleIsInvalidArgument) {
  CreateTaskCommand c = Create();
  c.title = std::string(kMaxTitleLength + 1, 'x');
  ExpectInvalid(Decide(std::nullopt, c, Ctx()), "title");
}

TEST_F(TaskRulesTest, CreateWithFirstFollowUpDateBeforeTodayIsInvalidArgument) {
  CreateTaskCommand c = Create();
  c.follow_up_date = "2026-03-09";
  ExpectInvalid(Decide(std::nullopt, c, Ctx()), "follow_up_date");
  c.follow_up_date = "2026-03-10";
  auto events = Decide(std::nullopt, c, Ctx());
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ(Fold(std::nullopt, *events).follow_up_date(), "2026-03-10");
}

// --- Log Contact: the task stays open -----------------------------------------------------------

TEST_F(TaskRulesTest, LogContactWithAnyOutcomeMovesTaskToInProgress) {
  for (v1::ContactOutcome outcome : kAllOutcomes) {
    given_version_ = 0;
    auto state = Given({Created()});
    auto events = Decide(state, Log(outcome, "2026-03-17"), Ctx());
    ASSERT_TRUE(events.ok()) << events.status();
    ASSERT_EQ(events->size(), 1u);
    ASSERT_TRUE((*events)[0].event.has_contact_logged());
    v1::Task task = Fold(state, *events);
    EXPECT_EQ(task.status(), v1::IN_PROGRESS) << v1::ContactOutcome_Name(outcome);
    EXPECT_EQ(task.follow_up_date(), "2026-03-17");
    ASSERT_EQ(task.contacts_size(), 1);
    EXPECT_EQ(task.contacts(0).outcome(), outcome);
    EXPECT_EQ(task.contacts(0).notes(), "called the mobile number");
    EXPECT_EQ(task.contacts(0).logged_by(), "coordinator-1");
    EXPECT_FALSE(task.contacts(0).closed_task());
    EXPECT_EQ(task.version(), 2);
  }
}

// The article's status definitions say Did Not Schedule closes; its workflow keeps the task open
// when a follow-up date is set. SPEC §2: the action decides, not the outcome.
TEST_F(TaskRulesTest, DidNotScheduleWithFollowUpStaysInProgress) {
  auto state = Given({Created()});
  auto events = Decide(state, Log(v1::DID_NOT_SCHEDULE, "2026-04-01"), Ctx());
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ(Fold(state, *events).status(), v1::IN_PROGRESS);
}

TEST_F(TaskRulesTest, LogContactOnInProgressTaskMovesFollowUpDate) {
  auto state = Given({Created(), Contacted(v1::NO_ANSWER, "2026-03-11")});
  auto events = Decide(state, Log(v1::LEFT_MESSAGE, "2026-03-20"), Ctx());
  ASSERT_TRUE(events.ok()) << events.status();
  v1::Task task = Fold(state, *events);
  EXPECT_EQ(task.status(), v1::IN_PROGRESS);
  EXPECT_EQ(task.follow_up_date(), "2026-03-20");
  EXPECT_EQ(task.contacts_size(), 2);
}

TEST_F(TaskRulesTest, LogContactWithoutFollowUpDateIsInvalidArgument) {
  auto state = Given({Created()});
  ExpectInvalid(Decide(state, Log(v1::NO_ANSWER, ""), Ctx()), "follow_up_date");
}

TEST_F(TaskRulesTest, FollowUpDateThatIsNotACalendarDateIsInvalidArgument) {
  auto state = Given({Created()});
  ExpectInvalid(Decide(state, Log(v1::NO_ANSWER, "2026-02-30"), Ctx()), "follow_up_date");
  ExpectInvalid(Decide(state, Log(v1::NO_ANSWER, "03/17/2026"), Ctx()), "follow_up_date");
}

TEST_F(TaskRulesTest, FollowUpDateBeforeTodayIsInvalidArgument) {
  auto state = Given({Created()});
  ExpectInvalid(Decide(state, Log(v1::NO_ANSWER, "2026-03-09"), Ctx()), "follow_up_date");
}

TEST_F(TaskRulesTest, FollowUpDateOfTodayIsAccepted) {
  auto state = Given({Created()});
  EXPECT_TRUE(Decide(state, Log(v1::NO_ANSWER, "2026-03-10"), Ctx()).ok());
}

TEST_F(TaskRulesTest, FollowUpDateTooFarAheadIsInvalidArgument) {
  auto state = Given({Created()});
  ExpectInvalid(Decide(state, Log(v1::NO_ANSWER, "2040-01-01"), Ctx()), "follow_up_date");
}

// 02:00 UTC on March 10 is still March 9 five hours west: "today" follows the configured zone.
TEST_F(TaskRulesTest, TodayIsTakenInTheConfiguredTimeZone) {
  const absl::Time early_utc = absl::FromCivil(absl::CivilSecond(2026, 3, 10, 2, 0, 0),
                                               absl::UTCTimeZone());
  const absl::TimeZone west = absl::FixedTimeZone(-5 * 3600);
  auto state = Given({Created()});
  EXPECT_TRUE(Decide(state, Log(v1::NO_ANSWER, "2026-03-09"), Ctx(early_utc, west)).ok());
  ExpectInvalid(Decide(state, Log(v1::NO_ANSWER, "2026-03-09"), Ctx(early_utc)), "follow_up_date");
}

// --- Log and Close Task ---------------------------------------------------------------------------

TEST_F(TaskRulesTest, LogAndCloseWithAnyOutcomeClosesTask) {
  for (v1::ContactOutcome outcome : kAllOutcomes) {
    given_version_ = 0;
    auto state = Given({Created()});
    auto events = Decide(state, LogAndClose(outcome), Ctx());
    ASSERT_TRUE(events.ok()) << events.status();
    ASSERT_EQ(events->size(), 2u);
    ASSERT_TRUE((*events)[0].event.has_contact_logged());
    EXPECT_TRUE((*events)[0].event.contact_logged().close_task());
    ASSERT_TRUE((*events)[1].event.has_task_closed());
    EXPECT_EQ((*events)[1].event.task_closed().reason(), v1::CONTACT_OUTCOME);
    EXPECT_EQ((*events)[1].event.task_closed().outcome(), outcome);
    v1::Task task = Fold(state, *events);
    EXPECT_EQ(task.status(), v1::CLOSED) << v1::ContactOutcome_Name(outcome);
    EXPECT_EQ(task.close_reason(), v1::CONTACT_OUTCOME);
    EXPECT_EQ(task.closing_outcome(), outcome);
    EXPECT_EQ(task.closed_by(), "coordinator-1");
    EXPECT_EQ(task.follow_up_date(), "");
    EXPECT_EQ(task.contacts_size(), 1);
    EXPECT_TRUE(task.contacts(0).closed_task());
    EXPECT_EQ(task.version(), 3);
  }
}

TEST_F(TaskRulesTest, LogAndCloseOnInProgressTaskCloses) {
  auto state = Given({Created(), Contacted(v1::NO_ANSWER, "2026-03-10")});
  auto events = Decide(state, LogAndClose(v1::SCHEDULED), Ctx());
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ(Fold(state, *events).status(), v1::CLOSED);
}

TEST_F(TaskRulesTest, FollowUpDateWithCloseIsInvalidArgument) {
  auto state = Given({Created()});
  LogContactCommand c = LogAndClose(v1::SCHEDULED);
  c.follow_up_date = "2026-03-17";
  ExpectInvalid(Decide(state, c, Ctx()), "follow_up_date");
}

// --- Closed and expired tasks ---------------------------------------------------------------------

TEST_F(TaskRulesTest, ClosedTaskRefusesContactsWithFailedPrecondition) {
  auto state = Given({Created(), Contacted(v1::SCHEDULED, ""), Closed(v1::CONTACT_OUTCOME, v1::SCHEDULED)});
  EXPECT_EQ(Decide(state, Log(v1::NO_ANSWER, "2026-03-17"), Ctx()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Decide(state, LogAndClose(v1::NO_ANSWER), Ctx()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(TaskRulesTest, ExpiredTaskRefusesContactsBeforeItsExpiryEventIsWritten) {
  const absl::Time expires = kNow - absl::Seconds(1);
  auto state = Given({Created(v1::AUTOMATIC, expires)});
  ASSERT_EQ(state->status(), v1::OPEN);  // no TaskClosed written yet
  auto result = Decide(state, Log(v1::NO_ANSWER, "2026-03-17"), Ctx());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(result.status().message().find("expired"), std::string::npos) << result.status();
}

TEST_F(TaskRulesTest, AutomaticTaskAcceptsContactsUntilTheMomentItExpires) {
  auto state = Given({Created(v1::AUTOMATIC, kNow + absl::Microseconds(1))});
  EXPECT_TRUE(Decide(state, Log(v1::NO_ANSWER, "2026-03-17"), Ctx()).ok());
  EXPECT_EQ(Decide(state, Log(v1::NO_ANSWER, "2026-03-17"), Ctx(kNow + absl::Microseconds(1)))
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(TaskRulesTest, ExpiryClosesAutomaticTaskAsSystemAtExpiresAt) {
  const absl::Time expires = kNow - absl::Minutes(5);
  auto state = Given({Created(v1::AUTOMATIC, expires), Contacted(v1::NO_ANSWER, "2026-03-11")});
  auto events = Decide(state, ExpireTaskCommand{"t1"}, Ctx());
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 1u);
  const StoredEvent& e = (*events)[0].event;
  EXPECT_EQ(e.task_closed().reason(), v1::EXPIRED);
  EXPECT_EQ(e.actor(), kExpiryActor);
  EXPECT_EQ(FromProto(e.occurred_at()), expires);
  v1::Task task = Fold(state, *events);
  EXPECT_EQ(task.status(), v1::CLOSED);
  EXPECT_EQ(task.close_reason(), v1::EXPIRED);
  EXPECT_EQ(FromProto(task.closed_at()), expires);
  EXPECT_EQ(task.closed_by(), "system:expiry");
}

TEST_F(TaskRulesTest, ExpiryOfAlreadyClosedTaskAppendsNothing) {
  auto state = Given({Created(v1::AUTOMATIC, kNow - absl::Minutes(5)),
                      Contacted(v1::SCHEDULED, ""), Closed(v1::CONTACT_OUTCOME, v1::SCHEDULED)});
  auto events = Decide(state, ExpireTaskCommand{"t1"}, Ctx());
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_TRUE(events->empty());
}

TEST_F(TaskRulesTest, ExpiryBeforeExpiresAtIsFailedPrecondition) {
  auto state = Given({Created(v1::AUTOMATIC, kNow + absl::Minutes(5))});
  EXPECT_EQ(Decide(state, ExpireTaskCommand{"t1"}, Ctx()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(TaskRulesTest, ManualTaskNeverExpires) {
  auto state = Given({Created(v1::MANUAL)});
  EXPECT_FALSE(IsExpired(*state, kNow + absl::Hours(24 * 365 * 20)));
  EXPECT_EQ(Decide(state, ExpireTaskCommand{"t1"}, Ctx()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// --- Versions, missing tasks, contacted_at ---------------------------------------------------------

TEST_F(TaskRulesTest, ExpectedVersionMismatchIsAbortedAndSaysCurrentVersion) {
  auto state = Given({Created(), Contacted(v1::NO_ANSWER, "2026-03-11")});
  LogContactCommand c = Log(v1::NO_ANSWER, "2026-03-17");
  c.expected_version = 1;
  auto result = Decide(state, c, Ctx());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kAborted);
  EXPECT_NE(result.status().message().find("is at version 2"), std::string::npos)
      << result.status();
  c.expected_version = 2;
  EXPECT_TRUE(Decide(state, c, Ctx()).ok());
}

TEST_F(TaskRulesTest, NegativeExpectedVersionIsInvalidArgument) {
  auto state = Given({Created()});
  LogContactCommand c = Log(v1::NO_ANSWER, "2026-03-17");
  c.expected_version = -1;
  ExpectInvalid(Decide(state, c, Ctx()), "expected_version");
}

TEST_F(TaskRulesTest, LogContactOnMissingTaskIsNotFound) {
  EXPECT_EQ(Decide(std::nullopt, Log(v1::NO_ANSWER, "2026-03-17"), Ctx()).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(TaskRulesTest, UnspecifiedOutcomeIsInvalidArgument) {
  auto state = Given({Created()});
  ExpectInvalid(Decide(state, Log(v1::CONTACT_OUTCOME_UNSPECIFIED, "2026-03-17"), Ctx()),
                "outcome");
  ExpectInvalid(Decide(state, Log(static_cast<v1::ContactOutcome>(42), "2026-03-17"), Ctx()),
                "outcome");
}

TEST_F(TaskRulesTest, NotesLongerThan4000CharactersAreInvalidArgument) {
  auto state = Given({Created()});
  LogContactCommand c = Log(v1::NO_ANSWER, "2026-03-17");
  c.notes = std::string(4001, 'n');
  ExpectInvalid(Decide(state, c, Ctx()), "notes");
  c.notes = std::string(4000, 'n');
  EXPECT_TRUE(Decide(state, c, Ctx()).ok());
}

TEST_F(TaskRulesTest, ContactedAtDefaultsToNowAndMayBeEarlier) {
  auto state = Given({Created()});
  auto now_events = Decide(state, Log(v1::NO_ANSWER, "2026-03-17"), Ctx());
  ASSERT_TRUE(now_events.ok());
  EXPECT_EQ(FromProto((*now_events)[0].event.occurred_at()), kNow);

  LogContactCommand c = Log(v1::NO_ANSWER, "2026-03-17");
  c.contacted_at = kNow - absl::Hours(3);
  auto events = Decide(state, c, Ctx());
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_EQ(FromProto((*events)[0].event.occurred_at()), kNow - absl::Hours(3));
  v1::Task task = Fold(state, *events);
  EXPECT_EQ(FromProto(task.contacts(0).contacted_at()), kNow - absl::Hours(3));
  EXPECT_EQ(FromProto(task.contacts(0).logged_at()), kNow);
}

TEST_F(TaskRulesTest, ContactedAtInTheFutureIsInvalidArgument) {
  auto state = Given({Created()});
  LogContactCommand c = Log(v1::NO_ANSWER, "2026-03-17");
  c.contacted_at = kNow + absl::Minutes(1);
  ExpectInvalid(Decide(state, c, Ctx()), "contacted_at");
}

TEST_F(TaskRulesTest, ContactedAtBeforeTheTaskWasCreatedIsInvalidArgument) {
  auto state = Given({Created()});
  LogContactCommand c = Log(v1::NO_ANSWER, "2026-03-17");
  c.contacted_at = kCreated - absl::Seconds(1);
  ExpectInvalid(Decide(state, c, Ctx()), "contacted_at");
}

// --- Apply: the fold ------------------------------------------------------------------------------

TEST_F(TaskRulesTest, FoldIsDeterministicByteForByte) {
  std::vector<StoredEvent> events = {Created(v1::AUTOMATIC, kNow + absl::Hours(5)),
                                     Contacted(v1::NO_ANSWER, "2026-03-11"),
                                     Contacted(v1::LEFT_MESSAGE, "2026-03-12")};
  std::string a, b;
  ASSERT_TRUE(Given(events)->SerializeToString(&a));
  ASSERT_TRUE(Given(events)->SerializeToString(&b));
  EXPECT_EQ(a, b);
}

TEST_F(TaskRulesTest, ApplyRefusesAGapInStreamVersions) {
  v1::Task state;
  StoredEvent created = Created();
  ASSERT_TRUE(Apply(state, created).ok());
  StoredEvent skipped = Contacted(v1::NO_ANSWER, "2026-03-11");
  skipped.set_version(3);
  EXPECT_EQ(Apply(state, skipped).code(), absl::StatusCode::kDataLoss);
}

TEST_F(TaskRulesTest, ApplyRefusesContactAfterClose) {
  v1::Task state = *Given({Created(), Contacted(v1::SCHEDULED, ""), Closed(v1::CONTACT_OUTCOME, v1::SCHEDULED)});
  EXPECT_EQ(Apply(state, Contacted(v1::NO_ANSWER, "2026-03-11")).code(),
            absl::StatusCode::kDataLoss);
}

TEST_F(TaskRulesTest, ApplyRefusesEventWithoutPayload) {
  v1::Task state;
  EXPECT_EQ(Apply(state, Event(StoredEvent(), kNow)).code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace outreach::domain
