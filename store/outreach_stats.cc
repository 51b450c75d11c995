#include "store/outreach_stats.h"

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "outreach/v1/storage.pb.h"
#include "rocksdb/db.h"
#include "store/keys.h"
#include "store/rocks.h"

namespace outreach::store {
namespace {

using Request = v1::GetOutreachStatsRequest;

// One group's sums while the rows are read.
struct Sums {
  uint64_t created = 0;
  uint64_t contacted = 0;
  std::map<int, uint64_t> outcomes;
  uint64_t reached = 0;
  std::map<int, uint64_t> reasons;
  uint64_t scheduled = 0;
  std::map<int64_t, uint64_t> first_contact_seconds;  // value -> how many
  std::map<int64_t, uint64_t> scheduled_seconds;
};

// Exact median of the counted values (the mean of the two middle ones for an even count); 0 for
// none.
double Median(const std::map<int64_t, uint64_t>& counts) {
  uint64_t total = 0;
  for (const auto& [value, count] : counts) total += count;
  if (total == 0) return 0;
  // The values at ranks (total - 1) / 2 and total / 2 (0-based).
  const uint64_t low_rank = (total - 1) / 2, high_rank = total / 2;
  std::optional<int64_t> low;
  uint64_t seen = 0;
  for (const auto& [value, count] : counts) {
    seen += count;
    if (!low.has_value() && seen > low_rank) low = value;
    if (seen > high_rank) return (static_cast<double>(*low) + static_cast<double>(value)) / 2;
  }
  return 0;  // not reached
}

uint64_t CountBefore(const google::protobuf::Map<uint32_t, uint64_t>& counts, uint32_t start) {
  uint64_t total = 0;
  for (const auto& [previous, count] : counts) {
    if (previous < start) total += count;
  }
  return total;
}

void Add(const storage::v1::StatsBucket& bucket, bool by_assignee, uint32_t range_start,
         Sums& sums) {
  sums.created += bucket.created();
  for (const auto& [outcome, count] : bucket.contacts_by_outcome()) sums.outcomes[outcome] += count;
  sums.reached += bucket.reached();
  for (const auto& [reason, count] : bucket.closed_by_reason()) sums.reasons[reason] += count;
  sums.scheduled += bucket.scheduled();
  sums.contacted += CountBefore(by_assignee ? bucket.assignee_periods_by_previous()
                                            : bucket.task_periods_by_previous(),
                                range_start);
  for (const auto& [seconds, n] : bucket.first_contact_seconds()) {
    sums.first_contact_seconds[seconds] += n;
  }
  for (const auto& [seconds, n] : bucket.scheduled_seconds()) sums.scheduled_seconds[seconds] += n;
}

v1::OutreachStats ToRow(std::string key, Sums& sums) {
  v1::OutreachStats row;
  row.set_key(std::move(key));
  row.set_tasks_created(sums.created);
  row.set_tasks_contacted(sums.contacted);
  uint64_t contacts = 0;
  for (const auto& [outcome, count] : sums.outcomes) {
    contacts += count;
    (*row.mutable_contacts_by_outcome())[v1::ContactOutcome_Name(outcome)] = count;
  }
  row.set_contacts(contacts);
  row.set_reached(sums.reached);
  uint64_t closed = 0;
  for (const auto& [reason, count] : sums.reasons) {
    closed += count;
    (*row.mutable_closed_by_reason())[v1::CloseReason_Name(reason)] = count;
  }
  row.set_closed(closed);
  row.set_scheduled(sums.scheduled);
  // A task whose patient asked not to be contacted, was filed in error or was erased was never
  // an outreach that could convert.
  const uint64_t excluded = sums.reasons[v1::DO_NOT_CONTACT] +
                            sums.reasons[v1::ENTERED_IN_ERROR] +
                            sums.reasons[v1::PATIENT_DATA_ERASED];
  const uint64_t denominator = closed - excluded;
  row.set_conversion_rate(denominator == 0 ? 0
                                           : static_cast<double>(sums.scheduled) /
                                                 static_cast<double>(denominator));
  row.set_median_hours_to_first_contact(Median(sums.first_contact_seconds) / 3600);
  row.set_median_days_to_scheduled(Median(sums.scheduled_seconds) / 86400);
  row.set_attempts_per_scheduled(sums.scheduled == 0 ? 0
                                                     : static_cast<double>(contacts) /
                                                           static_cast<double>(sums.scheduled));
  return row;
}

// The report's periods and, for DAY, each period's day.
class Range {
 public:
  explicit Range(const StatsQuery& query)
      : zone_(query.time_zone),
        first_(keys::StatsPeriod(absl::FromCivil(query.from, zone_))),
        end_(keys::StatsPeriod(absl::FromCivil(query.to + 1, zone_))) {}
  uint32_t first() const { return first_; }
  uint32_t end() const { return end_; }
  absl::CivilDay DayOf(uint32_t period) const {
    return absl::ToCivilDay(keys::StatsPeriodStart(period), zone_);
  }
  uint32_t DayStart(absl::CivilDay day) const {
    return keys::StatsPeriod(absl::FromCivil(day, zone_));
  }

