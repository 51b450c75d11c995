#include "tests/load/latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace outreach::load {

std::size_t LatencyHistogram::BucketOf(uint64_t nanos) {
  if (nanos < kLinearLimit) return static_cast<std::size_t>(nanos);
  const int exponent = 63 - std::countl_zero(nanos);  // >= kSubBucketBits + 1
  const int shift = exponent - kSubBucketBits;
  const uint64_t mantissa = nanos >> shift;  // in [64, 128)
  return kLinearLimit +
         static_cast<std::size_t>(exponent - (kSubBucketBits + 1)) * (1u << kSubBucketBits) +
         static_cast<std::size_t>(mantissa - (1u << kSubBucketBits));
}

uint64_t LatencyHistogram::BucketUpperBound(std::size_t bucket) {
  if (bucket < kLinearLimit) return bucket;
  const std::size_t rest = bucket - kLinearLimit;
  const int exponent = static_cast<int>(rest >> kSubBucketBits) + kSubBucketBits + 1;
  const int shift = exponent - kSubBucketBits;
  const uint64_t mantissa = (rest & ((1u << kSubBucketBits) - 1)) + (1u << kSubBucketBits);
  const uint64_t low = mantissa << shift;
  return low + ((uint64_t{1} << shift) - 1);  // the last bucket ends exactly at UINT64_MAX
}

void LatencyHistogram::Record(uint64_t nanos) {
  counts_[BucketOf(nanos)].fetch_add(1, std::memory_order_relaxed);
  total_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(nanos, std::memory_order_relaxed);
  uint64_t seen = max_.load(std::memory_order_relaxed);
  while (nanos > seen && !max_.compare_exchange_weak(seen, nanos, std::memory_order_relaxed)) {
  }
}

uint64_t LatencyHistogram::Count() const { return total_.load(std::memory_order_relaxed); }

double LatencyHistogram::MeanNanos() const {
  const uint64_t count = Count();
  if (count == 0) return 0;
  return static_cast<double>(sum_.load(std::memory_order_relaxed)) / static_cast<double>(count);
}

uint64_t LatencyHistogram::PercentileNanos(double q) const {
  // Sum the buckets themselves rather than trusting total_: a concurrent Record may have bumped
  // one and not yet the other.
  uint64_t count = 0;
  for (const auto& c : counts_) count += c.load(std::memory_order_relaxed);
  if (count == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  const uint64_t rank =
      std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(count))));
  uint64_t seen = 0;
  for (std::size_t bucket = 0; bucket < kNumBuckets; ++bucket) {
    seen += counts_[bucket].load(std::memory_order_relaxed);
    if (seen >= rank) return std::min(BucketUpperBound(bucket), MaxNanos());
  }
  return MaxNanos();
}

}  // namespace outreach::load
