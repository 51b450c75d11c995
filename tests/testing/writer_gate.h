// WriterGate: holds the store's writer thread between two batches, so that a test can queue
// several commands and have the writer take them as ONE batch (group commit), and can see how
// many commands each batch held. Wire Hook() into StoreOptions::before_batch; the gate must
// outlive the store, and must not be holding the writer when the store closes (the store waits
// for its writer). Thread-safe.
//
//   gate.HoldNextBatch();
//   store->Submit(first, ...);     // the writer takes it as a batch and waits in the hook
//   gate.WaitUntilHeld();
//   store->Submit(a, ...); store->Submit(b, ...);  // queue behind the held writer
//   gate.Release();                // the writer's next batch is {a, b}
//   EXPECT_THAT(gate.batch_sizes(), ElementsAre(1, 2));
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace outreach::testing {

class WriterGate {
 public:
  // For StoreOptions::before_batch.
  std::function<void(std::size_t)> Hook();

  // The next batch the writer takes waits in the hook until Release(). Starts batch_sizes()
  // afresh.
  void HoldNextBatch();
  // Returns once the writer waits in the hook: it has taken its batch off the queue, and every
  // command submitted from now on queues for a later batch.
  void WaitUntilHeld();
  // Lets a held writer go on (and cancels a HoldNextBatch() the writer has not reached yet).
  void Release();

  // How many commands each batch held, in order, since the last HoldNextBatch().
  std::vector<std::size_t> batch_sizes() const;

 private:
  void BeforeBatch(std::size_t commands);

  mutable absl::Mutex mu_;
  bool hold_ ABSL_GUARDED_BY(mu_) = false;
  bool held_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::size_t> sizes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace outreach::testing
