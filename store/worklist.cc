#include "store/worklist.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "store/event_codec.h"
#include "store/keys.h"
#include "store/rocks.h"

namespace outreach::store {
namespace {

// Version 1 tokens (format 4's index, without the urgency byte) are refused as malformed.
constexpr uint8_t kTokenVersion = 2;
constexpr std::size_t kFilterHashSize = 8;

struct Cursor {
  uint32_t day_key = 0;
  uint8_t urgency = 0;
  std::string task_id;
};

// One status's key range of the chosen scope, with its own iterator.
struct Range {
  std::string prefix;
  std::string lower;
  std::string upper;
  rocksdb::Slice upper_slice;  // points into `upper`; must outlive `it`
  std::unique_ptr<rocksdb::Iterator> it;
};

template <class T>
std::vector<T> SortedUnique(std::vector<T> values) {
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  return values;
}

// The query's sets in canonical form (sorted, each value once): what the plan and the page
// token's filter hash read.
struct Filters {
  std::vector<v1::TaskStatus> statuses;  // never empty
  std::vector<std::string> practice_ids;
  std::vector<v1::TaskCategory> categories;
};

Filters FiltersOf(const ListQuery& query) {
  Filters filters;
  filters.statuses = SortedUnique(query.statuses);
  if (filters.statuses.empty()) filters.statuses = {v1::OPEN, v1::IN_PROGRESS};
  filters.practice_ids = SortedUnique(query.practice_ids);
  filters.categories = SortedUnique(query.categories);
  return filters;
}

absl::Status CheckQuery(const ListQuery& query, const Filters& filters) {
  for (v1::TaskStatus status : filters.statuses) {
    if (status == v1::TASK_STATUS_UNSPECIFIED || !v1::TaskStatus_IsValid(status)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "statuses: ", static_cast<int>(status), " is not OPEN, IN_PROGRESS or CLOSED"));
    }
  }
  if (query.kind != v1::TASK_KIND_UNSPECIFIED && !v1::TaskKind_IsValid(query.kind)) {
    return absl::InvalidArgumentError(
        absl::StrCat("kind: ", static_cast<int>(query.kind), " is not MANUAL or AUTOMATIC"));
  }
  for (v1::TaskCategory category : filters.categories) {
    if (category == v1::TASK_CATEGORY_UNSPECIFIED || !v1::TaskCategory_IsValid(category)) {
      return absl::InvalidArgumentError(
          absl::StrCat("categories: ", static_cast<int>(category), " is not a TaskCategory"));
    }
  }
  if (query.unassigned && !query.assignee.empty()) {
    return absl::InvalidArgumentError(
        "unassigned: cannot be combined with assignee (a task has one assignee or none)");
  }
  if (query.page_size < 1 || query.page_size > kMaxPageSize) {
    return absl::InvalidArgumentError(absl::StrCat("page_size: ", query.page_size,
                                                   " is not between 1 and ", kMaxPageSize));
  }
  return absl::OkStatus();
}

// Identifies the query's filters, so that a token cannot be replayed against another query.
std::string FilterHash(const ListQuery& query, const Filters& filters) {
  std::string canonical = "worklist-v2";
  canonical.push_back('\0');
  for (v1::TaskStatus status : filters.statuses) canonical.push_back(static_cast<char>(status));
  canonical.push_back('\0');
  canonical.push_back(static_cast<char>(query.kind));
  absl::StrAppend(&canonical, query.patient_id);
  canonical.push_back('\0');
  absl::StrAppend(&canonical, query.assignee);
  canonical.push_back('\0');
  absl::StrAppend(&canonical, query.follow_up_on_or_before.has_value()
                       ? keys::EncodeFixed32BE(keys::DayKey(*query.follow_up_on_or_before))
                       : std::string("none"));
  canonical.push_back('\0');
  for (const std::string& practice : filters.practice_ids) {
    absl::StrAppend(&canonical, practice);
    canonical.push_back('\0');  // ids hold no '\0'
  }
  canonical.push_back('\0');
  for (v1::TaskCategory category : filters.categories) {
    canonical.push_back(static_cast<char>(category));
  }
  canonical.push_back('\0');
  canonical.push_back(query.unassigned ? 'u' : '-');
  return std::string(AsBytes(Sha256(canonical)).substr(0, kFilterHashSize));
}

std::string EncodeToken(absl::string_view filter_hash, const Cursor& cursor) {
  std::string raw;
  raw.push_back(static_cast<char>(kTokenVersion));
  absl::StrAppend(&raw, filter_hash);
  absl::StrAppend(&raw, keys::EncodeFixed32BE(cursor.day_key));
  raw.push_back(static_cast<char>(cursor.urgency));
  absl::StrAppend(&raw, cursor.task_id);
  return absl::WebSafeBase64Escape(raw);
}

