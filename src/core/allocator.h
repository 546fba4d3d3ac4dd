#pragma once
// Allocator: where a tensor's bytes come from. The host allocator hands out 64-byte aligned blocks (AVX-512 loads,
// BLAS); the CUDA backend adds a caching device arena behind the same interface. Tensors keep their allocator's
// deleter in their storage, so a view keeps its block alive.
#include <cstddef>
#include <memory>

namespace hylora {

enum class Device { CPU, CUDA };

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual Device device() const = 0;
  // A block of at least `bytes` (never null: throws Error naming the size when memory is exhausted).
  virtual std::shared_ptr<void> allocate(size_t bytes) = 0;
  // Sets `bytes` bytes at `p` (a block of this allocator) to zero: memset on the host, a device memset on a GPU, so
  // code that zeroes pools or scratch need not know where they live.
  virtual void zero(void* p, size_t bytes);
};

// The process-wide host allocator (stateless: aligned_alloc/free).
Allocator& host_allocator();

}  // namespace hylora
