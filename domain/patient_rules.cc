#include "domain/patient_rules.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/ascii.h"
#include "domain/decide_support.h"
#include "domain/validation.h"

namespace outreach::domain {
namespace {

using storage::v1::PatientRow;
using storage::v1::StoredEvent;

PatientKey KeyOf(const std::string& practice_id, const std::string& patient_id) {
  return PatientKey{practice_id.empty() ? kDefaultPracticeId : practice_id, patient_id};
}

const PatientRow* RowOf(const PatientStates& patients, const PatientKey& key) {
  auto it = patients.find(PatientStreamId(key));
  return it == patients.end() ? nullptr : it->second;
}

absl::Status ValidatePatient(const std::string& practice_id, const std::string& patient_id) {
  if (!practice_id.empty()) {
    if (absl::Status s = ValidateId("practice_id", practice_id); !s.ok()) return s;
  }
  return ValidateId("patient_id", patient_id);
}

// The open tasks of `row`, each still open at `now` (an automatic task past its expires_at is
// the expiry's to close), in task id order; `skip` is left out.
absl::StatusOr<std::vector<const v1::Task*>> OpenTasks(const TaskStates& states,
                                                       const PatientRow* row, absl::Time now,
                                                       absl::string_view skip = "") {
  std::vector<const v1::Task*> out;
  if (row == nullptr) return out;
  for (const PatientRow::OpenTask& open : row->open_tasks()) {
    if (open.task_id() == skip) continue;
    auto it = states.find(open.task_id());
    if (it == states.end() || it->second == nullptr) {
      return absl::InternalError(
          absl::StrCat("Decide: no state given for open task \"", open.task_id(), "\""));
    }
    const v1::Task& task = *it->second;
    if (task.status() != v1::CLOSED && !IsExpired(task, now)) out.push_back(&task);
  }
  return out;
}

NewEvent Closing(const v1::Task& task, v1::CloseReason reason, absl::Time occurred_at,
                 const CommandMeta& meta, const std::string& source_ref = "") {
  StoredEvent e = NewEventFor(task.task_id(), occurred_at, meta);
  e.mutable_task_closed()->set_reason(reason);
  e.mutable_task_closed()->set_source_ref(source_ref);
  return NewEvent{std::move(e)};
}

NewEvent PreferenceEvent(const PatientKey& key, bool do_not_contact, const std::string& until,
                         const std::string& reason, absl::Time now, const CommandMeta& meta) {
  StoredEvent e = NewEventFor(PatientStreamId(key), now, meta);
  v1::ContactPreferenceSet* set = e.mutable_contact_preference_set();
  set->set_practice_id(key.practice_id);
  set->set_patient_id(key.patient_id);
  set->set_do_not_contact(do_not_contact);
  set->set_until_date(until);
  set->set_reason(reason);
  return NewEvent{std::move(e)};
}

absl::Status CheckResolveReason(v1::CloseReason reason) {
  if (reason == v1::APPOINTMENT_SCHEDULED || reason == v1::CRITERIA_CLEARED) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "reason: must be APPOINTMENT_SCHEDULED or CRITERIA_CLEARED (got ",
      v1::CloseReason_IsValid(reason) ? v1::CloseReason_Name(reason)
                                      : std::to_string(static_cast<int>(reason)),
      ")"));
}

}  // namespace

std::string PatientStreamId(const PatientKey& patient) {
  return absl::StrCat(kPatientStreamPrefix, patient.practice_id, "/", patient.patient_id);
}

bool IsPatientStream(absl::string_view stream_id) {
  return absl::StartsWith(stream_id, kPatientStreamPrefix);
}

bool DoNotContactHolds(const PatientRow& row, absl::CivilDay today) {
  if (!row.do_not_contact()) return false;
  if (row.until_date().empty()) return true;
  absl::StatusOr<absl::CivilDay> until = ParseDate("until_date", row.until_date());
  return !until.ok() || today < *until;
}

absl::Status ApplyPatient(PatientRow& row, const StoredEvent& event) {
  if (event.payload_case() != StoredEvent::kContactPreferenceSet &&
      event.payload_case() != StoredEvent::kPatientErased) {
    return absl::DataLossError(absl::StrCat("event at position ", event.position(),
                                            ": a patient's stream holds only "
                                            "ContactPreferenceSet and PatientErased events"));
  }
  if (event.version() != row.version() + 1) {
    return absl::DataLossError(absl::StrCat("event at position ", event.position(),
                                            ": version ", event.version(), " follows version ",
                                            row.version(), " of ", event.task_id()));
  }
  if (event.has_patient_erased()) {
    const v1::PatientErased& erased = event.patient_erased();
    row.set_practice_id(erased.practice_id());
    row.set_patient_id(erased.patient_id());
    row.set_erased(true);
    row.set_version(event.version());
    return absl::OkStatus();
  }
  const v1::ContactPreferenceSet& set = event.contact_preference_set();
  row.set_practice_id(set.practice_id());
  row.set_patient_id(set.patient_id());
  row.set_do_not_contact(set.do_not_contact());
  row.set_until_date(set.until_date());
  row.set_reason(set.reason());
  // An encrypted store's reason is sealed (the plain one then empty): the row keeps it so.
  if (event.has_sealed()) {
    row.set_reason_sealed(event.sealed().SerializeAsString());
  } else {
    row.clear_reason_sealed();
  }
  row.set_erased(false);
  row.set_version(event.version());
  return absl::OkStatus();
}

