#include "core/allocator.h"

#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace hylora {

namespace {
class HostAllocator final : public Allocator {
 public:
  Device device() const override { return Device::CPU; }
  std::shared_ptr<void> allocate(size_t bytes) override {
    const size_t rounded = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    if (!p) fail("out of host memory allocating ", rounded, " bytes");
    return std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  }
};
}  // namespace

void Allocator::zero(void* p, size_t bytes) { std::memset(p, 0, bytes); }

Allocator& host_allocator() {
  static HostAllocator a;
  return a;
}

}  // namespace hylora
