#pragma once
// A host allocator that keeps freed blocks for reuse. Big per-step host buffers (a step's logits [R, V]: 64 MB at
// 64 rows × a 248k vocabulary) would otherwise go back to the OS on every step (glibc serves blocks above 32 MB with
// mmap) and be page-faulted in again on the next one: 30-40 ms a step for 64 decode rows, 10× the GPU work
// (bench/results/2026-12-01-session3-gpu-runs.md). The raw allocation functions are parameters so the CUDA backend can
// cache page-locked blocks the same way (faster device-to-host copies).
#include <cstddef>
#include <map>
#include <mutex>
#include <vector>

#include "core/allocator.h"

namespace hylora {

class CachingHostAllocator final : public Allocator {
 public:
  using RawAlloc = void* (*)(size_t bytes);  // null on failure
  using RawFree = void (*)(void* p);
  // Keeps at most `max_cached_bytes` of freed blocks; blocks are rounded to 64 B below 1 MiB, to 1 MiB above.
  CachingHostAllocator(RawAlloc raw_alloc, RawFree raw_free, size_t max_cached_bytes);
  // Frees the cached blocks. Blocks still held by tensors must not outlive the allocator (the process-wide ones are
  // never destroyed for that reason).
  ~CachingHostAllocator() override;
  CachingHostAllocator(const CachingHostAllocator&) = delete;
  CachingHostAllocator& operator=(const CachingHostAllocator&) = delete;
  Device device() const override { return Device::CPU; }
  std::shared_ptr<void> allocate(size_t bytes) override;
  size_t cached_bytes() const;

 private:
  void give_back(void* p, size_t size);
  RawAlloc raw_alloc_;
  RawFree raw_free_;
  size_t max_cached_;
  mutable std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;  // size class -> blocks
  size_t cached_ = 0;
};

// The process-wide caching allocator over 64-byte aligned host memory (never destroyed: tensors may outlive statics).
Allocator& caching_host_allocator();

}  // namespace hylora
