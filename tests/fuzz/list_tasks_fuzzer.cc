// ListTasks: request bytes -> the server's conversion to a worklist query -> what the query
// promises the store (page size bounds, real statuses, valid ids, a date whose day key caps the
// scan) and the index prefixes it scans. Page tokens are decoded by the store against a RocksDB
// snapshot (store/worklist.cc) and are not reached here.
#include <cstddef>
#include <cstdint>
#include <string>

#include "domain/validation.h"
#include "outreach/v1/task_service.pb.h"
#include "server/convert.h"
#include "store/keys.h"
#include "store/worklist.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

bool IsPrefix(const std::string& a, const std::string& b) { return b.rfind(a, 0) == 0; }

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  outreach::fuzz::QuietProtobufLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace outreach;
  v1::ListTasksRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  absl::StatusOr<store::ListQuery> query = server::ToListQuery(request);
  if (!query.ok()) {
    fuzz::CheckCode("ToListQuery", query.status(), {absl::StatusCode::kInvalidArgument});
    return 0;
  }
  const int want_page_size =
      request.page_size() == 0 ? server::kDefaultPageSize : request.page_size();
  if (query->page_size != want_page_size || query->page_size < 1 ||
      query->page_size > server::kMaxPageSize || query->page_size > store::kMaxPageSize) {
    fuzz::Fail("ToListQuery: page_size " + std::to_string(query->page_size) + " for a request of " +
               std::to_string(request.page_size()));
  }
  if (static_cast<int>(query->statuses.size()) != request.statuses_size()) {
    fuzz::Fail("ToListQuery dropped or added statuses");
  }
  for (v1::TaskStatus status : query->statuses) {
    if (status != v1::OPEN && status != v1::IN_PROGRESS && status != v1::CLOSED) {
      fuzz::Fail("ToListQuery let through status " + std::to_string(status));
    }
  }
  if (!v1::TaskKind_IsValid(query->kind) ||
      (!query->patient_id.empty() && !domain::IsValidId(query->patient_id)) ||
      (!query->assignee.empty() && !domain::IsValidId(query->assignee))) {
    fuzz::Fail("ToListQuery let through an invalid kind or id");
  }
  if (query->follow_up_on_or_before.has_value()) {
    const absl::CivilDay day = *query->follow_up_on_or_before;
    if (domain::FormatDate(day) != request.follow_up_on_or_before() ||
        store::keys::DayKeyOfDate(request.follow_up_on_or_before()) != store::keys::DayKey(day) ||
        store::keys::DayKey(day) == store::keys::kNoFollowUpDay) {
      fuzz::Fail("follow_up_on_or_before \"" + request.follow_up_on_or_before() +
                 "\" does not round-trip to its day key");
    }
  } else if (!request.follow_up_on_or_before().empty()) {
    fuzz::Fail("ToListQuery dropped follow_up_on_or_before");
  }
  // The scan prefixes of two different scope values never nest ('\0' ends a value).
  if (!query->patient_id.empty() && !query->assignee.empty() &&
      query->patient_id != query->assignee) {
    for (v1::TaskStatus status : {v1::OPEN, v1::IN_PROGRESS, v1::CLOSED}) {
      const std::string a =
          store::keys::WorklistPrefix(store::keys::Scope::kPatient, query->patient_id, status);
      const std::string b =
          store::keys::WorklistPrefix(store::keys::Scope::kPatient, query->assignee, status);
      if (IsPrefix(a, b) || IsPrefix(b, a)) fuzz::Fail("worklist prefixes of two ids nest");
    }
  }
  return 0;
}
