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
constexpr absl::string_view kFollowStreamMethod = "/outreach.v1.EventLog/Follow";

// The EventType of a record's payload (EVENT_TYPE_UNSPECIFIED for an empty payload).
v1::EventType TypeOf(const v1::EventRecord& event) {
  const domain::EventKind* kind = domain::FindEventKind(event.payload_case());
  return kind != nullptr ? kind->type : v1::EVENT_TYPE_UNSPECIFIED;
}

// How each kind of subscription writes: SubscribeEvents the events themselves, Follow each one
// wrapped in a FollowMessage, plus its caught_up messages.
template <typename Message>
struct Delivery;

template <>
struct Delivery<v1::EventRecord> {
  static constexpr absl::string_view kMethod = kSubscribeMethod;
  static constexpr bool kCaughtUp = false;
  static const v1::EventRecord* Wrap(v1::EventRecord* event, v1::EventRecord* /*out*/) {
    return event;
  }
  static const v1::EventRecord* CaughtUp(uint64_t /*head*/, v1::EventRecord* /*out*/) {
    return nullptr;
  }
};

template <>
struct Delivery<v1::FollowMessage> {
  static constexpr absl::string_view kMethod = kFollowStreamMethod;
  static constexpr bool kCaughtUp = true;
  static const v1::FollowMessage* Wrap(v1::EventRecord* event, v1::FollowMessage* out) {
    *out->mutable_event() = std::move(*event);
    return out;
  }
  static const v1::FollowMessage* CaughtUp(uint64_t head, v1::FollowMessage* out) {
    out->mutable_caught_up()->set_head_position(head);
    return out;
  }
};

SubscriptionSpec SpecOf(const v1::SubscribeEventsRequest& request) {
  SubscriptionSpec spec;
  spec.from_position = std::max<uint64_t>(request.from_position(), 1);
  spec.task_id = request.task_id();
  spec.event_types.assign(request.event_types().begin(), request.event_types().end());
  spec.filter = FilterText(request);
  return spec;
}

}  // namespace

// One SubscribeEvents or Follow call; see the header for how it runs and who may act on it.
// Deletes itself in OnDone.
template <typename Message>
class SubscriptionReactor final : public grpc::ServerWriteReactor<Message>, public Subscription {
  using D = Delivery<Message>;

 public:
  SubscriptionReactor(SubscriptionHub* hub, store::EventStore* store,
                      const CallSecurity* security, grpc::CallbackServerContext* context,
                      absl::StatusOr<Caller> caller, SubscriptionSpec spec)
      : hub_(hub),
        store_(store),
        security_(security),
        context_(context),
        task_id_(std::move(spec.task_id)),
        filter_(std::move(spec.filter)),
        next_(std::max<uint64_t>(spec.from_position, 1)) {
    if (!caller.ok()) {
      this->Finish(ToGrpcStatus(caller.status()));
      return;
    }
    caller_ = *std::move(caller);
    if (absl::Status s = Parse(spec.event_types); !s.ok()) {
      this->Finish(ToGrpcStatus(s));
      return;
    }
    if (!hub_->Register(this)) {
      this->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "server is shutting down"));
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
  const std::string& consumer() const override { return caller_.principal; }
  uint64_t resume_at() const override { return resume_at_.load(std::memory_order_relaxed); }

  void Resume() override { Pump(); }

  bool RequestRecheck() override {
    absl::MutexLock lock(&mu_);
    if (!idle_) return false;
    idle_ = false;
    return true;
  }

  bool RequestStop() override {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    if (!idle_) return false;
    idle_ = false;
    return true;
  }

 private:
  // task_id and event_types. INVALID_ARGUMENT naming the field.
  absl::Status Parse(const std::vector<int>& event_types) {
    if (absl::Status s = domain::ValidateOptionalId("task_id", task_id_); !s.ok()) return s;
    for (std::size_t i = 0; i < event_types.size(); ++i) {
      const int type = event_types[i];
      const domain::EventKind* kind = domain::FindEventKind(static_cast<v1::EventType>(type));
      if (kind == nullptr) {  // EVENT_TYPE_UNSPECIFIED or a number no event has
        return absl::InvalidArgumentError(absl::StrCat("event_types[", i, "]: ", type,
                                                       " is not an event type (",
                                                       domain::EventTypeList(), ")"));
      }
      wanted_types_[kind->type] = true;
      any_type_ = false;
    }
    return absl::OkStatus();
  }

