#include "store/expiry_scheduler.h"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/blocking_counter.h"
#include "logging/log.h"

namespace outreach::store {

absl::StatusOr<int> ExpireDue(EventStore& store, absl::Time now) {
  if (store.read_only()) return absl::FailedPreconditionError(kReadOnlyMessage);
  int closed = 0;
  std::string start;
  while (true) {
    absl::StatusOr<std::vector<std::string>> due =
        store.DueTasks(now, &start, store.max_commands_per_batch());
    if (!due.ok()) return due.status();
    if (due->empty()) return closed;
    // One group: every command is queued at once, so the writer can commit them together.
    absl::Mutex mu;
    absl::Status failure;
    absl::BlockingCounter remaining(static_cast<int>(due->size()));
    std::vector<EventStore::Submission> commands;
    for (std::string& task_id : *due) {
      commands.push_back(EventStore::Submission{
          domain::ExpireTaskCommand{std::move(task_id)}, std::string(),
          [&](absl::StatusOr<CommandResult> result) {
            {
              absl::MutexLock lock(&mu);
              if (result.ok()) {
                if (!result->events.empty()) ++closed;
              } else if (result.status().code() != absl::StatusCode::kFailedPrecondition &&
                         result.status().code() != absl::StatusCode::kNotFound &&
                         failure.ok()) {
                // FAILED_PRECONDITION: not due by the writer's clock yet; the next call will.
                failure = result.status();
              }
            }
            remaining.DecrementCount();
          }});
    }
    store.SubmitGroup(std::move(commands));
    remaining.Wait();
    absl::MutexLock lock(&mu);
    if (!failure.ok()) return failure;
  }
}
namespace {

// How long to wait before retrying when a pass closed nothing although rows were due (a refused
// write, or a row due by the index's microseconds but not yet by the task's nanoseconds).
constexpr absl::Duration kRetryPause = absl::Milliseconds(50);

}  // namespace

ExpiryScheduler::ExpiryScheduler(EventStore* store, Clock* clock, absl::Duration poll)
    : store_(store), clock_(clock), poll_(poll), thread_([this] { Run(); }) {}

ExpiryScheduler::~ExpiryScheduler() { Stop(); }

void ExpiryScheduler::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void ExpiryScheduler::Run() {
  while (true) {
    absl::Duration wait = poll_;
    const absl::Time now = clock_->Now();
    if (std::optional<absl::Time> next = store_->NextExpiry(); next.has_value()) {
      if (*next <= now) {
        absl::StatusOr<int> closed = ExpireDue(*store_, now);
        if (!closed.ok()) {
          logging::Error("expiry: closing the due tasks failed; retrying",
                         {{"cause", closed.status().ToString()}});
        }
        wait = closed.ok() && *closed > 0 ? absl::ZeroDuration() : std::min(poll_, kRetryPause);
      } else {
        wait = std::min(*next - now, poll_);
      }
    }
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    if (wait > absl::ZeroDuration() &&
        mu_.AwaitWithTimeout(absl::Condition(&stopping_), wait)) {
      return;
    }
  }
}

}  // namespace outreach::store
