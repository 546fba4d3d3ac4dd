// CachingHostAllocator: a freed block is handed out again for the same size class (so per-step host buffers are not
// faulted in anew every step), sizes are rounded as documented, and nothing beyond the cap is kept.
#include <gtest/gtest.h>

#include <cstdlib>

#include "core/caching_host_allocator.h"
#include "core/tensor.h"

namespace hylora {
namespace {

int g_raw_allocs = 0, g_raw_frees = 0;
void* counting_alloc(size_t n) {
  ++g_raw_allocs;
  return std::aligned_alloc(64, n);
}
void counting_free(void* p) {
  ++g_raw_frees;
  std::free(p);
}

TEST(CachingHostAllocator, FreedBlockIsReusedForTheSameSizeClass) {
  g_raw_allocs = g_raw_frees = 0;
  CachingHostAllocator a(counting_alloc, counting_free, size_t{64} << 20);
  void* first = nullptr;
  {
    auto b = a.allocate(40u << 20);  // 40 MiB: above glibc's mmap threshold, the case this exists for
    first = b.get();
  }
  EXPECT_EQ(a.cached_bytes(), size_t{40} << 20);
  auto again = a.allocate((40u << 20) - 1000);  // same 1 MiB class
  EXPECT_EQ(again.get(), first);
  EXPECT_EQ(g_raw_allocs, 1);
  EXPECT_EQ(a.cached_bytes(), 0u);
}

TEST(CachingHostAllocator, BlocksBeyondTheCapAreFreed) {
  g_raw_allocs = g_raw_frees = 0;
  CachingHostAllocator a(counting_alloc, counting_free, size_t{3} << 20);
  {
    auto x = a.allocate(2u << 20), y = a.allocate(2u << 20);
  }
  EXPECT_EQ(g_raw_allocs, 2);
  EXPECT_EQ(g_raw_frees, 1);  // the second 2 MiB block would exceed the 3 MiB cap
  EXPECT_EQ(a.cached_bytes(), size_t{2} << 20);
}

TEST(CachingHostAllocator, TensorsFromItAreOrdinaryHostTensors) {
  Tensor t = Tensor::empty({64, 1000}, DType::F32, caching_host_allocator());  // [64, 1000]
  EXPECT_EQ(t.device(), Device::CPU);
  t.f32()[64 * 1000 - 1] = 1.5f;
  EXPECT_EQ(t.f32()[64 * 1000 - 1], 1.5f);
}

}  // namespace
}  // namespace hylora
