#include "store/expiry_scheduler.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>

namespace outreach::store {
namespace {

// How long to wait before retrying when a pass closed nothing although rows were due (a refused
// write, or a row due by the index's microseconds but not yet by the task's nanoseconds).
constexpr absl::Duration kRetryPause = absl::Milliseconds(50);

}  // namespace

ExpiryScheduler::ExpiryScheduler(EventStore* store, Clock* clock, absl::Duration poll)
    : store_(store), clock_(clock), poll_(poll), thread_([this] { Run(); }) {}

ExpiryScheduler::~ExpiryScheduler() { Stop(); }

void ExpiryScheduler::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void ExpiryScheduler::Run() {
  while (true) {
    absl::Duration wait = poll_;
    const absl::Time now = clock_->Now();
    if (std::optional<absl::Time> next = store_->NextExpiry(); next.has_value()) {
      if (*next <= now) {
        absl::StatusOr<int> closed = store_->ExpireDue(now);
        if (!closed.ok()) {
          std::fprintf(stderr, "expiry: %s\n", std::string(closed.status().ToString()).c_str());
        }
        wait = closed.ok() && *closed > 0 ? absl::ZeroDuration() : std::min(poll_, kRetryPause);
      } else {
        wait = std::min(*next - now, poll_);
      }
    }
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    if (wait > absl::ZeroDuration() &&
        mu_.AwaitWithTimeout(absl::Condition(&stopping_), wait)) {
      return;
    }
  }
}

}  // namespace outreach::store
