// The FHIR R4 mapping (ctl/fhir/fhir_mapping.h) as a pure function: README's table row by row,
// ids and instants, and the exporter's fold (order checks, patient streams, --from, --practice).
#include "ctl/fhir/fhir_mapping.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "domain/validation.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace outreach::fhir {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1741597200);  // 2025-03-10T09:00:00Z

v1::Task TaskWith(v1::TaskStatus status, v1::CloseReason reason = v1::CLOSE_REASON_UNSPECIFIED,
                  v1::ContactOutcome closing = v1::CONTACT_OUTCOME_UNSPECIFIED,
                  const std::string& assignee = "") {
  v1::Task task;
  task.set_task_id("t1");
  task.set_patient_id("p1");
  task.set_status(status);
  task.set_close_reason(reason);
  task.set_closing_outcome(closing);
  task.set_assignee(assignee);
  task.set_version(1);
  *task.mutable_created_at() = domain::ToProto(kT0);
  *task.mutable_updated_at() = domain::ToProto(kT0);
  return task;
}

TEST(FhirTaskStatusTest, FollowsTheReadmeTable) {
  EXPECT_EQ(TaskStatus(TaskWith(v1::OPEN)), "requested");
  EXPECT_EQ(TaskStatus(TaskWith(v1::OPEN, {}, {}, "coord-1")), "ready");
  EXPECT_EQ(TaskStatus(TaskWith(v1::OPEN, {}, {}, "group:desk")), "ready");
  EXPECT_EQ(TaskStatus(TaskWith(v1::IN_PROGRESS)), "in-progress");
  EXPECT_EQ(TaskStatus(TaskWith(v1::CLOSED, v1::CONTACT_OUTCOME, v1::SCHEDULED)), "completed");
  EXPECT_EQ(TaskStatus(TaskWith(v1::CLOSED, v1::APPOINTMENT_SCHEDULED)), "completed");
  for (v1::ContactOutcome o : {v1::NO_ANSWER, v1::LEFT_MESSAGE, v1::DID_NOT_SCHEDULE,
                               v1::WRONG_NUMBER}) {
    EXPECT_EQ(TaskStatus(TaskWith(v1::CLOSED, v1::CONTACT_OUTCOME, o)), "failed") << o;
  }
  EXPECT_EQ(TaskStatus(TaskWith(v1::CLOSED, v1::MAX_ATTEMPTS, v1::NO_ANSWER)), "failed");
  for (v1::CloseReason r : {v1::EXPIRED, v1::CANCELLED, v1::CRITERIA_CLEARED}) {
    EXPECT_EQ(TaskStatus(TaskWith(v1::CLOSED, r)), "cancelled") << r;
  }
  EXPECT_EQ(TaskStatus(TaskWith(v1::CLOSED, v1::DO_NOT_CONTACT, v1::REQUESTED_NO_CONTACT)),
            "cancelled");
  EXPECT_EQ(TaskStatus(TaskWith(v1::CLOSED, v1::ENTERED_IN_ERROR)), "entered-in-error");
}

TEST(FhirTaskResourceTest, CancelledCarriesItsReasonAndNotes) {
  v1::Task task = TaskWith(v1::CLOSED, v1::CANCELLED);
  task.set_close_notes("no longer needed");
  *task.mutable_closed_at() = domain::ToProto(kT0 + absl::Hours(1));
  const Json r = TaskResource(task);
  EXPECT_EQ(r["status"], "cancelled");
  EXPECT_EQ(r["statusReason"]["coding"][0]["system"], kCloseReasonSystem);
  EXPECT_EQ(r["statusReason"]["coding"][0]["code"], "CANCELLED");
  EXPECT_EQ(r["statusReason"]["text"], "no longer needed");
  EXPECT_EQ(r["executionPeriod"], Json({{"end", "2025-03-10T10:00:00Z"}}));
  EXPECT_EQ(r["for"]["reference"], "Patient/p1");
  EXPECT_FALSE(r.contains("owner"));
  EXPECT_EQ(r.begin().key(), "resourceType");
}

