#include "core/exec_ctx.h"

#include <cstring>

namespace hylora {

namespace {
constexpr size_t kAlign = 64;
size_t aligned(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }
}  // namespace

Tensor ScratchArena::tensor(Shape shape, DType dtype) {
  const size_t bytes = aligned(std::max<size_t>(shape_numel(shape) * dtype_size(dtype), 1));
  high_water_ = std::max(high_water_, used_ + overflow_bytes_ + bytes);
  if (used_ + bytes <= capacity_) {
    void* p = static_cast<char*>(block_.get()) + used_;
    used_ += bytes;
    return Tensor::view_of(p, std::move(shape), dtype, block_, alloc_.device());
  }
  overflow_.push_back(alloc_.allocate(bytes));
  overflow_bytes_ += bytes;
  return Tensor::view_of(overflow_.back().get(), std::move(shape), dtype, overflow_.back(), alloc_.device());
}

Tensor ScratchArena::zeros(Shape shape, DType dtype) {
  Tensor t = tensor(std::move(shape), dtype);
  alloc_.zero(t.raw(), t.nbytes());
  return t;
}

void ScratchArena::rewind(const Mark& m) {
  used_ = m.used;
  overflow_.resize(m.overflow_count);  // views still alive keep their blocks; nothing new will be handed from them
  overflow_bytes_ = m.overflow_bytes;
}

void ScratchArena::reset() {
  // Grow also when the overflow blocks were rewound away (a layer's temporaries): otherwise every step would chain
  // them again, and a captured graph would keep addresses of blocks handed back to the allocator.
  if (!overflow_.empty() || high_water_ > capacity_) {
    capacity_ = aligned(high_water_);
    block_ = alloc_.allocate(capacity_);  // views of the old blocks keep them alive until they go
    overflow_.clear();
    overflow_bytes_ = 0;
  }
  used_ = 0;
}

}  // namespace hylora
