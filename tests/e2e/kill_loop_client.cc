#include "tests/e2e/kill_loop_client.h"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <utility>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "domain/overloaded.h"

namespace outreach::e2e {
namespace {

using domain::Overloaded;
using domain::PatientKey;

constexpr char kPractices[][16] = {"practice-a", "practice-b"};
constexpr v1::TaskCategory kCategories[] = {v1::RECALL_OVERDUE, v1::UNSCHEDULED_TREATMENT,
                                            v1::CUSTOM};
constexpr char kTaskCreated[] = "TaskCreated";
constexpr char kTaskClosed[] = "TaskClosed";
constexpr char kDoNotContactReason[] = "kill loop: asked not to be called";
constexpr char kLiftedReason[] = "kill loop: may be called again";

std::string ContactSummary(v1::ContactOutcome outcome) {
  return absl::StrCat("ContactLogged ", v1::ContactOutcome_Name(outcome));
}

std::string ClosedSummary(v1::CloseReason reason, const std::string& source_ref) {
  return absl::StrCat(kTaskClosed, " ", v1::CloseReason_Name(reason),
                      source_ref.empty() ? "" : " ", source_ref);
}

std::string PreferenceSummary(bool do_not_contact, const std::string& reason) {
  return absl::StrCat("ContactPreferenceSet ", do_not_contact ? "do_not_contact" : "lifted", " (",
                      reason, ")");
}

// The version the call leaves `stream` at, and whether it closes it (a task stream).
int64_t VersionAfter(const Write& write, const std::string& stream) {
  int64_t version = 0;
  for (const ExpectedEvent& event : write.events) {
    if (event.stream == stream) version = std::max(version, event.version);
  }
  return version;
}

bool Closes(const Write& write, const std::string& stream) {
  return std::any_of(write.events.begin(), write.events.end(), [&](const ExpectedEvent& event) {
    return event.stream == stream && absl::StartsWith(event.summary, kTaskClosed);
  });
}

// Records a test failure naming the call when `holds` is false; returns `holds`.
bool Expect(bool holds, const Write& write, const std::string& what) {
  if (!holds) ADD_FAILURE() << write.request_id << " (" << write.kind() << "): " << what;
  return holds;
}

}  // namespace

std::unique_ptr<grpc::ClientContext> KillLoopContext() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  context->AddMetadata("x-actor", kKillLoopActor);
  return context;
}

std::string EventSummary(const v1::EventRecord& record) {
  switch (record.payload_case()) {
    case v1::EventRecord::kTaskCreated:
      return kTaskCreated;
    case v1::EventRecord::kContactLogged:
      return ContactSummary(record.contact_logged().outcome());
    case v1::EventRecord::kTaskClosed:
      return ClosedSummary(record.task_closed().reason(), record.task_closed().source_ref());
    case v1::EventRecord::kTaskAssigned:
      return absl::StrCat("TaskAssigned ", record.task_assigned().assignee());
    case v1::EventRecord::kContactPreferenceSet:
      return PreferenceSummary(record.contact_preference_set().do_not_contact(),
                               record.contact_preference_set().reason());
    case v1::EventRecord::kPatientErased:
      return absl::StrCat("PatientErased ", record.patient_erased().reason());
    case v1::EventRecord::PAYLOAD_NOT_SET:
      break;
  }
  return "no payload";
}

ExpectedEvent ExpectedOf(const v1::EventRecord& record) {
  return ExpectedEvent{record.task_id(), record.version(), EventSummary(record)};
}

const char* Write::kind() const {
  return std::visit(Overloaded{[](const v1::CreateTaskRequest&) { return "create"; },
                               [](const v1::LogContactRequest&) { return "log"; },
                               [](const v1::ResolveTasksRequest&) { return "resolve"; },
                               [](const v1::SetContactPreferenceRequest&) { return "preference"; }},
                    request);
}

Stubs NewStubs(const std::shared_ptr<grpc::Channel>& channel) {
  return Stubs{v1::TaskService::NewStub(channel), v1::PatientService::NewStub(channel)};
}

