// GroupCommit<Item, Result>: a queue with one writer thread that takes the queued items in
// batches (group commit: leveldb's DBImpl::Write, where one synced write serves every writer that
// queued meanwhile) and one completion thread that answers them. The access log
// (store/access_log.h) writes its records through one, the event writer (store/event_writer.h)
// its commands through another.
//
// Threads and ordering guarantees:
//  - Submit() may be called from any thread. Items keep their submission order; the items of one
//    Submit(vector) call are queued together, with no other caller's item between them (they may
//    still span batches).
//  - The writer thread runs one round at a time: first the RunOnWriter() functions that wait,
//    then `tick` if it is due, then, unless paused, up to `max_batch` items taken off the queue
//    and handed to `process` as one batch, which returns one Result per item, in order. Items
//    submitted while it works make up the next batch together. `process`, `tick` and
//    `before_batch` run on the writer thread only, one at a time: the state they share needs no
//    lock among them.
//  - The completion thread runs each item's `done(result)` in submission order, across batches,
//    so that the writer goes on to its next batch at once. A `done` may Submit() again (after
//    Stop() has begun that is refused at once), but must not call Pause(), RunOnWriter() or
//    Stop(), nor wait for an item submitted later: each waits for the completion thread itself.
//  - A refused item (Submit() after Stop() has begun) gets its `done` at once, on the caller's
//    thread, inside Submit(), with Result(options.refusal).
//  - `tick` runs on the writer thread when the writer starts, then whenever `clock` shows that
//    tick_every has passed since the last one; the writer wakes at least every tick_every, so it
//    runs while the queue is idle too. It does not run while paused.
//  - Pause() returns once every item submitted before it has been processed and its `done` has
//    run, and the writer is between rounds. Until Unpause(), the writer takes no item and runs
//    no tick: the caller has the writer's state to itself. Items submitted meanwhile wait.
//    RunOnWriter() still runs. One Pause() at a time: a second waits for the first's Unpause().
//  - Stop() (and the destructor) refuses items from then on, lets the writer process everything
//    already queued (waiting for an Unpause() if paused), waits for every `done` to run and joins
//    both threads. Idempotent; it must not run on either thread (from a callback).
//
// Thread-safe. The callbacks must outlive the GroupCommit; the threads start in the constructor,
// so the owner constructs it once the state `process` and `tick` use is ready.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "store/clock.h"

namespace outreach::store {

struct GroupCommitOptions {
  // The most items one batch holds (0 counts as 1).
  std::size_t max_batch = 1024;
  // Runs on the writer thread at its start, then at most every tick_every by `clock`, idle or
  // not (see the contract above). Empty: no tick. tick_every below 1 ms counts as 1 ms.
  std::function<void()> tick;
  absl::Duration tick_every = absl::InfiniteDuration();
  Clock* clock = nullptr;  // what tick_every is measured by; nullptr = Clock::Real()
  // What a refused item's `done` gets once Stop() has begun, and what RunOnWriter() returns then
  // (each gets a copy of its own: UnsharedCopy).
  absl::Status refusal = absl::UnavailableError("shutting down");
  // Test only; leave empty in production. Called on the writer thread with the number of items
  // it has just taken off the queue as one batch, before `process`. A hook that blocks holds the
  // writer, so the items submitted meanwhile make up the next batch together
  // (tests/testing/writer_gate.h).
  std::function<void(std::size_t items)> before_batch;
};

// `status` with a representation of its own (code, message, payloads), sharing nothing with it.
// A Status shares its representation through a reference count that Debian's (uninstrumented)
// Abseil updates where TSan cannot see the ordering: a status that one thread makes and another
// thread drops (a result the writer makes and the completion thread destroys) is copied with
// this so that no reference count is touched by both.
absl::Status UnsharedCopy(const absl::Status& status);

template <typename Item, typename Result>
class GroupCommit {
 public:
  // Runs once, on the completion thread (or in Submit() when refused).
  using Done = absl::AnyInvocable<void(Result result) &&>;
  // Called on the writer thread with one batch (the items may be moved from); returns one
  // Result per item, in order. A result count that differs fails the whole batch (INTERNAL).
  using Process = absl::AnyInvocable<std::vector<Result>(std::vector<Item>& items)>;