absl::Status ValidateEraseShape(const ErasePatientCommand& c) {
  if (c.patient_id.empty()) return absl::InvalidArgumentError("patient_id: required");
  if (absl::Status s = ValidatePatient(c.practice_id, c.patient_id); !s.ok()) return s;
  if (absl::StripAsciiWhitespace(c.reason).empty()) {
    return absl::InvalidArgumentError("reason: required (why the patient's data is erased)");
  }
  if (absl::Status s = ValidateText("reason", c.reason, kMaxPreferenceReasonLength); !s.ok()) {
    return s;
  }
  return ValidateMeta(c.meta);
}

absl::StatusOr<std::vector<NewEvent>> DecideErase(const TaskStates& states,
                                                  const PatientStates& patients,
                                                  const ErasePatientCommand& c,
                                                  const DecideContext& ctx) {
  const PatientKey key = KeyOf(c.practice_id, c.patient_id);
  const PatientRow* row = RowOf(patients, key);
  if (row == nullptr) {
    return absl::NotFoundError(absl::StrCat("patient_id: practice \"", key.practice_id,
                                            "\" holds no data of patient \"", key.patient_id,
                                            "\""));
  }
  std::vector<NewEvent> out;
  if (row->erased()) return out;  // erasing twice appends nothing
  absl::StatusOr<std::vector<const v1::Task*>> open = OpenTasks(states, row, ctx.now);
  if (!open.ok()) return open.status();
  for (const v1::Task* task : *open) {
    out.push_back(Closing(*task, v1::PATIENT_DATA_ERASED, ctx.now, c.meta));
  }
  StoredEvent e = NewEventFor(PatientStreamId(key), ctx.now, c.meta);
  v1::PatientErased* erased = e.mutable_patient_erased();
  erased->set_practice_id(key.practice_id);
  erased->set_patient_id(key.patient_id);
  erased->set_reason(c.reason);
  out.push_back(NewEvent{std::move(e)});
  return out;
}

absl::Status ValidateResolveShape(const ResolveTasksCommand& c) {
  if (c.patient_id.empty()) return absl::InvalidArgumentError("patient_id: required");
  if (absl::Status s = ValidatePatient(c.practice_id, c.patient_id); !s.ok()) return s;
  for (v1::TaskCategory category : c.categories) {
    if (category == v1::TASK_CATEGORY_UNSPECIFIED || !v1::TaskCategory_IsValid(category)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "categories: ", static_cast<int>(category), " is not a TaskCategory"));
    }
  }
  if (absl::Status s = CheckResolveReason(c.reason); !s.ok()) return s;
  if (absl::Status s = ValidateText("source_ref", c.source_ref, kMaxSourceRefLength); !s.ok()) {
    return s;
  }
  return ValidateMeta(c.meta);
}

absl::Status ValidatePreferenceShape(const SetContactPreferenceCommand& c) {
  if (c.patient_id.empty()) return absl::InvalidArgumentError("patient_id: required");
  if (absl::Status s = ValidatePatient(c.practice_id, c.patient_id); !s.ok()) return s;
  if (!c.until_date.empty()) {
    if (!c.do_not_contact) {
      return absl::InvalidArgumentError(
          "until_date: only with do_not_contact (when do-not-contact ends)");
    }
    if (auto day = ParseDate("until_date", c.until_date); !day.ok()) return day.status();
  }
  if (absl::Status s = ValidateText("reason", c.reason, kMaxPreferenceReasonLength); !s.ok()) {
    return s;
  }
  return ValidateMeta(c.meta);
}

