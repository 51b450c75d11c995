#include "tests/testing/writer_gate.h"

namespace outreach::testing {

std::function<void(std::size_t)> WriterGate::Hook() {
  return [this](std::size_t commands) { BeforeBatch(commands); };
}

void WriterGate::HoldNextBatch() {
  absl::MutexLock lock(&mu_);
  hold_ = true;
  sizes_.clear();
}

void WriterGate::WaitUntilHeld() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&held_));
}

void WriterGate::Release() {
  absl::MutexLock lock(&mu_);
  hold_ = false;
}

std::vector<std::size_t> WriterGate::batch_sizes() const {
  absl::MutexLock lock(&mu_);
  return sizes_;
}

void WriterGate::BeforeBatch(std::size_t commands) {
  absl::MutexLock lock(&mu_);
  sizes_.push_back(commands);
  if (!hold_) return;
  held_ = true;
  mu_.Await(absl::Condition(+[](bool* hold) { return !*hold; }, &hold_));
  held_ = false;
}

}  // namespace outreach::testing
