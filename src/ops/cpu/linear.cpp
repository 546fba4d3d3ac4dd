// CPU GEMMs (ops/linear.h) through OpenBLAS sgemm on strided row-major views.
#include "ops/linear.h"

#include <cblas.h>

namespace hylora::ops::cpu {

namespace {
int i32(int64_t v) { return static_cast<int>(v); }
}  // namespace

void matmul_nt(ExecCtx&, const Tensor& x, const Tensor& w, Tensor& y, bool accumulate) {
  const int64_t M = x.dim(0), K = x.dim(1), N = w.dim(0);
  HYLORA_CHECK(x.ndim() == 2 && w.ndim() == 2 && w.dim(1) == K && y.dim(0) == M && y.dim(1) == N,
               "internal: matmul of x ", shape_str(x.shape()), " with W ", shape_str(w.shape()), " into y ",
               shape_str(y.shape()));
  if (M == 0 || N == 0) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, i32(M), i32(N), i32(K), 1.0f, x.f32(), i32(x.ld()), w.f32(),
              i32(w.ld()), accumulate ? 1.0f : 0.0f, y.f32(), i32(y.ld()));
}

void matmul_nn(ExecCtx&, const Tensor& x, const Tensor& w, Tensor& y, bool accumulate) {
  const int64_t M = x.dim(0), K = x.dim(1), N = w.dim(1);
  HYLORA_CHECK(x.ndim() == 2 && w.ndim() == 2 && w.dim(0) == K && y.dim(0) == M && y.dim(1) == N,
               "internal: matmul of x ", shape_str(x.shape()), " with W ", shape_str(w.shape()), " into y ",
               shape_str(y.shape()));
  if (M == 0 || N == 0) return;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, i32(M), i32(N), i32(K), 1.0f, x.f32(), i32(x.ld()),
              w.f32(), i32(w.ld()), accumulate ? 1.0f : 0.0f, y.f32(), i32(y.ld()));
}

void add_bias(ExecCtx&, const Tensor& b, Tensor& y) {
  HYLORA_CHECK(b.numel() == y.dim(1), "internal: bias of ", b.numel(), " for ", shape_str(y.shape()));
  for (int64_t r = 0; r < y.dim(0); ++r) {
    float* o = y.f32() + r * y.ld();
    for (int64_t c = 0; c < y.dim(1); ++c) o[c] += b.f32()[c];
  }
}

}  // namespace hylora::ops::cpu
