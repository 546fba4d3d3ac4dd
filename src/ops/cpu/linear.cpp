#include "ops/linear.h"

#include <cblas.h>

#include "engine/forward_batch.h"

namespace hylora::ops {

Tensor matmul_nt(const Tensor& x, const Tensor& w) {
  Tensor y = Tensor::zeros({x.dim(0), w.dim(0)});
  matmul_nt_acc(x, w, y);
  return y;
}

void matmul_nt_acc(const Tensor& x, const Tensor& w, Tensor& y) {
  const int64_t n = x.dim(0), in = x.dim(1), out = w.dim(0);
  HYLORA_CHECK(w.dim(1) == in, "internal: matmul of x ", shape_str(x.shape()), " with W ", shape_str(w.shape()));
  HYLORA_CHECK(y.dim(0) == n && y.dim(1) == out, "internal: matmul output ", shape_str(y.shape()));
  if (n == 0 || out == 0) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n), static_cast<int>(out),
              static_cast<int>(in), 1.0f, x.f32(), static_cast<int>(in), w.f32(), static_cast<int>(in), 1.0f,
              y.f32(), static_cast<int>(out));
}

Tensor linear(const Linear& lin, const Tensor& x, const ForwardBatch& batch) {
  HYLORA_CHECK(x.ndim() == 2 && x.dim(1) == lin.in_features(), "internal: ", lin.name, " expects input [N, ",
               lin.in_features(), "], got ", shape_str(x.shape()));
  Tensor y = Tensor::empty({x.dim(0), lin.out_features()});
  if (lin.bias.defined()) {
    const float* b = lin.bias.f32();
    float* o = y.f32();
    for (int64_t r = 0; r < x.dim(0); ++r)
      for (int64_t c = 0; c < lin.out_features(); ++c) o[r * lin.out_features() + c] = b[c];
  } else {
    std::fill(y.f32(), y.f32() + y.numel(), 0.0f);
  }
  matmul_nt_acc(x, lin.weight, y);
  if (batch.lora && lin.lora_id >= 0) batch.lora->apply_linear(lin, x, y);
  return y;
}

}  // namespace hylora::ops
