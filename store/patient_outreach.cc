#include "store/patient_outreach.h"

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "domain/task_rules.h"
#include "store/keys.h"
#include "store/projections/patients.h"
#include "store/rocks.h"

namespace outreach::store {
namespace {

// The rows of one read view.
class SnapshotRows final : public RowReader {
 public:
  SnapshotRows(const Database& database, const rocksdb::ReadOptions& read)
      : database_(database), read_(read) {}
  absl::StatusOr<std::optional<std::string>> Get(keys::Cf family,
                                                 absl::string_view key) const override {
    std::string value;
    const rocksdb::Status s =
        database_.db()->Get(read_, database_.cf(family), ToSlice(key), &value);
    if (s.IsNotFound()) return std::nullopt;
    if (!s.ok()) return FromRocks(s, "reading a projection row");
    return value;
  }

 private:
  const Database& database_;
  const rocksdb::ReadOptions& read_;
};

}  // namespace

absl::StatusOr<v1::PatientOutreach> ReadPatientOutreach(const Database& database,
                                                        absl::string_view practice_id,
                                                        absl::string_view patient_id,
                                                        absl::CivilDay today,
                                                        const Privacy* privacy) {
  const Database::ReadView view(database);
  const SnapshotRows rows(database, view.options());
  v1::PatientOutreach out;
  out.set_practice_id(std::string(practice_id));
  out.set_patient_id(std::string(patient_id));
  absl::StatusOr<std::optional<storage::v1::PatientRow>> row =
      ReadPatientRow(rows, practice_id, patient_id);
  if (!row.ok()) return row.status();
  if (!row->has_value()) return out;
  const storage::v1::PatientRow& r = **row;
  out.set_do_not_contact(domain::DoNotContactHolds(r, today));
  out.set_until_date(r.until_date());
  out.set_reason(r.reason());
  if (r.has_last_contacted_at()) *out.mutable_last_contacted_at() = r.last_contacted_at();
  out.set_last_outcome(r.last_outcome());
  out.set_total_attempts(r.total_attempts());
  for (const storage::v1::PatientRow::OpenTask& open : r.open_tasks()) {
    absl::StatusOr<std::optional<std::string>> raw = rows.Get(keys::kTasks, open.task_id());
    if (!raw.ok()) return raw.status();
    if (!raw->has_value() || !out.add_open_tasks()->ParseFromString(**raw)) {
      return absl::DataLossError(absl::StrCat("patients: open task \"", open.task_id(),
                                              "\" has no readable row"));
    }
  }
  if (privacy != nullptr) {
    if (absl::Status s = privacy->Reveal(out, r); !s.ok()) return s;
  }
  return out;
}

}  // namespace outreach::store
