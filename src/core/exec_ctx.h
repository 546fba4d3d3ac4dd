#pragma once
// ExecCtx: what every op receives besides its tensors — the backend it runs on, its stream, and a scratch arena for
// intermediates. Ops write into outputs the caller provides and take temporaries from the scratch arena, so a step
// allocates nothing once the arena has grown to the step's size. One ExecCtx per executor (no global context).
#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor.h"

namespace hylora {

// A bump allocator reset at the start of every step. When a step needs more than the block holds it chains extra
// blocks; the next reset() replaces the block by one of the high-water size (also when the extra blocks were rewound
// away inside the step), so steady-state steps allocate nothing and every request lands in the block.
class ScratchArena {
 public:
  explicit ScratchArena(Allocator& alloc = host_allocator()) : alloc_(alloc) {}
  // Uninitialised tensor valid until the next reset().
  Tensor tensor(Shape shape, DType dtype = DType::F32);
  // Same, filled with zeros (on the arena's device).
  Tensor zeros(Shape shape, DType dtype = DType::F32);
  void reset();
  // A point to come back to: a model marks before a layer and rewinds after it, since a layer's temporaries are dead
  // once its output is added to the residual stream. Memory touched is then one layer's worth, not the step's.
  struct Mark {
    size_t used, overflow_count, overflow_bytes;
  };
  Mark mark() const { return {used_, overflow_.size(), overflow_bytes_}; }
  // Every tensor handed out after `m` is dead from here on (its memory is reused).
  void rewind(const Mark& m);
  size_t capacity() const { return capacity_; }
  size_t high_water() const { return high_water_; }
  // Start of the current block: every tensor handed out since the last reset lives at a fixed offset from it when
  // the same sequence of requests is made and none overflowed (what lets a captured CUDA graph be replayed).
  const void* base() const { return block_.get(); }

 private:
  Allocator& alloc_;
  std::shared_ptr<void> block_;
  size_t capacity_ = 0, used_ = 0, high_water_ = 0;
  std::vector<std::shared_ptr<void>> overflow_;  // blocks chained during this step
  size_t overflow_bytes_ = 0;
};

struct ExecCtx {
  Device device = Device::CPU;
  void* stream = nullptr;  // cudaStream_t on the CUDA backend
  ScratchArena scratch;
  // A second stream for work that may run beside the main stream's next ops (ops::SideWork; the LoRA shrink beside
  // the base GEMM): an opaque handle from ops::create_side_stream(), null on the CPU or with overlap off.
  void* side_stream = nullptr;
};

}  // namespace hylora
