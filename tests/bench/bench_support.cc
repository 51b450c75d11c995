#include "tests/bench/bench_support.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "domain/validation.h"

namespace outreach::bench {

std::string TaskId(uint64_t i) { return absl::StrFormat("t%09d", i); }

domain::CreateTaskCommand CreateCommand(uint64_t i, absl::CivilDay follow_up) {
  domain::CreateTaskCommand command;
  command.task_id = TaskId(i);
  command.patient_id = absl::StrCat("patient-", i % 50000);
  command.kind = v1::MANUAL;
  command.title = "Schedule annual wellness visit";
  command.assignee = absl::StrCat("agent-", i % 16);
  command.follow_up_date = domain::FormatDate(follow_up);
  command.meta.actor = "coordinator-1";
  return command;
}

domain::LogContactCommand LogContactCommand(const std::string& task_id, uint64_t i,
                                            absl::CivilDay follow_up) {
  static constexpr v1::ContactOutcome kOutcomes[] = {v1::NO_ANSWER, v1::LEFT_MESSAGE,
                                                     v1::DID_NOT_SCHEDULE};
  domain::LogContactCommand command;
  command.task_id = task_id;
  command.outcome = kOutcomes[i % 3];
  command.notes = "Called the mobile number; will try again.";
  command.follow_up_date = domain::FormatDate(follow_up);
  command.meta.actor = "coordinator-1";
  return command;
}

absl::CivilDay TomorrowUtc() { return absl::ToCivilDay(absl::Now(), absl::UTCTimeZone()) + 1; }

std::string ScratchDir(const std::string& name) {
  const char* base = std::getenv("OUTREACH_BENCH_DIR");
  const std::filesystem::path root =
      base != nullptr && *base != '\0' ? std::filesystem::path(base)
                                       : std::filesystem::temp_directory_path();
  const std::filesystem::path dir = root / absl::StrCat("outreach-", name, "-", getpid());
  std::error_code error;
  std::filesystem::remove_all(dir, error);
  std::filesystem::create_directories(dir, error);
  return dir.string();
}

void RemoveDir(const std::string& dir) {
  std::error_code error;
  std::filesystem::remove_all(dir, error);
}

absl::Status BulkSubmit(store::EventStore& store, uint64_t count, int in_flight,
                        const std::function<domain::Command(uint64_t)>& make,
                        const std::function<void(uint64_t)>& progress) {
  absl::Mutex mu;
  uint64_t queued = 0;
  uint64_t done = 0;
  absl::Status first_error;
  for (uint64_t i = 0; i < count; ++i) {
    {
      absl::MutexLock lock(&mu);
      const auto has_room = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu) {
        return queued - done < static_cast<uint64_t>(in_flight);
      };
      mu.Await(absl::Condition(&has_room));
      ++queued;
    }
    store.Submit(make(i), "", [&](absl::StatusOr<store::CommandResult> result) {
      absl::MutexLock lock(&mu);
      if (!result.ok() && first_error.ok()) first_error = result.status();
      ++done;
    });
    if (progress && (i + 1) % 100000 == 0) progress(i + 1);
  }
  absl::MutexLock lock(&mu);
  const auto all_done = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu) { return done == count; };
  mu.Await(absl::Condition(&all_done));
  return first_error;
}

}  // namespace outreach::bench
