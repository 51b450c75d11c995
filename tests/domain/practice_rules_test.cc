// Issue 13's practices in the rules (domain/task_rules.h "Practices"): "today" in the zone of the
// task's practice (DecideContext::practice_zones, ZoneOf), and callers limited to practices
// (CommandMeta::practices). Given a task's events, when a command, then the events or the error.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "domain/decide_support.h"
#include "domain/task_rules.h"
#include "domain/validation.h"
#include "gtest/gtest.h"

// Its own namespace: the unity build compiles it with the other domain tests.
namespace outreach::domain::practice_test {
namespace {

using storage::v1::StoredEvent;

absl::TimeZone Zone(const char* name) {
  absl::TimeZone zone;
  EXPECT_TRUE(absl::LoadTimeZone(name, &zone)) << name;
  return zone;
}

// 2026-03-10 15:00 UTC: already 2026-03-11 (05:00) on Kiritimati (UTC+14).
const absl::Time kAfternoonUtc =
    absl::FromCivil(absl::CivilSecond(2026, 3, 10, 15, 0, 0), absl::UTCTimeZone());
// 2026-03-10 03:00 UTC: still 2026-03-09 (20:00, PDT) in Los Angeles.
const absl::Time kNightUtc =
    absl::FromCivil(absl::CivilSecond(2026, 3, 10, 3, 0, 0), absl::UTCTimeZone());

// "east" is on Kiritimati, "west" in Los Angeles; every other practice is in UTC.
const PracticeZones& Zones() {
  static const PracticeZones* zones = new PracticeZones{
      {"east", Zone("Pacific/Kiritimati")}, {"west", Zone("America/Los_Angeles")}};
  return *zones;
}
DecideContext At(absl::Time now) { return DecideContext{now, absl::UTCTimeZone(), &Zones()}; }

CreateTaskCommand NewTask(const std::string& practice, const std::string& follow_up = "") {
  CreateTaskCommand c;
  c.task_id = "t1";
  c.patient_id = "p1";
  c.kind = v1::MANUAL;
  c.title = "Recall";
  c.practice_id = practice;
  c.follow_up_date = follow_up;
  c.meta = {"care-gap-engine", ""};
  return c;
}

LogContactCommand Log(const std::string& follow_up) {
  LogContactCommand c;
  c.task_id = "t1";
  c.outcome = v1::NO_ANSWER;
  c.notes = "rang";
  c.follow_up_date = follow_up;
  c.meta = {"nurse-1", ""};
  return c;
}

// The task as created by `create` a day before `now`, folded.
v1::Task Existing(const CreateTaskCommand& create, absl::Time now) {
  auto decided = Decide(nullptr, create, At(now - absl::Hours(24)));
  EXPECT_TRUE(decided.ok()) << decided.status();
  v1::Task task;
  StoredEvent e = decided->at(0).event;
  e.set_version(1);
  e.set_position(1);
  *e.mutable_recorded_at() = ToProto(now - absl::Hours(24));
  EXPECT_TRUE(Apply(task, e).ok());
  return task;
}

absl::StatusCode CodeOf(const absl::StatusOr<std::vector<NewEvent>>& decided) {
  return decided.status().code();
}

// ---- "Today" in the practice's zone ---------------------------------------------------------

TEST(PracticeZoneTest, ZoneOfFallsBackToTheContextZoneAndReadsEmptyAsDefault) {
  EXPECT_EQ(ZoneOf(At(kAfternoonUtc), "east").name(), "Pacific/Kiritimati");
  EXPECT_EQ(ZoneOf(At(kAfternoonUtc), "north").name(), "UTC");
  EXPECT_EQ(ZoneOf(DecideContext{kAfternoonUtc, Zone("Europe/Paris")}, "east").name(),
            "Europe/Paris");
  const PracticeZones with_default = {{"default", Zone("Asia/Tokyo")}};
  const DecideContext ctx{kAfternoonUtc, absl::UTCTimeZone(), &with_default};
  EXPECT_EQ(ZoneOf(ctx, "").name(), "Asia/Tokyo");
  EXPECT_EQ(ZoneOf(ctx, "default").name(), "Asia/Tokyo");
}

TEST(PracticeZoneTest, FollowUpTodayInUtcIsYesterdayOnKiritimati) {
  // 2026-03-10 is today in UTC but yesterday in the east practice.
  auto east = Decide(nullptr, NewTask("east", "2026-03-10"), At(kAfternoonUtc));
  ASSERT_EQ(CodeOf(east), absl::StatusCode::kInvalidArgument) << east.status();
  EXPECT_EQ(east.status().message(),
            "follow_up_date: 2026-03-10 is before today (2026-03-11 in Pacific/Kiritimati)");
  EXPECT_TRUE(Decide(nullptr, NewTask("north", "2026-03-10"), At(kAfternoonUtc)).ok());
  EXPECT_TRUE(Decide(nullptr, NewTask("east", "2026-03-11"), At(kAfternoonUtc)).ok());
}

TEST(PracticeZoneTest, FollowUpTodayInLosAngelesIsYesterdayInUtc) {
  // 2026-03-09 is today in the west practice but yesterday in UTC.
  EXPECT_TRUE(Decide(nullptr, NewTask("west", "2026-03-09"), At(kNightUtc)).ok());
  auto north = Decide(nullptr, NewTask("north", "2026-03-09"), At(kNightUtc));
  EXPECT_EQ(CodeOf(north), absl::StatusCode::kInvalidArgument) << north.status();
}

TEST(PracticeZoneTest, LogContactChecksTheFollowUpInTheTasksPracticeZone) {
  const v1::Task east = Existing(NewTask("east"), kAfternoonUtc);
  auto refused = Decide(&east, Log("2026-03-10"), At(kAfternoonUtc));
  ASSERT_EQ(CodeOf(refused), absl::StatusCode::kInvalidArgument) << refused.status();
  EXPECT_EQ(refused.status().message().rfind("follow_up_date: ", 0), 0u);
  EXPECT_TRUE(Decide(&east, Log("2026-03-11"), At(kAfternoonUtc)).ok());
  const v1::Task west = Existing(NewTask("west"), kNightUtc);
  EXPECT_TRUE(Decide(&west, Log("2026-03-09"), At(kNightUtc)).ok());
}

TEST(PracticeZoneTest, CadenceStartsOnTheCreationDateInThePracticeZone) {
  CreateTaskCommand create = NewTask("east");
  create.cadence_days = {1, 7};
  auto decided = Decide(nullptr, create, At(kAfternoonUtc));
  ASSERT_TRUE(decided.ok()) << decided.status();
  const v1::TaskCreated& created = decided->at(0).event.task_created();
  EXPECT_EQ(created.cadence_start_date(), "2026-03-11");
  EXPECT_EQ(created.follow_up_date(), "2026-03-12");
  create.practice_id = "west";
  decided = Decide(nullptr, create, At(kNightUtc));
  ASSERT_TRUE(decided.ok()) << decided.status();
  EXPECT_EQ(decided->at(0).event.task_created().cadence_start_date(), "2026-03-09");
}

TEST(PracticeZoneTest, CadenceFollowUpOfAContactCountsDaysInThePracticeZone) {
  // Created 2026-03-10 05:00 UTC (19:00 on Kiritimati: 2026-03-10 in both zones), cadence 1, 2;
  // contacted 2026-03-11 15:00 UTC, which is 2026-03-12 on Kiritimati. The second step,
  // 2026-03-12, is then not after the contact's day there: the day after the contact.
  const absl::Time created = absl::FromCivil(absl::CivilSecond(2026, 3, 10, 5, 0, 0),
                                             absl::UTCTimeZone());
  const absl::Time contacted = created + absl::Hours(34);
  for (const auto& [practice, want] : {std::pair<std::string, std::string>{"east", "2026-03-13"},
                                       {"north", "2026-03-12"}}) {
    CreateTaskCommand create = NewTask(practice);
    create.cadence_days = {1, 2};
    const v1::Task task = Existing(create, created + absl::Hours(24));
    ASSERT_EQ(task.cadence_start_date(), "2026-03-10");
    auto decided = Decide(&task, Log(""), At(contacted));
    ASSERT_TRUE(decided.ok()) << decided.status();
    EXPECT_EQ(decided->at(0).event.contact_logged().follow_up_date(), want) << practice;
  }
}

SetContactPreferenceCommand DoNotContact(const std::string& practice, const std::string& until) {
  SetContactPreferenceCommand c;
  c.practice_id = practice;
  c.patient_id = "p1";
  c.do_not_contact = true;
  c.until_date = until;
  c.reason = "asked by phone";
  c.meta = {"nurse-1", ""};
  return c;
}

TEST(PracticeZoneTest, DoNotContactUntilIsAfterTodayInThePracticeZone) {
  // 2026-03-11 is tomorrow in UTC but already today on Kiritimati.
  auto east = Decide(TaskStates(), PatientStates(), DoNotContact("east", "2026-03-11"),
                     At(kAfternoonUtc));
  ASSERT_EQ(CodeOf(east), absl::StatusCode::kInvalidArgument) << east.status();
  EXPECT_EQ(east.status().message().rfind("until_date: ", 0), 0u);
  auto north = Decide(TaskStates(), PatientStates(), DoNotContact("north", "2026-03-11"),
                      At(kAfternoonUtc));
  EXPECT_TRUE(north.ok()) << north.status();
}

// ---- Callers limited to practices -----------------------------------------------------------

CommandMeta LimitedTo(std::vector<std::string> practices) {
  CommandMeta meta{"nurse-1", ""};
  meta.practices = std::move(practices);
  return meta;
}

TEST(PracticeAccessTest, ALimitedCallerCreatesOnlyInItsPractices) {
  CreateTaskCommand create = NewTask("south");
  create.meta = LimitedTo({"north", "west"});
  auto refused = Decide(nullptr, create, At(kAfternoonUtc));
  ASSERT_EQ(CodeOf(refused), absl::StatusCode::kPermissionDenied) << refused.status();
  EXPECT_EQ(refused.status().message(),
            "practice_id: nurse-1 may not act in practice \"south\" (limited to north, west)");
  create.practice_id = "";  // the default practice
  EXPECT_EQ(CodeOf(Decide(nullptr, create, At(kAfternoonUtc))),
            absl::StatusCode::kPermissionDenied);
  create.practice_id = "west";
  EXPECT_TRUE(Decide(nullptr, create, At(kAfternoonUtc)).ok());
  create.practice_id = "";
  create.meta = LimitedTo({"default"});
  EXPECT_TRUE(Decide(nullptr, create, At(kAfternoonUtc)).ok());
}

TEST(PracticeAccessTest, ALimitedCallerChangesOnlyTasksOfItsPractices) {
  const v1::Task south = Existing(NewTask("south"), kAfternoonUtc);
  LogContactCommand log = Log("2026-03-12");
  log.meta = LimitedTo({"north"});
  EXPECT_EQ(CodeOf(Decide(&south, log, At(kAfternoonUtc))), absl::StatusCode::kPermissionDenied);
  AssignTaskCommand assign;
  assign.task_id = "t1";
  assign.assignee = "nurse-2";
  assign.meta = LimitedTo({"north"});
  EXPECT_EQ(CodeOf(Decide(&south, assign, At(kAfternoonUtc))),
            absl::StatusCode::kPermissionDenied);
  ClaimTaskCommand claim;
  claim.task_id = "t1";
  claim.meta = LimitedTo({"north"});
  EXPECT_EQ(CodeOf(Decide(&south, claim, At(kAfternoonUtc))),
            absl::StatusCode::kPermissionDenied);
  CancelTaskCommand cancel;
  cancel.task_id = "t1";
  cancel.reason = v1::CANCELLED;
  cancel.notes = "moved";
  cancel.meta = LimitedTo({"north"});
  EXPECT_EQ(CodeOf(Decide(&south, cancel, At(kAfternoonUtc))),
            absl::StatusCode::kPermissionDenied);
  log.meta = LimitedTo({"north", "south"});
  EXPECT_TRUE(Decide(&south, log, At(kAfternoonUtc)).ok());
}

TEST(PracticeAccessTest, ALimitedCallerResolvesAndSetsPreferencesOnlyInItsPractices) {
  SetContactPreferenceCommand preference = DoNotContact("south", "");
  preference.meta = LimitedTo({"north"});
  EXPECT_EQ(CodeOf(Decide(TaskStates(), PatientStates(), preference, At(kAfternoonUtc))),
            absl::StatusCode::kPermissionDenied);
  preference.practice_id = "north";
  EXPECT_TRUE(Decide(TaskStates(), PatientStates(), preference, At(kAfternoonUtc)).ok());
  ResolveTasksCommand resolve;
  resolve.practice_id = "";  // the default practice
  resolve.patient_id = "p1";
  resolve.reason = v1::APPOINTMENT_SCHEDULED;
  resolve.meta = LimitedTo({"north"});
  EXPECT_EQ(CodeOf(Decide(TaskStates(), PatientStates(), resolve, At(kAfternoonUtc))),
            absl::StatusCode::kPermissionDenied);
  resolve.meta = LimitedTo({"default", "north"});
  EXPECT_TRUE(Decide(TaskStates(), PatientStates(), resolve, At(kAfternoonUtc)).ok());
}

TEST(PracticeAccessTest, BadInputComesBeforeThePracticeAndAMissingTaskIsNotFound) {
  const v1::Task south = Existing(NewTask("south"), kAfternoonUtc);
  LogContactCommand log = Log("2026-02-30");
  log.meta = LimitedTo({"north"});
  EXPECT_EQ(CodeOf(Decide(&south, log, At(kAfternoonUtc))), absl::StatusCode::kInvalidArgument);
  log.follow_up_date = "2026-03-12";
  EXPECT_EQ(CodeOf(Decide(nullptr, log, At(kAfternoonUtc))), absl::StatusCode::kNotFound);
}

TEST(PracticeAccessTest, ExpiryIsNeverLimited) {
  CreateTaskCommand create = NewTask("south");
  create.kind = v1::AUTOMATIC;
  create.expires_at = kAfternoonUtc;
  const v1::Task south = Existing(create, kAfternoonUtc);
  auto expired = Decide(&south, ExpireTaskCommand{"t1"}, At(kAfternoonUtc + absl::Hours(1)));
  ASSERT_TRUE(expired.ok()) << expired.status();
  EXPECT_EQ(expired->size(), 1u);
}

}  // namespace
}  // namespace outreach::domain::practice_test