  // Starts the completion and writer threads.
  GroupCommit(Process process, GroupCommitOptions options)
      : process_(std::move(process)),
        options_(std::move(options)),
        clock_(options_.clock != nullptr ? options_.clock : Clock::Real()),
        max_batch_(std::max<std::size_t>(options_.max_batch, 1)),
        tick_every_(std::max(options_.tick_every, absl::Milliseconds(1))) {
    absl::MutexLock lock(&stop_mu_);
    completer_ = std::thread([this] { CompleterLoop(); });
    writer_ = std::thread([this] { WriterLoop(); });
  }

  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;

  ~GroupCommit() { Stop(); }

  // Queues `item`; `done` gets its result (see the contract above).
  void Submit(Item item, Done done) {
    {
      absl::MutexLock lock(&mu_);
      if (!stopping_) {
        queue_.push_back(Queued{std::move(item), std::move(done)});
        return;
      }
    }
    std::move(done)(Result(UnsharedCopy(options_.refusal)));
  }

  // Queues `items` together, in order.
  void Submit(std::vector<std::pair<Item, Done>> items) {
    {
      absl::MutexLock lock(&mu_);
      if (!stopping_) {
        for (auto& [item, done] : items) queue_.push_back(Queued{std::move(item), std::move(done)});
        return;
      }
    }
    for (auto& entry : items) std::move(entry.second)(Result(UnsharedCopy(options_.refusal)));
  }

