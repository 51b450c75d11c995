#include "server/subscribe_events.h"

#include <algorithm>
#include <atomic>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "domain/events.h"
#include "domain/validation.h"
#include "server/grpc_status.h"

namespace outreach::server {
namespace {

constexpr absl::string_view kSubscribeMethod = "/outreach.v1.EventLog/SubscribeEvents";

// The EventType of a record's payload (EVENT_TYPE_UNSPECIFIED for an empty payload).
v1::EventType TypeOf(const v1::EventRecord& event) {
  const domain::EventKind* kind = domain::FindEventKind(event.payload_case());
  return kind != nullptr ? kind->type : v1::EVENT_TYPE_UNSPECIFIED;
}

}  // namespace

// One SubscribeEvents call; see the header for how it runs and who may act on it. Deletes
// itself in OnDone.
class SubscribeEventsReactor final : public grpc::ServerWriteReactor<v1::EventRecord> {
 public:
  SubscribeEventsReactor(SubscriptionHub* hub, store::EventStore* store,
                         const CallSecurity* security, grpc::CallbackServerContext* context,
                         absl::StatusOr<Caller> caller, const v1::SubscribeEventsRequest& request)
      : hub_(hub),
        store_(store),
        security_(security),
        context_(context),
        task_id_(request.task_id()),
        filter_(FilterText(request)),
        next_(std::max<uint64_t>(request.from_position(), 1)) {
    if (!caller.ok()) {
      Finish(ToGrpcStatus(caller.status()));
      return;
    }
    caller_ = *std::move(caller);
    if (absl::Status s = domain::ValidateOptionalId("task_id", task_id_); !s.ok()) {
      Finish(ToGrpcStatus(s));
      return;
    }
    for (int i = 0; i < request.event_types_size(); ++i) {
      const int type = request.event_types(i);
      const domain::EventKind* kind = domain::FindEventKind(static_cast<v1::EventType>(type));
      if (kind == nullptr) {  // EVENT_TYPE_UNSPECIFIED or a number no event has
        Finish(ToGrpcStatus(absl::InvalidArgumentError(
            absl::StrCat("event_types[", i, "]: ", type, " is not an event type (",
                         domain::EventTypeList(), ")"))));
        return;
      }
      wanted_types_[kind->type] = true;
      any_type_ = false;
    }
    if (!hub_->Register(this)) {
      Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "server is shutting down"));
      return;
    }
    registered_ = true;
    // Registered before the first read: a head published during it is recorded in known_head_,
    // so the subscription reads again instead of going idle.
    listener_ = store_->AddHeadListener([this](uint64_t head) { OnHead(head); });
    Pump();
  }

  void OnWriteDone(bool ok) override {
    // A failed write means the call is over (cancelled, deadline, client gone).
    if (!ok) {
      End(grpc::Status(grpc::StatusCode::CANCELLED, "stream cancelled"));
      return;
    }
    Pump();
  }

  void OnCancel() override {
    bool end = false;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      if (idle_) {
        idle_ = false;
        end = true;
      }
    }
    // Otherwise the driver sees cancelled_ (or its write fails) and ends the call.
    if (end) End(grpc::Status(grpc::StatusCode::CANCELLED, "stream cancelled"));
  }

  void OnDone() override {
    if (registered_) hub_->Unregister(this);
    delete this;
  }

  // Monitoring, from any thread while registered: who subscribes (the principal, or the actor in
  // development mode) and the first position it does not have yet.
  const std::string& consumer() const { return caller_.principal; }
  uint64_t resume_at() const { return resume_at_.load(std::memory_order_relaxed); }

  // The waker thread, after Wake: this thread is now the driver.
  void Resume() { Pump(); }

  // RecheckAll, with the hub's lock held. True if the subscription was idle: the caller is now
  // its driver and must Wake it (its next page starts with the check).
  bool RequestRecheck() {
    absl::MutexLock lock(&mu_);
    if (!idle_) return false;
    idle_ = false;
    return true;
  }

  // StopAll, with the hub's lock held. True if the subscription was idle: the caller is now its
  // driver and must Wake it.
  bool RequestStop() {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    if (!idle_) return false;
    idle_ = false;
    return true;
  }

 private:
  // The driver: writes the next wanted event, reading pages from the log until there is one;
  // goes idle when the log has been read through the head; ends the call when asked to.
  void Pump() {
    while (true) {
      std::optional<grpc::Status> end;
      {
        absl::MutexLock lock(&mu_);
        if (cancelled_) {
          end = grpc::Status(grpc::StatusCode::CANCELLED, "stream cancelled");
        } else if (stop_) {
          end = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                             absl::StrCat("server is shutting down; resubscribe from_position ",
                                          ResumePosition()));
        }
      }
      if (end.has_value()) {
        End(*std::move(end));
        return;
      }
      if (index_ < page_.size()) {
        resume_at_.store(page_[index_].position(), std::memory_order_relaxed);
        StartWrite(&page_[index_++]);
        return;
      }
      // Before each page: a principal removed or demoted by a reload gets no more events.
      if (absl::Status allowed = security_->Recheck(caller_, kSubscribeMethod);
          !allowed.ok()) {
        End(ToGrpcStatus(allowed));
        return;
      }
      // Read before the page: every event at or below it is visible to the read.
      const uint64_t head = store_->HeadPosition();
      absl::StatusOr<std::vector<v1::EventRecord>> read =
          store_->ReadEvents(next_, task_id_, SubscriptionHub::kPageSize);
      if (!read.ok()) {
        End(ToGrpcStatus(read.status()));
        return;
      }
      const bool through_head = read->size() < SubscriptionHub::kPageSize;
      if (!read->empty()) next_ = read->back().position() + 1;
      // A task's stream may have no event between the last one read and the head.
      if (through_head) next_ = std::max(next_, head + 1);
      page_.clear();
      index_ = 0;
      for (v1::EventRecord& event : *read) {
        if (any_type_ || wanted_types_[TypeOf(event)]) page_.push_back(std::move(event));
      }
      if (!page_.empty()) {
        // The page is recorded before any of it is written: the access log's callback becomes
        // the driver and writes the first event (or ends the call if the record failed).
        security_->RecordAccess(caller_, *context_, kSubscribeMethod,
                                AccessOfEvents(page_, filter_), [this](absl::Status recorded) {
                                  if (!recorded.ok()) {
                                    End(ToGrpcStatus(recorded));
                                    return;
                                  }
                                  Pump();
                                });
        return;
      }
      if (!through_head) continue;
      absl::MutexLock lock(&mu_);
      // A head published since the read (recorded by OnHead) means more to read now.
      if (cancelled_ || stop_ || known_head_ >= next_) continue;
      resume_at_.store(next_, std::memory_order_relaxed);
      idle_ = true;
      wake_at_ = next_;
      return;
    }
  }

  // The store's writer thread, after each durable batch: record, and wake only if idle.
  void OnHead(uint64_t head) {
    bool wake = false;
    {
      absl::MutexLock lock(&mu_);
      known_head_ = std::max(known_head_, head);
      if (idle_ && head >= wake_at_) {
        idle_ = false;
        wake = true;
      }
    }
    if (wake) hub_->Wake(this);
  }

  // The position a client resubscribes from to miss nothing: the first event not yet written.
  uint64_t ResumePosition() const {
    return index_ < page_.size() ? page_[index_].position() : next_;
  }

  // The driver only, exactly once: no head listener call can reach this subscription afterwards.
  void End(grpc::Status status) {
    if (listener_.has_value()) {
      store_->RemoveHeadListener(*listener_);
      listener_.reset();
    }
    Finish(std::move(status));
  }

  SubscriptionHub* const hub_;
  store::EventStore* const store_;
  const CallSecurity* const security_;
  grpc::CallbackServerContext* const context_;
  Caller caller_;
  const std::string task_id_;  // empty = every task
  const std::string filter_;   // the request as text, for access records
  bool any_type_ = true;       // no event_types filter
  bool wanted_types_[v1::EventType_ARRAYSIZE] = {};
  bool registered_ = false;

  // The driver's state (handed from driver to driver through mu_, the hub's mu_, or gRPC).
  uint64_t next_;                      // the first position not yet read
  std::vector<v1::EventRecord> page_;  // wanted events read and not yet all written
  std::size_t index_ = 0;              // the next of page_ to write
  std::optional<store::HeadListenerId> listener_;
  // ResumePosition() as the driver last published it (for ConsumerLags).
  std::atomic<uint64_t> resume_at_{next_};

  absl::Mutex mu_;
  bool idle_ ABSL_GUARDED_BY(mu_) = false;       // caught up; nobody drives it
  uint64_t wake_at_ ABSL_GUARDED_BY(mu_) = 0;    // while idle: the head that wakes it
  uint64_t known_head_ ABSL_GUARDED_BY(mu_) = 0;  // the latest head OnHead saw
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;  // server shutdown
};

