// ReportService (outreach.v1): GetOutreachStats, from the store's "stats" projection
// (store/outreach_stats.h). Reports hold no patient data (counts, rates, medians): every role may
// call it and nothing is recorded in the access log. A principal limited to practices gets its
// own practices only (empty practice_id: all of them; another practice: PERMISSION_DENIED). The
// store must outlive the service, as must the CallSecurity. Thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include "outreach/v1/report_service.grpc.pb.h"
#include "server/call_security.h"
#include "store/event_store.h"

namespace outreach::server {

class ReportService final : public v1::ReportService::CallbackService {
 public:
  // The longest report: from_date to to_date, both included.
  static constexpr int kMaxDays = 366;

  ReportService(const store::EventStore* store, const CallSecurity* security)
      : store_(store), security_(security) {}
  ReportService(const ReportService&) = delete;
  ReportService& operator=(const ReportService&) = delete;

  // INVALID_ARGUMENT for a malformed practice_id or date, to_date before from_date, a range of
  // more than kMaxDays days, or an unknown group_by.
  grpc::ServerUnaryReactor* GetOutreachStats(grpc::CallbackServerContext* context,
                                             const v1::GetOutreachStatsRequest* request,
                                             v1::GetOutreachStatsResponse* response) override;

 private:
  const store::EventStore* const store_;
  const CallSecurity* const security_;
};

}  // namespace outreach::server
