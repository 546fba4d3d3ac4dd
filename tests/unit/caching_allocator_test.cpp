// CachingAllocator (the one free-list allocator behind the host output allocator, the CUDA pinned allocator and the
// CUDA device arena): a freed block is handed out again for the same size class (so per-step buffers are not
// faulted in / cudaMalloc'd anew every step), sizes are rounded as documented, nothing beyond the cap is kept, an
// out-of-memory raw allocation is retried once after the cache is released when asked, and destruction frees what
// is cached.
#include <gtest/gtest.h>

#include <cstdlib>

#include "core/caching_host_allocator.h"
#include "core/error.h"
#include "core/tensor.h"

namespace hylora {
namespace {

int g_raw_allocs = 0, g_raw_frees = 0, g_fail_next = 0, g_released = 0;
void* counting_alloc(size_t n) {
  ++g_raw_allocs;
  if (g_fail_next > 0) {
    --g_fail_next;
    return nullptr;
  }
  return std::aligned_alloc(64, n);
}
void counting_free(void* p) {
  ++g_raw_frees;
  std::free(p);
}

CachingAllocator::Config config(size_t cap, size_t granularity = 64,
                                CachingAllocator::OnOom on_oom = CachingAllocator::OnOom::kFail) {
  g_raw_allocs = g_raw_frees = g_fail_next = g_released = 0;
  CachingAllocator::Config c;
  c.raw_alloc = counting_alloc;
  c.raw_free = counting_free;
  c.max_cached_bytes = cap;
  c.small_granularity = granularity;
  c.on_oom = on_oom;
  c.before_release = [] { ++g_released; };
  return c;
}

// The host configuration (64 B classes, a cap) as the process-wide host and pinned allocators use it.
TEST(CachingHostAllocator, FreedBlockIsReusedForTheSameSizeClass) {
  CachingAllocator a(config(size_t{64} << 20));
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
  CachingAllocator a(config(size_t{3} << 20));
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

TEST(CachingAllocator, SizeClassesFollowTheGranularity) {
  CachingAllocator host(config(0)), arena(config(0, 256));
  EXPECT_EQ(host.size_class(0), 64u);
  EXPECT_EQ(host.size_class(65), 128u);
  EXPECT_EQ(arena.size_class(1), 256u);  // the device arena's minimum block
  EXPECT_EQ(arena.size_class(257), 512u);
  EXPECT_EQ(arena.size_class((1u << 20) + 1), size_t{2} << 20);  // 1 MiB classes above 1 MiB
}

TEST(CachingAllocator, ReusesOnlyTheSameSizeClass) {
  CachingAllocator a(config(SIZE_MAX, 256));
  void* small = nullptr;
  {
    auto b = a.allocate(1000);
    small = b.get();
  }
  auto other = a.allocate(5000);  // another class: a fresh block, the cached one stays
  EXPECT_NE(other.get(), small);
  EXPECT_EQ(a.cached_bytes(), 1024u);
  auto same = a.allocate(900);  // 1024 class again
  EXPECT_EQ(same.get(), small);
  EXPECT_EQ(g_raw_allocs, 2);
}

TEST(CachingAllocator, OutOfMemoryFailsAtOnceByDefault) {
  CachingAllocator a(config(SIZE_MAX));
  { auto b = a.allocate(4096); }
  g_fail_next = 1;
  try {
    a.allocate(1u << 20);
    FAIL() << "expected an out-of-memory error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("out of host memory allocating 1048576 bytes"), std::string::npos);
  }
  EXPECT_EQ(g_released, 0);
  EXPECT_EQ(a.cached_bytes(), 4096u);  // the cache was left alone
}

TEST(CachingAllocator, OutOfMemoryReleasesTheCacheAndRetriesOnce) {
  CachingAllocator::Config c = config(SIZE_MAX, 256, CachingAllocator::OnOom::kReleaseCachedAndRetry);
  c.memory_name = "GPU memory";
  c.error_text = [] { return "test reason"; };
  CachingAllocator a(c);
  { auto x = a.allocate(4096), y = a.allocate(8192); }
  EXPECT_EQ(a.cached_bytes(), 4096u + 8192u);
  g_fail_next = 1;  // the first raw attempt fails, the retry succeeds
  auto b = a.allocate(1u << 20);
  EXPECT_NE(b.get(), nullptr);
  EXPECT_EQ(g_released, 1);
  EXPECT_EQ(g_raw_frees, 2);  // both cached blocks went back
  EXPECT_EQ(a.cached_bytes(), 0u);
  EXPECT_EQ(g_raw_allocs, 4);  // two blocks, the failed attempt, the retry

  g_fail_next = 2;  // both attempts fail: an error naming the size and the reason
  try {
    a.allocate(2u << 20);
    FAIL() << "expected an out-of-memory error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("out of GPU memory allocating 2097152 bytes (test reason)"),
              std::string::npos);
  }
}

TEST(CachingAllocator, DestructionFreesTheCachedBlocks) {
  {
    CachingAllocator a(config(SIZE_MAX));
    auto held = a.allocate(100);  // declared after `a`: goes back to the cache before the destructor runs
    { auto x = a.allocate(1000), y = a.allocate(3000); }
    EXPECT_EQ(g_raw_frees, 0);
  }
  EXPECT_EQ(g_raw_allocs, 3);
  EXPECT_EQ(g_raw_frees, 3);  // the two cached blocks and `held`
}

TEST(CachingAllocator, ReportsItsDeviceAndZeroesThroughTheHook) {
  static int zeroed = 0;
  CachingAllocator::Config c = config(SIZE_MAX);
  c.device = Device::CUDA;
  c.zero = [](void*, size_t bytes) { zeroed += static_cast<int>(bytes); };
  CachingAllocator a(c);
  EXPECT_EQ(a.device(), Device::CUDA);
  auto b = a.allocate(128);
  a.zero(b.get(), 128);
  EXPECT_EQ(zeroed, 128);
}

}  // namespace
}  // namespace hylora
