#include "core/caching_host_allocator.h"

#include <cstdlib>

namespace hylora {

Allocator& caching_host_allocator() {
  static auto* a = [] {
    CachingAllocator::Config c;
    c.device = Device::CPU;
    c.raw_alloc = [](size_t bytes) { return std::aligned_alloc(64, bytes); };  // sizes are multiples of 64
    c.raw_free = [](void* p) { std::free(p); };
    c.max_cached_bytes = size_t{1} << 30;
    return new CachingAllocator(c);  // leaked on purpose
  }();
  return *a;
}

}  // namespace hylora
