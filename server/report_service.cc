#include "server/report_service.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "domain/validation.h"
#include "server/grpc_status.h"

namespace outreach::server {
namespace {

constexpr absl::string_view kGetOutreachStatsMethod = "/outreach.v1.ReportService/GetOutreachStats";

// The request as a store query (time zone aside: the store's). INVALID_ARGUMENT naming the field.
absl::StatusOr<store::StatsQuery> ParseQuery(const v1::GetOutreachStatsRequest& request,
                                             const Caller& caller) {
  if (absl::Status s = domain::ValidateOptionalId("practice_id", request.practice_id()); !s.ok()) {
    return s;
  }
  store::StatsQuery query;
  absl::StatusOr<absl::CivilDay> from = domain::ParseDate("from_date", request.from_date());
  if (!from.ok()) return from.status();
  absl::StatusOr<absl::CivilDay> to = domain::ParseDate("to_date", request.to_date());
  if (!to.ok()) return to.status();
  if (*to < *from) {
    return absl::InvalidArgumentError(absl::StrCat("to_date: ", request.to_date(),
                                                   " is before from_date ",
                                                   request.from_date()));
  }
  if (*to - *from + 1 > ReportService::kMaxDays) {
    return absl::InvalidArgumentError(absl::StrCat("to_date: the range is ", *to - *from + 1,
                                                   " days (at most ", ReportService::kMaxDays,
                                                   ")"));
  }
  if (!v1::GetOutreachStatsRequest::GroupBy_IsValid(request.group_by())) {
    return absl::InvalidArgumentError(
        absl::StrCat("group_by: ", request.group_by(),
                     " is not one of NONE, ASSIGNEE, CATEGORY, DAY"));
  }
  query.from = *from;
  query.to = *to;
  query.group_by = request.group_by();
  if (!request.practice_id().empty()) {
    if (absl::Status s = CheckPracticeAccess(caller, request.practice_id()); !s.ok()) return s;
    query.practice_ids.push_back(request.practice_id());
  } else {
    query.practice_ids = caller.practices;  // empty for an unlimited caller: every practice
  }
  return query;
}

}  // namespace

grpc::ServerUnaryReactor* ReportService::GetOutreachStats(
    grpc::CallbackServerContext* context, const v1::GetOutreachStatsRequest* request,
    v1::GetOutreachStatsResponse* response) {
  absl::StatusOr<Caller> caller = security_->Authorize(*context, kGetOutreachStatsMethod);
  if (!caller.ok()) return FinishNow(context, caller.status());
  absl::StatusOr<store::StatsQuery> query = ParseQuery(*request, *caller);
  if (!query.ok()) return FinishNow(context, query.status());
  absl::StatusOr<std::vector<v1::OutreachStats>> rows =
      store_->GetOutreachStats(*std::move(query));
  if (!rows.ok()) return FinishNow(context, rows.status());
  for (v1::OutreachStats& row : *rows) *response->add_rows() = std::move(row);
  return FinishNow(context, absl::OkStatus());
}

}  // namespace outreach::server