Answer Send(const Stubs& stubs, const Write& write) {
  Answer answer;
  auto one_task = [&answer](grpc::Status status, v1::Task& task) {
    answer.status = std::move(status);
    if (answer.status.ok()) answer.tasks.push_back(std::move(task));
  };
  std::visit(Overloaded{
                 [&](const v1::CreateTaskRequest& request) {
                   v1::Task task;
                   one_task(stubs.tasks->CreateTask(KillLoopContext().get(), request, &task),
                            task);
                 },
                 [&](const v1::LogContactRequest& request) {
                   v1::Task task;
                   one_task(stubs.tasks->LogContact(KillLoopContext().get(), request, &task),
                            task);
                 },
                 [&](const v1::ResolveTasksRequest& request) {
                   v1::ResolveTasksResponse response;
                   answer.status =
                       stubs.tasks->ResolveTasks(KillLoopContext().get(), request, &response);
                   answer.tasks.assign(response.tasks().begin(), response.tasks().end());
                 },
                 [&](const v1::SetContactPreferenceRequest& request) {
                   answer.status = stubs.patients->SetContactPreference(
                       KillLoopContext().get(), request, &answer.outreach);
                 }},
             write.request);
  return answer;
}

void Client::Init(int index, uint64_t seed) {
  index_ = index;
  rng_.seed(seed);
  for (const char* practice : kPractices) {
    for (int n = 0; n < kPatientsPerPractice; ++n) {
      patients_.push_back(PatientKey{practice, absl::StrCat("c", index, "-p", n)});
    }
  }
}

Write Client::NextWrite(const std::string& follow_up_date) {
  Write write;
  write.request_id = absl::StrCat("c", index_, "-r", next_request_++);
  const double roll = Coin();
  if (open_tasks_.size() < 2) {
    // Few open tasks (many patients may be do-not-contact): mostly creates, and the calls that
    // lift do-not-contact or find nothing to resolve.
    if (roll < 0.65) {
      NewCreate(write);
    } else if (roll < 0.8) {
      NewResolve(write);
    } else {
      NewPreference(write);
    }
  } else if (roll < 0.45) {
    NewLog(write, follow_up_date);
  } else if (roll < 0.72) {
    NewCreate(write);
  } else if (roll < 0.86) {
    NewResolve(write);
  } else {
    NewPreference(write);
  }
  std::sort(write.events.begin(), write.events.end());
  std::sort(write.closed.begin(), write.closed.end());
  return write;
}

void Client::NewCreate(Write& write) {
  const PatientKey patient = AnyPatient();
  const v1::TaskCategory category =
      kCategories[std::uniform_int_distribution<std::size_t>(0, std::size(kCategories) - 1)(rng_)];
  const std::string task_id = absl::StrCat("c", index_, "-t", next_task_++);
  v1::CreateTaskRequest create;
  create.set_task_id(task_id);
  create.set_practice_id(patient.practice_id);
  create.set_patient_id(patient.patient_id);
  create.set_category(category);
  create.set_kind(v1::MANUAL);
  create.set_title("Book annual wellness visit");
  create.set_request_id(write.request_id);
  write.request = std::move(create);
  if (DoNotContact(patient)) {
    write.code = grpc::StatusCode::FAILED_PRECONDITION;
    return;
  }
  if (category != v1::CUSTOM) {
    for (const auto& [id, open] : open_tasks_) {
      if (open.patient == patient && open.category == category) {
        write.code = grpc::StatusCode::ALREADY_EXISTS;
        write.existing_task_id = id;
        return;
      }
    }
  }
  write.events.push_back({task_id, 1, kTaskCreated});
  write.created = OpenTask{patient, category, 1};
}