  // What ends the call now (cancelled, or server shutdown), if anything.
  std::optional<grpc::Status> EndRequested() {
    absl::MutexLock lock(&mu_);
    if (cancelled_) return grpc::Status(grpc::StatusCode::CANCELLED, "stream cancelled");
    if (stop_) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          absl::StrCat("server is shutting down; resubscribe from_position ",
                                       ResumePosition()));
    }
    return std::nullopt;
  }

  // The driver: writes the next wanted event, reading pages from the log until there is one;
  // goes idle when the log has been read through the head (Follow: after its caught_up); ends
  // the call when asked to.
  void Pump() {
    while (true) {
      if (std::optional<grpc::Status> end = EndRequested(); end.has_value()) {
        End(*std::move(end));
        return;
      }
      if (index_ < page_.size()) {
        resume_at_.store(page_[index_].position(), std::memory_order_relaxed);
        this->StartWrite(D::Wrap(&page_[index_++], &out_));
        return;
      }
      // Before each page: a principal removed or demoted by a reload gets no more events.
      if (absl::Status allowed = security_->Recheck(caller_, D::kMethod); !allowed.ok()) {
        End(ToGrpcStatus(allowed));
        return;
      }
      absl::StatusOr<bool> through_head = ReadPage();
      if (!through_head.ok()) {
        End(ToGrpcStatus(through_head.status()));
        return;
      }
      if (!page_.empty()) {
        RecordPage();
        return;
      }
      if (!*through_head) continue;
      {
        absl::MutexLock lock(&mu_);
        // A head published since the read (recorded by OnHead) means more to read now.
        if (cancelled_ || stop_ || known_head_ >= next_) continue;
        if (!D::kCaughtUp || caught_up_at_ == next_ - 1) {
          resume_at_.store(next_, std::memory_order_relaxed);
          idle_ = true;
          wake_at_ = next_;
          return;
        }
      }
      // Follow: everything through next_ - 1 is delivered; say so, then read again (and go
      // idle) once the message is written.
      caught_up_at_ = next_ - 1;
      this->StartWrite(D::CaughtUp(std::min(caught_up_at_, store_->HeadPosition()), &out_));
      return;
    }
  }

  // Reads the next page of wanted events into page_; true when it read through the head.
  absl::StatusOr<bool> ReadPage() {
    // Read before the page: every event at or below it is visible to the read.
    const uint64_t head = store_->HeadPosition();
    absl::StatusOr<std::vector<v1::EventRecord>> read =
        store_->ReadEvents(next_, task_id_, SubscriptionHub::kPageSize);
    if (!read.ok()) return read.status();
    const bool through_head = read->size() < SubscriptionHub::kPageSize;
    if (!read->empty()) next_ = read->back().position() + 1;
    // A task's stream may have no event between the last one read and the head.
    if (through_head) next_ = std::max(next_, head + 1);
    page_.clear();
    index_ = 0;
    for (v1::EventRecord& event : *read) {
      if (any_type_ || wanted_types_[TypeOf(event)]) page_.push_back(std::move(event));
    }
    return through_head;
  }

  // The page is recorded before any of it is written: the access log's callback becomes the
  // driver and writes the first event (or ends the call if the record failed).
  void RecordPage() {
    security_->RecordAccess(caller_, *context_, D::kMethod, AccessOfEvents(page_, filter_),
                            [this](absl::Status recorded) {
                              if (!recorded.ok()) {
                                End(ToGrpcStatus(recorded));
                                return;
                              }
                              Pump();
                            });
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
    this->Finish(std::move(status));
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
  Message out_;                        // Follow: the message in flight
  uint64_t caught_up_at_ = 0;          // Follow: next_ - 1 when the last caught_up was written
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
  return new SubscriptionReactor<v1::EventRecord>(this, store_, security_, context,
                                                  std::move(caller), SpecOf(request));
}

grpc::ServerWriteReactor<v1::FollowMessage>* SubscriptionHub::Follow(
    grpc::CallbackServerContext* context, absl::StatusOr<Caller> caller, SubscriptionSpec spec) {
  return new SubscriptionReactor<v1::FollowMessage>(this, store_, security_, context,
                                                    std::move(caller), std::move(spec));
}

void SubscriptionHub::StopAll() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  for (Subscription* subscription : open_) {
    if (subscription->RequestStop()) wake_queue_.push_back(subscription);
  }
}

void SubscriptionHub::RecheckAll() {
  absl::MutexLock lock(&mu_);
  for (Subscription* subscription : open_) {
    if (subscription->RequestRecheck()) wake_queue_.push_back(subscription);
  }
}

std::vector<SubscriptionHub::ConsumerLag> SubscriptionHub::ConsumerLags(uint64_t head) const {
  absl::flat_hash_map<std::string, ConsumerLag> by_consumer;
  {
    absl::MutexLock lock(&mu_);
    for (const Subscription* subscription : open_) {
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

bool SubscriptionHub::Register(Subscription* subscription) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return false;
  open_.insert(subscription);
  return true;
}

void SubscriptionHub::Unregister(Subscription* subscription) {
  absl::MutexLock lock(&mu_);
  open_.erase(subscription);
}

void SubscriptionHub::Wake(Subscription* subscription) {
  absl::MutexLock lock(&mu_);
  wake_queue_.push_back(subscription);
}

void SubscriptionHub::RunWaker() {
  auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return exiting_ || !wake_queue_.empty();
  };
  while (true) {
    Subscription* subscription = nullptr;
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
