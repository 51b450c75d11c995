// GetOutreachStats from the "stats" rows (store/projections/outreach_stats.h): one range scan
// per practice over the 15-minute periods of the report's days in its time zone, summed in
// memory by group. Medians are exact (the rows keep every sample). Reads only; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "outreach/v1/report_service.pb.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class Snapshot;
}  // namespace rocksdb

namespace outreach::store {

struct StatsQuery {
  std::vector<std::string> practice_ids;  // empty = every practice in the rows
  absl::CivilDay from;                    // inclusive
  absl::CivilDay to;                      // inclusive; checked by the caller (from <= to)
  v1::GetOutreachStatsRequest::GroupBy group_by = v1::GetOutreachStatsRequest::NONE;
  absl::TimeZone time_zone = absl::UTCTimeZone();
};

// The report's rows: NONE one row (key ""), otherwise one per key seen, by key.
absl::StatusOr<std::vector<v1::OutreachStats>> ComputeOutreachStats(
    rocksdb::DB* db, rocksdb::ColumnFamilyHandle* stats, const rocksdb::Snapshot* snapshot,
    const StatsQuery& query);

}  // namespace outreach::store