void Client::NewLog(Write& write, const std::string& follow_up_date) {
  auto it = open_tasks_.begin();
  std::advance(it, std::uniform_int_distribution<std::size_t>(0, open_tasks_.size() - 1)(rng_));
  const std::string task_id = it->first;
  const OpenTask task = it->second;
  v1::LogContactRequest log;
  log.set_task_id(task_id);
  log.set_request_id(write.request_id);
  if (Coin() < 0.5) log.set_expected_version(task.version);
  if (Coin() < 0.25) {
    const double outcome = Coin();
    log.set_outcome(outcome < 0.15  ? v1::REQUESTED_NO_CONTACT
                    : outcome < 0.6 ? v1::SCHEDULED
                                    : v1::DID_NOT_SCHEDULE);
    log.set_notes("Reached; closing.");
    log.set_close_task(true);
  } else {
    log.set_outcome(Coin() < 0.5 ? v1::NO_ANSWER : v1::LEFT_MESSAGE);
    log.set_notes(absl::StrCat("Attempt ", write.request_id));
    log.set_follow_up_date(follow_up_date);
  }
  write.events.push_back({task_id, task.version + 1, ContactSummary(log.outcome())});
  if (log.close_task()) {
    // REQUESTED_NO_CONTACT also makes the patient do-not-contact, closing its other tasks.
    const bool no_contact = log.outcome() == v1::REQUESTED_NO_CONTACT;
    write.events.push_back(
        {task_id, task.version + 2,
         ClosedSummary(no_contact ? v1::DO_NOT_CONTACT : v1::CONTACT_OUTCOME, "")});
    if (no_contact) {
      AddDoNotContact(write, task.patient,
                      absl::StrCat("requested during a contact on task ", task_id), task_id);
    }
  }
  write.request = std::move(log);
}

void Client::NewResolve(Write& write) {
  // Mostly a patient with an open task (else, likely, nothing to resolve).
  const PatientKey patient =
      !open_tasks_.empty() && Coin() < 0.85 ? PatientWithOpenTask() : AnyPatient();
  v1::ResolveTasksRequest resolve;
  resolve.set_practice_id(patient.practice_id);
  resolve.set_patient_id(patient.patient_id);
  resolve.set_reason(Coin() < 0.5 ? v1::APPOINTMENT_SCHEDULED : v1::CRITERIA_CLEARED);
  resolve.set_source_ref(absl::StrCat("appt-", write.request_id));
  resolve.set_request_id(write.request_id);
  // None listed (every category), one, or two.
  const double listed = Coin();
  const std::size_t first =
      std::uniform_int_distribution<std::size_t>(0, std::size(kCategories) - 1)(rng_);
  if (listed >= 0.4) resolve.add_categories(kCategories[first]);
  if (listed >= 0.8) resolve.add_categories(kCategories[(first + 1) % std::size(kCategories)]);
  for (const std::string& id : OpenOf(patient)) {
    const OpenTask& task = open_tasks_.at(id);
    if (!resolve.categories().empty() &&
        std::find(resolve.categories().begin(), resolve.categories().end(), task.category) ==
            resolve.categories().end()) {
      continue;
    }
    write.events.push_back(
        {id, task.version + 1, ClosedSummary(resolve.reason(), resolve.source_ref())});
    write.closed.push_back(id);
  }
  write.request = std::move(resolve);
}

void Client::NewPreference(Write& write) {
  const PatientKey patient = PreferencePatient();
  const std::string stream = domain::PatientStreamId(patient);
  auto found = preferences_.find(stream);
  const Preference before = found == preferences_.end() ? Preference() : found->second;
  // Do-not-contact is mostly lifted once set; sometimes the same preference again (appending
  // nothing when no task needs closing).
  const bool do_not_contact = Coin() < (before.do_not_contact ? 0.15 : 0.5);
  const std::string reason = do_not_contact ? kDoNotContactReason : kLiftedReason;
  v1::SetContactPreferenceRequest set;
  set.set_practice_id(patient.practice_id);
  set.set_patient_id(patient.patient_id);
  set.set_do_not_contact(do_not_contact);
  set.set_reason(reason);
  set.set_request_id(write.request_id);
  write.request = std::move(set);
  const bool same = before.version > 0 && before.do_not_contact == do_not_contact &&
                    before.reason == reason;
  if (same && (!do_not_contact || OpenOf(patient).empty())) return;
  if (do_not_contact) {
    AddDoNotContact(write, patient, reason, "");
    return;
  }
  const Preference after{before.version + 1, false, reason};
  write.events.push_back({stream, after.version, PreferenceSummary(false, reason)});
  write.preference = {stream, after};
}

