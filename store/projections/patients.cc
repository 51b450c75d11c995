#include "store/projections/patients.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "domain/task_rules.h"
#include "domain/validation.h"
#include "store/log_fold.h"

namespace outreach::store {
namespace {

using storage::v1::PatientRow;
using storage::v1::StoredEvent;

void AddOpenTask(PatientRow& row, const std::string& task_id, v1::TaskCategory category) {
  auto* open = row.mutable_open_tasks();
  auto at = std::lower_bound(open->begin(), open->end(), task_id,
                             [](const PatientRow::OpenTask& t, const std::string& id) {
                               return t.task_id() < id;
                             });
  if (at != open->end() && at->task_id() == task_id) {
    at->set_category(category);
    return;
  }
  const int index = static_cast<int>(at - open->begin());
  PatientRow::OpenTask* added = open->Add();
  added->set_task_id(task_id);
  added->set_category(category);
  for (int i = open->size() - 1; i > index; --i) open->SwapElements(i, i - 1);
}

void RemoveOpenTask(PatientRow& row, const std::string& task_id) {
  auto* open = row.mutable_open_tasks();
  for (int i = 0; i < open->size(); ++i) {
    if (open->Get(i).task_id() != task_id) continue;
    open->DeleteSubrange(i, 1);
    return;
  }
}

// A contact: one more attempt, and the latest contact by contacted_at (a later event at the same
// time wins), as domain/task_apply.cc keeps them on the task.
void CountContact(PatientRow& row, const StoredEvent& event) {
  row.set_total_attempts(row.total_attempts() + 1);
  const absl::Time at = domain::FromProto(event.occurred_at());
  if (!row.has_last_contacted_at() || at >= domain::FromProto(row.last_contacted_at())) {
    *row.mutable_last_contacted_at() = event.occurred_at();
    row.set_last_outcome(event.contact_logged().outcome());
  }
}

void SetPreference(PatientRow& row, const PatientRow& preference) {
  row.set_version(preference.version());
  row.set_do_not_contact(preference.do_not_contact());
  row.set_until_date(preference.until_date());
  row.set_reason(preference.reason());
  row.set_reason_sealed(preference.reason_sealed());
  row.set_erased(preference.erased());
}

PatientRow NewRow(absl::string_view practice_id, absl::string_view patient_id) {
  PatientRow row;
  row.set_practice_id(std::string(practice_id));
  row.set_patient_id(std::string(patient_id));
  return row;
}

// The fold: every patient's row, following the events in log order.
class PatientsFold final : public ProjectionFold {
 public:
  absl::Status OnEvent(const StoredEvent& event, uint64_t /*position*/) override {
    switch (event.payload_case()) {
      case StoredEvent::kTaskCreated: {
        const v1::TaskCreated& created = event.task_created();
        std::string key = keys::PatientKey(created.practice_id(), created.patient_id());
        auto [row, inserted] = rows_.try_emplace(key);
        if (inserted) row->second = NewRow(created.practice_id(), created.patient_id());
        AddOpenTask(row->second, event.task_id(), created.category());
        row->second.set_erased(false);  // seen again after an erasure
        task_rows_[event.task_id()] = std::move(key);
        return absl::OkStatus();
      }
      case StoredEvent::kContactLogged:
        if (PatientRow* row = RowOfTask(event.task_id())) CountContact(*row, event);
        return absl::OkStatus();
      case StoredEvent::kTaskClosed:
        if (PatientRow* row = RowOfTask(event.task_id())) RemoveOpenTask(*row, event.task_id());
        return absl::OkStatus();
      case StoredEvent::kContactPreferenceSet:
        return OnPreference(event, event.contact_preference_set().practice_id(),
                            event.contact_preference_set().patient_id());
      case StoredEvent::kPatientErased:
        return OnPreference(event, event.patient_erased().practice_id(),
                            event.patient_erased().patient_id());
      case StoredEvent::kTaskAssigned:
      case StoredEvent::PAYLOAD_NOT_SET:
        return absl::OkStatus();
    }
    return absl::OkStatus();
  }

  absl::Status Finish(const FoldedLog& /*folded*/) override {
    for (const auto& [key, row] : rows_) rows_out_.Add(key, keys::EncodePatientRow(row));
    rows_.clear();
    task_rows_.clear();
    rows_out_.Sort();
    return absl::OkStatus();
  }
  const RowBuffer& rows() const { return rows_out_; }

