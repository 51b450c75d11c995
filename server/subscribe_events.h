// EventLog.SubscribeEvents and EventLog.Follow: a catch-up subscription that turns into a live
// one, over the callback API, with nothing buffered for a client beyond one page. Follow is the
// same subscription with FollowMessage for its messages: each event wrapped, and a caught_up
// {head_position} written each time it has delivered everything up to the head and goes idle
// (once per head: a subscription woken by events it filters out does not repeat it).
//
// How a subscription runs. It owes its client every wanted event from `next` on. It reads the log
// in pages of kPageSize (EventStore::ReadEvents from `next`), filters the page (task_id,
// event_types) and writes the events one at a time. A page that comes back short means the log
// has been read through the head that was published before the read: the subscription goes idle,
// waiting for the head to reach `next`. The store's head listener, on the writer thread, only
// records the new head and, if the subscription is idle and the head reached `next`, queues it
// for the hub's waker thread, which reads the new page and starts the write. Delivery therefore
// always comes from the log in position order: no gap and no duplicate where catch-up turns live,
// and a slow client costs only its own lag (the server never buffers the events it has not read).
//
// Who may act on a subscription. At any moment exactly one party drives it: the gRPC reaction
// running (the start or OnWriteDone), its one write in flight, the access record of a new page
// being appended (its callback then writes the page's first event), the waker (queued or
// running), or nobody, when it is idle. Only the driver reads, writes or calls Finish; whoever
// takes a subscription out of idle (a new head, OnCancel, StopAll, RecheckAll), under its mutex,
// becomes the driver.
// The head listener is removed before Finish, and the subscription leaves the hub in OnDone
// before it deletes itself, so neither the store nor the hub ever sees a deleted subscription.
//
// Lock order: the store's listener lock -> a subscription's mu_ (released) -> SubscriptionHub::mu_
// (OnHead, then Wake); SubscriptionHub::mu_ -> a subscription's mu_ (StopAll). Neither lock is
// held while calling the store or gRPC.
//
// The hub is owned by EventLogService, and must outlive every subscription: the gRPC server is
// shut down (which waits for every call's OnDone) before the service is destroyed. Thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "outreach/v1/event_log.pb.h"
#include "server/call_security.h"
#include "store/event_store.h"

namespace outreach::server {

// One open subscription as the hub drives it (implemented in subscribe_events.cc).
class Subscription {
 public:
  virtual ~Subscription() = default;
  // The waker thread, after Wake: this thread is now the driver.
  virtual void Resume() = 0;
  // RecheckAll / StopAll, with the hub's lock held. True if the subscription was idle: the
  // caller is now its driver and must Wake it.
  virtual bool RequestRecheck() = 0;
  virtual bool RequestStop() = 0;
  // Monitoring, from any thread while registered: who subscribes (the principal, or the actor in
  // development mode) and the first position it does not have yet.
  virtual const std::string& consumer() const = 0;
  virtual uint64_t resume_at() const = 0;
};

// What one subscription delivers.
struct SubscriptionSpec {
  uint64_t from_position = 1;  // the first position wanted
  std::string task_id;         // empty = every task
  std::vector<int> event_types;  // empty = every type (checked: INVALID_ARGUMENT if unknown)
  std::string filter;          // the request as text, for access records
};

template <typename Message>
class SubscriptionReactor;

class SubscriptionHub {
 public:
  // Events read from the log at a time, per subscription: bounds its memory.
  static constexpr uint64_t kPageSize = 256;

  // `store` and `security` must outlive the hub.
  SubscriptionHub(store::EventStore* store, const CallSecurity* security);
  SubscriptionHub(const SubscriptionHub&) = delete;
  SubscriptionHub& operator=(const SubscriptionHub&) = delete;
  // Joins the waker thread. Every subscription must have finished (OnDone) by then.
  ~SubscriptionHub();

  // The reactor for one SubscribeEvents call by `caller` (the result of CallSecurity::Authorize:
  // an error ends the call with it). INVALID_ARGUMENT for a malformed task_id or an unknown
  // event type; UNAVAILABLE after StopAll. Each page of events is written only after its access
  // record is durable (UNAVAILABLE if it cannot be recorded).
  grpc::ServerWriteReactor<v1::EventRecord>* Subscribe(grpc::CallbackServerContext* context,
                                                       absl::StatusOr<Caller> caller,
                                                       const v1::SubscribeEventsRequest& request);
  // The reactor for one Follow call: the same, from spec.from_position (the caller resolved the
  // consumer's checkpoint), with caught_up messages.
  grpc::ServerWriteReactor<v1::FollowMessage>* Follow(grpc::CallbackServerContext* context,
                                                      absl::StatusOr<Caller> caller,
                                                      SubscriptionSpec spec);

  // Server shutdown: ends every open subscription with UNAVAILABLE (naming the position to
  // resubscribe from) as soon as its write in flight completes, and refuses new ones. Returns
  // without waiting. Idempotent.
  void StopAll() ABSL_LOCKS_EXCLUDED(mu_);

  // After a reload of the principals: every subscription checks its caller again (see
  // CallSecurity::Recheck) before its next page, and an idle one at once, ending with
  // UNAUTHENTICATED or PERMISSION_DENIED if the caller was removed, lost its credentials or its
  // role. Returns without waiting.
  void RecheckAll() ABSL_LOCKS_EXCLUDED(mu_);

  // Subscriptions not yet done (for tests and diagnostics).
  std::size_t OpenCount() const ABSL_LOCKS_EXCLUDED(mu_);

  // Monitoring: each consumer's open subscriptions and how far the furthest behind is from
  // `head` (events at or below it it has not been sent, filtered ones included). Consumers are
  // the subscribing principals; past kMaxConsumers distinct ones, the rest count as "other".
  static constexpr std::size_t kMaxConsumers = 64;
  struct ConsumerLag {
    std::string consumer;
    uint64_t subscriptions = 0;
    uint64_t lag = 0;
  };
  std::vector<ConsumerLag> ConsumerLags(uint64_t head) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  template <typename Message>
  friend class SubscriptionReactor;

  // False after StopAll: the subscription must end at once.
  bool Register(Subscription* subscription) ABSL_LOCKS_EXCLUDED(mu_);
  void Unregister(Subscription* subscription) ABSL_LOCKS_EXCLUDED(mu_);
  // Hands a subscription taken out of idle to the waker thread, which resumes it. Cheap: safe on
  // the store's writer thread.
  void Wake(Subscription* subscription) ABSL_LOCKS_EXCLUDED(mu_);
  void RunWaker() ABSL_LOCKS_EXCLUDED(mu_);

  store::EventStore* const store_;
  const CallSecurity* const security_;
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;  // StopAll was called
  bool exiting_ ABSL_GUARDED_BY(mu_) = false;   // the destructor: the waker returns
  std::unordered_set<Subscription*> open_ ABSL_GUARDED_BY(mu_);
  std::deque<Subscription*> wake_queue_ ABSL_GUARDED_BY(mu_);
  std::thread waker_;
};

}  // namespace outreach::server