absl::StatusOr<std::vector<NewEvent>> DecideResolve(const TaskStates& states,
                                                    const PatientStates& patients,
                                                    const ResolveTasksCommand& c,
                                                    const DecideContext& ctx) {
  const absl::Time occurred_at = c.occurred_at.value_or(ctx.now);
  if (occurred_at > ctx.now) {
    return absl::InvalidArgumentError(absl::StrCat(
        "occurred_at: ", absl::FormatTime(absl::RFC3339_full, occurred_at, absl::UTCTimeZone()),
        " is in the future"));
  }
  absl::StatusOr<std::vector<const v1::Task*>> open =
      OpenTasks(states, RowOf(patients, KeyOf(c.practice_id, c.patient_id)), ctx.now);
  if (!open.ok()) return open.status();
  std::vector<NewEvent> out;
  for (const v1::Task* task : *open) {
    const bool listed = c.categories.empty() ||
                        std::find(c.categories.begin(), c.categories.end(), task->category()) !=
                            c.categories.end();
    if (listed) out.push_back(Closing(*task, c.reason, occurred_at, c.meta, c.source_ref));
  }
  return out;
}

absl::StatusOr<std::vector<NewEvent>> DecideSetPreference(const TaskStates& states,
                                                          const PatientStates& patients,
                                                          const SetContactPreferenceCommand& c,
                                                          const DecideContext& ctx) {
  if (!c.until_date.empty()) {
    const absl::CivilDay today = absl::ToCivilDay(ctx.now, ZoneOf(ctx, c.practice_id));
    if (*ParseDate("until_date", c.until_date) <= today) {
      return absl::InvalidArgumentError(absl::StrCat("until_date: ", c.until_date,
                                                     " is not after today (",
                                                     FormatDate(today), ")"));
    }
  }
  const PatientKey key = KeyOf(c.practice_id, c.patient_id);
  const PatientRow* row = RowOf(patients, key);
  std::vector<const v1::Task*> closing;
  if (c.do_not_contact) {
    absl::StatusOr<std::vector<const v1::Task*>> open = OpenTasks(states, row, ctx.now);
    if (!open.ok()) return open.status();
    closing = *std::move(open);
  }
  const bool same = row != nullptr && row->version() > 0 &&
                    row->do_not_contact() == c.do_not_contact &&
                    row->until_date() == c.until_date && row->reason() == c.reason;
  std::vector<NewEvent> out;
  if (same && closing.empty()) return out;
  out.push_back(PreferenceEvent(key, c.do_not_contact, c.until_date, c.reason, ctx.now, c.meta));
  for (const v1::Task* task : closing) {
    out.push_back(Closing(*task, v1::DO_NOT_CONTACT, ctx.now, c.meta));
  }
  return out;
}

absl::Status CheckCreateForPatient(const TaskStates& states, const PatientStates& patients,
                                   const CreateTaskCommand& c, const DecideContext& ctx) {
  const PatientKey key = KeyOf(c.practice_id, c.patient_id);
  const PatientRow* row = RowOf(patients, key);
  if (row == nullptr) return absl::OkStatus();
  if (DoNotContactHolds(*row, absl::ToCivilDay(ctx.now, ZoneOf(ctx, c.practice_id)))) {
    return absl::FailedPreconditionError(absl::StrCat(
        "patient_id: patient \"", key.patient_id, "\" is do-not-contact in practice \"",
        key.practice_id, "\"",
        row->until_date().empty() ? "" : absl::StrCat(" until ", row->until_date()),
        ": no task may be created for them"));
  }
  const v1::TaskCategory category =
      c.category == v1::TASK_CATEGORY_UNSPECIFIED ? v1::CUSTOM : c.category;
  if (category == v1::CUSTOM) return absl::OkStatus();
  absl::StatusOr<std::vector<const v1::Task*>> open = OpenTasks(states, row, ctx.now);
  if (!open.ok()) return open.status();
  for (const v1::Task* task : *open) {
    if (task->category() != category) continue;
    absl::Status exists = absl::AlreadyExistsError(absl::StrCat(
        "task \"", task->task_id(), "\" (", v1::TaskCategory_Name(category),
        ") is already open for patient \"", key.patient_id, "\" in practice \"",
        key.practice_id, "\""));
    exists.SetPayload(kExistingTaskIdPayload, absl::Cord(task->task_id()));
    return exists;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<NewEvent>> NoContactEvents(const TaskStates& states,
                                                      const PatientStates& patients,
                                                      const v1::Task& task,
                                                      const LogContactCommand& c,
                                                      const DecideContext& ctx) {
  const PatientKey key = KeyOf(task.practice_id(), task.patient_id());
  absl::StatusOr<std::vector<const v1::Task*>> others =
      OpenTasks(states, RowOf(patients, key), ctx.now, task.task_id());
  if (!others.ok()) return others.status();
  std::vector<NewEvent> out;
  out.push_back(PreferenceEvent(
      key, true, "", absl::StrCat("requested during a contact on task ", task.task_id()), ctx.now,
      c.meta));
  for (const v1::Task* other : *others) {
    out.push_back(Closing(*other, v1::DO_NOT_CONTACT, ctx.now, c.meta));
  }
  return out;
}

}  // namespace outreach::domain
