#include "core/caching_allocator.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace hylora {

CachingAllocator::CachingAllocator(const Config& config) : config_(config) {
  HYLORA_CHECK(config_.raw_alloc && config_.raw_free && config_.small_granularity > 0,
               "internal: CachingAllocator needs raw alloc/free functions and a positive granularity");
}

CachingAllocator::~CachingAllocator() {
  for (auto& [size, blocks] : free_)
    for (void* p : blocks) config_.raw_free(p);
}

size_t CachingAllocator::size_class(size_t bytes) const {
  const size_t g = bytes < (size_t{1} << 20) ? config_.small_granularity : (size_t{1} << 20);
  return (std::max<size_t>(bytes, 1) + g - 1) / g * g;
}

std::shared_ptr<void> CachingAllocator::allocate(size_t bytes) {
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
  if (!p) p = config_.raw_alloc(size);
  if (!p && config_.on_oom == OnOom::kReleaseCachedAndRetry) {
    release_cached();  // blocks of other size classes may be what is missing
    p = config_.raw_alloc(size);
  }
  if (!p) {
    if (config_.error_text) fail("out of ", config_.memory_name, " allocating ", size, " bytes (", config_.error_text(), ")");
    fail("out of ", config_.memory_name, " allocating ", size, " bytes");
  }
  return std::shared_ptr<void>(p, [this, size](void* q) { give_back(q, size); });
}

void CachingAllocator::zero(void* p, size_t bytes) {
  if (config_.zero)
    config_.zero(p, bytes);
  else
    std::memset(p, 0, bytes);
}

void CachingAllocator::give_back(void* p, size_t size) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cached_ + size <= config_.max_cached_bytes) {
      free_[size].push_back(p);
      cached_ += size;
      return;
    }
  }
  config_.raw_free(p);
}

void CachingAllocator::release_cached() {
  std::lock_guard<std::mutex> lock(mu_);
  if (config_.before_release) config_.before_release();
  for (auto& [size, blocks] : free_)
    for (void* p : blocks) config_.raw_free(p);
  free_.clear();
  cached_ = 0;
}

size_t CachingAllocator::cached_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cached_;
}

}  // namespace hylora
