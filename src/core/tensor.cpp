#include "core/tensor.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace hylora {

size_t dtype_size(DType dt) {
  switch (dt) {
    case DType::F32: return 4;
    case DType::BF16: return 2;
    case DType::F16: return 2;
    case DType::I32: return 4;
    case DType::F64: return 8;
  }
  return 0;
}

const char* dtype_name(DType dt) {
  switch (dt) {
    case DType::F32: return "float32";
    case DType::BF16: return "bfloat16";
    case DType::F16: return "float16";
    case DType::I32: return "int32";
    case DType::F64: return "float64";
  }
  return "?";
}

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << "]";
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

Tensor Tensor::empty(Shape shape, DType dtype, Allocator& alloc) {
  Tensor t;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.device_ = alloc.device();
  for (int64_t d : t.shape_) HYLORA_CHECK(d >= 0, "internal: negative dimension in shape ", shape_str(t.shape_));
  t.owner_ = alloc.allocate(t.nbytes());
  t.data_ = t.owner_.get();
  return t;
}

Tensor Tensor::zeros(Shape shape, DType dtype, Allocator& alloc) {
  HYLORA_CHECK(alloc.device() == Device::CPU, "internal: Tensor::zeros is host-only");
  Tensor t = empty(std::move(shape), dtype, alloc);
  std::memset(t.data_, 0, t.nbytes());
  return t;
}

Tensor Tensor::view_of(void* data, Shape shape, DType dtype, std::shared_ptr<void> owner, Device device) {
  Tensor t;
  t.owner_ = std::move(owner);
  t.data_ = data;
  t.shape_ = std::move(shape);
  t.dtype_ = dtype;
  t.device_ = device;
  return t;
}

int64_t Tensor::row_size() const {
  int64_t n = 1;
  for (size_t i = 1; i < shape_.size(); ++i) n *= shape_[i];
  return n;
}

float* Tensor::f32() const {
  HYLORA_CHECK(dtype_ == DType::F32, "internal: expected a float32 tensor, found ", dtype_name(dtype_));
  HYLORA_CHECK(device_ == Device::CPU, "internal: expected a host tensor");
  return static_cast<float*>(data_);
}

int32_t* Tensor::i32() const {
  HYLORA_CHECK(dtype_ == DType::I32, "internal: expected an int32 tensor, found ", dtype_name(dtype_));
  HYLORA_CHECK(device_ == Device::CPU, "internal: expected a host tensor");
  return static_cast<int32_t*>(data_);
}

Tensor Tensor::reshape(Shape shape) const {
  HYLORA_CHECK(shape_numel(shape) == numel(), "internal: cannot reshape ", shape_str(shape_), " to ",
               shape_str(shape));
  Tensor t = *this;
  if (!contiguous()) {
    HYLORA_CHECK(!shape.empty() && !shape_.empty() && shape[0] == shape_[0], "internal: cannot reshape the strided ",
                 shape_str(shape_), " to ", shape_str(shape), " (dim 0 must stay)");
  } else {
    t.ld_ = -1;
  }
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::rows(int64_t begin, int64_t end) const {
  HYLORA_CHECK(!shape_.empty() && begin >= 0 && begin <= end && end <= shape_[0], "internal: rows [", begin, ", ",
               end, ") out of range for shape ", shape_str(shape_));
  Tensor t = *this;
  t.data_ = static_cast<char*>(data_) + begin * ld() * dtype_size(dtype_);
  t.shape_[0] = end - begin;
  return t;
}

Tensor Tensor::cols(int64_t c0, int64_t w) const {
  HYLORA_CHECK(ndim() == 2 && c0 >= 0 && w >= 0 && c0 + w <= shape_[1], "internal: columns [", c0, ", ", c0 + w,
               ") out of range for shape ", shape_str(shape_));
  Tensor t = *this;
  t.ld_ = ld();
  t.data_ = static_cast<char*>(data_) + c0 * dtype_size(dtype_);
  t.shape_[1] = w;
  return t;
}

Tensor Tensor::clone() const {
  HYLORA_CHECK(device_ == Device::CPU, "internal: clone is host-only");
  Tensor t = empty(shape_, dtype_);
  const size_t row_bytes = row_size() * dtype_size(dtype_);
  const int64_t n = shape_.empty() ? 1 : shape_[0];
  if (contiguous()) {
    if (nbytes()) std::memcpy(t.data_, data_, nbytes());
  } else {
    for (int64_t r = 0; r < n; ++r)
      std::memcpy(static_cast<char*>(t.data_) + r * row_bytes,
                  static_cast<const char*>(data_) + r * ld() * dtype_size(dtype_), row_bytes);
  }
  return t;
}

void copy_into(const Tensor& src, Tensor& dst) {
  HYLORA_CHECK(src.shape() == dst.shape(), "internal: copy of ", shape_str(src.shape()), " into ",
               shape_str(dst.shape()));
  const int64_t n = src.ndim() ? src.dim(0) : 1, w = src.row_size();
  const float* s = src.f32();
  float* d = dst.f32();
  for (int64_t r = 0; r < n; ++r) std::memcpy(d + r * dst.ld(), s + r * src.ld(), w * sizeof(float));
}

void check_shape(const Tensor& t, const Shape& expected, const std::string& what) {
  if (t.shape() != expected)
    fail(what, ": expected shape ", shape_str(expected), ", found ", shape_str(t.shape()),
         " (maybe the wrong base model or config?)");
}

float bf16_to_f32(uint16_t v) {
  uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x7fffffu)) return static_cast<uint16_t>((bits >> 16) | 0x40);
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400u) == 0) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3ffu;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace hylora