void Client::AddDoNotContact(Write& write, const PatientKey& patient, const std::string& reason,
                             const std::string& except_task) {
  const std::string stream = domain::PatientStreamId(patient);
  auto found = preferences_.find(stream);
  const Preference after{found == preferences_.end() ? 1 : found->second.version + 1, true,
                         reason};
  write.events.push_back({stream, after.version, PreferenceSummary(true, reason)});
  write.preference = {stream, after};
  for (const std::string& id : OpenOf(patient)) {
    if (id == except_task) continue;
    write.events.push_back(
        {id, open_tasks_.at(id).version + 1, ClosedSummary(v1::DO_NOT_CONTACT, "")});
  }
}

bool Client::Accept(const Write& write, const Answer& answer) {
  const grpc::Status& status = answer.status;
  if (!Expect(status.error_code() == write.code, write,
              absl::StrCat("answered code ", status.error_code(), " (", status.error_message(),
                           "), predicted code ", write.code))) {
    return false;
  }
  if (write.code == grpc::StatusCode::ALREADY_EXISTS) {
    return Expect(absl::StrContains(status.error_message(),
                                    absl::StrCat("\"", write.existing_task_id, "\"")),
                  write, absl::StrCat("ALREADY_EXISTS should name the open task ",
                                      write.existing_task_id, ": ", status.error_message()));
  }
  if (write.code == grpc::StatusCode::FAILED_PRECONDITION) {
    return Expect(absl::StrContains(status.error_message(), "do-not-contact"), write,
                  absl::StrCat("should name do-not-contact: ", status.error_message()));
  }
  const bool as_predicted = std::visit(
      Overloaded{[&](const v1::CreateTaskRequest&) { return CheckTask(write, answer); },
                 [&](const v1::LogContactRequest&) { return CheckTask(write, answer); },
                 [&](const v1::ResolveTasksRequest&) { return CheckResolved(write, answer); },
                 [](const v1::SetContactPreferenceRequest&) { return true; }},
      write.request);
  if (!as_predicted) return false;
  Advance(write);
  // The patient's record is read after the change: compare it with the model moved past it.
  if (!std::holds_alternative<v1::SetContactPreferenceRequest>(write.request)) return true;
  return CheckOutreach(write, answer);
}

bool Client::CheckTask(const Write& write, const Answer& answer) const {
  if (!Expect(answer.tasks.size() == 1, write, "answered no task")) return false;
  const v1::Task& task = answer.tasks.front();
  const std::string task_id = std::visit(
      Overloaded{[](const v1::CreateTaskRequest& r) { return r.task_id(); },
                 [](const v1::LogContactRequest& r) { return r.task_id(); },
                 [](const v1::ResolveTasksRequest&) { return std::string(); },
                 [](const v1::SetContactPreferenceRequest&) { return std::string(); }},
      write.request);
  bool ok = Expect(task.task_id() == task_id, write, "answered task " + task.task_id());
  ok = ok && Expect(task.version() == VersionAfter(write, task_id), write,
                    absl::StrCat("answered version ", task.version(), ", predicted ",
                                 VersionAfter(write, task_id)));
  ok = ok && Expect((task.status() == v1::CLOSED) == Closes(write, task_id), write,
                    "answered status " + v1::TaskStatus_Name(task.status()));
  if (write.created) {
    ok = ok && Expect(task.practice_id() == write.created->patient.practice_id &&
                          task.patient_id() == write.created->patient.patient_id &&
                          task.category() == write.created->category,
                      write, "created another task than asked:\n" + task.DebugString());
  }
  return ok;
}