  // Returns once every item submitted before it has been processed and answered, and holds the
  // writer off until Unpause() (see the contract above).
  void Pause() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &GroupCommit::NoPause));
    pausing_ = true;
    hold_at_ = taken_ + queue_.size();
    mu_.Await(absl::Condition(this, &GroupCommit::ReachedHold));
  }

  // Lets the writer go on after Pause().
  void Unpause() {
    absl::MutexLock lock(&mu_);
    pausing_ = false;
    hold_at_ = kNoHold;
  }

  // Runs `fn` on the writer thread at the start of its next round, paused or not, and returns
  // once it has run: OK, or the refusal without running it once Stop() has begun. Never from the
  // writer or the completion thread.
  absl::Status RunOnWriter(absl::FunctionRef<void()> fn) {
    Request request{fn};
    absl::MutexLock lock(&mu_);
    if (stopping_) return UnsharedCopy(options_.refusal);
    requests_.push_back(&request);
    mu_.Await(absl::Condition(&request.ran));
    return absl::OkStatus();
  }

  // Items queued and not yet taken by the writer (for monitoring).
  std::size_t QueueDepth() const {
    absl::MutexLock lock(&mu_);
    return queue_.size();
  }

  // Refuses new items, processes and answers every queued one, joins both threads (see the
  // contract above).
  void Stop() {
    absl::MutexLock stop_lock(&stop_mu_);
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    if (writer_.joinable()) writer_.join();
    {
      // The writer is gone: once the completer has run every callback queued, it returns.
      absl::MutexLock lock(&mu_);
      closed_ = true;
    }
    if (completer_.joinable()) completer_.join();
  }

 private:
  static constexpr uint64_t kNoHold = std::numeric_limits<uint64_t>::max();

  struct Queued {
    Item item;
    Done done;
  };
  // A RunOnWriter() call waiting for the writer; lives on the caller's stack.
  struct Request {
    absl::FunctionRef<void()> fn;
    bool ran = false;  // guarded by mu_: the caller returns (and drops it) once it reads true
  };
  // What the writer took for one round.
  struct Round {
    std::vector<Request*> requests;
    bool held = false;  // a Pause() holds the writer: no tick, no items
    bool tick = false;  // the tick is due
    std::vector<Item> items;
    std::vector<Done> dones;
  };
  // A processed batch's callbacks and results, in submission order.
  struct Completion {
    std::vector<Done> dones;
    std::vector<Result> results;
  };

  // ---- Conditions (mu_) ----

  // How many queued items the writer may take now: those before a Pause()'s hold.
  std::size_t Takeable() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    if (hold_at_ == kNoHold) return queue_.size();
    return static_cast<std::size_t>(
        std::min<uint64_t>(queue_.size(), hold_at_ > taken_ ? hold_at_ - taken_ : 0));
  }
  bool Held() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return hold_at_ != kNoHold && taken_ >= hold_at_;
  }
  bool WriterHasWork() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return !requests_.empty() || Takeable() > 0 || (stopping_ && queue_.empty());
  }
  bool CompleterHasWork() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return closed_ || !completions_.empty();
  }
  bool NoPause() const ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !pausing_; }
  bool ReachedHold() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return answered_ >= hold_at_ && !busy_;
  }

  // ---- The writer thread ----

  void WriterLoop() {
    absl::Time next_tick = absl::InfinitePast();
    while (true) {
      Round round;  // what the round took goes with it, before the writer waits again
      if (!TakeRound(next_tick, round)) return;
      for (Request* request : round.requests) request->fn();
      if (!round.requests.empty()) {
        absl::MutexLock lock(&mu_);
        for (Request* request : round.requests) request->ran = true;
      }
      if (round.tick) {
        options_.tick();
        next_tick = clock_->Now() + tick_every_;
      }
      if (!round.items.empty()) ProcessBatch(round);
      absl::MutexLock lock(&mu_);
      busy_ = false;
    }
  }

  // Waits for work (not at all while the tick is due, at most tick_every when there is one),
  // then takes the round's requests and items. False once Stop() has begun and nothing is left.
  bool TakeRound(absl::Time next_tick, Round& round) {
    absl::MutexLock lock(&mu_);
    const absl::Condition has_work(this, &GroupCommit::WriterHasWork);
    if (!options_.tick) {
      mu_.Await(has_work);
    } else if (Held() || clock_->Now() < next_tick) {
      mu_.AwaitWithTimeout(has_work, tick_every_);
    }
    if (stopping_ && queue_.empty() && requests_.empty()) return false;
    round.requests.swap(requests_);
    round.held = Held();
    round.tick = options_.tick && !round.held && clock_->Now() >= next_tick;
    const std::size_t n = std::min(Takeable(), max_batch_);
    round.items.reserve(n);
    round.dones.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      round.items.push_back(std::move(queue_.front().item));
      round.dones.push_back(std::move(queue_.front().done));
      queue_.pop_front();
    }
    taken_ += n;
    busy_ = true;
    return true;
  }

  // Processes the round's items and hands their callbacks to the completion thread.
  void ProcessBatch(Round& round) {
    if (options_.before_batch) options_.before_batch(round.items.size());
    std::vector<Result> results = process_(round.items);
    if (results.size() != round.items.size()) {
      const absl::Status wrong = absl::InternalError(absl::StrCat(
          "group commit: ", results.size(), " results for ", round.items.size(), " items"));
      results.clear();
      for (std::size_t i = 0; i < round.items.size(); ++i) {
        results.emplace_back(UnsharedCopy(wrong));
      }
    }
    absl::MutexLock lock(&mu_);
    completions_.push_back(Completion{std::move(round.dones), std::move(results)});
  }

  // ---- The completion thread ----

  void CompleterLoop() {
    while (true) {
      std::deque<Completion> work;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(this, &GroupCommit::CompleterHasWork));
        if (completions_.empty()) return;  // closed, and every callback has run
        work.swap(completions_);
      }
      for (Completion& completion : work) {
        const std::size_t n = completion.dones.size();
        for (std::size_t i = 0; i < n; ++i) {
          std::move(completion.dones[i])(std::move(completion.results[i]));
        }
        // Each `done`, and what it holds, is gone before a Pause() may return.
        completion = Completion();
        absl::MutexLock lock(&mu_);
        answered_ += n;
      }
    }
  }

  Process process_;  // the writer thread's only
  const GroupCommitOptions options_;
  Clock* const clock_;
  const std::size_t max_batch_;
  const absl::Duration tick_every_;

  mutable absl::Mutex mu_;
  std::deque<Queued> queue_ ABSL_GUARDED_BY(mu_);
  std::vector<Request*> requests_ ABSL_GUARDED_BY(mu_);
  uint64_t taken_ ABSL_GUARDED_BY(mu_) = 0;     // items the writer has taken off the queue
  uint64_t answered_ ABSL_GUARDED_BY(mu_) = 0;  // items whose `done` has run
  bool busy_ ABSL_GUARDED_BY(mu_) = false;      // the writer is in a round
  bool pausing_ ABSL_GUARDED_BY(mu_) = false;   // between Pause() and Unpause()
  // The writer takes no item at or past this count of items taken; kNoHold when not paused.
  uint64_t hold_at_ ABSL_GUARDED_BY(mu_) = kNoHold;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;  // Stop() has begun: refuse new items
  std::deque<Completion> completions_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;  // the writer is gone: no more completions

  // Held by Stop() throughout, so that concurrent calls join each thread once.
  absl::Mutex stop_mu_;
  std::thread writer_ ABSL_GUARDED_BY(stop_mu_);
  std::thread completer_ ABSL_GUARDED_BY(stop_mu_);
};

}  // namespace outreach::store
