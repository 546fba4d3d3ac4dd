#pragma once
// Tensor: a dense, row-major (contiguous) block of numbers with a shape, a dtype and a device.
// The CPU reference backend computes in float32 only; bf16/f16 exist for checkpoints (converted at load) and for
// the CUDA backend. Storage is shared (shared_ptr) so that views into an mmap'd file or a bigger buffer stay valid.
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"

namespace hylora {

enum class DType { F32, BF16, F16 };
enum class Device { CPU, CUDA };

size_t dtype_size(DType dt);
const char* dtype_name(DType dt);

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

class Tensor {
 public:
  Tensor() = default;

  // New zero-filled CPU tensor.
  static Tensor zeros(Shape shape, DType dtype = DType::F32);
  // New CPU tensor without initialisation (caller writes every element).
  static Tensor empty(Shape shape, DType dtype = DType::F32);
  // Non-owning view over external memory kept alive by `owner`.
  static Tensor view_of(void* data, Shape shape, DType dtype, std::shared_ptr<void> owner);

  bool defined() const { return data_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_.at(i < 0 ? shape_.size() + i : i); }
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const { return shape_numel(shape_); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  size_t nbytes() const { return numel() * dtype_size(dtype_); }

  void* raw() const { return data_; }
  float* f32() const;  // checks dtype == F32 and device == CPU

  // Same storage, new shape with the same element count.
  Tensor reshape(Shape shape) const;
  // Rows [begin, end) along dim 0, sharing storage.
  Tensor rows(int64_t begin, int64_t end) const;
  // Deep copy.
  Tensor clone() const;

 private:
  std::shared_ptr<void> owner_;
  void* data_ = nullptr;
  DType dtype_ = DType::F32;
  Device device_ = Device::CPU;
  Shape shape_;
};

// Checks `t` has exactly `expected` shape; `what` names the tensor in the error.
void check_shape(const Tensor& t, const Shape& expected, const std::string& what);

// Number conversions used by loaders.
float bf16_to_f32(uint16_t v);
float f16_to_f32(uint16_t v);
uint16_t f32_to_bf16(float v);  // round to nearest even

}  // namespace hylora