SubscriptionHub::SubscriptionHub(store::EventStore* store, const CallSecurity* security)
    : store_(store), security_(security), waker_([this] { RunWaker(); }) {}

SubscriptionHub::~SubscriptionHub() {
  {
    absl::MutexLock lock(&mu_);
    exiting_ = true;
  }
  waker_.join();
}

grpc::ServerWriteReactor<v1::EventRecord>* SubscriptionHub::Subscribe(
    grpc::CallbackServerContext* context, absl::StatusOr<Caller> caller,
    const v1::SubscribeEventsRequest& request) {
  return new SubscribeEventsReactor(this, store_, security_, context, std::move(caller), request);
}

void SubscriptionHub::StopAll() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  for (SubscribeEventsReactor* subscription : open_) {
    if (subscription->RequestStop()) wake_queue_.push_back(subscription);
  }
}

void SubscriptionHub::RecheckAll() {
  absl::MutexLock lock(&mu_);
  for (SubscribeEventsReactor* subscription : open_) {
    if (subscription->RequestRecheck()) wake_queue_.push_back(subscription);
  }
}

std::vector<SubscriptionHub::ConsumerLag> SubscriptionHub::ConsumerLags(uint64_t head) const {
  absl::flat_hash_map<std::string, ConsumerLag> by_consumer;
  {
    absl::MutexLock lock(&mu_);
    for (const SubscribeEventsReactor* subscription : open_) {
      std::string name = subscription->consumer();
      if (!by_consumer.contains(name) && by_consumer.size() >= kMaxConsumers) name = "other";
      ConsumerLag& entry = by_consumer[name];
      entry.consumer = name;
      entry.subscriptions += 1;
      const uint64_t have = subscription->resume_at() - 1;  // resume_at() >= 1
      entry.lag = std::max(entry.lag, head > have ? head - have : 0);
    }
  }
  std::vector<ConsumerLag> lags;
  lags.reserve(by_consumer.size());
  for (auto& [name, entry] : by_consumer) lags.push_back(std::move(entry));
  return lags;
}

std::size_t SubscriptionHub::OpenCount() const {
  absl::MutexLock lock(&mu_);
  return open_.size();
}

bool SubscriptionHub::Register(SubscribeEventsReactor* subscription) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return false;
  open_.insert(subscription);
  return true;
}

void SubscriptionHub::Unregister(SubscribeEventsReactor* subscription) {
  absl::MutexLock lock(&mu_);
  open_.erase(subscription);
}

void SubscriptionHub::Wake(SubscribeEventsReactor* subscription) {
  absl::MutexLock lock(&mu_);
  wake_queue_.push_back(subscription);
}

void SubscriptionHub::RunWaker() {
  auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return exiting_ || !wake_queue_.empty();
  };
  while (true) {
    SubscribeEventsReactor* subscription = nullptr;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(&has_work));
      if (wake_queue_.empty()) return;  // exiting_
      subscription = wake_queue_.front();
      wake_queue_.pop_front();
    }
    // Outside mu_: it reads the store and may end the call (RemoveHeadListener).
    subscription->Resume();
  }
}

}  // namespace outreach::server
