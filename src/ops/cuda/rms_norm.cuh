#pragma once
// CUDA RMSNorm: the first op of the CUDA backend; same semantics as ops::rms_norm on the CPU (ops/elementwise.h).
#include <cstdint>

#include <cuda_runtime.h>

namespace hylora::cuda {

// y[r, :] = x[r, :] * rsqrt(mean(x[r, :]²) + eps) * (one_plus ? 1 + w : w)
// x, y [rows, d] float32 (device); w [d] float32 (device). One block per row.
cudaError_t rms_norm_f32(const float* x, const float* w, float* y, int64_t rows, int64_t d, float eps, bool one_plus,
                         cudaStream_t stream);

}  // namespace hylora::cuda
