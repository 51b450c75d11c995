// PracticeZoneTable: the per-practice time zones the writer decides with (domain::PracticeZones,
// "today" for a practice's tasks), replaceable while the store runs (outreachd re-reads its
// --practice-time-zones file on SIGHUP).
//
// Thread-safe: Replace swaps a shared_ptr to an immutable map under a mutex; Snapshot hands out
// the current one, which stays valid (and unchanged) for as long as the caller holds it. The
// writer takes one snapshot per command it decides, so a command is decided with one map from
// start to end, and a reload applies to every command decided after it.
#pragma once

#include <memory>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "domain/task_rules.h"

namespace outreach::store {

class PracticeZoneTable {
 public:
  explicit PracticeZoneTable(domain::PracticeZones zones = {})
      : zones_(std::make_shared<const domain::PracticeZones>(std::move(zones))) {}
  PracticeZoneTable(const PracticeZoneTable&) = delete;
  PracticeZoneTable& operator=(const PracticeZoneTable&) = delete;

  std::shared_ptr<const domain::PracticeZones> Snapshot() const {
    absl::MutexLock lock(&mu_);
    return zones_;
  }
  void Replace(domain::PracticeZones zones) {
    auto next = std::make_shared<const domain::PracticeZones>(std::move(zones));
    absl::MutexLock lock(&mu_);
    zones_ = std::move(next);
  }

 private:
  mutable absl::Mutex mu_;
  std::shared_ptr<const domain::PracticeZones> zones_ ABSL_GUARDED_BY(mu_);
};

}  // namespace outreach::store