absl::StatusOr<Cursor> DecodeToken(absl::string_view token, absl::string_view filter_hash) {
  std::string raw;
  constexpr std::size_t kFixed = 1 + kFilterHashSize + 4 + 1;
  if (!absl::WebSafeBase64Unescape(token, &raw) || raw.size() <= kFixed ||
      static_cast<uint8_t>(raw[0]) != kTokenVersion) {
    return absl::InvalidArgumentError("page_token: malformed (pass next_page_token unchanged)");
  }
  if (absl::string_view(raw).substr(1, kFilterHashSize) != filter_hash) {
    return absl::InvalidArgumentError(
        "page_token: was issued for a query with other filters (keep the filters unchanged "
        "while paging)");
  }
  Cursor cursor;
  keys::DecodeFixed32BE(absl::string_view(raw).substr(1 + kFilterHashSize, 4), &cursor.day_key);
  cursor.urgency = static_cast<uint8_t>(raw[kFixed - 1]);
  cursor.task_id = raw.substr(kFixed);
  return cursor;
}

// The smallest key that is greater than every key starting with `prefix` (whose last byte, a
// status number, is never 0xFF).
std::string PrefixSuccessor(std::string prefix) {
  prefix.back() = static_cast<char>(static_cast<uint8_t>(prefix.back()) + 1);
  return prefix;
}

// The most selective scope the query names, and its values; the other filters are checked per
// row. Practices: one scope per practice, merged. Without any, every kind's scope: together they
// hold every task once.
std::pair<keys::Scope, std::vector<std::string>> ScopeOf(const ListQuery& query,
                                                         const Filters& filters) {
  if (!query.patient_id.empty()) return {keys::Scope::kPatient, {query.patient_id}};
  if (!query.assignee.empty()) return {keys::Scope::kAssignee, {query.assignee}};
  if (!filters.practice_ids.empty()) return {keys::Scope::kPractice, filters.practice_ids};
  if (query.kind != v1::TASK_KIND_UNSPECIFIED) {
    return {keys::Scope::kKind, {keys::KindScopeValue(query.kind)}};
  }
  std::vector<std::string> values;
  const google::protobuf::EnumDescriptor* kinds = v1::TaskKind_descriptor();
  for (int i = 0; i < kinds->value_count(); ++i) {
    const int kind = kinds->value(i)->number();
    if (kind != v1::TASK_KIND_UNSPECIFIED) {
      values.push_back(keys::KindScopeValue(static_cast<v1::TaskKind>(kind)));
    }
  }
  return {keys::Scope::kKind, std::move(values)};
}

// One open range per scope value and status, each positioned after the cursor `after`.
std::vector<std::unique_ptr<Range>> OpenRanges(rocksdb::DB* db,
                                               rocksdb::ColumnFamilyHandle* worklist,
                                               const rocksdb::Snapshot* snapshot,
                                               const ListQuery& query, const Filters& filters,
                                               const std::optional<Cursor>& after) {
  const auto [scope, scope_values] = ScopeOf(query, filters);
  std::vector<std::unique_ptr<Range>> ranges;
  for (const std::string& scope_value : scope_values) {
    for (v1::TaskStatus status : filters.statuses) {
      auto range = std::make_unique<Range>();
      range->prefix = keys::WorklistPrefix(scope, scope_value, status);
      // The least key of the day after follow_up_on_or_before.
      range->upper = query.follow_up_on_or_before.has_value()
                         ? absl::StrCat(range->prefix, keys::EncodeFixed32BE(keys::DayKey(
                                                           *query.follow_up_on_or_before) +
                                                       1))
                         : PrefixSuccessor(range->prefix);
      // task_id + '\0' is the least key after task_id: ids never contain '\0'.
      range->lower = after.has_value() ? keys::WorklistKey(range->prefix, after->day_key,
                                                           after->urgency, after->task_id + '\0')
                                       : range->prefix;
      if (range->lower >= range->upper) continue;
      range->upper_slice = rocksdb::Slice(range->upper);
      rocksdb::ReadOptions read;
      read.snapshot = snapshot;
      read.iterate_upper_bound = &range->upper_slice;
      range->it.reset(db->NewIterator(read, worklist));
      range->it->Seek(range->lower);
      ranges.push_back(std::move(range));
    }
  }
  return ranges;
}

// Whether a row's value passes the filters its scope does not serve.
bool Keeps(const ListQuery& query, const Filters& filters, const keys::WorklistValue& value) {
  if (query.kind != v1::TASK_KIND_UNSPECIFIED && value.kind != query.kind) return false;
  if (!query.patient_id.empty() && value.patient_id != query.patient_id) return false;
  if (!query.assignee.empty() && value.assignee != query.assignee) return false;
  if (query.unassigned && !value.assignee.empty()) return false;
  if (!filters.categories.empty() &&
      !std::binary_search(filters.categories.begin(), filters.categories.end(), value.category)) {
    return false;
  }
  return filters.practice_ids.empty() ||
         std::binary_search(filters.practice_ids.begin(), filters.practice_ids.end(),
                            value.practice_id);
}

