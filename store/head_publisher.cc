#include "store/head_publisher.h"

#include <utility>

namespace outreach::store {

void HeadPublisher::Publish(uint64_t head) {
  published_.store(head);
  {
    absl::MutexLock lock(&mu_);
    followed_ = head;
  }
  absl::MutexLock lock(&listeners_mu_);
  for (auto& [id, listener] : listeners_) listener(head);
}

bool HeadPublisher::WaitForHeadAbove(uint64_t position, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  if (closing_) return followed_ > position;
  ++waiters_;
  struct Wait {
    const HeadPublisher* self;
    uint64_t position;
    static bool Done(Wait* wait) ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return wait->self->Reached(wait->position);
    }
  } wait{this, position};
  mu_.AwaitWithTimeout(absl::Condition(&Wait::Done, &wait), timeout);
  --waiters_;
  return followed_ > position;
}

HeadPublisher::ListenerId HeadPublisher::AddListener(Listener listener) {
  absl::MutexLock lock(&listeners_mu_);
  const ListenerId id = ++last_id_;
  listeners_.emplace(id, std::move(listener));
  return id;
}

void HeadPublisher::RemoveListener(ListenerId id) {
  absl::MutexLock lock(&listeners_mu_);
  listeners_.erase(id);
}

void HeadPublisher::Close() {
  absl::MutexLock lock(&mu_);
  closing_ = true;
  mu_.Await(absl::Condition(this, &HeadPublisher::NoWaiters));
}

}  // namespace outreach::store
