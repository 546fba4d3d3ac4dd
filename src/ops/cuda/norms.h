// RMSNorm variants. Every row-vector v of length d is normalised as v · rsqrt(mean(v²) + eps) then scaled by
// w' = w (plain) or 1 + w (Qwen3.5's zero-centred weights). Data of type `dt`, reductions in fp32.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/cuda/dtype.h"

namespace hylora::cuda {

// Plain / 1+w / per-head:   for r < rows, h < heads:  y[r, h*d : (h+1)*d] = norm(x[r, h*d : (h+1)*d]) · w'[d]
//   x [rows, heads*d] (ld ldx), w [d], y [rows, heads*d] (ld ldy). heads = 1: the usual RMSNorm; heads = nH with
//   d = head_dim: q/k norm. y may alias x (in place, same ld).
cudaError_t rms_norm(DType dt, const void* x, int64_t ldx, const void* w, void* y, int64_t ldy, int64_t rows,
                     int64_t heads, int64_t d, float eps, bool one_plus, cudaStream_t stream);

// Fused residual add:  x[r] = x[r] + residual[r] (stored in dt: rounded), then y[r] = norm(x[r]) · w'.
//   x [rows, d] (ld ldx, updated in place), residual [rows, d] (ld ldr), w [d], y [rows, d] (ld ldy).
cudaError_t add_rms_norm(DType dt, void* x, int64_t ldx, const void* residual, int64_t ldr, const void* w, void* y,
                         int64_t ldy, int64_t rows, int64_t d, float eps, bool one_plus, cudaStream_t stream);

// Gated RMSNorm over groups of `group` channels (d % group == 0), w [d]:
//   gate_before_norm = false (Qwen3.5 GDN):  out = norm_g(y) · w · silu(z)
//   gate_before_norm = true  (Mamba2):       u = y · silu(z);  out = norm_g(u) · w
//   y [rows, d] (ld ldy), z [rows, d] (ld ldz), out [rows, d] (ld ldo). norm_g: per group of `group` channels.
cudaError_t rms_norm_gated(DType dt, const void* y, int64_t ldy, const void* z, int64_t ldz, const void* w, void* out,
                           int64_t ldo, int64_t rows, int64_t d, int64_t group, float eps, bool gate_before_norm,
                           cudaStream_t stream);

}  // namespace hylora::cuda
