// HeadPublisher: the head of the log as readers and followers see it. The writer publishes a new
// head only once its batch is durable; readers read it without a lock (Head), followers block
// until it passes a position (WaitForHeadAbove) or are called on each publish (listeners).
//
// Threads: Publish is called by one thread at a time (the store's writer, or recovery before the
// writer starts). Head, WaitForHeadAbove, AddListener and RemoveListener are thread-safe.
// Listeners run on the publishing thread with the listener lock held, so RemoveListener returns
// only once a running call of that listener has returned; a listener must be cheap and must not
// add or remove listeners. Close() wakes every waiter and waits for them to return: the owner
// calls it before anything a waiter may touch goes away.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace outreach::store {

class HeadPublisher {
 public:
  using Listener = absl::AnyInvocable<void(uint64_t head)>;
  using ListenerId = uint64_t;

  HeadPublisher() = default;
  HeadPublisher(const HeadPublisher&) = delete;
  HeadPublisher& operator=(const HeadPublisher&) = delete;

  uint64_t Head() const { return published_.load(); }

  // Makes `head` visible to readers and waiters, then calls every listener with it.
  void Publish(uint64_t head) ABSL_LOCKS_EXCLUDED(mu_, listeners_mu_);

  // Blocks until the head is above `position` (true), or `timeout` passes or Close() was called
  // (false unless the head is above it).
  bool WaitForHeadAbove(uint64_t position, absl::Duration timeout) const ABSL_LOCKS_EXCLUDED(mu_);

  ListenerId AddListener(Listener listener) ABSL_LOCKS_EXCLUDED(listeners_mu_);
  // After this returns, the listener is not running and will not be called again.
  void RemoveListener(ListenerId id) ABSL_LOCKS_EXCLUDED(listeners_mu_);

  // Wakes every waiter, makes later waits return at once, and waits for the waiters to return.
  void Close() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  bool Reached(uint64_t position) const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return closing_ || followed_ > position;
  }
  bool NoWaiters() const ABSL_SHARED_LOCKS_REQUIRED(mu_) { return waiters_ == 0; }

  // Read without a lock by readers; advanced only after the batch is durable.
  std::atomic<uint64_t> published_{0};
  // The same head, under a mutex that WaitForHeadAbove can wait on.
  mutable absl::Mutex mu_;
  uint64_t followed_ ABSL_GUARDED_BY(mu_) = 0;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  mutable int waiters_ ABSL_GUARDED_BY(mu_) = 0;
  // Held while the listeners run, so that removal waits for a call in progress.
  absl::Mutex listeners_mu_;
  std::map<ListenerId, Listener> listeners_ ABSL_GUARDED_BY(listeners_mu_);
  ListenerId last_id_ ABSL_GUARDED_BY(listeners_mu_) = 0;
};

}  // namespace outreach::store