// The range whose current row comes first in (day, urgency, task id) order; nullptr when all
// are done.
Range* Earliest(const std::vector<std::unique_ptr<Range>>& ranges) {
  Range* next = nullptr;
  for (const auto& range : ranges) {
    if (!range->it->Valid()) continue;
    if (next == nullptr || View(range->it->key()).substr(range->prefix.size()) <
                               View(next->it->key()).substr(next->prefix.size())) {
      next = range.get();
    }
  }
  return next;
}

// Merges the ranges in (follow-up day, urgency, task id) order, keeping the rows the query's
// filters accept, up to a page; `*has_more` when a further match exists.
absl::StatusOr<std::vector<Cursor>> MergeRanges(std::vector<std::unique_ptr<Range>>& ranges,
                                                const ListQuery& query, const Filters& filters,
                                                bool* has_more) {
  std::vector<Cursor> matches;
  *has_more = false;
  while (Range* next = Earliest(ranges)) {
    const absl::string_view key = View(next->it->key());
    Cursor cursor;
    keys::WorklistValue value;
    if (!keys::ParseWorklistSuffix(key.substr(next->prefix.size()), &cursor.day_key,
                                   &cursor.urgency, &cursor.task_id) ||
        !keys::DecodeWorklistValue(View(next->it->value()), &value)) {
      return absl::DataLossError(
          absl::StrCat("worklist index: malformed row ", absl::BytesToHexString(key)));
    }
    if (Keeps(query, filters, value)) {
      if (matches.size() == static_cast<std::size_t>(query.page_size)) {
        *has_more = true;
        break;
      }
      matches.push_back(std::move(cursor));
    }
    next->it->Next();
  }
  for (const auto& range : ranges) {
    if (!range->it->status().ok()) return FromRocks(range->it->status(), "worklist index");
  }
  return matches;
}

// The task rows of `matches`, in their order, read in one MultiGet.
absl::Status ReadTasks(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* tasks,
                       const rocksdb::Snapshot* snapshot, const std::vector<Cursor>& matches,
                       std::vector<v1::Task>* out) {
  std::vector<rocksdb::Slice> task_keys;
  task_keys.reserve(matches.size());
  for (const Cursor& match : matches) task_keys.emplace_back(match.task_id);
  std::vector<std::string> values;
  rocksdb::ReadOptions read;
  read.snapshot = snapshot;
  const std::vector<rocksdb::Status> statuses_read = db->MultiGet(
      read, std::vector<rocksdb::ColumnFamilyHandle*>(task_keys.size(), tasks), task_keys,
      &values);
  out->reserve(matches.size());
  for (std::size_t i = 0; i < matches.size(); ++i) {
    if (statuses_read[i].IsNotFound()) {
      return absl::DataLossError(absl::StrCat("worklist index: row for task \"",
                                              matches[i].task_id, "\" has no task"));
    }
    if (!statuses_read[i].ok()) return FromRocks(statuses_read[i], "tasks");
    v1::Task& task = out->emplace_back();
    if (!task.ParseFromString(values[i])) {
      return absl::DataLossError(
          absl::StrCat("tasks: row for \"", matches[i].task_id, "\" is not a valid Task"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ListPage> ListWorklist(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* worklist,
                                      rocksdb::ColumnFamilyHandle* tasks,
                                      const rocksdb::Snapshot* snapshot, const ListQuery& query) {
  const Filters filters = FiltersOf(query);
  if (absl::Status s = CheckQuery(query, filters); !s.ok()) return s;
  const std::string filter_hash = FilterHash(query, filters);
  std::optional<Cursor> after;
  if (!query.page_token.empty()) {
    absl::StatusOr<Cursor> cursor = DecodeToken(query.page_token, filter_hash);
    if (!cursor.ok()) return cursor.status();
    after = *std::move(cursor);
  }
  std::vector<std::unique_ptr<Range>> ranges =
      OpenRanges(db, worklist, snapshot, query, filters, after);
  bool has_more = false;
  absl::StatusOr<std::vector<Cursor>> matches = MergeRanges(ranges, query, filters, &has_more);
  if (!matches.ok()) return matches.status();
  ListPage page;
  if (matches->empty()) return page;
  if (absl::Status s = ReadTasks(db, tasks, snapshot, *matches, &page.tasks); !s.ok()) return s;
  if (has_more) page.next_page_token = EncodeToken(filter_hash, matches->back());
  return page;
}

}  // namespace outreach::store
