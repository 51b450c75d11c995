#include "server/refusal_log.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "logging/log.h"

namespace outreach::server {

RefusalLog::RefusalLog(Sink sink, Now now)
    : sink_(std::move(sink)),
      now_(now != nullptr ? std::move(now) : Now([] { return absl::Now(); })) {}

void RefusalLog::Refused(const absl::Status& status, absl::string_view principal,
                         absl::string_view method, absl::string_view peer) {
  switch (status.code()) {
    case absl::StatusCode::kUnauthenticated:
      unauthenticated_.fetch_add(1, std::memory_order_relaxed);
      break;
    case absl::StatusCode::kPermissionDenied:
      permission_denied_.fetch_add(1, std::memory_order_relaxed);
      break;
    default:
      invalid_metadata_.fetch_add(1, std::memory_order_relaxed);
      break;
  }
  uint64_t suppressed = 0;
  if (!TakeToken(&suppressed)) {
    lines_suppressed_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (sink_ == nullptr) {
    LogRefusal(status, principal, method, peer, suppressed);
    return;
  }
  // The reason is escaped so that a line stays one line.
  std::string line = absl::StrFormat(
      "outreachd: refused: code=%s principal=%s method=%s peer=%s reason=\"%s\"",
      absl::StatusCodeToString(status.code()), principal.empty() ? "unknown" : principal,
      method, peer, absl::CHexEscape(status.message()));
  if (suppressed > 0) {
    absl::StrAppend(&line, " (", suppressed, " refused call(s) before this one not logged)");
  }
  sink_(line);
}

void RefusalLog::LogRefusal(const absl::Status& status, absl::string_view principal,
                            absl::string_view method, absl::string_view peer,
                            uint64_t suppressed) {
  logging::Warning("refused:", {{"code", absl::StatusCodeToString(status.code())},
                                {"principal", principal.empty() ? "unknown" : principal},
                                {"method", method},
                                {"peer", peer},
                                {"reason", status.message()},
                                {"not_logged_before", suppressed}});
}

RefusalLog::Counts RefusalLog::counts() const {
  Counts counts;
  counts.unauthenticated = unauthenticated_.load(std::memory_order_relaxed);
  counts.permission_denied = permission_denied_.load(std::memory_order_relaxed);
  counts.invalid_metadata = invalid_metadata_.load(std::memory_order_relaxed);
  counts.lines_suppressed = lines_suppressed_.load(std::memory_order_relaxed);
  return counts;
}

bool RefusalLog::TakeToken(uint64_t* suppressed_before) {
  const absl::Time now = now_();
  absl::MutexLock lock(&mu_);
  if (refilled_at_ != absl::InfinitePast() && now > refilled_at_) {
    tokens_ = std::min<double>(
        kBurst, tokens_ + absl::FDivDuration(now - refilled_at_, absl::Seconds(1)) * kPerSecond);
  }
  refilled_at_ = std::max(refilled_at_, now);
  if (tokens_ < 1) {
    ++suppressed_since_line_;
    return false;
  }
  tokens_ -= 1;
  *suppressed_before = suppressed_since_line_;
  suppressed_since_line_ = 0;
  return true;
}

}  // namespace outreach::server
