#include "store/huge_pages.h"

#include <sys/mman.h>

#include <cstdint>

namespace outreach::store {
namespace {

std::size_t RoundUp(std::size_t bytes) {
  return (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
}

}  // namespace

void* AllocateHuge(std::size_t bytes) {
  if (bytes < kHugePageBytes) return ::operator new(bytes);
  const std::size_t size = RoundUp(bytes);
  // Over-map by one huge page, then unmap the unaligned head and the tail: the kernel backs
  // only aligned 2 MiB ranges with huge pages.
  const std::size_t mapped = size + kHugePageBytes;
  void* region = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) throw std::bad_alloc();
  const auto start = reinterpret_cast<std::uintptr_t>(region);
  const std::uintptr_t aligned = (start + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  if (aligned > start) munmap(region, aligned - start);
  const std::uintptr_t end = start + mapped;
  if (end > aligned + size) munmap(reinterpret_cast<void*>(aligned + size), end - aligned - size);
  void* out = reinterpret_cast<void*>(aligned);
#ifdef MADV_HUGEPAGE
  madvise(out, size, MADV_HUGEPAGE);  // advice only: a refusal leaves ordinary pages
#endif
  return out;
}

void FreeHuge(void* p, std::size_t bytes) {
  if (p == nullptr) return;
  if (bytes < kHugePageBytes) {
    ::operator delete(p);
    return;
  }
  munmap(p, RoundUp(bytes));
}

}  // namespace outreach::store
