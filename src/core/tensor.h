#pragma once
// Tensor: a block of numbers with a shape, a dtype and a device. Dim 0 may be strided: `ld()` elements separate
// consecutive dim-0 entries, while the trailing dims are contiguous. That makes a column block of a fused
// projection's output ([rows, out] -> [rows, w] at column c0) a view, not a copy. Storage is shared (shared_ptr),
// so views into an mmap'd file, a scratch arena or a bigger buffer stay valid.
// The CPU reference computes in float32; weights keep their checkpoint dtype (bf16/f16/f32) until a backend
// converts them; int32 tensors carry step metadata (token ids, segment tables) to the ops.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/error.h"

namespace hylora {

enum class DType { F32, BF16, F16, I32, F64 };

size_t dtype_size(DType dt);
const char* dtype_name(DType dt);

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

class Tensor {
 public:
  Tensor() = default;

  // New tensor from `alloc` (default: host memory); `empty` leaves it uninitialised (the caller writes every
  // element), `zeros` fills it with zeros (host only).
  static Tensor empty(Shape shape, DType dtype = DType::F32, Allocator& alloc = host_allocator());
  static Tensor zeros(Shape shape, DType dtype = DType::F32, Allocator& alloc = host_allocator());
  // Non-owning (or co-owning) view over external contiguous memory kept alive by `owner`.
  static Tensor view_of(void* data, Shape shape, DType dtype, std::shared_ptr<void> owner,
                        Device device = Device::CPU);

  bool defined() const { return data_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_.at(i < 0 ? shape_.size() + i : i); }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const { return shape_numel(shape_); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  // Bytes of the elements (a strided view's gaps not counted).
  size_t nbytes() const { return numel() * dtype_size(dtype_); }
  // Elements per dim-0 entry if contiguous (the product of the trailing dims).
  int64_t row_size() const;
  // Elements between consecutive dim-0 entries (≥ row_size()).
  int64_t ld() const { return ld_ >= 0 ? ld_ : row_size(); }
  bool contiguous() const { return ld_ < 0 || ld_ == row_size() || ndim() <= 1; }

  void* raw() const { return data_; }
  // Typed host pointers; each checks dtype and device.
  float* f32() const;
  int32_t* i32() const;

  // Same storage, new shape. Allowed when contiguous, or when dim 0 is kept (the trailing dims regroup, ld stays).
  Tensor reshape(Shape shape) const;
  // Entries [begin, end) along dim 0, sharing storage.
  Tensor rows(int64_t begin, int64_t end) const;
  // Columns [c0, c0 + w) of a 2-D tensor [rows, cols] as a strided view [rows, w] (same ld).
  Tensor cols(int64_t c0, int64_t w) const;
  // Contiguous deep copy (host).
  Tensor clone() const;

 private:
  std::shared_ptr<void> owner_;
  void* data_ = nullptr;
  DType dtype_ = DType::F32;
  Device device_ = Device::CPU;
  Shape shape_;
  int64_t ld_ = -1;  // -1 = contiguous
};

// Checks `t` has exactly `expected` shape; `what` names the tensor in the error.
void check_shape(const Tensor& t, const Shape& expected, const std::string& what);

// Copies src into dst (same shape, both host float32, either may be strided).
void copy_into(const Tensor& src, Tensor& dst);

// Number conversions used by loaders.
float bf16_to_f32(uint16_t v);
float f16_to_f32(uint16_t v);
uint16_t f32_to_bf16(float v);  // round to nearest even

}  // namespace hylora
