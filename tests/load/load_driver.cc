#include "tests/load/load_driver.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"

namespace outreach::load {
namespace {

constexpr int kNumStatusCodes = 17;  // grpc::StatusCode OK .. UNAUTHENTICATED

double Millis(uint64_t nanos) { return static_cast<double>(nanos) / 1e6; }

// The state one Run shares with the completions of its requests.
class Runner {
 public:
  Runner(Workload& workload, const RunOptions& options)
      : workload_(workload), options_(options) {}

  RunResult RunClosedLoop() {
    Begin();
    {
      absl::MutexLock lock(&mu_);
      in_flight_ = options_.concurrency;
    }
    for (int i = 0; i < options_.concurrency; ++i) LaunchClosed();
    // The calling thread only reports progress; completions keep the loop going.
    while (true) {
      const SteadyClock::time_point now = SteadyClock::now();
      if (now >= end_) break;
      if (options_.max_requests > 0 && next_sequence_.load() >= options_.max_requests) break;
      MaybeReportProgress(now);
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(this, &Runner::Idle), absl::Milliseconds(100));
    }
    stopping_.store(true);
    return Finish();
  }

  RunResult RunOpenLoop() {
    Begin();
    const double period_ns = 1e9 / options_.rate;
    for (uint64_t i = 0;; ++i) {
      const SteadyClock::time_point intended =
          start_ + std::chrono::nanoseconds(static_cast<int64_t>(period_ns * static_cast<double>(i)));
      if (intended >= end_) break;
      std::this_thread::sleep_until(intended);
      MaybeReportProgress(SteadyClock::now());
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(this, &Runner::HasRoom));
        ++in_flight_;
      }
      IssueOne(next_sequence_.fetch_add(1), intended, /*relaunch=*/false);
    }
    stopping_.store(true);
    return Finish();
  }

 private:
  void Begin() {
    start_ = SteadyClock::now();
    end_ = start_ + absl::ToChronoNanoseconds(options_.duration);
    last_progress_ = start_;
    next_progress_ = start_ + std::chrono::seconds(1);
  }

  bool Idle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_flight_ == 0; }
  bool HasRoom() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return in_flight_ < options_.max_in_flight;
  }

  // Closed loop: starts the next request, unless the run is over (then this slot retires).
  void LaunchClosed() {
    const uint64_t sequence = next_sequence_.fetch_add(1);
    if (stopping_.load() || SteadyClock::now() >= end_ ||
        (options_.max_requests > 0 && sequence >= options_.max_requests)) {
      absl::MutexLock lock(&mu_);
      --in_flight_;
      return;
    }
    IssueOne(sequence, SteadyClock::now(), /*relaunch=*/true);
  }

  void IssueOne(uint64_t sequence, SteadyClock::time_point started, bool relaunch) {
    workload_.Issue(sequence, [this, started, relaunch](const grpc::Status& status,
                                                        SteadyClock::duration untimed) {
      const SteadyClock::time_point now = SteadyClock::now();
      Record(status, now - started - untimed, now);
      if (relaunch) {
        LaunchClosed();
      } else {
        absl::MutexLock lock(&mu_);
        --in_flight_;
      }
    });
  }

  void Record(const grpc::Status& status, SteadyClock::duration latency,
              SteadyClock::time_point now) {
    const uint64_t nanos = static_cast<uint64_t>(
        std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(latency).count()));
    histogram_.Record(nanos);
    uint64_t window_max = window_max_nanos_.load(std::memory_order_relaxed);
    while (nanos > window_max && !window_max_nanos_.compare_exchange_weak(
                                     window_max, nanos, std::memory_order_relaxed)) {
    }
    completed_.fetch_add(1, std::memory_order_relaxed);
    if (!status.ok()) {
      const int code = std::clamp(static_cast<int>(status.error_code()), 0, kNumStatusCodes - 1);
      code_counts_[code].fetch_add(1, std::memory_order_relaxed);
      if (!has_first_error_.exchange(true)) {
        absl::MutexLock lock(&mu_);
        first_error_ = absl::StrCat(StatusCodeName(status.error_code()), ": ",
                                    status.error_message());
      }
    }
    int64_t stamp = (now - start_).count();
    int64_t seen = last_completion_.load(std::memory_order_relaxed);
    while (stamp > seen &&
           !last_completion_.compare_exchange_weak(seen, stamp, std::memory_order_relaxed)) {
    }
  }

  uint64_t Errors() const {
    uint64_t errors = 0;
    for (const auto& count : code_counts_) errors += count.load(std::memory_order_relaxed);
    return errors;
  }

  void MaybeReportProgress(SteadyClock::time_point now) {
    if (!options_.progress || now < next_progress_) return;
    const uint64_t done = completed_.load(std::memory_order_relaxed);
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double window = std::chrono::duration<double>(now - last_progress_).count();
    const double rate =
        static_cast<double>(done - last_progress_count_) / std::max(window, 1e-9);
    // The slowest request of the last second: where a stall happened in the run.
    const double slowest = Millis(window_max_nanos_.exchange(0, std::memory_order_relaxed));
    absl::FPrintF(stderr, "[%s] %5.1fs  %9d requests  %9.0f req/s  %d errors  max %.1f ms\n",
                  options_.label, elapsed, done, rate, Errors(), slowest);
    last_progress_ = now;
    last_progress_count_ = done;
    next_progress_ = now + std::chrono::seconds(1);
  }

  RunResult Finish() {
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &Runner::Idle));
    }
    RunResult result;
    result.requests = completed_.load();
    result.errors = Errors();
    for (int code = 0; code < kNumStatusCodes; ++code) {
      if (const uint64_t n = code_counts_[code].load(); n > 0) {
        result.error_codes[StatusCodeName(static_cast<grpc::StatusCode>(code))] = n;
      }
    }
    {
      absl::MutexLock lock(&mu_);
      result.first_error = first_error_;
    }
    result.elapsed_seconds =
        std::chrono::duration<double>(SteadyClock::duration(last_completion_.load())).count();
    if (result.elapsed_seconds > 0) {
      result.rps = static_cast<double>(result.requests) / result.elapsed_seconds;
    }
    result.p50_ms = Millis(histogram_.PercentileNanos(0.50));
    result.p90_ms = Millis(histogram_.PercentileNanos(0.90));
    result.p99_ms = Millis(histogram_.PercentileNanos(0.99));
    result.p999_ms = Millis(histogram_.PercentileNanos(0.999));
    result.max_ms = Millis(histogram_.MaxNanos());
    result.mean_ms = histogram_.MeanNanos() / 1e6;
    return result;
  }

  Workload& workload_;
  const RunOptions& options_;
  SteadyClock::time_point start_;
  SteadyClock::time_point end_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> next_sequence_{0};
  std::atomic<uint64_t> completed_{0};
  std::atomic<int64_t> last_completion_{0};  // steady-clock ticks since start_
  std::atomic<uint64_t> window_max_nanos_{0};  // slowest since the last progress line
  std::array<std::atomic<uint64_t>, kNumStatusCodes> code_counts_{};
  std::atomic<bool> has_first_error_{false};
  LatencyHistogram histogram_;

  // Only the thread in Run touches these.
  SteadyClock::time_point next_progress_;
  SteadyClock::time_point last_progress_;
  uint64_t last_progress_count_ = 0;

  absl::Mutex mu_;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  std::string first_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

RunResult Run(Workload& workload, const RunOptions& options) {
  Runner runner(workload, options);
  return options.rate > 0 ? runner.RunOpenLoop() : runner.RunClosedLoop();
}

std::string StatusCodeName(grpc::StatusCode code) {
  static constexpr const char* kNames[kNumStatusCodes] = {
      "OK",                "CANCELLED",          "UNKNOWN",      "INVALID_ARGUMENT",
      "DEADLINE_EXCEEDED", "NOT_FOUND",          "ALREADY_EXISTS", "PERMISSION_DENIED",
      "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",     "OUT_OF_RANGE",
      "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",  "DATA_LOSS",
      "UNAUTHENTICATED"};
  const int index = static_cast<int>(code);
  if (index < 0 || index >= kNumStatusCodes) return absl::StrCat("CODE_", index);
  return kNames[index];
}

}  // namespace outreach::load