TEST(FhirTaskResourceTest, OwnerIsAPractitionerOrForAGroupACareTeam) {
  EXPECT_EQ(TaskResource(TaskWith(v1::OPEN, {}, {}, "coord-1"))["owner"]["reference"],
            "Practitioner/coord-1");
  const Json group = TaskResource(TaskWith(v1::OPEN, {}, {}, "group:front-desk"))["owner"];
  EXPECT_EQ(group["reference"], "CareTeam/front-desk");
  EXPECT_EQ(group["identifier"]["system"], kGroupIdSystem);
  EXPECT_EQ(group["identifier"]["value"], "front-desk");
}

TEST(FhirIdTest, KeepsFhirIdsAndHashesTheRest) {
  EXPECT_EQ(FhirId("t-1.a"), "t-1.a");
  const std::string hashed = FhirId("t_1:a");
  EXPECT_EQ(hashed.substr(0, 7), "sha256-");
  EXPECT_EQ(hashed.size(), 47u);
  EXPECT_EQ(FhirId("t_1:a"), hashed);  // stable
  EXPECT_NE(FhirId("t_1:b"), hashed);
  EXPECT_EQ(FhirId(std::string(64, 'a')), std::string(64, 'a'));
  EXPECT_EQ(FhirId(std::string(65, 'a')).substr(0, 7), "sha256-");
}

TEST(FhirInstantTest, SecondsAlwaysFractionsOnlyWhenPresent) {
  EXPECT_EQ(Instant(domain::ToProto(kT0)), "2025-03-10T09:00:00Z");
  EXPECT_EQ(Instant(domain::ToProto(kT0 + absl::Milliseconds(250))),
            "2025-03-10T09:00:00.25Z");
}

TEST(FhirCommunicationTest, NotReachingThePatientIsNotDone) {
  const v1::Task task = TaskWith(v1::IN_PROGRESS);
  v1::Contact contact;
  contact.set_channel(v1::PHONE);
  contact.set_direction(v1::OUTBOUND);
  *contact.mutable_contacted_at() = domain::ToProto(kT0);
  const std::vector<std::pair<v1::ContactOutcome, std::string>> not_done = {
      {v1::NO_ANSWER, "recipient-unavailable"}, {v1::WRONG_NUMBER, "invalid-phone-number"}};
  for (const auto& [outcome, reason] : not_done) {
    contact.set_outcome(outcome);
    const Json c = CommunicationResource(task, contact, "e1");
    EXPECT_EQ(c["status"], "not-done");
    EXPECT_EQ(c["statusReason"]["coding"][0]["system"], kNotDoneReasonSystem);
    EXPECT_EQ(c["statusReason"]["coding"][0]["code"], reason);
  }
  for (v1::ContactOutcome outcome : {v1::LEFT_MESSAGE, v1::DID_NOT_SCHEDULE, v1::SCHEDULED,
                                     v1::REQUESTED_NO_CONTACT}) {
    contact.set_outcome(outcome);
    const Json c = CommunicationResource(task, contact, "e1");
    EXPECT_EQ(c["status"], "completed") << outcome;
    EXPECT_FALSE(c.contains("statusReason")) << outcome;
  }
  contact.set_direction(v1::INBOUND);
  const Json inbound = CommunicationResource(task, contact, "e1");
  EXPECT_EQ(inbound["sender"]["reference"], "Patient/p1");
  EXPECT_EQ(inbound["received"], "2025-03-10T09:00:00Z");
  EXPECT_FALSE(inbound.contains("recipient"));
}

v1::EventRecord Event(uint64_t position, const std::string& task_id, int64_t version) {
  v1::EventRecord e;
  e.set_position(position);
  e.set_task_id(task_id);
  e.set_version(version);
  e.set_event_id(absl::StrCat("e", position));
  e.set_actor("coord-1");
  *e.mutable_recorded_at() = domain::ToProto(kT0 + absl::Minutes(position));
  *e.mutable_occurred_at() = e.recorded_at();
  return e;
}