 private:
  PatientRow* RowOfTask(const std::string& task_id) {
    auto key = task_rows_.find(task_id);
    if (key == task_rows_.end()) return nullptr;
    return &rows_[key->second];
  }

  // An event of the patient's own stream.
  absl::Status OnPreference(const StoredEvent& event, const std::string& practice_id,
                            const std::string& patient_id) {
    auto [row, inserted] = rows_.try_emplace(keys::PatientKey(practice_id, patient_id));
    if (inserted) row->second = NewRow(practice_id, patient_id);
    PatientRow preference = row->second;
    if (absl::Status s = domain::ApplyPatient(preference, event); !s.ok()) return s;
    SetPreference(row->second, preference);
    return absl::OkStatus();
  }

  absl::flat_hash_map<std::string, PatientRow> rows_;
  absl::flat_hash_map<std::string, std::string> task_rows_;  // task id -> its patient's key
  RowBuffer rows_out_;
};

class PatientsProjectionImpl final : public Projection {
 public:
  absl::string_view name() const override { return "patients"; }
  absl::Span<const FamilySpec> families() const override { return kFamilies; }

  absl::Status OnCommand(const CommandChange& change, SortedRows& rows) const override {
    for (const StreamChange& stream : change.streams) {
      if (absl::Status s = OnStream(stream, *change.rows, rows); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  std::unique_ptr<ProjectionFold> StartFold() const override {
    return std::make_unique<PatientsFold>();
  }

  absl::Status Emit(const FoldedLog& /*folded*/, const ProjectionFold* own,
                    RowSink emit) const override {
    const RowBuffer& rows = static_cast<const PatientsFold*>(own)->rows();
    for (std::size_t i = 0; i < rows.size(); ++i) {
      if (absl::Status s = emit(keys::kPatients, rows.key(i), rows.value(i)); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  static absl::Status OnStream(const StreamChange& stream, const RowReader& reader,
                               SortedRows& rows) {
    const bool task = stream.after != nullptr;
    const std::string& practice_id =
        task ? stream.after->practice_id() : stream.patient->practice_id();
    const std::string& patient_id =
        task ? stream.after->patient_id() : stream.patient->patient_id();
    absl::StatusOr<std::optional<PatientRow>> stored =
        ReadPatientRow(reader, practice_id, patient_id);
    if (!stored.ok()) return stored.status();
    PatientRow row = stored->has_value() ? **std::move(stored) : NewRow(practice_id, patient_id);
    if (!task) {
      SetPreference(row, *stream.patient);
    } else {
      for (const StoredEvent* event : stream.events) {
        if (event->has_contact_logged()) CountContact(row, *event);
        if (event->has_task_created()) row.set_erased(false);  // seen again after an erasure
      }
      if (stream.after->status() == v1::CLOSED) {
        RemoveOpenTask(row, stream.after->task_id());
      } else {
        AddOpenTask(row, stream.after->task_id(), stream.after->category());
      }
    }
    rows.Put(keys::kPatients, keys::PatientKey(practice_id, patient_id),
             keys::EncodePatientRow(row));
    return absl::OkStatus();
  }

  static constexpr FamilySpec kFamilies[] = {{keys::kPatients, FamilyReads::kPointLookups}};
};

}  // namespace

const Projection& PatientsProjection() {
  static const PatientsProjectionImpl kProjection;
  return kProjection;
}

absl::StatusOr<std::optional<PatientRow>> ReadPatientRow(const RowReader& rows,
                                                         absl::string_view practice_id,
                                                         absl::string_view patient_id) {
  absl::StatusOr<std::optional<std::string>> raw =
      rows.Get(keys::kPatients, keys::PatientKey(practice_id, patient_id));
  if (!raw.ok()) return raw.status();
  if (!raw->has_value()) return std::nullopt;
  PatientRow row;
  if (!row.ParseFromString(**raw)) {
    return absl::DataLossError(absl::StrCat("patients: row for \"", practice_id, "\"/\"",
                                            patient_id, "\" is malformed"));
  }
  return row;
}

}  // namespace outreach::store
