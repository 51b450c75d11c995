// store/huge_pages.h: large allocations are whole, aligned huge pages; small ones and the
// containers over the allocator behave like ordinary memory.
#include "store/huge_pages.h"

#include <cstdint>
#include <cstring>
#include <numeric>
#include <vector>

#include "gtest/gtest.h"

namespace outreach::store {
namespace {

TEST(HugePagesTest, LargeAllocationIsHugePageAlignedAndWritableToItsEnd) {
  const std::size_t bytes = kHugePageBytes + 12345;  // rounded up to two huge pages
  auto* p = static_cast<char*>(AllocateHuge(bytes));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % kHugePageBytes, 0u);
  std::memset(p, 0xAB, bytes);
  EXPECT_EQ(static_cast<unsigned char>(p[bytes - 1]), 0xAB);
  FreeHuge(p, bytes);
}

TEST(HugePagesTest, SmallAllocationIsOrdinaryMemory) {
  auto* p = static_cast<char*>(AllocateHuge(100));
  ASSERT_NE(p, nullptr);
  std::memset(p, 1, 100);
  FreeHuge(p, 100);
  FreeHuge(nullptr, kHugePageBytes);  // like operator delete, null is fine
}

TEST(HugePagesTest, VectorGrowsAcrossTheThresholdAndKeepsItsElements) {
  std::vector<uint64_t, HugePageAllocator<uint64_t>> values;
  constexpr uint64_t kCount = 3 * kHugePageBytes / sizeof(uint64_t);
  for (uint64_t i = 0; i < kCount; ++i) values.push_back(i);
  ASSERT_EQ(values.size(), kCount);
  EXPECT_EQ(std::accumulate(values.begin(), values.end(), uint64_t{0}),
            kCount * (kCount - 1) / 2);
}

}  // namespace
}  // namespace outreach::store
