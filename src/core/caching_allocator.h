#pragma once
// CachingAllocator: keeps freed blocks on a free list per size class and hands them out again, in front of any raw
// allocation functions. One implementation serves the host output allocator (big per-step logits buffers would
// otherwise go back to the OS each step: glibc mmaps blocks above 32 MB, and faulting them in again cost 30-40 ms a
// step, bench/results/2026-12-01-session3-gpu-runs.md), the CUDA backend's page-locked host blocks (cudaHostAlloc is
// slow and synchronising) and its device arena (so steady-state steps do not cudaMalloc). The backend-specific parts
// (which device, the raw functions, how to zero, what to do when memory runs out) are parameters, so this file needs
// no CUDA header.
#include <cstddef>
#include <map>
#include <mutex>
#include <vector>

#include "core/allocator.h"

namespace hylora {

class CachingAllocator final : public Allocator {
 public:
  using RawAlloc = void* (*)(size_t bytes);  // null on failure
  using RawFree = void (*)(void* p);
  enum class OnOom {
    kFail,                 // throw at once
    kReleaseCachedAndRetry  // give every cached block back (raw_free) and try the raw allocation once more
  };
  struct Config {
    Device device = Device::CPU;
    RawAlloc raw_alloc = nullptr;
    RawFree raw_free = nullptr;
    size_t max_cached_bytes = 0;  // freed blocks beyond this go back to raw_free at once
    // Blocks are rounded to this below 1 MiB (and at least this), to 1 MiB above.
    size_t small_granularity = 64;
    OnOom on_oom = OnOom::kFail;
    // Run (under the lock) before cached blocks are freed by an OOM retry, e.g. wait for kernels that may still use
    // them. Optional.
    void (*before_release)() = nullptr;
    // Why the last raw_alloc on this thread failed, appended to the error in parentheses. Optional.
    const char* (*error_text)() = nullptr;
    // "out of <memory_name> allocating N bytes".
    const char* memory_name = "host memory";
    // Allocator::zero for these blocks; null = memset (host memory).
    void (*zero)(void* p, size_t bytes) = nullptr;
  };

  explicit CachingAllocator(const Config& config);
  // Frees the cached blocks. Blocks still held by tensors must not outlive the allocator (the process-wide ones are
  // never destroyed for that reason).
  ~CachingAllocator() override;
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  Device device() const override { return config_.device; }
  std::shared_ptr<void> allocate(size_t bytes) override;
  void zero(void* p, size_t bytes) override;
  size_t cached_bytes() const;
  size_t size_class(size_t bytes) const;

 private:
  void give_back(void* p, size_t size);
  void release_cached();  // frees every cached block

  Config config_;
  mutable std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;  // size class -> blocks
  size_t cached_ = 0;
};

}  // namespace hylora
