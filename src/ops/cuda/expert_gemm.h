// The engine's expert GEMM (ops/moe.h moe_expert_gemm) on the GPU: fp32 activation rows already gathered in expert
// order, one weight matrix per expert, fp32 accumulation and fp32 output.
//   ys[i, :] = xs[i, :] · W[e(i)]ᵀ  for every sorted row i, e(i) = the expert with offsets[e] <= i < offsets[e+1]
//   xs [P, K] fp32 (ld ldx), W [E, N, K] fp32 or bf16 (contiguous), offsets [E+1] int32 on the device
//   (offsets[0] = 0, offsets[E] = P), ys [P, N] fp32 (ld ldy).
// Regimes (picked on the host from P and E only, so that a captured CUDA graph stays valid for any routing):
//   decode  (P <= 4·E): bandwidth bound. One block per (non-empty expert, 16 output columns), the expert found on the
//           device among the first min(P, E) non-empty ones; every weight byte is read once per 8 rows of an expert;
//           fp32 math (x stays fp32 whatever W's dtype).
//   prefill (P > 4·E):  bf16 W: tensor cores (WMMA bf16, fp32 accumulation) over 64-row tiles of an expert's rows ×
//           128 columns; x is rounded to bf16 while its tile is loaded (as matmul_nt rounds x for bf16 weights).
//           fp32 W: the exact fp32 SIMT tiling of moe.cu's moe_grouped_gemm (no TF32).
// Shapes the vector loads cannot take (K % 8 != 0, ldx % 4 != 0, unaligned pointers) fall back to extra::expert_gemm.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/cuda/dtype.h"

namespace hylora::cuda {

cudaError_t expert_gemm(const float* xs, int64_t ldx, DType w_dtype, const void* W, const int32_t* offsets, int64_t E,
                        float* ys, int64_t ldy, int64_t P, int64_t N, int64_t K, cudaStream_t stream);

// Which kernel expert_gemm runs for these sizes (for the checks and the timings): 0 naive fallback, 1 decode,
// 2 prefill.
int expert_gemm_path(const float* xs, int64_t ldx, DType w_dtype, const void* W, int64_t E, int64_t P, int64_t K);

}  // namespace hylora::cuda