bool Client::CheckResolved(const Write& write, const Answer& answer) const {
  const auto& resolve = std::get<v1::ResolveTasksRequest>(write.request);
  std::vector<std::string> ids;
  for (const v1::Task& task : answer.tasks) ids.push_back(task.task_id());
  // The answer lists the closed tasks by task_id.
  if (!Expect(ids == write.closed, write,
              absl::StrCat("closed [", absl::StrJoin(ids, ", "), "], predicted [",
                           absl::StrJoin(write.closed, ", "), "]"))) {
    return false;
  }
  bool ok = true;
  for (const v1::Task& task : answer.tasks) {
    ok = ok && Expect(task.status() == v1::CLOSED && task.close_reason() == resolve.reason() &&
                          task.close_source_ref() == resolve.source_ref() &&
                          task.version() == VersionAfter(write, task.task_id()) &&
                          task.practice_id() == resolve.practice_id() &&
                          task.patient_id() == resolve.patient_id(),
                      write, "answered a task not closed as asked:\n" + task.DebugString());
  }
  return ok;
}

bool Client::CheckOutreach(const Write& write, const Answer& answer) const {
  const auto& set = std::get<v1::SetContactPreferenceRequest>(write.request);
  const v1::PatientOutreach& outreach = answer.outreach;
  const PatientKey patient{set.practice_id(), set.patient_id()};
  std::vector<std::string> open;
  for (const v1::Task& task : outreach.open_tasks()) open.push_back(task.task_id());
  return Expect(outreach.practice_id() == patient.practice_id &&
                    outreach.patient_id() == patient.patient_id &&
                    outreach.do_not_contact() == set.do_not_contact() &&
                    outreach.reason() == set.reason() && outreach.until_date().empty() &&
                    open == OpenOf(patient),
                write,
                absl::StrCat("answered a record other than predicted (open tasks [",
                             absl::StrJoin(OpenOf(patient), ", "), "]):\n",
                             outreach.DebugString()));
}

void Client::Advance(const Write& write) {
  // Sorted by stream, then version: a task's contact comes before its closing.
  for (const ExpectedEvent& event : write.events) {
    if (domain::IsPatientStream(event.stream)) continue;
    if (absl::StartsWith(event.summary, kTaskClosed)) {
      open_tasks_.erase(event.stream);
    } else if (event.summary == kTaskCreated) {
      open_tasks_.emplace(event.stream, *write.created);
    } else {
      open_tasks_.at(event.stream).version = event.version;
    }
  }
  if (write.preference) preferences_[write.preference->first] = write.preference->second;
}

bool Client::DoNotContact(const PatientKey& patient) const {
  auto found = preferences_.find(domain::PatientStreamId(patient));
  return found != preferences_.end() && found->second.do_not_contact;
}

std::vector<std::string> Client::OpenOf(const PatientKey& patient) const {
  std::vector<std::string> out;
  for (const auto& [id, open] : open_tasks_) {
    if (open.patient == patient) out.push_back(id);
  }
  return out;
}

const PatientKey& Client::AnyPatient() {
  return patients_[std::uniform_int_distribution<std::size_t>(0, patients_.size() - 1)(rng_)];
}

const PatientKey& Client::PatientWithOpenTask() {
  auto it = open_tasks_.begin();
  std::advance(it, std::uniform_int_distribution<std::size_t>(0, open_tasks_.size() - 1)(rng_));
  return it->second.patient;
}

const PatientKey& Client::PreferencePatient() {
  // Half the time a patient with open tasks (do-not-contact closes them in the same batch);
  // else mostly a do-not-contact patient, to lift it, so that creates keep happening.
  if (!open_tasks_.empty() && Coin() < 0.5) return PatientWithOpenTask();
  std::vector<const PatientKey*> held;
  for (const PatientKey& patient : patients_) {
    if (DoNotContact(patient)) held.push_back(&patient);
  }
  if (held.empty() || Coin() < 0.2) return AnyPatient();
  return *held[std::uniform_int_distribution<std::size_t>(0, held.size() - 1)(rng_)];
}

double Client::Coin() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }

}  // namespace outreach::e2e
