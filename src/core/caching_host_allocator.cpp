#include "core/caching_host_allocator.h"

#include <algorithm>
#include <cstdlib>

#include "core/error.h"

namespace hylora {

namespace {
size_t size_class(size_t bytes) {
  const size_t g = bytes < (size_t{1} << 20) ? 64 : (size_t{1} << 20);
  return (std::max<size_t>(bytes, 1) + g - 1) / g * g;
}
void* aligned_raw(size_t bytes) { return std::aligned_alloc(64, bytes); }
void free_raw(void* p) { std::free(p); }
}  // namespace

CachingHostAllocator::CachingHostAllocator(RawAlloc raw_alloc, RawFree raw_free, size_t max_cached_bytes)
    : raw_alloc_(raw_alloc), raw_free_(raw_free), max_cached_(max_cached_bytes) {}

CachingHostAllocator::~CachingHostAllocator() {
  for (auto& [size, blocks] : free_)
    for (void* p : blocks) raw_free_(p);
}

std::shared_ptr<void> CachingHostAllocator::allocate(size_t bytes) {
  const size_t size = size_class(bytes);
  void* p = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.find(size);
    if (it != free_.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
      cached_ -= size;
    }
  }
  if (!p) p = raw_alloc_(size);
  if (!p) fail("out of host memory allocating ", size, " bytes");
  return std::shared_ptr<void>(p, [this, size](void* q) { give_back(q, size); });
}

void CachingHostAllocator::give_back(void* p, size_t size) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cached_ + size <= max_cached_) {
      free_[size].push_back(p);
      cached_ += size;
      return;
    }
  }
  raw_free_(p);
}

size_t CachingHostAllocator::cached_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cached_;
}

Allocator& caching_host_allocator() {
  static auto* a = new CachingHostAllocator(aligned_raw, free_raw, size_t{1} << 30);  // leaked on purpose
  return *a;
}

}  // namespace hylora
