// Dense GEMM through cuBLASLt, row-major:  y[M,N] (ld ldy) = x[M,K] (ld ldx) · W[N,K]ᵀ (ld ldw) (+ bias[N]) (+ y).
// fp32: exact fp32 (CUBLAS_COMPUTE_32F, TF32 off). bf16: bf16 inputs/outputs, fp32 accumulation, bias in bf16.
// Mixed (in bf16, out f32): bf16 x and W, fp32 y and bias, fp32 accumulation: the engine's bf16 weights with its fp32
// activations (x cast to bf16 first), so the product is never rounded to bf16.
// A GemmHandle owns the cuBLASLt handle, a workspace and a small cache of chosen algorithms per shape.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>

#include "ops/cuda/dtype.h"

namespace hylora::cuda {

class GemmHandle {
 public:
  explicit GemmHandle(size_t workspace_bytes = 32u << 20);
  ~GemmHandle();
  GemmHandle(const GemmHandle&) = delete;
  GemmHandle& operator=(const GemmHandle&) = delete;
  struct Impl;
  Impl* impl() { return impl_.get(); }

 private:
  std::unique_ptr<Impl> impl_;
};

// x [M, K] ld ldx; W [N, K] ld ldw; y [M, N] ld ldy; bias [N] or nullptr; accumulate: y += ... instead of y = ...
// All of type `dt`. Returns cudaErrorUnknown on a cuBLASLt failure (no heuristic, bad shape).
cudaError_t gemm(GemmHandle& h, DType dt, const void* x, int64_t ldx, const void* W, int64_t ldw, void* y,
                 int64_t ldy, int64_t M, int64_t N, int64_t K, const void* bias, bool accumulate,
                 cudaStream_t stream);
// The same with x and W of type `in`, y and bias of type `out` (in = out, or in = bf16 with out = f32).
cudaError_t gemm(GemmHandle& h, DType in, DType out, const void* x, int64_t ldx, const void* W, int64_t ldw, void* y,
                 int64_t ldy, int64_t M, int64_t N, int64_t K, const void* bias, bool accumulate,
                 cudaStream_t stream);

}  // namespace hylora::cuda