 private:
  const absl::TimeZone zone_;
  const uint32_t first_;
  const uint32_t end_;
};

// Every practice with rows, in key order.
absl::StatusOr<std::vector<std::string>> AllPractices(rocksdb::DB* db,
                                                     rocksdb::ColumnFamilyHandle* stats,
                                                     const rocksdb::ReadOptions& read) {
  std::vector<std::string> practices;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(read, stats));
  for (it->Seek("b"); it->Valid() && it->key().starts_with("b");) {  // the buckets' keys
    const absl::string_view key = View(it->key());
    const std::size_t end = key.find('\0');
    if (end == absl::string_view::npos) return absl::DataLossError("stats: malformed key");
    practices.emplace_back(key.substr(1, end - 1));
    // The next practice: past every key of this one.
    it->Seek(ToSlice(absl::StrCat(key.substr(0, end), std::string(1, '\1'))));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "listing stats practices");
  return practices;
}

// One row of a practice's range: its period, group and value.
struct StatsRow {
  uint32_t period = 0;
  std::string assignee;
  v1::TaskCategory category = v1::TASK_CATEGORY_UNSPECIFIED;
  absl::string_view value;
};

// Calls `each` for every row of `tag` of `practice` in the range, in key order.
absl::Status ScanRows(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* stats,
                      rocksdb::ReadOptions read, char tag, const std::string& practice,
                      const Range& range, absl::FunctionRef<absl::Status(const StatsRow&)> each) {
  const std::string prefix = keys::StatsPracticePrefix(tag, practice);
  const std::string upper = absl::StrCat(prefix, keys::EncodeFixed32BE(range.end()));
  const rocksdb::Slice upper_slice = ToSlice(upper);
  read.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(read, stats));
  StatsRow row;
  for (it->Seek(ToSlice(absl::StrCat(prefix, keys::EncodeFixed32BE(range.first()))));
       it->Valid(); it->Next()) {
    if (!keys::ParseStatsSuffix(View(it->key()).substr(prefix.size()), &row.period,
                                &row.assignee, &row.category)) {
      return absl::DataLossError(absl::StrCat("stats: malformed key of practice ", practice));
    }
    row.value = View(it->value());
    if (absl::Status s = each(row); !s.ok()) return s;
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading stats");
  return absl::OkStatus();
}

// The group a row counts in, and (DAY) the first period of its day.
std::string GroupOf(const StatsQuery& query, const Range& range, const StatsRow& row,
                    uint32_t* range_start) {
  *range_start = range.first();
  switch (query.group_by) {
    case Request::ASSIGNEE: return row.assignee;
    case Request::CATEGORY: return v1::TaskCategory_Name(row.category);
    case Request::DAY: {
      const absl::CivilDay day = range.DayOf(row.period);
      *range_start = range.DayStart(day);
      return absl::FormatCivilTime(day);
    }
    default: return "";  // NONE
  }
}

absl::Status ScanPractice(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* stats,
                          const rocksdb::ReadOptions& read, const std::string& practice,
                          const StatsQuery& query, const Range& range,
                          std::map<std::string, Sums>& groups) {
  storage::v1::StatsBucket bucket;
  uint32_t range_start = 0;
  absl::Status s = ScanRows(db, stats, read, keys::kStatsBucketTag, practice, range,
                            [&](const StatsRow& row) {
    if (!bucket.ParseFromArray(row.value.data(), static_cast<int>(row.value.size()))) {
      return absl::DataLossError(absl::StrCat("stats: malformed bucket of practice ", practice));
    }
    Sums& sums = groups[GroupOf(query, range, row, &range_start)];
    Add(bucket, query.group_by == Request::ASSIGNEE, range_start, sums);
    return absl::OkStatus();
  });
  return s;
}

}  // namespace

absl::StatusOr<std::vector<v1::OutreachStats>> ComputeOutreachStats(
    rocksdb::DB* db, rocksdb::ColumnFamilyHandle* stats, const rocksdb::Snapshot* snapshot,
    const StatsQuery& query) {
  rocksdb::ReadOptions read;
  read.snapshot = snapshot;
  std::vector<std::string> practices = query.practice_ids;
  if (practices.empty()) {
    absl::StatusOr<std::vector<std::string>> all = AllPractices(db, stats, read);
    if (!all.ok()) return all.status();
    practices = *std::move(all);
  }
  const Range range(query);
  std::map<std::string, Sums> groups;
  if (query.group_by == Request::NONE) groups[""];  // one row even with nothing in the range
  for (const std::string& practice : practices) {
    if (absl::Status s = ScanPractice(db, stats, read, practice, query, range, groups); !s.ok()) {
      return s;
    }
  }
  std::vector<v1::OutreachStats> rows;
  for (auto& [key, sums] : groups) rows.push_back(ToRow(key, sums));
  return rows;
}

}  // namespace outreach::store
