// The expiry policy: automatic tasks close themselves once their expires_at has passed.
//
// ExpireDue closes what is due now; ExpiryScheduler is a thread that calls it within a second of
// each expires_at: it sleeps until the earliest expires_at in the store's expiry index
// (re-checking at least every `poll` so that tasks created meanwhile are seen). The store must
// outlive the scheduler. Stop() (or the destructor) joins the thread. Thread-safe.
#pragma once

#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "store/clock.h"
#include "store/event_store.h"

namespace outreach::store {

// Closes (reason EXPIRED, actor system:expiry, occurred_at = expires_at) every open automatic
// task whose expires_at <= now, as read from the expiry index, submitting them in groups of the
// writer's batch size. Returns how many it closed. Never call it from a store callback.
absl::StatusOr<int> ExpireDue(EventStore& store, absl::Time now);

class ExpiryScheduler {
 public:
  ExpiryScheduler(EventStore* store, Clock* clock, absl::Duration poll = absl::Milliseconds(200));
  ExpiryScheduler(const ExpiryScheduler&) = delete;
  ExpiryScheduler& operator=(const ExpiryScheduler&) = delete;
  ~ExpiryScheduler();

  void Stop();

 private:
  void Run();

  EventStore* const store_;
  Clock* const clock_;
  const absl::Duration poll_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace outreach::store
