// The worklist query: ListTasks served from the "worklist" index rows (store/keys.h).
//
// Plan: the most selective scope the query names (patient > assignee > practice > kind; with
// several practices, one scope per practice; every kind's scope when it names none); one key
// range per scope value and requested status, bounded by iterate_upper_bound
// (follow_up_on_or_before caps the day_key); the ranges are k-way merged in (day_key, urgency,
// task_id) order — on one follow-up day URGENT before ROUTINE —, the remaining filters (kind,
// patient, assignee, unassigned, categories, practices) are checked against each row's value,
// and the page's Task rows are read with one MultiGet. Every read uses one snapshot. Never a scan
// of every task; a filter that only a row check serves (unassigned, categories) may read index
// rows it then skips.
//
// Page tokens (opaque to clients):
//   token  := base64url(version: u8 (= 2) | filters: byte[8] | day_key: fixed32_be
//                       | urgency: u8 | task_id)
//   filters := the first 8 bytes of SHA-256 of the query's canonical filters (statuses, kind,
//              patient, assignee, follow_up_on_or_before, practices, categories, unassigned;
//              sets sorted and deduplicated; not page_size)
// The next page starts strictly after (day_key, urgency, task_id). A malformed token (version 1
// tokens, from before the urgency byte, included), or one minted for other filters, is
// INVALID_ARGUMENT naming page_token.
//
// Thread-safe: a pure function of the database snapshot it is given.
#pragma once

#include "absl/status/statusor.h"
#include "rocksdb/db.h"
#include "store/event_store.h"

namespace outreach::store {

inline constexpr int kMaxPageSize = 500;

absl::StatusOr<ListPage> ListWorklist(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* worklist,
                                      rocksdb::ColumnFamilyHandle* tasks,
                                      const rocksdb::Snapshot* snapshot, const ListQuery& query);

}  // namespace outreach::store