v1::EventRecord Created(uint64_t position, const std::string& task_id,
                        const std::string& practice) {
  v1::EventRecord e = Event(position, task_id, 1);
  e.mutable_task_created()->set_patient_id("p1");
  e.mutable_task_created()->set_kind(v1::MANUAL);
  e.mutable_task_created()->set_practice_id(practice);
  return e;
}

v1::EventRecord Contacted(uint64_t position, const std::string& task_id, int64_t version) {
  v1::EventRecord e = Event(position, task_id, version);
  e.mutable_contact_logged()->set_outcome(v1::NO_ANSWER);
  e.mutable_contact_logged()->set_follow_up_date("2025-03-20");
  return e;
}

struct Collected {
  std::vector<std::pair<ResourceType, std::string>> lines;
  absl::Status Add(ResourceType type, const std::string& line) {
    lines.emplace_back(type, line);
    return absl::OkStatus();
  }
  std::vector<std::string> Ids(ResourceType type) const {
    std::vector<std::string> ids;
    for (const auto& [t, line] : lines) {
      if (t == type) ids.push_back(Json::parse(line)["id"]);
    }
    return ids;
  }
};

absl::Status Feed(FhirExporter& exporter, const std::vector<v1::EventRecord>& events,
                  Collected& out) {
  auto write = [&](ResourceType type, const std::string& line) {
    return out.Add(type, line);
  };
  for (const v1::EventRecord& e : events) {
    if (absl::Status s = exporter.Add(e, write); !s.ok()) return s;
  }
  return exporter.Finish(write);
}

TEST(FhirExporterTest, FromAndPracticeChooseWhatIsWritten) {
  v1::EventRecord preference = Event(3, "system:patient/north/p1", 1);
  preference.mutable_contact_preference_set()->set_patient_id("p1");
  const std::vector<v1::EventRecord> events = {
      Created(1, "a", "north"), Created(2, "b", "south"), preference, Contacted(4, "a", 2),
      Created(5, "c", "north")};
  FhirExporter all({.practice = "", .from_position = 0});
  Collected everything;
  ASSERT_TRUE(Feed(all, events, everything).ok());
  EXPECT_THAT(everything.Ids(ResourceType::kProvenance),
              ::testing::ElementsAre("e1", "e2", "e4", "e5"));
  EXPECT_THAT(everything.Ids(ResourceType::kTask), ::testing::ElementsAre("a", "b", "c"));
  EXPECT_THAT(everything.Ids(ResourceType::kCommunication), ::testing::ElementsAre("e4"));
  EXPECT_EQ(all.events_read(), 5u);

  FhirExporter later({.practice = "north", .from_position = 4});
  Collected north;
  ASSERT_TRUE(Feed(later, events, north).ok());
  EXPECT_THAT(north.Ids(ResourceType::kProvenance), ::testing::ElementsAre("e4", "e5"));
  EXPECT_THAT(north.Ids(ResourceType::kTask), ::testing::ElementsAre("a", "c"));
  EXPECT_EQ(Json::parse(north.lines[2].second)["meta"]["versionId"], "2");  // a at the head
  EXPECT_EQ(later.count(ResourceType::kTask), 2u);
}

TEST(FhirExporterTest, AnEventThatCannotFollowItsTaskIsDataLoss) {
  FhirExporter exporter({});
  Collected out;
  const absl::Status s = Feed(exporter, {Created(1, "a", "north"), Contacted(2, "a", 3)}, out);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  FhirExporter orphan({});
  EXPECT_EQ(Feed(orphan, {Contacted(1, "a", 1)}, out).code(), absl::StatusCode::kDataLoss);
}

TEST(FhirExporterTest, AWriteErrorStopsTheExport) {
  FhirExporter exporter({});
  auto failing = [](ResourceType, const std::string&) {
    return absl::UnavailableError("disk full");
  };
  EXPECT_EQ(exporter.Add(Created(1, "a", "north"), failing).code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace outreach::fhir
