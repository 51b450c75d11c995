// LatencyHistogram: an HDR-like, log-bucketed histogram of durations in nanoseconds.
//
// Values below 128 ns get a bucket each; above, every power of two is split into 64 equal
// buckets, so a reported percentile is at most 1/64 (~1.6%) above the true value and never below
// it (a percentile reports its bucket's upper bound, capped at the largest value recorded).
// Covers the whole uint64_t range in 3776 buckets (~30 KiB).
//
// Thread-safe: Record is lock-free (relaxed atomics) and may run on any number of threads;
// the readers (Count, Percentile, ...) see every Record that happened before them.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace outreach::load {

class LatencyHistogram {
 public:
  static constexpr int kSubBucketBits = 6;                      // 64 buckets per power of two
  static constexpr uint64_t kLinearLimit = 2u << kSubBucketBits;  // exact below 128
  static constexpr std::size_t kNumBuckets =
      kLinearLimit + (64 - (kSubBucketBits + 1)) * (1u << kSubBucketBits);

  LatencyHistogram() = default;
  LatencyHistogram(const LatencyHistogram&) = delete;
  LatencyHistogram& operator=(const LatencyHistogram&) = delete;

  void Record(uint64_t nanos);

  uint64_t Count() const;
  uint64_t MaxNanos() const { return max_.load(std::memory_order_relaxed); }
  double MeanNanos() const;
  // The smallest bucket bound at or above the q-quantile (0 < q <= 1) of the recorded values;
  // 0 when nothing was recorded.
  uint64_t PercentileNanos(double q) const;

  // Bucket arithmetic, exposed for tests.
  static std::size_t BucketOf(uint64_t nanos);
  static uint64_t BucketUpperBound(std::size_t bucket);

 private:
  std::array<std::atomic<uint64_t>, kNumBuckets> counts_{};
  std::atomic<uint64_t> total_{0};
  std::atomic<uint64_t> sum_{0};
  std::atomic<uint64_t> max_{0};
};

}  // namespace outreach::load
