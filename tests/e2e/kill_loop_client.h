// The kill loop's clients (tests/e2e/kill_loop_test.cc): what each one sends, and what it expects
// of every answer.
//
// A client owns a few patients (ids "c<index>-p<n>") in two practices and is the only writer of
// their tasks and contact preferences, one call at a time. So it knows their state exactly (its
// model: the open tasks with their versions, and each patient's preference), and predicts each
// call from it before sending: the status code (CreateTask is ALREADY_EXISTS while a task of the
// same non-CUSTOM category is open for the patient, FAILED_PRECONDITION while the patient is
// do-not-contact) and the events the call appends, each as (stream, version, summary). A call a
// kill leaves in doubt keeps its prediction until its retry: nothing else touches those streams,
// so the retry's answer must be the predicted one whether or not the first attempt had landed.
//
// The mix: CreateTask, LogContact (with a follow-up date, or log-and-close, sometimes with
// REQUESTED_NO_CONTACT), ResolveTasks, and SetContactPreference (setting and lifting
// do-not-contact). Client is not thread-safe: one thread drives it at a time.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "domain/task_rules.h"
#include "outreach/v1/events.pb.h"
#include "outreach/v1/patient_service.grpc.pb.h"
#include "outreach/v1/task_service.grpc.pb.h"

namespace outreach::e2e {

// The actor every call of the kill loop runs as (x-actor; the server has no principals file).
inline constexpr char kKillLoopActor[] = "kill-loop";

// A client context with the kill loop's actor and a deadline.
std::unique_ptr<grpc::ClientContext> KillLoopContext();

// One event as the kill loop compares it: the stream, its version there, and a summary of the
// payload (EventSummary).
struct ExpectedEvent {
  std::string stream;
  int64_t version = 0;
  std::string summary;
  auto operator<=>(const ExpectedEvent&) const = default;
};

// "TaskCreated", "ContactLogged NO_ANSWER", "TaskClosed APPOINTMENT_SCHEDULED appt-c0-r7",
// "ContactPreferenceSet do_not_contact <reason>", ...: what the checks compare of a payload.
std::string EventSummary(const v1::EventRecord& record);
ExpectedEvent ExpectedOf(const v1::EventRecord& record);

// A patient's contact preference as the client last set it.
struct Preference {
  int64_t version = 0;  // of the patient's stream; 0 = never set
  bool do_not_contact = false;
  std::string reason;
};

// An open task of the client's, as the client last saw it.
struct OpenTask {
  domain::PatientKey patient;
  v1::TaskCategory category = v1::TASK_CATEGORY_UNSPECIFIED;
  int64_t version = 0;
};

using Request = std::variant<v1::CreateTaskRequest, v1::LogContactRequest,
                             v1::ResolveTasksRequest, v1::SetContactPreferenceRequest>;

// One call, and its predicted answer.
struct Write {
  std::string request_id;
  Request request;
  grpc::StatusCode code = grpc::StatusCode::OK;
  std::string existing_task_id;       // with ALREADY_EXISTS: the open task it names
  std::vector<ExpectedEvent> events;  // sorted; empty when the call appends nothing
  std::vector<std::string> closed;    // ResolveTasks: the tasks it returns, sorted
  std::optional<OpenTask> created;    // a CreateTask that creates
  // The patient preference it sets: the patient's stream and the preference after it.
  std::optional<std::pair<std::string, Preference>> preference;

  const char* kind() const;  // "create", "log", "resolve" or "preference"
};

// The answer to one call: the tasks (CreateTask and LogContact: the task; ResolveTasks: the
// tasks it closed) or the patient's record (SetContactPreference).
struct Answer {
  grpc::Status status;
  std::vector<v1::Task> tasks;
  v1::PatientOutreach outreach;
};

struct Stubs {
  std::unique_ptr<v1::TaskService::Stub> tasks;
  std::unique_ptr<v1::PatientService::Stub> patients;
};
Stubs NewStubs(const std::shared_ptr<grpc::Channel>& channel);
Answer Send(const Stubs& stubs, const Write& write);

class Client {
 public:
  static constexpr int kPatientsPerPractice = 3;

  void Init(int index, uint64_t seed);

  // The next call, predicted from the model. `follow_up_date` is for contacts that keep the
  // task open.
  Write NextWrite(const std::string& follow_up_date);

  // Compares the answer (not UNAVAILABLE) with the prediction; when they agree, moves the model
  // past the call and returns true. Otherwise records a test failure naming the request.
  bool Accept(const Write& write, const Answer& answer);

  const std::map<std::string, OpenTask>& open_tasks() const { return open_tasks_; }
  // By the patient's stream id (domain::PatientStreamId); absent = never set.
  const std::map<std::string, Preference>& preferences() const { return preferences_; }
  const std::vector<domain::PatientKey>& patients() const { return patients_; }
  bool DoNotContact(const domain::PatientKey& patient) const;

  // A call a kill left in doubt, retried after the restart.
  std::optional<Write> in_doubt;
  // The latest acknowledged ResolveTasks that closed tasks, and its answer, re-sent (a replay)
  // after the next restart.
  std::optional<std::pair<Write, Answer>> resolved;

 private:
  void NewCreate(Write& write);
  void NewLog(Write& write, const std::string& follow_up_date);
  void NewResolve(Write& write);
  void NewPreference(Write& write);
  void AddDoNotContact(Write& write, const domain::PatientKey& patient, const std::string& reason,
                       const std::string& except_task);
  bool CheckTask(const Write& write, const Answer& answer) const;
  bool CheckResolved(const Write& write, const Answer& answer) const;
  bool CheckOutreach(const Write& write, const Answer& answer) const;
  void Advance(const Write& write);
  std::vector<std::string> OpenOf(const domain::PatientKey& patient) const;
  const domain::PatientKey& AnyPatient();
  const domain::PatientKey& PatientWithOpenTask();  // only with open tasks
  const domain::PatientKey& PreferencePatient();
  double Coin();

  int index_ = 0;
  std::mt19937_64 rng_;
  int next_task_ = 0;
  int next_request_ = 0;
  std::vector<domain::PatientKey> patients_;
  std::map<std::string, OpenTask> open_tasks_;     // task_id -> the task
  std::map<std::string, Preference> preferences_;  // patient stream -> preference
};

}  // namespace outreach::e2e
