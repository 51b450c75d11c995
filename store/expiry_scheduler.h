// ExpiryScheduler: a thread that closes each automatic task within a second of its expires_at.
//
// It sleeps until the earliest expires_at in the store's expiry index (re-checking at least every
// `poll` so that tasks created meanwhile are seen), then calls EventStore::ExpireDue. The store
// must outlive the scheduler. Stop() (or the destructor) joins the thread. Thread-safe.
#pragma once

#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "store/clock.h"
#include "store/event_store.h"

namespace outreach::store {

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
